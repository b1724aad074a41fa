//! Administration of identities and access: users and groups, memberships, API tokens and
//! grants.
//!
//! Invariant: only the administrator changes any of it, and each change commits in the same
//! transaction as its audit record.

use groundwork_core::{ErrorCode, UnixMillis};
use groundwork_govern::access::{Grant, NewGrant};
use groundwork_govern::{location, token};
use groundwork_store::{Principal, PrincipalKind, TokenRecord};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ServiceError;
use crate::home::Groundwork;

/// A token as created: the secret text is in here once and nowhere else.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// Principal and group names: short, printable, and safe in `user:NAME` ACL entries.
fn check_name(name: &str) -> Result<(), ServiceError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(format!(
            "`{name}` is not a valid name: use 1-64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

/// Parses `--until`/`--expires`: an RFC 3339 time, or a duration from now such as `8h`, `30d`.
pub fn parse_time_or_duration(text: &str, now: UnixMillis) -> Result<UnixMillis, ServiceError> {
    let text = text.trim();
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        let millis = time
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| ServiceError::invalid(format!("`{text}` is before 1970")))?
            .as_millis() as i64;
        return Ok(millis);
    }
    match humantime::parse_duration(text) {
        Ok(duration) if !duration.is_zero() => Ok(now.saturating_add(duration.as_millis() as i64)),
        _ => Err(ServiceError::invalid(format!(
            "`{text}` is neither an RFC 3339 time (2027-01-31T00:00:00Z) nor a duration (8h, 30d)"
        ))),
    }
}

impl Groundwork {
    // --- principals -----------------------------------------------------------------------

    pub fn add_principal(&self, kind: PrincipalKind, name: &str) -> Result<Principal, ServiceError> {
        check_name(name)?;
        let action = format!("{}.add", kind.as_str());
        self.governed(&action, name, Value::Null, |tx| {
            groundwork_store::Store::tx_add_principal(tx, kind, name)
        })
    }

    pub fn remove_principal(&self, kind: PrincipalKind, name: &str) -> Result<(), ServiceError> {
        let action = format!("{}.remove", kind.as_str());
        self.governed(&action, name, Value::Null, |tx| {
            groundwork_store::Store::tx_remove_principal(tx, kind, name)
        })
    }

    pub fn add_member(&self, group: &str, user: &str) -> Result<(), ServiceError> {
        self.governed("group.add_member", group, json!({ "user": user }), |tx| {
            groundwork_store::Store::tx_add_member(tx, group, user)
        })
    }

    pub fn remove_member(&self, group: &str, user: &str) -> Result<(), ServiceError> {
        self.governed("group.remove_member", group, json!({ "user": user }), |tx| {
            groundwork_store::Store::tx_remove_member(tx, group, user)
        })
    }

    pub fn list_principals(&self, kind: PrincipalKind) -> Result<Vec<Principal>, ServiceError> {
        self.require_admin(&format!("{}.list", kind.as_str()), None)?;
        Ok(self.store().principals(kind)?)
    }

    // --- tokens ---------------------------------------------------------------------------

    pub fn create_token(
        &self,
        user: &str,
        name: Option<&str>,
        expires_at: Option<UnixMillis>,
    ) -> Result<CreatedToken, ServiceError> {
        let issued = token::generate().map_err(|e| ServiceError::new(ErrorCode::Internal, e.to_string()))?;
        let request = json!({ "user": user, "name": name, "token_id": issued.id, "expires_at": expires_at });
        let record = self.governed("token.create", user, request, |tx| {
            groundwork_store::Store::tx_add_token(
                tx,
                user,
                &issued.id,
                name,
                &issued.secret_sha256,
                expires_at,
            )
        })?;
        Ok(CreatedToken {
            token: issued.text,
            record,
        })
    }

    pub fn revoke_token(&self, id: &str) -> Result<(), ServiceError> {
        self.governed("token.revoke", id, Value::Null, |tx| {
            groundwork_store::Store::tx_revoke_token(tx, id)
        })
    }

    pub fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>, ServiceError> {
        self.require_admin("token.list", user)?;
        Ok(self.store().tokens(user)?)
    }

    // --- grants ---------------------------------------------------------------------------

    /// Normalises the grant's location to the URI form documents and tables carry (existing
    /// folders are canonicalised, as source folders are), checks its row filter and masks, and
    /// grants it.
    pub fn add_grant(&self, grant: &NewGrant) -> Result<Grant, ServiceError> {
        let mut grant = grant.clone();
        grant.location = normalise_location(&grant.location)?;
        if let Some(filter) = &grant.row_filter {
            groundwork_sql::policy::check_row_filter(filter)
                .map_err(|e| ServiceError::invalid(e.to_string()))?;
        }
        for (column, mask) in &grant.masks {
            if column.is_empty() || column.len() > 256 {
                return Err(ServiceError::invalid(format!("`{column}` is not a column name")));
            }
            mask.parse::<groundwork_sql::Mask>()
                .map_err(ServiceError::invalid)?;
        }
        let request = json!({
            "grantee": grant.grantee,
            "location": grant.location,
            "level": grant.level,
            "expires_at": grant.expires_at,
            "row_filter": grant.row_filter,
            "masks": grant.masks,
        });
        self.governed("grant.add", &grant.location.clone(), request, |tx| {
            groundwork_store::Store::tx_add_grant(tx, &grant)
        })
    }

    pub fn revoke_grant(&self, id: i64) -> Result<(), ServiceError> {
        self.governed("grant.revoke", &id.to_string(), Value::Null, |tx| {
            groundwork_store::Store::tx_revoke_grant(tx, id)
        })
    }

    pub fn list_grants(&self) -> Result<Vec<Grant>, ServiceError> {
        self.require_admin("grant.list", None)?;
        Ok(self.store().grants()?)
    }
}

/// A grant location in document-URI form; an existing folder is canonicalised first.
pub fn normalise_location(input: &str) -> Result<String, ServiceError> {
    let cwd = std::env::current_dir()?;
    let as_path = input.strip_prefix("file://").unwrap_or(input);
    let is_path = !input.contains("://") || input.starts_with("file://");
    if is_path && let Ok(canonical) = std::fs::canonicalize(cwd.join(as_path)) {
        return Ok(location::file_uri(&canonical));
    }
    location::normalise(input, &cwd).map_err(|e| ServiceError::invalid(e.to_string()))
}
