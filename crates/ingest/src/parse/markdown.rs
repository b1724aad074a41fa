//! Markdown: keeps the text, strips markup lightly and records ATX (`# Title`) and setext
//! (`Title` underlined with `===`/`---`) headings.
//!
//! Not a CommonMark implementation: it removes what would pollute retrieval text (emphasis
//! markers, link targets, image URLs, code fences, blockquote markers, link reference
//! definitions, thematic breaks) and leaves everything else (lists, tables, inline HTML) as
//! written. Every step is linear in the line length; bracket matching uses an explicit stack,
//! so hostile nesting cannot overflow the call stack.

use std::collections::HashMap;

use super::HeadingSpan;
use super::builder::TextBuilder;

pub(crate) fn parse(text: &str, b: &mut TextBuilder) -> Vec<HeadingSpan> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let mut headings = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut prev_blank = true;
    let mut i = 0;
    while i < lines.len() {
        if b.is_full() {
            break;
        }
        let line = lines[i];
        i += 1;
        let trimmed = line.trim_start();
        if let Some((fc, flen)) = fence {
            let run = trimmed.chars().take_while(|&c| c == fc).count();
            if run >= flen && trimmed[run * fc.len_utf8()..].trim().is_empty() {
                fence = None;
                b.line_break();
            } else {
                b.push_str(line);
                b.push('\n');
            }
            continue;
        }
        if trimmed.is_empty() {
            // Blank lines separate blocks; several in a row mean the same as one.
            b.paragraph_break();
            prev_blank = true;
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent < 4
            && let Some(fc) = trimmed.chars().next().filter(|&c| c == '`' || c == '~')
        {
            let run = trimmed.chars().take_while(|&c| c == fc).count();
            if run >= 3 {
                fence = Some((fc, run));
                b.line_break();
                prev_blank = false;
                continue;
            }
        }
        if indent < 4
            && let Some((level, title)) = atx_heading(trimmed)
        {
            heading(b, &mut headings, level, title);
            prev_blank = true;
            continue;
        }
        if indent < 4
            && prev_blank
            && let Some(next) = lines.get(i)
            && let Some(level) = setext_underline(next)
        {
            heading(b, &mut headings, level, trimmed);
            i += 1;
            prev_blank = true;
            continue;
        }
        prev_blank = false;
        if indent < 4 && is_thematic_break(trimmed) {
            b.paragraph_break();
            continue;
        }
        if indent < 4 && is_link_reference_definition(trimmed) {
            continue;
        }
        let mut content = line;
        if indent < 4 && trimmed.starts_with('>') {
            content = trimmed;
            while let Some(rest) = content.strip_prefix('>') {
                content = rest.strip_prefix(' ').unwrap_or(rest).trim_start_matches(' ');
                if !content.starts_with('>') {
                    break;
                }
            }
        }
        b.push_str(&strip_inline(content));
        b.push('\n');
    }
    headings
}

fn heading(b: &mut TextBuilder, headings: &mut Vec<HeadingSpan>, level: u8, raw: &str) {
    let title = strip_inline(raw.trim());
    let title = title.trim();
    b.paragraph_break();
    let start = b.mark();
    b.push_str(title);
    let written = b.since(start).trim().to_owned();
    if !written.is_empty() {
        headings.push(HeadingSpan {
            level,
            title: written,
            start,
        });
    }
    b.paragraph_break();
}

/// `# Title`, `## Title ##` → (level, raw title).
fn atx_heading(line: &str) -> Option<(u8, &str)> {
    let hashes = line.bytes().take_while(|&c| c == b'#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &line[hashes..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let mut title = rest.trim();
    // Optional closing sequence: spaces then only '#'.
    let without = title.trim_end_matches('#');
    if without.is_empty() || without.ends_with([' ', '\t']) {
        title = without.trim_end();
    }
    u8::try_from(hashes).ok().map(|l| (l, title))
}

/// `===` → 1, `---` → 2 (a setext underline; at least two `-` so a lone `-` list item is not
/// taken for one).
fn setext_underline(line: &str) -> Option<u8> {
    let t = line.trim();
    if t.len() >= 2 && t.bytes().all(|c| c == b'=') {
        Some(1)
    } else if t.len() >= 2 && t.bytes().all(|c| c == b'-') {
        Some(2)
    } else if t.len() == 1 && t == "=" {
        Some(1)
    } else {
        None
    }
}

fn is_thematic_break(line: &str) -> bool {
    let mut marker = None;
    let mut count = 0;
    for c in line.chars() {
        match c {
            ' ' | '\t' => {}
            '-' | '*' | '_' => {
                if marker.is_some_and(|m| m != c) {
                    return false;
                }
                marker = Some(c);
                count += 1;
            }
            _ => return false,
        }
    }
    count >= 3
}

/// `[label]: destination` on its own line.
fn is_link_reference_definition(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else {
        return false;
    };
    let Some(close) = rest.find("]:") else {
        return false;
    };
    close > 0 && !rest[..close].contains(['[', ']']) && !rest[close + 2..].trim().is_empty()
}

/// For each opening bracket `open` at index i, the index of its matching `close`, computed in
/// one pass with an explicit stack.
fn match_brackets(chars: &[char], open: char, close: char) -> Vec<Option<usize>> {
    let mut matches = vec![None; chars.len()];
    let mut stack = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += 2;
            continue;
        }
        if c == open {
            stack.push(i);
        } else if c == close
            && let Some(o) = stack.pop()
        {
            matches[o] = Some(i);
        }
        i += 1;
    }
    matches
}

/// Removes inline markup from one line: emphasis/strikethrough markers, code backticks,
/// `[text](url)` → text, `![alt](url)` → alt, `[text][ref]` → text, `<https://..>` → URL,
/// backslash escapes.
pub(crate) fn strip_inline(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    if !chars
        .iter()
        .any(|c| matches!(c, '*' | '_' | '~' | '`' | '[' | '<' | '\\'))
    {
        return line.to_owned();
    }
    let square = match_brackets(&chars, '[', ']');
    let round = match_brackets(&chars, '(', ')');
    let mut out = String::with_capacity(line.len());
    // (index of a link label's closing `]`, index to continue at after the link target).
    let mut skips: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    let closing_runs = match_backtick_runs(&chars);
    while i < chars.len() {
        // Drop skips jumped over (e.g. by a code span), then apply one that ends here.
        while skips.last().is_some_and(|&(at, _)| at < i) {
            skips.pop();
        }
        if let Some(&(at, resume)) = skips.last()
            && at == i
        {
            skips.pop();
            i = resume;
            continue;
        }
        let c = chars[i];
        match c {
            '\\' if chars.get(i + 1).is_some_and(|n| n.is_ascii_punctuation()) => {
                out.push(chars[i + 1]);
                i += 2;
            }
            '`' => {
                let run = chars[i..].iter().take_while(|&&x| x == '`').count();
                if let Some(end) = closing_runs.get(&i).copied() {
                    let inner: String = chars[i + run..end].iter().collect();
                    let inner = inner
                        .strip_prefix(' ')
                        .and_then(|s| s.strip_suffix(' '))
                        .unwrap_or(&inner);
                    out.push_str(inner);
                    i = end + run;
                } else {
                    out.extend(&chars[i..i + run]);
                    i += run;
                }
            }
            '!' if chars.get(i + 1) == Some(&'[') => {
                if let Some(resume) = link_target_end(&chars, i + 1, &square, &round) {
                    if let Some(close) = square[i + 1] {
                        skips.push((close, resume));
                    }
                    i += 2;
                } else {
                    out.push('!');
                    i += 1;
                }
            }
            '[' => {
                if let Some(resume) = link_target_end(&chars, i, &square, &round) {
                    if let Some(close) = square[i] {
                        skips.push((close, resume));
                    }
                } else {
                    out.push('[');
                }
                i += 1;
            }
            '<' => {
                if let Some(end) = autolink_end(&chars, i) {
                    out.extend(&chars[i + 1..end]);
                    i = end + 1;
                } else {
                    out.push('<');
                    i += 1;
                }
            }
            '*' | '_' | '~' => {
                let run = chars[i..].iter().take_while(|&&x| x == c).count();
                let prev = i.checked_sub(1).map(|p| chars[p]);
                let next = chars.get(i + run).copied();
                let boundary =
                    |x: Option<char>| x.is_none_or(|x| x.is_whitespace() || x.is_ascii_punctuation());
                let left = next.is_some_and(|n| !n.is_whitespace()) && boundary(prev);
                let right = prev.is_some_and(|p| !p.is_whitespace()) && boundary(next);
                let strip = (left || right) && (c != '~' || run == 2);
                if !strip {
                    out.extend(&chars[i..i + run]);
                }
                i += run;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// If `[` at `open` starts a link (`[t](u)`, `[t][r]`, `[t][]`), the index just past the
/// link's target.
fn link_target_end(
    chars: &[char],
    open: usize,
    square: &[Option<usize>],
    round: &[Option<usize>],
) -> Option<usize> {
    let close = square.get(open).copied().flatten()?;
    match chars.get(close + 1) {
        Some('(') => round.get(close + 1).copied().flatten().map(|e| e + 1),
        Some('[') => square.get(close + 1).copied().flatten().map(|e| e + 1),
        _ => None,
    }
}

/// Maps the start of each backtick run to the start of the next run of the same length (its
/// closing run), in one backwards pass.
fn match_backtick_runs(chars: &[char]) -> HashMap<usize, usize> {
    let mut runs = Vec::new();
    let mut j = 0;
    while j < chars.len() {
        if chars[j] == '`' {
            let n = chars[j..].iter().take_while(|&&x| x == '`').count();
            runs.push((j, n));
            j += n;
        } else {
            j += 1;
        }
    }
    let mut next_by_len: HashMap<usize, usize> = HashMap::new();
    let mut closing = HashMap::new();
    for &(start, len) in runs.iter().rev() {
        if let Some(&close) = next_by_len.get(&len) {
            closing.insert(start, close);
        }
        next_by_len.insert(len, start);
    }
    closing
}

/// `<scheme:...>` with no whitespace inside (bounded scan).
fn autolink_end(chars: &[char], open: usize) -> Option<usize> {
    let rest = chars.get(open + 1..)?;
    let prefix: String = rest.iter().take(8).collect::<String>().to_ascii_lowercase();
    if !(prefix.starts_with("http://") || prefix.starts_with("https://") || prefix.starts_with("mailto:")) {
        return None;
    }
    rest.iter()
        .take(2048)
        .position(|&c| c == '>' || c.is_whitespace() || c == '<')
        .filter(|&p| rest[p] == '>')
        .map(|p| open + 1 + p)
}
