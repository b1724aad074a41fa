//! The normalising text sink shared by all format parsers.
//!
//! Parsers push characters and structural breaks; the builder guarantees the invariants of
//! [`super::Extracted::text`] as it goes, so byte offsets recorded with [`TextBuilder::mark`]
//! stay valid in the final text (only trailing whitespace is removed at the end, and spans are
//! clamped to the final length by the caller).

/// Accumulates normalised text with a character budget.
pub(crate) struct TextBuilder {
    out: String,
    /// Spaces/tabs seen but not yet emitted: dropped if a newline follows (no trailing
    /// whitespace), emitted before the next visible character otherwise.
    pending_ws: String,
    /// Number of `\n` at the end of `out`.
    newlines: usize,
    /// Whether the previous input character was `\r` (so a following `\n` is swallowed).
    after_cr: bool,
    chars: usize,
    limit: usize,
    truncated: bool,
}

/// At most this many consecutive newlines (two blank lines) are kept.
const MAX_NEWLINES: usize = 3;

impl TextBuilder {
    pub(crate) fn new(limit: usize) -> Self {
        TextBuilder {
            out: String::new(),
            pending_ws: String::new(),
            newlines: 0,
            after_cr: false,
            chars: 0,
            limit,
            truncated: false,
        }
    }

    /// Byte offset where the next visible character will be written, assuming any pending
    /// whitespace is dropped by a break first (call after [`Self::line_break`] or
    /// [`Self::paragraph_break`] for exact positions).
    pub(crate) fn mark(&self) -> usize {
        self.out.len()
    }

    /// The text written since byte offset `start` (a previous [`Self::mark`]).
    pub(crate) fn since(&self, start: usize) -> &str {
        self.out.get(start..).unwrap_or("")
    }

    /// True at the start of the text or of a line (nothing visible pending).
    pub(crate) fn at_line_start(&self) -> bool {
        (self.out.is_empty() || self.newlines > 0) && self.pending_ws.is_empty()
    }

    /// Whether the last written character is whitespace (or nothing has been written).
    pub(crate) fn ends_with_space(&self) -> bool {
        !self.pending_ws.is_empty() || self.out.is_empty() || self.newlines > 0
    }

    pub(crate) fn is_full(&self) -> bool {
        self.truncated
    }

    pub(crate) fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            if self.truncated {
                return;
            }
            self.push(c);
        }
    }

    pub(crate) fn push(&mut self, c: char) {
        if self.truncated {
            return;
        }
        let c = if c == '\r' {
            self.after_cr = true;
            '\n'
        } else if c == '\n' && self.after_cr {
            self.after_cr = false;
            return;
        } else {
            self.after_cr = false;
            c
        };
        match c {
            '\n' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => self.newline(),
            ' ' | '\t' => {
                if !self.out.is_empty() {
                    self.pending_ws.push(c);
                }
            }
            '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => {
                if !self.out.is_empty() {
                    self.pending_ws.push(' ');
                }
            }
            '\u{feff}' | '\u{200b}' | '\u{ad}' => {}
            c if c.is_control() => {}
            c => {
                let need = self.pending_ws.chars().count() + 1;
                if self.chars + need > self.limit {
                    self.truncated = true;
                    return;
                }
                self.out.push_str(&self.pending_ws);
                self.pending_ws.clear();
                self.out.push(c);
                self.chars += need;
                self.newlines = 0;
            }
        }
    }

    fn newline(&mut self) {
        self.pending_ws.clear();
        if self.out.is_empty() || self.newlines >= MAX_NEWLINES {
            return;
        }
        if self.chars + 1 > self.limit {
            self.truncated = true;
            return;
        }
        self.out.push('\n');
        self.chars += 1;
        self.newlines += 1;
    }

    /// Ends the current line unless already at a line start.
    pub(crate) fn line_break(&mut self) {
        self.pending_ws.clear();
        if self.newlines == 0 {
            self.newline();
        }
    }

    /// Ensures a blank line separates what follows from what came before.
    pub(crate) fn paragraph_break(&mut self) {
        self.pending_ws.clear();
        while self.newlines < 2 && !self.out.is_empty() && !self.truncated {
            self.newline();
        }
    }

    /// Returns the text (trailing whitespace removed) and whether it was truncated.
    pub(crate) fn finish(mut self) -> (String, bool) {
        let trimmed = self.out.trim_end().len();
        self.out.truncate(trimmed);
        (self.out, self.truncated)
    }
}
