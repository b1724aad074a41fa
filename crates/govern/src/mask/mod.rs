//! Sensitive-data (PII) detection and masking.
//!
//! One engine serves two callers:
//!
//! - **Audit masking** ([`detector()`]): a cheap, fixed set of formatted types (emails, phones,
//!   cards, SSNs, IBANs, IPs, AWS keys, private keys, `key=value` passwords — [`EntityKind::AUDIT`])
//!   that runs on every audit record, so it is only regular expressions (tens of µs per record).
//! - **Guardrails** ([`Detector::all`], [`Detector::with_kinds`]): the 31 PII types of Amazon
//!   Bedrock Guardrails (serde names are Bedrock's), plus `PRIVATE_KEY`, `DATE_TIME` and
//!   user-supplied regexes ([`CustomPattern`]).
//!
//! How a type is found depends on what it looks like:
//!
//! - formatted types are a regular expression plus, where the format has one, a validator
//!   (checksums, reserved ranges) — see `rules`;
//! - numbers with no format of their own (bank account, passport, PIN, CVV, age…) require a
//!   keyword cue before them, so a free number is never flagged — also in `rules`;
//! - NAME and ADDRESS have no format at all; they come from word-level heuristics over tokens
//!   (honorifics, cue phrases, a hand-written gazetteer of given names, street words, house
//!   numbers, address blocks, countries) — see `names` and `address`, built on `text`.
//!
//! Overlaps are resolved by priority, not by position: every rule and heuristic proposes
//! candidates with a priority (custom patterns first, then formatted rules in their listed
//! order — the more specific first —, then the heuristics from strongest evidence to weakest);
//! candidates are accepted best-first and one that overlaps an accepted finding is dropped —
//! except ADDRESS candidates, which merge with overlapping addresses or are trimmed around other
//! findings, because an address is assembled from pieces (a street line, a postcode, a country).
//! Findings come back sorted by start and never overlap.
//!
//! Masking replaces each finding by a placeholder such as `[EMAIL]` (custom patterns: `[name]`),
//! so an audit record still says *what kind* of data a request carried without carrying it.
//!
//! [`eval`] scores a detector against a labelled data set (token-level, presidio-research style).

mod address;
pub mod eval;
mod names;
mod rules;
mod text;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// A kind of sensitive data. Serialised with Amazon Bedrock Guardrails' PII type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityKind {
    Address,
    Age,
    AwsAccessKey,
    AwsSecretKey,
    CaHealthNumber,
    CaSocialInsuranceNumber,
    CreditDebitCardCvv,
    CreditDebitCardExpiry,
    CreditDebitCardNumber,
    DriverId,
    Email,
    InternationalBankAccountNumber,
    IpAddress,
    LicensePlate,
    MacAddress,
    Name,
    Password,
    Phone,
    Pin,
    SwiftCode,
    UkNationalHealthServiceNumber,
    UkNationalInsuranceNumber,
    UkUniqueTaxpayerReferenceNumber,
    Url,
    Username,
    UsBankAccountNumber,
    UsBankRoutingNumber,
    UsIndividualTaxIdentificationNumber,
    UsPassportNumber,
    UsSocialSecurityNumber,
    VehicleIdentificationNumber,
    /// A PEM private key block (not a Bedrock type).
    PrivateKey,
    /// A calendar date or timestamp (not a Bedrock type).
    DateTime,
    /// A match of a user-supplied [`CustomPattern`]; [`Finding::custom`] names the pattern.
    /// Not part of [`EntityKind::ALL`].
    Custom,
}

impl EntityKind {
    /// The 31 PII types of Amazon Bedrock Guardrails.
    pub const BEDROCK: [EntityKind; 31] = [
        EntityKind::Address,
        EntityKind::Age,
        EntityKind::AwsAccessKey,
        EntityKind::AwsSecretKey,
        EntityKind::CaHealthNumber,
        EntityKind::CaSocialInsuranceNumber,
        EntityKind::CreditDebitCardCvv,
        EntityKind::CreditDebitCardExpiry,
        EntityKind::CreditDebitCardNumber,
        EntityKind::DriverId,
        EntityKind::Email,
        EntityKind::InternationalBankAccountNumber,
        EntityKind::IpAddress,
        EntityKind::LicensePlate,
        EntityKind::MacAddress,
        EntityKind::Name,
        EntityKind::Password,
        EntityKind::Phone,
        EntityKind::Pin,
        EntityKind::SwiftCode,
        EntityKind::UkNationalHealthServiceNumber,
        EntityKind::UkNationalInsuranceNumber,
        EntityKind::UkUniqueTaxpayerReferenceNumber,
        EntityKind::Url,
        EntityKind::Username,
        EntityKind::UsBankAccountNumber,
        EntityKind::UsBankRoutingNumber,
        EntityKind::UsIndividualTaxIdentificationNumber,
        EntityKind::UsPassportNumber,
        EntityKind::UsSocialSecurityNumber,
        EntityKind::VehicleIdentificationNumber,
    ];

    /// Every built-in kind: the Bedrock types plus `PRIVATE_KEY` and `DATE_TIME`.
    pub const ALL: [EntityKind; 33] = {
        let mut all = [EntityKind::PrivateKey; 33];
        let mut i = 0;
        while i < 31 {
            all[i] = EntityKind::BEDROCK[i];
            i += 1;
        }
        all[32] = EntityKind::DateTime;
        all
    };

    /// The kinds masked in audit records (formatted types only, so masking stays cheap).
    pub const AUDIT: [EntityKind; 10] = [
        EntityKind::PrivateKey,
        EntityKind::AwsAccessKey,
        EntityKind::AwsSecretKey,
        EntityKind::Password,
        EntityKind::Email,
        EntityKind::CreditDebitCardNumber,
        EntityKind::InternationalBankAccountNumber,
        EntityKind::UsSocialSecurityNumber,
        EntityKind::IpAddress,
        EntityKind::Phone,
    ];

    /// The serde (Bedrock) name.
    pub fn as_str(self) -> &'static str {
        use EntityKind as K;
        match self {
            K::Address => "ADDRESS",
            K::Age => "AGE",
            K::AwsAccessKey => "AWS_ACCESS_KEY",
            K::AwsSecretKey => "AWS_SECRET_KEY",
            K::CaHealthNumber => "CA_HEALTH_NUMBER",
            K::CaSocialInsuranceNumber => "CA_SOCIAL_INSURANCE_NUMBER",
            K::CreditDebitCardCvv => "CREDIT_DEBIT_CARD_CVV",
            K::CreditDebitCardExpiry => "CREDIT_DEBIT_CARD_EXPIRY",
            K::CreditDebitCardNumber => "CREDIT_DEBIT_CARD_NUMBER",
            K::DriverId => "DRIVER_ID",
            K::Email => "EMAIL",
            K::InternationalBankAccountNumber => "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
            K::IpAddress => "IP_ADDRESS",
            K::LicensePlate => "LICENSE_PLATE",
            K::MacAddress => "MAC_ADDRESS",
            K::Name => "NAME",
            K::Password => "PASSWORD",
            K::Phone => "PHONE",
            K::Pin => "PIN",
            K::SwiftCode => "SWIFT_CODE",
            K::UkNationalHealthServiceNumber => "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
            K::UkNationalInsuranceNumber => "UK_NATIONAL_INSURANCE_NUMBER",
            K::UkUniqueTaxpayerReferenceNumber => "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
            K::Url => "URL",
            K::Username => "USERNAME",
            K::UsBankAccountNumber => "US_BANK_ACCOUNT_NUMBER",
            K::UsBankRoutingNumber => "US_BANK_ROUTING_NUMBER",
            K::UsIndividualTaxIdentificationNumber => "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
            K::UsPassportNumber => "US_PASSPORT_NUMBER",
            K::UsSocialSecurityNumber => "US_SOCIAL_SECURITY_NUMBER",
            K::VehicleIdentificationNumber => "VEHICLE_IDENTIFICATION_NUMBER",
            K::PrivateKey => "PRIVATE_KEY",
            K::DateTime => "DATE_TIME",
            K::Custom => "CUSTOM",
        }
    }

    /// The text that replaces a finding of this kind: `[EMAIL]`.
    pub fn placeholder(self) -> String {
        format!("[{}]", self.as_str())
    }
}

/// One detected span, as byte offsets into the scanned text.
///
/// `custom` is `Some(pattern name)` exactly when `kind` is [`EntityKind::Custom`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: EntityKind,
    pub start: usize,
    pub end: usize,
    pub custom: Option<Arc<str>>,
}

impl Finding {
    /// The type name: the Bedrock name, or the custom pattern's name.
    pub fn label(&self) -> &str {
        self.custom.as_deref().unwrap_or(self.kind.as_str())
    }

    /// The text that replaces this finding: `[EMAIL]`, or `[name]` for a custom pattern.
    pub fn placeholder(&self) -> String {
        format!("[{}]", self.label())
    }
}

/// A user-supplied regular expression; each match is a finding named `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomPattern {
    pub name: String,
    pub pattern: String,
}

/// Why a detector could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("custom pattern {name:?}: invalid regular expression: {source}")]
    InvalidPattern {
        name: String,
        #[source]
        source: regex::Error,
    },
    #[error("custom pattern {name:?} is {len} bytes long; at most {max} are allowed")]
    PatternTooLong { name: String, len: usize, max: usize },
    #[error("custom pattern name {name:?} must be 1–64 characters of letters, digits, '_' or '-'")]
    InvalidName { name: String },
    #[error("{count} custom patterns given; at most {max} are allowed")]
    TooManyPatterns { count: usize, max: usize },
}

/// Longest custom pattern source accepted, in bytes.
pub const MAX_CUSTOM_PATTERN_LEN: usize = 1024;
/// Most custom patterns one detector accepts.
pub const MAX_CUSTOM_PATTERNS: usize = 64;
/// Compiled-size cap for one custom pattern (bytes of the regex program and its DFA cache).
const CUSTOM_SIZE_LIMIT: usize = 1 << 20;

struct Rule {
    kind: EntityKind,
    regex: Regex,
    group: usize,
    validate: Option<rules::Validator>,
    needs: rules::Needs,
    custom: Option<Arc<str>>,
}

/// Priorities of heuristic candidates (rules use their index, custom patterns come first).
const PRIORITY_RULES: u32 = 100;
pub(crate) const PRIORITY_NAME_STRONG: u32 = 1000;
pub(crate) const PRIORITY_ADDRESS_RUN: u32 = 1010;
pub(crate) const PRIORITY_NAME_FULL: u32 = 1020;
pub(crate) const PRIORITY_LOCATION: u32 = 1030;
pub(crate) const PRIORITY_PLACE: u32 = 1040;
pub(crate) const PRIORITY_NAME_SINGLE: u32 = 1050;

/// A proposed finding before overlaps are resolved.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub kind: EntityKind,
    pub start: usize,
    pub end: usize,
    pub priority: u32,
    pub custom: Option<Arc<str>>,
}

impl Candidate {
    pub fn new(kind: EntityKind, start: usize, end: usize, priority: u32) -> Candidate {
        Candidate {
            kind,
            start,
            end,
            priority,
            custom: None,
        }
    }
}

/// The built-in audit detector ([`EntityKind::AUDIT`]); compiled once per process.
pub fn detector() -> &'static Detector {
    static DETECTOR: OnceLock<Detector> = OnceLock::new();
    DETECTOR.get_or_init(Detector::builtin)
}

/// An ordered set of detection rules and heuristics.
pub struct Detector {
    rules: Vec<Rule>,
    names: bool,
    addresses: bool,
}

impl Detector {
    /// The audit detector's rules ([`EntityKind::AUDIT`]).
    pub fn builtin() -> Detector {
        Detector::with_kinds(&EntityKind::AUDIT, &[]).expect("built-in patterns compile")
    }

    /// Every built-in kind ([`EntityKind::ALL`]).
    pub fn all() -> Detector {
        Detector::with_kinds(&EntityKind::ALL, &[]).expect("built-in patterns compile")
    }

    /// A detector for `kinds` (order does not matter; [`EntityKind::Custom`] is ignored) plus
    /// the `custom` patterns, which take precedence over built-in kinds where they overlap.
    pub fn with_kinds(kinds: &[EntityKind], custom: &[CustomPattern]) -> Result<Detector, MaskError> {
        if custom.len() > MAX_CUSTOM_PATTERNS {
            return Err(MaskError::TooManyPatterns {
                count: custom.len(),
                max: MAX_CUSTOM_PATTERNS,
            });
        }
        let mut rules = Vec::new();
        for c in custom {
            let name_ok = (1..=64).contains(&c.name.chars().count())
                && c.name
                    .chars()
                    .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-');
            if !name_ok {
                return Err(MaskError::InvalidName { name: c.name.clone() });
            }
            if c.pattern.len() > MAX_CUSTOM_PATTERN_LEN {
                return Err(MaskError::PatternTooLong {
                    name: c.name.clone(),
                    len: c.pattern.len(),
                    max: MAX_CUSTOM_PATTERN_LEN,
                });
            }
            let regex = RegexBuilder::new(&c.pattern)
                .size_limit(CUSTOM_SIZE_LIMIT)
                .dfa_size_limit(CUSTOM_SIZE_LIMIT)
                .build()
                .map_err(|source| MaskError::InvalidPattern {
                    name: c.name.clone(),
                    source,
                })?;
            rules.push(Rule {
                kind: EntityKind::Custom,
                regex,
                group: 0,
                validate: None,
                needs: rules::Needs::Nothing,
                custom: Some(Arc::from(c.name.as_str())),
            });
        }
        for spec in rules::specs() {
            if kinds.contains(&spec.kind) {
                rules.push(Rule {
                    kind: spec.kind,
                    regex: Regex::new(&spec.pattern).expect("built-in patterns compile"),
                    group: spec.group,
                    validate: spec.validate,
                    needs: spec.needs,
                    custom: None,
                });
            }
        }
        Ok(Detector {
            rules,
            names: kinds.contains(&EntityKind::Name),
            addresses: kinds.contains(&EntityKind::Address),
        })
    }

    /// Every finding, non-overlapping, sorted by start.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let mut candidates: Vec<Candidate> = Vec::new();
        let has_digit = text.bytes().any(|b| b.is_ascii_digit());
        let mut lower: Option<String> = None;
        for (index, rule) in self.rules.iter().enumerate() {
            match rule.needs {
                rules::Needs::Nothing => {}
                rules::Needs::Digit if !has_digit => continue,
                rules::Needs::Digit => {}
                rules::Needs::Keyword(words) => {
                    let lower = lower.get_or_insert_with(|| text.to_lowercase());
                    if !words.iter().any(|w| lower.contains(w)) {
                        continue;
                    }
                }
            }
            let priority = if rule.custom.is_some() {
                index as u32
            } else {
                PRIORITY_RULES + index as u32
            };
            for captures in rule.regex.captures_iter(text) {
                let Some(m) = captures.get(rule.group) else {
                    continue;
                };
                if m.start() == m.end() {
                    continue;
                }
                if let Some(validate) = rule.validate
                    && !validate(text, m.start(), m.end())
                {
                    continue;
                }
                candidates.push(Candidate {
                    kind: rule.kind,
                    start: m.start(),
                    end: m.end(),
                    priority,
                    custom: rule.custom.clone(),
                });
            }
        }
        if self.names || self.addresses {
            let covered: Vec<(usize, usize)> = candidates
                .iter()
                .filter(|c| c.kind != EntityKind::Address)
                .map(|c| (c.start, c.end))
                .collect();
            let ctx = text::Ctx::new(text, &covered);
            let mut names = Vec::new();
            names::find(&ctx, &mut names);
            if self.addresses {
                address::find(&ctx, &names, &mut candidates);
            }
            if self.names {
                candidates.extend(names);
            }
        }
        resolve(text, candidates)
    }

    /// `text` with every finding replaced by its placeholder.
    pub fn mask(&self, text: &str) -> String {
        let findings = self.find(text);
        if findings.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for finding in findings {
            out.push_str(&text[at..finding.start]);
            out.push_str(&finding.placeholder());
            at = finding.end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// Masks every string (and object key's value) inside a JSON value, in place.
    pub fn mask_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                let masked = self.mask(s);
                if masked != *s {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_json(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.mask_json(v)),
            _ => {}
        }
    }
}

fn overlaps(a: &Candidate, start: usize, end: usize) -> bool {
    a.start < end && start < a.end
}

/// Best-first acceptance; addresses merge with addresses and are trimmed around the rest.
fn resolve(text: &str, mut candidates: Vec<Candidate>) -> Vec<Finding> {
    candidates.sort_by_key(|c| (c.priority, std::cmp::Reverse(c.end - c.start), c.start));
    let mut accepted: Vec<Candidate> = Vec::with_capacity(candidates.len());
    for c in candidates {
        let hits: Vec<usize> = (0..accepted.len())
            .filter(|&i| overlaps(&accepted[i], c.start, c.end))
            .collect();
        if hits.is_empty() {
            accepted.push(c);
            continue;
        }
        if c.kind != EntityKind::Address || c.priority < PRIORITY_NAME_STRONG {
            continue;
        }
        if hits.iter().all(|&i| accepted[i].kind == EntityKind::Address) {
            let mut merged = c;
            for &i in hits.iter().rev() {
                let a = accepted.swap_remove(i);
                merged.start = merged.start.min(a.start);
                merged.end = merged.end.max(a.end);
                merged.priority = merged.priority.min(a.priority);
            }
            accepted.push(merged);
        } else if let Some((start, end)) = longest_free_part(text, &accepted, &c) {
            accepted.push(Candidate { start, end, ..c });
        }
    }
    accepted.sort_by_key(|c| c.start);
    accepted
        .into_iter()
        .map(|c| Finding {
            kind: c.kind,
            start: c.start,
            end: c.end,
            custom: c.custom,
        })
        .collect()
}

/// The longest stretch of `c` that no accepted finding covers, trimmed to word characters.
fn longest_free_part(text: &str, accepted: &[Candidate], c: &Candidate) -> Option<(usize, usize)> {
    let mut cuts: Vec<(usize, usize)> = accepted
        .iter()
        .filter(|a| overlaps(a, c.start, c.end))
        .map(|a| (a.start, a.end))
        .collect();
    cuts.sort();
    let mut parts = Vec::new();
    let mut at = c.start;
    for (s, e) in cuts {
        if s > at {
            parts.push((at, s));
        }
        at = at.max(e);
    }
    if at < c.end {
        parts.push((at, c.end));
    }
    parts
        .into_iter()
        .filter_map(|(s, e)| {
            let part = &text[s..e];
            let lead = part.len() - part.trim_start_matches(text::is_separator).len();
            let trimmed = part.trim_matches(text::is_separator);
            (!trimmed.is_empty()).then(|| (s + lead, s + lead + trimmed.len()))
        })
        .max_by_key(|(s, e)| e - s)
}

#[cfg(test)]
mod tests;
