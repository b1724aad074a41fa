//! Tables: `tables`, `table describe`, `sql` and `quality`.
//!
//! Grammar, then dispatch (one call into the service per command), then printing.

use crate::output::{print_json, when};
use clap::{Args, Subcommand, ValueEnum};
use groundwork_service::{
    Groundwork, QualityReport, QualityStatus, RecordBatch, ResultFormat, SqlRequest, TableDescription,
    TableSummary,
};
use std::io::Write;
use std::path::PathBuf;

// ---- grammar ------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct TablesArgs {
    pub kb: String,
}

#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Columns, profile, sample rows and versions of one table, as you may see it.
    Describe { kb: String, table: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Table,
    Csv,
    Json,
    Jsonl,
    Parquet,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    pub kb: String,
    /// One read-only statement: SELECT/WITH, SHOW TABLES, DESCRIBE, EXPLAIN.
    pub sql: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: FormatArg,
    /// Print the plan instead of running the query.
    #[arg(long)]
    pub explain: bool,
    /// Write the result to this file instead of standard output (needed for parquet on a
    /// terminal).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum QualityCommand {
    /// Set a table's rules (DQDL-like) from a file, or `-` for standard input.
    Set {
        kb: String,
        table: String,
        /// The ruleset file, e.g. `Rules = [ RowCount > 0, IsComplete "id" blocking ]`.
        rules: PathBuf,
    },
    /// Remove a table's rules.
    Clear { kb: String, table: String },
    /// Run the rules of one table, or of every table that has rules.
    Run { kb: String, table: Option<String> },
    /// A table's rules, latest status and history.
    Show {
        kb: String,
        table: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
}

// ---- dispatch -----------------------------------------------------------------------------

pub fn tables(groundwork: &Groundwork, args: TablesArgs, json: bool) -> anyhow::Result<()> {
    print_tables(&groundwork.list_tables(&args.kb)?, json)
}

pub fn table_command(groundwork: &Groundwork, command: TableCommand, json: bool) -> anyhow::Result<()> {
    match command {
        TableCommand::Describe { kb, table } => {
            print_description(&groundwork.describe_table(&kb, &table)?, json)
        }
    }
}

pub fn sql(groundwork: &Groundwork, args: SqlArgs, json: bool) -> anyhow::Result<()> {
    let format = if json && matches!(args.format, FormatArg::Table) {
        ResultFormat::Json
    } else {
        match args.format {
            FormatArg::Table => ResultFormat::Table,
            FormatArg::Csv => ResultFormat::Csv,
            FormatArg::Json => ResultFormat::Json,
            FormatArg::Jsonl => ResultFormat::Jsonl,
            FormatArg::Parquet => ResultFormat::Parquet,
        }
    };
    if matches!(format, ResultFormat::Parquet)
        && args.output.is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        anyhow::bail!(groundwork_service::ServiceError::invalid(
            "Parquet is binary: pass --output FILE or redirect standard output"
        ));
    }
    let mut batches: Vec<RecordBatch> = Vec::new();
    let outcome = groundwork.query(
        &SqlRequest {
            knowledge_base: args.kb,
            sql: args.sql,
            explain: args.explain,
        },
        &mut |batch| {
            batches.push(batch.clone());
            Ok(true)
        },
    )?;
    if let Some(plan) = &outcome.explain {
        if json {
            return print_json(&outcome);
        }
        println!("{plan}");
        return Ok(());
    }
    let bytes = groundwork_service::write_result(format, &outcome.columns, &batches)?;
    match &args.output {
        Some(path) => std::fs::write(path, &bytes)?,
        None => std::io::stdout().write_all(&bytes)?,
    }
    if outcome.truncated {
        eprintln!(
            "sql: the result was cut at {} rows ([sql] max_rows / max_result_mb in config.toml)",
            outcome.rows
        );
    }
    Ok(())
}

pub fn quality_command(groundwork: &Groundwork, command: QualityCommand, json: bool) -> anyhow::Result<()> {
    match command {
        QualityCommand::Set { kb, table, rules } => {
            let text = if rules.as_os_str() == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
                text
            } else {
                std::fs::read_to_string(&rules).map_err(|e| anyhow::anyhow!("{}: {e}", rules.display()))?
            };
            groundwork.set_quality_rules(&kb, &table, Some(&text))?;
            if json {
                print_json(&serde_json::json!({ "table": table, "rules": text }))
            } else {
                println!("set the rules of `{table}`");
                Ok(())
            }
        }
        QualityCommand::Clear { kb, table } => {
            groundwork.set_quality_rules(&kb, &table, None)?;
            if !json {
                println!("removed the rules of `{table}`");
            }
            Ok(())
        }
        QualityCommand::Run { kb, table } => {
            print_reports(&groundwork.run_quality(&kb, table.as_deref())?, json)
        }
        QualityCommand::Show { kb, table, limit } => {
            print_status(&groundwork.quality_status(&kb, &table, limit)?, json)
        }
    }
}

// ---- printing -----------------------------------------------------------------------------

fn print_tables(tables: &[TableSummary], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&tables);
    }
    if tables.is_empty() {
        println!("no tables you may read");
    }
    for t in tables {
        let rows = t.rows.map_or_else(String::new, |r| format!(", {r} rows"));
        let mut flags = Vec::new();
        if t.restricted {
            flags.push("filtered/masked for you".to_owned());
        }
        if let Some(quality) = &t.quality {
            flags.push(format!("quality {quality}"));
        }
        if t.untrusted {
            flags.push("UNTRUSTED".to_owned());
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", flags.join("; "))
        };
        println!(
            "{}  ({}, {} columns{rows}, v{}){flags}",
            t.name, t.kind, t.columns, t.version_no
        );
    }
    Ok(())
}

fn print_description(d: &TableDescription, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(d);
    }
    println!(
        "{} ({}), version {} [{}]",
        d.name, d.kind, d.version_no, d.location
    );
    if let Some(comment) = &d.comment {
        println!("  {comment}");
    }
    if let Some(rows) = d.rows {
        println!("  {rows} rows, profiled {}", when(d.profiled_at));
    }
    if let Some(filter) = &d.row_filter {
        println!("  you see the rows where {filter}");
    }
    if d.untrusted {
        println!("  UNTRUSTED: a blocking data-quality rule failed");
    }
    for c in &d.columns {
        let mask = c.mask.map_or_else(String::new, |m| format!("  (masked: {m:?})"));
        let stats = c.profile.as_ref().map_or_else(String::new, |p| {
            let exact = if p.distinct_exact { "" } else { "≈" };
            let mut text = format!(
                "  nulls {:.1}%, {exact}{} distinct",
                p.null_fraction * 100.0,
                p.distinct
            );
            if let (Some(min), Some(max)) = (&p.min, &p.max) {
                text.push_str(&format!(", {min} … {max}"));
            }
            if !p.top.is_empty() {
                let top: Vec<String> = p.top.iter().take(5).map(|(v, n)| format!("{v} ({n})")).collect();
                text.push_str(&format!("; top: {}", top.join(", ")));
            }
            text
        });
        println!("  {:<24} {:<12}{mask}{stats}", c.name, c.data_type);
    }
    if !d.samples.is_empty() {
        println!("  sample rows:");
        for row in &d.samples {
            println!("    {}", serde_json::Value::Object(row.clone()));
        }
    }
    Ok(())
}

fn print_reports(reports: &[QualityReport], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&reports);
    }
    for report in reports {
        println!(
            "{}: {}{} ({} scans, {:.0} ms)",
            report.table,
            report.status,
            if report.blocking_failed { ", UNTRUSTED" } else { "" },
            report.scans,
            report.took_ms
        );
        for outcome in &report.outcomes {
            println!("  {:?}  {}  {}", outcome.status, outcome.rule, outcome.message);
        }
        for (metric, anomaly) in &report.anomalies {
            println!("  anomaly in {metric}: {}", anomaly.message);
        }
    }
    Ok(())
}

fn print_status(status: &QualityStatus, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(status);
    }
    match &status.rules {
        Some(rules) => println!("rules of `{}`:\n{rules}", status.table),
        None => println!("`{}` has no rules", status.table),
    }
    for run in &status.runs {
        println!(
            "{}  {}{}  (version {})",
            when(Some(run.at)),
            run.status,
            if run.blocking_failed { ", UNTRUSTED" } else { "" },
            run.version
        );
    }
    Ok(())
}
