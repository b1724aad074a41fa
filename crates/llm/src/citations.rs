//! From generated text with `[n]` markers to clean text plus citations: each sentence that
//! carries markers becomes a span of the clean text supported by those sources.
//!
//! Markers naming a source that was not given are dropped and counted; a sentence without a
//! valid marker gets no citation (the grounding check of the guardrails milestone scores it).
//! Reasoning blocks some local models emit (`<think>…</think>`) are removed first.

/// A span of the clean text (byte offsets) and the 1-based source numbers behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cited {
    pub start: usize,
    pub end: usize,
    pub sources: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub text: String,
    pub citations: Vec<Cited>,
    /// Markers that named no given source.
    pub invalid_markers: usize,
}

/// Maps `generated` against `source_count` sources.
pub fn map(generated: &str, source_count: usize) -> Mapped {
    let without_thinking = strip_thinking(generated);
    let mut text = String::with_capacity(without_thinking.len());
    let mut citations = Vec::new();
    let mut invalid_markers = 0;
    let mut sentence_start = 0;
    let mut pending: Vec<usize> = Vec::new();
    let chars: Vec<char> = without_thinking.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '['
            && let Some((numbers, consumed)) = marker(&chars[i..])
        {
            for number in numbers {
                if (1..=source_count).contains(&number) {
                    if !pending.contains(&number) {
                        pending.push(number);
                    }
                } else {
                    invalid_markers += 1;
                }
            }
            // "word [1]." → "word." : drop the space the marker leaned on.
            if text.ends_with(' ') {
                text.pop();
            }
            i += consumed;
            // "Done. [2][1] Next" — the markers closed the sentence before them.
            let another_marker = chars.get(i) == Some(&'[') && marker(&chars[i..]).is_some();
            if !another_marker && text.ends_with(['.', '!', '?']) {
                close_sentence(&text, &mut sentence_start, &mut pending, &mut citations);
            }
            continue;
        }
        let ch = chars[i];
        text.push(ch);
        i += 1;
        let ends_sentence =
            matches!(ch, '.' | '!' | '?' | '\n') && chars.get(i).is_none_or(|c| c.is_whitespace());
        if ends_sentence {
            // Markers right after the full stop belong to this sentence too.
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            if j < chars.len() && chars[j] == '[' && marker(&chars[j..]).is_some() {
                continue;
            }
            close_sentence(&text, &mut sentence_start, &mut pending, &mut citations);
        }
    }
    close_sentence(&text, &mut sentence_start, &mut pending, &mut citations);
    let trimmed_end = text.trim_end().len();
    text.truncate(trimmed_end);
    for citation in &mut citations {
        citation.end = citation.end.min(trimmed_end);
    }
    citations.retain(|c| c.start < c.end);
    Mapped {
        text,
        citations,
        invalid_markers,
    }
}

fn close_sentence(text: &str, start: &mut usize, pending: &mut Vec<usize>, citations: &mut Vec<Cited>) {
    let span = &text[*start..];
    let leading = span.len() - span.trim_start().len();
    let trailing = span.len() - span.trim_end().len();
    let (from, to) = (*start + leading, text.len() - trailing);
    if !pending.is_empty() && from < to {
        citations.push(Cited {
            start: from,
            end: to,
            sources: std::mem::take(pending),
        });
    }
    pending.clear();
    *start = text.len();
}

/// `[1]`, `[1, 2]`, `[1][2]` is two markers; returns the numbers and the chars consumed.
fn marker(chars: &[char]) -> Option<(Vec<usize>, usize)> {
    let close = chars.iter().take(24).position(|c| *c == ']')?;
    let inner: String = chars[1..close].iter().collect();
    let numbers: Option<Vec<usize>> = inner
        .split([',', ';'])
        .map(|part| {
            let part = part
                .trim()
                .trim_start_matches("source")
                .trim_start_matches("Source")
                .trim();
            part.parse::<usize>().ok()
        })
        .collect();
    // `[0]` is an index in code, not a source: sources count from 1.
    let numbers = numbers.filter(|n| !n.is_empty() && n.iter().all(|&n| n >= 1))?;
    Some((numbers, close + 1))
}

fn strip_thinking(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("<think>") {
        out.push_str(&rest[..open]);
        match rest[open..].find("</think>") {
            Some(close) => rest = &rest[open + close + "</think>".len()..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_spans_of_clean_text() {
        let mapped = map(
            "<think>let me see</think>Leave is twenty weeks [1]. It is paid [1, 2]. Nobody knows why. Cats [7].",
            2,
        );
        assert_eq!(
            mapped.text,
            "Leave is twenty weeks. It is paid. Nobody knows why. Cats."
        );
        assert_eq!(mapped.invalid_markers, 1);
        let spans: Vec<(&str, Vec<usize>)> = mapped
            .citations
            .iter()
            .map(|c| (&mapped.text[c.start..c.end], c.sources.clone()))
            .collect();
        assert_eq!(
            spans,
            vec![("Leave is twenty weeks.", vec![1]), ("It is paid.", vec![1, 2])]
        );
    }

    #[test]
    fn markers_after_the_full_stop_and_square_brackets_that_are_not_markers() {
        let mapped = map("Glaciers shrink. [2][1] Arrays use a[0] in C.", 2);
        assert_eq!(mapped.text, "Glaciers shrink. Arrays use a[0] in C.");
        assert_eq!(mapped.citations[0].sources, vec![2, 1]);
        assert_eq!(
            &mapped.text[mapped.citations[0].start..mapped.citations[0].end],
            "Glaciers shrink."
        );
    }
}
