//! API tokens: `gw_<id>_<secret>`.
//!
//! The id (8 random bytes, hex) is public and indexes the stored row; the secret (32 random
//! bytes, base64url) is shown once and stored only as its SHA-256. A plain hash is enough
//! because the secret has 256 bits of entropy (no dictionary to grind through, unlike a
//! password), and verification compares digests in constant time so response timing says
//! nothing about how much of a guess was right.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "gw_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The text is not shaped like a groundwork token (deliberately says nothing more).
    #[error("malformed API token")]
    Malformed,
    #[error("the system random number generator failed")]
    Random,
}

/// A freshly generated token: `text` goes to the user once, the rest to the store.
#[derive(Clone)]
pub struct IssuedToken {
    pub id: String,
    pub text: String,
    pub secret_sha256: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret, even in debug output.
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A token split into its public id and its secret part.
pub struct PresentedToken<'a> {
    pub id: &'a str,
    secret: &'a str,
}

/// 32 bytes from the system's random number generator, for keys the home keeps (the key of the
/// hash mask on table columns).
pub fn random_key() -> Result<[u8; 32], TokenError> {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| TokenError::Random)?;
    Ok(key)
}

pub fn generate() -> Result<IssuedToken, TokenError> {
    let rng = SystemRandom::new();
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill(&mut id).map_err(|_| TokenError::Random)?;
    rng.fill(&mut secret).map_err(|_| TokenError::Random)?;
    let id = hex::encode(id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    Ok(IssuedToken {
        text: format!("{PREFIX}{id}_{secret}"),
        secret_sha256: hash_secret(&secret),
        id,
    })
}

/// Splits a presented token; anything not of the exact shape is `Malformed`.
pub fn parse(text: &str) -> Result<PresentedToken<'_>, TokenError> {
    let rest = text.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let (id, secret) = rest.split_once('_').ok_or(TokenError::Malformed)?;
    let id_ok = id.len() == ID_BYTES * 2
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let secret_ok = URL_SAFE_NO_PAD
        .decode(secret)
        .is_ok_and(|bytes| bytes.len() == SECRET_BYTES);
    if id_ok && secret_ok {
        Ok(PresentedToken { id, secret })
    } else {
        Err(TokenError::Malformed)
    }
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl PresentedToken<'_> {
    /// Whether the secret matches the stored hash; constant time in the compared bytes.
    pub fn matches(&self, stored_sha256: &str) -> bool {
        let presented = Sha256::digest(self.secret.as_bytes());
        let Ok(stored) = hex::decode(stored_sha256) else {
            return false;
        };
        stored.len() == presented.len() && bool::from(presented.as_slice().ct_eq(&stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.text, b.text);
        assert_ne!(a.id, b.id);
        let presented = parse(&a.text).unwrap();
        assert_eq!(presented.id, a.id);
        assert!(presented.matches(&a.secret_sha256));
        assert!(!presented.matches(&b.secret_sha256));
        assert!(!presented.matches("not hex"));
        assert!(!format!("{a:?}").contains(&a.text[20..]));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = generate().unwrap().text;
        let flipped = format!("{}A", &good[..good.len() - 1]);
        for bad in [
            "",
            "gw_",
            "Bearer x",
            &good[..good.len() - 1],
            &format!("{good}x"),
            &good.replace("gw_", "gx_"),
            &good.to_uppercase(),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // Well-formed but wrong secret: parses, does not match.
        let issued = generate().unwrap();
        if let Ok(p) = parse(&flipped) {
            assert!(!p.matches(&issued.secret_sha256));
        }
    }
}
