//! The extractive answer: the sentences of the top chunks that are closest in meaning to the
//! question, each cited to its object version, chunk and character span.
//!
//! No text is generated, so nothing can be invented and a prompt injection inside a document is
//! at worst quoted, never obeyed. The LLM path of a later milestone fills the same [`Answer`].

use crate::error::ServiceError;
use crate::search::{SearchRequest, Searcher};
use groundwork_core::{Answer, AnswerMode, Citation, Filter, Hit, Reference};
use groundwork_index::SearchType;

/// Sentences quoted at most.
const MAX_SENTENCES: usize = 3;
/// Candidate sentences embedded at most (bounds the work per question).
const MAX_CANDIDATES: usize = 48;
/// Sentences much weaker than the best one are left out.
const RELATIVE_FLOOR: f32 = 0.75;

/// Answers `question` from the knowledge base behind `searcher`, as the searcher's actor, and
/// audits the question with every chunk the answer was drawn from.
pub fn extractive_answer(
    searcher: &Searcher<'_>,
    question: &str,
    k: usize,
    filter: Option<Filter>,
) -> Result<Answer, ServiceError> {
    let started = std::time::Instant::now();
    let request = SearchRequest {
        query: question.to_string(),
        k,
        search_type: Some(SearchType::Hybrid),
        filter,
    };
    let mut entry =
        searcher
            .groundwork()
            .entry("ask", Some(&searcher.knowledge_base().name), request.audit_json());
    entry.models = vec![searcher.embedder().fingerprint().to_string()];
    let mut used = Vec::new();
    let result = answer(searcher, &request, &mut used);
    searcher.groundwork().record_read(entry, started, &result, used)?;
    result
}

fn answer(
    searcher: &Searcher<'_>,
    request: &SearchRequest,
    used: &mut Vec<groundwork_govern::audit::ChunkRef>,
) -> Result<Answer, ServiceError> {
    let question = request.query.as_str();
    let response = searcher.retrieve(&SearchRequest { ..request.clone() })?;
    *used = crate::search::chunk_refs(&response.hits);
    let models = vec![searcher.embedder().fingerprint().to_string()];
    let candidates: Vec<(usize, &Hit, usize, usize)> = response
        .hits
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
