//! Judges rule outcomes from scanned metric values and metric history.
//!
//! Invariant: [`evaluate`] returns exactly one [`Outcome`] per rule, in rule
//! order, without panicking on any input. An outcome is `Passed` or `Failed`
//! only when every metric it needs is present and its threshold is a finite
//! number; otherwise it is `Error` with a message naming the problem. The one
//! exception is documented: a dynamic rule whose history is empty passes with
//! "no history yet".
//!
//! Semantics: `between` is exclusive; `=`, `!=` and `in` allow a relative
//! error of 1e-12 (floating-point noise in averages); `<`, `<=`, `>`, `>=`
//! are exact. History is read most-recent first; `last(k)` uses up to `k`
//! values, fewer if fewer are recorded.
//!
//! One unit: one judgement per rule kind and the history thresholds they share, with its tests.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::quality::rules::{
    AggFn, BinOp, CmpOp, Comparison, Expr, LengthMeasure, Literal, Rule, RuleKind, ValuePredicate,
    length_measure, quote_dqdl,
};

/// How a rule came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Passed,
    Failed,
    Error,
}

/// A metric key and its value (`None`: the scan returned NULL or never ran).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    pub key: String,
    pub value: Option<f64>,
}

/// The verdict on one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The rule's canonical text.
    pub rule: String,
    pub blocking: bool,
    pub status: Status,
    /// The metric the verdict rests on; record it into history under `key`.
    pub metric: MetricValue,
    /// The threshold as applied, e.g. `> 1045.2 (avg of last 5)`.
    pub threshold: String,
    pub message: String,
}

/// Reads a metric's history: `(metric key, k)` → up to `k` values, most recent first.
pub type History<'a> = &'a dyn Fn(&str, usize) -> Vec<f64>;

/// Judges every rule. `metrics` maps metric keys (see [`crate::quality::ScanPlan`]) to
/// values, with `None` for a NULL result; the caller adds `columncount`.
pub fn evaluate(
    rules: &[Rule],
    metrics: &HashMap<String, Option<f64>>,
    history: History<'_>,
) -> Vec<Outcome> {
    rules.iter().map(|r| evaluate_rule(r, metrics, history)).collect()
}

/// True unless a blocking rule failed or could not be judged.
pub fn table_trusted(outcomes: &[Outcome]) -> bool {
    !outcomes.iter().any(|o| o.blocking && o.status != Status::Passed)
}

/// Formats a number for people: whole numbers plainly, others with up to six
/// decimals, very small ones in exponent form.
pub fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    if v.abs() < 1e-4 {
        return format!("{v:.3e}");
    }
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn approx_eq(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

fn compare(op: CmpOp, a: f64, b: f64) -> bool {
    match op {
        CmpOp::Eq => approx_eq(a, b),
        CmpOp::Ne => !approx_eq(a, b),
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
    }
}

/// A comparison with every operand resolved to a number.
struct Resolved {
    passes: bool,
    description: String,
}

enum Judged {
    Done(Resolved),
    /// A `last(k)` found no history at all.
    NoHistory(String),
    Invalid(String),
}

fn aggregate(func: AggFn, values: &[f64]) -> f64 {
    let n = values.len() as f64;
    match func {
        AggFn::Avg => values.iter().sum::<f64>() / n,
        AggFn::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        AggFn::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        AggFn::StdDev => {
            if values.len() < 2 {
                return 0.0;
            }
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
            var.sqrt()
        }
    }
}

/// Evaluates `expr` against `key`'s history. `Ok(None)`: some `last(k)` had
/// no history. Notes describe each history aggregate used.
fn resolve(
    expr: &Expr,
    key: &str,
    history: History<'_>,
    notes: &mut Vec<String>,
) -> Result<Option<f64>, String> {
    Ok(match expr {
        Expr::Number { value } => Some(*value),
        Expr::Duration { value, unit } => Some(value * unit.hours()),
        Expr::History { func, last } => {
            let values: Vec<f64> = history(key, *last)
                .into_iter()
                .filter(|v| v.is_finite())
                .take(*last)
                .collect();
            if values.is_empty() {
                return Ok(None);
            }
            let v = aggregate(*func, &values);
            let count = if values.len() < *last {
                format!("{} of {} requested", values.len(), last)
            } else {
                last.to_string()
            };
            notes.push(format!("{} of last {count} = {}", func.name(), format_number(v)));
            Some(v)
        }
        Expr::Neg { expr } => resolve(expr, key, history, notes)?.map(|v| -v),
        Expr::Binary { op, left, right } => {
            let l = resolve(left, key, history, notes)?;
            let r = resolve(right, key, history, notes)?;
            match (l, r) {
                (Some(l), Some(r)) => Some(match op {
                    BinOp::Add => l + r,
                    BinOp::Sub => l - r,
                    BinOp::Mul => l * r,
                    BinOp::Div => l / r,
                }),
                _ => None,
            }
        }
    })
}

/// Resolves and applies `check` to `value`. `unit` is appended to resolved
/// numbers in the description (" hours" for freshness).
fn judge(check: &Comparison, value: f64, key: &str, history: History<'_>, unit: &str) -> Judged {
    let mut notes = Vec::new();
    let mut resolved = Vec::new();
    for operand in check.operands() {
        match resolve(operand, key, history, &mut notes) {
            Ok(Some(v)) if v.is_finite() => resolved.push(v),
            Ok(Some(v)) => {
                return Judged::Invalid(format!(
                    "threshold `{operand}` evaluates to {v}, not a finite number"
                ));
            }
            Ok(None) => return Judged::NoHistory(format!("{check} (no history yet)")),
            Err(e) => return Judged::Invalid(e),
        }
    }
    let n = |v: f64| format!("{}{unit}", format_number(v));
    let (passes, text) = match (check, resolved.as_slice()) {
        (Comparison::Compare { op, .. }, [b]) => (compare(*op, value, *b), format!("{op} {}", n(*b))),
        (Comparison::Between { negated, .. }, [lo, hi]) => {
            let inside = value > *lo && value < *hi;
            let not = if *negated { "not " } else { "" };
            (
                inside != *negated,
                format!("{not}between {} and {}", n(*lo), n(*hi)),
            )
        }
        (Comparison::In { negated, .. }, values) => {
            let found = values.iter().any(|b| approx_eq(value, *b));
            let list: Vec<String> = values.iter().map(|v| n(*v)).collect();
            let not = if *negated { "not " } else { "" };
            (found != *negated, format!("{not}in [{}]", list.join(", ")))
        }
        _ => return Judged::Invalid(format!("malformed comparison `{check}`")),
    };
    let description = if notes.is_empty() {
        text
    } else if check.operands().iter().all(|o| matches!(o, Expr::History { .. })) {
        // Bare aggregates: the value is already shown, name only the window.
        let windows: Vec<String> = notes
            .iter()
            .map(|s| s.split(" = ").next().unwrap_or(s).to_string())
            .collect();
        format!("{text} ({})", windows.join(", "))
    } else {
        format!("{text} (from {check}; {})", notes.join(", "))
    };
    Judged::Done(Resolved { passes, description })
}

/// What the rule's own metric measures, for messages.
fn label(rule: &Rule) -> String {
    let q = |s: &str| quote_dqdl(s);
    match &rule.kind {
        RuleKind::RowCount { .. } => "row count".into(),
        RuleKind::ColumnCount { .. } => "column count".into(),
        RuleKind::IsComplete { column } | RuleKind::Completeness { column, .. } => {
            format!("completeness of {}", q(column))
        }
        RuleKind::IsUnique { column } | RuleKind::Uniqueness { column, .. } => {
            format!("uniqueness of {}", q(column))
        }
        RuleKind::IsPrimaryKey { columns } => {
            let cols: Vec<String> = columns.iter().map(|c| q(c)).collect();
            format!("rows with a NULL or repeated key ({})", cols.join(", "))
        }
        RuleKind::ColumnValues {
            column, predicate, ..
        } => {
            format!("fraction of rows where {} {predicate}", q(column))
        }
        RuleKind::ColumnLength {
            column, predicate, ..
        } => {
            format!(
                "fraction of non-NULL {} values whose length is {predicate}",
                q(column)
            )
        }
        RuleKind::DistinctValuesCount { column, .. } => format!("distinct values of {}", q(column)),
        RuleKind::Mean { column, .. } => format!("mean of {}", q(column)),
        RuleKind::Sum { column, .. } => format!("sum of {}", q(column)),
        RuleKind::StandardDeviation { column, .. } => format!("standard deviation of {}", q(column)),
        RuleKind::DataFreshness { column, .. } => format!("hours since the newest {}", q(column)),
        RuleKind::ReferentialIntegrity {
            column, reference, ..
        } => {
            format!("fraction of {} values found in {}", q(column), q(reference))
        }
        RuleKind::CustomSql { .. } => "custom SQL result".into(),
    }
}

struct Ctx<'a> {
    rule: &'a Rule,
    metrics: &'a HashMap<String, Option<f64>>,
    history: History<'a>,
}

impl Ctx<'_> {
    fn outcome(
        &self,
        status: Status,
        key: &str,
        value: Option<f64>,
        threshold: String,
        message: String,
    ) -> Outcome {
        Outcome {
            rule: self.rule.to_string(),
            blocking: self.rule.blocking,
            status,
            metric: MetricValue {
                key: key.to_string(),
                value,
            },
            threshold,
            message,
        }
    }

    fn error(&self, key: &str, value: Option<f64>, message: String) -> Outcome {
        let threshold = self.rule.check().map(|c| c.to_string()).unwrap_or_default();
        self.outcome(Status::Error, key, value, threshold, message)
    }

    /// Looks up a metric: `Err` for a key no scan produced.
    fn metric(&self, key: &str) -> Result<Option<f64>, Outcome> {
        match self.metrics.get(key) {
            Some(v) => Ok(*v),
            None => Err(self.error(
                key,
                None,
                format!("metric `{key}` was not computed (its scan failed or was not run)"),
            )),
        }
    }

    /// Judges `value` against `check`, describing failures with `label`.
    fn judged(
        &self,
        key: &str,
        value: f64,
        check: &Comparison,
        unit: &str,
        implicit: Option<&str>,
    ) -> Outcome {
        let what = label(self.rule);
        let shown = format!("{}{unit}", format_number(value));
        match judge(check, value, key, self.history, unit) {
            Judged::Done(r) => {
                let threshold = match implicit {
                    Some(note) => format!("{} ({note})", r.description),
                    None => r.description,
                };
                if r.passes {
                    let message = format!("{what} is {shown}, which satisfies {threshold}");
                    self.outcome(Status::Passed, key, Some(value), threshold, message)
                } else {
                    let message = format!("{what} is {shown}; expected {threshold}");
                    self.outcome(Status::Failed, key, Some(value), threshold, message)
                }
            }
            Judged::NoHistory(threshold) => {
                let message = format!("no history yet for `{key}`, so the rule passes; {what} is {shown}");
                self.outcome(Status::Passed, key, Some(value), threshold, message)
            }
            Judged::Invalid(message) => self.error(key, Some(value), message),
        }
    }
}

/// Judges one rule.
pub fn evaluate_rule(rule: &Rule, metrics: &HashMap<String, Option<f64>>, history: History<'_>) -> Outcome {
    let ctx = Ctx {
        rule,
        metrics,
        history,
    };
    let keys = rule.metric_keys();
    let key = keys.first().cloned().unwrap_or_default();

    if let RuleKind::ColumnLength {
        predicate, threshold, ..
    } = &rule.kind
        && length_measure(predicate, threshold.as_ref()) == LengthMeasure::MinMax
    {
        return column_length_min_max(&ctx, &keys, predicate);
    }
    if let RuleKind::IsPrimaryKey { columns } = &rule.kind
        && columns.is_empty()
    {
        return ctx.error(&key, None, "IsPrimaryKey needs at least one column".into());
    }

    let value = match ctx.metric(&key) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    let Some(value) = value else {
        return match &rule.kind {
            RuleKind::DataFreshness { column, .. } => ctx.outcome(
                Status::Failed,
                &key,
                None,
                rule.check().map(|c| c.to_string()).unwrap_or_default(),
                format!(
                    "{} has no non-NULL values, so the data is not fresh",
                    quote_dqdl(column)
                ),
            ),
            _ => ctx.error(
                &key,
                None,
                format!("{} is NULL (no non-NULL values to measure)", label(rule)),
            ),
        };
    };

    match &rule.kind {
        RuleKind::IsComplete { .. } => {
            all_or_nothing(&ctx, &key, value, value >= 1.0, "= 1 (no NULL values)")
        }
        RuleKind::IsUnique { .. } => {
            all_or_nothing(&ctx, &key, value, value >= 1.0, "= 1 (no repeated values)")
        }
        RuleKind::IsPrimaryKey { .. } => all_or_nothing(
            &ctx,
            &key,
            value,
            value == 0.0,
            "= 0 (every key present and distinct)",
        ),
        RuleKind::ColumnValues { threshold: None, .. } | RuleKind::ColumnLength { threshold: None, .. } => {
            all_or_nothing(&ctx, &key, value, value >= 1.0, "= 1 (every row)")
        }
        RuleKind::DataFreshness { check, .. } => ctx.judged(&key, value, check, " hours", None),
        _ => match rule.check() {
            Some(check) => ctx.judged(&key, value, check, "", None),
            None => ctx.error(&key, Some(value), "rule has no threshold".into()),
        },
    }
}

/// Rules that hold exactly or not at all (IsComplete, IsUnique, IsPrimaryKey,
/// ColumnValues without a threshold): compared exactly, never with tolerance.
fn all_or_nothing(ctx: &Ctx<'_>, key: &str, value: f64, passes: bool, threshold: &str) -> Outcome {
    let what = label(ctx.rule);
    let shown = format_number(value);
    // Show the near-1 fractions that format_number would round to 1.
    let shown = if !passes && shown == "1" {
        format!("{value}")
    } else {
        shown
    };
    if passes {
        ctx.outcome(
            Status::Passed,
            key,
            Some(value),
            threshold.into(),
            format!("{what} is {shown}"),
        )
    } else {
        ctx.outcome(
            Status::Failed,
            key,
            Some(value),
            threshold.into(),
            format!("{what} is {shown}; expected {threshold}"),
        )
    }
}

/// ColumnLength without a threshold: every non-NULL length must satisfy the
/// predicate, decided from the shortest and longest length.
fn column_length_min_max(ctx: &Ctx<'_>, keys: &[String], predicate: &ValuePredicate) -> Outcome {
    let (Some(min_key), Some(max_key)) = (keys.first(), keys.get(1)) else {
        return ctx.error("", None, "ColumnLength is missing its metrics".into());
    };
    let (min, max) = match (ctx.metric(min_key), ctx.metric(max_key)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(o), _) | (_, Err(o)) => return o,
    };
    let threshold = format!("{predicate} for every non-NULL value");
    let (Some(min), Some(max)) = (min, max) else {
        return ctx.outcome(
            Status::Passed,
            min_key,
            None,
            threshold,
            "no non-NULL values, so no length to check".into(),
        );
    };
    let num = |l: &Literal| match l {
        Literal::Number { value } => Some(*value),
        _ => None,
    };
    // (passes, the decisive metric's key and value)
    let verdict = match predicate {
        ValuePredicate::Compare { op, value } => num(value).map(|n| match op {
            CmpOp::Gt | CmpOp::Ge => (compare(*op, min, n), min_key, min),
            CmpOp::Lt | CmpOp::Le => (compare(*op, max, n), max_key, max),
            _ => {
                if !approx_eq(min, n) {
                    (false, min_key, min)
                } else {
                    (approx_eq(max, n), max_key, max)
                }
            }
        }),
        ValuePredicate::Between {
            low,
            high,
            negated: false,
        } => match (num(low), num(high)) {
            (Some(lo), Some(hi)) => Some(if min <= lo {
                (false, min_key, min)
            } else {
                (max < hi, max_key, max)
            }),
            _ => None,
        },
        _ => None,
    };
    let Some((passes, key, value)) = verdict else {
        return ctx.error(
            min_key,
            Some(min),
            format!("ColumnLength cannot check `{predicate}`"),
        );
    };
    let range = format!(
        "lengths of non-NULL {} range from {} to {}",
        match &ctx.rule.kind {
            RuleKind::ColumnLength { column, .. } => quote_dqdl(column),
            _ => String::new(),
        },
        format_number(min),
        format_number(max)
    );
    if passes {
        ctx.outcome(Status::Passed, key, Some(value), threshold, range)
    } else {
        ctx.outcome(
            Status::Failed,
            key,
            Some(value),
            threshold.clone(),
            format!("{range}; expected {threshold}"),
        )
    }
}

/// A row-count or completeness anomaly check against recent history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyCheck {
    pub anomalous: bool,
    pub value: f64,
    /// The accepted range: `[min, max]` of the window, widened by 10% of
    /// each bound's magnitude. `None` without history.
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// How many history values the range is built from.
    pub window: usize,
    pub message: String,
}

/// Flags `value` when it lies outside `[min, max]` of the last `k` values of
/// `history` (most recent first), widened by 10%: `min - 0.1·|min|` to
/// `max + 0.1·|max|`. No history: never anomalous.
pub fn check_anomaly(history: &[f64], value: f64, k: usize) -> AnomalyCheck {
    let window: Vec<f64> = history
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .take(k)
        .collect();
    if window.is_empty() {
        return AnomalyCheck {
            anomalous: false,
            value,
            low: None,
            high: None,
            window: 0,
            message: "no history yet".into(),
        };
    }
    let min = aggregate(AggFn::Min, &window);
    let max = aggregate(AggFn::Max, &window);
    let low = min - 0.1 * min.abs();
    let high = max + 0.1 * max.abs();
    let anomalous = !(value >= low && value <= high);
    let message = format!(
        "{} is {} the expected range [{}, {}] (last {} values, widened by 10%)",
        format_number(value),
        if anomalous { "outside" } else { "within" },
        format_number(low),
        format_number(high),
        window.len()
    );
    AnomalyCheck {
        anomalous,
        value,
        low: Some(low),
        high: Some(high),
        window: window.len(),
        message,
    }
}

/// Runs [`check_anomaly`] on `rowcount` and every `completeness:*` metric
/// present (non-NULL) in `metrics`, in key order.
pub fn detect_anomalies(
    metrics: &HashMap<String, Option<f64>>,
    history: History<'_>,
    k: usize,
) -> Vec<(String, AnomalyCheck)> {
    let mut keys: Vec<&String> = metrics
        .keys()
        .filter(|key| {
            key.as_str() == crate::quality::rules::key::ROW_COUNT || key.starts_with("completeness:")
        })
        .collect();
    keys.sort();
    keys.into_iter()
        .filter_map(|key| {
            let value = metrics.get(key).copied().flatten()?;
            Some((key.clone(), check_anomaly(&history(key, k), value, k)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::parse_rule;

    fn no_history(_: &str, _: usize) -> Vec<f64> {
        Vec::new()
    }

    fn metrics(pairs: &[(&str, Option<f64>)]) -> HashMap<String, Option<f64>> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn eval(rule: &str, pairs: &[(&str, Option<f64>)]) -> Outcome {
        evaluate_rule(&parse_rule(rule).unwrap(), &metrics(pairs), &no_history)
    }

    fn eval_h(rule: &str, value: f64, hist: &[f64]) -> Outcome {
        let rule = parse_rule(rule).unwrap();
        let key = rule.metric_key();
        let hist = hist.to_vec();
        let history = move |k: &str, n: usize| -> Vec<f64> {
            assert_eq!(k, key);
            hist.iter().copied().take(n).collect()
        };
        let key = rule.metric_key();
        evaluate_rule(&rule, &metrics(&[(key.as_str(), Some(value))]), &history)
    }

    #[test]
    fn static_comparisons() {
        let o = eval("RowCount > 100", &[("rowcount", Some(120.0))]);
        assert_eq!(o.status, Status::Passed);
        assert_eq!(
            o.metric,
            MetricValue {
                key: "rowcount".into(),
                value: Some(120.0)
            }
        );
        assert_eq!(o.threshold, "> 100");
        assert_eq!(o.message, "row count is 120, which satisfies > 100");
        assert_eq!(o.rule, "RowCount > 100");
        let o = eval("RowCount > 100", &[("rowcount", Some(100.0))]);
        assert_eq!(o.status, Status::Failed);
        assert_eq!(o.message, "row count is 100; expected > 100");
        assert_eq!(
            eval("RowCount >= 100", &[("rowcount", Some(100.0))]).status,
            Status::Passed
        );
        assert_eq!(
            eval("RowCount != 100", &[("rowcount", Some(100.0))]).status,
            Status::Failed
        );
        assert_eq!(
            eval("RowCount in [1, 100]", &[("rowcount", Some(100.0))]).status,
            Status::Passed
        );
        assert_eq!(
            eval("RowCount not in [1, 100]", &[("rowcount", Some(100.0))]).status,
            Status::Failed
        );
        // between is exclusive.
        assert_eq!(
            eval("RowCount between 10 and 100", &[("rowcount", Some(100.0))]).status,
            Status::Failed
        );
        assert_eq!(
            eval("RowCount between 10 and 100", &[("rowcount", Some(99.0))]).status,
            Status::Passed
        );
        assert_eq!(
            eval("RowCount not between 10 and 100", &[("rowcount", Some(10.0))]).status,
            Status::Passed
        );
        // = tolerates float noise.
        assert_eq!(
            eval("Mean \"x\" = 0.3", &[("mean:x", Some(0.1 + 0.2))]).status,
            Status::Passed
        );
        assert_eq!(
            eval("ColumnCount = 9", &[("columncount", Some(9.0))]).status,
            Status::Passed
        );
        let o = eval("Completeness \"e\" >= 0.95", &[("completeness:e", Some(0.9))]);
        assert_eq!(
            (o.status, o.message.as_str()),
            (Status::Failed, "completeness of \"e\" is 0.9; expected >= 0.95")
        );
    }

    #[test]
    fn implicit_rules_are_exact() {
        assert_eq!(
            eval("IsComplete \"a\"", &[("completeness:a", Some(1.0))]).status,
            Status::Passed
        );
        let o = eval("IsComplete \"a\"", &[("completeness:a", Some(0.999_999_999_9))]);
        assert_eq!(o.status, Status::Failed);
        assert!(o.message.contains("0.9999999999"), "{}", o.message);
        assert_eq!(
            eval("IsUnique \"a\"", &[("uniqueness:a", Some(0.5))]).status,
            Status::Failed
        );
        assert_eq!(
            eval("IsPrimaryKey \"a\"", &[("primarykey:[\"a\"]", Some(0.0))]).status,
            Status::Passed
        );
        let o = eval(
            "IsPrimaryKey \"a\" \"b\" blocking",
            &[("primarykey:[\"a\",\"b\"]", Some(3.0))],
        );
        assert_eq!(o.status, Status::Failed);
        assert!(o.blocking);
        assert_eq!(
            o.message,
            "rows with a NULL or repeated key (\"a\", \"b\") is 3; expected = 0 (every key present and distinct)"
        );
        let cv = "values:[\"s\",\"in [\\\"a\\\"]\"]";
        assert_eq!(
            eval("ColumnValues \"s\" in [\"a\"]", &[(cv, Some(1.0))]).status,
            Status::Passed
        );
        assert_eq!(
            eval("ColumnValues \"s\" in [\"a\"]", &[(cv, Some(0.97))]).status,
            Status::Failed
        );
        let o = eval(
            "ColumnValues \"s\" in [\"a\"] with threshold > 0.9",
            &[(cv, Some(0.97))],
        );
        assert_eq!((o.status, o.threshold.as_str()), (Status::Passed, "> 0.9"));
    }

    #[test]
    fn column_length_by_min_and_max() {
        let m = |min: Option<f64>, max: Option<f64>| [("minlength:z", min), ("maxlength:z", max)];
        let o = eval("ColumnLength \"z\" = 5", &m(Some(5.0), Some(5.0)));
        assert_eq!(o.status, Status::Passed);
        let o = eval("ColumnLength \"z\" = 5", &m(Some(4.0), Some(5.0)));
        assert_eq!((o.status, o.metric.key.as_str()), (Status::Failed, "minlength:z"));
        assert_eq!(
            o.message,
            "lengths of non-NULL \"z\" range from 4 to 5; expected = 5 for every non-NULL value"
        );
        let o = eval("ColumnLength \"z\" < 10", &m(Some(1.0), Some(10.0)));
        assert_eq!((o.status, o.metric.key.as_str()), (Status::Failed, "maxlength:z"));
        assert_eq!(
            eval("ColumnLength \"z\" >= 1", &m(Some(1.0), Some(10.0))).status,
            Status::Passed
        );
        assert_eq!(
            eval("ColumnLength \"z\" between 0 and 11", &m(Some(1.0), Some(10.0))).status,
            Status::Passed
        );
        assert_eq!(
            eval("ColumnLength \"z\" between 1 and 11", &m(Some(1.0), Some(10.0))).status,
            Status::Failed
        );
        assert_eq!(
            eval("ColumnLength \"z\" between 0 and 10", &m(Some(1.0), Some(10.0))).status,
            Status::Failed
        );
        assert_eq!(
            eval("ColumnLength \"z\" = 5", &m(None, None)).status,
            Status::Passed
        );
        let o = eval(
            "ColumnLength \"z\" != 4",
            &[("lengths:[\"z\",\"!= 4\"]", Some(0.5))],
        );
        assert_eq!(o.status, Status::Failed);
    }

    #[test]
    fn missing_and_null_metrics() {
        let o = eval("RowCount > 1", &[]);
        assert_eq!(o.status, Status::Error);
        assert!(o.message.contains("`rowcount` was not computed"));
        assert_eq!(o.threshold, "> 1");
        let o = eval("Mean \"x\" > 1", &[("mean:x", None)]);
        assert_eq!(o.status, Status::Error);
        assert_eq!(o.message, "mean of \"x\" is NULL (no non-NULL values to measure)");
        let o = eval("DataFreshness \"t\" <= 24 hours", &[("freshness:t", None)]);
        assert_eq!(o.status, Status::Failed);
        let o = eval("RowCount > 1 / 0", &[("rowcount", Some(5.0))]);
        assert_eq!(o.status, Status::Error);
        assert!(o.message.contains("not a finite number"), "{}", o.message);
    }

    #[test]
    fn freshness_in_hours() {
        let o = eval("DataFreshness \"t\" <= 2 days", &[("freshness:t", Some(30.5))]);
        assert_eq!(o.status, Status::Passed);
        assert_eq!(o.threshold, "<= 48 hours");
        assert_eq!(
            o.message,
            "hours since the newest \"t\" is 30.5 hours, which satisfies <= 48 hours"
        );
        let o = eval("DataFreshness \"t\" < 90 minutes", &[("freshness:t", Some(2.0))]);
        assert_eq!((o.status, o.threshold.as_str()), (Status::Failed, "< 1.5 hours"));
    }

    #[test]
    fn dynamic_thresholds() {
        let o = eval_h(
            "RowCount > avg(last(5))",
            1100.0,
            &[1000.0, 1100.0, 1026.0, 1000.0, 1100.0, 1.0],
        );
        assert_eq!(o.status, Status::Passed);
        assert_eq!(o.threshold, "> 1045.2 (avg of last 5)");
        let o = eval_h("RowCount > 0.8 * avg(last(10))", 800.0, &[1000.0, 1100.0]);
        assert_eq!(o.status, Status::Failed);
        assert_eq!(
            o.threshold,
            "> 840 (from > 0.8 * avg(last(10)); avg of last 2 of 10 requested = 1050)"
        );
        let o = eval_h("Completeness \"c\" >= min(last(3))", 0.95, &[0.97, 0.95, 0.99]);
        assert_eq!(
            (o.status, o.threshold.as_str()),
            (Status::Passed, ">= 0.95 (min of last 3)")
        );
        let o = eval_h(
            "RowCount between min(last(3)) - 1 and max(last(3)) + 1",
            100.0,
            &[100.0, 120.0, 110.0],
        );
        assert_eq!(o.status, Status::Passed);
        assert_eq!(
            o.threshold,
            "between 99 and 121 (from between min(last(3)) - 1 and max(last(3)) + 1; min of last 3 = 100, max of last 3 = 120)"
        );
        let o = eval_h(
            "RowCount < avg(last(3)) + 2 * stddev(last(3))",
            10.0,
            &[2.0, 4.0, 6.0],
        );
        assert_eq!(o.status, Status::Failed);
        assert_eq!(
            o.threshold,
            "< 8 (from < avg(last(3)) + 2 * stddev(last(3)); avg of last 3 = 4, stddev of last 3 = 2)"
        );
        let o = eval_h("RowCount < stddev(last(3))", 0.0, &[7.0]);
        assert_eq!(
            (o.status, o.threshold.as_str()),
            (Status::Failed, "< 0 (stddev of last 1 of 3 requested)")
        );
    }

    #[test]
    fn no_history_passes() {
        let o = eval_h("RowCount > 0.8 * avg(last(10))", 5.0, &[]);
        assert_eq!(o.status, Status::Passed);
        assert!(o.message.contains("no history yet"), "{}", o.message);
        assert_eq!(o.threshold, "> 0.8 * avg(last(10)) (no history yet)");
        assert_eq!(o.metric.value, Some(5.0));
        // History of non-finite values counts as none.
        let o = eval_h("RowCount > avg(last(2))", 5.0, &[f64::NAN]);
        assert!(o.message.contains("no history yet"));
        // A freshness rule uses history in hours.
        let o = eval_h("DataFreshness \"t\" < avg(last(2)) + 1 hours", 4.5, &[3.0, 5.0]);
        assert_eq!(
            (o.status, o.threshold.as_str()),
            (
                Status::Passed,
                "< 5 hours (from < avg(last(2)) + 1 hours; avg of last 2 = 4)"
            )
        );
    }

    #[test]
    fn evaluate_all_and_trust() {
        let rules: Vec<Rule> = [
            "RowCount > 0 blocking",
            "IsComplete \"a\"",
            "Mean \"x\" > 0 blocking",
        ]
        .iter()
        .map(|t| parse_rule(t).unwrap())
        .collect();
        let m = metrics(&[
            ("rowcount", Some(5.0)),
            ("completeness:a", Some(0.5)),
            ("mean:x", Some(1.0)),
        ]);
        let outcomes = evaluate(&rules, &m, &no_history);
        assert_eq!(outcomes.len(), 3);
        assert_eq!(outcomes[1].status, Status::Failed);
        assert!(table_trusted(&outcomes), "only a non-blocking rule failed");
        let m = metrics(&[("rowcount", Some(5.0)), ("completeness:a", Some(1.0))]);
        let outcomes = evaluate(&rules, &m, &no_history);
        assert_eq!(outcomes[2].status, Status::Error);
        assert!(!table_trusted(&outcomes), "a blocking rule could not be judged");
        let json = serde_json::to_string(&outcomes).unwrap();
        let back: Vec<Outcome> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, outcomes);
    }

    #[test]
    fn anomalies() {
        let a = check_anomaly(&[1000.0, 1200.0, 1100.0, 5.0], 1300.0, 3);
        assert!(!a.anomalous);
        assert_eq!((a.low, a.high, a.window), (Some(900.0), Some(1320.0), 3));
        assert_eq!(
            a.message,
            "1300 is within the expected range [900, 1320] (last 3 values, widened by 10%)"
        );
        assert!(check_anomaly(&[1000.0, 1200.0], 1321.0, 5).anomalous);
        assert!(check_anomaly(&[1000.0, 1200.0], 899.0, 5).anomalous);
        assert!(check_anomaly(&[1.0, 1.0], 0.85, 5).anomalous);
        assert!(!check_anomaly(&[1.0, 1.0], 0.95, 5).anomalous);
        assert!(check_anomaly(&[0.0], 1.0, 5).anomalous);
        assert!(check_anomaly(&[1.0], f64::NAN, 5).anomalous);
        let none = check_anomaly(&[], 7.0, 5);
        assert!(!none.anomalous);
        assert_eq!(none.message, "no history yet");

        let m = metrics(&[
            ("rowcount", Some(10.0)),
            ("completeness:a", Some(0.5)),
            ("completeness:b", None),
            ("mean:x", Some(1.0)),
        ]);
        let history = |k: &str, _: usize| {
            if k == "rowcount" {
                vec![100.0, 110.0]
            } else {
                vec![0.5]
            }
        };
        let found = detect_anomalies(&m, &history, 5);
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["completeness:a", "rowcount"]);
        assert!(!found[0].1.anomalous);
        assert!(found[1].1.anomalous);
    }

    #[test]
    fn number_formatting() {
        assert_eq!(format_number(1045.2), "1045.2");
        assert_eq!(format_number(1200.0), "1200");
        assert_eq!(format_number(0.95), "0.95");
        assert_eq!(format_number(1.0 / 3.0), "0.333333");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(0.00001), "1.000e-5");
        assert_eq!(format_number(f64::INFINITY), "inf");
    }
}
