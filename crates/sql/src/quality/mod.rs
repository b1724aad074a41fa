//! Data quality: a DQDL-like rule language (after AWS Glue Data Quality's Data Quality
//! Definition Language), planned into as few SQL scans as possible and judged against fixed
//! thresholds or the table's own history.
//!
//! Invariant: the pipeline is text → [`parse_ruleset`] → [`Rule`]s →
//! [`plan`] → SQL scans → metric values → [`evaluate`] → [`Outcome`]s, and the
//! stages agree on one thing only: metric keys, which [`Rule::metric_keys`]
//! defines. Parsing never panics; a rule's `Display` is canonical DQDL that
//! parses back to the same rule.
//!

pub mod dqdl;
pub mod evaluate;
pub mod plan;
pub mod rules;
mod run;

pub use self::dqdl::{
    DqdlError, ErrorKind, MAX_DEPTH, MAX_HISTORY, MAX_INPUT_BYTES, MAX_RULES, parse_rule, parse_ruleset,
};
pub use self::evaluate::{
    AnomalyCheck, History, MetricValue, Outcome, Status, check_anomaly, detect_anomalies, evaluate,
    evaluate_rule, format_number, table_trusted,
};
pub use self::plan::{Scan, ScanKind, ScanPlan, plan, predicate_sql, sql_number, sql_string};
pub use self::rules::{
    AggFn, BinOp, CmpOp, Comparison, Expr, LengthMeasure, Literal, RULE_TYPES, Rule, RuleKind, Ruleset,
    TimeUnit, ValuePredicate, key, length_measure, quote_dqdl,
};
pub use self::run::{ANOMALY_WINDOW, QualityReport};
