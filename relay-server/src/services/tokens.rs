//! Secret tokens (session tokens, login challenges, recovery codes): 256 bits from the OS
//! CSPRNG, shown to the client once, stored only as a SHA-256 hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A fresh 256-bit token, base64url without padding (43 characters).
pub fn new_token() -> Result<Zeroizing<String>, getrandom::Error> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut_slice())?;
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_slice())))
}

/// The stored form of a token.
#[must_use]
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The CSRF token that goes with a session token: cookie-authenticated writes must echo it in
/// the `X-CSRF-Token` header. Derived from the secret session token, so a cross-site attacker
/// cannot compute it, and the relay need not store it.
#[must_use]
pub fn csrf_token(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"SecureChat relay csrf v1");
    h.update(session_token.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Whether a string could be a token (cheap check before hashing and a database lookup).
#[must_use]
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A random numeric code of `digits` digits (e-mail codes), uniformly distributed.
pub fn numeric_code(digits: u32) -> Result<Zeroizing<String>, getrandom::Error> {
    let modulus = 10u64.pow(digits);
    // Rejection sampling avoids modulo bias.
    let limit = u64::MAX - (u64::MAX % modulus);
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)?;
        let v = u64::from_be_bytes(bytes);
        if v < limit {
            return Ok(Zeroizing::new(format!(
                "{:0width$}",
                v % modulus,
                width = digits as usize
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(*a, *b);
        assert!(looks_like_token(&a));
        assert!(!looks_like_token("short"));
        assert_eq!(hash_token(&a).len(), 32);
        assert_ne!(csrf_token(&a), csrf_token(&b));
        let code = numeric_code(6).unwrap();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|c| c.is_ascii_digit()));
    }
}
