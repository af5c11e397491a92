//! Accounts and sessions: `/accounts`, `/sessions`, `/me`.

use crate::api::auth::{AuthUser, SESSION_COOKIE};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::twofa::{CodeRequest, TwoFactorRequiredBody, factor};
use crate::services::accounts::{self, Account, LoginOutcome, Registration, SessionInfo};
use crate::services::ratelimit::Action;
use crate::services::twofa::{self, Method};
use crate::state::AppState;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header::USER_AGENT;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

/// `POST /accounts` body.
#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// E-mail address (stored trimmed and lowercased).
    pub email: String,
    /// 8–128 characters, not common or easy to guess.
    pub password: String,
    /// Public handle: 3–32 of `a-z0-9._-` (stored lowercased).
    pub ms_id: String,
    /// 1–64 characters.
    pub display_name: String,
}

/// A created account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountCreated {
    /// Internal id.
    pub user_id: i64,
    /// Normalized e-mail address.
    pub email: String,
    /// Normalized ms_id.
    pub ms_id: String,
    /// Display name.
    pub display_name: String,
}

/// `POST /sessions` body.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// E-mail address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// A new session. The token also comes as the HttpOnly `securechat_session` cookie.
#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Session token, for `Authorization: Bearer …`.
    pub token: String,
    /// Send as `X-CSRF-Token` on cookie-authenticated writes.
    pub csrf_token: String,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// The account.
    pub user_id: i64,
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Session id (for `DELETE /sessions/{id}`).
    pub id: i64,
    /// Created, Unix seconds.
    pub created_at: i64,
    /// Last used, Unix seconds (updated at most once a minute).
    pub last_used_at: i64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// `User-Agent` at login.
    pub user_agent: Option<String>,
    /// Whether it is the session of this request.
    pub current: bool,
}

impl From<SessionInfo> for SessionView {
    fn from(s: SessionInfo) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent,
            current: s.current,
        }
    }
}

/// The caller's account.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// Internal id.
    pub user_id: i64,
    /// E-mail address.
    pub email: String,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// Public handle.
    pub ms_id: String,
    /// Display name.
    pub display_name: String,
    /// TOTP second factor on.
    pub totp_enabled: bool,
    /// E-mail second factor on.
    pub email_2fa_enabled: bool,
    /// Unused recovery codes.
    pub recovery_codes_remaining: i64,
}

impl From<Account> for MeResponse {
    fn from(a: Account) -> Self {
        Self {
            user_id: a.user_id,
            email: a.email,
            email_verified: a.email_verified,
            ms_id: a.ms_id,
            display_name: a.display_name,
            totp_enabled: a.totp_enabled,
            email_2fa_enabled: a.email_2fa_enabled,
            recovery_codes_remaining: a.recovery_codes_remaining,
        }
    }
}

/// `DELETE /me` body.
#[derive(Deserialize, ToSchema)]
pub struct DeleteAccountRequest {
    /// Current password.
    pub password: String,
    /// With 2FA on: `totp`, `email` or `recovery` (inferred from the code when absent).
    pub method: Option<Method>,
    /// With 2FA on: a current code (an e-mail code comes from `POST /me/2fa/email/send`).
    pub code: Option<String>,
}

/// `PUT /me/password` body.
#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    /// Current password.
    pub password: String,
    /// New password (same rules as at registration).
    pub new_password: String,
    /// With 2FA on: `totp`, `email` or `recovery` (inferred from the code when absent).
    pub method: Option<Method>,
    /// With 2FA on: a current code.
    pub code: Option<String>,
}

/// `PUT /me/email` body.
#[derive(Deserialize, ToSchema)]
pub struct ChangeEmailRequest {
    /// Current password.
    pub password: String,
    /// New address (unverified until confirmed).
    pub new_email: String,
    /// With 2FA on: `totp`, `email` or `recovery` (inferred from the code when absent).
    pub method: Option<Method>,
    /// With 2FA on: a current code.
    pub code: Option<String>,
}

pub(crate) use crate::api::client_ip::client_ip;

pub(crate) fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(crate) fn session_cookie(state: &AppState, token: &str) -> Cookie<'static> {
    let hours = i64::try_from(state.config.session_ttl_hours).unwrap_or(i64::MAX / 3600);
    Cookie::build(SESSION_COOKIE, token.to_owned())
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies)
        .path("/")
        .max_age(CookieDuration::hours(hours))
        .finish()
}

fn removal_cookie(state: &AppState) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, "")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies)
        .path("/")
        .finish();
    cookie.make_removal();
    cookie
}

/// Register an account. An address that already has an account gets the same answer (with a
/// user id no account will ever have) and nothing is created: the address's owner is told by
/// mail instead, so the answer does not reveal who has an account.
#[utoipa::path(
    tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = AccountCreated),
        (status = 400, description = "invalid_json, invalid_email, invalid_ms_id, invalid_input, password_length, weak_password", body = ErrorBody),
        (status = 409, description = "ms_id_unavailable", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable: every password-hashing slot is busy; retry after `Retry-After`", body = ErrorBody),
    )
)]
#[post("/accounts")]
pub(crate) async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    state.limits.check_ip(Action::Register, client_ip(&req))?;
    let body = body.into_inner();
    let account = accounts::register(
        &state,
        Registration {
            email: body.email,
            password: Zeroizing::new(body.password),
            ms_id: body.ms_id,
            display_name: body.display_name,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(AccountCreated {
        user_id: account.user_id,
        email: account.email,
        ms_id: account.ms_id,
        display_name: account.display_name,
    }))
}

/// Sign in with e-mail and password.
#[utoipa::path(
    tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "signed in; also sets the `securechat_session` cookie", body = LoginResponse),
        (status = 400, description = "invalid_json", body = ErrorBody),
        (status = 401, description = "invalid_credentials (ErrorBody), or two_factor_required with a `challenge` to complete at `POST /sessions/2fa`", body = TwoFactorRequiredBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable: every password-hashing slot is busy; retry after `Retry-After`", body = ErrorBody),
    )
)]
#[post("/sessions")]
pub(crate) async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    state.limits.check_ip(Action::Login, client_ip(&req))?;
    state
        .limits
        .check_account(Action::Login, &accounts::login_key(&body.email))?;
    let outcome = accounts::login(
        &state,
        &body.email,
        Zeroizing::new(body.password),
        user_agent(&req),
    )
    .await?;
    match outcome {
        LoginOutcome::Session(session) => Ok(HttpResponse::Ok()
            .cookie(session_cookie(&state, &session.token))
            .json(LoginResponse {
                token: session.token.as_str().to_owned(),
                csrf_token: session.csrf_token,
                expires_at: session.expires_at,
                user_id: session.user_id,
            })),
        LoginOutcome::SecondFactorRequired(challenge) => {
            Ok(HttpResponse::Unauthorized().json(TwoFactorRequiredBody::from(challenge)))
        }
    }
}

/// List the caller's live sessions.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "sessions",
    responses((status = 200, body = Vec<SessionView>), (status = 401, body = ErrorBody)),
)]
#[get("/sessions")]
pub(crate) async fn list_sessions(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let list = accounts::list_sessions(&state, user.user_id, user.session_id).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(SessionView::from).collect::<Vec<_>>()))
}

/// Sign out (ends this session and clears the cookie).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "sessions",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, description = "csrf_failed", body = ErrorBody)),
)]
#[delete("/sessions/current")]
pub(crate) async fn logout(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    accounts::logout(&state, user.session_id).await?;
    Ok(HttpResponse::NoContent()
        .cookie(removal_cookie(&state))
        .finish())
}

/// Revoke one of the caller's sessions.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "sessions",
    params(("id" = i64, Path, description = "session id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
)]
#[delete("/sessions/{id}")]
pub(crate) async fn revoke_session(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    accounts::revoke_session(&state, user.user_id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's account.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "accounts",
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody)),
)]
#[get("/me")]
pub(crate) async fn me(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let account = accounts::me(&state, user.user_id).await?;
    Ok(HttpResponse::Ok().json(MeResponse::from(account)))
}

/// Delete the caller's account (needs the password) with its attachments and their files;
/// messages its devices sent that the relay accepted still reach their recipients.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "accounts",
    request_body = DeleteAccountRequest,
    responses(
        (status = 204),
        (status = 401, description = "unauthorized, invalid_credentials, two_factor_required, invalid_code, code_replayed, code_expired", body = ErrorBody),
        (status = 409, description = "two_factor_state: the method is not enabled", body = ErrorBody),
        (status = 429, description = "too_many_attempts, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable: every password-hashing slot is busy; retry after `Retry-After`", body = ErrorBody),
    ),
)]
#[delete("/me")]
pub(crate) async fn delete_me(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    accounts::delete_account(
        &state,
        user.user_id,
        client_ip(&req),
        Zeroizing::new(body.password),
        factor(body.method, body.code),
    )
    .await?;
    Ok(HttpResponse::NoContent()
        .cookie(removal_cookie(&state))
        .finish())
}

/// Change the password (needs the current one); signs out the other sessions and ends the
/// logins still waiting for a second factor.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "accounts",
    request_body = ChangePasswordRequest,
    responses(
        (status = 204),
        (status = 400, description = "password_length, weak_password", body = ErrorBody),
        (status = 401, description = "unauthorized, invalid_credentials, two_factor_required, invalid_code, code_replayed, code_expired", body = ErrorBody),
        (status = 409, description = "two_factor_state: the method is not enabled", body = ErrorBody),
        (status = 429, description = "too_many_attempts, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable: every password-hashing slot is busy; retry after `Retry-After`", body = ErrorBody),
    ),
)]
#[put("/me/password")]
pub(crate) async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    accounts::change_password(
        &state,
        user.user_id,
        user.session_id,
        client_ip(&req),
        Zeroizing::new(body.password),
        Zeroizing::new(body.new_password),
        factor(body.method, body.code),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ask to change the e-mail address (needs the password): a code goes to the new address, and
/// `POST /me/email/change/confirm` with it makes the change. The answer (the account, still
/// unchanged) is the same whether or not the new address has an account.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "accounts",
    request_body = ChangeEmailRequest,
    responses(
        (status = 202, description = "a code was mailed to the new address (or, if it has an account, a notice to its owner); the account is unchanged until the code is entered", body = MeResponse),
        (status = 400, description = "invalid_email", body = ErrorBody),
        (status = 401, description = "unauthorized, invalid_credentials, two_factor_required, invalid_code, code_replayed, code_expired", body = ErrorBody),
        (status = 409, description = "two_factor_state", body = ErrorBody),
        (status = 429, description = "too_many_attempts, rate_limited (password checks; e-mails: one a minute, 5 an hour)", body = ErrorBody),
        (status = 503, description = "unavailable: every password-hashing slot is busy, or the mail could not be sent; retry after `Retry-After`", body = ErrorBody),
    ),
)]
#[put("/me/email")]
pub(crate) async fn change_email(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<ChangeEmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let account = accounts::change_email(
        &state,
        user.user_id,
        client_ip(&req),
        Zeroizing::new(body.password),
        &body.new_email,
        factor(body.method, body.code),
    )
    .await?;
    Ok(HttpResponse::Accepted().json(MeResponse::from(account)))
}

/// Complete an e-mail address change with the code mailed to the new address; the address is
/// then verified, codes mailed before stop working and the old address is told.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "accounts",
    request_body = CodeRequest,
    responses(
        (status = 200, body = MeResponse),
        (status = 400, description = "invalid_json", body = ErrorBody),
        (status = 401, description = "unauthorized, invalid_code (also when no change is pending), code_replayed, code_expired", body = ErrorBody),
        (status = 409, description = "email_taken: the address got an account meanwhile", body = ErrorBody),
        (status = 429, description = "too_many_attempts, rate_limited", body = ErrorBody),
    ),
)]
#[post("/me/email/change/confirm")]
pub(crate) async fn confirm_email_change(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .limits
        .check_account(Action::TwoFactor, &user.user_id.to_string())?;
    twofa::confirm_email_change(&state, user.user_id, Zeroizing::new(body.into_inner().code))
        .await?;
    let account = accounts::me(&state, user.user_id).await?;
    Ok(HttpResponse::Ok().json(MeResponse::from(account)))
}
