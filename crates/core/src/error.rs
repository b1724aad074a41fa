//! The one table of error codes.
//!
//! Invariant: every code a user can see — in an HTTP error body, a CLI exit status and its
//! `--json` error, an MCP tool error, or a per-document sync failure — is one row of the table
//! below, with its name, HTTP status, CLI exit code and one-line meaning. Scripts match on the
//! code, never on message text, so a code, once published, keeps its meaning. The error table
//! in ARCHITECTURE.md is rendered from this one ([`ErrorCode::markdown_table`]) and a test
//! keeps the two equal.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a code can appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The outcome of a request (HTTP status, exit code).
    Request,
    /// A per-document (or per-entry) failure recorded by a sync; the sync itself succeeds.
    Document,
    /// Both.
    Both,
}

macro_rules! error_codes {
    ($( $variant:ident = $name:literal, $http:expr, $exit:expr, $scope:ident, $meaning:literal; )*) => {
        /// A stable error code: one row of the table (see the module documentation).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $( #[doc = $meaning] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$( ErrorCode::$variant, )*];

            /// The code as scripts see it, e.g. `"invalid_request"`.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $name, )* }
            }

            /// The HTTP status of a request that fails with this code; `None` for codes that
            /// only describe a document.
            pub fn http_status(self) -> Option<u16> {
                match self { $( ErrorCode::$variant => $http, )* }
            }

            /// Process exit code for the CLI; distinct per class so scripts can branch on it.
            /// `None` for codes that only describe a document.
            pub fn exit_code_if_request(self) -> Option<i32> {
                match self { $( ErrorCode::$variant => $exit, )* }
            }

            pub fn scope(self) -> Scope {
                match self { $( ErrorCode::$variant => Scope::$scope, )* }
            }

            /// What the code means, in one line.
            pub fn meaning(self) -> &'static str {
                match self { $( ErrorCode::$variant => $meaning, )* }
            }

            /// The code named `name`, if it is one.
            pub fn from_name(name: &str) -> Option<ErrorCode> {
                match name { $( $name => Some(ErrorCode::$variant), )* _ => None }
            }
        }
    };
}

error_codes! {
    InvalidRequest = "invalid_request", Some(400), Some(2), Request,
        "The request is malformed: bad JSON or flag, unknown field, bad filter, `k` out of range, query or SQL too long, a statement that is not one read-only query.";
    Unauthenticated = "unauthenticated", Some(401), Some(10), Request,
        "The credential is missing, malformed, unknown, revoked or expired (one message for all).";
    Forbidden = "forbidden", Some(403), Some(11), Request,
        "Authenticated, but not allowed (administration, or a grant that does not cover the target).";
    NotFound = "not_found", Some(404), Some(3), Request,
        "No such knowledge base, source, table, job, record or endpoint — or one the caller may not know of.";
    MethodNotAllowed = "method_not_allowed", Some(405), Some(2), Request,
        "The endpoint exists, but not with that HTTP method.";
    AlreadyExists = "already_exists", Some(409), Some(4), Request,
        "The thing to create exists already.";
    Busy = "busy", Some(409), Some(5), Request,
        "Another process holds a lock the operation needs (a sync of that knowledge base, an index writer).";
    PayloadTooLarge = "payload_too_large", Some(413), Some(2), Request,
        "The request body is over `[server] max_body_bytes`.";
    UnsupportedMediaType = "unsupported_media_type", Some(415), Some(2), Request,
        "The request body was not sent as `application/json`.";
    ResourcesExhausted = "resources_exhausted", Some(422), Some(14), Request,
        "The query needed more memory than `[sql] max_memory_mb` allows; narrow it or raise the limit.";
    Internal = "internal", Some(500), Some(1), Request,
        "A bug or an environment failure; the detail is in the log, never in the response.";
    Corrupt = "corrupt", Some(500), Some(9), Both,
        "A stored or derived file is damaged (rebuild or restore), or a document's bytes are malformed for its format.";
    SourceUnavailable = "source_unavailable", Some(502), Some(7), Request,
        "A folder, bucket or database could not be listed, read or reached.";
    GenerationFailed = "generation_failed", Some(502), Some(12), Request,
        "The language model was unreachable, timed out, rate limited past its retries, or answered garbage.";
    NoQuery = "no_query", Some(422), Some(15), Request,
        "No model is configured to write SQL, or the model wrote no query that passed the checks within its attempts.";
    ModelUnavailable = "model_unavailable", Some(503), Some(6), Request,
        "The embedding model is not installed or cannot be loaded, or a remote embedder is unreachable.";
    NotInitialised = "not_initialised", Some(503), Some(8), Request,
        "The home directory has not been initialised, or its store cannot be opened.";
    Overloaded = "overloaded", Some(503), Some(5), Request,
        "The server is at its concurrency limit or over `[server] memory_limit_mb`; retry shortly.";
    Draining = "draining", Some(503), Some(5), Request,
        "The server is shutting down and takes no new requests.";
    Timeout = "timeout", Some(504), Some(13), Both,
        "The request outlived its time limit, or a parser outlived its per-document limit.";
    TooLarge = "too_large", None, None, Document,
        "The object is over `[ingest] max_file_bytes`, or its extracted text over its bound.";
    Empty = "empty", None, None, Document,
        "The document holds no text.";
    Binary = "binary", None, None, Document,
        "The bytes are not text in any supported encoding or format.";
    Unsupported = "unsupported", None, None, Document,
        "The format is recognised but not supported.";
    TooDeep = "too_deep", None, None, Document,
        "Nesting (JSON, XML, folders) is deeper than the parser's bound.";
    TooWide = "too_wide", None, None, Document,
        "A table file (CSV, TSV) has more columns than `[ingest] max_table_columns`.";
    ZipBomb = "zip_bomb", None, None, Document,
        "A compressed entry expands past its size or ratio bound.";
    Panic = "panic", None, None, Document,
        "The parser crashed on this document; the crash was contained.";
    OutOfMemory = "out_of_memory", None, None, Document,
        "The parser's worker process outgrew `[ingest] parse_memory_mb` on this document and was stopped.";
    InvalidMetadata = "invalid_metadata", None, None, Document,
        "The document's own metadata could not be read.";
    BadSidecar = "bad_sidecar", None, None, Document,
        "The `.metadata.json` sidecar is malformed, too large, or cannot be read safely (a link).";
    Unreadable = "unreadable", None, None, Document,
        "The object (or a sub-folder) could not be read; everything under a failed sub-folder is kept.";
    BadName = "bad_name", None, None, Document,
        "The name is not UTF-8 or holds control characters, so it cannot be a URI; rename it.";
    NotAFile = "not_a_file", None, None, Document,
        "A FIFO, socket or device, not a regular file.";
    LinkNotFollowed = "link_not_followed", None, None, Document,
        "A symbolic link inside the source folder; followed only with the source's `follow_links`.";
    LinkOutsideRoot = "link_outside_root", None, None, Document,
        "A symbolic link that resolves outside the source folder; never read.";
    LinkLoop = "link_loop", None, None, Document,
        "A symbolic link that loops (directly or back into a folder above it).";
    LinkBroken = "link_broken", None, None, Document,
        "A symbolic link whose target does not exist.";
}

impl ErrorCode {
    /// Process exit code for the CLI. Document-only codes never end a command; should one reach
    /// the CLI, it exits as `internal`.
    pub fn exit_code(self) -> i32 {
        self.exit_code_if_request().unwrap_or(1)
    }

    /// The table as ARCHITECTURE.md shows it.
    pub fn markdown_table() -> String {
        let mut out = String::from("| code | HTTP | exit | meaning |\n|---|---|---|---|\n");
        for code in ErrorCode::ALL {
            let dash = || "—".to_string();
            let http = code.http_status().map_or_else(dash, |s| s.to_string());
            let exit = code.exit_code_if_request().map_or_else(dash, |e| e.to_string());
            let scope = match code.scope() {
                Scope::Request => "",
                Scope::Document => " *(per document)*",
                Scope::Both => " *(also per document)*",
            };
            out.push_str(&format!(
                "| `{}` | {http} | {exit} | {}{scope} |\n",
                code.as_str(),
                code.meaning()
            ));
        }
        out
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ErrorCode::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code `{name}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(*code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
            assert_eq!(
                code.http_status().is_some(),
                code.scope() != Scope::Document,
                "{code}"
            );
            assert_eq!(
                code.http_status().is_some(),
                code.exit_code_if_request().is_some()
            );
        }
    }

    #[test]
    fn request_classes_keep_their_published_exit_codes() {
        let published = [
            ("internal", 1),
            ("invalid_request", 2),
            ("not_found", 3),
            ("already_exists", 4),
            ("busy", 5),
            ("model_unavailable", 6),
            ("source_unavailable", 7),
            ("not_initialised", 8),
            ("corrupt", 9),
        ];
        for (name, exit) in published {
            assert_eq!(ErrorCode::from_name(name).unwrap().exit_code(), exit, "{name}");
        }
    }
}
