//! Password rules and hashing: 8–128 characters, refused when zxcvbn scores it below 2, stored
//! as argon2id (m = 19 456 KiB, t = 2, p = 1; OWASP's minimum) in PHC string form. Hashing and
//! verification run on the blocking thread pool.

use crate::api::error::{ApiError, ErrorCode};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;

fn argon2() -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(19_456, 2, 1, None).map_err(ApiError::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the length rule (`password_length`).
pub fn check_length(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::PasswordLength,
            format!(
                "password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters long"
            ),
        ))
    }
}

/// Checks length, then strength with zxcvbn against the account's own details
/// (`weak_password` when the score is below 2).
pub fn check_new_password(password: &str, user_inputs: &[&str]) -> Result<(), ApiError> {
    check_length(password)?;
    let entropy = zxcvbn::zxcvbn(password, user_inputs);
    if entropy.score() < zxcvbn::Score::Two {
        return Err(ApiError::new(
            ErrorCode::WeakPassword,
            "password is too common or too easy to guess",
        ));
    }
    Ok(())
}

/// Hashes a password (argon2id, random salt) off the async workers.
pub async fn hash(password: Zeroizing<String>) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let hash = argon2()?
            .hash_password(password.as_bytes())
            .map_err(ApiError::internal)?;
        Ok::<_, ApiError>(hash.to_string())
    })
    .await
    .map_err(ApiError::internal)?
}

/// A hash of a random password with the production parameters, verified against when the
/// account does not exist so that a login for an unknown address costs the same time.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let mut secret = [0u8; 16];
            getrandom::fill(&mut secret).ok()?;
            argon2()
                .ok()?
                .hash_password(&secret)
                .ok()
                .map(|h| h.to_string())
        })
        .as_deref()
}

/// Verifies `password` against `stored` (or against a dummy hash when there is no account, so
/// both cases take the same time; the result is then always `false`).
pub async fn verify(password: Zeroizing<String>, stored: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let argon2 = argon2()?;
        match stored {
            Some(hash) => Ok(argon2.verify_password(password.as_bytes(), &*hash).is_ok()),
            None => {
                if let Some(dummy) = dummy_hash() {
                    let _ = argon2.verify_password(password.as_bytes(), dummy);
                }
                Ok(false)
            }
        }
    })
    .await
    .map_err(ApiError::internal)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_strength() {
        assert_eq!(
            check_length("1234567").unwrap_err().code,
            ErrorCode::PasswordLength
        );
        assert!(check_length("12345678").is_ok());
        assert!(check_length(&"é".repeat(128)).is_ok());
        assert!(check_length(&"é".repeat(129)).is_err());
        assert_eq!(
            check_new_password("password123", &[]).unwrap_err().code,
            ErrorCode::WeakPassword
        );
        assert_eq!(
            check_new_password("zq.wexrtomb", &["zq.wexrtomb"])
                .unwrap_err()
                .code,
            ErrorCode::WeakPassword
        );
        assert!(check_new_password("correct horse battery staple", &[]).is_ok());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash(Zeroizing::new("correct horse battery staple".into()))
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            verify(
                Zeroizing::new("correct horse battery staple".into()),
                Some(h.clone())
            )
            .await
            .unwrap()
        );
        assert!(
            !verify(Zeroizing::new("wrong".into()), Some(h))
                .await
                .unwrap()
        );
        assert!(!verify(Zeroizing::new("x".into()), None).await.unwrap());
    }
}
