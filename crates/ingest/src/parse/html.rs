//! HTML: a tolerant, linear tag scanner (no DOM, so no recursion and no memory blow-up on
//! hostile nesting).
//!
//! Drops `script`, `style`, `noscript`, `template`, `svg`, `iframe`, `object` and comments;
//! turns block elements into line/paragraph breaks, list items into `- ` lines and table
//! cells into ` | `-separated rows; collapses whitespace outside `<pre>`; decodes character
//! references. `<title>` is emitted first and recorded as a level-0 heading; `h1`..`h6` are
//! recorded as headings at their position.

use super::HeadingSpan;
use super::builder::TextBuilder;

/// Elements whose content is never text for retrieval.
const SKIP_CONTENT: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "iframe", "object",
];

const PARAGRAPH_BLOCKS: &[&str] = &[
    "p",
    "table",
    "ul",
    "ol",
    "dl",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "nav",
    "aside",
    "figure",
    "form",
    "fieldset",
    "address",
    "details",
];

const LINE_BLOCKS: &[&str] = &[
    "div",
    "li",
    "tr",
    "dt",
    "dd",
    "figcaption",
    "summary",
    "caption",
    "thead",
    "tbody",
    "tfoot",
    "body",
    "center",
    "legend",
    "option",
];

pub(crate) fn parse(html: &str, b: &mut TextBuilder) -> Vec<HeadingSpan> {
    let bytes = html.as_bytes();
    let mut headings = Vec::new();
    let mut open_heading: Option<(u8, usize)> = None;
    let mut pre_depth = 0usize;
    let mut i = 0;
    while i < bytes.len() && !b.is_full() {
        if bytes[i] != b'<' {
            let end = memchr(b'<', bytes, i);
            text(&html[i..end], pre_depth > 0, b);
            i = end;
            continue;
        }
        let rest = &bytes[i..];
        if rest.starts_with(b"<!--") {
            i = find(bytes, i + 4, b"-->").map_or(bytes.len(), |e| e + 3);
            continue;
        }
        if rest.len() > 1 && (rest[1] == b'!' || rest[1] == b'?') {
            i = memchr(b'>', bytes, i).saturating_add(1).min(bytes.len());
            continue;
        }
        let closing = rest.get(1) == Some(&b'/');
        let name_start = i + 1 + usize::from(closing);
        let name_len = bytes[name_start.min(bytes.len())..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-' || **c == b':')
            .count();
        if name_len == 0 || !bytes[name_start].is_ascii_alphabetic() {
            // A lone '<' is text.
            text("<", pre_depth > 0, b);
            i += 1;
            continue;
        }
        let name = html[name_start..name_start + name_len].to_ascii_lowercase();
        let Some(tag_end) = tag_end(bytes, name_start + name_len) else {
            // Unterminated tag at the end of input: drop it.
            break;
        };
        i = tag_end + 1;
        if closing {
            end_tag(&name, b, &mut headings, &mut open_heading, &mut pre_depth);
            continue;
        }
        if SKIP_CONTENT.contains(&name.as_str()) {
            i = skip_to_close(bytes, i, &name);
            continue;
        }
        if name == "title" {
            let close = find_close(bytes, i, "title");
            let raw = &html[i..close.unwrap_or(bytes.len())];
            let title = collapse(&decode_entities(raw));
            let title = title.trim();
            if !title.is_empty() {
                b.paragraph_break();
                let start = b.mark();
                b.push_str(title);
                headings.push(HeadingSpan {
                    level: 0,
                    title: b.since(start).trim().to_owned(),
                    start,
                });
                b.paragraph_break();
            }
            i = skip_to_close(bytes, i, "title");
            continue;
        }
        start_tag(&name, b, &mut open_heading, &mut pre_depth);
        let self_closing = bytes[..tag_end].ends_with(b"/");
        if self_closing {
            end_tag(&name, b, &mut headings, &mut open_heading, &mut pre_depth);
        }
    }
    if let Some((level, start)) = open_heading {
        push_heading(b, &mut headings, level, start);
    }
    headings
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

fn start_tag(name: &str, b: &mut TextBuilder, open_heading: &mut Option<(u8, usize)>, pre_depth: &mut usize) {
    if let Some(level) = heading_level(name) {
        b.paragraph_break();
        *open_heading = Some((level, b.mark()));
        return;
    }
    match name {
        "br" => b.push('\n'),
        "li" => {
            b.line_break();
            b.push_str("- ");
        }
        "td" | "th" => {
            if !b.at_line_start() {
                b.push_str(" | ");
            }
        }
        "img" => {}
        _ => {
            if name == "pre" {
                *pre_depth += 1;
            }
            if PARAGRAPH_BLOCKS.contains(&name) {
                b.paragraph_break();
            } else if LINE_BLOCKS.contains(&name) {
                b.line_break();
            }
        }
    }
}

fn end_tag(
    name: &str,
    b: &mut TextBuilder,
    headings: &mut Vec<HeadingSpan>,
    open_heading: &mut Option<(u8, usize)>,
    pre_depth: &mut usize,
) {
    if heading_level(name).is_some() {
        if let Some((level, start)) = open_heading.take() {
            push_heading(b, headings, level, start);
        }
        b.paragraph_break();
        return;
    }
    if name == "pre" {
        *pre_depth = pre_depth.saturating_sub(1);
    }
    if PARAGRAPH_BLOCKS.contains(&name) {
        b.paragraph_break();
    } else if LINE_BLOCKS.contains(&name) {
        b.line_break();
    }
}

fn push_heading(b: &TextBuilder, headings: &mut Vec<HeadingSpan>, level: u8, start: usize) {
    let title = collapse(b.since(start));
    let title = title.trim();
    if !title.is_empty() {
        headings.push(HeadingSpan {
            level,
            title: title.to_owned(),
            start,
        });
    }
}

/// Emits a text node: entities decoded, whitespace collapsed unless inside `<pre>`.
fn text(raw: &str, pre: bool, b: &mut TextBuilder) {
    let decoded = decode_entities(raw);
    if pre {
        b.push_str(&decoded);
        return;
    }
    for c in decoded.chars() {
        if c.is_whitespace() && c != '\u{a0}' {
            if !b.ends_with_space() {
                b.push(' ');
            }
        } else {
            b.push(c);
        }
    }
}

/// Collapses whitespace runs to single spaces.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn memchr(needle: u8, hay: &[u8], from: usize) -> usize {
    hay[from.min(hay.len())..]
        .iter()
        .position(|&c| c == needle)
        .map_or(hay.len(), |p| from + p)
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// Index of the `>` closing a tag whose attributes start at `from`, honouring quoted values.
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut quote = None;
    for (j, &c) in bytes.iter().enumerate().skip(from) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'>' => return Some(j),
            None => {}
        }
    }
    None
}

/// Position of `</name` (ASCII case-insensitive) at or after `from`.
fn find_close(bytes: &[u8], from: usize, name: &str) -> Option<usize> {
    let n = name.len() + 2;
    let mut j = from;
    while j + n <= bytes.len() {
        let k = memchr(b'<', bytes, j);
        if k + n > bytes.len() {
            return None;
        }
        if bytes[k + 1] == b'/' && bytes[k + 2..k + n].eq_ignore_ascii_case(name.as_bytes()) {
            return Some(k);
        }
        j = k + 1;
    }
    None
}

/// Skips the content of a raw-text element: returns the index after its closing tag (or the
/// end of input).
fn skip_to_close(bytes: &[u8], from: usize, name: &str) -> usize {
    match find_close(bytes, from, name) {
        Some(k) => memchr(b'>', bytes, k).saturating_add(1).min(bytes.len()),
        None => bytes.len(),
    }
}

/// Decodes character references: numeric (`&#233;`, `&#xE9;`) and the common named ones.
/// Unknown references are left as written.
pub(crate) fn decode_entities(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('&') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let semi = rest.as_bytes().iter().take(34).position(|&c| c == b';');
        let decoded = semi.and_then(|e| entity(&rest[1..e]).map(|c| (c, e)));
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
            u32::from_str_radix(hex, 16).ok()?
        } else {
            num.parse::<u32>().ok()?
        };
        return Some(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "para" => '¶',
        "deg" => '°',
        "plusmn" => '±',
        "times" => '×',
        "divide" => '÷',
        "shy" => '\u{ad}',
        "zwj" => '\u{200d}',
        "zwnj" => '\u{200c}',
        "eacute" => 'é',
        "egrave" => 'è',
        "agrave" => 'à',
        "aacute" => 'á',
        "auml" => 'ä',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "Auml" => 'Ä',
        "Ouml" => 'Ö',
        "Uuml" => 'Ü',
        "szlig" => 'ß',
        "ccedil" => 'ç',
        "ntilde" => 'ñ',
        _ => return None,
    })
}
