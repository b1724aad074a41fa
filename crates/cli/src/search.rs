//! Search and answers: `search` and `ask`.
//!
//! Grammar, then dispatch (one call into the service per command), then printing.

use crate::output::print_json;
use clap::{Args, ValueEnum};
use groundwork_core::{Answer, Filter};
use groundwork_guard::GuardrailAction;
use groundwork_service::{Groundwork, SearchRequest, SearchResponse, SearchType};

// ---- grammar ------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct RetrievalArgs {
    /// Number of results.
    #[arg(short, default_value_t = 5)]
    pub k: usize,
    /// Metadata filter: key=value, key!=value, key>=value, key<value… (repeat to AND them).
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// Metadata filter in the Bedrock JSON form, e.g. '{"in":{"key":"year","value":[2023,2024]}}'.
    #[arg(long)]
    pub filter_json: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SearchTypeArg {
    Hybrid,
    Semantic,
    Lexical,
}

impl From<SearchTypeArg> for SearchType {
    fn from(value: SearchTypeArg) -> Self {
        match value {
            SearchTypeArg::Hybrid => SearchType::Hybrid,
            SearchTypeArg::Semantic => SearchType::Semantic,
            SearchTypeArg::Lexical => SearchType::Lexical,
        }
    }
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    pub kb: String,
    pub query: String,
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
    #[arg(long, value_enum)]
    pub search_type: Option<SearchTypeArg>,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    pub kb: String,
    pub question: String,
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
    /// A model named under [llms] in config.toml, instead of the knowledge base's.
    #[arg(long)]
    pub model: Option<String>,
}

impl RetrievalArgs {
    pub fn filter(&self) -> anyhow::Result<Option<Filter>> {
        let mut filters = Vec::new();
        for text in &self.filters {
            filters.push(Filter::from_shorthand(text).map_err(groundwork_service::ServiceError::from)?);
        }
        if let Some(text) = &self.filter_json {
            filters.push(Filter::from_json(text).map_err(groundwork_service::ServiceError::from)?);
        }
        Ok(Filter::all(filters))
    }
}

// ---- dispatch -----------------------------------------------------------------------------

pub fn search(groundwork: &Groundwork, args: SearchArgs, json: bool) -> anyhow::Result<()> {
    let searcher = groundwork.searcher(&args.kb)?;
    let response = searcher.search(&SearchRequest {
        query: args.query,
        k: args.retrieval.k,
        search_type: args.search_type.map(Into::into),
        filter: args.retrieval.filter()?,
    })?;
    print_hits(&response, json)
}

pub fn ask(groundwork: &Groundwork, args: AskArgs, json: bool) -> anyhow::Result<()> {
    if groundwork.kb_kind(&args.kb)? == groundwork_core::KbKind::Tables {
        return crate::text_sql::ask(groundwork, args.kb, args.question, args.model, json);
    }
    let searcher = groundwork.searcher(&args.kb)?;
    let request = groundwork_service::AskRequest {
        question: args.question,
        k: args.retrieval.k,
        filter: args.retrieval.filter()?,
        model: args.model,
    };
    let answer = groundwork_service::ask(&searcher, &request, None)?;
    print_answer(&answer, json)
}

// ---- printing -----------------------------------------------------------------------------

fn print_hits(response: &SearchResponse, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(response);
    }
    if response.hits.is_empty() {
        println!("no results");
    }
    for (rank, hit) in response.hits.iter().enumerate() {
        println!(
            "{}. {:.4}  {}  (chunk {})",
            rank + 1,
            hit.score,
            hit.uri,
            hit.chunk_id
        );
        println!("   {}", snippet(&hit.content, 240));
    }
    Ok(())
}

pub fn print_answer(answer: &Answer, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(answer);
    }
    println!("{}", answer.text);
    if let Some(trace) = answer
        .guardrail
        .as_ref()
        .filter(|t| t.action != GuardrailAction::None)
    {
        let reasons: Vec<&str> = [&trace.input, &trace.output]
            .into_iter()
            .flatten()
            .filter_map(|a| a.action_reason.as_deref())
            .collect();
        let dropped = trace.retrieved.iter().filter(|v| !v.is_kept()).count();
        eprintln!(
            "guardrail `{}` intervened: {}{}",
            trace.policy,
            reasons.join("; "),
            if dropped > 0 {
                format!(" ({dropped} retrieved chunk(s) dropped)")
            } else {
                String::new()
            }
        );
    }
    if !answer.citations.is_empty() {
        println!();
    }
    for (number, citation) in answer.citations.iter().enumerate() {
        for reference in &citation.references {
            println!(
                "[{}] {} (version {}, chunk {}, chars {}..{})",
                number + 1,
                reference.uri,
                reference.object_version.as_deref().unwrap_or("-"),
                reference.chunk_id,
                reference.char_start,
                reference.char_end
            );
        }
    }
    Ok(())
}

fn snippet(text: &str, max_chars: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        flat
    } else {
        let cut: String = flat.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}
