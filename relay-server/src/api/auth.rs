//! The signed-in user as an extractor: a session token from `Authorization: Bearer …` or,
//! for the web app, the HttpOnly `securechat_session` cookie. Cookie-authenticated writes must
//! carry the matching `X-CSRF-Token` header.

use crate::api::error::{ApiError, ErrorCode};
use crate::db::schema::sessions;
use crate::services::tokens;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, web};
use diesel::prelude::*;
use std::future::Future;
use std::pin::Pin;
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "securechat_session";
/// Header carrying the CSRF token on cookie-authenticated writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// Internal user id.
    pub user_id: i64,
    /// The session used.
    pub session_id: i64,
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// The token a request carries, and whether it came from the cookie.
fn request_token(req: &HttpRequest) -> Result<(String, bool), ApiError> {
    if let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| unauthorized("malformed Authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| unauthorized("expected Authorization: Bearer <token>"))?;
        return Ok((token.trim().to_owned(), false));
    }
    match req.cookie(SESSION_COOKIE) {
        Some(cookie) => Ok((cookie.value().to_owned(), true)),
        None => Err(unauthorized("sign in first")),
    }
}

fn check_csrf(req: &HttpRequest, token: &str) -> Result<(), ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let expected = tokens::csrf_token(token);
    let given = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::CsrfFailed,
            "missing or wrong X-CSRF-Token header",
        ))
    }
}

/// How stale a session's `last_used_at` may be before a request rewrites it.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

/// Looks up a live session by token; returns (session id, user id).
pub async fn session_for_token(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    if !tokens::looks_like_token(token) {
        return Err(unauthorized("invalid or expired session"));
    }
    let hash = tokens::hash_token(token);
    let now = state.clock.now();
    let found = state
        .db
        .run(move |conn| {
            let row: Option<(i64, i64, i64)> = sessions::table
                .filter(sessions::token_hash.eq(&hash))
                .filter(sessions::expires_at.gt(now))
                .select((sessions::id, sessions::user_id, sessions::last_used_at))
                .first(conn)
                .optional()?;
            // At most one write a minute per session: most requests only read.
            if let Some((id, _, last_used)) = row
                && now.saturating_sub(last_used) >= LAST_USED_GRANULARITY_SECS
            {
                diesel::update(sessions::table.filter(sessions::id.eq(id)))
                    .set(sessions::last_used_at.eq(now))
                    .execute(conn)?;
            }
            Ok::<_, ApiError>(row.map(|(id, user, _)| (id, user)))
        })
        .await?;
    match found {
        Some((session_id, user_id)) => Ok(AuthUser {
            user_id,
            session_id,
        }),
        None => Err(unauthorized("invalid or expired session")),
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("application state missing"))?
                .clone();
            let (token, from_cookie) = request_token(&req)?;
            if from_cookie {
                check_csrf(&req, &token)?;
            }
            session_for_token(&state, &token).await
        })
    }
}
