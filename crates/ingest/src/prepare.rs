//! One listed object into what a sync commits for it: read, hash, parse (in a worker process
//! when the sync has a pool), chunk. This is the part of a sync that runs on several threads
//! at once; it touches neither the store nor the indexes.
//!
//! Invariant: the object's own faults (unreadable, too large, a bad sidecar, a parse error)
//! become a recorded failure of that document, never an error of the sync; only a parser that
//! cannot be reached at all ([`Prepared::ParserUnavailable`]) stops the sync, recording
//! nothing against the document.

use crate::chunk::{self, Tokenize};
use crate::parse::{self, ParseError, ParseLimits, ParserPool};
use crate::pipeline::StageClocks;
use groundwork_core::{ChunkingConfig, ErrorCode, sha256_hex};
use groundwork_embed::Embedder;
use groundwork_objects::{Connection, ObjectEntry, ObjectError};
use groundwork_store::{ChunkWrite, DocumentState, DocumentWrite, FailureWrite, VersionTouch};
use serde_json::Map;

/// A listed object that needs reading, with its sidecar if any.
pub(crate) struct Pending {
    pub source_index: usize,
    pub source_id: i64,
    pub entry: ObjectEntry,
    pub sidecar: Option<ObjectEntry>,
    pub state: Option<DocumentState>,
    /// Some chunk of the stored document has no vector of this sync's model: chunk and embed
    /// it again even if its content is unchanged.
    pub reembed: bool,
}

pub(crate) enum Prepared {
    /// Same content and sidecar as stored: only the version fields move.
    Unchanged(VersionTouch),
    /// New text, chunked; each chunk carries its token count from the chunker.
    Parsed(DocumentWrite),
    Failed(FailureWrite),
    /// No parser could be reached: the sync stops, recording nothing against the document.
    ParserUnavailable(String),
}

/// What preparing a document needs from the sync, shared by the threads that prepare.
pub(crate) struct Preparer<'a> {
    pub limits: &'a ParseLimits,
    pub pool: Option<&'a ParserPool>,
    pub chunking: &'a ChunkingConfig,
    pub embedder: &'a dyn Embedder,
    pub max_chunks_per_document: usize,
    pub clocks: &'a StageClocks,
}

/// Adapts an [`Embedder`]'s tokenizer to the chunker.
struct EmbedderTokens<'a>(&'a dyn Embedder);

impl Tokenize for EmbedderTokens<'_> {
    fn token_spans(&self, text: &str) -> Vec<(usize, usize)> {
        self.0.token_spans(text)
    }
}

impl Preparer<'_> {
    /// Reads, hashes, parses and chunks one object. Never fails the sync: every problem with
    /// the object itself becomes a recorded failure.
    pub fn prepare(&self, item: &Pending, reader: &Connection) -> Prepared {
        let entry = &item.entry;
        let limits = self.limits;
        let fail = |code: ErrorCode, message: String| {
            Prepared::Failed(FailureWrite {
                source_id: item.source_id,
                uri: entry.uri.clone(),
                object_version: Some(entry.version.clone()),
                sidecar_version: item.sidecar.as_ref().map(|s| s.version.clone()),
                size: entry.size,
                modified_at: entry.modified_at,
                error_code: code.as_str().to_string(),
                error_message: message,
            })
        };
        let read = self.clocks.read.time(|| {
            let bytes = reader.read(entry, limits.max_bytes)?;
            let content_sha256 = sha256_hex(&bytes);
            Ok::<_, ObjectError>((bytes, content_sha256))
        });
        let (bytes, content_sha256) = match read {
            Ok(read) => read,
            Err(ObjectError::TooLarge { size, limit, .. }) => {
                return fail(
                    ErrorCode::TooLarge,
                    format!("{size} bytes is over the limit of {limit}"),
                );
            }
            Err(e) => return fail(ErrorCode::Unreadable, e.to_string()),
        };
        let sidecar_version = item.sidecar.as_ref().map(|s| s.version.clone());
        if let Some(state) = &item.state
            && state.content_sha256.as_deref() == Some(content_sha256.as_str())
            && state.sidecar_version == sidecar_version
            && !item.reembed
        {
            return Prepared::Unchanged(VersionTouch {
                document_id: state.id,
                object_version: Some(entry.version.clone()),
                size: entry.size,
                modified_at: entry.modified_at,
            });
        }
        let (metadata, declared_encoding) = match &item.sidecar {
            None => (Map::new(), None),
            Some(sidecar) => match self.clocks.read.time(|| {
                reader
                    .read(sidecar, 64 * 1024)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        let metadata = parse::parse_sidecar(&b).map_err(|e| e.to_string())?;
                        Ok((metadata, parse::sidecar_encoding(&b)))
                    })
            }) {
                Ok(read) => read,
                Err(message) => return fail(ErrorCode::BadSidecar, format!("{}: {message}", sidecar.uri)),
            },
        };
        let parsed = self.clocks.parse.time(|| match self.pool {
            Some(pool) => pool.parse(&bytes, &entry.uri, limits, declared_encoding.as_deref()),
            None => parse::parse_isolated_declared(
                bytes.to_vec(),
                entry.uri.clone(),
                limits.clone(),
                declared_encoding,
            ),
        });
        drop(bytes);
        let extracted = match parsed {
            Ok(extracted) => extracted,
            Err(ParseError::Unavailable(message)) => return Prepared::ParserUnavailable(message),
            Err(e) => return fail(e.code(), e.to_string()),
        };
        let (chunks, warnings) = self.clocks.chunk.time(|| {
            let strategy = chunking_strategy(self.chunking);
            let mut drafts = chunk::chunk(&extracted, &strategy, &EmbedderTokens(self.embedder));
            let mut warnings = extracted.warnings.clone();
            let max_chunks = self.max_chunks_per_document.max(1);
            if drafts.len() > max_chunks {
                warnings.push(format!(
                    "indexed the first {max_chunks} of {} chunks ([ingest] max_chunks_per_document)",
                    drafts.len()
                ));
                drafts.truncate(max_chunks);
            }
            let chunks: Vec<ChunkWrite> = drafts
                .into_iter()
                .map(|draft| ChunkWrite {
                    text_sha256: sha256_hex(draft.text.as_bytes()),
                    text: draft.text,
                    char_start: draft.char_start,
                    char_end: draft.char_end,
                    page: draft.page,
                    heading: draft.heading,
                    token_count: draft.token_count,
                })
                .collect();
            (chunks, warnings)
        });
        Prepared::Parsed(DocumentWrite {
            source_id: item.source_id,
            uri: entry.uri.clone(),
            object_version: Some(entry.version.clone()),
            size: entry.size,
            modified_at: entry.modified_at,
            content_sha256,
            sidecar_version,
            metadata,
            format: extracted.format.as_str().to_string(),
            encoding: extracted.encoding.clone(),
            warnings,
            parser: parse::parser_version().to_string(),
            chunker: serde_json::to_string(self.chunking).unwrap_or_default(),
            embedder: self.embedder.fingerprint().to_string(),
            chunks,
        })
    }
}

fn chunking_strategy(config: &ChunkingConfig) -> chunk::ChunkingStrategy {
    match *config {
        ChunkingConfig::Default {
            max_tokens,
            overlap_tokens,
        } => chunk::ChunkingStrategy::Default {
            max_tokens,
            overlap_tokens,
        },
        ChunkingConfig::FixedSize {
            max_tokens,
            overlap_percent,
        } => chunk::ChunkingStrategy::FixedSize {
            max_tokens,
            overlap_percent,
        },
        ChunkingConfig::None => chunk::ChunkingStrategy::None,
    }
}
