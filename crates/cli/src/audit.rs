//! The audit log and lineage: `audit verify|anchor|query|export` and `lineage`.
//!
//! Grammar, then dispatch, then printing.

use crate::output::print_json;
use clap::{Args, Subcommand};
use groundwork_core::format_millis;
use groundwork_service::{AnchorLocation, AuditQuery, AuditRow, Groundwork, parse_time_or_duration};

// ---- grammar ------------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; name the first altered, removed or reordered record.
    Verify {
        /// Also check an anchor written by `audit anchor` (catches a removed tail): a file or
        /// an `s3://bucket/key` object.
        #[arg(long)]
        anchor: Option<String>,
        /// S3-compatible endpoint of an `s3://` anchor.
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Write the chain head, signed when a key is configured, to a file or to an
    /// `s3://bucket/key` object that someone holding the database cannot rewrite.
    Anchor {
        location: String,
        /// S3-compatible endpoint of an `s3://` location.
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Find records by actor, action, time range or document.
    Query {
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// Export records as JSON lines (for a SIEM).
    Export {
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum LineageCommand {
    /// Where a chunk came from: document, object version, hash, parser, chunker, embedder.
    Chunk { id: i64 },
    /// An audited search or answer back to every chunk, object version and model it used.
    Answer { seq: i64 },
    /// Every audited search or answer that used a document (by URI).
    Document { uri: String },
    /// An audited SQL query back to the tables it read, with their versions then and now.
    Query { seq: i64 },
}

#[derive(Debug, Args)]
pub struct AuditFilterArgs {
    #[arg(long)]
    actor: Option<String>,
    #[arg(long)]
    action: Option<String>,
    /// Records at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Records before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Records whose retrieved chunks came from this document URI.
    #[arg(long)]
    document: Option<String>,
    /// Records after this sequence number.
    #[arg(long)]
    after: Option<i64>,
    #[arg(long)]
    limit: Option<usize>,
}

impl AuditFilterArgs {
    fn query(&self) -> anyhow::Result<AuditQuery> {
        let now = groundwork_core::now_millis();
        let time = |t: &Option<String>| t.as_deref().map(|t| parse_time_or_duration(t, now)).transpose();
        Ok(AuditQuery {
            actor: self.actor.clone(),
            action: self.action.clone(),
            since: time(&self.since)?,
            until: time(&self.until)?,
            document_uri: self.document.clone(),
            after_seq: self.after,
            limit: self.limit,
        })
    }
}

// ---- dispatch -----------------------------------------------------------------------------

pub fn audit_command(groundwork: &Groundwork, command: AuditCommand, json: bool) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { anchor, endpoint } => {
            let anchor = anchor
                .map(|anchor| AnchorLocation::parse(&anchor, endpoint))
                .transpose()?;
            let report = groundwork.audit_verify(anchor.as_ref())?;
            if json {
                print_json(&report)?;
            } else if let Some(problem) = &report.problem {
                println!(
                    "audit log BROKEN after {} records: {problem}",
                    report.verification.records
                );
            } else {
                println!("audit log intact: {} records", report.verification.records);
            }
            if !report.intact {
                // The report above is the answer; the exit code tells scripts it failed.
                std::process::exit(groundwork_core::ErrorCode::Corrupt.exit_code());
            }
        }
        AuditCommand::Anchor { location, endpoint } => {
            let location = AnchorLocation::parse(&location, endpoint)?;
            let anchor = groundwork.audit_anchor(&location)?;
            if json {
                print_json(&anchor)?;
            } else {
                let signed = if anchor.signature.is_some() {
                    ", signed"
                } else {
                    ""
                };
                println!("anchored record {} to {location}{signed}", anchor.seq);
            }
        }
        AuditCommand::Query { filter } => {
            let rows = groundwork.audit_query(&filter.query()?)?;
            if json {
                print_json(&rows)?;
            } else {
                rows.iter().for_each(print_record);
            }
        }
        AuditCommand::Export { format, filter } => {
            anyhow::ensure!(format == "jsonl", "the only export format is jsonl");
            for row in groundwork.audit_query(&filter.query()?)? {
                println!("{}", serde_json::to_string(&row)?);
            }
        }
    }
    Ok(())
}

pub fn lineage_command(groundwork: &Groundwork, command: LineageCommand, json: bool) -> anyhow::Result<()> {
    match command {
        LineageCommand::Chunk { id } => {
            let lineage = groundwork.chunk_lineage(id)?;
            if json {
                print_json(&lineage)?;
            } else {
                println!(
                    "chunk {} (#{} of document {}, chars {}..{}) in `{}`",
                    lineage.chunk_id,
                    lineage.ordinal,
                    lineage.document_id,
                    lineage.char_start,
                    lineage.char_end,
                    lineage.knowledge_base
                );
                println!(
                    "  source   {} @ {}",
                    lineage.document_uri,
                    lineage.object_version.as_deref().unwrap_or("-")
                );
                println!(
                    "  content  sha256 {}",
                    lineage.content_sha256.as_deref().unwrap_or("-")
                );
                println!(
                    "  parsed   {} ({}, {})",
                    lineage.parser.as_deref().unwrap_or("-"),
                    lineage.format.as_deref().unwrap_or("-"),
                    lineage.encoding.as_deref().unwrap_or("-")
                );
                println!("  chunked  {}", lineage.chunker.as_deref().unwrap_or("-"));
                println!("  embedded {}", lineage.embedder.as_deref().unwrap_or("-"));
            }
        }
        LineageCommand::Answer { seq } => {
            let lineage = groundwork.answer_lineage(seq)?;
            if json {
                print_json(&lineage)?;
            } else {
                print_record(&lineage.record);
                println!("  models: {}", lineage.models.join(", "));
                for chunk in &lineage.chunks {
                    let state = match (&chunk.current, chunk.unchanged_since) {
                        (Some(_), true) => "unchanged since",
                        (Some(_), false) => "document changed since",
                        (None, _) => "chunk no longer exists",
                    };
                    println!(
                        "  chunk {}  {} @ {}  ({state})",
                        chunk.used.chunk_id,
                        chunk.used.document_uri,
                        chunk.used.object_version.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        LineageCommand::Document { uri } => {
            let rows = groundwork.audit_query(&AuditQuery {
                document_uri: Some(uri),
                ..AuditQuery::default()
            })?;
            if json {
                print_json(&rows)?;
            } else {
                rows.iter().for_each(print_record);
            }
        }
        LineageCommand::Query { seq } => {
            let lineage = groundwork.query_lineage(seq)?;
            if json {
                print_json(&lineage)?;
            } else {
                print_record(&lineage.record);
                for table in &lineage.tables {
                    let now = table.current_version.as_deref().unwrap_or("(gone)");
                    println!(
                        "  {} at version {} (now {now}) {}",
                        table.used["name"].as_str().unwrap_or("-"),
                        table.used["version"].as_str().unwrap_or("-"),
                        table.used["location"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(())
}

// ---- printing -----------------------------------------------------------------------------

fn print_record(row: &AuditRow) {
    println!(
        "{:>6}  {}  {}({})  {}  {}  {}{}  {} chunks",
        row.seq,
        format_millis(row.at),
        row.actor,
        row.auth,
        row.action,
        row.target.as_deref().unwrap_or("-"),
        row.outcome,
        row.code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default(),
        row.chunk_refs().len()
    );
}
