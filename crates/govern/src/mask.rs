//! Sensitive-data detection and masking.
//!
//! A [`Detector`] is an ordered list of rules: a regular expression that finds candidates and,
//! where the format has one, a validator that rejects look-alikes (Luhn for card numbers,
//! ISO 7064 mod 97 for IBANs, the SSA's reserved ranges for SSNs, the address parser for IPv6).
//! Masking replaces each finding by a typed placeholder such as `[EMAIL]`, so an audit record
//! still says *what kind* of data a request carried without carrying it.
//!
//! Overlaps resolve by position first and rule order second: the earliest finding wins, and
//! where two start together, the rule listed first (the more specific one — an AWS secret key
//! before a generic `secret=` value, a card number before a phone number).
//!
//! The guardrails will grow this to dozens of types; a type is one [`EntityKind`] variant and
//! one rule.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// A kind of sensitive data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityKind {
    PrivateKey,
    AwsAccessKey,
    AwsSecretKey,
    Password,
    Email,
    CreditCard,
    Iban,
    UsSsn,
    IpAddress,
    Phone,
}

impl EntityKind {
    pub const ALL: [EntityKind; 10] = [
        EntityKind::PrivateKey,
        EntityKind::AwsAccessKey,
        EntityKind::AwsSecretKey,
        EntityKind::Password,
        EntityKind::Email,
        EntityKind::CreditCard,
        EntityKind::Iban,
        EntityKind::UsSsn,
        EntityKind::IpAddress,
        EntityKind::Phone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::PrivateKey => "PRIVATE_KEY",
            EntityKind::AwsAccessKey => "AWS_ACCESS_KEY",
            EntityKind::AwsSecretKey => "AWS_SECRET_KEY",
            EntityKind::Password => "PASSWORD",
            EntityKind::Email => "EMAIL",
            EntityKind::CreditCard => "CREDIT_CARD",
            EntityKind::Iban => "IBAN",
            EntityKind::UsSsn => "US_SSN",
            EntityKind::IpAddress => "IP_ADDRESS",
            EntityKind::Phone => "PHONE",
        }
    }

    /// The text that replaces a finding of this kind.
    pub fn placeholder(self) -> String {
        format!("[{}]", self.as_str())
    }
}

/// One detected span, as byte offsets into the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub kind: EntityKind,
    pub start: usize,
    pub end: usize,
}

/// Checks a candidate `text[start..end]` (with the whole text for context).
type Validator = fn(text: &str, start: usize, end: usize) -> bool;

struct Rule {
    kind: EntityKind,
    regex: Regex,
    /// The capture group holding the sensitive value (0: the whole match).
    group: usize,
    validate: Option<Validator>,
}

/// The built-in detector; compiled once per process.
pub fn detector() -> &'static Detector {
    static DETECTOR: OnceLock<Detector> = OnceLock::new();
    DETECTOR.get_or_init(Detector::builtin)
}

/// An ordered set of detection rules.
pub struct Detector {
    rules: Vec<Rule>,
}

impl Detector {
    /// The built-in rules for the types in [`EntityKind`].
    pub fn builtin() -> Detector {
        let rule = |kind, pattern: &str, group, validate| Rule {
            kind,
            regex: Regex::new(pattern).expect("built-in patterns compile"),
            group,
            validate,
        };
        let rules = vec![
            // A whole PEM block, or its head when the text was cut before the END line.
            rule(
                EntityKind::PrivateKey,
                r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[A-Za-z0-9+/=\s]*)",
                0,
                None,
            ),
            rule(
                EntityKind::AwsAccessKey,
                r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA|AIPA|ANPA|ANVA|AGPA)[A-Z0-9]{16}\b",
                0,
                None,
            ),
            // Named in context (`aws_secret_access_key = …`, `SecretAccessKey: …`).
            rule(
                EntityKind::AwsSecretKey,
                r#"(?i)secret_?access_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})"#,
                1,
                None,
            ),
            // Or standing alone: 40 base64 characters of mixed case with a `/` or `+`.
            rule(
                EntityKind::AwsSecretKey,
                r"[A-Za-z0-9/+]{40}",
                0,
                Some(standalone_aws_secret),
            ),
            rule(
                EntityKind::Password,
                r#"(?i)[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|passphrase)[A-Za-z0-9_.-]*["']?\s*[:=]\s*("[^"\n]*"|'[^'\n]*'|[^\s,;&"'<>]+)"#,
                1,
                None,
            ),
            rule(
                EntityKind::Email,
                r"[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
                0,
                None,
            ),
            rule(
                EntityKind::CreditCard,
                r"\b\d(?:[ -]?\d){12,18}\b",
                0,
                Some(luhn_card),
            ),
            rule(
                EntityKind::Iban,
                r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
                0,
                Some(iban_checksum),
            ),
            rule(
                EntityKind::UsSsn,
                r"\b\d{3}[- ]\d{2}[- ]\d{4}\b",
                0,
                Some(valid_ssn),
            ),
            rule(
                EntityKind::UsSsn,
                r"(?i)\bssn\b\D{0,12}?\b(\d{9})\b",
                1,
                Some(valid_ssn),
            ),
            rule(
                EntityKind::IpAddress,
                r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
                0,
                Some(ipv4),
            ),
            rule(
                EntityKind::IpAddress,
                r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:]*",
                0,
                Some(ipv6),
            ),
            rule(
                EntityKind::Phone,
                r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?|\d{2,4}[\s.-])\d{2,4}[\s.-]?\d{3,4}\b",
                0,
                Some(phone),
            ),
        ];
        Detector { rules }
    }

    /// Every finding, non-overlapping, in text order.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let mut candidates: Vec<(Finding, usize)> = Vec::new();
        for (priority, rule) in self.rules.iter().enumerate() {
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
                candidates.push((
                    Finding {
                        kind: rule.kind,
                        start: m.start(),
                        end: m.end(),
                    },
                    priority,
                ));
            }
        }
        candidates.sort_by_key(|(f, priority)| (f.start, *priority, usize::MAX - f.end));
        let mut findings: Vec<Finding> = Vec::with_capacity(candidates.len());
        for (finding, _) in candidates {
            if findings.last().is_none_or(|last| finding.start >= last.end) {
                findings.push(finding);
            }
        }
        findings
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
            out.push_str(&finding.kind.placeholder());
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

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// Whether `text[start..end]` is not glued to letters or digits on either side.
fn standalone(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(|c| c.is_alphanumeric()) && !after.is_some_and(|c| c.is_alphanumeric())
}

fn luhn_card(text: &str, start: usize, end: usize) -> bool {
    let d = digits(&text[start..end]);
    if !(13..=19).contains(&d.len()) || d.iter().all(|&x| x == d[0]) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban_checksum(text: &str, start: usize, end: usize) -> bool {
    let compact: Vec<char> = text[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    // Move the country code and check digits to the end, letters become 10..35, then mod 97.
    let rotated = compact[4..].iter().chain(&compact[..4]);
    let mut remainder: u32 = 0;
    for c in rotated {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

fn valid_ssn(text: &str, start: usize, end: usize) -> bool {
    let d = digits(&text[start..end]);
    if d.len() != 9 {
        return false;
    }
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Four octets, not part of a longer dotted number such as a version `1.2.3.4.5`.
fn ipv4(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let mut after = text[end..].chars();
    let dotted_on = after.next() == Some('.') && after.next().is_some_and(|c| c.is_ascii_digit());
    !before.is_some_and(|c| c.is_alphanumeric() || c == '.') && !dotted_on
}

fn ipv6(text: &str, start: usize, end: usize) -> bool {
    let candidate = &text[start..end];
    // Digits and some length keep `a::b` (a Rust path, and technically an address) out.
    candidate.matches(':').count() >= 2
        && candidate.len() >= 6
        && candidate.chars().any(|c| c.is_ascii_digit())
        && standalone(text, start, end)
        && candidate.parse::<std::net::Ipv6Addr>().is_ok()
}

fn phone(text: &str, start: usize, end: usize) -> bool {
    let n = digits(&text[start..end]).len();
    let international = text[start..end].starts_with('+');
    let before = text[..start].chars().next_back();
    // Not the tail of a longer number or word (`v1.2.3`, an id, a date-time).
    let glued = before.is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '-' || c == '/');
    !glued
        && if international {
            (8..=15).contains(&n)
        } else {
            (10..=11).contains(&n)
        }
}

fn standalone_aws_secret(text: &str, start: usize, end: usize) -> bool {
    let s = &text[start..end];
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || "/+=".contains(c));
    boundary(before)
        && boundary(after)
        && s.contains(['/', '+'])
        && s.chars().any(|c| c.is_ascii_uppercase())
        && s.chars().any(|c| c.is_ascii_lowercase())
        && s.chars().any(|c| c.is_ascii_digit())
        // A path such as `a/b/c/...` has many slashes; a key has a few.
        && s.matches('/').count() + s.matches('+').count() <= 6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str) -> String {
        detector().mask(text)
    }

    #[test]
    fn masks_every_listed_type() {
        let cases = [
            ("mail jane.doe+hr@example.co.uk now", "mail [EMAIL] now"),
            ("call +44 20 7946 0958 today", "call [PHONE] today"),
            ("call (555) 123-4567 today", "call [PHONE] today"),
            ("card 4111 1111 1111 1111 ok", "card [CREDIT_CARD] ok"),
            ("card 5500-0000-0000-0004.", "card [CREDIT_CARD]."),
            ("ssn 123-45-6789", "ssn [US_SSN]"),
            ("SSN: 123456789", "SSN: [US_SSN]"),
            ("iban GB82 WEST 1234 5698 7654 32 end", "iban [IBAN] end"),
            ("iban DE89370400440532013000", "iban [IBAN]"),
            ("from 192.168.10.254 and", "from [IP_ADDRESS] and"),
            ("from 2001:db8::8a2e:370:7334 and", "from [IP_ADDRESS] and"),
            ("key AKIAIOSFODNN7EXAMPLE here", "key [AWS_ACCESS_KEY] here"),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_access_key = [AWS_SECRET_KEY]",
            ),
            (
                "bare wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end",
                "bare [AWS_SECRET_KEY] end",
            ),
            ("password=hunter2 next", "password=[PASSWORD] next"),
            ("DB_PASSWORD: \"s3cr3t value\"", "DB_PASSWORD: [PASSWORD]"),
            ("api_key=abc123&x=1", "api_key=[PASSWORD]&x=1"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAA=\n-----END RSA PRIVATE KEY----- after",
                "[PRIVATE_KEY] after",
            ),
            ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg", "[PRIVATE_KEY]"),
        ];
        for (input, expected) in cases {
            assert_eq!(masked(input), expected, "input: {input}");
        }
    }

    #[test]
    fn leaves_look_alikes_alone() {
        for text in [
            "card 4111 1111 1111 1112",         // fails Luhn
            "ssn 000-12-3456",                  // reserved area
            "ssn 666-12-3456",                  // never issued
            "iban GB82 WEST 1234 5698 7654 33", // bad checksum
            "version 1.2.3.4.5 and 999.1.1.1",
            "sha1 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            "on 2026-11-28 at 10:30:00",
            "order 12345 shipped",
            "a::b is a path in Rust",
            "the password policy says rotate yearly",
        ] {
            assert_eq!(masked(text), text, "should not change: {text}");
        }
    }

    #[test]
    fn overlapping_rules_prefer_the_specific_one() {
        // The secret rule and the generic password rule both match the value.
        let text = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(masked(text), "AWS_SECRET_ACCESS_KEY=[AWS_SECRET_KEY]");
        let kinds: Vec<_> = detector()
            .find("4111111111111111")
            .iter()
            .map(|f| f.kind)
            .collect();
        assert_eq!(kinds, [EntityKind::CreditCard]);
    }

    #[test]
    fn masks_inside_json_and_non_ascii_text() {
        let mut value =
            serde_json::json!({"query": "écrire à zoë@example.fr", "k": 5, "list": ["ok", "10.0.0.1"]});
        detector().mask_json(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"query": "écrire à [EMAIL]", "k": 5, "list": ["ok", "[IP_ADDRESS]"]})
        );
    }
}
