//! Two-factor authentication: login challenges (`/sessions/2fa`), TOTP, e-mail codes,
//! recovery codes, address verification and the security-event log (`/me/...`).
//!
//! Every settings change needs the password and, when a second factor is already on, a
//! current code (`method` + `code`; an e-mail code for this comes from
//! `POST /me/2fa/email/send`).

use crate::api::accounts::{LoginResponse, client_ip, session_cookie, user_agent};
use crate::api::auth::AuthUser;
use crate::api::error::{ApiError, ErrorBody, ErrorCode};
use crate::services::accounts;
use crate::services::ratelimit::Action;
use crate::services::twofa::{self, Challenge, Method, SecondFactor};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

/// A second factor from optional request fields.
pub(crate) fn factor(method: Option<Method>, code: Option<String>) -> SecondFactor {
    SecondFactor {
        method,
        code: code.map(Zeroizing::new),
    }
}

/// 401 body of `POST /sessions` when the account has a second factor on (no `Debug`: it
/// carries the challenge token).
#[derive(Serialize, ToSchema)]
pub struct TwoFactorRequiredBody {
    /// Always `two_factor_required`.
    pub error: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// The challenge to send back to `POST /sessions/2fa` (valid 5 minutes, 5 tries).
    pub challenge: String,
    /// Methods that can complete it.
    pub methods: Vec<Method>,
    /// Expiry of the challenge, Unix seconds.
    pub expires_at: i64,
}

impl From<Challenge> for TwoFactorRequiredBody {
    fn from(c: Challenge) -> Self {
        Self {
            error: ErrorCode::TwoFactorRequired,
            message:
                "a second factor is required: complete the challenge at POST /api/v1/sessions/2fa"
                    .into(),
            challenge: c.token.as_str().to_owned(),
            methods: c.methods,
            expires_at: c.expires_at,
        }
    }
}

/// `POST /sessions/challenge/email` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChallengeEmailRequest {
    /// The challenge from `POST /sessions`.
    pub challenge: String,
}

/// `POST /sessions/2fa` body.
#[derive(Deserialize, ToSchema)]
pub struct ChallengeRequest {
    /// The challenge from `POST /sessions`.
    pub challenge: String,
    /// `totp`, `email` or `recovery`.
    pub method: Method,
    /// The code.
    pub code: String,
}

/// A password plus, when 2FA is on, a current code.
#[derive(Deserialize, ToSchema)]
pub struct ReauthRequest {
    /// Current password.
    pub password: String,
    /// With 2FA on: `totp`, `email` or `recovery` (inferred from the code when absent).
    pub method: Option<Method>,
    /// With 2FA on: a current code.
    pub code: Option<String>,
}

/// `POST /me/2fa/totp/activate` body.
#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    /// The code.
    pub code: String,
}

/// `POST /me/2fa/email/enable` body.
#[derive(Deserialize, ToSchema)]
pub struct EmailEnableRequest {
    /// Current password.
    pub password: String,
    /// The code just mailed by `POST /me/2fa/email/send` (proves the address receives mail).
    pub email_code: String,
    /// With TOTP on: `totp` or `recovery` (inferred when absent).
    pub method: Option<Method>,
    /// With TOTP on: a current TOTP or recovery code.
    pub code: Option<String>,
}

/// TOTP setup, shown once; confirm with `POST /me/2fa/totp/activate`.
#[derive(Serialize, ToSchema)]
pub struct TotpSetupResponse {
    /// The secret, base32 (for manual entry).
    pub secret: String,
    /// `otpauth://totp/…` URI (issuer, account = ms_id, SHA1, 6 digits, 30 s).
    pub otpauth_uri: String,
    /// QR code of the URI: PNG, base64, no `data:` prefix.
    pub qr_png_base64: String,
}

/// A second factor turned on.
#[derive(Serialize, ToSchema)]
pub struct ActivatedResponse {
    /// 10 single-use recovery codes, shown only now; `null` when recovery codes from an
    /// already-enabled factor stay valid.
    pub recovery_codes: Option<Vec<String>>,
}

/// Fresh recovery codes, shown only now.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// 10 single-use codes (`xxxxx-xxxxx`; case, dashes and spaces are ignored).
    pub recovery_codes: Vec<String>,
}

/// A security event.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEventView {
    /// Id.
    pub id: i64,
    /// `totp_enabled`, `totp_disabled`, `email_2fa_enabled`, `email_2fa_disabled`,
    /// `recovery_code_used`, `recovery_codes_regenerated`, `email_verified`, `email_changed`,
    /// `password_changed`, `device_added`.
    pub kind: String,
    /// When, Unix seconds.
    pub created_at: i64,
}

fn codes(list: Vec<Zeroizing<String>>) -> Vec<String> {
    list.iter().map(|c| c.as_str().to_owned()).collect()
}

/// Mail a login code for a challenge (accounts with e-mail 2FA on).
#[utoipa::path(
    tag = "two-factor",
    request_body = ChallengeEmailRequest,
    responses(
        (status = 204, description = "code sent (valid 10 minutes, 5 tries)"),
        (status = 400, description = "invalid_json", body = ErrorBody),
        (status = 401, description = "invalid_challenge", body = ErrorBody),
        (status = 409, description = "two_factor_state: e-mail codes are off", body = ErrorBody),
        (status = 429, description = "too_many_attempts; rate_limited (one code per 60 s) with Retry-After", body = ErrorBody),
        (status = 503, description = "unavailable: the mail could not be sent", body = ErrorBody),
    )
)]
#[post("/sessions/challenge/email")]
pub(crate) async fn challenge_email(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ChallengeEmailRequest>,
) -> Result<HttpResponse, ApiError> {
    state.limits.check_ip(Action::EmailSend, client_ip(&req))?;
    twofa::send_login_email(&state, &body.challenge).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Complete a login challenge with a second factor; answers like `POST /sessions`.
#[utoipa::path(
    tag = "two-factor",
    request_body = ChallengeRequest,
    responses(
        (status = 200, description = "signed in; also sets the `securechat_session` cookie", body = LoginResponse),
        (status = 400, description = "invalid_json", body = ErrorBody),
        (status = 401, description = "invalid_challenge, invalid_code, code_replayed, code_expired", body = ErrorBody),
        (status = 409, description = "two_factor_state: the method is not enabled", body = ErrorBody),
        (status = 429, description = "too_many_attempts (5 per challenge or per e-mail code), rate_limited", body = ErrorBody),
    )
)]
#[post("/sessions/2fa")]
pub(crate) async fn complete_challenge(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ChallengeRequest>,
) -> Result<HttpResponse, ApiError> {
    state.limits.check_ip(Action::TwoFactor, client_ip(&req))?;
    let body = body.into_inner();
    let user_id = twofa::complete_challenge(
        &state,
        &body.challenge,
        body.method,
        Zeroizing::new(body.code),
    )
    .await?;
    let session = accounts::create_session(&state, user_id, user_agent(&req)).await?;
    Ok(HttpResponse::Ok()
        .cookie(session_cookie(&state, &session.token))
        .json(LoginResponse {
            token: session.token.as_str().to_owned(),
            csrf_token: session.csrf_token,
            expires_at: session.expires_at,
            user_id: session.user_id,
        }))
}

/// Start TOTP setup: a new secret, its `otpauth://` URI and QR code (not active until
/// `POST /me/2fa/totp/activate`).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "two-factor",
    request_body = ReauthRequest,
    responses(
        (status = 200, body = TotpSetupResponse),
        (status = 401, description = "unauthorized, invalid_credentials, two_factor_required, invalid_code, code_replayed, code_expired", body = ErrorBody),
        (status = 409, description = "two_factor_state: TOTP already on", body = ErrorBody),
        (status = 429, description = "too_many_attempts, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable: every password-hashing slot is busy; retry after `Retry-After`", body = ErrorBody),
    )
)]
#[post("/me/2fa/totp/setup")]
pub(crate) async fn totp_setup(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<ReauthRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if twofa::totp_enabled(&state, user.user_id).await? {
        return Err(ApiError::new(
            ErrorCode::TwoFactorState,
            "TOTP is already on; turn it off first",
        ));
    }
    accounts::reauthenticate(
        &state,
        user.user_id,
        client_ip(&req),
        Zeroizing::new(body.password),
        factor(body.method, body.code),
    )
    .await?;
    let setup = twofa::totp_setup(&state, user.user_id).await?;
    Ok(HttpResponse::Ok().json(TotpSetupResponse {
        secret: setup.secret.as_str().to_owned(),
        otpauth_uri: setup.otpauth_uri.as_str().to_owned(),
        qr_png_base64: setup.qr_png_base64.as_str().to_owned(),
    }))
}

/// Turn TOTP on with a first code from the app; returns recovery codes once.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "two-factor",
    request_body = CodeRequest,
    responses(
        (status = 200, body = ActivatedResponse),
        (status = 401, description = "unauthorized, invalid_code", body = ErrorBody),
        (status = 409, description = "two_factor_state: no setup in progress, or already on", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
#[post("/me/2fa/totp/activate")]
pub(crate) async fn totp_activate(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .limits
        .check_account(Action::TwoFactor, &user.user_id.to_string())?;
    let recovery =
        twofa::totp_activate(&state, user.user_id, Zeroizing::new(body.into_inner().code)).await?;
    Ok(HttpResponse::Ok().json(ActivatedResponse {
        recovery_codes: recovery.map(codes),
    }))
}

/// Turn TOTP off (password and a current code).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "two-factor",
    request_body = ReauthRequest,
    responses(
        (status = 204),
        (status = 401, description = "unauthorized, invalid_credentials, two_factor_required, invalid_code, code_replayed, code_expired", body = ErrorBody),
        (status = 409, description = "two_factor_state: TOTP is off", body = ErrorBody),
        (status = 429, description = "too_many_attempts, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable: every password-hashing slot is busy; retry after `Retry-After`", body = ErrorBody),
    )
)]
#[post("/me/2fa/totp/disable")]
pub(crate) async fn totp_disable(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<ReauthRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if !twofa::totp_enabled(&state, user.user_id).await? {
        return Err(ApiError::new(ErrorCode::TwoFactorState, "TOTP is not on"));
    }
    accounts::reauthenticate(
        &state,
        user.user_id,
        client_ip(&req),
        Zeroizing::new(body.password),
        factor(body.method, body.code),
    )
    .await?;
    twofa::totp_disable(&state, user.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Mail a security code to the account's address: for sensitive changes (`method: email`)
/// and as `email_code` when turning e-mail codes on.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "two-factor",
    responses(
        (status = 204, description = "code sent (valid 10 minutes, 5 tries)"),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 429, description = "rate_limited (one code per 60 s) with Retry-After", body = ErrorBody),
        (status = 503, description = "unavailable: the mail could not be sent", body = ErrorBody),
    )
)]
#[post("/me/2fa/email/send")]
pub(crate) async fn email_send(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    state.limits.check_ip(Action::EmailSend, client_ip(&req))?;
    twofa::send_reauth_email(&state, user.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Turn e-mail codes on (verified address, password, a code just mailed, and with TOTP on a
/// TOTP or recovery code).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "two-factor",
    request_body = EmailEnableRequest,
    responses(
        (status = 200, body = ActivatedResponse),
        (status = 401, description = "unauthorized, invalid_credentials, two_factor_required, invalid_code, code_replayed, code_expired", body = ErrorBody),
        (status = 409, description = "two_factor_state: already on, or the address is not verified", body = ErrorBody),
        (status = 429, description = "too_many_attempts, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable: every password-hashing slot is busy; retry after `Retry-After`", body = ErrorBody),
    )
)]
#[post("/me/2fa/email/enable")]
pub(crate) async fn email_enable(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<EmailEnableRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    accounts::reauthenticate(
        &state,
        user.user_id,
        client_ip(&req),
        Zeroizing::new(body.password),
        factor(body.method, body.code),
    )
    .await?;
    let recovery =
        twofa::email_2fa_enable(&state, user.user_id, Zeroizing::new(body.email_code)).await?;
    Ok(HttpResponse::Ok().json(ActivatedResponse {
        recovery_codes: recovery.map(codes),
    }))
}

/// Turn e-mail codes off (password and a current code).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "two-factor",
    request_body = ReauthRequest,
    responses(
        (status = 204),
        (status = 401, description = "unauthorized, invalid_credentials, two_factor_required, invalid_code, code_replayed, code_expired", body = ErrorBody),
        (status = 409, description = "two_factor_state: e-mail codes are off", body = ErrorBody),
        (status = 429, description = "too_many_attempts, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable: every password-hashing slot is busy; retry after `Retry-After`", body = ErrorBody),
    )
)]
#[post("/me/2fa/email/disable")]
pub(crate) async fn email_disable(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<ReauthRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let account = accounts::me(&state, user.user_id).await?;
    if !account.email_2fa_enabled {
        return Err(ApiError::new(
            ErrorCode::TwoFactorState,
            "e-mail codes are not on",
        ));
    }
    accounts::reauthenticate(
        &state,
        user.user_id,
        client_ip(&req),
        Zeroizing::new(body.password),
        factor(body.method, body.code),
    )
    .await?;
    twofa::email_2fa_disable(&state, user.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replace the recovery codes (password and a current code); the old ones stop working.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "two-factor",
    request_body = ReauthRequest,
    responses(
        (status = 200, body = RecoveryCodesResponse),
        (status = 401, description = "unauthorized, invalid_credentials, two_factor_required, invalid_code, code_replayed, code_expired", body = ErrorBody),
        (status = 409, description = "two_factor_state: no second factor is on", body = ErrorBody),
        (status = 429, description = "too_many_attempts, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable: every password-hashing slot is busy; retry after `Retry-After`", body = ErrorBody),
    )
)]
#[post("/me/2fa/recovery/regenerate")]
pub(crate) async fn recovery_regenerate(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<ReauthRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if !twofa::any_enabled(&state, user.user_id).await? {
        return Err(ApiError::new(
            ErrorCode::TwoFactorState,
            "two-factor authentication is not on",
        ));
    }
    accounts::reauthenticate(
        &state,
        user.user_id,
        client_ip(&req),
        Zeroizing::new(body.password),
        factor(body.method, body.code),
    )
    .await?;
    let list = twofa::regenerate_recovery_codes(&state, user.user_id).await?;
    Ok(HttpResponse::Ok().json(RecoveryCodesResponse {
        recovery_codes: codes(list),
    }))
}

/// The account's security events, newest first.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "two-factor",
    responses((status = 200, body = Vec<SecurityEventView>), (status = 401, body = ErrorBody)),
)]
#[get("/me/security-events")]
pub(crate) async fn security_events(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let list = twofa::security_events(&state, user.user_id).await?;
    Ok(HttpResponse::Ok().json(
        list.into_iter()
            .map(|e| SecurityEventView {
                id: e.id,
                kind: e.kind,
                created_at: e.created_at,
            })
            .collect::<Vec<_>>(),
    ))
}

/// Mail a code that confirms the account's address.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "accounts",
    responses(
        (status = 204, description = "code sent (valid 10 minutes, 5 tries)"),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 409, description = "conflict: already verified", body = ErrorBody),
        (status = 429, description = "rate_limited (one code per 60 s) with Retry-After", body = ErrorBody),
        (status = 503, description = "unavailable: the mail could not be sent", body = ErrorBody),
    )
)]
#[post("/me/email/verify/send")]
pub(crate) async fn verify_email_send(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    state.limits.check_ip(Action::EmailSend, client_ip(&req))?;
    twofa::send_verify_email(&state, user.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Confirm the address with the mailed code.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "accounts",
    request_body = CodeRequest,
    responses(
        (status = 204),
        (status = 401, description = "unauthorized, invalid_code, code_replayed, code_expired", body = ErrorBody),
        (status = 409, description = "conflict: already verified", body = ErrorBody),
        (status = 429, description = "too_many_attempts, rate_limited", body = ErrorBody),
    )
)]
#[post("/me/email/verify/confirm")]
pub(crate) async fn verify_email_confirm(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .limits
        .check_account(Action::TwoFactor, &user.user_id.to_string())?;
    twofa::confirm_verify_email(&state, user.user_id, Zeroizing::new(body.into_inner().code))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
