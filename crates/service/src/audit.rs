//! The audit log as a resource: verifying the hash chain, anchoring its head outside the
//! store (a file or an object), and querying it.
//!
//! Invariant: reading or anchoring the log is itself audited, and only the administrator may.

use groundwork_core::{ErrorCode, now_millis};
use groundwork_govern::audit::{Anchor, AuditRow, ChainVerifier, Verification};
use groundwork_objects::Connection;
use groundwork_store::AuditQuery;
use serde::Serialize;
use serde_json::json;
use std::time::Instant;

use crate::error::ServiceError;
use crate::home::Groundwork;

/// `audit verify`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct AuditVerification {
    pub intact: bool,
    #[serde(flatten)]
    pub verification: Verification,
    /// Human-readable description of the first break, if any.
    pub problem: Option<String>,
}

impl Groundwork {
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

    fn connect(uri: &str, endpoint: &Option<String>) -> Result<(Connection, String), ServiceError> {
        let (bucket, key) = Self::split(uri);
        let config = groundwork_core::SourceConfig {
            endpoint: endpoint.clone(),
            ..Default::default()
        };
        let reader = Connection::connect(&bucket, &config)
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
