//! Unit tests: the audit detector's behaviour (unchanged types, renamed placeholders), each
//! guardrail type with valid and invalid (checksum-failing or cue-less) examples written for
//! these tests, custom patterns, and the overlap rules.

use super::*;

fn masked(text: &str) -> String {
    detector().mask(text)
}

fn all() -> &'static Detector {
    static ALL: OnceLock<Detector> = OnceLock::new();
    ALL.get_or_init(Detector::all)
}

/// The (kind, matched text) findings of the full detector.
fn found(text: &str) -> Vec<(EntityKind, String)> {
    all()
        .find(text)
        .into_iter()
        .map(|f| (f.kind, text[f.start..f.end].to_owned()))
        .collect()
}

fn has(text: &str, kind: EntityKind, value: &str) -> bool {
    found(text).iter().any(|(k, v)| *k == kind && v == value)
}

fn has_kind(text: &str, kind: EntityKind) -> bool {
    found(text).iter().any(|(k, _)| *k == kind)
}

#[test]
fn masks_every_listed_type() {
    let cases = [
        ("mail jane.doe+hr@example.co.uk now", "mail [EMAIL] now"),
        ("call +44 20 7946 0958 today", "call [PHONE] today"),
        ("call (555) 123-4567 today", "call [PHONE] today"),
        (
            "card 4111 1111 1111 1111 ok",
            "card [CREDIT_DEBIT_CARD_NUMBER] ok",
        ),
        ("card 5500-0000-0000-0004.", "card [CREDIT_DEBIT_CARD_NUMBER]."),
        ("ssn 123-45-6789", "ssn [US_SOCIAL_SECURITY_NUMBER]"),
        ("SSN: 123456789", "SSN: [US_SOCIAL_SECURITY_NUMBER]"),
        (
            "iban GB82 WEST 1234 5698 7654 32 end",
            "iban [INTERNATIONAL_BANK_ACCOUNT_NUMBER] end",
        ),
        (
            "iban DE89370400440532013000",
            "iban [INTERNATIONAL_BANK_ACCOUNT_NUMBER]",
        ),
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
fn audit_detector_keeps_to_formatted_types() {
    // Names, addresses and cue-dependent numbers are guardrail business, not audit masking.
    let text = "Mr. Halvorsen lives at 12 Karlsgatan, PIN 4821, born 1990-01-01, see example.com";
    assert_eq!(masked(text), text);
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
    assert_eq!(kinds, [EntityKind::CreditDebitCardNumber]);
    // A card number is not also a phone number or an account number.
    assert_eq!(
        found("account number 4111111111111111"),
        [(EntityKind::CreditDebitCardNumber, "4111111111111111".to_owned())]
    );
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

#[test]
fn kinds_serialise_with_bedrock_names() {
    for kind in EntityKind::ALL.into_iter().chain([EntityKind::Custom]) {
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{}\"", kind.as_str()));
        let back: EntityKind = serde_json::from_str(&json).unwrap();
        assert_eq!(back, kind);
    }
    assert_eq!(EntityKind::BEDROCK.len(), 31);
    assert!(EntityKind::ALL.starts_with(&EntityKind::BEDROCK));
    assert_eq!(
        EntityKind::CreditDebitCardNumber.placeholder(),
        "[CREDIT_DEBIT_CARD_NUMBER]"
    );
}

#[test]
fn checksummed_types_valid_and_invalid() {
    use EntityKind as K;
    let cases: &[(K, &str, &str)] = &[
        // (kind, valid in context, checksum-failing twin)
        (
            K::CreditDebitCardNumber,
            "card 4111 1111 1111 1111",
            "card 4111 1111 1111 1113",
        ),
        (
            K::CaSocialInsuranceNumber,
            "my SIN is 130 692 544",
            "my SIN is 130 692 545",
        ),
        (
            K::InternationalBankAccountNumber,
            "IBAN DE89 3704 0044 0532 0130 00",
            "IBAN DE89 3704 0044 0532 0130 01",
        ),
        (
            K::UkNationalHealthServiceNumber,
            "NHS number 943 476 5919",
            "NHS number 943 476 5918",
        ),
        (
            K::UkUniqueTaxpayerReferenceNumber,
            "UTR 1123456789",
            "UTR 2123456789",
        ),
        (
            K::UsBankRoutingNumber,
            "routing number 021000021",
            "routing number 021000022",
        ),
        (
            K::VehicleIdentificationNumber,
            "VIN 1M8GDM9AXKP042788",
            "VIN 1M8GDM9A1KP042788",
        ),
        (
            K::UkNationalInsuranceNumber,
            "NI number AB 12 34 56 C",
            "NI number GB 12 34 56 A",
        ),
        (
            K::UsIndividualTaxIdentificationNumber,
            "ITIN 912-70-1234",
            "ITIN 912-40-1234",
        ),
        (K::UsSocialSecurityNumber, "SSN 078-05-1120", "SSN 900-05-1120"),
        (K::SwiftCode, "SWIFT: DEUTDEFF", "SWIFT: DEUTXXFF"),
    ];
    for (kind, valid, invalid) in cases {
        assert!(has_kind(valid, *kind), "{valid}: {:?}", found(valid));
        assert!(!has_kind(invalid, *kind), "{invalid}: {:?}", found(invalid));
    }
    // A BIC with digits in its location code stands alone; an all-letter one needs a cue.
    assert!(has("pay to NWBKGB2L today", K::SwiftCode, "NWBKGB2L"));
    assert!(!has_kind("THE ANSWER: DEUTDEFF", K::SwiftCode));
}

#[test]
fn formatted_types() {
    use EntityKind as K;
    assert!(has(
        "mac 00:1A:2B:3C:4D:5E up",
        K::MacAddress,
        "00:1A:2B:3C:4D:5E"
    ));
    assert!(has("mac 001a.2b3c.4d5e up", K::MacAddress, "001a.2b3c.4d5e"));
    assert!(has(
        "see https://example.org/a?b=1.",
        K::Url,
        "https://example.org/a?b=1"
    ));
    assert!(has(
        "go to www.example.com/docs now",
        K::Url,
        "www.example.com/docs"
    ));
    assert!(has("hosted on groundwork.dev today", K::Url, "groundwork.dev"));
    assert!(!has_kind("open main.rs and README.md", K::Url));
    assert!(has(
        "fe80::1ff:fe23:4567:890a is up",
        K::IpAddress,
        "fe80::1ff:fe23:4567:890a"
    ));
    assert!(has("on 2024-03-05 14:30 we met", K::DateTime, "2024-03-05 14:30"));
    assert!(has("born 3 March 1988.", K::DateTime, "3 March 1988"));
    assert!(has("due 04/30/2025", K::DateTime, "04/30/2025"));
    assert!(!has_kind("version 1.2.34 shipped", K::DateTime));
    assert!(has("Ring me on 020 7946 0018 please", K::Phone, "020 7946 0018"));
    assert!(has("Mobile: 0412 345 678", K::Phone, "0412 345 678"));
    assert!(has(
        "tel +49 30 901820 ext. 12",
        K::Phone,
        "+49 30 901820 ext. 12"
    ));
    assert!(!has_kind("we shipped 12 34 56 units", K::Phone));
}

#[test]
fn cue_dependent_types_need_their_cue() {
    use EntityKind as K;
    let cases: &[(K, &str, &str, &str)] = &[
        // (kind, text with cue, expected value, same number without cue)
        (
            K::UsBankAccountNumber,
            "checking account number: 000123456789",
            "000123456789",
            "ref 000123456789",
        ),
        (
            K::UsPassportNumber,
            "passport no. C03005988",
            "C03005988",
            "code C03005988",
        ),
        (
            K::DriverId,
            "driver's license D1234-5678-9012",
            "D1234-5678-9012",
            "part D1234-5678-9012",
        ),
        (K::Pin, "my PIN is 4821", "4821", "room 4821"),
        (K::CreditDebitCardCvv, "CVV: 123", "123", "page 123"),
        (K::CreditDebitCardExpiry, "expires 09/27", "09/27", "ratio 09/27"),
        (K::Age, "she is 42 years old", "42", "it took 42 years"),
        (K::Age, "Age: 67", "67", "Gate: 67"),
        (K::Username, "username: jdoe_88", "jdoe_88", "jdoe_88"),
        (
            K::Password,
            "my password is Tr0ub4dor&3",
            "Tr0ub4dor&3",
            "Tr0ub4dor&3",
        ),
        (
            K::LicensePlate,
            "licence plate AB12 CDE",
            "AB12 CDE",
            "sector AB12 CDE",
        ),
        (
            K::CaHealthNumber,
            "OHIP number 1234-567-890-AB",
            "1234-567-890-AB",
            "order 1234-567-890-AB",
        ),
    ];
    for (kind, with_cue, value, without) in cases {
        assert!(has(with_cue, *kind, value), "{with_cue}: {:?}", found(with_cue));
        assert!(!has_kind(without, *kind), "{without}: {:?}", found(without));
    }
    assert!(!has_kind("my password is incorrect", K::Password));
    assert!(!has_kind("the login page is slow", K::Username));
}

#[test]
fn custom_patterns() {
    let custom = [CustomPattern {
        name: "employee_id".into(),
        pattern: r"\bEMP-\d{6}\b".into(),
    }];
    let d = Detector::with_kinds(&[EntityKind::Email], &custom).unwrap();
    let findings = d.find("badge EMP-004211, mail a@b.io");
    assert_eq!(findings.len(), 2);
    assert_eq!(findings[0].kind, EntityKind::Custom);
    assert_eq!(findings[0].custom.as_deref(), Some("employee_id"));
    assert_eq!(findings[0].label(), "employee_id");
    assert_eq!(
        d.mask("badge EMP-004211, mail a@b.io"),
        "badge [employee_id], mail [EMAIL]"
    );

    let bad = |name: &str, pattern: &str| {
        Detector::with_kinds(
            &[],
            &[CustomPattern {
                name: name.into(),
                pattern: pattern.into(),
            }],
        )
        .err()
        .expect("must fail")
    };
    assert!(matches!(bad("x", "(unclosed"), MaskError::InvalidPattern { .. }));
    assert!(matches!(
        bad("x", &"a".repeat(2000)),
        MaskError::PatternTooLong { .. }
    ));
    assert!(matches!(bad("", "a"), MaskError::InvalidName { .. }));
    assert!(matches!(bad("has space", "a"), MaskError::InvalidName { .. }));
    // Within the length limit but far too big once compiled.
    assert!(matches!(
        bad("x", r"(?:\w{1000}){1000}"),
        MaskError::InvalidPattern { .. }
    ));
    let too_many: Vec<CustomPattern> = (0..=MAX_CUSTOM_PATTERNS)
        .map(|i| CustomPattern {
            name: format!("p{i}"),
            pattern: "a".into(),
        })
        .collect();
    assert!(matches!(
        Detector::with_kinds(&[], &too_many),
        Err(MaskError::TooManyPatterns { .. })
    ));
}

#[test]
fn custom_patterns_win_overlaps() {
    let custom = [CustomPattern {
        name: "ticket".into(),
        pattern: r"\d{3}-\d{2}-\d{4}".into(),
    }];
    let d = Detector::with_kinds(&EntityKind::ALL, &custom).unwrap();
    assert_eq!(d.mask("ref 123-45-6789"), "ref [ticket]");
}

#[test]
fn findings_are_sorted_and_disjoint() {
    let text = "Dear Mr. Abernathy,\nyour card 4111 1111 1111 1111 (CVV 123, exp 04/29) is linked to \
                ana.silva@example.pt and 77 Rua Augusta, Lisboa, Portugal. Call +351 21 343 2148.";
    let findings = all().find(text);
    assert!(findings.windows(2).all(|w| w[0].end <= w[1].start));
    let kinds: Vec<EntityKind> = findings.iter().map(|f| f.kind).collect();
    use EntityKind as K;
    assert_eq!(
        kinds,
        [
            K::Name,
            K::CreditDebitCardNumber,
            K::CreditDebitCardCvv,
            K::CreditDebitCardExpiry,
            K::Email,
            K::Address,
            K::Phone
        ]
    );
    assert!(has(text, K::Address, "77 Rua Augusta, Lisboa, Portugal"));
}

#[test]
fn prints_speed_per_1000_chars() {
    let text = "Dear Mr. Abernathy, your card 4111 1111 1111 1111 is linked to ana.silva@example.pt and \
                77 Rua Augusta, Lisboa, Portugal. Call +351 21 343 2148. Capitalized words like Wisdom \
                and Discipline are not names. "
        .repeat(6);
    let text = &text[..1000];
    let d = all();
    let runs = 20;
    let t = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(d.find(text));
    }
    let per = t.elapsed() / runs;
    eprintln!(
        "Detector::all().find on 1,000 chars: {per:?} (debug build; see the pii_eval example for release)"
    );
}
