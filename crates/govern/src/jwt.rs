//! Identity-provider tokens: OIDC / JWT bearer tokens signed with RS256 or ES256.
//!
//! A token is accepted only when all of these hold: it is three base64url parts; its header
//! names `RS256` or `ES256` (never `none`, never an HMAC algorithm, which would let a public
//! key double as a shared secret); a key in the JWKS matches its `kid` (or is the only key of
//! that type) and verifies the signature; `iss` equals the configured issuer; `aud` (a string or
//! a list) contains the configured audience; `exp` is in the future and `nbf`, when present, in
//! the past, each within the configured clock skew. The user is the configured claim (default
//! `sub`), the groups another (default `groups`: a list of strings, or one space-separated
//! string).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    pub issuer: String,
}

/// Why a token was refused. The variants are for the audit record; callers answer every one
/// of them with the same "invalid token" to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("unsupported algorithm {0:?} (RS256 and ES256 are accepted)")]
    Algorithm(String),
    #[error("no key in the JWKS matches the token")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYetValid,
    #[error("missing or non-string claim {0:?}")]
    Claim(String),
    #[error("invalid JWKS: {0}")]
    Jwks(String),
}

/// What tokens must satisfy; from the `[oidc]` configuration.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub issuer: String,
    pub audience: String,
    pub user_claim: String,
    pub groups_claim: String,
    pub leeway_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Verification keys from a JWKS document.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

fn b64(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| JwtError::Malformed("not base64url"))
}

impl KeySet {
    pub fn from_json(text: &str) -> Result<KeySet, JwtError> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Value>,
        }
        let jwks: Jwks = serde_json::from_str(text).map_err(|e| JwtError::Jwks(e.to_string()))?;
        // Keys of types we cannot use are skipped, as identity providers publish several.
        let keys: Vec<Jwk> = jwks
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter(|k| k.usage.as_deref().is_none_or(|u| u == "sig"))
            .filter(|k| k.kty == "RSA" || (k.kty == "EC" && k.crv.as_deref() == Some("P-256")))
            .collect();
        if keys.is_empty() {
            return Err(JwtError::Jwks("no RSA or P-256 signing keys".into()));
        }
        Ok(KeySet { keys })
    }

    fn candidates<'a>(&'a self, kty: &'a str, kid: Option<&'a str>) -> impl Iterator<Item = &'a Jwk> + 'a {
        let typed: Vec<&Jwk> = self.keys.iter().filter(|k| k.kty == kty).collect();
        let single = typed.len() == 1;
        typed.into_iter().filter(move |k| match (kid, k.kid.as_deref()) {
            (Some(wanted), Some(have)) => wanted == have,
            // Without ids on both sides, only an unambiguous key may be used.
            _ => single,
        })
    }

    fn verify(&self, alg: &str, kid: Option<&str>, message: &[u8], sig: &[u8]) -> Result<(), JwtError> {
        let kty = match alg {
            "RS256" => "RSA",
            "ES256" => "EC",
            other => return Err(JwtError::Algorithm(other.to_owned())),
        };
        let mut any = false;
        let mut verified = false;
        for key in self.candidates(kty, kid) {
            any = true;
            let ok = match kty {
                "RSA" => {
                    let (Some(n), Some(e)) = (&key.n, &key.e) else {
                        continue;
                    };
                    let (n, e) = (b64(n)?, b64(e)?);
                    RsaPublicKeyComponents { n: &n, e: &e }
                        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                        .is_ok()
                }
                _ => {
                    let (Some(x), Some(y)) = (&key.x, &key.y) else {
                        continue;
                    };
                    let mut point = vec![4u8];
                    point.extend(b64(x)?);
                    point.extend(b64(y)?);
                    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                        .verify(message, sig)
                        .is_ok()
                }
            };
            if ok {
                verified = true;
                break;
            }
        }
        match (any, verified) {
            (false, _) => Err(JwtError::UnknownKey),
            (true, false) => Err(JwtError::Signature),
            (true, true) => Ok(()),
        }
    }
}

/// Verifies `token` at `now` (seconds since the epoch).
pub fn verify(token: &str, keys: &KeySet, expect: &Expectations, now: i64) -> Result<Identity, JwtError> {
    let mut parts = token.trim().split('.');
    let (Some(header), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not three dot-separated parts"));
    };
    let header: Value =
        serde_json::from_slice(&b64(header)?).map_err(|_| JwtError::Malformed("header is not JSON"))?;
    let alg = header["alg"].as_str().ok_or(JwtError::Malformed("no alg"))?;
    let kid = header["kid"].as_str();
    let signing_input = &token.trim()[..header_and_payload_len(token.trim())];
    keys.verify(alg, kid, signing_input.as_bytes(), &b64(sig)?)?;

    let claims: Value =
        serde_json::from_slice(&b64(payload)?).map_err(|_| JwtError::Malformed("payload is not JSON"))?;
    if claims["iss"].as_str() != Some(expect.issuer.as_str()) {
        return Err(JwtError::Issuer);
    }
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => *aud == expect.audience,
        Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(expect.audience.as_str())),
        _ => false,
    };
    if !audience_ok {
        return Err(JwtError::Audience);
    }
    let exp = claims["exp"].as_i64().ok_or(JwtError::Claim("exp".into()))?;
    if now >= exp + expect.leeway_secs {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_i64().ok_or(JwtError::Claim("nbf".into()))?;
        if now + expect.leeway_secs < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    let user = claims[&expect.user_claim]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| JwtError::Claim(expect.user_claim.clone()))?
        .to_owned();
    let groups = match &claims[&expect.groups_claim] {
        Value::Array(items) => items
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        Value::String(text) => text.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    Ok(Identity {
        user,
        groups,
        issuer: expect.issuer.clone(),
    })
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    fn expect() -> Expectations {
        Expectations {
            issuer: "https://idp.example".into(),
            audience: "groundwork".into(),
            user_claim: "sub".into(),
            groups_claim: "groups".into(),
            leeway_secs: 60,
        }
    }

    struct Signer {
        pair: EcdsaKeyPair,
        kid: String,
    }

    impl Signer {
        fn new(kid: &str) -> Signer {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
            Signer {
                pair,
                kid: kid.into(),
            }
        }

        fn jwk(&self) -> Value {
            let point = self.pair.public_key().as_ref();
            json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                   "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])})
        }

        fn sign(&self, header: Value, claims: Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let sig = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }
    }

    fn claims(now: i64) -> Value {
        json!({"iss": "https://idp.example", "aud": ["other", "groundwork"], "sub": "alice",
               "groups": ["finance", "staff"], "exp": now + 300, "nbf": now - 10})
    }

    #[test]
    fn es256_tokens_verify_and_map_claims() {
        let signer = Signer::new("k1");
        let keys = KeySet::from_json(&json!({"keys": [signer.jwk()]}).to_string()).unwrap();
        let now = 1_800_000_000;
        let token = signer.sign(json!({"alg": "ES256", "kid": "k1"}), claims(now));
        let identity = verify(&token, &keys, &expect(), now).unwrap();
        assert_eq!(identity.user, "alice");
        assert_eq!(identity.groups, ["finance", "staff"]);
        let mut spaced = claims(now);
        spaced["groups"] = json!("a b");
        let token = signer.sign(json!({"alg": "ES256", "kid": "k1"}), spaced);
        assert_eq!(verify(&token, &keys, &expect(), now).unwrap().groups, ["a", "b"]);
    }

    #[test]
    fn refuses_forged_expired_and_misdirected_tokens() {
        let signer = Signer::new("k1");
        let stranger = Signer::new("k1");
        let keys = KeySet::from_json(&json!({"keys": [signer.jwk()]}).to_string()).unwrap();
        let now = 1_800_000_000;
        let header = json!({"alg": "ES256", "kid": "k1"});
        let check = |token: &str| verify(token, &keys, &expect(), now);

        assert_eq!(
            check(&stranger.sign(header.clone(), claims(now))),
            Err(JwtError::Signature)
        );
        let mut c = claims(now);
        c["exp"] = json!(now - 61);
        assert_eq!(check(&signer.sign(header.clone(), c)), Err(JwtError::Expired));
        let mut c = claims(now);
        c["exp"] = json!(now - 30);
        assert!(
            check(&signer.sign(header.clone(), c)).is_ok(),
            "within the clock skew"
        );
        let mut c = claims(now);
        c["nbf"] = json!(now + 120);
        assert_eq!(check(&signer.sign(header.clone(), c)), Err(JwtError::NotYetValid));
        let mut c = claims(now);
        c["aud"] = json!("someone-else");
        assert_eq!(check(&signer.sign(header.clone(), c)), Err(JwtError::Audience));
        let mut c = claims(now);
        c["iss"] = json!("https://evil.example");
        assert_eq!(check(&signer.sign(header.clone(), c)), Err(JwtError::Issuer));
        let mut c = claims(now);
        c.as_object_mut().unwrap().remove("sub");
        assert_eq!(
            check(&signer.sign(header.clone(), c)),
            Err(JwtError::Claim("sub".into()))
        );

        // alg=none and HS256 with the public key as secret are refused outright.
        let good = signer.sign(header.clone(), claims(now));
        let payload = good.split('.').nth(1).unwrap();
        let none = format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string())
        );
        assert_eq!(check(&none), Err(JwtError::Algorithm("none".into())));
        let hs = format!(
            "{}.{payload}.AAAA",
            URL_SAFE_NO_PAD.encode(json!({"alg": "HS256"}).to_string())
        );
        assert_eq!(check(&hs), Err(JwtError::Algorithm("HS256".into())));
        // A tampered payload breaks the signature.
        let mut c = claims(now);
        c["sub"] = json!("admin");
        let forged_payload = URL_SAFE_NO_PAD.encode(c.to_string());
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(check(&tampered), Err(JwtError::Signature));
        // Unknown key id, garbage.
        let other_kid = signer.sign(json!({"alg": "ES256", "kid": "k2"}), claims(now));
        assert_eq!(check(&other_kid), Err(JwtError::UnknownKey));
        for junk in ["", "a.b", "a.b.c.d", "!!.??.##"] {
            assert!(matches!(check(junk), Err(JwtError::Malformed(_))), "{junk}");
        }
    }

    /// The modulus and exponent of a PKCS#1 `RSAPublicKey` (SEQUENCE of two INTEGERs).
    fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
        fn read(input: &[u8]) -> (u8, &[u8], &[u8]) {
            let tag = input[0];
            let (len, header) = match input[1] {
                l if l < 0x80 => (l as usize, 2),
                0x81 => (input[2] as usize, 3),
                0x82 => (((input[2] as usize) << 8) | input[3] as usize, 4),
                _ => panic!("unexpected DER length"),
            };
            (tag, &input[header..header + len], &input[header + len..])
        }
        let (_, sequence, _) = read(der);
        let (_, n, rest) = read(sequence);
        let (_, e, _) = read(rest);
        let strip = |v: &[u8]| v.iter().skip_while(|&&b| b == 0).copied().collect::<Vec<u8>>();
        (strip(n), strip(e))
    }

    #[test]
    fn rs256_tokens_verify_with_a_key_generated_here() {
        use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
        let dir = std::env::temp_dir().join(format!("gw-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("key.der");
        let status = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-outform",
                "DER",
                "-out",
            ])
            .arg(&key)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is installed (.ci/run installs it)");
        assert!(status.success());
        // `genpkey -outform DER` writes the PKCS#1 RSAPrivateKey form.
        let pair = RsaKeyPair::from_der(&std::fs::read(&key).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        let (n, e) = rsa_components(pair.public().as_ref());
        let jwks = json!({"keys": [
            {"kty": "EC", "crv": "P-384", "kid": "ignored", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "r1", "n": URL_SAFE_NO_PAD.encode(&n), "e": URL_SAFE_NO_PAD.encode(&e)}
        ]});
        let keys = KeySet::from_json(&jwks.to_string()).unwrap();
        let now = 1_800_000_000;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "r1"}).to_string()),
            URL_SAFE_NO_PAD.encode(claims(now).to_string())
        );
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(verify(&token, &keys, &expect(), now).unwrap().user, "alice");
        // The same signature presented as ES256 must not pass.
        let parts: Vec<&str> = token.split('.').collect();
        let confused = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": "r1"}).to_string()),
            parts[1],
            parts[2]
        );
        assert!(verify(&confused, &keys, &expect(), now).is_err());
    }
}
