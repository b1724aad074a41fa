//! PDF: the text layer via `pdf-extract`, page by page, recording where each page starts.
//!
//! No OCR: an image-only PDF yields empty text and a warning. `pdf-extract` panics on some
//! malformed files by design; the panic is caught here and reported as
//! [`ParseError::Panic`], but it can also loop, which only a worker process
//! ([`super::ParserPool`]) stops, and [`super::parse_isolated`] bounds with a deadline.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::builder::TextBuilder;
use super::isolate::{panic_message, quiet_panics};
use super::{PageSpan, ParseError};

pub(crate) fn parse(
    bytes: &[u8],
    b: &mut TextBuilder,
    warnings: &mut Vec<String>,
) -> Result<Vec<PageSpan>, ParseError> {
    let result = quiet_panics(|| {
        catch_unwind(AssertUnwindSafe(|| {
            pdf_extract::extract_text_from_mem_by_pages(bytes)
        }))
    });
    let pages_text = match result {
        Ok(Ok(pages)) => pages,
        Ok(Err(e)) => return Err(ParseError::Corrupt(format!("PDF: {e}"))),
        Err(payload) => return Err(ParseError::Panic(panic_message(payload.as_ref()))),
    };
    let mut pages = Vec::with_capacity(pages_text.len());
    for (i, page_text) in pages_text.iter().enumerate() {
        if b.is_full() {
            break;
        }
        b.paragraph_break();
        pages.push(PageSpan {
            page: u32::try_from(i + 1).unwrap_or(u32::MAX),
            start: b.mark(),
        });
        b.push_str(page_text.trim_start());
    }
    if pages_text.iter().all(|p| p.trim().is_empty()) {
        warnings.push("PDF has no text layer (scanned or image-only?); OCR is not supported".to_owned());
    }
    Ok(pages)
}
