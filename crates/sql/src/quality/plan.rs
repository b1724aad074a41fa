//! Turns one table's rules into as few SQL scans as possible.
//!
//! Invariant: every metric key that any rule reads ([`Rule::metric_keys`]) is
//! produced by exactly one scan of the plan or listed in
//! [`ScanPlan::external`]; all single-table aggregates share one statement;
//! and no text from a rule reaches SQL except as an identifier passed through
//! the caller's `quote`, an escaped string literal ([`sql_string`]), a
//! formatted number, or (CustomSql only) the user's own query wrapped as a
//! scalar subquery, which cannot stack a second statement.
//!
//! SQL targets Apache DataFusion. Every output column is a DOUBLE named `m0`,
//! `m1`, ...; [`Scan::metrics`] maps them back to metric keys.
//!
//! One unit: one SQL rendering per rule kind, kept together so that every metric key is planned
//! in one place, with its tests.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::quality::rules::{CmpOp, LengthMeasure, Literal, Rule, RuleKind, ValuePredicate, length_measure};

/// Why a scan is separate from the table's aggregate scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanKind {
    /// One aggregate pass over the table: every metric that can share it.
    Aggregate,
    /// Multi-column primary key: a GROUP BY over the key columns.
    PrimaryKey,
    /// An anti-join against another table.
    ReferentialIntegrity,
    /// The user's own statement.
    CustomSql,
}

/// One SQL statement returning one row; column `m{i}` is metric `metrics[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    pub kind: ScanKind,
    pub sql: String,
    pub metrics: Vec<String>,
    /// Aggregate scans only: the SQL expression of each metric, for
    /// [`ScanPlan::isolated`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
}

impl Scan {
    /// Pairs a result row (values of `m0`, `m1`, ... in order; NULL as `None`)
    /// with the metric keys. Extra values are ignored; missing ones are `None`.
    pub fn bind(&self, row: &[Option<f64>]) -> Vec<(String, Option<f64>)> {
        self.metrics
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), row.get(i).copied().flatten()))
            .collect()
    }
}

/// The scans that compute every metric a table's rules need.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScanPlan {
    /// The aggregate scan (if any) first, then the separate ones.
    pub scans: Vec<Scan>,
    /// Metrics no scan computes, which the caller supplies: `columncount`
    /// (the schema's column count).
    pub external: Vec<String>,
    /// The table reference the plan scans, as given to [`plan`].
    pub table: String,
}

impl ScanPlan {
    /// How many SQL statements the plan runs.
    pub fn scan_count(&self) -> usize {
        self.scans.len()
    }

    /// The aggregate scan split into one statement per metric: the fallback
    /// when the shared statement fails (say, a bad regex or `Mean` over a
    /// text column), so that one bad rule does not take down the others.
    pub fn isolated(&self) -> Vec<Scan> {
        self.scans
            .iter()
            .filter(|s| s.kind == ScanKind::Aggregate)
            .flat_map(|s| {
                s.metrics.iter().zip(&s.columns).map(|(key, expr)| Scan {
                    kind: ScanKind::Aggregate,
                    sql: format!("SELECT {expr} AS m0 FROM {}", self.table),
                    metrics: vec![key.clone()],
                    columns: vec![expr.clone()],
                })
            })
            .collect()
    }

    /// Every metric key the plan yields, scans first, then external ones.
    pub fn metric_keys(&self) -> Vec<&str> {
        self.scans
            .iter()
            .flat_map(|s| s.metrics.iter().map(String::as_str))
            .chain(self.external.iter().map(String::as_str))
            .collect()
    }
}

/// A SQL string literal: single quotes, embedded quotes doubled.
pub fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL numeric literal for a finite number; a cast for NaN and infinities.
pub fn sql_number(v: f64) -> String {
    if !v.is_finite() {
        return format!("CAST({} AS DOUBLE)", sql_string(&v.to_string()));
    }
    if v.abs() >= 1e15 {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Plans the scans for `rules` over the table `table_sql` (an SQL table
/// reference, used verbatim: the caller has already quoted it). `quote`
/// quotes one identifier; reference tables in ReferentialIntegrity are quoted
/// part by part (`a.b` becomes `quote(a).quote(b)`).
pub fn plan(rules: &[Rule], table_sql: &str, quote: &dyn Fn(&str) -> String) -> ScanPlan {
    let mut b = Builder {
        table: table_sql,
        quote,
        seen: HashSet::new(),
        aggregates: Vec::new(),
        separate: Vec::new(),
        external: Vec::new(),
    };
    for rule in rules {
        b.rule(rule);
    }
    let mut scans = Vec::new();
    if !b.aggregates.is_empty() {
        let columns: Vec<String> = b
            .aggregates
            .iter()
            .enumerate()
            .map(|(i, (_, expr))| format!("  {expr} AS m{i}"))
            .collect();
        let (metrics, exprs): (Vec<String>, Vec<String>) = b.aggregates.into_iter().unzip();
        scans.push(Scan {
            kind: ScanKind::Aggregate,
            sql: format!("SELECT\n{}\nFROM {}", columns.join(",\n"), b.table),
            metrics,
            columns: exprs,
        });
    }
    scans.extend(b.separate);
    ScanPlan {
        scans,
        external: b.external,
        table: table_sql.to_string(),
    }
}

struct Builder<'a> {
    table: &'a str,
    quote: &'a dyn Fn(&str) -> String,
    seen: HashSet<String>,
    aggregates: Vec<(String, String)>,
    separate: Vec<Scan>,
    external: Vec<String>,
}

impl Builder<'_> {
    fn q(&self, ident: &str) -> String {
        (self.quote)(ident)
    }

    /// Claims a key; false if some earlier rule already planned it.
    fn claim(&mut self, key: &str) -> bool {
        self.seen.insert(key.to_string())
    }

    fn aggregate(&mut self, key: String, expr: String) {
        if self.claim(&key) {
            self.aggregates.push((key, expr));
        }
    }

    fn separate(&mut self, kind: ScanKind, key: String, sql: impl FnOnce(&Self) -> String) {
        if self.claim(&key) {
            let sql = sql(self);
            self.separate.push(Scan {
                kind,
                sql,
                metrics: vec![key],
                columns: Vec::new(),
            });
        }
    }

    /// `n / d` as a DOUBLE, or 1.0 when there is nothing to divide by.
    fn ratio(numerator: &str, denominator: &str) -> String {
        format!(
            "CASE WHEN {denominator} = 0 THEN 1.0 ELSE CAST({numerator} AS DOUBLE) / CAST({denominator} AS DOUBLE) END"
        )
    }

    fn rule(&mut self, rule: &Rule) {
        let keys = rule.metric_keys();
        let Some(main) = keys.first().cloned() else { return };
        match &rule.kind {
            RuleKind::RowCount { .. } => self.aggregate(main, "CAST(COUNT(*) AS DOUBLE)".into()),
            RuleKind::ColumnCount { .. } => {
                if self.claim(&main) {
                    self.external.push(main);
                }
            }
            RuleKind::IsComplete { column } | RuleKind::Completeness { column, .. } => {
                let c = self.q(column);
                self.aggregate(main, Self::ratio(&format!("COUNT({c})"), "COUNT(*)"));
            }
            RuleKind::IsUnique { column } | RuleKind::Uniqueness { column, .. } => {
                let c = self.q(column);
                self.aggregate(
                    main,
                    Self::ratio(&format!("COUNT(DISTINCT {c})"), &format!("COUNT({c})")),
                );
            }
            RuleKind::IsPrimaryKey { columns } => match columns.as_slice() {
                [] => {}
                [column] => {
                    // Rows that are NULL or repeat an earlier value.
                    let c = self.q(column);
                    self.aggregate(main, format!("CAST(COUNT(*) - COUNT(DISTINCT {c}) AS DOUBLE)"));
                }
                many => {
                    let cols: Vec<String> = many.iter().map(|c| self.q(c)).collect();
                    self.separate(ScanKind::PrimaryKey, main, |b| {
                        let any_null = cols.iter().map(|c| format!("{c} IS NULL")).collect::<Vec<_>>().join(" OR ");
                        // Per key group: every row violates if the key has a NULL,
                        // otherwise all but the first row.
                        format!(
                            "SELECT CAST(COALESCE(SUM(CASE WHEN g.key_has_null = 1 THEN g.n ELSE g.n - 1 END), 0) AS DOUBLE) AS m0\n\
                             FROM (SELECT COUNT(*) AS n, MAX(CASE WHEN {any_null} THEN 1 ELSE 0 END) AS key_has_null\n\
                             FROM {} GROUP BY {}) AS g",
                            b.table,
                            cols.join(", ")
                        )
                    });
                }
            },
            RuleKind::ColumnValues {
                column, predicate, ..
            } => {
                let c = self.q(column);
                let pred = predicate_sql(&c, predicate);
                let passing = format!("SUM(CASE WHEN {pred} THEN 1 ELSE 0 END)");
                self.aggregate(main, Self::ratio(&passing, "COUNT(*)"));
            }
            RuleKind::ColumnLength {
                column,
                predicate,
                threshold,
            } => {
                let c = self.q(column);
                let len = format!("character_length(CAST({c} AS VARCHAR))");
                match length_measure(predicate, threshold.as_ref()) {
                    LengthMeasure::MinMax => {
                        let mut keys = keys.into_iter();
                        let (min_key, max_key) =
                            (keys.next().unwrap_or_default(), keys.next().unwrap_or_default());
                        self.aggregate(min_key, format!("CAST(MIN({len}) AS DOUBLE)"));
                        self.aggregate(max_key, format!("CAST(MAX({len}) AS DOUBLE)"));
                    }
                    LengthMeasure::Fraction => {
                        // NULL values have no length: they are left out of both counts.
                        let pred = predicate_sql(&len, predicate);
                        let passing = format!("SUM(CASE WHEN {pred} THEN 1 ELSE 0 END)");
                        self.aggregate(main, Self::ratio(&passing, &format!("COUNT({c})")));
                    }
                }
            }
            RuleKind::DistinctValuesCount { column, .. } => {
                let c = self.q(column);
                self.aggregate(main, format!("CAST(COUNT(DISTINCT {c}) AS DOUBLE)"));
            }
            RuleKind::Mean { column, .. } => {
                let c = self.q(column);
                self.aggregate(main, format!("CAST(AVG({c}) AS DOUBLE)"));
            }
            RuleKind::Sum { column, .. } => {
                let c = self.q(column);
                self.aggregate(main, format!("CAST(SUM({c}) AS DOUBLE)"));
            }
            RuleKind::StandardDeviation { column, .. } => {
                let c = self.q(column);
                self.aggregate(main, format!("CAST(STDDEV({c}) AS DOUBLE)"));
            }
            RuleKind::DataFreshness { column, .. } => {
                // Hours from the newest value to the query's now().
                let c = self.q(column);
                self.aggregate(
                    main,
                    format!(
                        "(CAST(to_unixtime(now()) AS DOUBLE) - CAST(to_unixtime(MAX({c})) AS DOUBLE)) / 3600.0"
                    ),
                );
            }
            RuleKind::ReferentialIntegrity {
                column, reference, ..
            } => {
                let Some((table, ref_column)) = reference.rsplit_once('.') else {
                    return;
                };
                let c = self.q(column);
                let rc = self.q(ref_column);
                let rt = table
                    .split('.')
                    .map(|part| self.q(part))
                    .collect::<Vec<_>>()
                    .join(".");
                self.separate(ScanKind::ReferentialIntegrity, main, |b| {
                    format!(
                        "SELECT {} AS m0\n\
                         FROM (SELECT {c} AS v FROM {} WHERE {c} IS NOT NULL) AS p\n\
                         LEFT JOIN (SELECT DISTINCT {rc} AS k FROM {rt} WHERE {rc} IS NOT NULL) AS r ON p.v = r.k",
                        Self::ratio("COUNT(r.k)", "COUNT(*)"),
                        b.table
                    )
                });
            }
            RuleKind::CustomSql { sql, .. } => {
                let body = custom_sql_body(sql, self.table);
                self.separate(ScanKind::CustomSql, main, |_| {
                    // The newlines keep a trailing `--` comment from eating the wrapper.
                    format!("SELECT CAST((\n{body}\n) AS DOUBLE) AS m0")
                });
            }
        }
    }
}

fn sql_literal(l: &Literal) -> String {
    match l {
        Literal::Number { value } => sql_number(*value),
        Literal::Text { value } => sql_string(value),
        Literal::Now { offset: None } => "now()".into(),
        Literal::Now {
            offset: Some((amount, unit)),
        } => {
            let sign = if *amount < 0 { '-' } else { '+' };
            let interval = sql_string(&format!("{} {}", amount.unsigned_abs(), unit.name()));
            format!("(now() {sign} INTERVAL {interval})")
        }
        // Keywords are handled by the predicate; as plain values they match nothing.
        Literal::Null | Literal::Empty | Literal::WhitespacesOnly => "NULL".into(),
    }
}

fn sql_op(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Ne => "<>",
        other => other.symbol(),
    }
}

/// The condition `x` is equal to a keyword literal.
fn keyword_test(x: &str, l: &Literal) -> String {
    match l {
        Literal::Null => format!("{x} IS NULL"),
        Literal::Empty => format!("CAST({x} AS VARCHAR) = ''"),
        Literal::WhitespacesOnly => format!("regexp_like(CAST({x} AS VARCHAR), {})", sql_string(r"^\s+$")),
        other => format!("{x} = {}", sql_literal(other)),
    }
}

/// A SQL condition, true exactly for the rows whose `x` satisfies `p`. A NULL
/// `x` makes it NULL (a failing row) unless the predicate names NULL.
pub fn predicate_sql(x: &str, p: &ValuePredicate) -> String {
    match p {
        ValuePredicate::Compare { op, value } if value.is_keyword() => match op {
            CmpOp::Eq => keyword_test(x, value),
            CmpOp::Ne if *value == Literal::Null => format!("{x} IS NOT NULL"),
            CmpOp::Ne => format!("NOT ({})", keyword_test(x, value)),
            _ => "FALSE".into(),
        },
        ValuePredicate::Compare { op, value } => format!("{x} {} {}", sql_op(*op), sql_literal(value)),
        ValuePredicate::Between { low, high, negated } => {
            // Exclusive at both ends, as in DQDL.
            let range = format!("({x} > {} AND {x} < {})", sql_literal(low), sql_literal(high));
            if *negated { format!("NOT {range}") } else { range }
        }
        ValuePredicate::In { values, negated } => {
            let plain: Vec<String> = values
                .iter()
                .filter(|v| !v.is_keyword())
                .map(sql_literal)
                .collect();
            let mut tests = Vec::new();
            if !plain.is_empty() {
                tests.push(format!("{x} IN ({})", plain.join(", ")));
            }
            let mut keywords: Vec<&Literal> = Vec::new();
            for v in values.iter().filter(|v| v.is_keyword()) {
                if !keywords.contains(&v) {
                    keywords.push(v);
                }
            }
            tests.extend(keywords.into_iter().map(|k| keyword_test(x, k)));
            let any = if tests.is_empty() {
                "FALSE".to_string()
            } else {
                format!("({})", tests.join(" OR "))
            };
            if *negated { format!("NOT {any}") } else { any }
        }
        ValuePredicate::Matches { pattern, negated } => {
            let test = format!("regexp_like({x}, {})", sql_string(pattern));
            if *negated { format!("NOT {test}") } else { test }
        }
    }
}

/// The user's statement with the identifier `primary` (outside strings,
/// quoted identifiers and comments, and not after a `.`) replaced by the
/// table, and trailing `;` removed.
fn custom_sql_body(sql: &str, table: &str) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len() + table.len());
    let mut i = 0;
    let mut prev_significant: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            '\'' | '"' => {
                i += 1;
                while i < chars.len() {
                    if chars[i] == c {
                        if chars.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i = (i + 2).min(chars.len());
            }
            c if c.is_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if word.eq_ignore_ascii_case("primary") && prev_significant != Some('.') {
                    out.push_str(table);
                } else {
                    out.push_str(&word);
                }
                prev_significant = Some('a');
                continue;
            }
            _ => i += 1,
        }
        out.extend(&chars[start..i]);
        if !c.is_whitespace() {
            prev_significant = Some(c);
        }
    }
    out.trim_end().trim_end_matches(';').trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::parse_ruleset;

    fn quote(s: &str) -> String {
        format!("\"{}\"", s.replace('"', "\"\""))
    }

    fn plan_of(text: &str) -> ScanPlan {
        let set = parse_ruleset(text).unwrap();
        plan(&set.rules, "\"orders\"", &quote)
    }

    pub(crate) const SAMPLE: &str = r#"Rules = [
    RowCount > 0.8 * avg(last(10)),
    ColumnCount = 9,
    IsComplete "order_id",
    IsPrimaryKey "order_id" blocking,
    Completeness "email" >= 0.95,
    Uniqueness "email" > 0.99,
    ColumnValues "status" in ["open", "shipped", "it's done"] with threshold > 0.98,
    ColumnValues "email" matches "^[^@]+@[^@]+$",
    Mean "amount" between 10 and 500,
    DataFreshness "updated_at" <= 24 hours
]"#;

    #[test]
    fn sample_ruleset_needs_one_scan() {
        let p = plan_of(SAMPLE);
        assert_eq!(p.scan_count(), 1);
        assert_eq!(p.external, ["columncount"]);
        let scan = &p.scans[0];
        assert_eq!(scan.kind, ScanKind::Aggregate);
        assert_eq!(
            scan.metrics,
            [
                "rowcount",
                "completeness:order_id",
                "primarykey:[\"order_id\"]",
                "completeness:email",
                "uniqueness:email",
                "values:[\"status\",\"in [\\\"open\\\", \\\"shipped\\\", \\\"it's done\\\"]\"]",
                "values:[\"email\",\"matches \\\"^[^@]+@[^@]+$\\\"\"]",
                "mean:amount",
                "freshness:updated_at",
            ]
        );
        let expected = r#"SELECT
  CAST(COUNT(*) AS DOUBLE) AS m0,
  CASE WHEN COUNT(*) = 0 THEN 1.0 ELSE CAST(COUNT("order_id") AS DOUBLE) / CAST(COUNT(*) AS DOUBLE) END AS m1,
  CAST(COUNT(*) - COUNT(DISTINCT "order_id") AS DOUBLE) AS m2,
  CASE WHEN COUNT(*) = 0 THEN 1.0 ELSE CAST(COUNT("email") AS DOUBLE) / CAST(COUNT(*) AS DOUBLE) END AS m3,
  CASE WHEN COUNT("email") = 0 THEN 1.0 ELSE CAST(COUNT(DISTINCT "email") AS DOUBLE) / CAST(COUNT("email") AS DOUBLE) END AS m4,
  CASE WHEN COUNT(*) = 0 THEN 1.0 ELSE CAST(SUM(CASE WHEN ("status" IN ('open', 'shipped', 'it''s done')) THEN 1 ELSE 0 END) AS DOUBLE) / CAST(COUNT(*) AS DOUBLE) END AS m5,
  CASE WHEN COUNT(*) = 0 THEN 1.0 ELSE CAST(SUM(CASE WHEN regexp_like("email", '^[^@]+@[^@]+$') THEN 1 ELSE 0 END) AS DOUBLE) / CAST(COUNT(*) AS DOUBLE) END AS m6,
  CAST(AVG("amount") AS DOUBLE) AS m7,
  (CAST(to_unixtime(now()) AS DOUBLE) - CAST(to_unixtime(MAX("updated_at")) AS DOUBLE)) / 3600.0 AS m8
FROM "orders""#;
        assert_eq!(scan.sql, expected);
    }

    #[test]
    fn aggregate_scan_splits_for_fallback() {
        let p = plan_of("RowCount > 0\nMean \"x\" > 1\nIsPrimaryKey \"a\" \"b\"");
        let parts = p.isolated();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0].sql,
            "SELECT CAST(COUNT(*) AS DOUBLE) AS m0 FROM \"orders\""
        );
        assert_eq!(
            parts[1].sql,
            "SELECT CAST(AVG(\"x\") AS DOUBLE) AS m0 FROM \"orders\""
        );
        assert_eq!(parts[1].metrics, ["mean:x"]);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<ScanPlan>(&json).unwrap(), p);
    }

    #[test]
    fn shared_metrics_are_computed_once() {
        let p = plan_of(
            "RowCount > 1\nRowCount < 100\nIsComplete \"a\"\nCompleteness \"a\" > 0.5\nIsUnique \"a\"\nUniqueness \"a\" > 0.1\nColumnCount > 1\nColumnCount < 99",
        );
        assert_eq!(p.scan_count(), 1);
        assert_eq!(p.scans[0].metrics, ["rowcount", "completeness:a", "uniqueness:a"]);
        assert_eq!(p.external, ["columncount"]);
        assert_eq!(
            p.metric_keys(),
            ["rowcount", "completeness:a", "uniqueness:a", "columncount"]
        );
    }

    #[test]
    fn column_count_alone_needs_no_scan() {
        let p = plan_of("ColumnCount = 3");
        assert_eq!(p.scan_count(), 0);
        assert_eq!(p.external, ["columncount"]);
        let empty = plan(&[], "t", &quote);
        assert_eq!(
            (empty.scan_count(), empty.external.len(), empty.table.as_str()),
            (0, 0, "t")
        );
    }

    #[test]
    fn separate_scans_only_where_unavoidable() {
        let p = plan_of(
            r#"RowCount > 0
IsPrimaryKey "a" "b"
IsPrimaryKey "a" "b" blocking
ReferentialIntegrity "customer_id" "sales.customers.id" = 1.0
ReferentialIntegrity "customer_id" "sales.customers.id" > 0.5
CustomSql "SELECT COUNT(*) FROM primary WHERE x < 0;" = 0"#,
        );
        assert_eq!(p.scan_count(), 4);
        let kinds: Vec<ScanKind> = p.scans.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                ScanKind::Aggregate,
                ScanKind::PrimaryKey,
                ScanKind::ReferentialIntegrity,
                ScanKind::CustomSql
            ]
        );
        assert_eq!(
            p.scans[1].sql,
            "SELECT CAST(COALESCE(SUM(CASE WHEN g.key_has_null = 1 THEN g.n ELSE g.n - 1 END), 0) AS DOUBLE) AS m0\n\
             FROM (SELECT COUNT(*) AS n, MAX(CASE WHEN \"a\" IS NULL OR \"b\" IS NULL THEN 1 ELSE 0 END) AS key_has_null\n\
             FROM \"orders\" GROUP BY \"a\", \"b\") AS g"
        );
        assert_eq!(
            p.scans[2].sql,
            "SELECT CASE WHEN COUNT(*) = 0 THEN 1.0 ELSE CAST(COUNT(r.k) AS DOUBLE) / CAST(COUNT(*) AS DOUBLE) END AS m0\n\
             FROM (SELECT \"customer_id\" AS v FROM \"orders\" WHERE \"customer_id\" IS NOT NULL) AS p\n\
             LEFT JOIN (SELECT DISTINCT \"id\" AS k FROM \"sales\".\"customers\" WHERE \"id\" IS NOT NULL) AS r ON p.v = r.k"
        );
        assert_eq!(
            p.scans[3].sql,
            "SELECT CAST((\nSELECT COUNT(*) FROM \"orders\" WHERE x < 0\n) AS DOUBLE) AS m0"
        );
        assert_eq!(
            p.scans[3].metrics,
            ["customsql:SELECT COUNT(*) FROM primary WHERE x < 0;"]
        );
    }

    #[test]
    fn custom_sql_replaces_only_the_table_name() {
        let t = "\"db\".\"t\"";
        assert_eq!(
            custom_sql_body(
                "select count(*) from PRIMARY p where p.primary = 'primary' -- primary\n",
                t
            ),
            "select count(*) from \"db\".\"t\" p where p.primary = 'primary' -- primary"
        );
        assert_eq!(
            custom_sql_body(
                "SELECT \"primary\" FROM primary /* primary */ WHERE primary_id = 1 ;; ",
                t
            ),
            "SELECT \"primary\" FROM \"db\".\"t\" /* primary */ WHERE primary_id = 1"
        );
        assert_eq!(
            custom_sql_body("SELECT 'it''s primary' FROM primary", "x"),
            "SELECT 'it''s primary' FROM x"
        );
        // Unterminated strings and comments are copied, never a panic.
        assert_eq!(custom_sql_body("SELECT 'abc", "x"), "SELECT 'abc");
        assert_eq!(custom_sql_body("SELECT 1 /* x", "x"), "SELECT 1 /* x");
    }

    #[test]
    fn user_text_is_escaped_or_quoted() {
        let p = plan_of(
            r#"ColumnValues "we\"ird" in ["a'); DROP TABLE x; --", "b"]
ColumnValues "c" matches "it's \d+"
ColumnValues "d" = "O'Brien"
ColumnLength "e'" between 1 and 4"#,
        );
        let sql = &p.scans[0].sql;
        assert!(
            sql.contains(r#""we""ird" IN ('a''); DROP TABLE x; --', 'b')"#),
            "{sql}"
        );
        assert!(sql.contains(r#"regexp_like("c", 'it''s \d+')"#), "{sql}");
        assert!(sql.contains(r#""d" = 'O''Brien'"#), "{sql}");
        assert!(
            sql.contains(r#"MIN(character_length(CAST("e'" AS VARCHAR)))"#),
            "{sql}"
        );
        // Every single quote in the statement is balanced.
        assert_eq!(sql.matches('\'').count() % 2, 0);
    }

    #[test]
    fn predicates_render_dqdl_semantics() {
        let c = "\"c\"";
        let pred = |t: &str| match crate::quality::parse_rule(&format!("ColumnValues \"c\" {t}"))
            .unwrap()
            .kind
        {
            RuleKind::ColumnValues { predicate, .. } => predicate_sql(c, &predicate),
            _ => unreachable!(),
        };
        assert_eq!(pred("> 0"), "\"c\" > 0");
        assert_eq!(pred("!= -2.5"), "\"c\" <> -2.5");
        assert_eq!(pred("between 1 and 10"), "(\"c\" > 1 AND \"c\" < 10)");
        assert_eq!(pred("not between 1 and 10"), "NOT (\"c\" > 1 AND \"c\" < 10)");
        assert_eq!(pred("= NULL"), "\"c\" IS NULL");
        assert_eq!(pred("!= NULL"), "\"c\" IS NOT NULL");
        assert_eq!(pred("= EMPTY"), "CAST(\"c\" AS VARCHAR) = ''");
        assert_eq!(
            pred("!= WHITESPACES_ONLY"),
            "NOT (regexp_like(CAST(\"c\" AS VARCHAR), '^\\s+$'))"
        );
        assert_eq!(
            pred("in [\"a\", NULL, NULL]"),
            "(\"c\" IN ('a') OR \"c\" IS NULL)"
        );
        assert_eq!(pred("not in [1, 2]"), "NOT (\"c\" IN (1, 2))");
        assert_eq!(pred("not matches \"x\""), "NOT regexp_like(\"c\", 'x')");
        assert_eq!(pred("> \"2024-01-31\""), "\"c\" > '2024-01-31'");
        assert_eq!(pred("> (now() - 3 days)"), "\"c\" > (now() - INTERVAL '3 days')");
        assert_eq!(pred("<= now()"), "\"c\" <= now()");
        assert_eq!(pred("> 10000000000000000"), "\"c\" > 1e16");
        assert_eq!(sql_number(f64::NAN), "CAST('NaN' AS DOUBLE)");
    }

    #[test]
    fn column_length_plans() {
        let p =
            plan_of("ColumnLength \"z\" between 4 and 9\nColumnLength \"z\" = 5\nColumnLength \"z\" != 4");
        assert_eq!(
            p.scans[0].metrics,
            ["minlength:z", "maxlength:z", "lengths:[\"z\",\"!= 4\"]"]
        );
        assert!(p.scans[0].sql.contains(
            "CASE WHEN COUNT(\"z\") = 0 THEN 1.0 ELSE CAST(SUM(CASE WHEN character_length(CAST(\"z\" AS VARCHAR)) <> 4 THEN 1 ELSE 0 END) AS DOUBLE) / CAST(COUNT(\"z\") AS DOUBLE) END AS m2"
        ));
    }

    #[test]
    fn every_rule_key_is_planned() {
        let set = parse_ruleset(&crate::quality::rules::tests::CANONICAL.join("\n")).unwrap();
        let p = plan(&set.rules, "t", &quote);
        let planned: HashSet<&str> = p.metric_keys().into_iter().collect();
        for rule in &set.rules {
            for k in rule.metric_keys() {
                assert!(planned.contains(k.as_str()), "{rule}: {k} not planned");
            }
        }
        // Each key is produced once.
        assert_eq!(planned.len(), p.metric_keys().len());
        let scan = &p.scans[0];
        let row: Vec<Option<f64>> = (0..scan.metrics.len()).map(|i| Some(i as f64)).collect();
        let bound = scan.bind(&row[..2]);
        assert_eq!(bound[1], (scan.metrics[1].clone(), Some(1.0)));
        assert_eq!(bound.last().unwrap().1, None);
    }
}
