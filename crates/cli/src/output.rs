//! Printing results and errors: human text by default, JSON with `--json`.

use groundwork_core::ErrorCode;
use groundwork_service::{ServiceError, SyncEvent, SyncObserver};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

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

/// A progress bar for syncs, drawn only on a terminal and never in JSON mode: documents
/// committed out of those to process, and the rates of documents and embedded tokens since the
/// sync started processing.
pub struct SyncProgress {
    bar: ProgressBar,
    /// When processing started (the plan was made), and tokens embedded since.
    started: Option<Instant>,
    tokens: usize,
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
        SyncProgress {
            bar,
            started: None,
            tokens: 0,
        }
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
                self.started = Some(Instant::now());
                self.tokens = 0;
            }
            SyncEvent::Processed { .. } => self.bar.inc(1),
            SyncEvent::Committed { tokens_embedded, .. } => {
                self.tokens += tokens_embedded;
                let seconds = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64()).max(1e-3);
                self.bar.set_message(format!(
                    "syncing, {} docs/s, {} tokens/s",
                    rate(self.bar.position() as f64 / seconds),
                    rate(self.tokens as f64 / seconds)
                ));
            }
        }
    }
}

/// A rate for people: `12.3`, `456`, `7.8k`.
pub fn rate(per_s: f64) -> String {
    if per_s >= 10_000.0 {
        format!("{:.1}k", per_s / 1000.0)
    } else if per_s >= 100.0 {
        format!("{per_s:.0}")
    } else {
        format!("{per_s:.1}")
    }
}

/// A time for people, or `-` when there is none.
pub fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), groundwork_core::format_millis)
}
