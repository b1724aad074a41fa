//! Guardrails: `guard check` (like Bedrock's ApplyGuardrail, no model called) and `guard list`.
//!
//! Grammar, then dispatch, then printing.

use crate::output::print_json;
use clap::{Subcommand, ValueEnum};
use groundwork_service::Groundwork;
use std::path::PathBuf;

// ---- grammar ------------------------------------------------------------------------------

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

// ---- dispatch -----------------------------------------------------------------------------

pub fn guard_command(groundwork: &Groundwork, command: GuardCommand, json: bool) -> anyhow::Result<()> {
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
