//! Tables: `tables`, `table describe`, `sql` and `quality` (the text-to-SQL parts of `tables
//! --search`, `table describe --set`, `sql --generate` and `sql examples` are in `text_sql`).
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
    /// Rank the tables you may read for this question instead of listing them all.
    #[arg(long, value_name = "QUESTION")]
    pub search: Option<String>,
    /// Tables returned by --search.
    #[arg(short, long, default_value_t = 5)]
    pub k: usize,
}

#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Columns, descriptions, profile, sample rows and versions of one table, as you may see
    /// it; with --set or --clear, write (or remove) your description of it or of a column.
    Describe {
        kb: String,
        table: String,
        /// Your description (administrators); it wins over generated and derived ones.
        #[arg(long, value_name = "TEXT")]
        set: Option<String>,
        /// Remove your description, so the generated or derived one shows again.
        #[arg(long, conflicts_with = "set")]
        clear: bool,
        /// Describe this column instead of the table (with --set or --clear).
        #[arg(long)]
        column: Option<String>,
    },
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
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SqlArgs {
    #[command(subcommand)]
    pub command: Option<crate::text_sql::SqlCommand>,
    #[arg(required = true)]
    pub kb: Option<String>,
    /// One read-only statement: SELECT/WITH, SHOW TABLES, DESCRIBE, EXPLAIN.
    #[arg(required_unless_present = "generate")]
    pub sql: Option<String>,
    /// Write the SQL for this question with the configured model (checked as you, not run).
    #[arg(long, value_name = "QUESTION", conflicts_with = "sql")]
    pub generate: Option<String>,
    /// A model named under [llms] in config.toml, for --generate.
    #[arg(long, requires = "generate")]
    pub model: Option<String>,
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
    if let Some(question) = args.search {
        return crate::text_sql::search_tables(groundwork, args.kb, question, args.k, json);
    }
    print_tables(&groundwork.list_tables(&args.kb)?, json)
}

pub fn table_command(groundwork: &Groundwork, command: TableCommand, json: bool) -> anyhow::Result<()> {
    match command {
        TableCommand::Describe {
            kb,
            table,
            set,
            clear,
            column,
        } => {
            if set.is_some() || clear {
                return crate::text_sql::set_description(groundwork, kb, table, column, set, json);
            }
            if column.is_some() {
                anyhow::bail!(groundwork_service::ServiceError::invalid(
                    "--column goes with --set or --clear"
                ));
            }
            print_description(&groundwork.describe_table(&kb, &table)?, json)
        }
    }
}

pub fn sql(groundwork: &Groundwork, args: SqlArgs, json: bool) -> anyhow::Result<()> {
    if let Some(command) = args.command {
        return crate::text_sql::examples_command(groundwork, command, json);
    }
    let kb = args
        .kb
        .expect("clap requires a knowledge base without a subcommand");
    if let Some(question) = args.generate {
        return crate::text_sql::generate(groundwork, kb, question, args.model, json);
    }
    let sql_text = args.sql.expect("clap requires the SQL without --generate");
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
            knowledge_base: kb,
            sql: sql_text,
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
    println!("  {} ({})", d.description, d.description_origin);
    if let Some(comment) = &d.comment
        && !d.description.contains(comment.as_str())
    {
        println!("  comment: {comment}");
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
        if !c.description.is_empty() {
            println!("  {:<24} {}", "", c.description);
        }
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
