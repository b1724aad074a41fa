//! The `groundwork` binary: argument parsing, progress display and output formatting.
//!
//! Architecture invariant: this is the only crate that knows about argv and terminals. Every
//! command is a thin call into `groundwork_service::Groundwork`.
//!
//! Layout: `cli` is the grammar's root and the dispatcher; one file per area (`kb`, `search`,
//! `guard`, `admin`, `audit`, `eval`, `setup`, `tables`) holds that area's grammar, its dispatch and its
//! printing, apart; `output` has what every area prints with; `sample` is the quickstart.

mod admin;
mod audit;
mod backup;
mod cli;
mod eval;
mod guard;
mod kb;
mod output;
mod sample;
mod search;
mod setup;
mod tables;
mod text_sql;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Syncs parse documents in worker processes of this same binary.
    if let Ok(program) = std::env::current_exe() {
        groundwork_service::register_worker_command(groundwork_service::WorkerCommand {
            program,
            args: vec!["parse-worker".into()],
        });
    }
    let cli = cli::Cli::parse();
    let json = cli.json;
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => output::report_error(&error, json),
    }
}
