//! `GET /api/v1/ws`: the real-time delivery channel (protocol in `docs/api.md`).
//!
//! Before the upgrade: the `Origin` (if any) must be the relay's own or a configured allowed
//! origin (`403 forbidden_origin`), the session token must be valid (`401 unauthorized`) and
//! the device must be the user's (`404 unknown_device`). After it, one task per connection
//! ([`connection`]) multiplexes the client's frames ([`handlers`]), pushes from the
//! [`Hub`](crate::services::hub::Hub) and a heartbeat.

mod connection;
mod handlers;

use crate::api::auth::{SESSION_COOKIE, session_for_token};
use crate::api::error::{ApiError, ErrorCode};
use crate::peer::PeerSocket;
use crate::services::delivery;
use crate::services::ratelimit::Action;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use std::time::Duration;

/// The subprotocol a client must offer (browsers require the server to echo one).
pub const SUBPROTOCOL: &str = "securechat.v1";
/// Subprotocol prefix carrying the session token (browsers cannot set headers).
pub const TOKEN_PREFIX: &str = "token.";
/// Subprotocol prefix carrying the device id.
pub const DEVICE_PREFIX: &str = "device.";
/// Header carrying the device id.
pub const DEVICE_HEADER: &str = "x-securechat-device";
/// Largest frame read: a 64 KiB ciphertext in base64 plus the JSON around it.
pub const MAX_FRAME: usize = 128 * 1024;
/// Interval of the relay's pings, by default (`--ws-heartbeat-secs`).
pub const HEARTBEAT: Duration = Duration::from_secs(20);
/// A connection silent for this many heartbeat intervals (no frame, no pong) is closed: 60 s
/// by default.
pub const IDLE_INTERVALS: u32 = 3;

/// Most frames of one connection whose answer waits for a commit (sends and acks in the
/// group-commit writer); beyond that the relay stops reading the connection until the oldest
/// completes (back-pressure).
pub const MAX_PENDING: usize = 256;

/// Close code: a newer connection of the same device replaced this one.
pub const CLOSE_REPLACED: u16 = 4001;
/// Close code: no frame or pong for [`IDLE_INTERVALS`] heartbeat intervals.
pub const CLOSE_IDLE: u16 = 4002;
/// Close code: the client did not read its pushes fast enough (its push queue overflowed);
/// reconnect for the backlog.
pub const CLOSE_TOO_SLOW: u16 = 4003;
/// Close code: the session was revoked, signed out or expired, the password changed, or the
/// device or account was removed; sign in again.
pub const CLOSE_UNAUTHORIZED: u16 = 4004;

fn forbidden_origin() -> ApiError {
    ApiError::new(
        ErrorCode::ForbiddenOrigin,
        "this origin may not open a WebSocket to the relay",
    )
}

fn subprotocols(req: &HttpRequest) -> Vec<String> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The `Origin` check: none (not a browser), the relay's own origin (its scheme — `https`
/// when reached over HTTPS, see `--secure-cookies` — and its host), or a configured origin.
fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| forbidden_origin())?;
    if state.config.allowed_origins.iter().any(|o| o == origin) {
        return Ok(());
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let own_scheme = if state.config.secure_cookies {
        "https://"
    } else {
        "http://"
    };
    let origin_host = origin.strip_prefix(own_scheme);
    match origin_host {
        Some(h) if !host.is_empty() && h.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(forbidden_origin()),
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, "sign in first")
}

/// The session token: `Authorization: Bearer`, a `token.` subprotocol, or the cookie.
fn request_token(req: &HttpRequest, protocols: &[String]) -> Result<String, ApiError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| unauthorized())?;
        let token = value.strip_prefix("Bearer ").ok_or_else(unauthorized)?;
        return Ok(token.trim().to_owned());
    }
    if let Some(token) = protocols.iter().find_map(|p| p.strip_prefix(TOKEN_PREFIX)) {
        return Ok(token.to_owned());
    }
    req.cookie(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .ok_or_else(unauthorized)
}

fn request_device(req: &HttpRequest, protocols: &[String]) -> Result<i64, ApiError> {
    let raw = match req.headers().get(DEVICE_HEADER) {
        Some(v) => v.to_str().ok().map(str::to_owned),
        None => protocols
            .iter()
            .find_map(|p| p.strip_prefix(DEVICE_PREFIX))
            .map(str::to_owned),
    };
    let raw = raw.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidInput,
            "name the device: X-SecureChat-Device header or device.<id> subprotocol",
        )
    })?;
    raw.trim()
        .parse::<i64>()
        .map_err(|_| ApiError::new(ErrorCode::InvalidInput, "invalid device id"))
}

/// `GET /api/v1/ws`.
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state)?;
    state
        .limits
        .check_ip(Action::WsConnect, crate::api::client_ip::client_ip(&req))?;
    let protocols = subprotocols(&req);
    let token = request_token(&req, &protocols)?;
    let user = session_for_token(&state, &token).await?;
    state
        .limits
        .check_account(Action::WsConnect, &user.user_id.to_string())?;
    let device_id = request_device(&req, &protocols)?;
    let owner = state
        .db
        .run(move |conn| delivery::device_owner(conn, device_id))
        .await?;
    if owner != Some(user.user_id) {
        return Err(ApiError::new(
            ErrorCode::UnknownDevice,
            "no such device on this account",
        ));
    }
    let (response, session, stream) = actix_ws::handle_with_protocols(&req, body, &[SUBPROTOCOL])
        .map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("not a WebSocket upgrade: {e}"),
        )
    })?;
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    let peer = connection::Peer {
        state: state.get_ref().clone(),
        session_id: user.session_id,
        user_id: user.user_id,
        device_id,
        session,
        socket: req.conn_data::<PeerSocket>().cloned(),
    };
    actix_web::rt::spawn(connection::run(peer, stream));
    Ok(response)
}
