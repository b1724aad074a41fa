//! `backup` and `restore`: grammar, dispatch and printing.

use crate::output::print_json;
use clap::Args;
use groundwork_service::{BackupLocation, Groundwork};
use std::path::Path;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// A new or empty folder, or s3://bucket/prefix (its manifest is written last).
    pub dest: String,
    /// S3-compatible endpoint for an s3:// destination.
    #[arg(long)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A folder or s3://bucket/prefix written by `groundwork backup`.
    pub source: String,
    /// S3-compatible endpoint for an s3:// source.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Replace the store of an initialised home (the old store and config are kept in
    /// pre-restore-<time>/). A home that a running process has open is never replaced.
    #[arg(long)]
    pub force: bool,
}

pub fn backup(gw: &Groundwork, args: BackupArgs, json: bool) -> anyhow::Result<()> {
    let report = gw.backup(&BackupLocation {
        location: args.dest,
        endpoint: args.endpoint,
    })?;
    if json {
        return print_json(&report);
    }
    let bytes: u64 = report.manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "backed up to {} in {} ms: {} files, {bytes} bytes, audit head {}",
        report.destination,
        report.duration_ms,
        report.manifest.files.len(),
        report
            .manifest
            .audit_head
            .as_ref()
            .map_or("none".to_owned(), |h| h.seq.to_string())
    );
    Ok(())
}

pub fn restore(home: &Path, args: RestoreArgs, json: bool) -> anyhow::Result<()> {
    let report = Groundwork::restore(
        home,
        &BackupLocation {
            location: args.source,
            endpoint: args.endpoint,
        },
        args.force,
    )?;
    if json {
        return print_json(&report);
    }
    println!(
        "restored {} into {} in {} ms; audit chain intact ({} records); indexes are rebuilt on first use",
        report.source,
        report.home.display(),
        report.duration_ms,
        report.audit_records
    );
    if let Some(previous) = &report.previous {
        println!("the replaced store and config are in {}", previous.display());
    }
    Ok(())
}
