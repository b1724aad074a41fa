//! DOCX: `word/document.xml` streamed out of the ZIP with `quick-xml`.
//!
//! `w:t` text is kept, `w:tab` becomes a tab, `w:br`/`w:cr` and paragraph ends become
//! newlines; deleted runs (`w:delText`) and field codes (`w:instrText`) are dropped.
//! Paragraph styles `Heading1`..`Heading9` (or an explicit `w:outlineLvl`) become headings,
//! `Title` a level-0 heading.
//!
//! Zip-bomb defence: the entry's declared size and compression ratio are checked before
//! reading, and the decompressed stream is read through a counting reader that stops at the
//! limits however much the header lies, so memory stays bounded.

use std::cell::Cell;
use std::io::{BufReader, Cursor, Read};
use std::rc::Rc;

use quick_xml::events::{BytesStart, Event};

use super::builder::TextBuilder;
use super::{HeadingSpan, ParseError, ParseLimits};

const DOCUMENT_XML: &str = "word/document.xml";

/// Below this many decompressed bytes the ratio limit does not apply: tiny, highly repetitive
/// XML parts legitimately compress far better than 100:1 and cannot hurt.
const RATIO_FLOOR_BYTES: u64 = 1024 * 1024;

pub(crate) fn parse(
    bytes: &[u8],
    limits: &ParseLimits,
    b: &mut TextBuilder,
) -> Result<Vec<HeadingSpan>, ParseError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ParseError::Corrupt(format!("ZIP: {e}")))?;
    let entry = match archive.by_name(DOCUMENT_XML) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(ParseError::Unsupported(format!(
                "ZIP archive without {DOCUMENT_XML} (not a DOCX)"
            )));
        }
        Err(e) => return Err(ParseError::Corrupt(format!("ZIP: {e}"))),
    };
    let declared = entry.size();
    let compressed = entry.compressed_size().max(1);
    if declared > limits.max_zip_entry_bytes {
        return Err(ParseError::ZipBomb(format!(
            "{DOCUMENT_XML} declares {declared} bytes (limit {})",
            limits.max_zip_entry_bytes
        )));
    }
    if declared > RATIO_FLOOR_BYTES && declared / compressed > limits.max_zip_ratio {
        return Err(ParseError::ZipBomb(format!(
            "{DOCUMENT_XML} declares a compression ratio of {} (limit {})",
            declared / compressed,
            limits.max_zip_ratio
        )));
    }
    // Whatever the header says, never decompress more than this.
    let budget = limits.max_zip_entry_bytes.min(
        compressed
            .saturating_mul(limits.max_zip_ratio)
            .max(RATIO_FLOOR_BYTES),
    );
    let exceeded = Rc::new(Cell::new(false));
    let reader = Bounded {
        inner: entry,
        remaining: budget,
        exceeded: Rc::clone(&exceeded),
    };
    let result = extract(BufReader::new(reader), b);
    if exceeded.get() {
        return Err(ParseError::ZipBomb(format!(
            "{DOCUMENT_XML} decompresses beyond {budget} bytes"
        )));
    }
    result
}

/// A reader that fails once more than `remaining` bytes have been read.
struct Bounded<R> {
    inner: R,
    remaining: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Ask for one byte more than allowed, to tell "exactly at the limit" from "beyond".
        let want = usize::try_from(self.remaining.saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        let n64 = n as u64;
        if n64 > self.remaining {
            self.exceeded.set(true);
            return Err(std::io::Error::other("decompressed size limit exceeded"));
        }
        self.remaining -= n64;
        Ok(n)
    }
}

#[derive(Default)]
struct Paragraph {
    text: String,
    level: Option<u8>,
}

fn extract<R: std::io::BufRead>(input: R, b: &mut TextBuilder) -> Result<Vec<HeadingSpan>, ParseError> {
    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    let mut buf = Vec::new();
    let mut headings = Vec::new();
    let mut para = Paragraph::default();
    let mut in_text = false;
    loop {
        if b.is_full() {
            break;
        }
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| ParseError::Corrupt(format!("{DOCUMENT_XML}: {e}")))?;
        match event {
            Event::Start(e) => {
                match e.local_name().as_ref() {
                    b"t" => in_text = true,
                    b"p" => para = Paragraph::default(),
                    _ => {}
                }
                style(&e, &mut para);
            }
            Event::Empty(e) => {
                match e.local_name().as_ref() {
                    b"tab" => para.text.push('\t'),
                    b"br" | b"cr" => para.text.push('\n'),
                    b"noBreakHyphen" => para.text.push('-'),
                    b"p" => flush(&mut Paragraph::default(), b, &mut headings),
                    _ => {}
                }
                style(&e, &mut para);
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" => flush(&mut para, b, &mut headings),
                b"tc" => para.text.push('\t'),
                _ => {}
            },
            Event::Text(t) if in_text => match t.unescape() {
                Ok(s) => para.text.push_str(&s),
                Err(_) => para.text.push_str(&String::from_utf8_lossy(&t)),
            },
            Event::CData(t) if in_text => para.text.push_str(&String::from_utf8_lossy(&t)),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    flush(&mut para, b, &mut headings);
    Ok(headings)
}

/// Picks up `w:pStyle w:val="Heading2"` / `"Title"` and `w:outlineLvl w:val="1"`.
fn style(e: &BytesStart<'_>, para: &mut Paragraph) {
    let name = e.local_name();
    let name = name.as_ref();
    if name != b"pStyle" && name != b"outlineLvl" {
        return;
    }
    let Some(val) = e
        .attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == b"val")
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
    else {
        return;
    };
    if name == b"outlineLvl" {
        if let Ok(l) = val.parse::<u8>()
            && l < 9
        {
            para.level = Some(l + 1);
        }
        return;
    }
    let lower = val.to_ascii_lowercase();
    if lower == "title" {
        para.level = Some(0);
    } else if let Some(n) = lower.strip_prefix("heading")
        && let Ok(l) = n.trim().parse::<u8>()
        && (1..=9).contains(&l)
    {
        para.level = Some(l);
    }
}

fn flush(para: &mut Paragraph, b: &mut TextBuilder, headings: &mut Vec<HeadingSpan>) {
    let p = std::mem::take(para);
    match p.level {
        Some(level) if !p.text.trim().is_empty() => {
            b.paragraph_break();
            let start = b.mark();
            b.push_str(p.text.trim());
            let title = b.since(start).trim().to_owned();
            if !title.is_empty() {
                headings.push(HeadingSpan { level, title, start });
            }
            b.paragraph_break();
        }
        _ => {
            b.push_str(&p.text);
            b.push('\n');
        }
    }
}
