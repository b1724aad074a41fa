//! Text decoding for the text formats, as browsers do it: a byte order mark wins (UTF-8,
//! UTF-16 LE/BE; BOM-less UTF-16 is recognised by its pattern of zero bytes); then valid UTF-8;
//! then the encoding the document declares (a sidecar's `encoding`, HTML `<meta charset>` or
//! `http-equiv`, an XML declaration); then Mozilla's detector (`chardetng`, the one Firefox
//! uses) guesses among the legacy encodings. Decoding itself is `encoding_rs` (the WHATWG
//! Encoding Standard). A guess the detector is not confident about, and any byte sequence an
//! encoding cannot map, is a warning on the document — never silent mojibake.
//!
//! Also hosts the binary-content heuristics: NUL bytes in the first 8 KiB, or a high ratio of
//! control characters, mean "not text".

use super::ParseError;
use encoding_rs::Encoding;

/// How much of the input the heuristics look at.
const SNIFF_LEN: usize = 8 * 1024;
/// Non-ASCII bytes below which a detector's guess is reported as of low confidence.
const MIN_EVIDENCE: usize = 16;
/// How far into a document a charset declaration is looked for (HTML's prescan reads 1 KiB;
/// real pages often put it later).
const DECLARATION_LEN: usize = 4 * 1024;

pub(crate) struct Decoded {
    pub(crate) text: String,
    pub(crate) encoding: &'static str,
    pub(crate) warnings: Vec<String>,
}

/// Decodes text bytes, or fails with [`ParseError::Binary`] when they are not text.
/// `declared` is an encoding label from outside the bytes (a sidecar), which wins over any
/// declaration inside them; an unknown label is a warning and is ignored.
pub(crate) fn decode(bytes: &[u8], declared: Option<&str>) -> Result<Decoded, ParseError> {
    let mut warnings = Vec::new();
    let (text, encoding) = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        (utf8_lossy(rest, &mut warnings), "utf-8")
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        (utf16(rest, false, &mut warnings), "utf-16le")
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        (utf16(rest, true, &mut warnings), "utf-16be")
    } else if let Some(big_endian) = utf16_without_bom(bytes) {
        warnings.push("UTF-16 detected without a byte order mark".to_owned());
        let enc = if big_endian { "utf-16be" } else { "utf-16le" };
        (utf16(bytes, big_endian, &mut warnings), enc)
    } else {
        if bytes[..bytes.len().min(SNIFF_LEN)].contains(&0) {
            return Err(ParseError::Binary);
        }
        let outside = declared.and_then(|label| match Encoding::for_label(label.trim().as_bytes()) {
            Some(encoding) => Some(encoding),
            None => {
                warnings.push(format!(
                    "the sidecar's encoding `{label}` is not a known label; ignored"
                ));
                None
            }
        });
        match (outside, std::str::from_utf8(bytes)) {
            (None, Ok(s)) => (s.to_owned(), "utf-8"),
            (Some(encoding), _) => legacy(bytes, encoding, &mut warnings),
            (None, Err(_)) => match declared_inside(bytes) {
                Some(encoding) => legacy(bytes, encoding, &mut warnings),
                None => {
                    let mut detector = chardetng::EncodingDetector::new();
                    detector.feed(bytes, true);
                    let (encoding, ranked) = detector.guess_assess(None, false);
                    // The detector scores byte patterns; with few non-ASCII bytes there is
                    // little to score, whatever it says.
                    let evidence = bytes.iter().filter(|&&b| b >= 0x80).count();
                    if !ranked || evidence < MIN_EVIDENCE {
                        warnings.push(format!(
                            "the text is not UTF-8 and declares no encoding; decoded as {}, a guess of low \
                             confidence (set \"encoding\" in the document's sidecar to be sure)",
                            encoding.name()
                        ));
                    }
                    legacy(bytes, encoding, &mut warnings)
                }
            },
        }
    };
    if control_ratio_too_high(&text) {
        return Err(ParseError::Binary);
    }
    Ok(Decoded {
        text,
        encoding,
        warnings,
    })
}

/// Decodes with a non-UTF-8 encoding; unmappable bytes become U+FFFD with a warning.
fn legacy(bytes: &[u8], encoding: &'static Encoding, warnings: &mut Vec<String>) -> (String, &'static str) {
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    if had_errors {
        warnings.push(format!(
            "byte sequences that are not {} were replaced with U+FFFD",
            encoding.name()
        ));
    }
    (text.into_owned(), lower_name(encoding))
}

/// The encoding's name as documents report it (`shift_jis`, `windows-1251`).
fn lower_name(encoding: &'static Encoding) -> &'static str {
    const NAMES: &[(&str, &str)] = &[
        ("Shift_JIS", "shift_jis"),
        ("EUC-JP", "euc-jp"),
        ("ISO-2022-JP", "iso-2022-jp"),
        ("EUC-KR", "euc-kr"),
        ("Big5", "big5"),
        ("GBK", "gbk"),
        ("gb18030", "gb18030"),
        ("KOI8-R", "koi8-r"),
        ("KOI8-U", "koi8-u"),
        ("IBM866", "ibm866"),
        ("UTF-8", "utf-8"),
    ];
    let name = encoding.name();
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(name, |(_, lower)| lower)
}

/// The charset a document declares in its first bytes: `<meta charset=…>`, `<meta
/// http-equiv="Content-Type" content="…; charset=…">`, or `<?xml … encoding="…"?>`. UTF-16
/// labels are ignored (bytes that got this far are not UTF-16), as HTML's prescan does.
fn declared_inside(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(DECLARATION_LEN)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let label = if lower.starts_with(b"<?xml") {
        let end = lower.iter().position(|&b| b == b'>').unwrap_or(lower.len());
        attribute_value(&lower[..end], b"encoding")
    } else {
        let mut found = None;
        let mut at = 0;
        while let Some(offset) = find(&lower[at..], b"<meta") {
            let start = at + offset;
            let end = lower[start..]
                .iter()
                .position(|&b| b == b'>')
                .map_or(lower.len(), |e| start + e);
            let tag = &lower[start..end];
            found = attribute_value(tag, b"charset").or_else(|| {
                let content = attribute_value(tag, b"content")?;
                let at = find(content, b"charset=")? + b"charset=".len();
                let rest = &content[at..];
                let end = rest
                    .iter()
                    .position(|&b| b == b';' || b == b' ')
                    .unwrap_or(rest.len());
                Some(&rest[..end])
            });
            if found.is_some() {
                break;
            }
            at = end;
        }
        found
    }?;
    let label = label
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'"' | b'\''))
        .collect::<Vec<u8>>();
    let encoding = Encoding::for_label(&label)?;
    (encoding != encoding_rs::UTF_16LE && encoding != encoding_rs::UTF_16BE).then_some(encoding)
}

/// The value of `name=` in a lower-cased tag, quoted or not.
fn attribute_value<'a>(tag: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut at = 0;
    while let Some(offset) = find(&tag[at..], name) {
        let start = at + offset;
        let before_ok = start == 0 || !tag[start - 1].is_ascii_alphanumeric() && tag[start - 1] != b'-';
        let mut i = start + name.len();
        while i < tag.len() && tag[i] == b' ' {
            i += 1;
        }
        if before_ok && i < tag.len() && tag[i] == b'=' {
            i += 1;
            while i < tag.len() && tag[i] == b' ' {
                i += 1;
            }
            let (quote, from) = match tag.get(i) {
                Some(&q @ (b'"' | b'\'')) => (Some(q), i + 1),
                _ => (None, i),
            };
            let end = tag[from..]
                .iter()
                .position(|&b| match quote {
                    Some(q) => b == q,
                    None => b == b' ' || b == b'/' || b == b';' || b == b'?',
                })
                .map_or(tag.len(), |e| from + e);
            return Some(&tag[from..end]);
        }
        at = start + name.len();
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Cheap check used for files of unknown type: NULs (outside UTF-16 text) or many control
/// characters in the first 8 KiB.
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return false;
    }
    if utf16_without_bom(bytes).is_some() {
        return false;
    }
    let head = &bytes[..bytes.len().min(SNIFF_LEN)];
    if head.contains(&0) {
        return true;
    }
    let controls = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
        .count();
    controls * 10 > head.len()
}

fn utf8_lossy(bytes: &[u8], warnings: &mut Vec<String>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            warnings.push("invalid UTF-8 sequences replaced with U+FFFD".to_owned());
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}

fn utf16(bytes: &[u8], big_endian: bool, warnings: &mut Vec<String>) -> String {
    let units = bytes.chunks_exact(2).map(|p| {
        if big_endian {
            u16::from_be_bytes([p[0], p[1]])
        } else {
            u16::from_le_bytes([p[0], p[1]])
        }
    });
    let mut out = String::with_capacity(bytes.len() / 2);
    let mut bad = 0usize;
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => out.push(c),
            Err(_) => {
                bad += 1;
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }
    if bad > 0 {
        warnings.push(format!("{bad} unpaired UTF-16 surrogates replaced with U+FFFD"));
    }
    if bytes.len() % 2 == 1 {
        warnings.push("odd trailing byte in UTF-16 text ignored".to_owned());
    }
    out
}

/// Detects BOM-less UTF-16 from mostly-ASCII text: zero bytes at (almost) every odd position
/// (little-endian) or every even position (big-endian), and (almost) none at the other.
/// Returns `Some(big_endian)`.
fn utf16_without_bom(bytes: &[u8]) -> Option<bool> {
    let head = &bytes[..bytes.len().min(SNIFF_LEN) & !1];
    let pairs = head.len() / 2;
    if pairs < 4 {
        return None;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for p in head.chunks_exact(2) {
        even += usize::from(p[0] == 0);
        odd += usize::from(p[1] == 0);
    }
    // 70% of the code units have a zero high byte, and stray zeros in the other position are
    // rare (they would be U+xx00 characters).
    if odd * 10 >= pairs * 7 && even * 20 <= pairs {
        Some(false)
    } else if even * 10 >= pairs * 7 && odd * 20 <= pairs {
        Some(true)
    } else {
        None
    }
}

/// Too many C0/C1 control characters (other than the usual whitespace and ESC) in the first
/// 8 KiB of decoded text means the "text" is really binary.
fn control_ratio_too_high(text: &str) -> bool {
    let mut total = 0usize;
    let mut controls = 0usize;
    for c in text.chars().take(SNIFF_LEN) {
        total += 1;
        if c == '\0' || (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{0c}' | '\u{1b}')) {
            controls += 1;
        }
    }
    total > 0 && controls * 10 > total
}
