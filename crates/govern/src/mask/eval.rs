//! Token-level evaluation of a detector against labelled text, in the style of
//! presidio-research's evaluator.
//!
//! Span boundaries are a matter of convention (is `Mr.` part of the name? the trailing `.` of an
//! address?), so scoring compares labels per token instead: the text is split into tokens on
//! white space and punctuation, each token gets the gold type of the span it overlaps (or `O`),
//! and the type of the finding it overlaps, mapped to the data set's vocabulary
//! ([`dataset_label`]). A token is a true positive when both labels agree, a false positive for
//! the predicted type when they do not and something was predicted, a false negative for the
//! gold type when they do not and the gold label is not `O`.
//!
//! One deliberate equivalence: Bedrock has a single ADDRESS type for street addresses and places,
//! so a predicted ADDRESS token is correct on gold `ADDRESS` or gold `LOCATION`.
//!
//! The overall figure is micro-averaged over every gold type, including those no rule targets
//! (`ORGANIZATION`, `TITLE`): they count as false negatives. Predictions of kinds the data set
//! does not label (AGE, PIN, …) keep their Bedrock name and count as false positives. Two extra,
//! clearly secondary figures are kept: over the gold types the detector claims, and the
//! type-agnostic "any PII" score (was the token flagged at all).
//!
//! F2 = 5PR / (4P + R) weighs recall twice as much as precision: a missed PII leak costs more
//! than an over-masked word.

use super::text::token_spans;
use super::{Detector, EntityKind};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One labelled text (presidio-research's generated format; positions are in characters).
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub full_text: String,
    #[serde(default)]
    pub spans: Vec<Span>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Span {
    pub entity_type: String,
    #[serde(default)]
    pub entity_value: String,
    pub start_position: usize,
    pub end_position: usize,
}

/// The data set's name for a detected kind (presidio's entity names).
pub fn dataset_label(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Name => "PERSON",
        EntityKind::Address => "ADDRESS",
        EntityKind::Phone => "PHONE_NUMBER",
        EntityKind::CreditDebitCardNumber => "CREDIT_CARD",
        EntityKind::Email => "EMAIL_ADDRESS",
        EntityKind::Url => "DOMAIN_NAME",
        EntityKind::UsSocialSecurityNumber => "US_SSN",
        EntityKind::IpAddress => "IP_ADDRESS",
        EntityKind::DriverId => "US_DRIVER_LICENSE",
        EntityKind::DateTime => "DATE_TIME",
        EntityKind::InternationalBankAccountNumber => "IBAN_CODE",
        EntityKind::UsBankAccountNumber => "US_BANK_NUMBER",
        EntityKind::UsPassportNumber => "US_PASSPORT",
        EntityKind::UsIndividualTaxIdentificationNumber => "US_ITIN",
        other => other.as_str(),
    }
}

/// Whether a predicted label is correct for a gold label.
pub fn label_matches(gold: &str, predicted: &str) -> bool {
    gold == predicted || (predicted == "ADDRESS" && gold == "LOCATION")
}

/// Token counts for one type (or overall).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tokens predicted as this type and correct.
    pub tp: usize,
    /// Tokens predicted as this type and wrong.
    pub fp: usize,
    /// Gold tokens of this type not predicted correctly.
    pub fn_: usize,
    /// Gold tokens of this type.
    pub support: usize,
}

impl Counts {
    pub fn precision(&self) -> Option<f64> {
        let predicted = self.tp + self.fp;
        (predicted > 0).then(|| self.tp as f64 / predicted as f64)
    }

    pub fn recall(&self) -> Option<f64> {
        let gold = self.tp + self.fn_;
        (gold > 0).then(|| self.tp as f64 / gold as f64)
    }

    /// F-beta with beta = 2: 5PR / (4P + R).
    pub fn f2(&self) -> Option<f64> {
        let (p, r) = (self.precision()?, self.recall()?);
        Some(if p + r == 0.0 {
            0.0
        } else {
            5.0 * p * r / (4.0 * p + r)
        })
    }
}

/// Per-type and overall scores.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Keyed by the data set's type names (predicted-only kinds under their Bedrock names).
    /// For a type, `tp` counts tokens of that *gold* type found (recall side) and, separately in
    /// `predicted_tp`, tokens *predicted* as that type that were right (precision side); they
    /// differ only for ADDRESS/LOCATION.
    pub per_type: BTreeMap<String, TypeScore>,
    /// Micro average over every gold type.
    pub overall: Counts,
    /// Micro average over the gold types in `claimed` (gold tokens of other types count as `O`).
    pub claimed_types: Counts,
    /// Type-agnostic: a token is positive if it carries any gold label / any prediction.
    pub any_pii: Counts,
    /// Gold types the evaluated detector can predict.
    pub claimed: Vec<String>,
    pub records: usize,
    pub tokens: usize,
    /// Gold spans whose `entity_value` did not match the text at their positions.
    pub span_mismatches: usize,
}

/// Per-type counts: precision from the predicted side, recall from the gold side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeScore {
    pub predicted: usize,
    pub predicted_correct: usize,
    pub gold: usize,
    pub gold_found: usize,
}

impl TypeScore {
    pub fn precision(&self) -> Option<f64> {
        (self.predicted > 0).then(|| self.predicted_correct as f64 / self.predicted as f64)
    }

    pub fn recall(&self) -> Option<f64> {
        (self.gold > 0).then(|| self.gold_found as f64 / self.gold as f64)
    }

    pub fn f2(&self) -> Option<f64> {
        let (p, r) = (self.precision()?, self.recall()?);
        Some(if p + r == 0.0 {
            0.0
        } else {
            5.0 * p * r / (4.0 * p + r)
        })
    }
}

impl Report {
    /// Adds one token's gold and predicted labels.
    pub fn add_token(&mut self, gold: Option<&str>, predicted: Option<&str>) {
        self.tokens += 1;
        let correct = matches!((gold, predicted), (Some(g), Some(p)) if label_matches(g, p));
        if let Some(p) = predicted {
            let e = self.per_type.entry(p.to_owned()).or_default();
            e.predicted += 1;
            e.predicted_correct += usize::from(correct);
        }
        if let Some(g) = gold {
            let e = self.per_type.entry(g.to_owned()).or_default();
            e.gold += 1;
            e.gold_found += usize::from(correct);
        }
        tally(&mut self.overall, gold, predicted, correct);
        let claimed_gold = gold.filter(|g| self.claimed.iter().any(|c| c == g));
        let claimed_correct = correct && claimed_gold.is_some();
        tally(&mut self.claimed_types, claimed_gold, predicted, claimed_correct);
        let any_correct = gold.is_some() && predicted.is_some();
        tally(&mut self.any_pii, gold, predicted, any_correct);
    }
}

fn tally(c: &mut Counts, gold: Option<&str>, predicted: Option<&str>, correct: bool) {
    if gold.is_some() {
        c.support += 1;
    }
    if correct {
        c.tp += 1;
    } else {
        if predicted.is_some() {
            c.fp += 1;
        }
        if gold.is_some() {
            c.fn_ += 1;
        }
    }
}

/// Byte offset of character index `char_index` in `text` (clamped to the end).
fn byte_offset(text: &str, char_index: usize) -> usize {
    text.char_indices().nth(char_index).map_or(text.len(), |(b, _)| b)
}

/// The gold types `detector` can predict, in the data set's vocabulary.
pub fn claimed_labels(kinds: &[EntityKind]) -> Vec<String> {
    let mut labels: Vec<String> = kinds.iter().map(|&k| dataset_label(k).to_owned()).collect();
    if kinds.contains(&EntityKind::Address) {
        labels.push("LOCATION".to_owned());
    }
    labels.sort();
    labels.dedup();
    labels
}

/// Scores `detector` (which detects `kinds`) on `records`.
pub fn evaluate(records: &[Record], detector: &Detector, kinds: &[EntityKind]) -> Report {
    let mut report = Report {
        claimed: claimed_labels(kinds),
        ..Report::default()
    };
    for record in records {
        report.records += 1;
        let text = record.full_text.as_str();
        let gold: Vec<(usize, usize, &str)> = record
            .spans
            .iter()
            .map(|s| {
                let (start, end) = (
                    byte_offset(text, s.start_position),
                    byte_offset(text, s.end_position),
                );
                if !s.entity_value.is_empty() && text.get(start..end) != Some(s.entity_value.as_str()) {
                    report.span_mismatches += 1;
                }
                (start, end, s.entity_type.as_str())
            })
            .collect();
        let findings = detector.find(text);
        for (ts, te) in token_spans(text) {
            let g = gold
                .iter()
                .find(|&&(s, e, _)| s < te && ts < e)
                .map(|&(_, _, label)| label);
            let p = findings
                .iter()
                .find(|f| f.start < te && ts < f.end)
                .map(|f| f.custom.as_deref().unwrap_or(dataset_label(f.kind)));
            report.add_token(g, p);
        }
    }
    report
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "    -".to_owned(), |v| format!("{v:5.3}"))
}

/// A plain-text table of `report`.
pub fn format_report(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "type", "precision", "recall", "F2", "support", "predicted"
    );
    for (label, s) in &report.per_type {
        let _ = writeln!(
            out,
            "{:<26} {:>9} {:>9} {:>9} {:>9} {:>9}",
            label,
            pct(s.precision()),
            pct(s.recall()),
            pct(s.f2()),
            s.gold,
            s.predicted
        );
    }
    let mut line = |name: &str, c: &Counts| {
        let _ = writeln!(
            out,
            "{:<26} {:>9} {:>9} {:>9} {:>9} {:>9}",
            name,
            pct(c.precision()),
            pct(c.recall()),
            pct(c.f2()),
            c.support,
            c.tp + c.fp
        );
    };
    line("OVERALL (micro, all gold)", &report.overall);
    line("claimed types only", &report.claimed_types);
    line("any PII (type-agnostic)", &report.any_pii);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_arithmetic_on_a_hand_made_example() {
        let mut r = Report {
            claimed: vec!["PERSON".into(), "ADDRESS".into(), "LOCATION".into()],
            ..Report::default()
        };
        // gold / predicted per token
        let tokens = [
            (Some("PERSON"), Some("PERSON")),    // tp
            (Some("PERSON"), None),              // fn
            (None, Some("PERSON")),              // fp
            (Some("LOCATION"), Some("ADDRESS")), // tp (equivalence)
            (Some("ADDRESS"), Some("PERSON")),   // fp for PERSON, fn for ADDRESS
            (Some("ORGANIZATION"), None),        // fn (unclaimed type)
            (None, None),
        ];
        for (g, p) in tokens {
            r.add_token(g, p);
        }
        assert_eq!(
            r.overall,
            Counts {
                tp: 2,
                fp: 2,
                fn_: 3,
                support: 5
            }
        );
        let p = 2.0 / 4.0;
        let rec = 2.0 / 5.0;
        assert!((r.overall.precision().unwrap() - p).abs() < 1e-12);
        assert!((r.overall.recall().unwrap() - rec).abs() < 1e-12);
        let f2 = 5.0 * p * rec / (4.0 * p + rec);
        assert!((r.overall.f2().unwrap() - f2).abs() < 1e-12);
        assert!((f2 - 0.416_666_666_666_666_7).abs() < 1e-12);
        // Claimed types: the ORGANIZATION token no longer counts against recall.
        assert_eq!(
            r.claimed_types,
            Counts {
                tp: 2,
                fp: 2,
                fn_: 2,
                support: 4
            }
        );
        // Any PII: tokens 1, 4, 5 flagged and gold.
        assert_eq!(
            r.any_pii,
            Counts {
                tp: 3,
                fp: 1,
                fn_: 2,
                support: 5
            }
        );
        let person = r.per_type["PERSON"];
        assert_eq!(
            person,
            TypeScore {
                predicted: 3,
                predicted_correct: 1,
                gold: 2,
                gold_found: 1
            }
        );
        let address = r.per_type["ADDRESS"];
        assert_eq!(
            address,
            TypeScore {
                predicted: 1,
                predicted_correct: 1,
                gold: 1,
                gold_found: 0
            }
        );
        assert_eq!(r.per_type["LOCATION"].recall(), Some(1.0));
    }

    #[test]
    fn evaluates_records_with_character_offsets() {
        let text = "Zoë lives at 12 Rue Lepic, Paris. Call +33 1 42 68 53 00";
        let phone_at = text.chars().position(|c| c == '+').unwrap();
        let records = vec![Record {
            full_text: text.to_owned(),
            spans: vec![
                Span {
                    entity_type: "PERSON".into(),
                    entity_value: "Zoë".into(),
                    start_position: 0,
                    end_position: 3,
                },
                Span {
                    entity_type: "PHONE_NUMBER".into(),
                    entity_value: "+33 1 42 68 53 00".into(),
                    start_position: phone_at,
                    end_position: phone_at + 17,
                },
            ],
        }];
        let kinds = [EntityKind::Phone];
        let d = Detector::with_kinds(&kinds, &[]).unwrap();
        let r = evaluate(&records, &d, &kinds);
        assert_eq!(r.span_mismatches, 0);
        assert_eq!(r.per_type["PHONE_NUMBER"].recall(), Some(1.0));
        assert_eq!(r.per_type["PERSON"].recall(), Some(0.0));
        assert_eq!(r.claimed, ["PHONE_NUMBER"]);
        assert!(format_report(&r).contains("OVERALL"));
    }
}
