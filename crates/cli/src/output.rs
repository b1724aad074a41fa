//! Printing results and errors: human text by default, JSON with `--json`.

use groundwork_core::ErrorCode;
use groundwork_service::{ServiceError, SyncEvent, SyncObserver};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints the error on stderr (as JSON on stdout with `--json`) and picks the exit code of its
/// class, so scripts can tell "not found" from "busy" without parsing text.
pub fn report_error(error: &anyhow::Error, json: bool) -> ExitCode {
    let (code, message) = match error.downcast_ref::<ServiceError>() {
        Some(service) => (service.code(), format!("{error:#}")),
        None => match error.downcast_ref::<clap::Error>() {
            Some(_) => (ErrorCode::InvalidRequest, error.to_string()),
            None => (ErrorCode::Internal, format!("{error:#}")),
        },
    };
    if json {
        let body = serde_json::json!({ "error": { "code": code.as_str(), "message": message } });
        println!("{body}");
    } else {
        eprintln!("error[{code}]: {message}");
    }
    ExitCode::from(code.exit_code() as u8)
}

/// A progress bar for syncs, drawn only on a terminal and never in JSON mode.
pub struct SyncProgress {
    bar: ProgressBar,
}

impl SyncProgress {
    pub fn new(json: bool) -> SyncProgress {
        let bar = ProgressBar::new(0);
        if json || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({eta})")
                .expect("static template")
                .progress_chars("=> "),
        );
        SyncProgress { bar }
    }

    pub fn message(&self, text: &str) {
        self.bar.set_message(text.to_string());
        self.bar.tick();
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl SyncObserver for SyncProgress {
    fn event(&mut self, event: SyncEvent<'_>) {
        match event {
            SyncEvent::Listed { source, objects } => {
                self.bar
                    .set_message(format!("listed {objects} objects in {source}"));
            }
            SyncEvent::Planned { to_process } => {
                self.bar.set_length(to_process as u64);
                self.bar.set_position(0);
                self.bar.set_message("syncing");
            }
            SyncEvent::Processed { .. } => self.bar.inc(1),
        }
    }
}

/// A time for people, or `-` when there is none.
pub fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), groundwork_core::format_millis)
}
