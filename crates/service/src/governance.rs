//! Who is asking, what they may do, and the audit record of what they did.
//!
//! A [`Groundwork`] handle always acts for one [`Actor`]: the local administrator by default
//! (the CLI, single-user use), a named user with `--as` (testing access), or the owner of an
//! API token. Administration (principals, grants, tokens, knowledge bases, sync) needs the
//! administrator; retrieval runs under the actor's [`AccessPolicy`]. Every operation, allowed,
//! denied or failed, appends an audit record; changes to governance state commit in the same
//! transaction as their record.

use std::time::Instant;

use groundwork_core::{ErrorCode, UnixMillis, now_millis};
use groundwork_govern::access::{AccessPolicy, Grant, Grantee, Level, Subject};
use groundwork_govern::audit::{
    Anchor, AuditEntry, AuditRow, ChainVerifier, ChunkRef, Outcome, Verification,
};
use groundwork_govern::{jwt, location, token};
use groundwork_ingest::source::SourceReader;
use groundwork_store::{AuditQuery, Principal, PrincipalKind, StoreError, TokenRecord};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ServiceError;
use crate::home::Groundwork;

/// The name of the administrator `groundwork init` creates.
pub const LOCAL_ADMIN: &str = "admin";

/// The principal a handle acts for, and how it authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub subject: Subject,
    /// `local` (the CLI as admin), `local-as` (the CLI with `--as`), or `token:<id>`.
    pub auth: String,
}

impl Actor {
    /// No one: reads nothing, administers nothing. A server's handle acts as this until a
    /// request's credentials authenticate it.
    pub fn anonymous() -> Actor {
        Actor {
            subject: Subject {
                // Not a valid principal name, so no grant or ACL entry can ever name it.
                user: "(anonymous)".to_owned(),
                groups: Vec::new(),
                admin: false,
            },
            auth: "none".to_owned(),
        }
    }

    pub(crate) fn local_admin() -> Actor {
        Actor {
            subject: Subject {
                user: LOCAL_ADMIN.to_owned(),
                groups: Vec::new(),
                admin: true,
            },
            auth: "local".to_owned(),
        }
    }
}

/// A token as created: the secret text is in here once and nowhere else.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// `audit verify`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct AuditVerification {
    pub intact: bool,
    #[serde(flatten)]
    pub verification: Verification,
    /// Human-readable description of the first break, if any.
    pub problem: Option<String>,
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
    /// A handle on the same home that acts for no one until it authenticates (see
    /// [`Actor::anonymous`]).
    pub fn anonymous(&self) -> Groundwork {
        Groundwork {
            shared: self.shared.clone(),
            actor: Actor::anonymous(),
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Acts as `user` from now on (the CLI's `--as`). An unknown user is refused and audited.
    pub fn act_as(&mut self, user: &str) -> Result<(), ServiceError> {
        let started = Instant::now();
        match self.store().principal(PrincipalKind::User, user) {
            Ok(principal) => {
                self.actor = Actor {
                    subject: subject_of(&principal),
                    auth: "local-as".to_owned(),
                };
                Ok(())
            }
            Err(StoreError::PrincipalNotFound(_)) => {
                let error = ServiceError::new(ErrorCode::Unauthenticated, format!("unknown user `{user}`"));
                self.audit_failed_authentication("local-as", json!({ "user": user }), &error, started)?;
                Err(error)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Authenticates a bearer credential: a groundwork API token (`gw_…`) or, when `[oidc]`
    /// is configured, an identity provider's JWT.
    pub fn authenticate_bearer(&mut self, text: &str) -> Result<(), ServiceError> {
        if text.trim().starts_with("gw_") || text.matches('.').count() != 2 {
            self.authenticate_token(text)
        } else {
            self.authenticate_jwt(text)
        }
    }

    /// Refuses a request that brought no usable credential (no `Authorization` header, or
    /// not a bearer one), and audits it like any failed authentication.
    pub fn refuse_missing_credentials(&self, channel: &str, reason: &str) -> ServiceError {
        self.refuse(channel, reason, Value::Null, Instant::now())
    }

    /// Refuses a credential with one message (no oracle) and audits the real reason.
    fn refuse(&self, auth: &str, reason: &str, detail: Value, started: Instant) -> ServiceError {
        let error = ServiceError::new(ErrorCode::Unauthenticated, "invalid or expired credentials");
        let request = json!({ "reason": reason, "detail": detail });
        // An audit failure must not turn a refusal into something else; the refusal stands.
        let _ = self.audit_failed_authentication(auth, request, &error, started);
        error
    }

    /// Authenticates with an API token and acts as its user. Malformed, unknown, revoked and
    /// expired tokens are refused alike and audited.
    pub fn authenticate_token(&mut self, text: &str) -> Result<(), ServiceError> {
        let started = Instant::now();
        let now = now_millis();
        let presented =
            token::parse(text).map_err(|_| self.refuse("token", "malformed", Value::Null, started))?;
        let id = json!({ "token_id": presented.id });
        let Some(record) = self.store().token(presented.id)? else {
            return Err(self.refuse("token", "unknown", id, started));
        };
        if !presented.matches(&record.secret_sha256) {
            return Err(self.refuse("token", "wrong secret", id, started));
        }
        if record.revoked_at.is_some() {
            return Err(self.refuse("token", "revoked", id, started));
        }
        if record.expires_at.is_some_and(|at| now >= at) {
            return Err(self.refuse("token", "expired", id, started));
        }
        let principal = self.store().principal(PrincipalKind::User, &record.user)?;
        self.store().touch_token(&record.id, now)?;
        self.actor = Actor {
            subject: subject_of(&principal),
            auth: format!("token:{}", record.id),
        };
        Ok(())
    }

    /// Authenticates with an OIDC/JWT bearer token against the configured issuer, audience
    /// and JWKS. The user is the configured claim; its groups are the token's groups claim plus
    /// any groups the store gives a user of that name. Never the administrator.
    pub fn authenticate_jwt(&mut self, text: &str) -> Result<(), ServiceError> {
        let started = Instant::now();
        let oidc = self.config().oidc.clone();
        let (Some(issuer), Some(audience)) = (oidc.issuer.clone(), oidc.audience.clone()) else {
            return Err(self.refuse("jwt", "OIDC is not configured", Value::Null, started));
        };
        let keys = match oidc.key_set() {
            Ok(keys) => keys,
            Err(why) => return Err(self.refuse("jwt", "JWKS unavailable", json!(why), started)),
        };
        let expect = jwt::Expectations {
            issuer,
            audience,
            user_claim: oidc.user_claim.clone(),
            groups_claim: oidc.groups_claim.clone(),
            leeway_secs: oidc.leeway_secs,
        };
        let identity = match jwt::verify(text, &keys, &expect, now_millis() / 1000) {
            Ok(identity) => identity,
            Err(why) => return Err(self.refuse("jwt", &why.to_string(), Value::Null, started)),
        };
        let mut groups = identity.groups;
        if let Ok(principal) = self.store().principal(PrincipalKind::User, &identity.user) {
            groups.extend(principal.related);
        }
        groups.sort();
        groups.dedup();
        self.actor = Actor {
            subject: Subject {
                user: identity.user,
                groups,
                admin: false,
            },
            auth: format!("jwt:{}", identity.issuer),
        };
        Ok(())
    }

    fn audit_failed_authentication(
        &self,
        auth: &str,
        request: Value,
        error: &ServiceError,
        started: Instant,
    ) -> Result<(), ServiceError> {
        self.store().append_audit(AuditEntry {
            at: now_millis(),
            actor: "unauthenticated".to_owned(),
            auth: auth.to_owned(),
            action: "authenticate".to_owned(),
            target: None,
            request,
            outcome: Outcome::Denied,
            code: Some(error.code().as_str().to_owned()),
            chunks: Vec::new(),
            models: Vec::new(),
            latency_ms: Some(started.elapsed().as_secs_f64() * 1e3),
        })?;
        Ok(())
    }

    /// The actor's effective access now (grants are read fresh, so a grant that expired a
    /// moment ago no longer counts).
    pub fn access_policy(&self) -> Result<AccessPolicy, ServiceError> {
        let grants = if self.actor.subject.admin {
            Vec::new()
        } else {
            self.store().grants()?
        };
        Ok(AccessPolicy::new(
            self.actor.subject.clone(),
            &grants,
            now_millis(),
        ))
    }

    /// An audit entry for this actor, to be completed by the caller.
    pub(crate) fn entry(&self, action: &str, target: Option<&str>, request: Value) -> AuditEntry {
        AuditEntry {
            at: now_millis(),
            actor: self.actor.subject.user.clone(),
            auth: self.actor.auth.clone(),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            request,
            outcome: Outcome::Ok,
            code: None,
            chunks: Vec::new(),
            models: Vec::new(),
            latency_ms: None,
        }
    }

    /// Appends a record for an operation that changed nothing in the store (a read), or whose
    /// changes are committed by their engine (a sync); `result` decides the outcome.
    pub(crate) fn record<T>(
        &self,
        entry: AuditEntry,
        started: Instant,
        result: &Result<T, ServiceError>,
        chunks: Vec<ChunkRef>,
    ) -> Result<(), ServiceError> {
        let entry = Self::complete(entry, started, result, chunks);
        self.store().append_audit(entry)?;
        Ok(())
    }

    /// [`Self::record`] for a read (search, ask): see `Store::append_read_audit` for why it
    /// does not wait for the disk.
    pub(crate) fn record_read<T>(
        &self,
        entry: AuditEntry,
        started: Instant,
        result: &Result<T, ServiceError>,
        chunks: Vec<ChunkRef>,
    ) -> Result<(), ServiceError> {
        let entry = Self::complete(entry, started, result, chunks);
        self.store().append_read_audit(entry)?;
        Ok(())
    }

    fn complete<T>(
        mut entry: AuditEntry,
        started: Instant,
        result: &Result<T, ServiceError>,
        chunks: Vec<ChunkRef>,
    ) -> AuditEntry {
        entry.latency_ms = Some(started.elapsed().as_secs_f64() * 1e3);
        entry.chunks = chunks;
        if let Err(error) = result {
            entry.outcome = if error.code() == ErrorCode::Forbidden {
                Outcome::Denied
            } else {
                Outcome::Error
            };
            entry.code = Some(error.code().as_str().to_owned());
        }
        entry
    }

    /// Refuses (and audits) an administrative operation by anyone but the administrator.
    pub(crate) fn require_admin(&self, action: &str, target: Option<&str>) -> Result<(), ServiceError> {
        if self.actor.subject.admin {
            return Ok(());
        }
        let error = ServiceError::new(
            ErrorCode::Forbidden,
            format!(
                "`{}` may not {action}: administrators only",
                self.actor.subject.user
            ),
        );
        let result: Result<(), _> = Err(error);
        self.record(
            self.entry(action, target, Value::Null),
            Instant::now(),
            &result,
            Vec::new(),
        )?;
        result
    }

    /// Runs an administrative operation whose engine commits its own changes (knowledge bases,
    /// sources, sync, index rebuilds) and appends its record after it.
    pub(crate) fn administer<T>(
        &self,
        action: &str,
        target: &str,
        request: Value,
        operation: impl FnOnce() -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        self.require_admin(action, Some(target))?;
        let started = Instant::now();
        let entry = self.entry(action, Some(target), request);
        let result = operation();
        self.record(entry, started, &result, Vec::new())?;
        result
    }

    /// Runs a governance change and its audit record in one transaction.
    fn governed<T>(
        &self,
        action: &str,
        target: &str,
        request: Value,
        change: impl FnOnce(&groundwork_store::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, ServiceError> {
        self.require_admin(action, Some(target))?;
        let started = Instant::now();
        let entry = self.entry(action, Some(target), request);
        Ok(self.store().audited(change, |result| {
            let mut entry = entry;
            entry.latency_ms = Some(started.elapsed().as_secs_f64() * 1e3);
            if let Err(error) = result {
                entry.outcome = Outcome::Error;
                entry.code = Some(crate::error::store_error_code(error).as_str().to_owned());
            }
            entry
        })?)
    }

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

    /// Normalises `location` to the URI form documents carry (existing folders are
    /// canonicalised, as source folders are) and grants it.
    pub fn add_grant(
        &self,
        grantee: Grantee,
        location: &str,
        level: Level,
        expires_at: Option<UnixMillis>,
    ) -> Result<Grant, ServiceError> {
        let location = normalise_location(location)?;
        let request =
            json!({ "grantee": grantee, "location": location, "level": level, "expires_at": expires_at });
        self.governed("grant.add", &location, request, |tx| {
            groundwork_store::Store::tx_add_grant(tx, &grantee, &location, level, expires_at)
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

    // --- the audit log --------------------------------------------------------------------

    /// Walks the whole chain (and checks `anchor` against it, when given).
    pub fn audit_verify(&self, anchor: Option<&AnchorLocation>) -> Result<AuditVerification, ServiceError> {
        self.require_admin("audit.verify", None)?;
        let anchor: Option<Anchor> = match anchor {
            Some(location) => {
                let text = location.read()?;
                Some(
                    serde_json::from_str(&text)
                        .map_err(|e| ServiceError::invalid(format!("{location} is not an anchor: {e}")))?,
                )
            }
            None => None,
        };
        let mut verifier = ChainVerifier::default();
        self.store().for_each_audit(|row| verifier.push(row))?;
        let store = self.store();
        let verification = verifier.finish(anchor.as_ref(), |seq| {
            store.audit_record(seq).ok().flatten().map(|row| row.hash)
        });
        Ok(AuditVerification {
            intact: verification.first_break.is_none(),
            problem: verification.first_break.as_ref().map(ToString::to_string),
            verification,
        })
    }

    /// Writes the chain head to `dest` (atomically), signed when `[audit] signing_key_file`
    /// is configured.
    pub fn audit_anchor(&self, dest: &AnchorLocation) -> Result<Anchor, ServiceError> {
        self.require_admin("audit.anchor", None)?;
        let started = Instant::now();
        let (seq, hash) = self
            .store()
            .audit_head()?
            .unwrap_or((0, groundwork_govern::audit::GENESIS.to_owned()));
        let mut anchor = Anchor::new(seq, hash, now_millis());
        if let Some(key_file) = &self.config().audit.signing_key_file {
            let seed = std::fs::read_to_string(key_file).map_err(|e| {
                ServiceError::invalid(format!("cannot read the signing key {}: {e}", key_file.display()))
            })?;
            anchor
                .sign(&seed)
                .map_err(|e| ServiceError::invalid(e.to_string()))?;
        }
        let body = serde_json::to_string_pretty(&anchor).expect("anchors serialise");
        let result = dest.write(body.into_bytes()).map(|()| anchor);
        let entry = self.entry(
            "audit.anchor",
            Some(&dest.to_string()),
            json!({ "anchored_seq": seq }),
        );
        self.record(entry, started, &result, Vec::new())?;
        result
    }

    /// Records matching `query`. Reading the log is itself audited (`audit.query`, with the
    /// filters and how many records were returned), after the read, so a query never lists its
    /// own record.
    pub fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, ServiceError> {
        self.require_admin("audit.query", None)?;
        let started = Instant::now();
        let result = self.store().query_audit(query).map_err(ServiceError::from);
        let mut request = json!({
            "actor": query.actor,
            "action": query.action,
            "since": query.since,
            "until": query.until,
            "document": query.document_uri,
            "after_seq": query.after_seq,
            "limit": query.limit,
        });
        if let Ok(rows) = &result {
            request["returned"] = json!(rows.len());
        }
        let entry = self.entry("audit.query", None, request);
        self.record_read(entry, started, &result, Vec::new())?;
        result
    }
}

/// Where `audit anchor` writes the chain head and `audit verify --anchor` reads it: a file, or
/// an object (`s3://bucket/key`, optionally on an S3-compatible `endpoint`) that someone with
/// the database alone cannot rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorLocation {
    File(std::path::PathBuf),
    Object { uri: String, endpoint: Option<String> },
}

/// Largest anchor read back; a real one is well under 1 KiB.
const MAX_ANCHOR_BYTES: u64 = 64 * 1024;

impl AnchorLocation {
    /// `s3://…` is an object, anything else a file path. `endpoint` only applies to objects.
    pub fn parse(text: &str, endpoint: Option<String>) -> Result<AnchorLocation, ServiceError> {
        if text.starts_with("s3://") {
            let key = text
                .trim_start_matches("s3://")
                .split_once('/')
                .map(|(_, key)| key);
            if key.is_none_or(|key| key.is_empty() || key.ends_with('/')) {
                return Err(ServiceError::invalid(format!(
                    "{text}: an anchor object needs a key, as in s3://bucket/audit/anchor.json"
                )));
            }
            Ok(AnchorLocation::Object {
                uri: text.to_owned(),
                endpoint,
            })
        } else if endpoint.is_some() {
            Err(ServiceError::invalid("--endpoint applies to s3:// anchors only"))
        } else {
            Ok(AnchorLocation::File(std::path::PathBuf::from(text)))
        }
    }

    /// The object's bucket URI and key.
    fn split(uri: &str) -> (String, String) {
        let rest = uri.trim_start_matches("s3://");
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        (format!("s3://{bucket}/"), key.to_owned())
    }

    fn connect(uri: &str, endpoint: &Option<String>) -> Result<(SourceReader, String), ServiceError> {
        let (bucket, key) = Self::split(uri);
        let config = groundwork_core::SourceConfig {
            endpoint: endpoint.clone(),
            ..Default::default()
        };
        let reader = SourceReader::connect(&bucket, &config)
            .map_err(|e| ServiceError::new(ErrorCode::SourceUnavailable, e.to_string()))?;
        Ok((reader, key))
    }

    fn write(&self, body: Vec<u8>) -> Result<(), ServiceError> {
        match self {
            AnchorLocation::File(path) => {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, body)
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .map_err(|e| ServiceError::invalid(format!("cannot write {}: {e}", path.display())))
            }
            AnchorLocation::Object { uri, endpoint } => {
                let (reader, key) = Self::connect(uri, endpoint)?;
                reader
                    .put(&key, body)
                    .map_err(|e| ServiceError::new(ErrorCode::SourceUnavailable, e.to_string()))
            }
        }
    }

    fn read(&self) -> Result<String, ServiceError> {
        let bytes = match self {
            AnchorLocation::File(path) => std::fs::read(path)
                .map_err(|e| ServiceError::invalid(format!("cannot read anchor {}: {e}", path.display())))?,
            AnchorLocation::Object { uri, endpoint } => {
                let (reader, key) = Self::connect(uri, endpoint)?;
                reader
                    .get(&key, MAX_ANCHOR_BYTES)
                    .map_err(|e| ServiceError::new(ErrorCode::SourceUnavailable, e.to_string()))?
                    .to_vec()
            }
        };
        String::from_utf8(bytes)
            .map_err(|_| ServiceError::invalid(format!("{self} is not an anchor: not UTF-8")))
    }
}

impl std::fmt::Display for AnchorLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnchorLocation::File(path) => write!(f, "{}", path.display()),
            AnchorLocation::Object { uri, .. } => f.write_str(uri),
        }
    }
}

fn subject_of(principal: &Principal) -> Subject {
    Subject {
        user: principal.name.clone(),
        groups: principal.related.clone(),
        admin: principal.admin,
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

/// `lineage answer SEQ`: an audited search or answer, back to every chunk, object version and
/// model it used.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerLineage {
    pub record: AuditRow,
    pub models: Vec<String>,
    pub chunks: Vec<UsedChunk>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UsedChunk {
    /// As recorded at the time of the answer.
    pub used: ChunkRef,
    /// The chunk now, when it still exists; `None` once its document was re-chunked or deleted.
    pub current: Option<groundwork_store::ChunkLineage>,
    /// Whether the document is still at the object version the answer used.
    pub unchanged_since: bool,
}

impl Groundwork {
    pub fn chunk_lineage(&self, chunk_id: i64) -> Result<groundwork_store::ChunkLineage, ServiceError> {
        self.require_admin("lineage.chunk", Some(&chunk_id.to_string()))?;
        self.store()
            .chunk_lineage(chunk_id)?
            .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, format!("chunk {chunk_id} not found")))
    }

    pub fn answer_lineage(&self, seq: i64) -> Result<AnswerLineage, ServiceError> {
        self.require_admin("lineage.answer", Some(&seq.to_string()))?;
        let record = self
            .store()
            .audit_record(seq)?
            .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, format!("audit record {seq} not found")))?;
        let models: Vec<String> = serde_json::from_str(&record.models).unwrap_or_default();
        let mut chunks = Vec::new();
        for used in record.chunk_refs() {
            let current = self.store().chunk_lineage(used.chunk_id)?;
            let unchanged_since = current.as_ref().is_some_and(|c| {
                c.object_version == used.object_version && c.document_uri == used.document_uri
            });
            chunks.push(UsedChunk {
                used,
                current,
                unchanged_since,
            });
        }
        Ok(AnswerLineage {
            record,
            models,
            chunks,
        })
    }
}
