//! Audit records: what is written, how it is chained, and how the chain is checked.
//!
//! The service builds an [`AuditEntry`] for every operation; [`AuditEntry::seal`] masks its
//! request with the sensitive-data detector and turns it into an [`AuditRow`] chained to the
//! previous row: `hash = SHA-256(prev_hash ‖ canonical(row))`. The canonical encoding is a
//! fixed field order with length prefixes over the exact stored bytes (JSON fields are hashed
//! as the text stored, never re-serialised), so the hash does not depend on how a JSON library
//! orders keys.
//!
//! [`verify`] walks rows in sequence order and names the first one that was altered (its hash
//! no longer matches its content), removed (a gap in the sequence) or reordered (it does not
//! chain onto its predecessor). Removing the *tail* leaves a valid shorter chain; an
//! [`Anchor`] written elsewhere (optionally signed with ed25519) catches that.

use groundwork_core::UnixMillis;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::mask::detector;

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Denied,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

/// A chunk that an operation returned, pinned to the document version it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkRef {
    pub chunk_id: i64,
    pub document_uri: String,
    pub object_version: Option<String>,
}

/// What happened, before masking and chaining.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: UnixMillis,
    pub actor: String,
    /// How the actor authenticated: `local` (the CLI), `token:<id>`, `jwt:<issuer>`, or
    /// `none` for a failed authentication.
    pub auth: String,
    pub action: String,
    pub target: Option<String>,
    pub request: Value,
    pub outcome: Outcome,
    pub code: Option<String>,
    pub chunks: Vec<ChunkRef>,
    pub models: Vec<String>,
    pub latency_ms: Option<f64>,
}

/// A record as stored: every field in the form it is hashed in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: UnixMillis,
    pub actor: String,
    pub auth: String,
    pub action: String,
    pub target: Option<String>,
    /// JSON text, masked.
    pub request: String,
    pub outcome: String,
    pub code: Option<String>,
    /// JSON text: a list of [`ChunkRef`].
    pub chunks: String,
    /// JSON text: a list of model identifiers.
    pub models: String,
    pub latency_ms: Option<f64>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// Masks the entry and chains it after `(prev_seq, prev_hash)`.
    pub fn seal(self, prev_seq: i64, prev_hash: &str) -> AuditRow {
        self.mask().chain(prev_seq, prev_hash)
    }

    /// Masks the entry into the stored form of its fields, not yet chained: sequence 0 and
    /// empty hashes until [`AuditRow::chain`] places it. Masking happens here, before the record
    /// is written anywhere (the read-audit journal holds rows in this form).
    pub fn mask(mut self) -> AuditRow {
        let masker = detector();
        masker.mask_json(&mut self.request);
        let mask_opt = |s: Option<String>| s.map(|s| masker.mask(&s));
        AuditRow {
            seq: 0,
            at: self.at,
            actor: masker.mask(&self.actor),
            auth: self.auth,
            action: self.action,
            target: mask_opt(self.target),
            request: self.request.to_string(),
            outcome: self.outcome.as_str().to_owned(),
            code: self.code,
            chunks: serde_json::to_string(&self.chunks).expect("chunk refs serialise"),
            models: serde_json::to_string(&self.models).expect("strings serialise"),
            latency_ms: self.latency_ms,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }
}

impl AuditRow {
    /// Places a masked row after `(prev_seq, prev_hash)` and computes its hash.
    pub fn chain(mut self, prev_seq: i64, prev_hash: &str) -> AuditRow {
        self.seq = prev_seq + 1;
        self.prev_hash = prev_hash.to_owned();
        self.hash = self.compute_hash();
        self
    }

    /// `SHA-256(prev_hash ‖ canonical(row))`, hex.
    pub fn compute_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        let mut field = |bytes: Option<&[u8]>| match bytes {
            None => hasher.update([0u8]),
            Some(bytes) => {
                hasher.update([1u8]);
                hasher.update((bytes.len() as u64).to_be_bytes());
                hasher.update(bytes);
            }
        };
        field(Some(b"groundwork-audit-v1"));
        field(Some(&self.seq.to_be_bytes()));
        field(Some(&self.at.to_be_bytes()));
        field(Some(self.actor.as_bytes()));
        field(Some(self.auth.as_bytes()));
        field(Some(self.action.as_bytes()));
        field(self.target.as_deref().map(str::as_bytes));
        field(Some(self.request.as_bytes()));
        field(Some(self.outcome.as_bytes()));
        field(self.code.as_deref().map(str::as_bytes));
        field(Some(self.chunks.as_bytes()));
        field(Some(self.models.as_bytes()));
        field(
            self.latency_ms
                .map(|l| l.to_bits().to_be_bytes())
                .as_ref()
                .map(|b| &b[..]),
        );
        hex::encode(hasher.finalize())
    }

    pub fn chunk_refs(&self) -> Vec<ChunkRef> {
        serde_json::from_str(&self.chunks).unwrap_or_default()
    }
}

/// Why a chain failed verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainBreak {
    /// The record's content no longer matches its hash.
    Altered { seq: i64 },
    /// Records from `first` up to (not including) the next present one are missing.
    Removed { first: i64, next_present: i64 },
    /// The record does not chain onto the record before it (reordered, or re-chained).
    Reordered { seq: i64 },
    /// The anchor names a record the store no longer has: the tail was cut.
    Truncated { anchored_seq: i64, head_seq: i64 },
    /// The anchor's record exists but with a different hash.
    AnchorMismatch { seq: i64 },
    /// The anchor's signature does not verify.
    BadSignature,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::Altered { seq } => write!(f, "record {seq} was altered (its hash does not match)"),
            ChainBreak::Removed { first, next_present } => {
                write!(f, "records {first}..{} were removed", next_present - 1)
            }
            ChainBreak::Reordered { seq } => {
                write!(
                    f,
                    "record {seq} does not chain onto its predecessor (reordered or re-chained)"
                )
            }
            ChainBreak::Truncated {
                anchored_seq,
                head_seq,
            } => write!(
                f,
                "the log ends at record {head_seq} but the anchor vouches for record {anchored_seq}: the tail was removed"
            ),
            ChainBreak::AnchorMismatch { seq } => write!(f, "record {seq} differs from the anchored one"),
            ChainBreak::BadSignature => f.write_str("the anchor's signature does not verify"),
        }
    }
}

/// The result of walking a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub records: u64,
    /// The last record that chains correctly: `(seq, hash)`.
    pub head: Option<(i64, String)>,
    pub first_break: Option<ChainBreak>,
}

/// Incremental verifier: feed rows in ascending `seq` order; it keeps only the running state,
/// so a log of any length verifies in constant memory.
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    verification: Verification,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev_hash: GENESIS.to_owned(),
            verification: Verification {
                records: 0,
                head: None,
                first_break: None,
            },
        }
    }
}

impl ChainVerifier {
    /// Checks the next row; returns false once a break has been found (stop feeding).
    pub fn push(&mut self, row: &AuditRow) -> bool {
        if self.verification.first_break.is_some() {
            return false;
        }
        self.verification.records += 1;
        let broken = if row.seq > self.expected_seq {
            Some(ChainBreak::Removed {
                first: self.expected_seq,
                next_present: row.seq,
            })
        } else if row.seq < self.expected_seq || row.prev_hash != self.prev_hash {
            if row.compute_hash() != row.hash {
                Some(ChainBreak::Altered { seq: row.seq })
            } else {
                Some(ChainBreak::Reordered { seq: row.seq })
            }
        } else if row.compute_hash() != row.hash {
            Some(ChainBreak::Altered { seq: row.seq })
        } else {
            None
        };
        if let Some(broken) = broken {
            self.verification.first_break = Some(broken);
            return false;
        }
        self.expected_seq = row.seq + 1;
        self.prev_hash = row.hash.clone();
        self.verification.head = Some((row.seq, row.hash.clone()));
        true
    }

    /// Finishes, optionally checking an anchor against what was walked.
    pub fn finish(mut self, anchor: Option<&Anchor>, seen: impl Fn(i64) -> Option<String>) -> Verification {
        if self.verification.first_break.is_none()
            && let Some(anchor) = anchor
        {
            let head_seq = self.verification.head.as_ref().map_or(0, |(s, _)| *s);
            self.verification.first_break = if !anchor.signature_valid() {
                Some(ChainBreak::BadSignature)
            } else if anchor.seq > head_seq {
                Some(ChainBreak::Truncated {
                    anchored_seq: anchor.seq,
                    head_seq,
                })
            } else if seen(anchor.seq).as_deref() != Some(anchor.hash.as_str()) {
                Some(ChainBreak::AnchorMismatch { seq: anchor.seq })
            } else {
                None
            };
        }
        self.verification
    }
}

/// The chain head written outside the store, so that cutting the tail is detectable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    pub format: String,
    pub seq: i64,
    pub hash: String,
    pub at: UnixMillis,
    /// Hex ed25519 public key and signature over [`Anchor::message`], when signed.
    pub public_key: Option<String>,
    pub signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorKeyError {
    #[error("the anchor signing key must be 32 bytes as 64 hex characters (an ed25519 seed)")]
    BadSeed,
}

impl Anchor {
    pub const FORMAT: &'static str = "groundwork-audit-anchor/1";

    pub fn new(seq: i64, hash: String, at: UnixMillis) -> Anchor {
        Anchor {
            format: Self::FORMAT.to_owned(),
            seq,
            hash,
            at,
            public_key: None,
            signature: None,
        }
    }

    fn message(&self) -> String {
        format!("{}\n{}\n{}\n{}", self.format, self.seq, self.hash, self.at)
    }

    /// Signs with an ed25519 key given as its 32-byte seed in hex.
    pub fn sign(&mut self, seed_hex: &str) -> Result<(), AnchorKeyError> {
        let seed = hex::decode(seed_hex.trim()).map_err(|_| AnchorKeyError::BadSeed)?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| AnchorKeyError::BadSeed)?;
        self.public_key = Some(hex::encode(pair.public_key().as_ref()));
        self.signature = Some(hex::encode(pair.sign(self.message().as_bytes()).as_ref()));
        Ok(())
    }

    /// True when unsigned, or when the signature verifies under the embedded public key.
    /// (Pin the expected key with [`Anchor::signed_by`].)
    pub fn signature_valid(&self) -> bool {
        match (&self.public_key, &self.signature) {
            (None, None) => true,
            (Some(key), Some(signature)) => {
                let (Ok(key), Ok(signature)) = (hex::decode(key), hex::decode(signature)) else {
                    return false;
                };
                UnparsedPublicKey::new(&ED25519, key)
                    .verify(self.message().as_bytes(), &signature)
                    .is_ok()
            }
            _ => false,
        }
    }

    /// Whether the anchor carries a valid signature by the key with this seed.
    pub fn signed_by(&self, seed_hex: &str) -> bool {
        let Ok(seed) = hex::decode(seed_hex.trim()) else {
            return false;
        };
        let Ok(pair) = Ed25519KeyPair::from_seed_unchecked(&seed) else {
            return false;
        };
        self.signature_valid() && self.public_key.as_deref() == Some(&hex::encode(pair.public_key().as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(n: i64) -> AuditEntry {
        AuditEntry {
            at: 1_700_000_000_000 + n,
            actor: "alice".into(),
            auth: "local".into(),
            action: "search".into(),
            target: Some("handbook".into()),
            request: json!({"query": format!("question {n} from bob@example.com")}),
            outcome: Outcome::Ok,
            code: None,
            chunks: vec![ChunkRef {
                chunk_id: n,
                document_uri: "file:///docs/a.txt".into(),
                object_version: Some("v1".into()),
            }],
            models: vec!["minilm".into()],
            latency_ms: Some(1.5),
        }
    }

    fn chain(n: i64) -> Vec<AuditRow> {
        let mut rows: Vec<AuditRow> = Vec::new();
        for i in 0..n {
            let (seq, hash) = rows
                .last()
                .map_or((0, GENESIS.to_owned()), |r| (r.seq, r.hash.clone()));
            rows.push(entry(i).seal(seq, &hash));
        }
        rows
    }

    fn verify(rows: &[AuditRow], anchor: Option<&Anchor>) -> Verification {
        let mut verifier = ChainVerifier::default();
        for row in rows {
            if !verifier.push(row) {
                break;
            }
        }
        verifier.finish(anchor, |seq| {
            rows.iter().find(|r| r.seq == seq).map(|r| r.hash.clone())
        })
    }

    #[test]
    fn sealing_masks_and_chains() {
        let rows = chain(3);
        assert!(rows[0].request.contains("[EMAIL]") && !rows[0].request.contains("bob@"));
        assert_eq!(rows[0].prev_hash, GENESIS);
        assert_eq!(rows[1].prev_hash, rows[0].hash);
        let v = verify(&rows, None);
        assert_eq!(v.first_break, None);
        assert_eq!(v.head, Some((3, rows[2].hash.clone())));
    }

    #[test]
    fn names_the_first_altered_removed_or_reordered_record() {
        let rows = chain(6);
        let mut altered = rows.clone();
        altered[3].actor = "mallory".into();
        assert_eq!(
            verify(&altered, None).first_break,
            Some(ChainBreak::Altered { seq: 4 })
        );
        let mut latency = rows.clone();
        latency[1].latency_ms = Some(1.6);
        assert_eq!(
            verify(&latency, None).first_break,
            Some(ChainBreak::Altered { seq: 2 })
        );

        let mut removed = rows.clone();
        removed.remove(2);
        assert_eq!(
            verify(&removed, None).first_break,
            Some(ChainBreak::Removed {
                first: 3,
                next_present: 4
            })
        );
        // Swap two records' contents but keep the sequence numbers in order.
        let mut swapped = rows.clone();
        let (a, b) = (swapped[2].clone(), swapped[3].clone());
        swapped[2] = AuditRow { seq: 3, ..b };
        swapped[3] = AuditRow { seq: 4, ..a };
        assert_eq!(
            verify(&swapped, None).first_break,
            Some(ChainBreak::Altered { seq: 3 })
        );
        // A re-chained forgery (valid hashes, wrong predecessor) is still caught.
        let mut forged = rows.clone();
        forged[4] = entry(99).seal(4, GENESIS);
        assert_eq!(
            verify(&forged, None).first_break,
            Some(ChainBreak::Reordered { seq: 5 })
        );
    }

    #[test]
    fn anchors_catch_a_cut_tail_and_bad_signatures() {
        let rows = chain(5);
        let seed = "11".repeat(32);
        let mut anchor = Anchor::new(5, rows[4].hash.clone(), 0);
        anchor.sign(&seed).unwrap();
        assert!(anchor.signed_by(&seed));
        assert!(!anchor.signed_by(&"22".repeat(32)));
        assert_eq!(verify(&rows, Some(&anchor)).first_break, None);
        assert_eq!(
            verify(&rows[..3], Some(&anchor)).first_break,
            Some(ChainBreak::Truncated {
                anchored_seq: 5,
                head_seq: 3
            })
        );
        let mut forged = anchor.clone();
        forged.seq = 4;
        assert_eq!(
            verify(&rows, Some(&forged)).first_break,
            Some(ChainBreak::BadSignature)
        );
        let mut unsigned = Anchor::new(4, "ab".repeat(32), 0);
        assert_eq!(
            verify(&rows, Some(&unsigned)).first_break,
            Some(ChainBreak::AnchorMismatch { seq: 4 })
        );
        unsigned.public_key = Some("00".into());
        assert!(!unsigned.signature_valid());
        assert!(anchor.sign("abc").is_err());
    }
}
