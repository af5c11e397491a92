//! Password rules and hashing: 8–128 characters, refused when zxcvbn scores it below 2, stored
//! as argon2id (m = 19 456 KiB, t = 2, p = 1; OWASP's minimum) in PHC string form. Hashing and
//! verification run on the blocking thread pool, at most [`Passwords`]' number of them at once
//! in the whole process: each run holds 19 MiB and a core for tens of milliseconds, so
//! unbounded parallel password checks would exhaust memory and starve every other request.

use crate::api::error::{ApiError, ErrorCode};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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

/// The process-wide cap on concurrent argon2 runs: a caller waits at most `wait` for one of
/// `permits` slots, and at most `max_waiting` callers wait at once; anyone else gets
/// `503 unavailable` with `Retry-After` at once. No queue grows without bound.
#[derive(Debug)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    size: usize,
    wait: Duration,
    max_waiting: usize,
    waiting: AtomicUsize,
}

/// Counts a caller among the waiters while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn busy() -> ApiError {
    ApiError::unavailable(1, "too many password checks are running; retry in a moment")
}

impl Passwords {
    /// A cap of `permits` concurrent runs (at least 1), each caller waiting at most `wait`;
    /// up to 4 × `permits` callers may wait.
    #[must_use]
    pub fn new(permits: usize, wait: Duration) -> Self {
        let size = permits.max(1);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
            wait,
            max_waiting: size.saturating_mul(4),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The default cap: twice the available parallelism.
    #[must_use]
    pub fn default_permits() -> usize {
        std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .saturating_mul(2)
    }

    /// How many runs may go on at once.
    #[must_use]
    pub fn permits(&self) -> usize {
        self.size
    }

    /// How many callers are waiting for a slot right now.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Takes a slot: at once, or after waiting at most the configured time; `503 unavailable`
    /// (with `Retry-After`) when none frees up in time or too many callers already wait.
    pub async fn permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.wait.is_zero() {
            return Err(busy());
        }
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        if before >= self.max_waiting {
            return Err(busy());
        }
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(ApiError::internal(closed)),
            Err(_elapsed) => Err(busy()),
        }
    }

    /// Hashes a password (argon2id, random salt) off the async workers, within the cap.
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, ApiError> {
        let permit = self.permit().await?;
        hash_unbounded(password, permit).await
    }

    /// Verifies `password` against `stored` (or against a dummy hash when there is no account,
    /// so both cases take the same time; the result is then always `false`), within the cap.
    pub async fn verify(
        &self,
        password: Zeroizing<String>,
        stored: Option<String>,
    ) -> Result<bool, ApiError> {
        let permit = self.permit().await?;
        verify_unbounded(password, stored, permit).await
    }
}

/// Hashes off the async workers; `permit` is held until the blocking run ends (also when the
/// request that asked for it is dropped meanwhile).
async fn hash_unbounded(
    password: Zeroizing<String>,
    permit: OwnedSemaphorePermit,
) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
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

async fn verify_unbounded(
    password: Zeroizing<String>,
    stored: Option<String>,
    permit: OwnedSemaphorePermit,
) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
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
        let p = Passwords::new(2, Duration::from_secs(60));
        let h = p
            .hash(Zeroizing::new("correct horse battery staple".into()))
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            p.verify(
                Zeroizing::new("correct horse battery staple".into()),
                Some(h.clone())
            )
            .await
            .unwrap()
        );
        assert!(
            !p.verify(Zeroizing::new("wrong".into()), Some(h))
                .await
                .unwrap()
        );
        assert!(!p.verify(Zeroizing::new("x".into()), None).await.unwrap());
    }

    /// While N runs hold the N slots, the (N+1)-th hash waits and goes ahead when one ends;
    /// with no wait allowed it is refused at once with 503 and `Retry-After`.
    #[tokio::test]
    async fn the_cap_holds_back_the_next_run() {
        const N: usize = 3;
        let p = Arc::new(Passwords::new(N, Duration::from_secs(600)));
        let mut running = Vec::new();
        for _ in 0..N {
            running.push(p.permit().await.unwrap());
        }
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move { p.hash(Zeroizing::new("a password".into())).await })
        };
        while p.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(
            !waiter.is_finished(),
            "the (N+1)-th run started while N ran"
        );
        assert_eq!(p.permits.available_permits(), 0);
        running.pop();
        let hash = waiter.await.unwrap().unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(p.waiting(), 0);

        // Without a wait: refused while all slots are taken, served once one is free.
        let p = Passwords::new(N, Duration::ZERO);
        let held: Vec<_> = {
            let mut v = Vec::new();
            for _ in 0..N {
                v.push(p.permit().await.unwrap());
            }
            v
        };
        let refused = p
            .verify(Zeroizing::new("x".into()), None)
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::Unavailable);
        assert_eq!(refused.retry_after, Some(1));
        drop(held);
        assert!(!p.verify(Zeroizing::new("x".into()), None).await.unwrap());
    }

    /// Beyond 4 × N waiting callers, the next one is refused at once instead of queueing.
    #[tokio::test]
    async fn the_waiting_line_is_bounded() {
        let p = Arc::new(Passwords::new(1, Duration::from_secs(600)));
        let held = p.permit().await.unwrap();
        let mut waiters = Vec::new();
        for _ in 0..4 {
            let p = p.clone();
            waiters.push(tokio::spawn(async move { p.permit().await.map(drop) }));
        }
        while p.waiting() < 4 {
            tokio::task::yield_now().await;
        }
        let refused = p.permit().await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::Unavailable);
        drop(held);
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        assert_eq!(p.waiting(), 0);
    }
}
