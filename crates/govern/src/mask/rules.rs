//! The formatted types: one regular expression per shape, plus a validator where the format has
//! a checksum or reserved ranges.
//!
//! Three families:
//!
//! - **Self-evident formats** (PEM blocks, AWS key ids, emails, URLs, IPs, MACs) need only a
//!   pattern and a little boundary care.
//! - **Checksummed numbers** are matched loosely and kept only when the check passes: Luhn for
//!   cards and Canadian SINs, ISO 7064 mod 97 for IBANs, mod 11 for NHS numbers and UTRs, the
//!   ABA 3-7-1 weights for routing numbers, the ISO 3779 check digit for VINs, the SSA's reserved
//!   ranges for SSNs and ITINs, HMRC's prefix rules for National Insurance numbers.
//! - **Context-dependent numbers** (a bank account, a passport, a PIN, a CVV, an age, a user
//!   name, a password) have no format of their own; a bare number is not flagged. Their pattern
//!   starts with a keyword cue (`account number`, `passport`, `PIN`, `CVV`, `years old`, …) and
//!   captures only the value after it, so the mask keeps the cue readable.
//!
//! Rules are listed most specific first; that order is their priority when two overlap.
//!
//! One unit: the table of formatted rules, which is data, and the validators its rows name.

use super::EntityKind;

/// Checks a candidate `text[start..end]` (with the whole text for context).
pub(super) type Validator = fn(text: &str, start: usize, end: usize) -> bool;

pub(super) struct RuleSpec {
    pub kind: EntityKind,
    pub pattern: String,
    /// The capture group holding the sensitive value (0: the whole match).
    pub group: usize,
    pub validate: Option<Validator>,
    pub needs: Needs,
}

/// A cheap test that lets `find` skip a rule that cannot match: most texts carry none of the
/// cue words, and many carry no digit.
#[derive(Debug, Clone, Copy)]
pub(super) enum Needs {
    Nothing,
    /// An ASCII digit somewhere in the text.
    Digit,
    /// One of these (lower-case) substrings of the lower-cased text.
    Keyword(&'static [&'static str]),
}

impl RuleSpec {
    fn digits(mut self) -> RuleSpec {
        self.needs = Needs::Digit;
        self
    }

    fn keywords(mut self, words: &'static [&'static str]) -> RuleSpec {
        self.needs = Needs::Keyword(words);
        self
    }
}

/// Words that join a cue to its value: `number`, `no.`, `is`, `:`, `#`…
const CONNECT: &str = r"(?:[^\w\n]{0,4}(?:numbers?|num|nos?|nr|is|was|id|code|of|\#)\b){0,3}[^\w\n]{0,4}";

/// Word boundaries are ASCII (`(?-u:\b)`): a Unicode `\b` makes the regex engine leave its
/// lazy DFA on any non-ASCII text, which costs 10–50× — and every value these rules match is
/// ASCII anyway.
fn spec(kind: EntityKind, pattern: &str, group: usize, validate: Option<Validator>) -> RuleSpec {
    RuleSpec {
        kind,
        pattern: pattern.replace("{CONNECT}", CONNECT).replace(r"\b", r"(?-u:\b)"),
        group,
        validate,
        needs: Needs::Nothing,
    }
}

/// Every built-in rule, most specific first.
pub(super) fn specs() -> Vec<RuleSpec> {
    use EntityKind as K;
    vec![
        // A whole PEM block, or its head when the text was cut before the END line.
        spec(
            K::PrivateKey,
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[A-Za-z0-9+/=\s]*)",
            0,
            None,
        ).keywords(&["private key"]),
        spec(
            K::AwsAccessKey,
            r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA|AIPA|ANPA|ANVA|AGPA)[A-Z0-9]{16}\b",
            0,
            None,
        ).digits(),
        // Named in context (`aws_secret_access_key = …`, `SecretAccessKey: …`).
        spec(
            K::AwsSecretKey,
            r#"(?i)secret_?access_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})"#,
            1,
            None,
        ).keywords(&["secret"]),
        // Or standing alone: 40 base64 characters of mixed case with a `/` or `+`.
        spec(K::AwsSecretKey, r"[A-Za-z0-9/+]{40}", 0, Some(standalone_aws_secret)).digits(),
        // `key=value` style secrets.
        spec(
            K::Password,
            r#"(?i)[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|passphrase)[A-Za-z0-9_.-]*["']?\s*[:=]\s*("[^"\n]*"|'[^'\n]*'|[^\s,;&"'<>]+)"#,
            1,
            None,
        ).keywords(&["pass", "pwd", "secret", "token", "api"]),
        // Prose: "my password is hunter2".
        spec(
            K::Password,
            r#"(?i)\b(?:password|passwd|pwd|passcode|passphrase|pass phrase)\s+(?:is|was)\s*:?\s+["']?([^\s"']{4,64})"#,
            1,
            Some(password_value),
        ).keywords(&["pass", "pwd"]),
        spec(
            K::Email,
            r"[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
            0,
            None,
        ).keywords(&["@"]),
        spec(
            K::Url,
            r#"(?i)\b(?:https?|ftp|sftp|wss?)://[^\s<>"'`{}|\\^\[\]]*[^\s<>"'`{}|\\^\[\].,;:!?)]"#,
            0,
            None,
        ).keywords(&["://"]),
        spec(
            K::Url,
            r#"(?i)\bwww\.[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:/(?:[^\s<>"'`{}|\\^\[\]]*[^\s<>"'`{}|\\^\[\].,;:!?)])?)?"#,
            0,
            None,
        ).keywords(&["www."]),
        spec(K::CreditDebitCardNumber, r"\b\d(?:[ -]?\d){12,18}\b", 0, Some(luhn_card)).digits(),
        spec(
            K::InternationalBankAccountNumber,
            r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
            0,
            Some(iban_checksum),
        ).digits(),
        spec(
            K::UsIndividualTaxIdentificationNumber,
            r"\b9\d{2}[- ](?:5\d|6[0-5]|7\d|8[0-8]|9[0-2]|9[4-9])[- ]\d{4}\b",
            0,
            None,
        ).digits(),
        spec(
            K::UsIndividualTaxIdentificationNumber,
            r"(?i:\b(?:itin|individual taxpayer identification(?: number)?){CONNECT})\b(9\d{2}[- ]?\d{2}[- ]?\d{4})\b",
            1,
            Some(valid_itin),
        ).keywords(&["itin", "taxpayer"]),
        spec(
            K::UsSocialSecurityNumber,
            r"\b\d{3}[- ]\d{2}[- ]\d{4}\b",
            0,
            Some(valid_ssn),
        ).digits(),
        spec(
            K::UsSocialSecurityNumber,
            r"(?i:\b(?:ssn|social security(?: number)?|soc\.? sec\.?){CONNECT})\b(\d{3}[- ]?\d{2}[- ]?\d{4})\b",
            1,
            Some(valid_ssn),
        ).keywords(&["ssn", "social security", "soc"]),
        spec(
            K::UkNationalInsuranceNumber,
            r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
            0,
            Some(valid_nino),
        ).digits(),
        spec(
            K::UkNationalHealthServiceNumber,
            r"(?i:\b(?:nhs|national health service|health service){CONNECT})\b(\d{3}[ -]?\d{3}[ -]?\d{4})\b",
            1,
            Some(nhs_checksum),
        ).keywords(&["nhs", "health service"]),
        spec(
            K::UkUniqueTaxpayerReferenceNumber,
            r"(?i:\b(?:utr|unique taxpayer reference|taxpayer reference|tax reference){CONNECT})\b(\d{5} ?\d{5}K?)\b",
            1,
            Some(utr_checksum),
        ).keywords(&["utr", "taxpayer", "tax reference"]),
        spec(
            K::CaSocialInsuranceNumber,
            r"(?i:\b(?:sin|social insurance(?: number)?|nas|numéro d'assurance sociale){CONNECT})\b(\d{3}[- ]?\d{3}[- ]?\d{3})\b",
            1,
            Some(luhn_sin),
        ).keywords(&["sin", "social insurance", "nas", "assurance sociale"]),
        spec(
            K::CaHealthNumber,
            r"(?i:\b(?:health card|health insurance|health number|ohip|hcn|phn|carte santé|carte d'assurance maladie|ramq|msp){CONNECT})\b(\d{4}[ -]?\d{3}[ -]?\d{3}(?:[ -]?[A-Z]{2})?|[A-Z]{4}[ -]?\d{4}[ -]?\d{4}|\d{9,10})\b",
            1,
            None,
        ).keywords(&["health", "ohip", "hcn", "phn", "santé", "ramq", "msp", "maladie"]),
        spec(
            K::UsBankRoutingNumber,
            r"(?i:\b(?:routing|aba|rtn|transit|routing transit){CONNECT})\b(\d{9})\b",
            1,
            Some(aba_checksum),
        ).keywords(&["routing", "aba", "rtn", "transit"]),
        spec(
            K::UsBankAccountNumber,
            r"(?i:\b(?:(?:bank|checking|savings|chequing|deposit)\s+)?(?:account|acct|a/c)\.?(?:\s+(?:number|num|no\.?|nr|\#)|\s*\#)(?:\s*(?:is|was))?[^\w\n]{0,4})(\d{6,17})\b",
            1,
            None,
        ).keywords(&["account", "acct", "a/c"]),
        spec(
            K::UsBankAccountNumber,
            r"(?i:\b(?:bank|checking|savings|chequing)\s+account{CONNECT})\b(\d{6,17})\b",
            1,
            None,
        ).keywords(&["account"]),
        spec(
            K::UsPassportNumber,
            r"(?i:\bpassport{CONNECT})\b([A-Z]\d{8}|\d{9})\b",
            1,
            None,
        ).keywords(&["passport"]),
        spec(
            K::LicensePlate,
            r"(?i:\b(?:licen[cs]e plate|number plate|registration plate|plate (?:number|no\.?)|vehicle registration(?: number)?|registration number|reg\.? (?:no\.?|number)){CONNECT})\b([A-Z0-9]{1,4}(?:[ -]?[A-Z0-9]{1,4}){1,2}|[A-Z0-9]{2,8})\b",
            1,
            Some(plate_value),
        ).keywords(&["plate", "registration", "reg"]),
        spec(
            K::DriverId,
            r"(?i:\b(?:driver'?s?'? licen[cs]e|driving licen[cs]e|drivers? id|dl|licen[cs]e (?:number|no\.?|\#)){CONNECT})\b([A-Z0-9](?:[A-Z0-9-]{3,18})[A-Z0-9])\b",
            1,
            Some(has_digit),
        ).keywords(&["licen", "driver", "dl"]),
        spec(
            K::CreditDebitCardCvv,
            r"(?i:\b(?:cvv2?|cvc2?|cid|csc|cvn|card verification(?: value| code)?|security code){CONNECT})\b(\d{3,4})\b",
            1,
            None,
        ).keywords(&["cvv", "cvc", "cid", "csc", "cvn", "verification", "security code"]),
        spec(
            K::CreditDebitCardExpiry,
            r"(?i:\b(?:exp|expiry|expiration|expires?|valid thru|valid through|valid until|good thru)(?:\s+date)?\.?(?:\s+(?:on|in|is|at|end))?[^\w\n]{0,4})((?:0?[1-9]|1[0-2]) ?[/-] ?(?:20)?\d{2})\b",
            1,
            None,
        ).keywords(&["exp", "valid", "good thru"]),
        spec(
            K::Pin,
            r"(?i:\b(?:pin|pin code|pin number|passcode|security pin){CONNECT})\b(\d{4,8})\b",
            1,
            None,
        ).keywords(&["pin", "passcode"]),
        spec(
            K::Username,
            r#"(?i:\b(?:user ?name|user id|userid|login|log-in|login name|handle|screen ?name|account name)(?:\s*[:=]\s*|\s+(?:is|was)\s*:?\s+)["'@]?)([A-Za-z0-9][A-Za-z0-9._@-]{2,31})"#,
            1,
            Some(username_value),
        ).keywords(&["user", "login", "log-in", "handle", "screen", "account name"]),
        spec(
            K::VehicleIdentificationNumber,
            r"\b[A-HJ-NPR-Z0-9]{17}\b",
            0,
            Some(vin_checksum),
        ).digits(),
        spec(
            K::SwiftCode,
            r"\b[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?\b",
            0,
            Some(swift_code),
        ),
        spec(
            K::MacAddress,
            r"\b(?:(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}|(?:[0-9A-Fa-f]{2}-){5}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})\b",
            0,
            None,
        ).digits(),
        spec(
            K::IpAddress,
            r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
            0,
            Some(ipv4),
        ).digits(),
        spec(K::IpAddress, r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:]*", 0, Some(ipv6)).digits(),
        spec(
            K::DateTime,
            r"\b\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b",
            0,
            None,
        ).digits(),
        spec(
            K::DateTime,
            r"\b(?:0?[1-9]|[12]\d|3[01])[/.](?:0?[1-9]|[12]\d|3[01])[/.](?:19|20)?\d{2}\b",
            0,
            Some(numeric_date),
        ).digits(),
        spec(
            K::DateTime,
            r"(?i)\b(?:(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?(?: of)? (?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|august|september|october|november|december)\.?,? \d{4}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|august|september|october|november|december)\.? (?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?,? \d{4})\b",
            0,
            None,
        ).digits(),
        spec(
            K::Phone,
            r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,8}(?:[ .-]\d{1,8}){0,5}(?: ?(?:x|ext\.?|extension) ?\d{1,6})?\b",
            0,
            Some(phone),
        ).digits(),
        spec(
            K::Age,
            r"(?i)\b(\d{1,3})(?:\s|-)?(?:years?|yrs?|y/o|yo)(?:\s|-)?(?:old|of age)?\b",
            1,
            Some(age_years),
        ).keywords(&["year", "yr", "y/o", "yo"]),
        spec(
            K::Age,
            r"(?i:\b(?:age|aged|ages)(?:\s*(?:is|was|:|of))?\s*)(\d{1,3})\b",
            1,
            Some(age_value),
        ).keywords(&["age"]),
        // A bare domain with a common top-level domain (`example.com/path`).
        spec(
            K::Url,
            r"(?i)\b[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.(?:com|org|net|edu|gov|mil|int|info|biz|io|ai|app|dev|co\.uk|org\.uk|ac\.uk|gov\.uk|com\.au|co\.nz|co\.jp|co\.in|com\.br)\b(?:/[^\s<>\x22'`]*)?",
            0,
            Some(bare_domain),
        ).keywords(&["."]),
        // Postal codes named as such, and postal-code shapes specific enough to stand alone.
        spec(
            K::Address,
            r"(?i:\b(?:zip|zip code|zipcode|postcode|post code|postal code|plz|code postal)\b\s*[:#]?\s*)(\d{5}(?:-\d{4})?|\d{4}|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d)\b",
            1,
            None,
        ).keywords(&["zip", "post", "plz", "code postal"]),
        spec(
            K::Address,
            r"\b(?:[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? \d[ABD-HJLNP-UW-Z]{2}|[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] \d[ABCEGHJ-NPRSTV-Z]\d)\b",
            0,
            None,
        ).digits(),
        // `Springfield, IL 62704`
        spec(
            K::Address,
            r"\b[A-Z][a-z]+(?: [A-Z][a-z]+){0,2}, ?([A-Z]{2}) \d{5}(?:-\d{4})?\b",
            0,
            Some(us_city_state_zip),
        ).digits(),
    ]
}

pub(super) fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// Whether `text[start..end]` is not glued to letters or digits on either side.
fn standalone(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(|c| c.is_alphanumeric()) && !after.is_some_and(|c| c.is_alphanumeric())
}

fn luhn(d: &[u32]) -> bool {
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

pub(super) fn luhn_card(text: &str, start: usize, end: usize) -> bool {
    let d = digits(&text[start..end]);
    (13..=19).contains(&d.len()) && !d.iter().all(|&x| x == d[0]) && luhn(&d)
}

/// Canadian SIN: nine digits, Luhn, never starting with 0 or 8.
pub(super) fn luhn_sin(text: &str, start: usize, end: usize) -> bool {
    let d = digits(&text[start..end]);
    d.len() == 9 && d[0] != 0 && d[0] != 8 && luhn(&d)
}

pub(super) fn iban_checksum(text: &str, start: usize, end: usize) -> bool {
    let compact: Vec<char> = text[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    // Move the country code and check digits to the end, letters become 10..35, then mod 97.
    let rotated = compact[4..].iter().chain(&compact[..4]);
    let mut remainder: u32 = 0;
    for c in rotated {
        let Some(value) = c.to_digit(36) else {
            return false;
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

pub(super) fn valid_ssn(text: &str, start: usize, end: usize) -> bool {
    let d = digits(&text[start..end]);
    if d.len() != 9 {
        return false;
    }
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// ITIN: area 9xx, group 50–65, 70–88, 90–92 or 94–99.
pub(super) fn valid_itin(text: &str, start: usize, end: usize) -> bool {
    let d = digits(&text[start..end]);
    if d.len() != 9 || d[0] != 9 {
        return false;
    }
    let group = d[3] * 10 + d[4];
    matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

/// UK National Insurance number: the prefixes HMRC never issues are refused.
pub(super) fn valid_nino(text: &str, start: usize, end: usize) -> bool {
    let prefix: String = text[start..end].chars().take(2).collect();
    !matches!(prefix.as_str(), "BG" | "GB" | "KN" | "NK" | "NT" | "TN" | "ZZ")
}

/// NHS number: weights 10..2 over the first nine digits, check = 11 - sum mod 11 (11 → 0,
/// 10 → invalid).
pub(super) fn nhs_checksum(text: &str, start: usize, end: usize) -> bool {
    let d = digits(&text[start..end]);
    if d.len() != 10 || d.iter().all(|&x| x == d[0]) {
        return false;
    }
    let sum: u32 = d[..9].iter().zip((2..=10).rev()).map(|(x, w)| x * w).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    check == d[9]
}

/// UK UTR: the first digit checks the other nine (weights 6,7,8,9,10,5,4,3,2, mod 11, mapped
/// through `21987654321`).
pub(super) fn utr_checksum(text: &str, start: usize, end: usize) -> bool {
    let d = digits(&text[start..end]);
    if d.len() != 10 {
        return false;
    }
    const WEIGHTS: [u32; 9] = [6, 7, 8, 9, 10, 5, 4, 3, 2];
    let sum: u32 = d[1..].iter().zip(WEIGHTS).map(|(x, w)| x * w).sum();
    let expected = b"21987654321"[(sum % 11) as usize] - b'0';
    u32::from(expected) == d[0]
}

/// ABA routing number: 3·(d1+d4+d7) + 7·(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10), with a Federal
/// Reserve prefix.
pub(super) fn aba_checksum(text: &str, start: usize, end: usize) -> bool {
    let d = digits(&text[start..end]);
    if d.len() != 9 {
        return false;
    }
    let prefix = d[0] * 10 + d[1];
    if !matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) || d.iter().all(|&x| x == 0) {
        return false;
    }
    let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8]);
    sum.is_multiple_of(10)
}

/// VIN (ISO 3779, North American check digit in position 9).
pub(super) fn vin_checksum(text: &str, start: usize, end: usize) -> bool {
    let vin = &text[start..end];
    if vin.len() != 17
        || !vin.bytes().any(|b| b.is_ascii_digit())
        || !vin.bytes().any(|b| b.is_ascii_alphabetic())
    {
        return false;
    }
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let value = |b: u8| -> Option<u32> {
        Some(match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A' | b'J' => 1,
            b'B' | b'K' | b'S' => 2,
            b'C' | b'L' | b'T' => 3,
            b'D' | b'M' | b'U' => 4,
            b'E' | b'N' | b'V' => 5,
            b'F' | b'W' => 6,
            b'G' | b'P' | b'X' => 7,
            b'H' | b'Y' => 8,
            b'R' | b'Z' => 9,
            _ => return None,
        })
    };
    let mut sum = 0;
    for (b, w) in vin.bytes().zip(WEIGHTS) {
        let Some(v) = value(b) else {
            return false;
        };
        sum += v * w;
    }
    let check = match sum % 11 {
        10 => b'X',
        r => b'0' + r as u8,
    };
    vin.as_bytes()[8] == check
}

/// ISO 3166-1 alpha-2 codes (SWIFT/BIC positions 5–6), plus `XK` (Kosovo).
const COUNTRY_CODES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET \
FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR \
IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN \
MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY \
QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR \
TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

/// SWIFT/BIC: a real country code; an all-letter code (which could be a shouted word) only
/// with a `SWIFT`/`BIC` cue before it.
pub(super) fn swift_code(text: &str, start: usize, end: usize) -> bool {
    let code = &text[start..end];
    let country = &code[4..6];
    if !COUNTRY_CODES.split(' ').any(|c| c == country) {
        return false;
    }
    let cue = window_before(text, start, 40).to_lowercase();
    let cued = ["swift", "bic", "bank identifier"]
        .iter()
        .any(|c| cue.contains(c));
    cued || code[6..].bytes().any(|b| b.is_ascii_digit())
}

/// Four octets, not part of a longer dotted number such as a version `1.2.3.4.5`.
pub(super) fn ipv4(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let mut after = text[end..].chars();
    let dotted_on = after.next() == Some('.') && after.next().is_some_and(|c| c.is_ascii_digit());
    !before.is_some_and(|c| c.is_alphanumeric() || c == '.') && !dotted_on
}

pub(super) fn ipv6(text: &str, start: usize, end: usize) -> bool {
    let candidate = &text[start..end];
    // Digits and some length keep `a::b` (a Rust path, and technically an address) out.
    candidate.matches(':').count() >= 2
        && candidate.len() >= 6
        && candidate.chars().any(|c| c.is_ascii_digit())
        && standalone(text, start, end)
        && candidate.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Up to `n` bytes of text before `at`, cut on a character boundary.
pub(super) fn window_before(text: &str, at: usize, n: usize) -> &str {
    let mut from = at.saturating_sub(n);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..at]
}

fn window_after(text: &str, at: usize, n: usize) -> &str {
    let mut to = (at + n).min(text.len());
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    &text[at..to]
}

const PHONE_CUES_BEFORE: [&str; 16] = [
    "phone", "tel", "mobile", "cell", "call", "fax", "desk", "office", "contact", "reach", "text me",
    "whatsapp", "landline", "dial", "ring", "telefon",
];
const PHONE_CUES_AFTER: [&str; 7] = ["office", "fax", "mobile", "cell", "home", "work", "phone"];

pub(super) fn phone(text: &str, start: usize, end: usize) -> bool {
    let candidate = &text[start..end];
    let before = text[..start].chars().next_back();
    // Not the tail of a longer number or word (`v1.2.3`, an id, a date-time).
    if before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '/' | '_' | ',')) {
        return false;
    }
    let main = candidate
        .find(['x', 'e'])
        .map_or(candidate, |i| candidate[..i].trim_end());
    let n = digits(main).len();
    let groups: Vec<&str> = main
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    // Dates and dotted quads look like numbers with separators.
    let is_date = groups.len() >= 3
        && ((groups[0].len() == 4 && groups[1].len() <= 2 && groups[2].len() <= 2)
            || (groups[0].len() <= 2 && groups[1].len() <= 2 && groups.len() == 3 && main.contains('/')));
    let dotted_quad =
        groups.len() == 4 && main.matches('.').count() == 3 && groups.iter().all(|g| g.len() <= 3);
    if is_date || dotted_quad {
        return false;
    }
    let international = main.starts_with('+');
    let structured = international || main.contains('(') || groups.len() >= 2;
    let cue_before = window_before(text, start, 40).to_lowercase();
    let cue_after = window_after(text, end, 16).to_lowercase();
    let cued = PHONE_CUES_BEFORE.iter().any(|c| cue_before.contains(c))
        || PHONE_CUES_AFTER
            .iter()
            .any(|c| cue_after.trim_start().starts_with(c));
    if international {
        (8..=15).contains(&n)
    } else if cued {
        structured && (7..=15).contains(&n)
    } else {
        structured && (10..=11).contains(&n)
    }
}

pub(super) fn standalone_aws_secret(text: &str, start: usize, end: usize) -> bool {
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

/// A password given in prose ("my password is …") must look like one: a digit, a symbol or
/// a capital inside, or a length no common word has.
fn password_value(text: &str, start: usize, end: usize) -> bool {
    let v = text[start..end].trim_end_matches(['.', ',', ';', '!', '?']);
    let lower = v.to_lowercase();
    if [
        "incorrect",
        "wrong",
        "invalid",
        "expired",
        "required",
        "correct",
        "too",
        "not",
        "the",
        "being",
    ]
    .contains(&lower.as_str())
    {
        return false;
    }
    v.chars().any(|c| c.is_ascii_digit() || !c.is_alphanumeric())
        || v.chars().skip(1).any(|c| c.is_uppercase())
        || v.len() >= 12
}

fn username_value(text: &str, start: usize, end: usize) -> bool {
    let v = text[start..end].to_lowercase();
    !matches!(
        v.as_str(),
        "the" | "not" | "incorrect" | "wrong" | "invalid" | "required" | "missing" | "page" | "and" | "for"
    )
}

fn has_digit(text: &str, start: usize, end: usize) -> bool {
    text[start..end].bytes().any(|b| b.is_ascii_digit())
}

/// A plate has 2–8 letters and digits, at least one digit, and is written in capitals.
fn plate_value(text: &str, start: usize, end: usize) -> bool {
    let v = &text[start..end];
    let alnum = v.chars().filter(|c| c.is_ascii_alphanumeric()).count();
    (2..=8).contains(&alnum)
        && v.bytes().any(|b| b.is_ascii_digit())
        && !v.bytes().any(|b| b.is_ascii_lowercase())
}

fn bare_domain(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    // Not part of an email, a path or a longer dotted name.
    !before.is_some_and(|c| matches!(c, '@' | '.' | '/' | '\\' | '-' | '_')) && text[start..end].contains('.')
}

fn numeric_date(text: &str, start: usize, end: usize) -> bool {
    let parts: Vec<u32> = text[start..end]
        .split(['/', '.'])
        .filter_map(|p| p.parse().ok())
        .collect();
    let [a, b, _] = parts[..] else {
        return false;
    };
    let m = &text[start..end];
    if m.contains('.') {
        // Dotted dates need a four-digit year (`1.2.34` is a version).
        let year_len = m.rsplit('.').next().map_or(0, str::len);
        let dotted_on =
            text[end..].starts_with('.') && text[end..].chars().nth(1).is_some_and(|c| c.is_ascii_digit());
        if year_len != 4 || dotted_on {
            return false;
        }
    }
    // Month/day or day/month: one of the two must be a month.
    (a <= 12 || b <= 12) && standalone(text, start, end)
}

fn age_years(text: &str, start: usize, end: usize) -> bool {
    let after = text[end..].to_lowercase();
    let rest = after.trim_start_matches([' ', '-']);
    // "5 years" alone is a duration; an age says "old" (or y/o).
    let said_old = [
        "years old",
        "year old",
        "years-old",
        "year-old",
        "yrs old",
        "yr old",
        "y/o",
        "yo ",
    ]
    .iter()
    .any(|p| rest.starts_with(p))
        || rest.starts_with("years of age");
    said_old && age_value(text, start, end)
}

fn age_value(text: &str, start: usize, end: usize) -> bool {
    text[start..end].parse::<u32>().is_ok_and(|n| n <= 130)
}

const US_STATES: &str = "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ \
NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI";

fn us_city_state_zip(text: &str, start: usize, end: usize) -> bool {
    let m = &text[start..end];
    let Some(comma) = m.rfind(',') else {
        return false;
    };
    let state = m[comma + 1..].trim_start().get(..2).unwrap_or("");
    US_STATES.split(' ').any(|s| s == state)
}
