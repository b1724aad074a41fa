//! The `groundwork` binary: argument parsing, progress display and output formatting.
//!
//! Architecture invariant: this is the only crate that knows about argv and terminals. Every
//! command is a thin call into `groundwork_service::Groundwork`.

mod commands;
mod governance;
mod output;
mod sample;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    let json = cli.json;
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => output::report_error(&error, json),
    }
}
