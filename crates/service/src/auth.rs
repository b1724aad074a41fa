//! Authentication: turning a credential (API token, OIDC JWT, `--as`) into the handle's
//! [`Actor`], and the actor into its effective [`AccessPolicy`].
//!
//! Invariant: unknown, malformed, forged, revoked and expired credentials all get the same
//! `unauthenticated` answer; each refusal is audited with its real reason.

use groundwork_core::{ErrorCode, now_millis};
use groundwork_govern::access::{AccessPolicy, Subject};
use groundwork_govern::audit::{AuditEntry, Outcome};
use groundwork_govern::{jwt, token};
use groundwork_store::{Principal, PrincipalKind, StoreError};
use serde_json::{Value, json};
use std::time::Instant;

use crate::actor::Actor;
use crate::error::ServiceError;
use crate::home::Groundwork;

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
            actor: "unauthenticated".to_owned(), // tidy: not an error code
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
}

fn subject_of(principal: &Principal) -> Subject {
    Subject {
        user: principal.name.clone(),
        groups: principal.related.clone(),
        admin: principal.admin,
    }
}
