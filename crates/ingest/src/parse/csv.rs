//! CSV/TSV: every data row becomes one self-describing line, `header1: value1; header2:
//! value2`, so a row retrieved on its own still says what its values mean.
//!
//! Quoting follows RFC 4180 (quoted fields, `""` escapes, line breaks inside quotes), leniently:
//! a quote inside an unquoted field is literal, text after a closing quote is appended, and an
//! unterminated quote runs to the end of input (with a warning). `.csv` files whose header has
//! more `;` than `,` are read as semicolon-separated (common in European exports). Empty values
//! are left out of the line; missing or empty header names become `column N`.
//!
//! Bounded: a record wider than [`ParseLimits::max_table_columns`] fails the file (`too_wide`)
//! as soon as it is read, and rows past [`ParseLimits::max_table_cells`] are cut with a warning.

use super::builder::TextBuilder;
use super::{ParseError, ParseLimits};

pub(crate) fn parse(
    text: &str,
    delimiter: Option<char>,
    limits: &ParseLimits,
    b: &mut TextBuilder,
    warnings: &mut Vec<String>,
) -> Result<(), ParseError> {
    let too_wide = |columns: usize| ParseError::TooWide {
        columns,
        limit: limits.max_table_columns,
    };
    let delimiter = delimiter.unwrap_or_else(|| sniff_delimiter(text));
    let mut reader = Records {
        chars: text.chars().peekable(),
        delimiter,
        unterminated: false,
    };
    let Some(header) = reader.next() else {
        return Ok(());
    };
    if header.len() > limits.max_table_columns {
        return Err(too_wide(header.len()));
    }
    let mut cells = header.len();
    let mut header: Vec<String> = header
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            let h = single_line(&h);
            if h.is_empty() {
                format!("column {}", i + 1)
            } else {
                h
            }
        })
        .collect();
    let mut line = String::new();
    let mut rows = 0usize;
    for record in reader.by_ref() {
        if b.is_full() {
            break;
        }
        if record.len() > limits.max_table_columns {
            return Err(too_wide(record.len()));
        }
        cells += record.len();
        if cells > limits.max_table_cells {
            warnings.push(format!(
                "table cut after {rows} rows: more than {} cells ([ingest] max_table_cells)",
                limits.max_table_cells
            ));
            break;
        }
        line.clear();
        for (i, value) in record.iter().enumerate() {
            let value = single_line(value);
            if value.is_empty() {
                continue;
            }
            // A row longer than the header names its extra columns by position (an empty
            // extra field is skipped above, so this may add several names at once).
            while header.len() <= i {
                header.push(format!("column {}", header.len() + 1));
            }
            if !line.is_empty() {
                line.push_str("; ");
            }
            line.push_str(&header[i]);
            line.push_str(": ");
            line.push_str(&value);
        }
        if line.is_empty() {
            continue;
        }
        rows += 1;
        b.push_str(&line);
        b.push('\n');
    }
    if reader.unterminated {
        warnings.push("unterminated quoted field at end of file".to_owned());
    }
    if rows == 0 {
        // A header-only file: keep the header so the file is still findable.
        b.push_str(&header.join("; "));
    }
    Ok(())
}

/// `,` unless the first line (outside quotes) has more `;` than `,`.
fn sniff_delimiter(text: &str) -> char {
    let (mut commas, mut semis, mut quoted) = (0usize, 0usize, false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' if !quoted => break,
            ',' if !quoted => commas += 1,
            ';' if !quoted => semis += 1,
            _ => {}
        }
    }
    if semis > commas { ';' } else { ',' }
}

/// Trims and joins embedded line breaks so a field fits on its row's line.
fn single_line(s: &str) -> String {
    let s = s.trim();
    if s.contains(['\n', '\r']) {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        s.to_owned()
    }
}

struct Records<I: Iterator<Item = char>> {
    chars: std::iter::Peekable<I>,
    delimiter: char,
    unterminated: bool,
}

impl<I: Iterator<Item = char>> Iterator for Records<I> {
    type Item = Vec<String>;

    fn next(&mut self) -> Option<Vec<String>> {
        self.chars.peek()?;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut in_quotes = false;
        let mut at_field_start = true;
        while let Some(c) = self.chars.next() {
            if in_quotes {
                if c == '"' {
                    if self.chars.peek() == Some(&'"') {
                        self.chars.next();
                        field.push('"');
                    } else {
                        in_quotes = false;
                    }
                } else {
                    field.push(c);
                }
                continue;
            }
            match c {
                '"' if at_field_start => {
                    in_quotes = true;
                    at_field_start = false;
                }
                '\r' => {
                    if self.chars.peek() == Some(&'\n') {
                        self.chars.next();
                    }
                    fields.push(std::mem::take(&mut field));
                    return Some(fields);
                }
                '\n' => {
                    fields.push(std::mem::take(&mut field));
                    return Some(fields);
                }
                c if c == self.delimiter => {
                    fields.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                c => {
                    if !(at_field_start && c == ' ' && self.delimiter != ' ') {
                        at_field_start = false;
                    }
                    field.push(c);
                }
            }
        }
        if in_quotes {
            self.unterminated = true;
        }
        fields.push(field);
        Some(fields)
    }
}
