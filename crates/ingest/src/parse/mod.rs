//! Parsing: raw file bytes in, normalised text plus structural spans (pages, headings) out.
//!
//! [`parse`] picks a format from the file extension (case-insensitive) and validates or
//! overrides it by sniffing the content (a `%PDF-` header or a ZIP signature wins over a
//! misleading extension; an unknown extension falls back to text if the bytes look like text).
//! Every parser writes through one normalising text builder, so all formats share the same
//! guarantees: `\r\n`/`\r` become `\n`, control characters (NUL included) are dropped,
//! trailing whitespace on lines is removed, at most two blank lines in a row survive, and the
//! output is capped at a character budget (with a warning when it is cut): the smaller of
//! [`ParseLimits::max_extracted_chars`] and [`ParseLimits::max_chars_per_byte`] times the input
//! size, so a small file cannot expand into a large amount of work.
//!
//! Hostile input is expected: every limit in [`ParseLimits`] is enforced before or while the
//! work is done, never after. `pdf-extract` may panic or loop on crafted files; a
//! [`ParserPool`] runs parses in worker processes that are killed at a deadline and capped in
//! memory and CPU time by the OS, and [`parse_isolated`] runs one on its own thread with
//! `catch_unwind` and a deadline where no worker program is available.
//!
//! Sidecar metadata files (`<file>.metadata.json`, Amazon Bedrock Knowledge Base convention)
//! are read with [`parse_sidecar`].

mod builder;
mod csv;
mod docx;
mod encoding;
mod html;
mod isolate;
mod json;
mod markdown;
mod pdf;
mod pool;
mod sidecar;
mod text;
mod worker;

use std::time::Duration;

use groundwork_core::ErrorCode;
use serde::{Deserialize, Serialize};

pub use isolate::{isolated_parsers_running, parse_isolated, parse_isolated_declared, run_isolated};
pub use pool::{
    ParserPool, PoolConfig, PoolStats, WorkerCommand, register_worker_command, registered_worker_command,
};
pub use sidecar::{MAX_SIDECAR_BYTES, is_sidecar, parse_sidecar, sidecar_encoding};

pub use worker::{WorkerLimits, serve_worker};

use builder::TextBuilder;

/// Identifies the parser implementation; stored with every document for lineage, and bumped
/// whenever a change to the parsers can change the extracted text of an unchanged file (so a
/// re-sync knows to re-parse).
pub fn parser_version() -> &'static str {
    "groundwork-parse/1"
}

/// Document formats the parser understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Plain text (`.txt`, `.text`, `.log`, `.rst`, and unknown text-like files).
    Text,
    /// Markdown (`.md`, `.markdown`).
    Markdown,
    /// HTML (`.html`, `.htm`, `.xhtml`).
    Html,
    /// PDF text layer (`.pdf`).
    Pdf,
    /// Word OOXML (`.docx`).
    Docx,
    /// Comma (or semicolon) separated values (`.csv`).
    Csv,
    /// Tab separated values (`.tsv`, `.tab`).
    Tsv,
    /// A JSON document (`.json`).
    Json,
    /// JSON Lines (`.jsonl`, `.ndjson`).
    Jsonl,
}

/// Extensions that are known binary formats we do not extract (rejected without sniffing).
const UNSUPPORTED_EXTENSIONS: &[&str] = &[
    "doc", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "pages", "key", "numbers", "png", "jpg",
    "jpeg", "gif", "bmp", "tif", "tiff", "webp", "heic", "ico", "svgz", "zip", "gz", "tgz", "bz2", "xz",
    "zst", "7z", "rar", "tar", "exe", "dll", "so", "dylib", "bin", "o", "a", "class", "jar", "wasm", "mp3",
    "mp4", "m4a", "wav", "flac", "ogg", "mov", "avi", "mkv", "webm", "ttf", "otf", "woff", "woff2", "sqlite",
    "db", "parquet", "avro", "iso", "dmg",
];

impl Format {
    /// The format implied by the file extension of `path` (case-insensitive), if known.
    pub fn from_path(path: &str) -> Option<Format> {
        let ext = extension(path)?;
        Some(match ext.as_str() {
            "txt" | "text" | "log" | "rst" => Format::Text,
            "md" | "markdown" | "mdown" | "mkd" => Format::Markdown,
            "html" | "htm" | "xhtml" => Format::Html,
            "pdf" => Format::Pdf,
            "docx" => Format::Docx,
            "csv" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            "json" => Format::Json,
            "jsonl" | "ndjson" => Format::Jsonl,
            _ => return None,
        })
    }

    /// The lowercase name used in serialised form (`"pdf"`, `"markdown"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
        }
    }

    /// Whether the format is record-oriented (one record per line), which the chunker uses to
    /// treat every line break as a hard boundary.
    pub fn is_line_oriented(self) -> bool {
        matches!(self, Format::Csv | Format::Tsv | Format::Json | Format::Jsonl)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lowercased extension of the last path component (`/` or `\` separated), if any.
fn extension(path: &str) -> Option<String> {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}

/// Resource limits for one parse. Every limit is checked before or during the work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseLimits {
    /// Largest input accepted at all (default 64 MiB); checked before any work.
    pub max_bytes: u64,
    /// Cap on extracted text, in Unicode scalar values (default 20 M); longer output is cut
    /// with a warning.
    pub max_extracted_chars: usize,
    /// Cap on extracted characters per input byte (default 32), so that a small file cannot
    /// expand into much text (a CSV repeats its header names on every row); applied with a
    /// floor of [`MIN_CHAR_BUDGET`] characters. Longer output is cut with a warning.
    pub max_chars_per_byte: usize,
    /// Most columns a table file (CSV, TSV) may have (default 1,000); a wider file fails with
    /// `too_wide` before any row is read.
    pub max_table_columns: usize,
    /// Most cells read from a table file (default 5 M); the rest are cut with a warning.
    pub max_table_cells: usize,
    /// Deepest JSON nesting accepted (default 64); checked by a pre-scan before deserialising.
    pub max_json_depth: usize,
    /// Largest decompressed ZIP entry read (default 100 MiB), declared or actual.
    pub max_zip_entry_bytes: u64,
    /// Largest decompressed/compressed ratio of a ZIP entry (default 100), declared or actual.
    pub max_zip_ratio: u64,
    /// Deadline for [`parse_isolated`] (default 30 s). [`parse`] itself does not time out.
    pub timeout: Duration,
}

/// The character budget never falls below this, whatever the input size.
pub const MIN_CHAR_BUDGET: usize = 64 * 1024;

impl ParseLimits {
    /// The most characters extracted from an input of `size` bytes.
    pub fn char_budget(&self, size: usize) -> usize {
        size.saturating_mul(self.max_chars_per_byte)
            .max(MIN_CHAR_BUDGET)
            .min(self.max_extracted_chars)
    }
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bytes: 64 * 1024 * 1024,
            max_extracted_chars: 20_000_000,
            max_chars_per_byte: 32,
            max_table_columns: 1_000,
            max_table_cells: 5_000_000,
            max_json_depth: 64,
            max_zip_entry_bytes: 100 * 1024 * 1024,
            max_zip_ratio: 100,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Where a page starts in [`Extracted::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageSpan {
    /// 1-based page number.
    pub page: u32,
    /// Byte offset into the text.
    pub start: usize,
}

/// A heading and where its title starts in [`Extracted::text`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadingSpan {
    /// 1..=6 for section headings (DOCX may go to 9); 0 for a document title (HTML `<title>`,
    /// DOCX `Title` style).
    pub level: u8,
    /// The heading text as it appears in the extracted text (markup stripped).
    pub title: String,
    /// Byte offset into the text where the title starts.
    pub start: usize,
}

/// The result of a parse: normalised text plus spans pointing into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extracted {
    /// Normalised text (see the module docs).
    pub text: String,
    /// The format the bytes were parsed as (after sniffing).
    pub format: Format,
    /// Source text encoding for text formats (`"utf-8"`, `"utf-16le"`, `"utf-16be"`,
    /// `"windows-1252"`); `None` for PDF and DOCX.
    pub encoding: Option<String>,
    /// Page starts, ascending (PDF only).
    pub pages: Vec<PageSpan>,
    /// Headings in document order.
    pub headings: Vec<HeadingSpan>,
    /// Non-fatal problems (truncation, skipped lines, format mismatch, ...).
    pub warnings: Vec<String>,
}

/// Why a file could not be parsed. Each variant has a stable machine code ([`ParseError::code`])
/// for sync reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ParseError {
    /// The input is larger than the configured limit.
    #[error("file too large: {size} bytes (limit {limit})")]
    TooLarge {
        /// Input size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file is empty (zero bytes, or only whitespace for text formats).
    #[error("empty file")]
    Empty,
    /// A text format (by extension) whose content is binary.
    #[error("binary content in a text file")]
    Binary,
    /// A format we do not extract.
    #[error("unsupported format: {0}")]
    Unsupported(String),
    /// The file is malformed (truncated PDF, broken ZIP, unparseable JSON, ...).
    #[error("corrupt file: {0}")]
    Corrupt(String),
    /// JSON nested deeper than the limit.
    #[error("nesting deeper than {limit} levels")]
    TooDeep {
        /// The configured depth limit.
        limit: usize,
    },
    /// A table file with more columns than the limit.
    #[error("{columns} columns, over the limit of {limit} ([ingest] max_table_columns)")]
    TooWide {
        /// Columns found.
        columns: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A ZIP entry whose declared or actual size or compression ratio is beyond the limits.
    #[error("zip bomb: {0}")]
    ZipBomb(String),
    /// The isolated parse did not finish in time (see [`parse_isolated`]).
    #[error("parse timed out after {0:?}")]
    Timeout(Duration),
    /// The parser panicked (caught; see [`parse_isolated`]), or its worker process died of
    /// something other than a limit (see [`ParserPool`]).
    #[error("parser panicked: {0}")]
    Panic(String),
    /// The parser's worker process outgrew its memory cap on this document (see [`ParserPool`]).
    #[error("parser ran out of memory: {0}")]
    OutOfMemory(String),
    /// No parser worker process could be started or spoken to: a fault of the installation,
    /// not of the document (a sync stops on it without recording the document as failed).
    #[error("parser workers unavailable: {0}")]
    Unavailable(String),
    /// A sidecar metadata file that does not follow the expected shape.
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
}

impl ParseError {
    /// The stable code of the failure, a row of the one error table.
    pub fn code(&self) -> ErrorCode {
        match self {
            ParseError::TooLarge { .. } => ErrorCode::TooLarge,
            ParseError::Empty => ErrorCode::Empty,
            ParseError::Binary => ErrorCode::Binary,
            ParseError::Unsupported(_) => ErrorCode::Unsupported,
            ParseError::Corrupt(_) => ErrorCode::Corrupt,
            ParseError::TooDeep { .. } => ErrorCode::TooDeep,
            ParseError::TooWide { .. } => ErrorCode::TooWide,
            ParseError::ZipBomb(_) => ErrorCode::ZipBomb,
            ParseError::Timeout(_) => ErrorCode::Timeout,
            ParseError::Panic(_) => ErrorCode::Panic,
            ParseError::OutOfMemory(_) => ErrorCode::OutOfMemory,
            ParseError::Unavailable(_) => ErrorCode::Internal,
            ParseError::InvalidMetadata(_) => ErrorCode::InvalidMetadata,
        }
    }
}

/// What the first bytes say the content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Pdf,
    Zip,
    Other,
}

fn sniff(bytes: &[u8]) -> Sniffed {
    // The PDF spec allows junk before the header; readers accept it within the first 1 KiB.
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        Sniffed::Pdf
    } else if bytes.starts_with(b"PK\x03\x04") {
        Sniffed::Zip
    } else {
        Sniffed::Other
    }
}

/// Parses `bytes` (the content of the file at `path_hint`) into normalised text.
///
/// Runs on the calling thread. Panics inside the PDF library are caught and reported as
/// [`ParseError::Panic`], but a hostile PDF can also make it loop for a long time; use
/// [`parse_isolated`] for untrusted input.
pub fn parse(bytes: &[u8], path_hint: &str, limits: &ParseLimits) -> Result<Extracted, ParseError> {
    parse_declared(bytes, path_hint, limits, None)
}

/// [`parse`], with the text encoding declared from outside the bytes (a sidecar's
/// `encoding`), which wins over detection and in-document declarations.
pub fn parse_declared(
    bytes: &[u8],
    path_hint: &str,
    limits: &ParseLimits,
    declared_encoding: Option<&str>,
) -> Result<Extracted, ParseError> {
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(ParseError::TooLarge {
            size,
            limit: limits.max_bytes,
        });
    }
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    let by_ext = Format::from_path(path_hint);
    let sniffed = sniff(bytes);
    let mut warnings = Vec::new();
    let format = match (by_ext, sniffed) {
        (Some(f @ (Format::Pdf | Format::Docx)), _) => f,
        (Some(f), Sniffed::Pdf) => {
            warnings.push(format!("content is a PDF despite the {f} extension"));
            Format::Pdf
        }
        (Some(f), Sniffed::Zip) => {
            warnings.push(format!("content is a ZIP archive despite the {f} extension"));
            Format::Docx
        }
        (Some(f), Sniffed::Other) => f,
        (None, Sniffed::Pdf) => Format::Pdf,
        (None, Sniffed::Zip) => Format::Docx,
        (None, Sniffed::Other) => {
            if let Some(ext) = extension(path_hint)
                && UNSUPPORTED_EXTENSIONS.contains(&ext.as_str())
            {
                return Err(ParseError::Unsupported(format!(".{ext} files")));
            }
            if encoding::looks_binary(bytes) {
                return Err(ParseError::Unsupported(
                    "binary content of unknown type".to_owned(),
                ));
            }
            Format::Text
        }
    };

    let budget = limits.char_budget(bytes.len());
    let mut b = TextBuilder::new(budget);
    let mut pages = Vec::new();
    let mut headings = Vec::new();
    let mut encoding_name = None;
    match format {
        Format::Pdf => {
            if sniffed != Sniffed::Pdf {
                return Err(ParseError::Corrupt(
                    "not a PDF: no %PDF- header in the first 1 KiB".to_owned(),
                ));
            }
            pages = pdf::parse(bytes, &mut b, &mut warnings)?;
        }
        Format::Docx => {
            if sniffed != Sniffed::Zip {
                return Err(ParseError::Corrupt("not a DOCX: no ZIP signature".to_owned()));
            }
            headings = docx::parse(bytes, limits, &mut b)?;
        }
        _ => {
            let decoded = encoding::decode(bytes, declared_encoding)?;
            warnings.extend(decoded.warnings);
            encoding_name = Some(decoded.encoding.to_owned());
            if decoded.text.trim().is_empty() {
                return Err(ParseError::Empty);
            }
            let text = decoded.text.as_str();
            match format {
                Format::Markdown => headings = markdown::parse(text, &mut b),
                Format::Html => headings = html::parse(text, &mut b),
                Format::Csv => csv::parse(text, None, limits, &mut b, &mut warnings)?,
                Format::Tsv => csv::parse(text, Some('\t'), limits, &mut b, &mut warnings)?,
                Format::Json => json::parse_json(text, limits, &mut b)?,
                Format::Jsonl => json::parse_jsonl(text, limits, &mut b, &mut warnings)?,
                _ => text::parse(text, &mut b),
            }
        }
    }

    let (text, truncated) = b.finish();
    if truncated {
        let which = if budget < limits.max_extracted_chars {
            format!(
                "{} per input byte ([ingest] max_chars_per_byte)",
                limits.max_chars_per_byte
            )
        } else {
            "[ingest] max_extracted_chars".to_owned()
        };
        warnings.push(format!(
            "extracted text truncated at {budget} characters: {which}"
        ));
    }
    if text.is_empty() && !matches!(format, Format::Pdf) {
        warnings.push("no text extracted".to_owned());
    }
    let len = text.len();
    for p in &mut pages {
        p.start = p.start.min(len);
    }
    headings.retain(|h| h.start <= len && !h.title.is_empty());
    Ok(Extracted {
        text,
        format,
        encoding: encoding_name,
        pages,
        headings,
        warnings,
    })
}
