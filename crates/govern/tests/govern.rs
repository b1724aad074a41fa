//! Generated inputs for the credential parsers: identity-provider tokens (JWTs) mutated from
//! validly signed ones, JWKS documents, and groundwork API tokens. Nothing may panic, and no
//! mutated token may verify unless its signed part is exactly one that was signed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use groundwork_core::mutate::{FuzzTally, Mutator, cases, seed};
use groundwork_govern::jwt::{Expectations, KeySet, verify};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;

fn expectations() -> Expectations {
    Expectations {
        issuer: "https://idp.example".into(),
        audience: "groundwork".into(),
        user_claim: "sub".into(),
        groups_claim: "groups".into(),
        leeway_secs: 30,
    }
}

fn signer() -> (EcdsaKeyPair, Value) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
                     "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
    (pair, jwk)
}

fn sign(pair: &EcdsaKeyPair, header: Value, claims: Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// The header and payload of a token: what its signature covers.
fn signed_part(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(signed, _)| signed)
}

#[test]
fn generated_tokens_never_verify_unless_signed() {
    let (pair, jwk) = signer();
    let keys = KeySet::from_json(&json!({"keys": [jwk.clone()]}).to_string()).unwrap();
    let claims = json!({"iss": "https://idp.example", "aud": ["groundwork"], "sub": "alice",
                        "groups": ["finance"], "exp": NOW + 300, "nbf": NOW - 10});
    let tokens: Vec<String> = vec![
        sign(&pair, json!({"alg": "ES256", "kid": "k1"}), claims.clone()),
        sign(
            &pair,
            json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}),
            json!({"iss": "https://idp.example",
            "aud": "groundwork", "sub": "bob", "groups": "a b", "exp": NOW + 60}),
        ),
    ];
    for token in &tokens {
        verify(token, &keys, &expectations(), NOW).expect("the samples verify");
    }
    let signed: Vec<&str> = tokens.iter().map(|t| signed_part(t)).collect();
    let samples: Vec<Vec<u8>> = tokens.iter().map(|t| t.as_bytes().to_vec()).collect();
    let mut mutator = Mutator::new(seed(13), &[b".", b"=", b"-", b"_", b"eyJ", b"AAAA"]);
    let mut tally = FuzzTally::new("jwt");
    for case in 0..cases(5000) {
        let input = mutator.mutate(&samples);
        let text = String::from_utf8_lossy(&input);
        match tally.time(|| verify(&text, &keys, &expectations(), NOW)) {
            Ok(identity) => {
                tally.accepted += 1;
                assert!(
                    signed.contains(&signed_part(&text)),
                    "case {case}: a token nobody signed verified as {identity:?}: {text}"
                );
            }
            Err(_) => tally.refused += 1,
        }
    }
    eprintln!("{}", tally.report());
    assert!(tally.refused > 0, "{}", tally.report());

    // Header and claims rewritten as JSON (an algorithm of `none`, odd types, huge numbers)
    // and signed by a key the JWKS does not hold, or left unsigned.
    let (stranger, _) = signer();
    let mut json_mutator = Mutator::new(
        seed(17),
        &[b"\"none\"", b"\"HS256\"", b"null", b"[", b"{", b"1e308", b"-1"],
    );
    let headers: Vec<Vec<u8>> = vec![br#"{"alg": "ES256", "kid": "k1"}"#.to_vec()];
    let bodies: Vec<Vec<u8>> = vec![claims.to_string().into_bytes()];
    let mut tally = FuzzTally::new("jwt (rewritten claims)");
    for case in 0..cases(2000) {
        let header = json_mutator.mutate(&headers);
        let body = json_mutator.mutate(&bodies);
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&header),
            URL_SAFE_NO_PAD.encode(&body)
        );
        let token = match case % 3 {
            0 => format!("{input}."),
            1 => {
                let sig = stranger.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
                format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
            }
            _ => {
                let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
                format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
            }
        };
        match tally.time(|| verify(&token, &keys, &expectations(), NOW)) {
            Ok(identity) => {
                tally.accepted += 1;
                assert_eq!(
                    case % 3,
                    2,
                    "case {case}: unsigned or foreign token accepted: {identity:?}"
                );
                assert!(!identity.user.is_empty());
            }
            Err(_) => tally.refused += 1,
        }
    }
    eprintln!("{}", tally.report());

    // JWKS documents: read or refused, never a panic.
    let jwks: Vec<Vec<u8>> = vec![json!({"keys": [jwk]}).to_string().into_bytes()];
    let mut mutator = Mutator::new(
        seed(19),
        &[b"{", b"[", b"\"kty\"", b"\"RSA\"", b"\"n\":", b"\"\""],
    );
    let mut tally = FuzzTally::new("jwks");
    for _ in 0..cases(3000) {
        let input = mutator.mutate(&jwks);
        match tally.time(|| KeySet::from_json(&String::from_utf8_lossy(&input))) {
            Ok(keys) => {
                tally.accepted += 1;
                let _ = verify(&tokens[0], &keys, &expectations(), NOW);
            }
            Err(_) => tally.refused += 1,
        }
    }
    eprintln!("{}", tally.report());
    assert!(tally.accepted > 0 && tally.refused > 0, "{}", tally.report());
}

#[test]
fn generated_api_tokens_parse_only_in_their_exact_shape() {
    let issued = groundwork_govern::token::generate().unwrap();
    let samples = vec![issued.text.as_bytes().to_vec()];
    let mut mutator = Mutator::new(seed(23), &[b"gw_", b"_", b"-", b"A"]);
    let mut tally = FuzzTally::new("api token");
    for _ in 0..cases(5000) {
        let input = mutator.mutate(&samples);
        let text = String::from_utf8_lossy(&input);
        match tally.time(|| groundwork_govern::token::parse(&text)) {
            Ok(presented) => {
                tally.accepted += 1;
                // Only the issued secret matches the issued hash (the id only finds the record).
                if presented.matches(&issued.secret_sha256) {
                    let secret = |t: &str| t.split_once('_').unwrap().1.split_once('_').unwrap().1.to_owned();
                    assert_eq!(secret(&text), secret(&issued.text), "{text}");
                }
            }
            Err(_) => tally.refused += 1,
        }
    }
    eprintln!("{}", tally.report());
    assert!(tally.refused > 0, "{}", tally.report());
}
