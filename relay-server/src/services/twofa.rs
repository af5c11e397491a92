//! Two-factor authentication: TOTP (RFC 6238 through totp-rs), e-mail codes, single-use
//! recovery codes, login challenges and the account's security-event log.
//!
//! Storage notes:
//! - The TOTP secret must be readable to check codes: `users.totp_secret` holds it sealed
//!   under the relay's secret key ([`crate::services::at_rest`]; a secret stored in the clear
//!   before that is still read). It is returned once, by setup, and never after activation. The matched time step is kept in `users.totp_last_step`; a
//!   code whose step is not newer is refused (`code_replayed`), so each code works once.
//! - E-mail codes (6 digits, OS CSPRNG), recovery codes and login challenges are stored only as
//!   SHA-256 hashes, domain-separated and bound to the user (and, for e-mail codes, to the
//!   purpose and the address the code was sent to).
//! - Failures update counters outside any rolled-back transaction, and every "use once" rule is
//!   a conditional `UPDATE` whose row count decides, so concurrent requests cannot both win.

use crate::api::error::{ApiError, ErrorCode};
use crate::db::DbConnection;
use crate::db::schema::{email_codes, login_challenges, recovery_codes, security_events, users};
use crate::services::ratelimit::Action;
use crate::services::{code_guard, tokens};
use crate::state::AppState;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use utoipa::ToSchema;
use zeroize::Zeroizing;

/// Life of a login challenge, in seconds.
pub const CHALLENGE_TTL: i64 = 300;
/// Wrong codes allowed per login challenge.
pub const CHALLENGE_MAX_ATTEMPTS: i32 = 5;
/// Life of an e-mail code, in seconds.
pub const EMAIL_CODE_TTL: i64 = 600;
/// Wrong tries allowed per e-mail code.
pub const EMAIL_CODE_MAX_ATTEMPTS: i32 = 5;
/// Minimum time between two e-mail codes for the same user and purpose, in seconds.
pub const EMAIL_RESEND_INTERVAL: i64 = 60;
/// Recovery codes issued at a time.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// TOTP parameters (authenticator-app defaults).
const TOTP_DIGITS: usize = 6;
const TOTP_STEP: u64 = 30;
const TOTP_SKEW: u16 = 1;
/// Recovery codes: 10 characters of this base32 alphabet (50 bits), shown as `xxxxx-xxxxx`.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const RECOVERY_LEN: usize = 10;

/// A second-factor method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A code from an authenticator app.
    Totp,
    /// A code sent by e-mail.
    Email,
    /// A single-use recovery code.
    Recovery,
}

/// Why an e-mail code is sent; codes of one purpose are useless for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Second factor at login.
    Login,
    /// Confirming the account's address.
    VerifyEmail,
    /// Confirming a sensitive change (and proving the address when turning e-mail 2FA on).
    Reauth,
    /// Confirming a new address through that address (the code is mailed there).
    ChangeEmail,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::VerifyEmail => "verify_email",
            Self::Reauth => "reauth",
            Self::ChangeEmail => "change_email",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Self::Login => "Your SecureChat sign-in code",
            Self::VerifyEmail => "Confirm your SecureChat e-mail address",
            Self::Reauth => "Your SecureChat security code",
            Self::ChangeEmail => "Confirm your new SecureChat e-mail address",
        }
    }
}

/// A second factor supplied with a request: the method (inferred when absent) and the code.
#[derive(Default)]
pub struct SecondFactor {
    /// `totp`, `email` or `recovery`; when absent, a code shaped like a recovery code is one,
    /// otherwise TOTP when it is on, else e-mail.
    pub method: Option<Method>,
    /// The code.
    pub code: Option<Zeroizing<String>>,
}

/// A new login challenge.
pub struct Challenge {
    /// The challenge token (only its SHA-256 is stored).
    pub token: Zeroizing<String>,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Methods the account can complete it with.
    pub methods: Vec<Method>,
}

/// The result of TOTP setup, shown once.
pub struct TotpSetup {
    /// The secret, base32.
    pub secret: Zeroizing<String>,
    /// `otpauth://totp/…` URI.
    pub otpauth_uri: Zeroizing<String>,
    /// QR code of the URI, PNG, base64 (no `data:` prefix).
    pub qr_png_base64: Zeroizing<String>,
}

/// A logged security event.
#[derive(Debug, Clone)]
pub struct SecurityEvent {
    /// Id.
    pub id: i64,
    /// Kind, e.g. `totp_enabled`, `recovery_code_used`.
    pub kind: String,
    /// When, Unix seconds.
    pub created_at: i64,
}

/// The 2FA-relevant part of a user row (no `Debug`: it holds the TOTP secret).
struct TwoFaRow {
    email: String,
    ms_id: String,
    email_verified: bool,
    totp_secret: Option<Zeroizing<String>>,
    totp_enabled: bool,
    email_2fa_enabled: bool,
}

impl TwoFaRow {
    fn any_enabled(&self) -> bool {
        self.totp_enabled || self.email_2fa_enabled
    }
}

type RawTwoFaRow = (String, String, bool, Option<String>, bool, bool);

fn load(conn: &mut DbConnection, user_id: i64) -> Result<TwoFaRow, ApiError> {
    let row: Option<RawTwoFaRow> = users::table
        .filter(users::id.eq(user_id))
        .select((
            users::email,
            users::ms_id,
            users::email_verified,
            users::totp_secret,
            users::totp_enabled,
            users::email_2fa_enabled,
        ))
        .first(conn)
        .optional()?;
    let (email, ms_id, email_verified, secret, totp_enabled, email_2fa_enabled) =
        row.ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "invalid or expired session"))?;
    Ok(TwoFaRow {
        email,
        ms_id,
        email_verified,
        totp_secret: secret.map(Zeroizing::new),
        totp_enabled,
        email_2fa_enabled,
    })
}

async fn load_async(state: &AppState, user_id: i64) -> Result<TwoFaRow, ApiError> {
    state.db.run(move |conn| load(conn, user_id)).await
}

fn invalid_code() -> ApiError {
    ApiError::new(ErrorCode::InvalidCode, "wrong two-factor code")
}

fn replayed() -> ApiError {
    ApiError::new(ErrorCode::CodeReplayed, "this code was already used")
}

fn state_error(message: &str) -> ApiError {
    ApiError::new(ErrorCode::TwoFactorState, message)
}

/// Whether an error is a failed code (counted toward the attempt limits).
fn is_code_failure(e: &ApiError) -> bool {
    matches!(
        e.code,
        ErrorCode::InvalidCode
            | ErrorCode::CodeReplayed
            | ErrorCode::CodeExpired
            | ErrorCode::TooManyAttempts
    )
}

/// Passes `result` on, keeping the account's count of failed codes
/// ([`code_guard`]): a wrong, replayed or expired code counts (and the failure that locks the
/// account answers with the lock instead); an accepted one forgets the failures.
async fn counting_failures<T>(
    state: &AppState,
    user_id: i64,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    match &result {
        Err(e) if is_code_failure(e) => {
            if let Some(lock) = code_guard::record_failure(state, user_id).await? {
                return Err(lock);
            }
        }
        Ok(_) => code_guard::record_success(state, user_id).await?,
        Err(_) => {}
    }
    result
}

/// Fresh recovery codes when the method just turned on is the account's first one, or when
/// none of the old ones are left; `None` keeps the codes the user already holds.
fn recovery_codes_on_enable(
    conn: &mut DbConnection,
    user_id: i64,
    other_method_on: bool,
) -> Result<Option<Vec<Zeroizing<String>>>, ApiError> {
    if other_method_on && remaining_recovery(conn, user_id)? > 0 {
        Ok(None)
    } else {
        Ok(Some(replace_recovery_codes(conn, user_id)?))
    }
}

/// Appends a security event.
pub fn log_event(
    conn: &mut DbConnection,
    user_id: i64,
    kind: &str,
    now: i64,
) -> Result<(), ApiError> {
    diesel::insert_into(security_events::table)
        .values((
            security_events::user_id.eq(user_id),
            security_events::kind.eq(kind),
            security_events::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

fn unix(now: i64) -> u64 {
    u64::try_from(now).unwrap_or(0)
}

// ---------------------------------------------------------------- TOTP

/// totp-rs errors can carry the otpauth URI, which holds the secret: log only their kind.
fn totp_error(e: totp_rs::TotpError) -> ApiError {
    use totp_rs::TotpError as E;
    let kind = match e {
        E::UrlTooLong { .. } => "URI too long for a QR code",
        E::InvalidAccountName { .. } | E::AccountNameNotSet => "invalid account name",
        E::InvalidIssuer { .. } => "invalid issuer",
        E::SecretTooShort { .. } | E::SecretNotSet | E::InvalidSecret => "invalid secret",
        _ => "other",
    };
    ApiError::internal(format_args!("TOTP: {kind}"))
}

fn totp(secret_b32: &str, account_name: &str, issuer: &str) -> Result<Totp, ApiError> {
    let bytes = Zeroizing::new(
        Secret::try_from_base32(secret_b32)
            .map_err(|_| ApiError::internal("stored TOTP secret is not base32"))?
            .as_bytes()
            .to_vec(),
    );
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(TOTP_SKEW)
        .with_step_duration(TOTP_STEP)
        .with_secret(bytes.to_vec())
        .with_issuer(Some(issuer))
        .with_account_name(account_name)
        .build()
        .map_err(totp_error)
}

/// A numeric code as typed, without the spaces apps show in the middle ("123 456").
fn digits_only(code: &str) -> Zeroizing<String> {
    Zeroizing::new(code.chars().filter(|c| !c.is_whitespace()).collect())
}

/// The time step a code matches (current step ±1), if any.
fn totp_step(secret_b32: &str, code: &str, now: i64) -> Result<Option<i64>, ApiError> {
    let code = digits_only(code);
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let t = totp(secret_b32, "x", "x")?;
    Ok(t.check(&code, unix(now))
        .and_then(|step| i64::try_from(step).ok()))
}

/// Checks a TOTP code of an account with TOTP on, and records its step (replay guard).
fn check_totp(
    conn: &mut DbConnection,
    user_id: i64,
    secret: &str,
    code: &str,
    now: i64,
) -> Result<(), ApiError> {
    let step = totp_step(secret, code, now)?.ok_or_else(invalid_code)?;
    let updated = diesel::update(
        users::table.filter(users::id.eq(user_id)).filter(
            users::totp_last_step
                .is_null()
                .or(users::totp_last_step.lt(step)),
        ),
    )
    .set(users::totp_last_step.eq(step))
    .execute(conn)?;
    if updated == 1 {
        Ok(())
    } else {
        Err(replayed())
    }
}

// ---------------------------------------------------------------- e-mail codes

fn email_code_hash(user_id: i64, purpose: Purpose, email: &str, code: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"SecureChat email code v1\0");
    h.update(user_id.to_be_bytes());
    h.update(purpose.as_str().as_bytes());
    h.update(b"\0");
    h.update(email.as_bytes());
    h.update(b"\0");
    h.update(code.as_bytes());
    h.finalize().to_vec()
}

/// Creates, stores (hashed) and mails a fresh 6-digit code for `purpose` to `email`.
async fn send_email_code(
    state: &AppState,
    user_id: i64,
    email: &str,
    purpose: Purpose,
) -> Result<(), ApiError> {
    let (id, code) = new_email_code(state, user_id, email, purpose, None).await?;
    let body = Zeroizing::new(format!(
        "Your {issuer} code is: {code}\n\nIt expires in {minutes} minutes and works once.\n\
         If you did not ask for it, someone may know your password: change it.\n",
        issuer = state.config.issuer,
        code = code.as_str(),
        minutes = EMAIL_CODE_TTL / 60,
    ));
    mail_code(state, id, email, purpose.subject(), &body).await
}

/// Creates and stores (hashed, bound to `email`) a fresh 6-digit code for `purpose`, and
/// returns its row id and the code. At most one per [`EMAIL_RESEND_INTERVAL`] per user and
/// purpose, then the account's hourly [`Action::EmailSend`] budget (`rate_limited` with
/// `Retry-After` either way); a new code replaces the previous one. Only a code that is made
/// takes from the budget: a request the throttle refuses costs nothing (issue #12 item 19).
/// `pending` is the new address of an address change.
async fn new_email_code(
    state: &AppState,
    user_id: i64,
    email: &str,
    purpose: Purpose,
    pending: Option<String>,
) -> Result<(i64, Zeroizing<String>), ApiError> {
    let code = tokens::numeric_code(6).map_err(ApiError::internal)?;
    let hash = email_code_hash(user_id, purpose, email, &code);
    let now = state.clock.now();
    let limits = state.limits.clone();
    let inserted = state
        .db
        .run(move |conn| {
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                let last: Option<i64> = email_codes::table
                    .filter(email_codes::user_id.eq(user_id))
                    .filter(email_codes::purpose.eq(purpose.as_str()))
                    .order(email_codes::created_at.desc())
                    .select(email_codes::created_at)
                    .first(conn)
                    .optional()?;
                if let Some(last) = last {
                    let wait = last.saturating_add(EMAIL_RESEND_INTERVAL) - now;
                    if wait > 0 {
                        return Err(ApiError::rate_limited(u64::try_from(wait).unwrap_or(1)));
                    }
                }
                limits.check_account(Action::EmailSend, &user_id.to_string())?;
                diesel::delete(
                    email_codes::table
                        .filter(email_codes::user_id.eq(user_id))
                        .filter(email_codes::purpose.eq(purpose.as_str())),
                )
                .execute(conn)?;
                let id = diesel::insert_into(email_codes::table)
                    .values((
                        email_codes::user_id.eq(user_id),
                        email_codes::purpose.eq(purpose.as_str()),
                        email_codes::code_hash.eq(&hash),
                        email_codes::expires_at.eq(now.saturating_add(EMAIL_CODE_TTL)),
                        email_codes::attempts.eq(0),
                        email_codes::consumed.eq(false),
                        email_codes::created_at.eq(now),
                        email_codes::address.eq(pending),
                    ))
                    .returning(email_codes::id)
                    .get_result::<i64>(conn)?;
                Ok(id)
            })
        })
        .await?;
    Ok((inserted, code))
}

/// Mails `body` (about the stored code `inserted`) to `to`. When the mail cannot be sent the
/// code is deleted, so that it does not block a retry, and the caller gets 503.
async fn mail_code(
    state: &AppState,
    inserted: i64,
    to: &str,
    subject: &str,
    body: &Zeroizing<String>,
) -> Result<(), ApiError> {
    if let Err(e) = state.mailer.send(to, subject, body.to_string()).await {
        tracing::error!(error = %e, subject, "sending an e-mail code failed");
        // Best effort: an undelivered code must not block a retry.
        let _ = state
            .db
            .run(move |conn| {
                diesel::delete(email_codes::table.filter(email_codes::id.eq(inserted)))
                    .execute(conn)
                    .map_err(ApiError::from)
            })
            .await;
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "the e-mail could not be sent; try again later",
        ));
    }
    Ok(())
}

type EmailCodeRow = (i64, Vec<u8>, i64, i32, bool);

/// Checks an e-mail code for `purpose`; the code is consumed on success.
fn check_email_code(
    conn: &mut DbConnection,
    user_id: i64,
    email: &str,
    purpose: Purpose,
    code: &str,
    now: i64,
) -> Result<(), ApiError> {
    let code = digits_only(code);
    let row: Option<EmailCodeRow> = email_codes::table
        .filter(email_codes::user_id.eq(user_id))
        .filter(email_codes::purpose.eq(purpose.as_str()))
        .order(email_codes::id.desc())
        .select((
            email_codes::id,
            email_codes::code_hash,
            email_codes::expires_at,
            email_codes::attempts,
            email_codes::consumed,
        ))
        .first(conn)
        .optional()?;
    let Some((id, stored, expires_at, attempts, consumed)) = row else {
        return Err(ApiError::new(
            ErrorCode::InvalidCode,
            "no code was sent; request one first",
        ));
    };
    let matches: bool = email_code_hash(user_id, purpose, email, &code)
        .ct_eq(&stored)
        .into();
    if consumed {
        return Err(if matches { replayed() } else { invalid_code() });
    }
    if expires_at <= now {
        return Err(ApiError::new(
            ErrorCode::CodeExpired,
            "this code expired; request a new one",
        ));
    }
    if attempts >= EMAIL_CODE_MAX_ATTEMPTS {
        return Err(too_many_code_attempts());
    }
    if !matches {
        diesel::update(email_codes::table.filter(email_codes::id.eq(id)))
            .set(email_codes::attempts.eq(email_codes::attempts + 1))
            .execute(conn)?;
        return Err(if attempts.saturating_add(1) >= EMAIL_CODE_MAX_ATTEMPTS {
            too_many_code_attempts()
        } else {
            invalid_code()
        });
    }
    let updated = diesel::update(
        email_codes::table
            .filter(email_codes::id.eq(id))
            .filter(email_codes::consumed.eq(false)),
    )
    .set(email_codes::consumed.eq(true))
    .execute(conn)?;
    if updated == 1 {
        Ok(())
    } else {
        Err(replayed())
    }
}

fn too_many_code_attempts() -> ApiError {
    ApiError::new(
        ErrorCode::TooManyAttempts,
        "too many wrong tries for this code; request a new one",
    )
}

// ---------------------------------------------------------------- recovery codes

fn normalize_recovery(code: &str) -> Option<Zeroizing<String>> {
    let s: Zeroizing<String> = Zeroizing::new(
        code.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    let ok = s.len() == RECOVERY_LEN && s.bytes().all(|b| RECOVERY_ALPHABET.contains(&b));
    ok.then_some(s)
}

fn looks_like_recovery(code: &str) -> bool {
    normalize_recovery(code).is_some() && !code.trim().bytes().all(|b| b.is_ascii_digit())
}

fn recovery_hash(user_id: i64, normalized: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"SecureChat recovery code v1\0");
    h.update(user_id.to_be_bytes());
    h.update(normalized.as_bytes());
    h.finalize().to_vec()
}

fn new_recovery_code() -> Result<Zeroizing<String>, ApiError> {
    let mut bytes = Zeroizing::new([0u8; 8]);
    getrandom::fill(bytes.as_mut_slice()).map_err(ApiError::internal)?;
    let mut v = u64::from_be_bytes(*bytes);
    let mut out = Zeroizing::new(String::with_capacity(RECOVERY_LEN + 1));
    for i in 0..RECOVERY_LEN {
        if i == RECOVERY_LEN / 2 {
            out.push('-');
        }
        let idx = usize::try_from(v & 31).map_err(ApiError::internal)?;
        let c = RECOVERY_ALPHABET
            .get(idx)
            .copied()
            .ok_or_else(|| ApiError::internal("recovery alphabet index"))?;
        out.push(char::from(c));
        v >>= 5;
    }
    zeroize::Zeroize::zeroize(&mut v);
    Ok(out)
}

/// Replaces the user's recovery codes by [`RECOVERY_CODE_COUNT`] fresh ones; returns them.
fn replace_recovery_codes(
    conn: &mut DbConnection,
    user_id: i64,
) -> Result<Vec<Zeroizing<String>>, ApiError> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    let mut codes = Vec::with_capacity(RECOVERY_CODE_COUNT);
    for _ in 0..RECOVERY_CODE_COUNT {
        let code = new_recovery_code()?;
        let normalized =
            normalize_recovery(&code).ok_or_else(|| ApiError::internal("recovery code format"))?;
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(recovery_hash(user_id, &normalized)),
            ))
            .execute(conn)?;
        codes.push(code);
    }
    Ok(codes)
}

fn check_recovery(
    conn: &mut DbConnection,
    user_id: i64,
    code: &str,
    now: i64,
) -> Result<(), ApiError> {
    let normalized = normalize_recovery(code).ok_or_else(invalid_code)?;
    let hash = recovery_hash(user_id, &normalized);
    let row: Option<(i64, Option<i64>)> = recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::code_hash.eq(&hash))
        .select((recovery_codes::id, recovery_codes::used_at))
        .first(conn)
        .optional()?;
    let Some((id, used_at)) = row else {
        return Err(invalid_code());
    };
    if used_at.is_some() {
        return Err(replayed());
    }
    let updated = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::id.eq(id))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(conn)?;
    if updated != 1 {
        return Err(replayed());
    }
    log_event(conn, user_id, "recovery_code_used", now)
}

fn remaining_recovery(conn: &mut DbConnection, user_id: i64) -> Result<i64, ApiError> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}

/// Unused recovery codes of the user.
pub async fn recovery_codes_remaining(state: &AppState, user_id: i64) -> Result<i64, ApiError> {
    state
        .db
        .run(move |conn| remaining_recovery(conn, user_id))
        .await
}

// ---------------------------------------------------------------- second factor

fn methods_of(
    conn: &mut DbConnection,
    user_id: i64,
    row: &TwoFaRow,
) -> Result<Vec<Method>, ApiError> {
    let mut methods = Vec::new();
    if row.totp_enabled {
        methods.push(Method::Totp);
    }
    if row.email_2fa_enabled {
        methods.push(Method::Email);
    }
    if row.any_enabled() && remaining_recovery(conn, user_id)? > 0 {
        methods.push(Method::Recovery);
    }
    Ok(methods)
}

/// Checks one code of an enabled method of the account (`Purpose::Login` or
/// `Purpose::Reauth` for e-mail codes). Failures count against the account ([`code_guard`]).
async fn verify_factor(
    state: &AppState,
    user_id: i64,
    factor: SecondFactor,
    email_purpose: Purpose,
) -> Result<Method, ApiError> {
    let now = state.clock.now();
    code_guard::check(state, user_id).await?;
    let Some(code) = factor.code else {
        return Err(ApiError::new(
            ErrorCode::TwoFactorRequired,
            "two-factor authentication is on: send a current code (`method`, `code`)",
        ));
    };
    let requested = factor.method;
    let key = state.at_rest.clone();
    let result = state
        .db
        .run(move |conn| {
            let row = load(conn, user_id)?;
            let method = match requested {
                Some(m) => m,
                None if looks_like_recovery(&code) => Method::Recovery,
                None if row.totp_enabled => Method::Totp,
                None => Method::Email,
            };
            match method {
                Method::Totp => {
                    let sealed = row
                        .totp_secret
                        .as_ref()
                        .filter(|_| row.totp_enabled)
                        .ok_or_else(|| state_error("TOTP is not enabled on this account"))?;
                    let secret = key.open_totp(user_id, sealed)?;
                    check_totp(conn, user_id, &secret, &code, now)?;
                }
                Method::Email => {
                    if !row.email_2fa_enabled {
                        return Err(state_error("e-mail codes are not enabled on this account"));
                    }
                    check_email_code(conn, user_id, &row.email, email_purpose, &code, now)?;
                }
                Method::Recovery => {
                    if !row.any_enabled() {
                        return Err(state_error(
                            "two-factor authentication is not enabled on this account",
                        ));
                    }
                    check_recovery(conn, user_id, &code, now)?;
                }
            }
            Ok(method)
        })
        .await;
    counting_failures(state, user_id, result).await
}

/// For sensitive changes: when the account has any second factor on, demands and checks a
/// current code (TOTP, e-mail code of purpose `reauth`, or recovery code). Without 2FA it
/// passes.
pub async fn require_second_factor(
    state: &AppState,
    user_id: i64,
    factor: SecondFactor,
) -> Result<(), ApiError> {
    let row = load_async(state, user_id).await?;
    if !row.any_enabled() {
        return Ok(());
    }
    verify_factor(state, user_id, factor, Purpose::Reauth).await?;
    Ok(())
}

// ---------------------------------------------------------------- login challenges

/// Opens a login challenge for an account with 2FA on (called after a correct password).
pub async fn start_challenge(state: &AppState, user_id: i64) -> Result<Challenge, ApiError> {
    let token = tokens::new_token().map_err(ApiError::internal)?;
    let hash = tokens::hash_token(&token);
    let now = state.clock.now();
    let expires_at = now.saturating_add(CHALLENGE_TTL);
    let methods = state
        .db
        .run(move |conn| {
            diesel::delete(
                login_challenges::table
                    .filter(login_challenges::user_id.eq(user_id))
                    .filter(login_challenges::expires_at.le(now)),
            )
            .execute(conn)?;
            diesel::insert_into(login_challenges::table)
                .values((
                    login_challenges::user_id.eq(user_id),
                    login_challenges::token_hash.eq(&hash),
                    login_challenges::expires_at.eq(expires_at),
                    login_challenges::attempts.eq(0),
                    login_challenges::created_at.eq(now),
                ))
                .execute(conn)?;
            let row = load(conn, user_id)?;
            methods_of(conn, user_id, &row)
        })
        .await?;
    Ok(Challenge {
        token,
        expires_at,
        methods,
    })
}

fn invalid_challenge() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidChallenge,
        "unknown or expired login challenge; sign in again",
    )
}

fn dead_challenge() -> ApiError {
    ApiError::new(
        ErrorCode::TooManyAttempts,
        "too many wrong codes for this login; sign in again",
    )
}

/// A live challenge: (id, user id).
async fn find_challenge(state: &AppState, token: &str) -> Result<(i64, i64), ApiError> {
    if !tokens::looks_like_token(token) {
        return Err(invalid_challenge());
    }
    let hash = tokens::hash_token(token);
    let now = state.clock.now();
    let row: Option<(i64, i64, i64, i32)> = state
        .db
        .run(move |conn| {
            Ok::<_, ApiError>(
                login_challenges::table
                    .filter(login_challenges::token_hash.eq(&hash))
                    .select((
                        login_challenges::id,
                        login_challenges::user_id,
                        login_challenges::expires_at,
                        login_challenges::attempts,
                    ))
                    .first(conn)
                    .optional()?,
            )
        })
        .await?;
    match row {
        Some((_, _, expires_at, _)) if expires_at <= now => Err(invalid_challenge()),
        Some((_, _, _, attempts)) if attempts >= CHALLENGE_MAX_ATTEMPTS => Err(dead_challenge()),
        Some((id, user_id, _, _)) => Ok((id, user_id)),
        None => Err(invalid_challenge()),
    }
}

/// Mails a login code for a live challenge (the account must have e-mail 2FA on).
pub async fn send_login_email(state: &AppState, challenge: &str) -> Result<(), ApiError> {
    let (_, user_id) = find_challenge(state, challenge).await?;
    let row = load_async(state, user_id).await?;
    if !row.email_2fa_enabled {
        return Err(state_error("e-mail codes are not enabled on this account"));
    }
    send_email_code(state, user_id, &row.email, Purpose::Login).await
}

/// Completes a login challenge with a code; on success the challenge is gone and the caller
/// creates the session. Returns the user id.
pub async fn complete_challenge(
    state: &AppState,
    challenge: &str,
    method: Method,
    code: Zeroizing<String>,
) -> Result<i64, ApiError> {
    let (id, user_id) = find_challenge(state, challenge).await?;
    state
        .limits
        .check_account(Action::TwoFactor, &user_id.to_string())?;
    let factor = SecondFactor {
        method: Some(method),
        code: Some(code),
    };
    match verify_factor(state, user_id, factor, Purpose::Login).await {
        Ok(_) => {
            let deleted = state
                .db
                .run(move |conn| {
                    Ok::<_, ApiError>(
                        diesel::delete(
                            login_challenges::table
                                .filter(login_challenges::id.eq(id))
                                .filter(login_challenges::attempts.lt(CHALLENGE_MAX_ATTEMPTS)),
                        )
                        .execute(conn)?,
                    )
                })
                .await?;
            if deleted == 1 {
                Ok(user_id)
            } else {
                Err(invalid_challenge())
            }
        }
        Err(e) if is_code_failure(&e) => {
            let attempts: i32 = state
                .db
                .run(move |conn| {
                    diesel::update(login_challenges::table.filter(login_challenges::id.eq(id)))
                        .set(login_challenges::attempts.eq(login_challenges::attempts + 1))
                        .execute(conn)?;
                    Ok::<_, ApiError>(
                        login_challenges::table
                            .filter(login_challenges::id.eq(id))
                            .select(login_challenges::attempts)
                            .first(conn)
                            .optional()?
                            .unwrap_or(CHALLENGE_MAX_ATTEMPTS),
                    )
                })
                .await?;
            if attempts >= CHALLENGE_MAX_ATTEMPTS {
                Err(dead_challenge())
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------- settings

/// Starts TOTP setup (the caller already checked password and second factor): stores a
/// fresh secret, not yet active, and returns it with its URI and QR code.
pub async fn totp_setup(state: &AppState, user_id: i64) -> Result<TotpSetup, ApiError> {
    let row = load_async(state, user_id).await?;
    if row.totp_enabled {
        return Err(state_error("TOTP is already on; turn it off first"));
    }
    let mut raw = Zeroizing::new([0u8; 20]);
    getrandom::fill(raw.as_mut_slice()).map_err(ApiError::internal)?;
    let secret = Zeroizing::new(Secret::from(raw.to_vec()).to_base32());
    let t = totp(&secret, &row.ms_id, &state.config.issuer)?;
    let otpauth_uri = Zeroizing::new(t.to_url().map_err(totp_error)?);
    let qr_png_base64 = Zeroizing::new(t.to_qr_base64().map_err(totp_error)?);
    let stored = state.at_rest.seal_totp(user_id, &secret)?;
    state
        .db
        .run(move |conn| {
            diesel::update(
                users::table
                    .filter(users::id.eq(user_id))
                    .filter(users::totp_enabled.eq(false)),
            )
            .set((
                users::totp_secret.eq(Some(stored.as_str())),
                users::totp_last_step.eq(None::<i64>),
            ))
            .execute(conn)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(TotpSetup {
        secret,
        otpauth_uri,
        qr_png_base64,
    })
}

/// Turns TOTP on with a first valid code. Returns fresh recovery codes when no other second
/// factor was on (otherwise the existing recovery codes stay valid and `None` is returned).
pub async fn totp_activate(
    state: &AppState,
    user_id: i64,
    code: Zeroizing<String>,
) -> Result<Option<Vec<Zeroizing<String>>>, ApiError> {
    let now = state.clock.now();
    code_guard::check(state, user_id).await?;
    let key = state.at_rest.clone();
    let result = state
        .db
        .run(move |conn| {
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                let row = load(conn, user_id)?;
                if row.totp_enabled {
                    return Err(state_error("TOTP is already on"));
                }
                let sealed = row
                    .totp_secret
                    .as_ref()
                    .ok_or_else(|| state_error("no TOTP setup in progress; call setup first"))?;
                let secret = key.open_totp(user_id, sealed)?;
                let step = totp_step(&secret, &code, now)?.ok_or_else(invalid_code)?;
                let updated = diesel::update(
                    users::table
                        .filter(users::id.eq(user_id))
                        .filter(users::totp_enabled.eq(false)),
                )
                .set((users::totp_enabled.eq(true), users::totp_last_step.eq(step)))
                .execute(conn)?;
                if updated != 1 {
                    return Err(state_error("TOTP is already on"));
                }
                log_event(conn, user_id, "totp_enabled", now)?;
                recovery_codes_on_enable(conn, user_id, row.email_2fa_enabled)
            })
        })
        .await;
    counting_failures(state, user_id, result).await
}

/// Turns TOTP off (the caller already checked password and second factor).
pub async fn totp_disable(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                let row = load(conn, user_id)?;
                if !row.totp_enabled {
                    return Err(state_error("TOTP is not on"));
                }
                diesel::update(users::table.filter(users::id.eq(user_id)))
                    .set((
                        users::totp_enabled.eq(false),
                        users::totp_secret.eq(None::<String>),
                        users::totp_last_step.eq(None::<i64>),
                    ))
                    .execute(conn)?;
                if !row.email_2fa_enabled {
                    diesel::delete(
                        recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)),
                    )
                    .execute(conn)?;
                }
                log_event(conn, user_id, "totp_disabled", now)
            })
        })
        .await
}

/// Whether the account has TOTP on (for handlers that must refuse early).
pub async fn totp_enabled(state: &AppState, user_id: i64) -> Result<bool, ApiError> {
    Ok(load_async(state, user_id).await?.totp_enabled)
}

/// Mails a `reauth` code to the account's address (for sensitive changes, and to prove the
/// address when turning e-mail 2FA on).
pub async fn send_reauth_email(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    let row = load_async(state, user_id).await?;
    send_email_code(state, user_id, &row.email, Purpose::Reauth).await
}

/// Turns e-mail 2FA on. The address must be verified, and `email_code` (a `reauth` code just
/// mailed to it) proves it still receives mail. The caller already checked the password and,
/// when TOTP is on, a TOTP or recovery code. Returns fresh recovery codes when no other second
/// factor was on.
pub async fn email_2fa_enable(
    state: &AppState,
    user_id: i64,
    email_code: Zeroizing<String>,
) -> Result<Option<Vec<Zeroizing<String>>>, ApiError> {
    let now = state.clock.now();
    code_guard::check(state, user_id).await?;
    let result = state
        .db
        .run(move |conn| {
            let row = load(conn, user_id)?;
            if row.email_2fa_enabled {
                return Err(state_error("e-mail codes are already on"));
            }
            if !row.email_verified {
                return Err(state_error(
                    "verify your e-mail address first (/me/email/verify/send)",
                ));
            }
            check_email_code(conn, user_id, &row.email, Purpose::Reauth, &email_code, now)?;
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                diesel::update(users::table.filter(users::id.eq(user_id)))
                    .set(users::email_2fa_enabled.eq(true))
                    .execute(conn)?;
                log_event(conn, user_id, "email_2fa_enabled", now)?;
                recovery_codes_on_enable(conn, user_id, row.totp_enabled)
            })
        })
        .await;
    counting_failures(state, user_id, result).await
}

/// Turns e-mail 2FA off (the caller already checked password and second factor).
pub async fn email_2fa_disable(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                let row = load(conn, user_id)?;
                if !row.email_2fa_enabled {
                    return Err(state_error("e-mail codes are not on"));
                }
                diesel::update(users::table.filter(users::id.eq(user_id)))
                    .set(users::email_2fa_enabled.eq(false))
                    .execute(conn)?;
                if !row.totp_enabled {
                    diesel::delete(
                        recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)),
                    )
                    .execute(conn)?;
                }
                log_event(conn, user_id, "email_2fa_disabled", now)
            })
        })
        .await
}

/// New recovery codes (the caller already checked password and second factor).
pub async fn regenerate_recovery_codes(
    state: &AppState,
    user_id: i64,
) -> Result<Vec<Zeroizing<String>>, ApiError> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                let row = load(conn, user_id)?;
                if !row.any_enabled() {
                    return Err(state_error("two-factor authentication is not on"));
                }
                let codes = replace_recovery_codes(conn, user_id)?;
                log_event(conn, user_id, "recovery_codes_regenerated", now)?;
                Ok(codes)
            })
        })
        .await
}

/// Whether any second factor is on.
pub async fn any_enabled(state: &AppState, user_id: i64) -> Result<bool, ApiError> {
    Ok(load_async(state, user_id).await?.any_enabled())
}

/// Mails a code to confirm the account's address (`conflict` when already verified).
pub async fn send_verify_email(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    let row = load_async(state, user_id).await?;
    if row.email_verified {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "this address is already verified",
        ));
    }
    send_email_code(state, user_id, &row.email, Purpose::VerifyEmail).await
}

/// Marks the address verified with a code from [`send_verify_email`].
pub async fn confirm_verify_email(
    state: &AppState,
    user_id: i64,
    code: Zeroizing<String>,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    code_guard::check(state, user_id).await?;
    let result = state
        .db
        .run(move |conn| {
            let row = load(conn, user_id)?;
            if row.email_verified {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    "this address is already verified",
                ));
            }
            check_email_code(conn, user_id, &row.email, Purpose::VerifyEmail, &code, now)?;
            diesel::update(
                users::table
                    .filter(users::id.eq(user_id))
                    .filter(users::email.eq(&row.email)),
            )
            .set(users::email_verified.eq(true))
            .execute(conn)?;
            log_event(conn, user_id, "email_verified", now)
        })
        .await;
    counting_failures(state, user_id, result).await
}

/// Starts moving the account to `new_email` (normalized; the caller checked the password and
/// second factor). A code bound to the new address is stored and mailed there; when another
/// account has that address its owner gets a notice instead, and the code, never sent, can
/// never confirm the change. The caller sees the same either way, so this does not tell
/// which addresses have accounts (issue #12 item 8). Limited like every e-mail code (one a
/// minute, 5 an hour per account).
pub async fn start_email_change(
    state: &AppState,
    user_id: i64,
    new_email: String,
) -> Result<(), ApiError> {
    let address = new_email.clone();
    let taken = state
        .db
        .run(move |conn| {
            let owner: Option<i64> = users::table
                .filter(users::email.eq(&address))
                .select(users::id)
                .first(conn)
                .optional()?;
            Ok::<_, ApiError>(owner.is_some_and(|o| o != user_id))
        })
        .await?;
    let (id, code) = new_email_code(
        state,
        user_id,
        &new_email,
        Purpose::ChangeEmail,
        Some(new_email.clone()),
    )
    .await?;
    let issuer = &state.config.issuer;
    let (subject, body) = if taken {
        (
            "Someone tried to move a SecureChat account to your address",
            Zeroizing::new(format!(
                "Someone asked to move an {issuer} account to this address, which already \
                 has an account. Nothing was changed, and nothing needs to be done.\n"
            )),
        )
    } else {
        (
            Purpose::ChangeEmail.subject(),
            Zeroizing::new(format!(
                "Your {issuer} code is: {code}\n\nEnter it to make this the e-mail address of \
                 your account. It expires in {minutes} minutes and works once.\n\
                 If you did not ask for it, ignore this mail: nothing changes without the \
                 code.\n",
                code = code.as_str(),
                minutes = EMAIL_CODE_TTL / 60,
            )),
        )
    };
    mail_code(state, id, &new_email, subject, &body).await
}

/// Completes an address change with the code mailed to the new address: it becomes the
/// account's address, verified; codes mailed before stop working; the old address is told.
/// `invalid_code` when no change is pending; `email_taken` when another account took the
/// address meanwhile. Returns the new address.
pub async fn confirm_email_change(
    state: &AppState,
    user_id: i64,
    code: Zeroizing<String>,
) -> Result<String, ApiError> {
    let now = state.clock.now();
    code_guard::check(state, user_id).await?;
    let result = state
        .db
        .run(move |conn| {
            let pending: Option<Option<String>> = email_codes::table
                .filter(email_codes::user_id.eq(user_id))
                .filter(email_codes::purpose.eq(Purpose::ChangeEmail.as_str()))
                .order(email_codes::id.desc())
                .select(email_codes::address)
                .first(conn)
                .optional()?;
            let Some(address) = pending.flatten() else {
                return Err(ApiError::new(
                    ErrorCode::InvalidCode,
                    "no address change is pending; ask for one first",
                ));
            };
            check_email_code(conn, user_id, &address, Purpose::ChangeEmail, &code, now)?;
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                let owner: Option<i64> = users::table
                    .filter(users::email.eq(&address))
                    .select(users::id)
                    .first(conn)
                    .optional()?;
                if owner.is_some_and(|o| o != user_id) {
                    return Err(ApiError::new(
                        ErrorCode::EmailTaken,
                        "this address got an account meanwhile",
                    ));
                }
                let old: String = users::table
                    .filter(users::id.eq(user_id))
                    .select(users::email)
                    .first(conn)?;
                diesel::update(users::table.filter(users::id.eq(user_id)))
                    .set((users::email.eq(&address), users::email_verified.eq(true)))
                    .execute(conn)
                    .map_err(|e| match e {
                        diesel::result::Error::DatabaseError(
                            diesel::result::DatabaseErrorKind::UniqueViolation,
                            _,
                        ) => ApiError::new(
                            ErrorCode::EmailTaken,
                            "this address got an account meanwhile",
                        ),
                        other => ApiError::from(other),
                    })?;
                // Codes mailed to the old address (or for other changes) stop working.
                diesel::delete(email_codes::table.filter(email_codes::user_id.eq(user_id)))
                    .execute(conn)?;
                log_event(conn, user_id, "email_changed", now)?;
                Ok((old, address))
            })
        })
        .await;
    let (old, address) = counting_failures(state, user_id, result).await?;
    if old != address {
        let body = format!(
            "The e-mail address of your {issuer} account was changed to:\n\n{address}\n\n\
             If you did not do this, sign in and change your password at once.\n",
            issuer = state.config.issuer,
        );
        if let Err(e) = state
            .mailer
            .send(&old, "Your SecureChat e-mail address was changed", body)
            .await
        {
            tracing::warn!(error = %e, "telling the old address of a change failed");
        }
    }
    Ok(address)
}

/// Deletes expired login challenges and e-mail codes (called periodically). E-mail codes are
/// kept one resend interval past their expiry so the resend throttle still sees them.
pub async fn prune_expired(state: &AppState) -> Result<usize, ApiError> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let challenges = diesel::delete(
                login_challenges::table.filter(login_challenges::expires_at.le(now)),
            )
            .execute(conn)?;
            let codes = diesel::delete(
                email_codes::table
                    .filter(email_codes::expires_at.le(now.saturating_sub(EMAIL_RESEND_INTERVAL))),
            )
            .execute(conn)?;
            Ok::<_, ApiError>(challenges.saturating_add(codes))
        })
        .await
}

/// The account's security events, newest first (at most 200).
pub async fn security_events(
    state: &AppState,
    user_id: i64,
) -> Result<Vec<SecurityEvent>, ApiError> {
    let rows: Vec<(i64, String, i64)> = state
        .db
        .run(move |conn| {
            Ok::<_, ApiError>(
                security_events::table
                    .filter(security_events::user_id.eq(user_id))
                    .order(security_events::id.desc())
                    .limit(200)
                    .select((
                        security_events::id,
                        security_events::kind,
                        security_events::created_at,
                    ))
                    .load(conn)?,
            )
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, kind, created_at)| SecurityEvent {
            id,
            kind,
            created_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_well_formed() {
        let a = new_recovery_code().unwrap();
        let b = new_recovery_code().unwrap();
        assert_ne!(*a, *b);
        assert_eq!(a.len(), 11);
        assert_eq!(a.as_bytes()[5], b'-');
        assert!(looks_like_recovery(&a));
        assert!(looks_like_recovery(&a.to_uppercase().replace('-', " ")));
        assert!(!looks_like_recovery("123456"));
        assert!(!looks_like_recovery("1234567890"));
    }

    #[test]
    fn totp_rfc6238_sha1_vector() {
        // RFC 6238 appendix B: secret "12345678901234567890", T = 59 -> 94287082 (8 digits);
        // its last 6 digits are the 6-digit code.
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        assert_eq!(totp_step(&secret, "287082", 59).unwrap(), Some(1));
        assert_eq!(totp_step(&secret, "287083", 59).unwrap(), None);
        assert_eq!(totp_step(&secret, "28708", 59).unwrap(), None);
    }
}
