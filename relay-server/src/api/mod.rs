//! HTTP API under `/api/v1`: routes, DTOs, extractors and errors.

pub mod accounts;
pub mod attachments;
pub mod auth;
pub mod client_ip;
pub mod devices;
pub mod error;
pub mod frames;
pub mod friends;
pub mod health;
pub mod profiles;
pub mod rooms;
pub mod transport;
pub mod twofa;
pub mod ws;

use crate::api::error::{ApiError, ErrorBody, ErrorCode};
use actix_web::web;
use utoipa::OpenApi;

/// Largest JSON body accepted by the API (requests are small: credentials, codes, notes).
pub const MAX_JSON_BODY: usize = 16 * 1024;

/// The OpenAPI document; paths are collected from the registered services.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "SecureChat relay API",
        version = "1",
        description = "Accounts, two-factor authentication, ms_id profiles, friends, devices and prekey bundles. Keys are standard base64 of their crypto-core encodings. Every error is `{ \"error\": code, \"message\": text }`. Real-time delivery is the WebSocket `GET /api/v1/ws`, specified in docs/api.md (OpenAPI cannot describe it)."
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&SessionAuth)
)]
pub struct ApiDoc;

/// The two ways to present a session token, as OpenAPI security schemes. Operations that need
/// a signed-in user list both (`security(("session_token" = []), ("session_cookie" = []))`).
struct SessionAuth;

impl utoipa::Modify for SessionAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The `token` of a login response, as `Authorization: Bearer <token>`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::api::auth::SESSION_COOKIE,
                "HttpOnly SameSite=Strict cookie set at login (web app). Writes authenticated \
                 by it also need the `X-CSRF-Token` header with the login's `csrf_token`.",
            ))),
        );
    }
}

/// JSON extractor settings: size limit and typed errors instead of actix's plain text.
#[must_use]
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_JSON_BODY)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError;
            let api = match &err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("body larger than {MAX_JSON_BODY} bytes"),
                ),
                JsonPayloadError::ContentType => ApiError::new(
                    ErrorCode::InvalidJson,
                    "expected Content-Type: application/json",
                ),
                JsonPayloadError::Deserialize(e) => {
                    ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON body: {e}"))
                }
                _ => ApiError::new(ErrorCode::InvalidJson, "invalid JSON body"),
            };
            api.into()
        })
}

/// Path and query extractor errors as typed API errors.
#[must_use]
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, _| {
        ApiError::new(ErrorCode::InvalidInput, "invalid path parameter").into()
    })
}

/// Registers every `/api/v1` route.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(accounts::register)
        .service(accounts::login)
        .service(accounts::list_sessions)
        // `/sessions/current` before `/sessions/{id}`.
        .service(accounts::logout)
        .service(accounts::revoke_session)
        .service(accounts::me)
        .service(accounts::delete_me)
        .service(accounts::change_password)
        .service(accounts::change_email)
        .service(accounts::confirm_email_change)
        .service(profiles::change_ms_id)
        .service(profiles::lookup)
        .service(profiles::availability)
        // Literal `/friends/requests` paths before `/friends/{ms_id}` and `/friends/requests/{id}`.
        .service(friends::send_request)
        .service(friends::list_requests)
        .service(friends::accept_request)
        .service(friends::decline_request)
        .service(friends::cancel_request)
        .service(friends::list_friends)
        .service(friends::remove_friend)
        .service(friends::block)
        .service(friends::list_blocks)
        .service(friends::unblock)
        .service(twofa::challenge_email)
        .service(twofa::complete_challenge)
        .service(twofa::totp_setup)
        .service(twofa::totp_activate)
        .service(twofa::totp_disable)
        .service(twofa::email_send)
        .service(twofa::email_enable)
        .service(twofa::email_disable)
        .service(twofa::recovery_regenerate)
        .service(twofa::security_events)
        .service(twofa::verify_email_send)
        .service(twofa::verify_email_confirm)
        // Literal `/devices` before `/devices/{id}` paths.
        .service(devices::register)
        .service(devices::list_own)
        .service(devices::count_one_time_prekeys)
        .service(devices::upload_one_time_prekeys)
        .service(devices::rotate_signed_prekey)
        .service(devices::delete_device)
        .service(devices::list_for_user)
        .service(devices::claim_bundle)
        .service(rooms::create)
        .service(rooms::list)
        .service(rooms::invite)
        .service(rooms::join)
        .service(rooms::decline)
        .service(rooms::leave)
        .service(rooms::members)
        .service(rooms::rename)
        .service(rooms::delete_room)
        .service(rooms::remove_member)
        .service(rooms::set_role)
        .service(attachments::upload)
        .service(attachments::download)
        .service(attachments::remove);
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json(doc: web::Data<utoipa::openapi::OpenApi>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(doc.get_ref())
}

/// Unknown routes: a typed 404.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
}
