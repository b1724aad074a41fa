//! Domain types shared by every groundwork crate: identifiers, metadata filters, search hits,
//! answers with citations, and the stable error-code table.
//!
//! This crate does no I/O. Types here are plain data with public fields so that engines
//! (`store`, `index`, `ingest`) and faces (`cli`, later `server`) agree on one vocabulary.

pub mod answer;
pub mod error;
pub mod filter;
pub mod guardrail;
pub mod hit;
pub mod kb;
pub mod llm;
pub mod mutate;
pub mod rng;
pub mod stats;

pub use answer::{Answer, AnswerMode, AnswerSentence, Citation, Reference, TokenUsage};
pub use error::ErrorCode;
pub use filter::{Filter, FilterError};
pub use hit::Hit;
pub use kb::{
    ChunkingConfig, EmbedderConfig, KbKind, KnowledgeBase, KnowledgeBaseConfig, Source, SourceConfig,
};
pub use llm::{LlmConfig, LlmLimits};

/// Row id of a knowledge base in the store.
pub type KbId = i64;
/// Row id of a source in the store.
pub type SourceId = i64;
/// Row id of a document in the store; stable across re-syncs of the same URI.
pub type DocumentId = i64;
/// Row id of a chunk in the store; a new id is issued whenever a document is re-chunked.
pub type ChunkId = i64;

/// Milliseconds since the Unix epoch, the one time representation in the store.
pub type UnixMillis = i64;

/// Current time as [`UnixMillis`]: the one clock that expiry (grants, tokens), audit times
/// and the store read.
pub fn now_millis() -> UnixMillis {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
        .saturating_add(clock_skew_ms())
}

/// Debug builds only (which the test suite runs): `GROUNDWORK_TEST_CLOCK_SKEW_MS` moves
/// [`now_millis`] forward or back, so tests of expiry run the binary "an hour later" instead of
/// sleeping. Release builds have no such variable.
#[cfg(debug_assertions)]
fn clock_skew_ms() -> i64 {
    static SKEW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *SKEW.get_or_init(|| {
        std::env::var("GROUNDWORK_TEST_CLOCK_SKEW_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

#[cfg(not(debug_assertions))]
fn clock_skew_ms() -> i64 {
    0
}

/// Formats [`UnixMillis`] as RFC 3339 (UTC, millisecond precision).
pub fn format_millis(ms: UnixMillis) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Hex-encoded SHA-256 of `bytes`; the content hash used for documents and chunk texts.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_leap_day() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }
}
