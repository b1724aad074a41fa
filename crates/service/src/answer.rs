//! Answers with citations, two ways, in one [`Answer`] shape:
//!
//! - **generated** ([`ask`] with an LLM configured for the knowledge base or in `[llm]`): the
//!   retrieved chunks (already filtered by the actor's access) become numbered, delimited sources
//!   of a prompt; the model's `[n]` markers are mapped back to spans and references.
//! - **extractive** (no LLM): the sentences of the top chunks closest in meaning to the question,
//!   each cited to its object version, chunk and character span. Nothing is generated, so nothing
//!   can be invented and a prompt injection inside a document is at worst quoted, never obeyed.
//!
//! Both run under the knowledge base's guardrail policy when there is one (see [`ask`]).

use crate::error::ServiceError;
use crate::policy_guard::PolicyGuard;
use crate::search::{SearchRequest, Searcher};
use groundwork_core::{
    Answer, AnswerMode, Citation, ErrorCode, Filter, Hit, LlmConfig, Reference, TokenUsage,
};
use groundwork_govern::audit::ChunkRef;
use groundwork_guard::{ChunkDisposition, GroundingContext, GuardrailTrace, Replacement};
use groundwork_index::SearchType;
use groundwork_llm::prompt::SourceText;
use groundwork_llm::{LlmError, citations, prompt};
use std::sync::Arc;

/// Sentences quoted at most.
const MAX_SENTENCES: usize = 3;
/// Candidate sentences embedded at most (bounds the work per question).
const MAX_CANDIDATES: usize = 48;
/// Sentences much weaker than the best one are left out.
const RELATIVE_FLOOR: f32 = 0.75;

/// One question for [`ask`].
#[derive(Debug, Clone)]
pub struct AskRequest {
    pub question: String,
    /// Chunks retrieved to answer from.
    pub k: usize,
    pub filter: Option<Filter>,
    /// An entry of `[llms]` in `config.toml`, in place of the knowledge base's and the default
    /// model; an unknown name is refused (and audited), never resolved to an endpoint.
    pub model: Option<String>,
}

impl AskRequest {
    pub fn new(question: impl Into<String>, k: usize) -> AskRequest {
        AskRequest {
            question: question.into(),
            k,
            filter: None,
            model: None,
        }
    }
}

/// Answers `request.question` from the knowledge base behind `searcher`, as the searcher's actor: with
/// the knowledge base's LLM, else the `[llm]` default, else extractively. `on_delta` receives
/// the generated text as it arrives (raw, citation markers included); the returned answer holds
/// the clean text and its citations. Audited as `ask` with every chunk the model was shown and
/// every model involved.
///
/// Under a guardrail policy (the knowledge base's or the server default) the question, the
/// retrieved chunks and the answer are checked, and nothing is streamed before the answer has
/// passed: `on_delta` then receives the checked text in one piece, as Bedrock's synchronous
/// guardrail mode does.
pub fn ask(
    searcher: &Searcher<'_>,
    request: &AskRequest,
    on_delta: Option<&mut dyn FnMut(&str)>,
) -> Result<Answer, ServiceError> {
    let AskRequest {
        question,
        k,
        filter,
        model,
    } = request.clone();
    let (question, k) = (question.as_str(), k);
    let config = searcher.groundwork().config();
    let configured = match model.as_deref() {
        Some(name) => match config.llms.get(name) {
            Some(llm) => Some(llm.clone()),
            None => {
                let known: Vec<&str> = config.llms.keys().map(String::as_str).collect();
                return refuse(
                    searcher,
                    question,
                    k,
                    ServiceError::invalid(format!(
                        "no model `{name}` under [llms] in config.toml (known: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    )),
                );
            }
        },
        None => searcher
            .knowledge_base()
            .config
            .llm
            .clone()
            .or_else(|| config.llm.clone()),
    };
    let Some(llm) = configured else {
        let answer = extractive_answer(searcher, request)?;
        if let Some(deliver) = on_delta {
            deliver(&answer.text);
        }
        return Ok(answer);
    };
    let guard = match searcher.groundwork().guardrail_for(searcher.knowledge_base()) {
        Ok(guard) => guard,
        // The knowledge base names a policy the config no longer has: refuse, never answer
        // unguarded.
        Err(error) => return refuse(searcher, question, k, error),
    };
    let (live, mut after) = match (on_delta, &guard) {
        (Some(deliver), Some(_)) => (None, Some(deliver)),
        (live, _) => (live, None),
    };
    let answer = audited_ask(
        searcher,
        question,
        k,
        filter,
        guard,
        |request, used, models, screen| generate(searcher, &llm, request, live, used, models, screen),
    )?;
    if let Some(deliver) = after.as_mut() {
        deliver(&answer.text);
    }
    Ok(answer)
}

/// Refuses a question before any work, with an audit record of why.
fn refuse(
    searcher: &Searcher<'_>,
    question: &str,
    k: usize,
    error: ServiceError,
) -> Result<Answer, ServiceError> {
    let refused: Result<Answer, ServiceError> = Err(error);
    let entry = searcher.groundwork().entry(
        "ask",
        Some(&searcher.knowledge_base().name),
        serde_json::json!({ "query": question, "k": k }),
    );
    searcher
        .groundwork()
        .record_read(entry, std::time::Instant::now(), &refused, Vec::new())?;
    refused
}

/// A guardrail policy at work on one question: the policy, and what it did so far.
struct Screen {
    guard: Arc<PolicyGuard>,
    trace: GuardrailTrace,
    /// The texts the answer was drawn from, for the grounding check.
    sources: Vec<String>,
}

impl Screen {
    /// Drops or marks the retrieved chunks the prompt-attack check flags; returns the kept
    /// hits, each with whether it must be presented as suspicious.
    fn retrieved(&mut self, hits: Vec<Hit>) -> Vec<(Hit, bool)> {
        let texts: Vec<&str> = hits.iter().map(|hit| hit.content.as_str()).collect();
        let verdicts = self.guard.check_retrieved(&texts);
        let mut kept = Vec::with_capacity(hits.len());
        for (index, hit) in hits.into_iter().enumerate() {
            let verdict = verdicts.iter().find(|v| v.index == index);
            let (keep, suspicious) = verdict.map_or((true, false), |v| (v.is_kept(), v.is_quoted()));
            if let Some(v) = verdict.filter(|v| v.flagged || v.disposition != ChunkDisposition::Keep) {
                self.trace.retrieved.push(v.clone());
            }
            if keep {
                kept.push((hit, suspicious));
            }
        }
        self.sources = kept.iter().map(|(hit, _)| hit.content.clone()).collect();
        kept
    }

    /// Checks the answer: blocked answers become the policy's message without citations;
    /// anonymised ones keep their citations, moved to the rewritten text, and every reference
    /// excerpt is redacted for the same entity types.
    fn output(&mut self, question: &str, mut answer: Answer) -> Answer {
        if answer.mode == AnswerMode::NoAnswer {
            return answer;
        }
        let sources: Vec<&str> = self.sources.iter().map(String::as_str).collect();
        let assessment = self.guard.check_output(
            &answer.text,
            Some(GroundingContext {
                question,
                sources: &sources,
            }),
        );
        if assessment.blocked {
            answer.mode = AnswerMode::Blocked;
            answer.text = assessment.output_text.clone();
            answer.citations.clear();
        } else {
            if !assessment.replacements.is_empty() {
                let moved = &assessment.replacements;
                for citation in &mut answer.citations {
                    citation.start = Replacement::shift(moved, citation.start, false);
                    citation.end = Replacement::shift(moved, citation.end, true);
                }
                answer.text = assessment.output_text.clone();
            }
            for reference in answer.citations.iter_mut().flat_map(|c| c.references.iter_mut()) {
                reference.excerpt = self.guard.redact_excerpt(&reference.excerpt);
            }
        }
        self.trace.output = Some(assessment);
        answer
    }
}

/// Runs one `ask` and appends its audit record: the question, every chunk the answer was drawn
/// from (`used`), every model involved (`models`, starting with the embedder) and, under a
/// guardrail policy, a summary of what it did.
fn audited_ask(
    searcher: &Searcher<'_>,
    question: &str,
    k: usize,
    filter: Option<Filter>,
    guard: Option<Arc<PolicyGuard>>,
    body: impl FnOnce(
        &SearchRequest,
        &mut Vec<ChunkRef>,
        &mut Vec<String>,
        Option<&mut Screen>,
    ) -> Result<Answer, ServiceError>,
) -> Result<Answer, ServiceError> {
    let started = std::time::Instant::now();
    let mut request = SearchRequest {
        query: question.to_string(),
        k,
        search_type: Some(SearchType::Hybrid),
        filter,
    };
    let mut entry =
        searcher
            .groundwork()
            .entry("ask", Some(&searcher.knowledge_base().name), request.audit_json());
    let mut used = Vec::new();
    let mut models = vec![searcher.embedder().fingerprint().to_string()];
    let mut screen = guard.map(|guard| Screen {
        trace: GuardrailTrace::new(guard.name()),
        guard,
        sources: Vec::new(),
    });
    let input = screen.as_mut().map(|screen| {
        let assessment = screen.guard.check_input(question);
        screen.trace.input = Some(assessment.clone());
        assessment
    });
    let result = match input {
        Some(input) if input.blocked => Ok(Answer {
            mode: AnswerMode::Blocked,
            text: input.output_text,
            citations: Vec::new(),
            models: models.clone(),
            usage: None,
            guardrail: None,
        }),
        input => {
            // An anonymised question is what retrieval and the model see.
            if let Some(input) = input.filter(|input| input.intervened()) {
                request.query = input.output_text;
            }
            body(&request, &mut used, &mut models, screen.as_mut()).map(|answer| match screen.as_mut() {
                Some(screen) => screen.output(&request.query, answer),
                None => answer,
            })
        }
    };
    let result = result.map(|mut answer| {
        if let Some(mut screen) = screen {
            screen.trace.settle();
            entry.request["guardrail"] = screen.trace.audit_summary();
            answer.guardrail = Some(screen.trace);
        }
        answer
    });
    entry.models = models;
    searcher.groundwork().record_read(entry, started, &result, used)?;
    result
}

fn generate(
    searcher: &Searcher<'_>,
    llm: &LlmConfig,
    request: &SearchRequest,
    on_delta: Option<&mut dyn FnMut(&str)>,
    used: &mut Vec<ChunkRef>,
    models: &mut Vec<String>,
    screen: Option<&mut Screen>,
) -> Result<Answer, ServiceError> {
    let hits = searcher.retrieve(request)?.hits;
    let (shown, suspicious): (Vec<Hit>, Vec<bool>) = match screen {
        Some(screen) => screen.retrieved(hits).into_iter().unzip(),
        None => {
            let clean = vec![false; hits.len()];
            (hits, clean)
        }
    };
    *used = crate::search::chunk_refs(&shown);
    if shown.is_empty() {
        // Nothing readable matched: no call to the model, which could only invent.
        return Ok(Answer {
            mode: AnswerMode::NoAnswer,
            text: "No passage you can read in the knowledge base answers this question.".to_string(),
            citations: Vec::new(),
            models: models.clone(),
            usage: None,
            guardrail: None,
        });
    }
    let model = groundwork_llm::connect(llm).map_err(generation_error)?;
    models.push(model.id());
    let sources: Vec<SourceText<'_>> = shown
        .iter()
        .zip(&suspicious)
        .map(|(hit, &suspicious)| SourceText {
            uri: &hit.uri,
            text: &hit.content,
            suspicious,
        })
        .collect();
    let chat = prompt::build(&request.query, &sources, llm.limits());
    let reply = model.chat(&chat, on_delta).map_err(generation_error)?;
    let mapped = citations::map(&reply.text, shown.len());
    let citations = mapped
        .citations
        .iter()
        .map(|cited| Citation {
            start: cited.start,
            end: cited.end,
            references: cited
                .sources
                .iter()
                .map(|&n| chunk_reference(&shown[n - 1]))
                .collect(),
        })
        .collect();
    Ok(Answer {
        mode: AnswerMode::Generated,
        text: mapped.text,
        citations,
        models: models.clone(),
        usage: reply.usage.map(|u| TokenUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        }),
        guardrail: None,
    })
}

/// A whole retrieved chunk as the evidence behind a generated sentence.
fn chunk_reference(hit: &Hit) -> Reference {
    Reference {
        uri: hit.uri.clone(),
        object_version: hit.object_version.clone(),
        document_id: hit.document_id,
        chunk_id: hit.chunk_id,
        char_start: hit.char_start,
        char_end: hit.char_end,
        page: hit.page,
        heading: hit.heading.clone(),
        excerpt: hit.content.clone(),
    }
}

fn generation_error(error: LlmError) -> ServiceError {
    ServiceError::new(ErrorCode::GenerationFailed, error.to_string())
}

/// Answers `question` from the knowledge base behind `searcher`, as the searcher's actor, and
/// audits the question with every chunk the answer was drawn from.
pub fn extractive_answer(searcher: &Searcher<'_>, request: &AskRequest) -> Result<Answer, ServiceError> {
    let (question, k, filter) = (request.question.as_str(), request.k, request.filter.clone());
    let guard = match searcher.groundwork().guardrail_for(searcher.knowledge_base()) {
        Ok(guard) => guard,
        // The knowledge base names a policy the config no longer has: refuse, never answer
        // unguarded.
        Err(error) => return refuse(searcher, question, k, error),
    };
    audited_ask(
        searcher,
        question,
        k,
        filter,
        guard,
        |request, used, _, screen| answer(searcher, request, used, screen),
    )
}

fn answer(
    searcher: &Searcher<'_>,
    request: &SearchRequest,
    used: &mut Vec<ChunkRef>,
    screen: Option<&mut Screen>,
) -> Result<Answer, ServiceError> {
    let question = request.query.as_str();
    let mut hits = searcher.retrieve(request)?.hits;
    if let Some(screen) = screen {
        // Quoting is all an extractive answer does, so a flagged chunk that is kept needs no
        // marking; a dropped one is not quoted.
        hits = screen.retrieved(hits).into_iter().map(|(hit, _)| hit).collect();
    }
    *used = crate::search::chunk_refs(&hits);
    let models = vec![searcher.embedder().fingerprint().to_string()];
    let candidates: Vec<(usize, &Hit, usize, usize)> = hits
        .iter()
        .enumerate()
        .flat_map(|(rank, hit)| {
            sentence_spans(&hit.content)
                .into_iter()
                .map(move |(start, end)| (rank, hit, start, end))
        })
        .filter(|(_, hit, start, end)| hit.content[*start..*end].split_whitespace().count() >= 3)
        .take(MAX_CANDIDATES)
        .collect();
    if candidates.is_empty() {
        return Ok(Answer {
            mode: AnswerMode::NoAnswer,
            text: "No relevant passages were found in the knowledge base.".to_string(),
            citations: Vec::new(),
            models,
            usage: None,
            guardrail: None,
        });
    }
    let mut inputs: Vec<&str> = vec![question];
    inputs.extend(candidates.iter().map(|(_, hit, s, e)| &hit.content[*s..*e]));
    let vectors = searcher.embedder().embed(&inputs)?;
    let (query, sentences) = vectors.split_first().expect("the question was embedded");
    let mut scored: Vec<(f32, usize)> = sentences
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let similarity: f32 = query.iter().zip(v).map(|(a, b)| a * b).sum();
            // A slight preference for sentences from better-ranked chunks breaks near-ties
            // in favour of the retriever's judgement.
            let rank_bonus = 0.02 / (1.0 + candidates[i].0 as f32);
            (similarity + rank_bonus, i)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let best = scored[0].0;
    let mut text = String::new();
    let mut citations = Vec::new();
    for &(score, i) in scored.iter().take(MAX_SENTENCES) {
        if score < best * RELATIVE_FLOOR {
            break;
        }
        let (_, hit, start, end) = candidates[i];
        let sentence = &hit.content[start..end];
        if !text.is_empty() {
            text.push(' ');
        }
        let answer_start = text.len();
        text.push_str(sentence);
        // Chunk offsets are in Unicode scalars; the sentence's byte span inside the chunk is
        // converted the same way so the citation points into the document's extracted text.
        let char_start = hit.char_start + hit.content[..start].chars().count();
        let char_end = char_start + sentence.chars().count();
        citations.push(Citation {
            start: answer_start,
            end: text.len(),
            references: vec![Reference {
                uri: hit.uri.clone(),
                object_version: hit.object_version.clone(),
                document_id: hit.document_id,
                chunk_id: hit.chunk_id,
                char_start,
                char_end,
                page: hit.page,
                heading: hit.heading.clone(),
                excerpt: sentence.to_string(),
            }],
        });
    }
    Ok(Answer {
        mode: AnswerMode::Extractive,
        text,
        citations,
        models,
        usage: None,
        guardrail: None,
    })
}

/// Byte spans of the sentences of `text`, trimmed. A sentence ends at `.`, `!` or `?` followed
/// by whitespace, or at a line break; good enough for choosing quotable spans.
fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|(_, n)| n.is_whitespace());
        let boundary = c == '\n' || (matches!(c, '.' | '!' | '?') && next_is_space);
        if boundary {
            push_trimmed(text, start, i + c.len_utf8(), &mut spans);
            start = i + c.len_utf8();
        }
    }
    push_trimmed(text, start, text.len(), &mut spans);
    spans
}

fn push_trimmed(text: &str, start: usize, end: usize, spans: &mut Vec<(usize, usize)>) {
    let piece = &text[start..end];
    let leading = piece.len() - piece.trim_start().len();
    let trimmed = piece.trim();
    if !trimmed.is_empty() {
        spans.push((start + leading, start + leading + trimmed.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::sentence_spans;

    #[test]
    fn splits_sentences_and_lines() {
        let text = "Leave is 20 days. Ask HR!\nSee the table  ";
        let pieces: Vec<&str> = sentence_spans(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(pieces, ["Leave is 20 days.", "Ask HR!", "See the table"]);
        assert_eq!(sentence_spans("3.14 is pi"), vec![(0, 10)]);
    }
}
