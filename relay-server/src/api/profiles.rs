//! ms_id profiles: `PUT /me/ms_id`, `GET /users/{ms_id}`, `GET /ms_ids/{ms_id}`.

use crate::api::accounts::MeResponse;
use crate::api::auth::AuthUser;
use crate::api::error::{ApiError, ErrorBody};
use crate::services::accounts;
use crate::services::profiles::{self, Profile};
use crate::services::ratelimit::Action;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, get, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::client_ip::client_ip;

/// Takes a token from the caller's per-IP and per-account buckets for `action`.
pub(crate) fn limit(
    state: &AppState,
    req: &HttpRequest,
    user: &AuthUser,
    action: Action,
) -> Result<(), ApiError> {
    state.limits.check_ip(action, client_ip(req))?;
    state
        .limits
        .check_account(action, &format!("user:{}", user.user_id))
}

/// `PUT /me/ms_id` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeMsIdRequest {
    /// The new ms_id: 3–32 of `a-z0-9._-` (stored lowercased), starting and ending with a
    /// letter or digit, no two of `._-` in a row.
    pub ms_id: String,
}

/// Whether an ms_id can be had.
#[derive(Debug, Serialize, ToSchema)]
pub struct MsIdAvailability {
    /// The ms_id as it would be stored (lowercase).
    pub ms_id: String,
    /// `false` when it is taken (in any case) or held back after its release.
    pub available: bool,
}

/// A public profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    /// User id (the id WebSocket frames name users by).
    pub user_id: i64,
    /// Public handle (lowercase).
    pub ms_id: String,
    /// Display name.
    pub display_name: String,
}

impl From<Profile> for ProfileView {
    fn from(p: Profile) -> Self {
        Self {
            user_id: p.user_id,
            ms_id: p.ms_id,
            display_name: p.display_name,
        }
    }
}

/// Change the caller's ms_id. The old one is held for the caller for 30 days (only they may
/// take it back meanwhile); friendships are unaffected. Limited to 3 edits a day per account
/// (only edits made count: a refused one or the current ms_id again is free) and 20 attempts
/// an hour per IP.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "profiles",
    request_body = ChangeMsIdRequest,
    responses(
        (status = 200, body = MeResponse),
        (status = 400, description = "invalid_json, invalid_ms_id", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 409, description = "ms_id_unavailable: taken, or held after its release", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
#[put("/me/ms_id")]
pub(crate) async fn change_ms_id(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<ChangeMsIdRequest>,
) -> Result<HttpResponse, ApiError> {
    // Every attempt counts per IP; only an edit that is made counts for the account.
    state.limits.check_ip(Action::MsIdEdit, client_ip(&req))?;
    profiles::change_ms_id(&state, user.user_id, &body.ms_id).await?;
    let account = accounts::me(&state, user.user_id).await?;
    Ok(HttpResponse::Ok().json(MeResponse::from(account)))
}

/// Look up a user's public profile (user id, ms_id, display name) by ms_id (case-insensitive).
/// A user who blocked the caller is `not_found`, like one that does not exist.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "profiles",
    params(("ms_id" = String, Path, description = "the ms_id, any case")),
    responses(
        (status = 200, body = ProfileView),
        (status = 400, description = "invalid_ms_id", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
#[get("/users/{ms_id}")]
pub(crate) async fn lookup(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    limit(&state, &req, &user, Action::Lookup)?;
    let profile = profiles::lookup(&state, user.user_id, &path).await?;
    Ok(HttpResponse::Ok().json(ProfileView::from(profile)))
}

/// Whether an ms_id is available for sign-up (no session needed): taken (in any case) or held
/// back after its release is `available: false`. Limited to 60 questions a minute per IP.
#[utoipa::path(
    tag = "profiles",
    params(("ms_id" = String, Path, description = "the wanted ms_id, any case")),
    responses(
        (status = 200, body = MsIdAvailability),
        (status = 400, description = "invalid_ms_id: breaks the rules for a new ms_id", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
#[get("/ms_ids/{ms_id}")]
pub(crate) async fn availability(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.limits.check_ip(Action::MsIdCheck, client_ip(&req))?;
    let (ms_id, available) = profiles::availability(&state, &path).await?;
    Ok(HttpResponse::Ok().json(MsIdAvailability { ms_id, available }))
}
