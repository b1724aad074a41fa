//! Text-to-SQL: `tables --search`, `table describe --set/--clear`, `sql --generate`,
//! `sql examples add|list|remove`, and `ask` on a tables knowledge base.
//!
//! Grammar, then dispatch (one call into the service per command), then printing.

use crate::output::print_json;
use clap::Subcommand;
use groundwork_service::{
    DescriptionChange, Groundwork, SqlExample, Stage, TableAnswer, TableQuestion, TableSearchRequest,
    TableSearchResponse,
};

// ---- grammar ------------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum SqlCommand {
    /// Verified example questions with their SQL: few-shot prompts and discovery documents.
    Examples {
        #[command(subcommand)]
        command: ExamplesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExamplesCommand {
    /// Add an example; its SQL is validated by running it as the administrator.
    Add {
        kb: String,
        #[arg(long)]
        question: String,
        #[arg(long)]
        sql: String,
    },
    /// List the examples.
    List { kb: String },
    /// Remove one example by its id.
    Remove { kb: String, id: i64 },
}

// ---- dispatch -----------------------------------------------------------------------------

pub fn search_tables(
    groundwork: &Groundwork,
    kb: String,
    question: String,
    k: usize,
    json: bool,
) -> anyhow::Result<()> {
    let response = groundwork.search_tables(&TableSearchRequest {
        knowledge_base: kb,
        question,
        k,
    })?;
    print_found(&response, json)
}

pub fn set_description(
    groundwork: &Groundwork,
    kb: String,
    table: String,
    column: Option<String>,
    text: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let cleared = text.is_none();
    groundwork.set_description(&DescriptionChange {
        knowledge_base: kb,
        table: table.clone(),
        column: column.clone(),
        text,
    })?;
    let what = match &column {
        Some(column) => format!("column `{column}` of `{table}`"),
        None => format!("`{table}`"),
    };
    if json {
        print_json(&serde_json::json!({ "table": table, "column": column, "cleared": cleared }))
    } else {
        println!(
            "{} the description of {what}",
            if cleared { "removed" } else { "set" }
        );
        Ok(())
    }
}

pub fn examples_command(groundwork: &Groundwork, command: SqlCommand, json: bool) -> anyhow::Result<()> {
    let SqlCommand::Examples { command } = command;
    match command {
        ExamplesCommand::Add { kb, question, sql } => {
            let example = groundwork.add_sql_example(&kb, &question, &sql)?;
            if json {
                return print_json(&example);
            }
            println!(
                "added example {} (reads {})",
                example.id,
                example.tables.join(", ")
            );
            Ok(())
        }
        ExamplesCommand::List { kb } => print_examples(&groundwork.sql_examples(&kb)?, json),
        ExamplesCommand::Remove { kb, id } => {
            groundwork.remove_sql_example(&kb, id)?;
            if !json {
                println!("removed example {id}");
            }
            Ok(())
        }
    }
}

pub fn generate(
    groundwork: &Groundwork,
    kb: String,
    question: String,
    model: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let answer = groundwork.ask_tables(
        &TableQuestion {
            knowledge_base: kb,
            question,
            model,
            stage: Stage::Generate,
        },
        None,
    )?;
    if json {
        return print_json(&answer);
    }
    println!("{}", answer.sql.as_deref().unwrap_or(""));
    Ok(())
}

pub fn ask(
    groundwork: &Groundwork,
    kb: String,
    question: String,
    model: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let mut streamed = false;
    let mut print_delta = |piece: &str| {
        use std::io::Write;
        streamed = true;
        print!("{piece}");
        let _ = std::io::stdout().flush();
    };
    let answer = groundwork.ask_tables(
        &TableQuestion {
            knowledge_base: kb,
            question,
            model,
            stage: Stage::Answer,
        },
        if json { None } else { Some(&mut print_delta) },
    )?;
    if json {
        return print_json(&answer);
    }
    print_answer(&answer, streamed)
}

// ---- printing -----------------------------------------------------------------------------

fn print_found(response: &TableSearchResponse, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(response);
    }
    if response.tables.is_empty() {
        println!("no table you may read matches");
    }
    for (rank, table) in response.tables.iter().enumerate() {
        println!("{}. {:.4}  {}", rank + 1, table.score, table.name);
        println!("   {}", table.description);
        if !table.matched_columns.is_empty() {
            println!("   columns: {}", table.matched_columns.join(", "));
        }
        if !table.why.is_empty() {
            println!("   why: {}", table.why.join("; "));
        }
    }
    Ok(())
}

fn print_examples(examples: &[SqlExample], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&examples);
    }
    if examples.is_empty() {
        println!("no examples");
    }
    for example in examples {
        println!("{}. {}", example.id, example.question);
        println!("   {}", example.sql);
    }
    Ok(())
}

fn print_answer(answer: &TableAnswer, streamed: bool) -> anyhow::Result<()> {
    if streamed {
        println!();
    } else {
        println!("{}", answer.text);
    }
    if let Some(sql) = &answer.sql {
        println!("\nSQL:\n{sql}");
    }
    if answer.mode == "rows" && !answer.rows.is_empty() {
        println!();
        for row in answer.rows.iter().take(20) {
            println!("{}", serde_json::Value::Object(row.clone()));
        }
        if answer.rows.len() > 20 {
            println!("… {} more rows (--json has them all)", answer.rows.len() - 20);
        }
    }
    if !answer.tables.is_empty() {
        println!();
        for table in &answer.tables {
            println!("[{}] version {}", table.name, table.version);
        }
    }
    let retries = answer.attempts.len().saturating_sub(1);
    if retries > 0 {
        eprintln!("ask: the model needed {retries} correction(s)");
    }
    Ok(())
}
