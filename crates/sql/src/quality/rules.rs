//! The rule model of the DQDL-like language.
//!
//! Invariant: every [`Rule`] displays as canonical DQDL text that
//! [`crate::quality::parse_rule`] turns back into an equal `Rule`, and every rule names
//! the metric keys it is judged on ([`Rule::metric_keys`]); the planner computes
//! exactly those keys and the evaluator reads exactly those keys, so the two
//! can never disagree about what a metric is called.
//!
//! One unit: the rule model and its canonical DQDL printing, which must stay in step with the
//! parser (its tests round-trip every rule kind).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Comparison operators: `=`, `!=`, `>`, `>=`, `<`, `<=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    /// The DQDL spelling, which is also the SQL spelling except for `!=`.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Aggregates over a metric's history: `avg`, `min`, `max`, `stddev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggFn {
    Avg,
    Min,
    Max,
    StdDev,
}

impl AggFn {
    pub fn name(self) -> &'static str {
        match self {
            AggFn::Avg => "avg",
            AggFn::Min => "min",
            AggFn::Max => "max",
            AggFn::StdDev => "stddev",
        }
    }

    pub fn from_name(name: &str) -> Option<AggFn> {
        match name {
            "avg" => Some(AggFn::Avg),
            "min" => Some(AggFn::Min),
            "max" => Some(AggFn::Max),
            "stddev" => Some(AggFn::StdDev),
            _ => None,
        }
    }
}

/// Time units for `DataFreshness` and `now()` offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    Minutes,
    Hours,
    Days,
}

impl TimeUnit {
    /// Canonical (plural) spelling.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Minutes => "minutes",
            TimeUnit::Hours => "hours",
            TimeUnit::Days => "days",
        }
    }

    /// Accepts singular and plural spellings.
    pub fn from_name(name: &str) -> Option<TimeUnit> {
        match name {
            "minute" | "minutes" => Some(TimeUnit::Minutes),
            "hour" | "hours" => Some(TimeUnit::Hours),
            "day" | "days" => Some(TimeUnit::Days),
            _ => None,
        }
    }

    /// How many hours one unit is.
    pub fn hours(self) -> f64 {
        match self {
            TimeUnit::Minutes => 1.0 / 60.0,
            TimeUnit::Hours => 1.0,
            TimeUnit::Days => 24.0,
        }
    }
}

/// Arithmetic operators in threshold expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }

    fn precedence(self) -> u8 {
        match self {
            BinOp::Add | BinOp::Sub => 1,
            BinOp::Mul | BinOp::Div => 2,
        }
    }
}

/// A numeric threshold expression: the right side of a metric comparison.
/// May be dynamic (refer to the metric's history through `avg(last(k))` etc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Expr {
    Number {
        value: f64,
    },
    /// A number with a time unit (only in `DataFreshness`); evaluates to hours.
    Duration {
        value: f64,
        unit: TimeUnit,
    },
    /// `func(last(k))`: an aggregate over the metric's last `k` recorded values.
    History {
        func: AggFn,
        last: usize,
    },
    Neg {
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
}

impl Expr {
    pub fn number(value: f64) -> Expr {
        Expr::Number { value }
    }

    /// Whether the expression reads history.
    pub fn is_dynamic(&self) -> bool {
        match self {
            Expr::Number { .. } | Expr::Duration { .. } => false,
            Expr::History { .. } => true,
            Expr::Neg { expr } => expr.is_dynamic(),
            Expr::Binary { left, right, .. } => left.is_dynamic() || right.is_dynamic(),
        }
    }

    /// Every `func(last(k))` in the expression, left to right.
    pub fn history_refs(&self) -> Vec<(AggFn, usize)> {
        let mut out = Vec::new();
        self.collect_history(&mut out);
        out
    }

    fn collect_history(&self, out: &mut Vec<(AggFn, usize)>) {
        match self {
            Expr::Number { .. } | Expr::Duration { .. } => {}
            Expr::History { func, last } => out.push((*func, *last)),
            Expr::Neg { expr } => expr.collect_history(out),
            Expr::Binary { left, right, .. } => {
                left.collect_history(out);
                right.collect_history(out);
            }
        }
    }

    /// Height of the expression tree (a leaf is 1).
    pub fn depth(&self) -> usize {
        match self {
            Expr::Number { .. } | Expr::Duration { .. } | Expr::History { .. } => 1,
            Expr::Neg { expr } => 1 + expr.depth(),
            Expr::Binary { left, right, .. } => 1 + left.depth().max(right.depth()),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number { value } => write!(f, "{value}"),
            Expr::Duration { value, unit } => write!(f, "{value} {}", unit.name()),
            Expr::History { func, last } => write!(f, "{}(last({last}))", func.name()),
            Expr::Neg { expr } => match expr.as_ref() {
                Expr::History { .. } => write!(f, "-{expr}"),
                _ => write!(f, "-({expr})"),
            },
            Expr::Binary { op, left, right } => {
                let wrap_left =
                    matches!(left.as_ref(), Expr::Binary { op: l, .. } if l.precedence() < op.precedence());
                let wrap_right =
                    matches!(right.as_ref(), Expr::Binary { op: r, .. } if r.precedence() <= op.precedence());
                if wrap_left {
                    write!(f, "({left})")?;
                } else {
                    write!(f, "{left}")?;
                }
                write!(f, " {} ", op.symbol())?;
                if wrap_right {
                    write!(f, "({right})")
                } else {
                    write!(f, "{right}")
                }
            }
        }
    }
}

/// A metric-level comparison: `> 5`, `between a and b`, `in [1, 2]`, ...
/// `between` is exclusive at both ends, as in AWS DQDL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Comparison {
    Compare { op: CmpOp, value: Expr },
    Between { low: Expr, high: Expr, negated: bool },
    In { values: Vec<Expr>, negated: bool },
}

impl Comparison {
    pub fn is_dynamic(&self) -> bool {
        self.operands().iter().any(|e| e.is_dynamic())
    }

    /// The expressions on the right side, in order.
    pub fn operands(&self) -> Vec<&Expr> {
        match self {
            Comparison::Compare { value, .. } => vec![value],
            Comparison::Between { low, high, .. } => vec![low, high],
            Comparison::In { values, .. } => values.iter().collect(),
        }
    }
}

fn write_not(f: &mut fmt::Formatter<'_>, negated: bool) -> fmt::Result {
    if negated { f.write_str("not ") } else { Ok(()) }
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    f.write_str("[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str("]")
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Comparison::Compare { op, value } => write!(f, "{op} {value}"),
            Comparison::Between { low, high, negated } => {
                write_not(f, *negated)?;
                write!(f, "between {low} and {high}")
            }
            Comparison::In { values, negated } => {
                write_not(f, *negated)?;
                f.write_str("in ")?;
                write_list(f, values)
            }
        }
    }
}

/// A row-level value in a `ColumnValues` / `ColumnLength` predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Literal {
    Number {
        value: f64,
    },
    /// A quoted string; also how dates are written (`"2024-01-31"`).
    Text {
        value: String,
    },
    /// `NULL`
    Null,
    /// `EMPTY`: the empty string.
    Empty,
    /// `WHITESPACES_ONLY`: a non-empty string of whitespace.
    WhitespacesOnly,
    /// `now()` or `(now() - 3 days)` / `(now() + 2 hours)`; `offset` is signed.
    Now {
        offset: Option<(i64, TimeUnit)>,
    },
}

impl Literal {
    /// NULL, EMPTY and WHITESPACES_ONLY: allowed only with `=`, `!=` and in lists.
    pub fn is_keyword(&self) -> bool {
        matches!(self, Literal::Null | Literal::Empty | Literal::WhitespacesOnly)
    }
}

/// Writes `s` as a DQDL string: `"` and `\` are backslash-escaped.
pub fn quote_dqdl(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Number { value } => write!(f, "{value}"),
            Literal::Text { value } => f.write_str(&quote_dqdl(value)),
            Literal::Null => f.write_str("NULL"),
            Literal::Empty => f.write_str("EMPTY"),
            Literal::WhitespacesOnly => f.write_str("WHITESPACES_ONLY"),
            Literal::Now { offset: None } => f.write_str("now()"),
            Literal::Now {
                offset: Some((amount, unit)),
            } => {
                let sign = if *amount < 0 { '-' } else { '+' };
                write!(f, "(now() {sign} {} {})", amount.unsigned_abs(), unit.name())
            }
        }
    }
}

/// A row-level predicate (ColumnValues, ColumnLength). `between` is exclusive.
/// A row whose value is NULL fails every predicate except one that names NULL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ValuePredicate {
    Compare {
        op: CmpOp,
        value: Literal,
    },
    Between {
        low: Literal,
        high: Literal,
        negated: bool,
    },
    In {
        values: Vec<Literal>,
        negated: bool,
    },
    Matches {
        pattern: String,
        negated: bool,
    },
}

impl fmt::Display for ValuePredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValuePredicate::Compare { op, value } => write!(f, "{op} {value}"),
            ValuePredicate::Between { low, high, negated } => {
                write_not(f, *negated)?;
                write!(f, "between {low} and {high}")
            }
            ValuePredicate::In { values, negated } => {
                write_not(f, *negated)?;
                f.write_str("in ")?;
                write_list(f, values)
            }
            ValuePredicate::Matches { pattern, negated } => {
                write_not(f, *negated)?;
                write!(f, "matches {}", quote_dqdl(pattern))
            }
        }
    }
}

/// The rule types, with their arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RuleKind {
    RowCount {
        check: Comparison,
    },
    ColumnCount {
        check: Comparison,
    },
    IsComplete {
        column: String,
    },
    Completeness {
        column: String,
        check: Comparison,
    },
    IsUnique {
        column: String,
    },
    Uniqueness {
        column: String,
        check: Comparison,
    },
    /// One or more key columns.
    IsPrimaryKey {
        columns: Vec<String>,
    },
    /// `threshold`: the fraction of rows that must satisfy the predicate
    /// (`with threshold > 0.9`); `None` means every row.
    ColumnValues {
        column: String,
        predicate: ValuePredicate,
        threshold: Option<Comparison>,
    },
    /// The predicate applies to the length of each non-NULL value.
    ColumnLength {
        column: String,
        predicate: ValuePredicate,
        threshold: Option<Comparison>,
    },
    DistinctValuesCount {
        column: String,
        check: Comparison,
    },
    Mean {
        column: String,
        check: Comparison,
    },
    Sum {
        column: String,
        check: Comparison,
    },
    StandardDeviation {
        column: String,
        check: Comparison,
    },
    /// The check is on the age, in hours, of the column's newest value.
    DataFreshness {
        column: String,
        check: Comparison,
    },
    /// `reference` is `"table.column"` (the table part may itself be dotted);
    /// the check is on the fraction of non-NULL values found there.
    ReferentialIntegrity {
        column: String,
        reference: String,
        check: Comparison,
    },
    /// The statement must return one number; `primary` names the table under test.
    CustomSql {
        sql: String,
        check: Comparison,
    },
}

/// One rule: a rule type with its arguments, and groundwork's `blocking` tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub kind: RuleKind,
    /// A failing blocking rule marks the table untrusted.
    #[serde(default)]
    pub blocking: bool,
}

/// An ordered list of rules, as written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Ruleset {
    pub rules: Vec<Rule>,
}

/// Supported rule type names, as written in DQDL (case-sensitive).
pub const RULE_TYPES: &[&str] = &[
    "RowCount",
    "ColumnCount",
    "IsComplete",
    "Completeness",
    "IsUnique",
    "Uniqueness",
    "IsPrimaryKey",
    "ColumnValues",
    "ColumnLength",
    "DistinctValuesCount",
    "Mean",
    "Sum",
    "StandardDeviation",
    "DataFreshness",
    "ReferentialIntegrity",
    "CustomSql",
];

/// Metric-key helpers. A key is `name` or `name:column` for one plain argument,
/// and `name:` followed by a JSON array of strings when there are several
/// arguments (so no column name can make two keys collide).
pub mod key {
    pub const ROW_COUNT: &str = "rowcount";
    pub const COLUMN_COUNT: &str = "columncount";

    pub fn column(prefix: &str, column: &str) -> String {
        format!("{prefix}:{column}")
    }

    pub fn compound(prefix: &str, parts: &[&str]) -> String {
        let json = serde_json::to_string(parts).unwrap_or_default();
        format!("{prefix}:{json}")
    }
}

/// How a `ColumnLength` rule is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthMeasure {
    /// By `MIN(length)` and `MAX(length)`: no threshold and an order operator.
    MinMax,
    /// By the fraction of non-NULL values whose length satisfies the predicate.
    Fraction,
}

/// The measurement `ColumnLength` uses for this predicate and threshold.
pub fn length_measure(predicate: &ValuePredicate, threshold: Option<&Comparison>) -> LengthMeasure {
    if threshold.is_some() {
        return LengthMeasure::Fraction;
    }
    match predicate {
        ValuePredicate::Compare { op, .. } if *op != CmpOp::Ne => LengthMeasure::MinMax,
        ValuePredicate::Between { negated: false, .. } => LengthMeasure::MinMax,
        _ => LengthMeasure::Fraction,
    }
}

impl Rule {
    pub fn new(kind: RuleKind) -> Rule {
        Rule {
            kind,
            blocking: false,
        }
    }

    /// The DQDL rule type name, e.g. `"RowCount"`.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            RuleKind::RowCount { .. } => "RowCount",
            RuleKind::ColumnCount { .. } => "ColumnCount",
            RuleKind::IsComplete { .. } => "IsComplete",
            RuleKind::Completeness { .. } => "Completeness",
            RuleKind::IsUnique { .. } => "IsUnique",
            RuleKind::Uniqueness { .. } => "Uniqueness",
            RuleKind::IsPrimaryKey { .. } => "IsPrimaryKey",
            RuleKind::ColumnValues { .. } => "ColumnValues",
            RuleKind::ColumnLength { .. } => "ColumnLength",
            RuleKind::DistinctValuesCount { .. } => "DistinctValuesCount",
            RuleKind::Mean { .. } => "Mean",
            RuleKind::Sum { .. } => "Sum",
            RuleKind::StandardDeviation { .. } => "StandardDeviation",
            RuleKind::DataFreshness { .. } => "DataFreshness",
            RuleKind::ReferentialIntegrity { .. } => "ReferentialIntegrity",
            RuleKind::CustomSql { .. } => "CustomSql",
        }
    }

    /// The metric comparison of the rule, if it has one (the `with threshold`
    /// comparison for ColumnValues / ColumnLength).
    pub fn check(&self) -> Option<&Comparison> {
        match &self.kind {
            RuleKind::RowCount { check }
            | RuleKind::ColumnCount { check }
            | RuleKind::Completeness { check, .. }
            | RuleKind::Uniqueness { check, .. }
            | RuleKind::DistinctValuesCount { check, .. }
            | RuleKind::Mean { check, .. }
            | RuleKind::Sum { check, .. }
            | RuleKind::StandardDeviation { check, .. }
            | RuleKind::DataFreshness { check, .. }
            | RuleKind::ReferentialIntegrity { check, .. }
            | RuleKind::CustomSql { check, .. } => Some(check),
            RuleKind::ColumnValues { threshold, .. } | RuleKind::ColumnLength { threshold, .. } => {
                threshold.as_ref()
            }
            RuleKind::IsComplete { .. } | RuleKind::IsUnique { .. } | RuleKind::IsPrimaryKey { .. } => None,
        }
    }

    /// Whether the rule's threshold reads history.
    pub fn is_dynamic(&self) -> bool {
        self.check().is_some_and(Comparison::is_dynamic)
    }

    /// The metric keys the rule is judged on. The first is the rule's own
    /// metric: the one reported in its outcome and whose history
    /// `avg(last(k))` etc. read.
    pub fn metric_keys(&self) -> Vec<String> {
        use key::{column as col, compound};
        match &self.kind {
            RuleKind::RowCount { .. } => vec![key::ROW_COUNT.to_string()],
            RuleKind::ColumnCount { .. } => vec![key::COLUMN_COUNT.to_string()],
            RuleKind::IsComplete { column } | RuleKind::Completeness { column, .. } => {
                vec![col("completeness", column)]
            }
            RuleKind::IsUnique { column } | RuleKind::Uniqueness { column, .. } => {
                vec![col("uniqueness", column)]
            }
            RuleKind::IsPrimaryKey { columns } => {
                let parts: Vec<&str> = columns.iter().map(String::as_str).collect();
                vec![compound("primarykey", &parts)]
            }
            RuleKind::ColumnValues {
                column, predicate, ..
            } => {
                vec![compound("values", &[column, &predicate.to_string()])]
            }
            RuleKind::ColumnLength {
                column,
                predicate,
                threshold,
            } => match length_measure(predicate, threshold.as_ref()) {
                LengthMeasure::MinMax => vec![col("minlength", column), col("maxlength", column)],
                LengthMeasure::Fraction => vec![compound("lengths", &[column, &predicate.to_string()])],
            },
            RuleKind::DistinctValuesCount { column, .. } => vec![col("distinct", column)],
            RuleKind::Mean { column, .. } => vec![col("mean", column)],
            RuleKind::Sum { column, .. } => vec![col("sum", column)],
            RuleKind::StandardDeviation { column, .. } => vec![col("stddev", column)],
            RuleKind::DataFreshness { column, .. } => vec![col("freshness", column)],
            RuleKind::ReferentialIntegrity {
                column, reference, ..
            } => {
                vec![compound("referential", &[column, reference])]
            }
            RuleKind::CustomSql { sql, .. } => vec![col("customsql", sql)],
        }
    }

    /// The rule's own metric key (the first of [`Rule::metric_keys`]).
    pub fn metric_key(&self) -> String {
        self.metric_keys().into_iter().next().unwrap_or_default()
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())?;
        let q = |s: &str| quote_dqdl(s);
        match &self.kind {
            RuleKind::RowCount { check } | RuleKind::ColumnCount { check } => write!(f, " {check}")?,
            RuleKind::IsComplete { column } | RuleKind::IsUnique { column } => write!(f, " {}", q(column))?,
            RuleKind::IsPrimaryKey { columns } => {
                for c in columns {
                    write!(f, " {}", q(c))?;
                }
            }
            RuleKind::Completeness { column, check }
            | RuleKind::Uniqueness { column, check }
            | RuleKind::DistinctValuesCount { column, check }
            | RuleKind::Mean { column, check }
            | RuleKind::Sum { column, check }
            | RuleKind::StandardDeviation { column, check }
            | RuleKind::DataFreshness { column, check } => write!(f, " {} {check}", q(column))?,
            RuleKind::ColumnValues {
                column,
                predicate,
                threshold,
            }
            | RuleKind::ColumnLength {
                column,
                predicate,
                threshold,
            } => {
                write!(f, " {} {predicate}", q(column))?;
                if let Some(t) = threshold {
                    write!(f, " with threshold {t}")?;
                }
            }
            RuleKind::ReferentialIntegrity {
                column,
                reference,
                check,
            } => write!(f, " {} {} {check}", q(column), q(reference))?,
            RuleKind::CustomSql { sql, check } => write!(f, " {} {check}", q(sql))?,
        }
        if self.blocking {
            f.write_str(" blocking")?;
        }
        Ok(())
    }
}

impl fmt::Display for Ruleset {
    /// `Rules = [` with one rule per line, `]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return f.write_str("Rules = [ ]");
        }
        f.write_str("Rules = [\n")?;
        for (i, rule) in self.rules.iter().enumerate() {
            let sep = if i + 1 < self.rules.len() { "," } else { "" };
            writeln!(f, "    {rule}{sep}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::quality::{parse_rule, parse_ruleset};

    /// One rule text per rule kind and per syntactic form, in canonical form.
    pub(crate) const CANONICAL: &[&str] = &[
        "RowCount > 0",
        "RowCount = 1000",
        "RowCount != 3",
        "RowCount >= 10",
        "RowCount < 1000000",
        "RowCount <= 2.5",
        "RowCount between 10 and 100",
        "RowCount not between 10 and 100",
        "RowCount in [1, 2, 3]",
        "RowCount not in [4, 5]",
        "RowCount > avg(last(5))",
        "RowCount > 0.8 * avg(last(10))",
        "RowCount between min(last(3)) - 1 and max(last(3)) + 1",
        "RowCount < avg(last(7)) + 3 * stddev(last(7))",
        "RowCount > (avg(last(4)) - 2) * (1 + 0.5) / 2",
        "RowCount > -avg(last(2))",
        "RowCount > -(3)",
        "RowCount > -3 - -4",
        "RowCount > 10 - (4 - 2)",
        "RowCount > 0.0001 blocking",
        "ColumnCount = 12",
        "ColumnCount >= max(last(1))",
        "IsComplete \"order_id\"",
        "IsComplete \"weird \\\"name\\\" \\\\ here\" blocking",
        "Completeness \"email\" >= 0.95",
        "Completeness \"c\" >= min(last(3))",
        "IsUnique \"id\"",
        "Uniqueness \"id\" > 0.99",
        "IsPrimaryKey \"id\"",
        "IsPrimaryKey \"a\" \"b\" blocking",
        "ColumnValues \"status\" in [\"a\", \"b\", 1]",
        "ColumnValues \"status\" not in [\"x\", NULL, EMPTY, WHITESPACES_ONLY]",
        "ColumnValues \"qty\" between 1 and 10",
        "ColumnValues \"qty\" not between -1 and 10.5",
        "ColumnValues \"email\" matches \"[a-z]+@[a-z]+\\\\.com\"",
        "ColumnValues \"email\" not matches \"^\\\\d+$\"",
        "ColumnValues \"qty\" > 0",
        "ColumnValues \"qty\" != NULL",
        "ColumnValues \"code\" = EMPTY",
        "ColumnValues \"d\" > \"2024-01-31\"",
        "ColumnValues \"d\" between \"2024-01-01\" and \"2024-12-31\"",
        "ColumnValues \"ts\" > (now() - 3 days)",
        "ColumnValues \"ts\" <= now()",
        "ColumnValues \"ts\" < (now() + 90 minutes)",
        "ColumnValues \"qty\" > 0 with threshold > 0.9",
        "ColumnValues \"qty\" > 0 with threshold between 0.5 and 0.9 blocking",
        "ColumnLength \"zip\" = 5",
        "ColumnLength \"zip\" between 4 and 9",
        "ColumnLength \"zip\" in [5, 9]",
        "ColumnLength \"zip\" != 4",
        "ColumnLength \"zip\" >= 5 with threshold >= 0.99",
        "DistinctValuesCount \"country\" > 3",
        "Mean \"price\" between 1 and 100",
        "Sum \"amount\" > 0",
        "StandardDeviation \"price\" < 12.5",
        "DataFreshness \"updated_at\" <= 24 hours",
        "DataFreshness \"updated_at\" between 2 days and 5 days",
        "DataFreshness \"updated_at\" < 90 minutes",
        "DataFreshness \"updated_at\" < avg(last(5)) + 1 hours",
        "ReferentialIntegrity \"customer_id\" \"customers.id\" = 1",
        "ReferentialIntegrity \"customer_id\" \"sales.customers.id\" >= 0.99",
        "CustomSql \"SELECT COUNT(*) FROM primary WHERE x < 0\" = 0",
        "CustomSql \"SELECT COUNT(*) FROM primary WHERE name = 'a\\\"b'\" between 0 and 5 blocking",
    ];

    #[test]
    fn every_canonical_form_round_trips() {
        for text in CANONICAL {
            let rule = parse_rule(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(rule.to_string(), *text, "display of parsed {text}");
            let again = parse_rule(&rule.to_string()).unwrap();
            assert_eq!(again, rule, "{text}");
        }
    }

    #[test]
    fn every_rule_type_is_covered_by_the_round_trip() {
        for name in RULE_TYPES {
            assert!(
                CANONICAL.iter().any(|t| t.split(' ').next() == Some(name)),
                "no round-trip case for {name}"
            );
        }
    }

    #[test]
    fn non_canonical_text_displays_canonically() {
        let cases = [
            ("RowCount>5", "RowCount > 5"),
            ("RowCount > avg(last(10)) *0.8", "RowCount > avg(last(10)) * 0.8"),
            ("RowCount > ((1))", "RowCount > 1"),
            ("RowCount > 1.50", "RowCount > 1.5"),
            ("RowCount > 007", "RowCount > 7"),
            ("DataFreshness \"c\" <= 1 day", "DataFreshness \"c\" <= 1 days"),
            (
                "ColumnValues \"c\" in [ null , empty ]",
                "ColumnValues \"c\" in [NULL, EMPTY]",
            ),
            (
                "ColumnValues \"c\" matches \"\\d+\"",
                "ColumnValues \"c\" matches \"\\\\d+\"",
            ),
            (
                "RowCount between 1 and 2 - 3 * 4",
                "RowCount between 1 and 2 - 3 * 4",
            ),
            ("RowCount > (1 - 2) - 3", "RowCount > 1 - 2 - 3"),
            ("RowCount > 1 - (2 - 3)", "RowCount > 1 - (2 - 3)"),
            ("RowCount > (2 * 3) / (4 / 5)", "RowCount > 2 * 3 / (4 / 5)"),
        ];
        for (input, canonical) in cases {
            let rule = parse_rule(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(rule.to_string(), canonical);
            assert_eq!(parse_rule(canonical).unwrap(), rule);
        }
    }

    #[test]
    fn ruleset_display_round_trips_and_serde_round_trips() {
        let text = format!("Rules = [ {} ]", CANONICAL.join(",\n "));
        let set = parse_ruleset(&text).unwrap();
        assert_eq!(set.rules.len(), CANONICAL.len());
        assert_eq!(parse_ruleset(&set.to_string()).unwrap(), set);
        let json = serde_json::to_string(&set).unwrap();
        let back: Ruleset = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        assert_eq!(Ruleset::default().to_string(), "Rules = [ ]");
        assert_eq!(parse_ruleset("Rules = [ ]").unwrap(), Ruleset::default());
    }

    #[test]
    fn serde_shape_is_readable() {
        let rule = parse_rule("Completeness \"c\" >= 0.9 blocking").unwrap();
        let json = serde_json::to_value(&rule).unwrap();
        assert_eq!(json["kind"]["type"], "Completeness");
        assert_eq!(json["kind"]["column"], "c");
        assert_eq!(json["kind"]["check"]["type"], "compare");
        assert_eq!(json["kind"]["check"]["op"], "ge");
        assert_eq!(json["blocking"], true);
    }

    #[test]
    fn metric_keys_are_stable_and_distinct() {
        let k = |t: &str| parse_rule(t).unwrap().metric_keys();
        assert_eq!(k("RowCount > 1"), ["rowcount"]);
        assert_eq!(k("ColumnCount > 1"), ["columncount"]);
        assert_eq!(k("IsComplete \"c\""), ["completeness:c"]);
        assert_eq!(k("Completeness \"c\" > 0.5"), ["completeness:c"]);
        assert_eq!(k("IsUnique \"c\""), ["uniqueness:c"]);
        assert_eq!(k("IsPrimaryKey \"a\" \"b\""), ["primarykey:[\"a\",\"b\"]"]);
        assert_eq!(k("IsPrimaryKey \"a,b\""), ["primarykey:[\"a,b\"]"]);
        assert_eq!(k("ColumnValues \"c\" > 0"), ["values:[\"c\",\"> 0\"]"]);
        assert_eq!(
            k("ColumnValues \"c\" > 0 with threshold > 0.5"),
            k("ColumnValues \"c\" > 0 with threshold > 0.9")
        );
        assert_eq!(
            k("ColumnLength \"c\" between 1 and 4"),
            ["minlength:c", "maxlength:c"]
        );
        assert_eq!(k("ColumnLength \"c\" != 4"), ["lengths:[\"c\",\"!= 4\"]"]);
        assert_eq!(k("DataFreshness \"t\" < 1 hours"), ["freshness:t"]);
        assert_eq!(
            k("ReferentialIntegrity \"a\" \"t.b\" = 1"),
            ["referential:[\"a\",\"t.b\"]"]
        );
        assert_eq!(k("CustomSql \"SELECT 1\" = 1"), ["customsql:SELECT 1"]);
    }

    #[test]
    fn dynamic_detection() {
        assert!(parse_rule("RowCount > avg(last(3))").unwrap().is_dynamic());
        assert!(!parse_rule("RowCount > 3").unwrap().is_dynamic());
        assert!(!parse_rule("IsComplete \"c\"").unwrap().is_dynamic());
        let e = parse_rule("RowCount between min(last(3)) - 1 and max(last(4)) + 1").unwrap();
        let refs: Vec<_> = e
            .check()
            .unwrap()
            .operands()
            .iter()
            .flat_map(|o| o.history_refs())
            .collect();
        assert_eq!(refs, [(AggFn::Min, 3), (AggFn::Max, 4)]);
    }
}
