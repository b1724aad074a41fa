//! Parser for the DQDL-like rule language.
//!
//! Invariant: parsing never panics and never recurses without bound; any input
//! either yields a [`Ruleset`] whose rules all display canonically, or a typed
//! [`DqdlError`] with a 1-based line and column (in characters) and a message
//! that says what was expected. Inputs over [`MAX_INPUT_BYTES`], rulesets over
//! [`MAX_RULES`] rules and expressions nested deeper than [`MAX_DEPTH`] are
//! rejected before they can cost anything.
//!
//! One unit: a hand-written recursive-descent parser (lexer, rules, comparisons, expressions)
//! and its error reporting, with its tests; splitting it would scatter one grammar.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::quality::rules::{
    AggFn, BinOp, CmpOp, Comparison, Expr, Literal, RULE_TYPES, Rule, RuleKind, Ruleset, TimeUnit,
    ValuePredicate,
};

/// Largest accepted input, in bytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// Most rules in one ruleset.
pub const MAX_RULES: usize = 1000;
/// Deepest nesting of brackets, parentheses and expression trees.
pub const MAX_DEPTH: usize = 32;
/// Largest `k` in `last(k)`.
pub const MAX_HISTORY: usize = 1000;

/// DQDL rule types that exist in AWS Glue but that groundwork does not run.
const UNSUPPORTED_RULE_TYPES: &[&str] = &[
    "AggregateMatch",
    "AllStatistics",
    "ColumnCorrelation",
    "ColumnDataType",
    "ColumnExists",
    "ColumnNamesMatchPattern",
    "DatasetMatch",
    "DetectAnomalies",
    "Entropy",
    "FileFreshness",
    "FileMatch",
    "FileSize",
    "FileUniqueness",
    "RowCountMatch",
    "SchemaMatch",
    "UniqueValueRatio",
];

/// What went wrong, as a type a caller can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input is larger than [`MAX_INPUT_BYTES`].
    InputTooLarge,
    /// More than [`MAX_RULES`] rules.
    TooManyRules,
    /// Brackets or an expression nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A rule type that is not DQDL at all.
    UnknownRule,
    /// A DQDL rule type (or construct) that groundwork does not support.
    Unsupported,
    /// A string with no closing quote.
    UnterminatedString,
    /// A `[` or `(` never closed, or a `]` or `)` with nothing to close.
    UnbalancedBracket,
    /// A character that starts no token.
    UnexpectedCharacter,
    /// A token where another was expected.
    UnexpectedToken,
    /// A number that is malformed or out of range.
    InvalidNumber,
    /// A well-formed argument with a value the rule cannot take.
    InvalidArgument,
}

/// A parse error at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("line {line}, column {column}: {message}")]
pub struct DqdlError {
    pub kind: ErrorKind,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses a ruleset: `Rules = [ rule, rule, ... ]`, or bare rules one per line
/// (commas between them are also accepted). `#` starts a comment.
pub fn parse_ruleset(input: &str) -> Result<Ruleset, DqdlError> {
    let tokens = lex(input)?;
    Parser::new(tokens).ruleset()
}

/// Parses exactly one rule (comments and surrounding whitespace allowed).
pub fn parse_rule(input: &str) -> Result<Rule, DqdlError> {
    let mut tokens = lex(input)?;
    // One rule may span lines.
    tokens.retain(|t| t.tok != Tok::Newline);
    let mut p = Parser::new(tokens);
    let rule = p.rule()?;
    let t = p.peek().clone();
    match t.tok {
        Tok::Eof => Ok(rule),
        _ => Err(p.err_at(
            &t,
            ErrorKind::UnexpectedToken,
            format!("expected the end of the rule, found {}", t.tok),
        )),
    }
}

impl FromStr for Rule {
    type Err = DqdlError;
    fn from_str(s: &str) -> Result<Rule, DqdlError> {
        parse_rule(s)
    }
}

impl FromStr for Ruleset {
    type Err = DqdlError;
    fn from_str(s: &str) -> Result<Ruleset, DqdlError> {
        parse_ruleset(s)
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// The literal text of an unsigned number: digits, optionally `.` digits.
    Number(String),
    Str(String),
    LBrack,
    RBrack,
    LParen,
    RParen,
    Comma,
    Op(CmpOp),
    Plus,
    Minus,
    Star,
    Slash,
    Newline,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{}`", shorten(s)),
            Tok::Number(s) => write!(f, "number {}", shorten(s)),
            Tok::Str(s) => write!(f, "string \"{}\"", shorten(s)),
            Tok::LBrack => f.write_str("`[`"),
            Tok::RBrack => f.write_str("`]`"),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::Op(op) => write!(f, "`{op}`"),
            Tok::Plus => f.write_str("`+`"),
            Tok::Minus => f.write_str("`-`"),
            Tok::Star => f.write_str("`*`"),
            Tok::Slash => f.write_str("`/`"),
            Tok::Newline => f.write_str("the end of the line"),
            Tok::Eof => f.write_str("the end of the input"),
        }
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    column: usize,
}

fn error(kind: ErrorKind, line: usize, column: usize, message: impl Into<String>) -> DqdlError {
    DqdlError {
        kind,
        line,
        column,
        message: message.into(),
    }
}

fn lex(input: &str) -> Result<Vec<Token>, DqdlError> {
    if input.len() > MAX_INPUT_BYTES {
        // Point at the first byte past the limit (rounded down to a char boundary).
        let mut cut = MAX_INPUT_BYTES;
        while !input.is_char_boundary(cut) {
            cut -= 1;
        }
        let (line, column) = position_of(&input[..cut]);
        return Err(error(
            ErrorKind::InputTooLarge,
            line,
            column,
            format!(
                "input is {} bytes; the limit is {MAX_INPUT_BYTES} bytes",
                input.len()
            ),
        ));
    }
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    while i < chars.len() {
        let c = chars[i];
        let (start_line, start_col) = (line, col);
        let mut push = |tok: Tok| {
            tokens.push(Token {
                tok,
                line: start_line,
                column: start_col,
            })
        };
        match c {
            '\n' => {
                push(Tok::Newline);
                i += 1;
                line += 1;
                col = 1;
                continue;
            }
            c if c.is_whitespace() => {}
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                    col += 1;
                }
                continue;
            }
            '"' => {
                let mut value = String::new();
                i += 1;
                col += 1;
                loop {
                    let Some(&ch) = chars.get(i) else {
                        return Err(error(
                            ErrorKind::UnterminatedString,
                            start_line,
                            start_col,
                            "string is never closed: add a closing `\"`",
                        ));
                    };
                    i += 1;
                    col += 1;
                    match ch {
                        '"' => break,
                        '\\' if matches!(chars.get(i), Some('"') | Some('\\')) => {
                            value.push(chars[i]);
                            i += 1;
                            col += 1;
                        }
                        '\n' => {
                            value.push('\n');
                            line += 1;
                            col = 1;
                        }
                        other => value.push(other),
                    }
                }
                push(Tok::Str(value));
                continue;
            }
            '\'' => {
                return Err(error(
                    ErrorKind::UnexpectedCharacter,
                    line,
                    col,
                    "strings and column names are written in double quotes (\"...\"), not single quotes",
                ));
            }
            c if c.is_ascii_digit() => {
                let mut text = String::new();
                while i < chars.len() && chars[i].is_ascii_digit() {
                    text.push(chars[i]);
                    i += 1;
                    col += 1;
                }
                if chars.get(i) == Some(&'.') {
                    if !chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                        return Err(error(
                            ErrorKind::InvalidNumber,
                            start_line,
                            start_col,
                            format!("number `{text}.` needs digits after the decimal point"),
                        ));
                    }
                    text.push('.');
                    i += 1;
                    col += 1;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        text.push(chars[i]);
                        i += 1;
                        col += 1;
                    }
                }
                if chars
                    .get(i)
                    .is_some_and(|d| d.is_alphabetic() || *d == '_' || *d == '.')
                {
                    return Err(error(
                        ErrorKind::InvalidNumber,
                        start_line,
                        start_col,
                        format!("malformed number starting `{text}{}`", chars[i]),
                    ));
                }
                push(Tok::Number(text));
                continue;
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut text = String::new();
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    text.push(chars[i]);
                    i += 1;
                    col += 1;
                }
                push(Tok::Ident(text));
                continue;
            }
            '[' => push(Tok::LBrack),
            ']' => push(Tok::RBrack),
            '(' => push(Tok::LParen),
            ')' => push(Tok::RParen),
            ',' => push(Tok::Comma),
            '+' => push(Tok::Plus),
            '-' => push(Tok::Minus),
            '*' => push(Tok::Star),
            '/' => push(Tok::Slash),
            '=' => {
                // Accept `==` as a spelling of `=`.
                if chars.get(i + 1) == Some(&'=') {
                    i += 1;
                    col += 1;
                }
                push(Tok::Op(CmpOp::Eq));
            }
            '!' => {
                if chars.get(i + 1) == Some(&'=') {
                    i += 1;
                    col += 1;
                    push(Tok::Op(CmpOp::Ne));
                } else {
                    return Err(error(
                        ErrorKind::UnexpectedCharacter,
                        line,
                        col,
                        "`!` must be followed by `=`",
                    ));
                }
            }
            '<' => match chars.get(i + 1) {
                Some('=') => {
                    i += 1;
                    col += 1;
                    push(Tok::Op(CmpOp::Le));
                }
                Some('>') => {
                    i += 1;
                    col += 1;
                    push(Tok::Op(CmpOp::Ne));
                }
                _ => push(Tok::Op(CmpOp::Lt)),
            },
            '>' => {
                if chars.get(i + 1) == Some(&'=') {
                    i += 1;
                    col += 1;
                    push(Tok::Op(CmpOp::Ge));
                } else {
                    push(Tok::Op(CmpOp::Gt));
                }
            }
            other => {
                return Err(error(
                    ErrorKind::UnexpectedCharacter,
                    line,
                    col,
                    format!("unexpected character `{}`", other.escape_debug()),
                ));
            }
        }
        i += 1;
        col += 1;
    }
    tokens.push(Token {
        tok: Tok::Eof,
        line,
        column: col,
    });
    check_brackets(&tokens)?;
    Ok(tokens)
}

fn position_of(prefix: &str) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for c in prefix.chars() {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// Every `[` and `(` is closed by its own kind, and nesting stays within
/// [`MAX_DEPTH`]; checked before parsing so the messages can name both ends.
fn check_brackets(tokens: &[Token]) -> Result<(), DqdlError> {
    let mut open: Vec<&Token> = Vec::new();
    for t in tokens {
        match t.tok {
            Tok::LBrack | Tok::LParen => {
                if open.len() >= MAX_DEPTH {
                    return Err(error(
                        ErrorKind::TooDeep,
                        t.line,
                        t.column,
                        format!("brackets nested more than {MAX_DEPTH} deep"),
                    ));
                }
                open.push(t);
            }
            Tok::RBrack | Tok::RParen => {
                let want = if t.tok == Tok::RBrack {
                    Tok::LBrack
                } else {
                    Tok::LParen
                };
                match open.pop() {
                    Some(o) if o.tok == want => {}
                    Some(o) => {
                        return Err(error(
                            ErrorKind::UnbalancedBracket,
                            t.line,
                            t.column,
                            format!(
                                "{} does not close {} opened at line {}, column {}",
                                t.tok, o.tok, o.line, o.column
                            ),
                        ));
                    }
                    None => {
                        return Err(error(
                            ErrorKind::UnbalancedBracket,
                            t.line,
                            t.column,
                            format!("{} has no matching opening bracket", t.tok),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(o) = open.last() {
        let close = if o.tok == Tok::LBrack { "]" } else { ")" };
        return Err(error(
            ErrorKind::UnbalancedBracket,
            o.line,
            o.column,
            format!("{} is never closed: add a matching `{close}`", o.tok),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- parser

/// Whether numbers in a comparison carry a time unit (DataFreshness).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Units {
    None,
    Time,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Newlines separate rules in a bare list; inside `Rules = [...]` they
    /// are plain whitespace and are removed up front.
    rule_name: &'static str,
}

impl Parser {
    fn new(tokens: Vec<Token>) -> Parser {
        Parser {
            tokens,
            pos: 0,
            rule_name: "",
        }
    }

    fn peek(&self) -> &Token {
        // The token list always ends with Eof, and `pos` never passes it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)].tok
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn skip_newlines(&mut self) {
        while self.peek().tok == Tok::Newline {
            self.pos += 1;
        }
    }

    fn err_at(&self, t: &Token, kind: ErrorKind, message: impl Into<String>) -> DqdlError {
        error(kind, t.line, t.column, message)
    }

    fn unexpected(&self, t: &Token, expected: &str) -> DqdlError {
        let context = if self.rule_name.is_empty() {
            String::new()
        } else {
            format!(" in {}", self.rule_name)
        };
        self.err_at(
            t,
            ErrorKind::UnexpectedToken,
            format!("expected {expected}{context}, found {}", t.tok),
        )
    }

    fn is_ident(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s == word)
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, DqdlError> {
        let t = self.next();
        if t.tok == tok {
            Ok(t)
        } else {
            Err(self.unexpected(&t, what))
        }
    }

    fn expect_word(&mut self, word: &str) -> Result<(), DqdlError> {
        let t = self.next();
        match &t.tok {
            Tok::Ident(s) if s == word => Ok(()),
            _ => Err(self.unexpected(&t, &format!("`{word}`"))),
        }
    }

    fn ruleset(mut self) -> Result<Ruleset, DqdlError> {
        self.skip_newlines();
        let bracketed = self.is_ident("Rules") && *self.peek_at(1) == Tok::Op(CmpOp::Eq)
            || self.is_ident("Rules") && *self.peek_at(1) == Tok::LBrack;
        if bracketed {
            // Inside `Rules = [...]` newlines are whitespace.
            self.tokens.retain(|t| t.tok != Tok::Newline);
            self.pos = 0;
            self.expect_word("Rules")?;
            self.expect(Tok::Op(CmpOp::Eq), "`=` after `Rules`")?;
            self.expect(Tok::LBrack, "`[` to open the list of rules")?;
            let mut rules = Vec::new();
            if self.peek().tok == Tok::RBrack {
                self.next();
            } else {
                loop {
                    self.push_rule(&mut rules)?;
                    let t = self.next();
                    match t.tok {
                        Tok::Comma if self.peek().tok == Tok::RBrack => {
                            self.next();
                            break;
                        }
                        Tok::Comma => {}
                        Tok::RBrack => break,
                        _ => return Err(self.unexpected(&t, "`,` between rules or `]` to close the list")),
                    }
                }
            }
            let t = self.next();
            if t.tok != Tok::Eof {
                return Err(self.unexpected(&t, "nothing after the closing `]`"));
            }
            Ok(Ruleset { rules })
        } else {
            let mut rules = Vec::new();
            loop {
                self.skip_newlines();
                if self.peek().tok == Tok::Eof {
                    break;
                }
                self.push_rule(&mut rules)?;
                let t = self.next();
                match t.tok {
                    Tok::Newline | Tok::Comma | Tok::Eof => {}
                    _ => return Err(self.unexpected(&t, "the end of the rule (one rule per line)")),
                }
            }
            Ok(Ruleset { rules })
        }
    }

    fn push_rule(&mut self, rules: &mut Vec<Rule>) -> Result<(), DqdlError> {
        if rules.len() >= MAX_RULES {
            let t = self.peek().clone();
            return Err(self.err_at(
                &t,
                ErrorKind::TooManyRules,
                format!("more than {MAX_RULES} rules in one ruleset"),
            ));
        }
        rules.push(self.rule()?);
        Ok(())
    }

    fn rule(&mut self) -> Result<Rule, DqdlError> {
        self.rule_name = "";
        let t = self.next();
        let name = match &t.tok {
            Tok::Ident(name) => name.clone(),
            Tok::LParen => {
                return Err(self.err_at(
                    &t,
                    ErrorKind::Unsupported,
                    "composite rules (`(rule) and (rule)`) are not supported; write the rules separately",
                ));
            }
            _ => return Err(self.unexpected(&t, "a rule type such as `RowCount` or `IsComplete`")),
        };
        let Some(&known) = RULE_TYPES.iter().find(|n| **n == name) else {
            return Err(self.unknown_rule(&t, &name));
        };
        self.rule_name = known;
        let kind = match known {
            "RowCount" => RuleKind::RowCount {
                check: self.comparison(Units::None)?,
            },
            "ColumnCount" => RuleKind::ColumnCount {
                check: self.comparison(Units::None)?,
            },
            "IsComplete" => RuleKind::IsComplete {
                column: self.column()?,
            },
            "Completeness" => RuleKind::Completeness {
                column: self.column()?,
                check: self.comparison(Units::None)?,
            },
            "IsUnique" => RuleKind::IsUnique {
                column: self.column()?,
            },
            "Uniqueness" => RuleKind::Uniqueness {
                column: self.column()?,
                check: self.comparison(Units::None)?,
            },
            "IsPrimaryKey" => {
                let mut columns = vec![self.column()?];
                while matches!(self.peek().tok, Tok::Str(_)) {
                    columns.push(self.column()?);
                }
                RuleKind::IsPrimaryKey { columns }
            }
            "ColumnValues" => {
                let column = self.column()?;
                let predicate = self.value_predicate(false)?;
                let threshold = self.with_threshold()?;
                RuleKind::ColumnValues {
                    column,
                    predicate,
                    threshold,
                }
            }
            "ColumnLength" => {
                let column = self.column()?;
                let predicate = self.value_predicate(true)?;
                let threshold = self.with_threshold()?;
                RuleKind::ColumnLength {
                    column,
                    predicate,
                    threshold,
                }
            }
            "DistinctValuesCount" => RuleKind::DistinctValuesCount {
                column: self.column()?,
                check: self.comparison(Units::None)?,
            },
            "Mean" => RuleKind::Mean {
                column: self.column()?,
                check: self.comparison(Units::None)?,
            },
            "Sum" => RuleKind::Sum {
                column: self.column()?,
                check: self.comparison(Units::None)?,
            },
            "StandardDeviation" => RuleKind::StandardDeviation {
                column: self.column()?,
                check: self.comparison(Units::None)?,
            },
            "DataFreshness" => RuleKind::DataFreshness {
                column: self.column()?,
                check: self.comparison(Units::Time)?,
            },
            "ReferentialIntegrity" => {
                let column = self.column()?;
                let rt = self.peek().clone();
                let reference = self.string("the reference as a quoted \"table.column\"")?;
                if !valid_reference(&reference) {
                    return Err(self.err_at(
                        &rt,
                        ErrorKind::InvalidArgument,
                        format!("reference \"{}\" must be \"table.column\"", shorten(&reference)),
                    ));
                }
                RuleKind::ReferentialIntegrity {
                    column,
                    reference,
                    check: self.comparison(Units::None)?,
                }
            }
            "CustomSql" => {
                let st = self.peek().clone();
                let sql = self.string("the SQL statement as a quoted string")?;
                if sql.trim().is_empty() {
                    return Err(self.err_at(&st, ErrorKind::InvalidArgument, "the SQL statement is empty"));
                }
                RuleKind::CustomSql {
                    sql,
                    check: self.comparison(Units::None)?,
                }
            }
            _ => return Err(self.unknown_rule(&t, &name)),
        };
        let mut rule = Rule {
            kind,
            blocking: false,
        };
        if self.is_ident("with") {
            let t = self.peek().clone();
            return Err(self.err_at(
                &t,
                ErrorKind::Unsupported,
                format!("`with threshold` applies only to ColumnValues and ColumnLength, not {known}"),
            ));
        }
        if self.is_ident("where") {
            let t = self.peek().clone();
            return Err(self.err_at(&t, ErrorKind::Unsupported, "`where` clauses are not supported"));
        }
        if self.is_ident("blocking") {
            self.next();
            rule.blocking = true;
        }
        self.rule_name = "";
        Ok(rule)
    }

    fn unknown_rule(&self, t: &Token, name: &str) -> DqdlError {
        if UNSUPPORTED_RULE_TYPES.contains(&name) {
            return self.err_at(
                t,
                ErrorKind::Unsupported,
                format!(
                    "rule type `{name}` is not supported; supported types are {}",
                    RULE_TYPES.join(", ")
                ),
            );
        }
        let lower = name.to_ascii_lowercase();
        let hint = RULE_TYPES
            .iter()
            .find(|n| n.to_ascii_lowercase() == lower)
            .map(|n| format!("; did you mean `{n}`? (rule types are case-sensitive)"))
            .unwrap_or_else(|| format!("; supported types are {}", RULE_TYPES.join(", ")));
        self.err_at(
            t,
            ErrorKind::UnknownRule,
            format!("unknown rule type `{}`{hint}", shorten(name)),
        )
    }

    fn string(&mut self, what: &str) -> Result<String, DqdlError> {
        let t = self.next();
        match t.tok {
            Tok::Str(s) => Ok(s),
            _ => Err(self.unexpected(&t, what)),
        }
    }

    fn column(&mut self) -> Result<String, DqdlError> {
        let t = self.peek().clone();
        let name = self.string("a column name in double quotes")?;
        if name.is_empty() {
            return Err(self.err_at(&t, ErrorKind::InvalidArgument, "column name is empty"));
        }
        Ok(name)
    }

    fn with_threshold(&mut self) -> Result<Option<Comparison>, DqdlError> {
        if !self.is_ident("with") {
            return Ok(None);
        }
        self.next();
        self.expect_word("threshold")?;
        Ok(Some(self.comparison(Units::None)?))
    }

    /// A metric comparison: `op expr`, `[not] between expr and expr`, `[not] in [expr, ...]`.
    fn comparison(&mut self, units: Units) -> Result<Comparison, DqdlError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Op(op) => {
                let op = *op;
                self.next();
                Ok(Comparison::Compare {
                    op,
                    value: self.expr(units)?,
                })
            }
            Tok::Ident(w) if w == "between" || w == "in" || w == "not" => {
                let negated = self.not_keyword()?;
                if self.is_ident("between") {
                    self.next();
                    let low = self.expr(units)?;
                    self.expect_word("and")?;
                    let high = self.expr(units)?;
                    Ok(Comparison::Between { low, high, negated })
                } else if self.is_ident("in") {
                    self.next();
                    self.expect(Tok::LBrack, "`[` to open the list")?;
                    let mut values = vec![self.expr(units)?];
                    while self.peek().tok == Tok::Comma {
                        self.next();
                        values.push(self.expr(units)?);
                    }
                    self.expect(Tok::RBrack, "`,` or `]` in the list")?;
                    Ok(Comparison::In { values, negated })
                } else {
                    let t = self.peek().clone();
                    Err(self.unexpected(&t, "`between` or `in` after `not`"))
                }
            }
            _ => Err(self.unexpected(
                &t,
                "a comparison such as `> 0`, `between 1 and 10` or `in [1, 2]`",
            )),
        }
    }

    fn not_keyword(&mut self) -> Result<bool, DqdlError> {
        if self.is_ident("not") {
            self.next();
            Ok(true)
        } else {
            Ok(false)
        }
    }

    // expr := term (('+' | '-') term)*
    fn expr(&mut self, units: Units) -> Result<Expr, DqdlError> {
        self.expr_at(units, 0)
    }

    fn expr_at(&mut self, units: Units, depth: usize) -> Result<Expr, DqdlError> {
        let mut left = self.term(units, depth)?;
        loop {
            let op = match self.peek().tok {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(left),
            };
            let t = self.next();
            let right = self.term(units, depth)?;
            left = self.binary(&t, op, left, right, depth)?;
        }
    }

    // term := unary (('*' | '/') unary)*
    fn term(&mut self, units: Units, depth: usize) -> Result<Expr, DqdlError> {
        let mut left = self.unary(units, depth)?;
        loop {
            let op = match self.peek().tok {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                _ => return Ok(left),
            };
            let t = self.next();
            let right = self.unary(units, depth)?;
            left = self.binary(&t, op, left, right, depth)?;
        }
    }

    fn binary(&self, t: &Token, op: BinOp, left: Expr, right: Expr, depth: usize) -> Result<Expr, DqdlError> {
        let e = Expr::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        };
        if depth + e.depth() > MAX_DEPTH {
            return Err(self.too_deep(t));
        }
        Ok(e)
    }

    fn too_deep(&self, t: &Token) -> DqdlError {
        self.err_at(
            t,
            ErrorKind::TooDeep,
            format!("expression is nested more than {MAX_DEPTH} levels deep"),
        )
    }

    // unary := '-' NUMBER | '-' unary | primary
    fn unary(&mut self, units: Units, depth: usize) -> Result<Expr, DqdlError> {
        let t = self.peek().clone();
        if depth >= MAX_DEPTH {
            return Err(self.too_deep(&t));
        }
        if t.tok != Tok::Minus {
            return self.primary(units, depth);
        }
        self.next();
        if matches!(self.peek().tok, Tok::Number(_)) {
            return match self.number_expr(units)? {
                Expr::Number { value } => Ok(Expr::Number { value: -value }),
                Expr::Duration { value, unit } => Ok(Expr::Duration { value: -value, unit }),
                other => Ok(other),
            };
        }
        let inner = self.unary(units, depth + 1)?;
        Ok(Expr::Neg {
            expr: Box::new(inner),
        })
    }

    // primary := NUMBER [unit] | '(' expr ')' | agg '(' 'last' '(' INT ')' ')'
    fn primary(&mut self, units: Units, depth: usize) -> Result<Expr, DqdlError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Number(_) => self.number_expr(units),
            Tok::LParen => {
                self.next();
                let e = self.expr_at(units, depth + 1)?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(e)
            }
            Tok::Ident(name) => {
                let Some(func) = AggFn::from_name(name) else {
                    return Err(self.unexpected(&t, "a number or avg/min/max/stddev(last(k))"));
                };
                self.next();
                self.expect(Tok::LParen, &format!("`(` after `{}`", func.name()))?;
                self.expect_word("last")?;
                self.expect(Tok::LParen, "`(` after `last`")?;
                let kt = self.next();
                let last = match &kt.tok {
                    Tok::Number(s) => s.parse::<usize>().ok().filter(|k| (1..=MAX_HISTORY).contains(k)),
                    _ => return Err(self.unexpected(&kt, "a whole number of history values")),
                };
                let Some(last) = last else {
                    return Err(self.err_at(
                        &kt,
                        ErrorKind::InvalidNumber,
                        format!("last(k) needs a whole number k from 1 to {MAX_HISTORY}"),
                    ));
                };
                self.expect(Tok::RParen, "`)` after the count")?;
                self.expect(Tok::RParen, &format!("`)` to close `{}(`", func.name()))?;
                Ok(Expr::History { func, last })
            }
            _ => Err(self.unexpected(&t, "a number or avg/min/max/stddev(last(k))")),
        }
    }

    fn number_expr(&mut self, units: Units) -> Result<Expr, DqdlError> {
        let t = self.next();
        let value = self.number_value(&t)?;
        if units == Units::None {
            return Ok(Expr::Number { value });
        }
        let ut = self.peek().clone();
        match &ut.tok {
            Tok::Ident(w) if TimeUnit::from_name(w).is_some() => {
                self.next();
                Ok(Expr::Duration {
                    value,
                    unit: TimeUnit::from_name(w).unwrap_or(TimeUnit::Hours),
                })
            }
            _ => Err(self.err_at(
                &ut,
                ErrorKind::UnexpectedToken,
                format!(
                    "expected a time unit (minutes, hours or days) after {} in {}, found {}",
                    value, self.rule_name, ut.tok
                ),
            )),
        }
    }

    fn number_value(&self, t: &Token) -> Result<f64, DqdlError> {
        let Tok::Number(text) = &t.tok else {
            return Err(self.unexpected(t, "a number"));
        };
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.err_at(
                t,
                ErrorKind::InvalidNumber,
                format!("number {} is out of range", shorten(text)),
            )),
        }
    }

    /// A row-level predicate. `numeric` (ColumnLength): numbers only, no `matches`.
    fn value_predicate(&mut self, numeric: bool) -> Result<ValuePredicate, DqdlError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Op(op) => {
                let op = *op;
                self.next();
                let vt = self.peek().clone();
                let value = self.literal(numeric)?;
                if value.is_keyword() && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    return Err(self.err_at(
                        &vt,
                        ErrorKind::InvalidArgument,
                        format!("{value} can only be compared with `=` or `!=`"),
                    ));
                }
                Ok(ValuePredicate::Compare { op, value })
            }
            Tok::Ident(w) if matches!(w.as_str(), "between" | "in" | "not" | "matches") => {
                let negated = self.not_keyword()?;
                let t = self.peek().clone();
                match &t.tok {
                    Tok::Ident(w) if w == "between" => {
                        self.next();
                        let low = self.ordered_literal(numeric)?;
                        self.expect_word("and")?;
                        let high = self.ordered_literal(numeric)?;
                        Ok(ValuePredicate::Between { low, high, negated })
                    }
                    Tok::Ident(w) if w == "in" => {
                        self.next();
                        self.expect(Tok::LBrack, "`[` to open the list")?;
                        let mut values = vec![self.literal(numeric)?];
                        while self.peek().tok == Tok::Comma {
                            self.next();
                            values.push(self.literal(numeric)?);
                        }
                        self.expect(Tok::RBrack, "`,` or `]` in the list")?;
                        Ok(ValuePredicate::In { values, negated })
                    }
                    Tok::Ident(w) if w == "matches" && !numeric => {
                        self.next();
                        let pattern = self.string("a regular expression in double quotes")?;
                        Ok(ValuePredicate::Matches { pattern, negated })
                    }
                    _ => Err(self.unexpected(
                        &t,
                        if numeric { "`between` or `in`" } else { "`between`, `in` or `matches`" },
                    )),
                }
            }
            _ => Err(self.unexpected(
                &t,
                if numeric {
                    "a length check such as `= 5`, `between 1 and 10` or `in [5, 9]`"
                } else {
                    "a value check such as `> 0`, `in [\"a\", \"b\"]`, `between 1 and 10` or `matches \"regex\"`"
                },
            )),
        }
    }

    fn ordered_literal(&mut self, numeric: bool) -> Result<Literal, DqdlError> {
        let t = self.peek().clone();
        let value = self.literal(numeric)?;
        if value.is_keyword() {
            return Err(self.err_at(
                &t,
                ErrorKind::InvalidArgument,
                format!("{value} cannot bound a range"),
            ));
        }
        Ok(value)
    }

    /// number | -number | "string" | NULL | EMPTY | WHITESPACES_ONLY | now() | (now() ± n unit)
    fn literal(&mut self, numeric: bool) -> Result<Literal, DqdlError> {
        let t = self.peek().clone();
        let what = if numeric {
            "a whole number length"
        } else {
            "a value: a number, a quoted string or date, NULL, EMPTY, WHITESPACES_ONLY or now()"
        };
        let value = match &t.tok {
            Tok::Number(_) => {
                self.next();
                Literal::Number {
                    value: self.number_value(&t)?,
                }
            }
            Tok::Minus if matches!(self.peek_at(1), Tok::Number(_)) => {
                self.next();
                let nt = self.next();
                Literal::Number {
                    value: -self.number_value(&nt)?,
                }
            }
            _ if numeric => return Err(self.unexpected(&t, what)),
            Tok::Str(s) => {
                let s = s.clone();
                self.next();
                Literal::Text { value: s }
            }
            Tok::Ident(w) if w == "NULL" || w == "null" => {
                self.next();
                Literal::Null
            }
            Tok::Ident(w) if w.eq_ignore_ascii_case("EMPTY") => {
                self.next();
                Literal::Empty
            }
            Tok::Ident(w) if w == "WHITESPACES_ONLY" || w == "whitespaces_only" => {
                self.next();
                Literal::WhitespacesOnly
            }
            Tok::Ident(w) if w == "now" => {
                self.now_call()?;
                Literal::Now { offset: None }
            }
            Tok::LParen => {
                self.next();
                self.now_call()?;
                let st = self.next();
                let sign = match st.tok {
                    Tok::Plus => 1,
                    Tok::Minus => -1,
                    _ => return Err(self.unexpected(&st, "`-` or `+` after `now()`")),
                };
                let nt = self.next();
                let amount = match &nt.tok {
                    Tok::Number(s) => s.parse::<i64>().ok().filter(|n| *n <= 1_000_000),
                    _ => return Err(self.unexpected(&nt, "a whole number")),
                };
                let Some(amount) = amount else {
                    return Err(self.err_at(
                        &nt,
                        ErrorKind::InvalidNumber,
                        "the offset from now() must be a whole number up to 1000000",
                    ));
                };
                let ut = self.next();
                let unit = match &ut.tok {
                    Tok::Ident(w) => TimeUnit::from_name(w),
                    _ => None,
                };
                let Some(unit) = unit else {
                    return Err(self.unexpected(&ut, "a time unit (minutes, hours or days)"));
                };
                self.expect(Tok::RParen, "`)` after the offset")?;
                Literal::Now {
                    offset: Some((sign * amount, unit)),
                }
            }
            _ => return Err(self.unexpected(&t, what)),
        };
        Ok(value)
    }

    fn now_call(&mut self) -> Result<(), DqdlError> {
        self.expect_word("now")?;
        self.expect(Tok::LParen, "`(` after `now`")?;
        self.expect(Tok::RParen, "`)` after `now(`")?;
        Ok(())
    }
}

/// `table.column`, each dot-separated part non-empty, at least two parts.
fn valid_reference(reference: &str) -> bool {
    let parts: Vec<&str> = reference.split('.').collect();
    parts.len() >= 2 && parts.iter().all(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> DqdlError {
        match parse_ruleset(input) {
            Ok(r) => panic!("expected an error for {input:?}, got {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn bracketed_ruleset_with_comments_and_newlines() {
        let text = r#"
# nightly checks
Rules = [
    RowCount > 0,            # never empty
    IsComplete "id",
    ColumnValues "status" in ["a", "b", 1] with threshold > 0.9 blocking,
]
"#;
        let set = parse_ruleset(text).unwrap();
        assert_eq!(set.rules.len(), 3);
        assert!(set.rules[2].blocking);
        assert_eq!(
            set.rules[2].to_string(),
            "ColumnValues \"status\" in [\"a\", \"b\", 1] with threshold > 0.9 blocking"
        );
    }

    #[test]
    fn bare_list_one_rule_per_line() {
        let text = "RowCount > 0\n\n  IsUnique \"id\"  # trailing comment\nMean \"x\" between 1 and 2\n";
        let set = parse_ruleset(text).unwrap();
        assert_eq!(set.rules.len(), 3);
        assert_eq!(set.rules[1].to_string(), "IsUnique \"id\"");
        // Two rules on one line must be separated.
        let e = err("RowCount > 0 IsUnique \"id\"");
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::UnexpectedToken, 1, 14));
        assert_eq!(parse_ruleset("").unwrap().rules.len(), 0);
        assert_eq!(parse_ruleset("# only a comment\n").unwrap().rules.len(), 0);
    }

    #[test]
    fn strings_keep_hashes_and_escapes() {
        let r = parse_rule(r#"CustomSql "SELECT COUNT(*) FROM primary WHERE tag = '#x' AND s = '\"'" = 0"#)
            .unwrap();
        match r.kind {
            RuleKind::CustomSql { sql, .. } => {
                assert_eq!(sql, "SELECT COUNT(*) FROM primary WHERE tag = '#x' AND s = '\"'");
            }
            other => panic!("{other:?}"),
        }
        let r = parse_rule(r#"ColumnValues "c" matches "\d+\\w""#).unwrap();
        match r.kind {
            RuleKind::ColumnValues {
                predicate: ValuePredicate::Matches { pattern, .. },
                ..
            } => assert_eq!(pattern, r"\d+\w"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_rule_has_position_and_hint() {
        let e = err("Rules = [\n  RowCount > 1,\n  Rowcount > 2\n]");
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::UnknownRule, 3, 3));
        assert!(e.message.contains("did you mean `RowCount`"), "{}", e.message);
        assert_eq!(e.to_string(), format!("line 3, column 3: {}", e.message));
        let e = err("Frobnicate \"x\"");
        assert_eq!(e.kind, ErrorKind::UnknownRule);
        assert!(e.message.contains("supported types are RowCount"));
        let e = err("Entropy \"x\" > 1");
        assert_eq!(e.kind, ErrorKind::Unsupported);
        let e = err("(RowCount > 1) and (IsComplete \"x\")");
        assert_eq!(e.kind, ErrorKind::Unsupported);
        let e = err("RowCount > 1 where \"x > 1\"");
        assert_eq!(e.kind, ErrorKind::Unsupported);
        let e = err("RowCount > 1 with threshold > 0.5");
        assert_eq!(e.kind, ErrorKind::Unsupported);
    }

    #[test]
    fn bad_quoting() {
        let e = err("IsComplete \"abc");
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::UnterminatedString, 1, 12));
        let e = err("IsComplete 'abc'");
        assert_eq!(
            (e.kind, e.line, e.column),
            (ErrorKind::UnexpectedCharacter, 1, 12)
        );
        let e = err("IsComplete abc");
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::UnexpectedToken, 1, 12));
        assert!(
            e.message.contains("column name in double quotes"),
            "{}",
            e.message
        );
        let e = err("IsComplete \"\"");
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        // A string may span lines; the position after it is still right.
        let e = err("CustomSql \"SELECT\n1\" = 1 x");
        assert_eq!((e.line, e.column), (2, 8));
    }

    #[test]
    fn unbalanced_brackets() {
        let e = err("Rules = [ RowCount > 0");
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::UnbalancedBracket, 1, 9));
        assert!(e.message.contains("never closed"));
        let e = err("Rules = [ RowCount > 0 ]]");
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::UnbalancedBracket, 1, 25));
        let e = err("ColumnValues \"c\" in [1, 2)");
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::UnbalancedBracket, 1, 26));
        assert!(e.message.contains("opened at line 1, column 21"), "{}", e.message);
        let e = err("RowCount > (1 + 2");
        assert_eq!(e.kind, ErrorKind::UnbalancedBracket);
    }

    #[test]
    fn limits() {
        let big = format!("RowCount > 0\n#{}", "x".repeat(MAX_INPUT_BYTES));
        let e = err(&big);
        assert_eq!(e.kind, ErrorKind::InputTooLarge);
        assert_eq!(e.line, 2);

        let many = vec!["RowCount > 0"; MAX_RULES + 1].join("\n");
        let e = err(&many);
        assert_eq!(
            (e.kind, e.line, e.column),
            (ErrorKind::TooManyRules, MAX_RULES + 1, 1)
        );
        assert_eq!(
            parse_ruleset(&vec!["RowCount > 0"; MAX_RULES].join("\n"))
                .unwrap()
                .rules
                .len(),
            MAX_RULES
        );

        let deep = format!("RowCount > {}1{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(err(&deep).kind, ErrorKind::TooDeep);
        let negs = format!("RowCount > {}1", "- ".repeat(5000));
        assert_eq!(err(&negs).kind, ErrorKind::TooDeep);
        let chain = format!("RowCount > 1{}", " + 1".repeat(5000));
        assert_eq!(err(&chain).kind, ErrorKind::TooDeep);
        let ok = format!("RowCount > {}1{}", "(".repeat(20), ")".repeat(20));
        assert!(parse_ruleset(&ok).is_ok());
        let e = err("RowCount > avg(last(0))");
        assert_eq!(e.kind, ErrorKind::InvalidNumber);
        let e = err("RowCount > avg(last(1.5))");
        assert_eq!(e.kind, ErrorKind::InvalidNumber);
        let e = err(&format!("RowCount > 1{}", "0".repeat(400)));
        assert_eq!(e.kind, ErrorKind::InvalidNumber);
    }

    #[test]
    fn argument_errors() {
        let e = err("DataFreshness \"t\" <= 24");
        assert_eq!(e.kind, ErrorKind::UnexpectedToken);
        assert!(e.message.contains("time unit"), "{}", e.message);
        let e = err("ReferentialIntegrity \"a\" \"nodot\" = 1");
        assert_eq!((e.kind, e.column), (ErrorKind::InvalidArgument, 26));
        let e = err("ColumnValues \"c\" > NULL");
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        let e = err("ColumnLength \"c\" matches \"x\"");
        assert_eq!(e.kind, ErrorKind::UnexpectedToken);
        let e = err("ColumnLength \"c\" = \"5\"");
        assert_eq!(e.kind, ErrorKind::UnexpectedToken);
        let e = err("RowCount");
        assert_eq!(e.kind, ErrorKind::UnexpectedToken);
        assert!(e.message.contains("in RowCount"), "{}", e.message);
        let e = err("RowCount > 1.");
        assert_eq!(e.kind, ErrorKind::InvalidNumber);
        let e = err("RowCount not 5");
        assert_eq!(e.kind, ErrorKind::UnexpectedToken);
        let e = err("CustomSql \"  \" = 1");
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        let e = err("Rules = [ RowCount > 1 RowCount > 2 ]");
        assert_eq!((e.kind, e.column), (ErrorKind::UnexpectedToken, 24));
        let e = err("Rules = [ RowCount > 1 ] RowCount > 2");
        assert_eq!(e.kind, ErrorKind::UnexpectedToken);
        assert!(parse_rule("RowCount > 1\nRowCount > 2").is_err());
    }

    #[test]
    fn operator_spellings() {
        assert_eq!(parse_rule("RowCount == 3").unwrap().to_string(), "RowCount = 3");
        assert_eq!(parse_rule("RowCount <> 3").unwrap().to_string(), "RowCount != 3");
        assert_eq!(parse_rule("Rules").unwrap_err().kind, ErrorKind::UnknownRule);
    }

    /// A small deterministic generator (no external crates).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn generated_inputs_never_panic() {
        let seed = "Rules = [ RowCount > 0.8 * avg(last(10)), IsComplete \"a\", \
            ColumnValues \"s\" in [\"x\", NULL, 1] with threshold > 0.9 blocking, \
            ColumnValues \"d\" > (now() - 3 days), DataFreshness \"t\" between 2 days and 5 days, \
            IsPrimaryKey \"a\" \"b\", ReferentialIntegrity \"c\" \"t.c\" = 1.0, \
            CustomSql \"SELECT COUNT(*) FROM primary\" between min(last(3)) - 1 and max(last(3)) + 1, \
            ColumnLength \"z\" not in [5, -9] # comment\n ]";
        let pieces = [
            "Rules",
            "=",
            "[",
            "]",
            "(",
            ")",
            ",",
            "\"",
            "\"c\"",
            "RowCount",
            "ColumnValues",
            "IsPrimaryKey",
            "DataFreshness",
            "CustomSql",
            "between",
            "and",
            "not",
            "in",
            "matches",
            "with",
            "threshold",
            "blocking",
            "avg",
            "last",
            "now",
            "NULL",
            ">",
            "<=",
            "!=",
            "!",
            "-",
            "+",
            "*",
            "/",
            "1",
            "0.5",
            "9999999999999999999999",
            "days",
            "#",
            "\n",
            " ",
            "\\",
            "'",
            "é",
            "\u{0}",
            "\t",
        ];
        let mut rng = Lcg(0x5eed);
        let seed_chars: Vec<char> = seed.chars().collect();
        for n in 0..=seed_chars.len() {
            let truncated: String = seed_chars[..n].iter().collect();
            let _ = parse_ruleset(&truncated);
            let _ = parse_rule(&truncated);
        }
        for _ in 0..3000 {
            let mut s = String::new();
            match rng.below(3) {
                0 => {
                    for _ in 0..rng.below(30) {
                        s.push_str(pieces[rng.below(pieces.len())]);
                        if rng.below(2) == 0 {
                            s.push(' ');
                        }
                    }
                }
                1 => {
                    // The seed with a few characters deleted, swapped or duplicated.
                    let mut chars = seed_chars.clone();
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(chars.len());
                        match rng.below(3) {
                            0 => {
                                chars.remove(at);
                            }
                            1 => {
                                let other = rng.below(chars.len());
                                chars.swap(at, other);
                            }
                            _ => {
                                let c = chars[at];
                                chars.insert(at, c);
                            }
                        }
                    }
                    s = chars.into_iter().collect();
                }
                _ => {
                    for _ in 0..rng.below(60) {
                        s.push(char::from_u32(rng.below(0x250) as u32).unwrap_or('?'));
                    }
                }
            }
            match parse_ruleset(&s) {
                Ok(set) => {
                    // Whatever parses must display canonically and round-trip.
                    let again = parse_ruleset(&set.to_string()).unwrap_or_else(|e| panic!("{s:?}: {e}"));
                    assert_eq!(again, set, "{s:?}");
                }
                Err(e) => {
                    assert!(e.line >= 1 && e.column >= 1, "{s:?}: {e}");
                    assert!(!e.message.is_empty());
                }
            }
        }
    }
}
