//! Text decoding for the text formats: UTF-8 (BOM stripped), UTF-16 LE/BE (by BOM, or by the
//! tell-tale pattern of zero bytes when the BOM is missing), and Windows-1252 as the fallback
//! for bytes that are not valid UTF-8. Decoding is done by hand; it is small and keeps the
//! dependency tree lean.
//!
//! Also hosts the binary-content heuristics: NUL bytes in the first 8 KiB, or a high ratio of
//! control characters, mean "not text".

use super::ParseError;

/// How much of the input the heuristics look at.
const SNIFF_LEN: usize = 8 * 1024;

pub(crate) struct Decoded {
    pub(crate) text: String,
    pub(crate) encoding: &'static str,
    pub(crate) warnings: Vec<String>,
}

/// Decodes text bytes, or fails with [`ParseError::Binary`] when they are not text.
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, ParseError> {
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
        match std::str::from_utf8(bytes) {
            Ok(s) => (s.to_owned(), "utf-8"),
            Err(_) => (windows_1252(bytes), "windows-1252"),
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

/// Windows-1252 code points for bytes 0x80..=0x9F (the five undefined bytes map to the C1
/// control with the same value, as the WHATWG Encoding Standard does; they are then dropped by
/// normalisation). The other bytes map to the same code point as in ISO-8859-1.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

fn windows_1252(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}
