//! The account-wide guard on second-factor codes (issue #12 item 7): someone who knows the
//! password must not be able to guess a 6-digit code by trying long enough.
//!
//! Every wrong, replayed or expired code (TOTP, e-mail or recovery; at login, for a sensitive
//! change, or when turning a method on) counts against the account. The first
//! [`FREE_FAILURES`] cost nothing (typos, a phone's clock); from then on each further try
//! waits [`backoff`] seconds after the last failure, doubling up to an hour (`429
//! rate_limited` with `Retry-After`). The [`LOCK_THRESHOLD`]th failure locks codes for
//! [`LOCK_SECONDS`] (`429 too_many_attempts` with `Retry-After`), logs a security event and
//! mails the owner, whose password is known to someone. An accepted code forgets the
//! failures, and so does a day without one.
//!
//! The counters are columns of `users`, changed by single `UPDATE`s, so a restarted relay and
//! every relay sharing PostgreSQL apply the same rule; exactly one failure (the one whose
//! increment reaches the threshold) locks and mails. At about 20 tries per 29 hours (back-off
//! plus lock) and a 3-in-a-million chance each (±1 time step), guessing a TOTP code takes
//! decades on average, against weeks with the former 100 failures an hour.

use crate::api::error::{ApiError, ErrorCode};
use crate::db::DbConnection;
use crate::db::schema::users;
use crate::services::twofa;
use crate::state::AppState;
use diesel::prelude::*;

/// Failures that cost no wait.
pub const FREE_FAILURES: i32 = 5;
/// The failure that locks codes.
pub const LOCK_THRESHOLD: i32 = 20;
/// How long codes stay locked, in seconds (a day); failures older than this are forgotten.
pub const LOCK_SECONDS: i64 = 86_400;
/// The longest back-off between two tries, in seconds.
const MAX_BACKOFF: i64 = 3600;

/// Seconds a try must wait after the last of `failures` failures: none for the first
/// [`FREE_FAILURES`] − 1, then 2, 4, 8 … up to [`MAX_BACKOFF`].
#[must_use]
pub fn backoff(failures: i32) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let exponent = u32::try_from(failures - FREE_FAILURES + 1).unwrap_or(u32::MAX);
    2i64.checked_pow(exponent)
        .map_or(MAX_BACKOFF, |w| w.min(MAX_BACKOFF))
}

/// The guard's columns of one account.
#[derive(Debug, Clone, Copy, Queryable)]
struct Guard {
    failures: i32,
    failed_at: Option<i64>,
    locked_until: Option<i64>,
}

impl Guard {
    /// The failures that still count at `now` (a day without one forgets them).
    fn live_failures(&self, now: i64) -> i32 {
        match self.failed_at {
            Some(at) if at > now.saturating_sub(LOCK_SECONDS) => self.failures,
            _ => 0,
        }
    }

    /// Why a try at `now` is refused, if it is.
    fn refusal(&self, now: i64) -> Option<ApiError> {
        if let Some(until) = self.locked_until
            && until > now
        {
            return Some(locked(until - now));
        }
        let at = self.failed_at?;
        let wait_until = at.saturating_add(backoff(self.live_failures(now)));
        (wait_until > now).then(|| ApiError::rate_limited(seconds(wait_until - now)))
    }
}

fn seconds(s: i64) -> u64 {
    u64::try_from(s).unwrap_or(1)
}

fn locked(remaining: i64) -> ApiError {
    ApiError {
        retry_after: Some(seconds(remaining).max(1)),
        ..ApiError::new(
            ErrorCode::TooManyAttempts,
            "too many wrong codes for this account: codes are refused for a day, and the \
             owner was told by e-mail",
        )
    }
}

fn load(conn: &mut DbConnection, user_id: i64) -> Result<Guard, ApiError> {
    users::table
        .filter(users::id.eq(user_id))
        .select((
            users::second_factor_failures,
            users::second_factor_failed_at,
            users::second_factor_locked_until,
        ))
        .first::<Guard>(conn)
        .optional()?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "invalid or expired session"))
}

/// Refuses a code try while the account is locked (`429 too_many_attempts`) or backing off
/// (`429 rate_limited`), both with `Retry-After`. Call before looking at the code.
pub async fn check(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    if state.limits.disabled() {
        return Ok(());
    }
    let now = state.clock.now();
    let guard = state.db.run(move |conn| load(conn, user_id)).await?;
    guard.refusal(now).map_or(Ok(()), Err)
}

/// Counts a failed code. Returns the lock error when this failure locked the account (its
/// owner has then been mailed).
pub async fn record_failure(state: &AppState, user_id: i64) -> Result<Option<ApiError>, ApiError> {
    if state.limits.disabled() {
        return Ok(None);
    }
    let now = state.clock.now();
    let locked_now =
        state
            .db
            .run(move |conn| {
                crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                    let mine = users::table.filter(users::id.eq(user_id));
                    // Failures a day old are forgotten before this one is counted.
                    diesel::update(mine.filter(
                        users::second_factor_failed_at.le(now.saturating_sub(LOCK_SECONDS)),
                    ))
                    .set(users::second_factor_failures.eq(0))
                    .execute(conn)?;
                    diesel::update(mine)
                        .set((
                            users::second_factor_failures.eq(users::second_factor_failures + 1),
                            users::second_factor_failed_at.eq(Some(now)),
                        ))
                        .execute(conn)?;
                    let failures = load(conn, user_id)?.failures;
                    if failures != LOCK_THRESHOLD {
                        return Ok(None);
                    }
                    diesel::update(mine)
                        .set(
                            users::second_factor_locked_until
                                .eq(Some(now.saturating_add(LOCK_SECONDS))),
                        )
                        .execute(conn)?;
                    twofa::log_event(conn, user_id, "second_factor_locked", now)?;
                    let address: String = mine.select(users::email).first(conn)?;
                    Ok(Some(address))
                })
            })
            .await?;
    let Some(address) = locked_now else {
        return Ok(None);
    };
    tell_owner(state, &address).await;
    Ok(Some(locked(LOCK_SECONDS)))
}

/// An accepted code forgets the account's failures.
pub async fn record_success(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    if state.limits.disabled() {
        return Ok(());
    }
    state
        .db
        .run(move |conn| {
            diesel::update(
                users::table
                    .filter(users::id.eq(user_id))
                    .filter(users::second_factor_failures.gt(0)),
            )
            .set((
                users::second_factor_failures.eq(0),
                users::second_factor_failed_at.eq(None::<i64>),
            ))
            .execute(conn)?;
            Ok::<_, ApiError>(())
        })
        .await
}

/// Mails the owner that codes are locked (best effort: the lock holds either way).
async fn tell_owner(state: &AppState, address: &str) {
    let body = format!(
        "{LOCK_THRESHOLD} wrong two-factor codes were entered for your {issuer} account. \
         Whoever entered them knows your password.\n\n\
         Signing in and sensitive changes with a code are locked for the next 24 hours; \
         sessions already signed in keep working.\n\n\
         Change your password as soon as the lock ends, and check your sessions and \
         security events.\n",
        issuer = state.config.issuer,
    );
    if let Err(e) = state
        .mailer
        .send(address, "Your SecureChat two-factor codes are locked", body)
        .await
    {
        tracing::error!(error = %e, "mailing the owner of a locked account failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_after_the_free_failures_up_to_an_hour() {
        let waits: Vec<i64> = (0..=20).map(backoff).collect();
        assert_eq!(&waits[..8], &[0, 0, 0, 0, 0, 2, 4, 8]);
        assert_eq!(waits[15], 2048);
        assert_eq!(waits[16], 3600);
        assert_eq!(waits[20], 3600);
        assert_eq!(backoff(i32::MAX), 3600);
    }

    #[test]
    fn old_failures_are_forgotten_and_locks_end() {
        let g = Guard {
            failures: 12,
            failed_at: Some(1000),
            locked_until: None,
        };
        assert_eq!(g.live_failures(1000 + LOCK_SECONDS - 1), 12);
        assert_eq!(g.live_failures(1000 + LOCK_SECONDS), 0);
        assert!(g.refusal(1001).is_some());
        assert!(g.refusal(1000 + MAX_BACKOFF).is_none());
        let l = Guard {
            locked_until: Some(5000),
            ..g
        };
        let e = l.refusal(4000).map(|e| (e.code, e.retry_after));
        assert_eq!(e, Some((ErrorCode::TooManyAttempts, Some(1000))));
    }
}
