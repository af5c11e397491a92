//! `/attachments`: encrypted blobs, uploaded as `application/octet-stream` and streamed to
//! disk; downloadable by any signed-in user who knows the (unguessable) id.

use crate::api::accounts::client_ip;
use crate::api::auth::AuthUser;
use crate::api::error::{ApiError, ErrorBody};
use crate::services::attachments;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use serde::Serialize;
use utoipa::ToSchema;

/// A stored attachment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentCreated {
    /// Its id: 32 lowercase hex characters (128 random bits).
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

/// Upload an encrypted attachment (the raw ciphertext as the body, at most 25 MiB), streamed
/// to disk. Counts against the account's quota until it expires or is deleted (uploads in
/// progress count too).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "attachments",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = AttachmentCreated),
        (status = 400, description = "invalid_input (empty or interrupted upload)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 413, description = "payload_too_large (over 25 MiB), quota_exceeded (also counting the caller's uploads in progress)", body = ErrorBody),
        (status = 429, description = "rate_limited: more than 60 uploads per account (120 per IP) an hour", body = ErrorBody),
    )
)]
#[post("/attachments")]
pub(crate) async fn upload(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stored = attachments::upload(&state, user.user_id, client_ip(&req), declared, body).await?;
    Ok(HttpResponse::Created().json(AttachmentCreated {
        id: stored.id,
        size: stored.size,
        expires_at: stored.expires_at,
    }))
}

/// Download an attachment (`application/octet-stream`, range requests supported).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "attachments",
    params(("id" = String, Path, description = "attachment id")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "invalid_input: not an attachment id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "not_found: unknown or expired", body = ErrorBody),
    )
)]
#[get("/attachments/{id}")]
pub(crate) async fn download(
    state: web::Data<AppState>,
    req: HttpRequest,
    _user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let file = attachments::open(&state, &path).await?;
    let named = web::block(move || actix_files::NamedFile::open(file))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .set_content_type(actix_web::mime::APPLICATION_OCTET_STREAM)
        .use_last_modified(false)
        .disable_content_disposition();
    Ok(named.into_response(&req))
}

/// Delete one of the caller's attachments.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "attachments",
    params(("id" = String, Path, description = "attachment id")),
    responses(
        (status = 204),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found (or not the caller's)", body = ErrorBody),
    )
)]
#[delete("/attachments/{id}")]
pub(crate) async fn remove(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    attachments::delete(&state, user.user_id, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}
