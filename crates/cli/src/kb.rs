//! Knowledge bases, their sources, sync and indexes: `kb`, `source`, `sync`, `index`.
//!
//! Grammar, then dispatch (one call into the service per command), then printing.

use crate::output::{SyncProgress, print_json, rate};
use clap::{Args, Subcommand, ValueEnum};
use groundwork_core::{ChunkingConfig, KbKind, KnowledgeBaseConfig, SourceConfig};
use groundwork_service::{Groundwork, IndexStatus, SyncReport};
use std::time::Duration;

// ---- grammar ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChunkingArg {
    Default,
    FixedSize,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Documents,
    Tables,
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Create a knowledge base.
    Create {
        name: String,
        /// What it holds: documents (searched and answered from) or tables (queried with SQL).
        #[arg(long, value_enum, default_value = "documents")]
        kind: KindArg,
        #[arg(long, value_enum, default_value = "default")]
        chunking: ChunkingArg,
        /// Tokens per chunk (default and fixed-size chunking).
        #[arg(long)]
        max_tokens: Option<usize>,
        /// Overlap: tokens for default chunking, percent for fixed-size.
        #[arg(long)]
        overlap: Option<usize>,
        /// Embed with an OpenAI-compatible endpoint (base URL, e.g. http://host:8000/v1)
        /// instead of the local model.
        #[arg(long, requires = "embedder_model")]
        embedder_url: Option<String>,
        /// Model name for --embedder-url.
        #[arg(long)]
        embedder_model: Option<String>,
        /// Environment variable holding the endpoint's API key.
        #[arg(long)]
        embedder_api_key_env: Option<String>,
        /// Guardrail policy for this knowledge base's questions and answers (a name under
        /// [guardrails.policies] in config.toml); the [guardrails] default when absent.
        #[arg(long)]
        guardrail: Option<String>,
        /// Tables knowledge bases: questions return the generated SQL and its rows, and result
        /// rows are never sent to the model.
        #[arg(long)]
        no_rows_to_model: bool,
    },
    /// List knowledge bases.
    List,
    /// Show a knowledge base with its sources and counts.
    Show { name: String },
    /// Delete a knowledge base, its documents and indexes.
    Delete { name: String },
    /// List the sync runs of a knowledge base, newest first.
    Versions {
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Attach a folder or s3://bucket/prefix to a knowledge base.
    Add {
        kb: String,
        location: String,
        /// S3 endpoint for S3-compatible servers.
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// Folders only: follow symbolic links whose target stays inside the folder (links
        /// are reported and never read otherwise; links out of the folder never are).
        #[arg(long)]
        follow_links: bool,
        /// Tables knowledge bases: the table a folder or file forms, or the namespace of a
        /// database's tables, instead of the name derived from the location.
        #[arg(long)]
        name: Option<String>,
    },
    /// List the sources of a knowledge base.
    List { kb: String },
    /// Detach a source; its documents leave the knowledge base at once.
    Remove { kb: String, location: String },
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Delete and rebuild a knowledge base's indexes from the store.
    Rebuild { kb: String },
    /// Bring the indexes up to date and compare them with the store.
    Status { kb: String },
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    pub kb: String,
    /// Keep syncing at an interval until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between syncs with --watch.
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
}

// ---- dispatch -----------------------------------------------------------------------------

pub fn kb_command(groundwork: &Groundwork, command: KbCommand, json: bool) -> anyhow::Result<()> {
    match command {
        KbCommand::Create {
            name,
            kind,
            chunking,
            max_tokens,
            overlap,
            embedder_url,
            embedder_model,
            embedder_api_key_env,
            guardrail,
            no_rows_to_model,
        } => {
            let embedder = match (embedder_url, embedder_model) {
                (Some(base_url), Some(model)) => groundwork_core::EmbedderConfig::Remote {
                    base_url,
                    model,
                    api_key_env: embedder_api_key_env,
                },
                _ => groundwork_core::EmbedderConfig::Local,
            };
            let chunking = match chunking {
                ChunkingArg::Default => {
                    let ChunkingConfig::Default {
                        max_tokens: default_max,
                        overlap_tokens: default_overlap,
                    } = ChunkingConfig::default()
                    else {
                        unreachable!("the default chunking is the default strategy")
                    };
                    ChunkingConfig::Default {
                        max_tokens: max_tokens.unwrap_or(default_max),
                        overlap_tokens: overlap.unwrap_or(default_overlap),
                    }
                }
                ChunkingArg::FixedSize => ChunkingConfig::FixedSize {
                    max_tokens: max_tokens.unwrap_or(254),
                    overlap_percent: overlap.unwrap_or(20).min(90) as u8,
                },
                ChunkingArg::None => ChunkingConfig::None,
            };
            if let ChunkingConfig::Default { max_tokens: 0, .. }
            | ChunkingConfig::FixedSize { max_tokens: 0, .. } = chunking
            {
                anyhow::bail!(groundwork_service::ServiceError::invalid(
                    "--max-tokens must be at least 1"
                ));
            }
            let kb = groundwork.create_kb(
                &name,
                KnowledgeBaseConfig {
                    kind: match kind {
                        KindArg::Documents => KbKind::Documents,
                        KindArg::Tables => KbKind::Tables,
                    },
                    chunking,
                    embedder,
                    llm: None,
                    guardrail,
                    send_rows_to_model: !no_rows_to_model,
                },
            )?;
            if json {
                print_json(&kb)?;
            } else {
                println!("created knowledge base `{}`", kb.name);
            }
        }
        KbCommand::List => {
            let kbs = groundwork.list_kbs()?;
            if json {
                print_json(&kbs)?;
            } else {
                for kb in kbs {
                    println!("{}", kb.name);
                }
            }
        }
        KbCommand::Show { name } => {
            let status = groundwork.kb_status(&name)?;
            if json {
                print_json(&status)?;
            } else {
                println!(
                    "{}: {} documents, {} chunks, {} failed",
                    status.knowledge_base.name, status.documents, status.chunks, status.failed_documents
                );
                for source in &status.sources {
                    println!("  source {}", source.uri);
                }
            }
        }
        KbCommand::Delete { name } => {
            groundwork.delete_kb(&name)?;
            if json {
                print_json(&serde_json::json!({ "deleted": name }))?;
            } else {
                println!("deleted knowledge base `{name}`");
            }
        }
        KbCommand::Versions { name, limit } => {
            let runs = groundwork.kb_versions(&name, limit)?;
            if json {
                print_json(&runs)?;
            } else {
                for run in runs {
                    println!(
                        "run {} {} started {}",
                        run.id,
                        run.status,
                        groundwork_core::format_millis(run.started_at)
                    );
                    let changed = run
                        .report
                        .as_ref()
                        .and_then(|r| r.get("changed"))
                        .and_then(|c| c.as_array());
                    for change in changed.into_iter().flatten() {
                        println!(
                            "  {:<8} {}",
                            change["change"].as_str().unwrap_or_default(),
                            change["uri"].as_str().unwrap_or_default()
                        );
                    }
                    let unlisted = run
                        .report
                        .as_ref()
                        .and_then(|r| r["changed_unlisted"].as_u64())
                        .unwrap_or(0);
                    if unlisted > 0 {
                        println!("  … and {unlisted} more");
                    }
                }
            }
        }
    }
    Ok(())
}

pub fn source_command(groundwork: &Groundwork, command: SourceCommand, json: bool) -> anyhow::Result<()> {
    match command {
        SourceCommand::Add {
            kb,
            location,
            endpoint,
            region,
            follow_links,
            name,
        } => {
            let config = SourceConfig {
                endpoint,
                region,
                follow_links,
                name,
            };
            let source = groundwork.add_source(&kb, &location, config)?;
            if json {
                print_json(&source)?;
            } else {
                println!("added source {} to `{kb}`", source.uri);
            }
        }
        SourceCommand::List { kb } => {
            let sources = groundwork.list_sources(&kb)?;
            if json {
                print_json(&sources)?;
            } else {
                for source in sources {
                    println!("{}", source.uri);
                }
            }
        }
        SourceCommand::Remove { kb, location } => {
            let removed = groundwork.remove_source(&kb, &location)?;
            if json {
                print_json(&serde_json::json!({ "removed": removed }))?;
            } else if removed {
                println!("removed {location} from `{kb}`");
            } else {
                println!("`{kb}` has no source {location}");
            }
        }
    }
    Ok(())
}

pub fn sync(groundwork: &Groundwork, args: SyncArgs, json: bool) -> anyhow::Result<()> {
    let SyncArgs { kb, watch, interval } = args;
    loop {
        let report = sync_once(groundwork, &kb, json)?;
        print_sync_report(&report, json)?;
        if !watch {
            break;
        }
        std::thread::sleep(Duration::from_secs(interval.max(1)));
    }
    Ok(())
}

pub fn sync_once(groundwork: &Groundwork, kb: &str, json: bool) -> anyhow::Result<SyncReport> {
    let mut progress = SyncProgress::new(json);
    progress.message("loading");
    let report = groundwork.sync(kb, &mut progress);
    progress.finish();
    Ok(report?)
}

pub fn index_command(groundwork: &Groundwork, command: IndexCommand, json: bool) -> anyhow::Result<()> {
    match command {
        IndexCommand::Status { kb } => print_index_status(&groundwork.index_status(&kb)?, json),
        IndexCommand::Rebuild { kb } => {
            let status = groundwork.rebuild_index(&kb)?;
            if json {
                print_json(&status)
            } else {
                println!("rebuilt the indexes of `{kb}`: {} chunks", status.chunks);
                Ok(())
            }
        }
    }
}

// ---- printing -----------------------------------------------------------------------------

pub fn print_sync_report(report: &SyncReport, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(report);
    }
    println!(
        "sync run {}: {} listed, {} added, {} updated, {} touched, {} unchanged, {} deleted, {} failed ({} still failing) in {:.1}s",
        report.run_id,
        report.listed,
        report.added,
        report.updated,
        report.touched,
        report.unchanged,
        report.deleted,
        report.failed.len(),
        report.still_failing,
        report.duration_ms as f64 / 1000.0
    );
    // Rates of the documents processed, when there were any (a tables sync has none).
    let rates = if report.documents_per_s > 0.0 {
        format!(
            "; {} documents/s, {} tokens/s",
            rate(report.documents_per_s),
            rate(report.tokens_per_s)
        )
    } else {
        String::new()
    };
    println!(
        "  {} chunks written, {} embeddings computed, {} from cache{rates}",
        report.chunks_written, report.embeddings_computed, report.embeddings_cached,
    );
    let t = &report.timings;
    if t != &Default::default() {
        // Stages overlap: busy times sum to more than the sync; idle times say which bounds it.
        println!(
            "  stage ms: list {}, read {}, parse {}, chunk {}, cache {}, embed {}, commit {}, index {}; \
             waiting: embedder {}, commit {}",
            t.list_ms,
            t.read_ms,
            t.parse_ms,
            t.chunk_ms,
            t.cache_lookup_ms + t.cache_store_ms,
            t.embed_ms,
            t.commit_ms,
            t.index_ms,
            t.embed_idle_ms,
            t.commit_idle_ms
        );
    }
    for failure in &report.failed {
        println!("  failed: {} [{}] {}", failure.uri, failure.code, failure.message);
    }
    Ok(())
}

fn print_index_status(status: &IndexStatus, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(status);
    }
    println!(
        "lexical: {} chunks at sequence {}; vectors: {}{}; store: {} chunks at sequence {}",
        status.lexical_chunks,
        status.lexical_seq,
        status.vectors,
        if status.ann {
            " (HNSW graph)"
        } else {
            " (exact scan)"
        },
        status.store_chunks,
        status.store_seq
    );
    Ok(())
}
