//! `GET /api/v1/ws`: the real-time delivery channel (protocol in `docs/api.md`).
//!
//! Before the upgrade: the `Origin` (if any) must be the relay's own or a configured allowed
//! origin (`403 forbidden_origin`), the session token must be valid (`401 unauthorized`) and
//! the device must be the user's (`404 unknown_device`). After it, one task per connection
//! multiplexes the client's frames, pushes from the [`Hub`](crate::services::hub::Hub) and a
//! heartbeat.

use crate::api::auth::{SESSION_COOKIE, session_for_token};
use crate::api::error::{ApiError, ErrorCode};
use crate::api::frames::{
    CLIENT_TYPES, ClientFrame, ServerFrame, TypingState, VERSION, WsErrorCode,
};
use crate::db::Backend;
use crate::services::delivery::{
    self, BATCH, DeliveryError, Envelope, MAX_ACK_IDS, MAX_CIPHERTEXT, MAX_CLIENT_ID, NewEnvelope,
    NewRoomEnvelope, Stored,
};
use crate::services::friends::are_friends;
use crate::services::hub::{Kick, Push, Registration};
use crate::services::notify;
use crate::services::ratelimit::Action;
use crate::services::writer::{AckResult, StoreResult};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

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
/// Close code: the client did not read its pushes fast enough; reconnect for the backlog.
pub const CLOSE_TOO_SLOW: u16 = 4003;
/// Close code: the session was revoked or expired, or the device was removed; sign in again.
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

/// The `Origin` check: none (not a browser), the relay's own host, or a configured origin.
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
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
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
    let state = state.get_ref().clone();
    actix_web::rt::spawn(async move {
        Connection {
            state,
            session_id: user.session_id,
            user_id: user.user_id,
            device_id,
            session,
            backlog_sent: HashSet::new(),
            pending: VecDeque::new(),
        }
        .run(stream)
        .await;
    });
    Ok(response)
}

fn close(code: u16, description: &str) -> CloseReason {
    CloseReason {
        code: CloseCode::from(code),
        description: Some(description.to_owned()),
    }
}

/// Why the connection loop ended.
enum End {
    /// Close with this reason.
    Close(CloseReason),
    /// The peer is gone (closed or the socket broke).
    Gone,
}

struct Connection {
    state: AppState,
    session_id: i64,
    user_id: i64,
    device_id: i64,
    session: Session,
    /// Ids of envelopes sent from the backlog that the hub has not pushed yet: an envelope
    /// committed while the backlog was read arrives both ways, and the push is then skipped.
    /// Live pushes are not recorded (the hub pushes an envelope to a connection once), so
    /// this holds at most one backlog's worth of ids.
    backlog_sent: HashSet<i64>,
    /// Frames waiting for a commit, answered in the order they came (see [`MAX_PENDING`]).
    pending: VecDeque<Pending>,
}

/// A frame whose answer waits, in arrival order.
enum Pending {
    /// A direct send in the writer.
    Send {
        id: String,
        to_device: i64,
        rx: tokio::sync::oneshot::Receiver<StoreResult>,
    },
    /// An ack in the writer.
    Ack {
        rx: tokio::sync::oneshot::Receiver<AckResult>,
    },
    /// An answer computed at once, queued behind earlier ones to keep the order.
    Ready(String),
}

/// The outcome of the oldest pending frame.
enum Done {
    Send(Result<StoreResult, tokio::sync::oneshot::error::RecvError>),
    Ack(Result<AckResult, tokio::sync::oneshot::error::RecvError>),
    Ready,
}

/// Waits for the oldest pending frame and takes it off the queue (cancel-safe: nothing is
/// taken unless its outcome is returned).
async fn next_done(pending: &mut VecDeque<Pending>) -> Option<(Pending, Done)> {
    let done = match pending.front_mut()? {
        Pending::Send { rx, .. } => Done::Send(rx.await),
        Pending::Ack { rx } => Done::Ack(rx.await),
        Pending::Ready(_) => Done::Ready,
    };
    pending.pop_front().map(|front| (front, done))
}

fn text_push(text: String) -> Push {
    Push {
        eid: None,
        text: text.into(),
        committed: None,
    }
}

fn envelope_frame(e: &Envelope) -> String {
    crate::api::frames::envelope_text(e)
}

impl Connection {
    async fn run(mut self, mut stream: actix_ws::AggregatedMessageStream) {
        let _open = self.state.metrics.ws_open();
        let hub = self.state.hub.clone();
        let mut reg = hub.register(self.user_id, self.device_id);
        if reg.user_came_online {
            self.announce(true).await;
        }
        let end = match self.send_backlog().await {
            Ok(()) => self.serve(&mut stream, &mut reg).await,
            Err(end) => end,
        };
        let last = hub.unregister(self.user_id, self.device_id, reg.conn_id);
        self.finish_pending_detached();
        if let End::Close(reason) = end {
            let _ = self.session.clone().close(Some(reason)).await;
        }
        if last {
            self.announce(false).await;
        }
    }

    async fn text(&mut self, frame: String) -> Result<(), End> {
        self.session.text(frame).await.map_err(|_| End::Gone)
    }

    /// Presence to online friends (and, when coming online, theirs to this device).
    async fn announce(&mut self, online: bool) {
        let user_id = self.user_id;
        let friends = match self
            .state
            .db
            .run(move |conn| delivery::friend_ids(conn, user_id))
            .await
        {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "presence: friends lookup failed");
                return;
            }
        };
        let frame = text_push(
            ServerFrame::Presence {
                user: user_id,
                online,
            }
            .to_text(),
        );
        for friend in friends {
            if self.state.hub.is_online(friend) {
                self.state.hub.push_to_user(friend, &frame);
                if online {
                    let theirs = ServerFrame::Presence {
                        user: friend,
                        online: true,
                    }
                    .to_text();
                    let _ = self.text(theirs).await;
                }
            }
        }
    }

    /// Prunes expired envelopes, sends the backlog in batches, then `queue_empty`.
    async fn send_backlog(&mut self) -> Result<(), End> {
        let device_id = self.device_id;
        let now = self.state.clock.now();
        let prep = self
            .state
            .db
            .run(move |conn| {
                delivery::touch_device(conn, device_id, now)?;
                delivery::prune_expired(conn, Some(device_id), now)
            })
            .await;
        if let Err(e) = prep {
            tracing::warn!(error = %e, "backlog: prune failed");
        }
        let mut after = 0_i64;
        loop {
            let now = self.state.clock.now();
            let batch = self
                .state
                .db
                .run(move |conn| delivery::backlog(conn, device_id, after, now, BATCH))
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "backlog fetch failed");
                    End::Close(close(1011, "storage unavailable; reconnect later"))
                })?;
            let done = batch.len() < usize::try_from(BATCH).unwrap_or(usize::MAX);
            for envelope in &batch {
                after = after.max(envelope.eid);
                self.backlog_sent.insert(envelope.eid);
                self.text(envelope_frame(envelope)).await?;
                self.state.metrics.delivered(None);
            }
            if done {
                break;
            }
        }
        self.text(ServerFrame::QueueEmpty {}.to_text()).await
    }

    async fn serve(
        &mut self,
        stream: &mut actix_ws::AggregatedMessageStream,
        reg: &mut Registration,
    ) -> End {
        let period = Duration::from_secs(self.state.config.ws_heartbeat_secs.max(1));
        let idle_timeout = period.saturating_mul(IDLE_INTERVALS);
        let mut heartbeat = tokio::time::interval(period);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut last_auth_check = Instant::now();
        loop {
            let step = tokio::select! {
                kick = &mut reg.kicked => match kick {
                    Ok(Kick::Replaced) => Err(End::Close(close(CLOSE_REPLACED, "replaced by a newer connection of this device"))),
                    Ok(Kick::TooSlow) => Err(End::Close(close(CLOSE_TOO_SLOW, "too slow; reconnect for the backlog"))),
                    // The hub dropped us without a reason: treat as replaced.
                    Err(_) => Err(End::Close(close(CLOSE_REPLACED, "replaced"))),
                },
                pushed = reg.pushes.recv() => match pushed {
                    Some(frame) => self.push(frame).await,
                    None => Err(End::Close(close(CLOSE_REPLACED, "replaced"))),
                },
                done = next_done(&mut self.pending), if !self.pending.is_empty() => match done {
                    Some((front, done)) => self.complete(front, done).await,
                    None => Ok(()),
                },
                msg = stream.recv(), if self.pending.len() < MAX_PENDING => {
                    last_heard = Instant::now();
                    match msg {
                        Some(Err(actix_ws::ProtocolError::Io(e)))
                            if !e.to_string().contains("maximum") =>
                        {
                            self.drain_after_disconnect(stream).await;
                            Err(End::Gone)
                        }
                        msg => self.incoming(msg).await,
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > idle_timeout {
                        Err(End::Close(close(CLOSE_IDLE, "idle timeout")))
                    } else if last_auth_check.elapsed() >= idle_timeout && {
                        last_auth_check = Instant::now();
                        !self.still_authorized().await
                    } {
                        Err(End::Close(close(CLOSE_UNAUTHORIZED, "session ended; sign in again")))
                    } else if self.session.ping(b"").await.is_err() {
                        Err(End::Gone)
                    } else {
                        Ok(())
                    }
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// The peer closed the TCP connection. actix-ws reports that before the frames it had
    /// already read from the socket (a client that sends an `ack` and closes at once), and then
    /// yields those frames: they are taken here, so an ack or send the client wrote before
    /// hanging up still takes effect. Nothing can be answered any more.
    async fn drain_after_disconnect(&mut self, stream: &mut actix_ws::AggregatedMessageStream) {
        loop {
            match tokio::time::timeout(Duration::from_secs(1), stream.recv()).await {
                Ok(Some(Ok(AggregatedMessage::Text(text)))) => {
                    // Answers fail (the socket is gone); the writer work is queued all the same.
                    let _ = self.frame(&text).await;
                }
                Ok(Some(Ok(
                    AggregatedMessage::Binary(_)
                    | AggregatedMessage::Ping(_)
                    | AggregatedMessage::Pong(_),
                ))) => {}
                Ok(Some(Ok(AggregatedMessage::Close(_)) | Err(_)) | None) | Err(_) => return,
            }
        }
    }

    /// Re-checks the session and the device (a logout or revocation ends the connection).
    /// A database failure keeps the connection: the check runs again later.
    async fn still_authorized(&self) -> bool {
        let (session_id, user_id, device_id) = (self.session_id, self.user_id, self.device_id);
        let now = self.state.clock.now();
        self.state
            .db
            .run(move |conn| delivery::still_authorized(conn, session_id, user_id, device_id, now))
            .await
            .unwrap_or(true)
    }

    /// A frame pushed by the hub; envelopes already sent on this connection are skipped.
    async fn push(&mut self, frame: Push) -> Result<(), End> {
        if let Some(eid) = frame.eid
            && self.backlog_sent.remove(&eid)
        {
            return Ok(());
        }
        self.text(frame.text.to_string()).await?;
        if frame.eid.is_some() {
            self.state.metrics.delivered(frame.committed);
        }
        Ok(())
    }

    async fn incoming(
        &mut self,
        msg: Option<Result<AggregatedMessage, actix_ws::ProtocolError>>,
    ) -> Result<(), End> {
        match msg {
            None => Err(End::Gone),
            Some(Err(actix_ws::ProtocolError::Overflow)) => {
                Err(End::Close(close(1009, "frame too large")))
            }
            Some(Err(actix_ws::ProtocolError::Io(e))) if e.to_string().contains("maximum") => {
                Err(End::Close(close(1009, "message too large")))
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "WebSocket protocol error");
                Err(End::Close(close(1002, "protocol error")))
            }
            Some(Ok(AggregatedMessage::Text(text))) => self.frame(&text).await,
            Some(Ok(AggregatedMessage::Binary(_))) => {
                self.reply(ServerFrame::error(
                    WsErrorCode::BinaryNotSupported,
                    "binary frames are not part of the protocol; send JSON text frames",
                ))
                .await
            }
            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                self.session.pong(&bytes).await.map_err(|_| End::Gone)
            }
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            Some(Ok(AggregatedMessage::Close(_))) => Err(End::Close(close(1000, "bye"))),
        }
    }

    async fn error(
        &mut self,
        code: WsErrorCode,
        message: &str,
        id: Option<&str>,
        to_device: Option<i64>,
    ) -> Result<(), End> {
        self.error_in(code, message, id, to_device, None).await
    }

    /// An `error` frame naming the refused send's target (`to_device` or `room`).
    async fn error_in(
        &mut self,
        code: WsErrorCode,
        message: &str,
        id: Option<&str>,
        to_device: Option<i64>,
        room: Option<i64>,
    ) -> Result<(), End> {
        let frame = ServerFrame::Error {
            code,
            message,
            id,
            to_device,
            room,
            retry_after: None,
        }
        .to_text();
        self.reply(frame).await
    }

    /// Takes a token from the account's send bucket, or answers `rate_limited`.
    async fn rate_limited(
        &mut self,
        id: Option<&str>,
        to_device: Option<i64>,
        room: Option<i64>,
    ) -> Option<Result<(), End>> {
        let key = self.user_id.to_string();
        let Err(e) = self.state.limits.check_account(Action::Send, &key) else {
            return None;
        };
        let frame = ServerFrame::Error {
            code: WsErrorCode::RateLimited,
            message: "too many frames; slow down",
            id,
            to_device,
            room,
            retry_after: e.retry_after,
        }
        .to_text();
        Some(self.reply(frame).await)
    }

    /// One client text frame.
    async fn frame(&mut self, text: &str) -> Result<(), End> {
        let mut value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                return self
                    .error(WsErrorCode::InvalidJson, "not valid JSON", None, None)
                    .await;
            }
        };
        let Some(object) = value.as_object_mut() else {
            return self
                .error(
                    WsErrorCode::InvalidJson,
                    "expected a JSON object",
                    None,
                    None,
                )
                .await;
        };
        let id = object.get("id").and_then(|v| v.as_str()).map(str::to_owned);
        let to_device = object.get("to_device").and_then(serde_json::Value::as_i64);
        let room = object.get("room").and_then(serde_json::Value::as_i64);
        let id = id.as_deref();
        if object.remove("v").and_then(|v| v.as_u64()) != Some(u64::from(VERSION)) {
            return self
                .error_in(
                    WsErrorCode::UnsupportedVersion,
                    "expected \"v\": 1",
                    id,
                    to_device,
                    room,
                )
                .await;
        }
        let known = object
            .get("type")
            .and_then(|t| t.as_str())
            .is_some_and(|t| CLIENT_TYPES.contains(&t));
        if !known {
            return self
                .error_in(
                    WsErrorCode::UnknownType,
                    "\"type\" must be one of send, ack, typing",
                    id,
                    to_device,
                    room,
                )
                .await;
        }
        let frame: ClientFrame = match serde_json::from_value(value) {
            Ok(f) => f,
            Err(e) => {
                let message = format!("invalid frame: {e}");
                return self
                    .error_in(WsErrorCode::InvalidFrame, &message, id, to_device, room)
                    .await;
            }
        };
        match frame {
            ClientFrame::Send {
                id,
                to_device,
                room,
                kind,
                ciphertext,
            } => {
                if let Some(limited) = self.rate_limited(Some(&id), to_device, room).await {
                    return limited;
                }
                self.send(id, to_device, room, kind, &ciphertext).await
            }
            ClientFrame::Ack { ids } => self.ack(ids).await,
            ClientFrame::Typing { to_user, state } => {
                if let Some(limited) = self.rate_limited(None, None, None).await {
                    return limited;
                }
                self.typing(to_user, state).await
            }
        }
    }

    async fn send(
        &mut self,
        id: String,
        to_device: Option<i64>,
        room: Option<i64>,
        kind: i32,
        ciphertext: &str,
    ) -> Result<(), End> {
        let refuse = |code, message: &'static str| (code, message);
        let checked = if to_device.is_some() == room.is_some() {
            Err(refuse(
                WsErrorCode::InvalidFrame,
                "give exactly one of to_device and room",
            ))
        } else if id.is_empty() || id.chars().count() > MAX_CLIENT_ID {
            Err(refuse(
                WsErrorCode::InvalidFrame,
                "id must be 1 to 64 characters",
            ))
        } else if id.chars().any(char::is_control) {
            Err(refuse(
                WsErrorCode::InvalidFrame,
                "id must not contain control characters",
            ))
        } else if !(0..=65_535).contains(&kind) {
            Err(refuse(WsErrorCode::InvalidFrame, "kind must be 0 to 65535"))
        } else if ciphertext.len() > MAX_CIPHERTEXT.div_ceil(3) * 4 {
            Err(refuse(
                WsErrorCode::TooLarge,
                "ciphertext larger than 64 KiB",
            ))
        } else {
            match B64.decode(ciphertext) {
                Err(_) => Err(refuse(
                    WsErrorCode::InvalidFrame,
                    "ciphertext must be standard base64",
                )),
                Ok(bytes) if bytes.is_empty() => Err(refuse(
                    WsErrorCode::InvalidFrame,
                    "ciphertext must not be empty",
                )),
                Ok(bytes) if bytes.len() > MAX_CIPHERTEXT => Err(refuse(
                    WsErrorCode::TooLarge,
                    "ciphertext larger than 64 KiB",
                )),
                Ok(bytes) => Ok(bytes),
            }
        };
        let ciphertext = match checked {
            Ok(bytes) => bytes,
            Err((code, message)) => {
                return self
                    .error_in(code, message, Some(&id), to_device, room)
                    .await;
            }
        };
        let to_device = match (to_device, room) {
            (Some(to_device), _) => to_device,
            (None, Some(room)) => return self.send_room(id, room, kind, ciphertext).await,
            (None, None) => return Ok(()),
        };
        let new = NewEnvelope {
            from_user: self.user_id,
            from_device: self.device_id,
            to_device,
            client_id: id.clone(),
            kind,
            ciphertext,
        };
        let now = self.state.clock.now();
        // Answered (`accepted` or `error`) by `complete` once the writer has committed it.
        let rx = self.state.writer.store(new, now).await;
        self.pending.push_back(Pending::Send { id, to_device, rx });
        Ok(())
    }

    /// Sends an answer to a client frame after the answers still pending (so answers keep the
    /// order of the frames).
    async fn reply(&mut self, text: String) -> Result<(), End> {
        if self.pending.is_empty() {
            self.text(text).await
        } else {
            self.pending.push_back(Pending::Ready(text));
            Ok(())
        }
    }

    /// Answers every pending frame, oldest first.
    async fn flush_pending(&mut self) -> Result<(), End> {
        while let Some((front, done)) = next_done(&mut self.pending).await {
            self.complete(front, done).await?;
        }
        Ok(())
    }

    /// Answers the oldest pending frame now that its outcome is known.
    async fn complete(&mut self, front: Pending, done: Done) -> Result<(), End> {
        match (front, done) {
            (Pending::Send { id, to_device, .. }, Done::Send(result)) => {
                let stored = result.unwrap_or_else(|_| Err(DeliveryError::Api(writer_gone())));
                self.sent(&id, to_device, stored).await
            }
            (Pending::Ack { .. }, Done::Ack(result)) => {
                match result.unwrap_or_else(|_| Err(writer_gone())) {
                    Ok(deleted) => {
                        receipts(&self.state, self.device_id, deleted);
                        Ok(())
                    }
                    Err(_) => {
                        self.text(ServerFrame::error(
                            WsErrorCode::Unavailable,
                            "storage unavailable; ack again later",
                        ))
                        .await
                    }
                }
            }
            (Pending::Ready(text), _) => self.text(text).await,
            // `next_done` pairs each pending frame with its own kind of outcome.
            (Pending::Send { .. } | Pending::Ack { .. }, _) => Ok(()),
        }
    }

    /// `accepted` (then the push to the recipient) or `error` for a direct send the writer
    /// has finished with.
    async fn sent(
        &mut self,
        id: &str,
        to_device: i64,
        stored: Result<Stored, DeliveryError>,
    ) -> Result<(), End> {
        let committed = Instant::now();
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                let (code, message) = match e {
                    DeliveryError::UnknownDevice => (WsErrorCode::UnknownDevice, "no such device"),
                    DeliveryError::NotFriends => (
                        WsErrorCode::NotFriends,
                        "you can only send to your own devices and those of your friends and fellow room members",
                    ),
                    DeliveryError::QueueFull => (
                        WsErrorCode::QueueFull,
                        "the recipient device's queue is full; retry later",
                    ),
                    DeliveryError::NotAMember => {
                        (WsErrorCode::Internal, "internal error; retry later")
                    }
                    DeliveryError::Api(api) if api.code == ErrorCode::Unavailable => {
                        (WsErrorCode::Unavailable, "storage unavailable; retry later")
                    }
                    DeliveryError::Api(_) => (WsErrorCode::Internal, "internal error; retry later"),
                };
                let frame = ServerFrame::Error {
                    code,
                    message,
                    id: Some(id),
                    to_device: Some(to_device),
                    room: None,
                    retry_after: None,
                }
                .to_text();
                return self.text(frame).await;
            }
        };
        // Committed: acknowledge to the sender, then push to the recipient if connected.
        if stored.fresh {
            self.state.metrics.envelopes_received.inc();
        }
        let accepted = ServerFrame::Accepted {
            id,
            to_device: Some(to_device),
            room: None,
        }
        .to_text();
        let answered = self.text(accepted).await;
        // Pushed even if the sender vanished meanwhile: the envelope is committed.
        if stored.fresh {
            deliver(&self.state, to_device, &stored.envelope, committed).await;
        }
        answered
    }

    /// When the connection ends with frames still in the writer: their envelopes are (or
    /// will be) committed, so a task waits for them, pushes them to their recipients and
    /// sends the delivery receipts of the acks. The sender gets no `accepted` (a retry with
    /// the same id is answered from the queue).
    fn finish_pending_detached(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return;
        }
        let state = self.state.clone();
        let device_id = self.device_id;
        actix_web::rt::spawn(async move {
            for p in pending {
                match p {
                    Pending::Send { to_device, rx, .. } => {
                        if let Ok(Ok(stored)) = rx.await
                            && stored.fresh
                        {
                            state.metrics.envelopes_received.inc();
                            deliver(&state, to_device, &stored.envelope, Instant::now()).await;
                        }
                    }
                    Pending::Ack { rx } => {
                        if let Ok(Ok(deleted)) = rx.await {
                            receipts(&state, device_id, deleted);
                        }
                    }
                    Pending::Ready(_) => {}
                }
            }
        });
    }

    /// A room send: one envelope per device of every joined member but this one, committed
    /// together, then one `accepted`, then the pushes.
    async fn send_room(
        &mut self,
        id: String,
        room: i64,
        kind: i32,
        ciphertext: Vec<u8>,
    ) -> Result<(), End> {
        // Answered inline: the earlier frames' answers go first.
        self.flush_pending().await?;
        let new = NewRoomEnvelope {
            from_user: self.user_id,
            from_device: self.device_id,
            room,
            client_id: id.clone(),
            kind,
            ciphertext,
        };
        let now = self.state.clock.now();
        let stored = self
            .state
            .db
            .run(move |conn| delivery::store_room(conn, &new, now))
            .await;
        let committed = Instant::now();
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                let (code, message) = match e {
                    DeliveryError::NotAMember => (
                        WsErrorCode::NotAMember,
                        "you are not a joined member of this room",
                    ),
                    DeliveryError::QueueFull => (
                        WsErrorCode::QueueFull,
                        "a member device's queue is full; nothing was stored; retry later",
                    ),
                    DeliveryError::Api(api) if api.code == ErrorCode::Unavailable => {
                        (WsErrorCode::Unavailable, "storage unavailable; retry later")
                    }
                    DeliveryError::UnknownDevice
                    | DeliveryError::NotFriends
                    | DeliveryError::Api(_) => {
                        (WsErrorCode::Internal, "internal error; retry later")
                    }
                };
                return self
                    .error_in(code, message, Some(&id), None, Some(room))
                    .await;
            }
        };
        let fresh = stored.iter().filter(|(_, s)| s.fresh).count();
        self.state
            .metrics
            .envelopes_received
            .inc_by(u64::try_from(fresh).unwrap_or(u64::MAX));
        let accepted = ServerFrame::Accepted {
            id: &id,
            to_device: None,
            room: Some(room),
        }
        .to_text();
        let answered = self.text(accepted).await;
        for (to_device, s) in stored.iter().filter(|(_, s)| s.fresh) {
            deliver(&self.state, *to_device, &s.envelope, committed).await;
        }
        answered
    }

    async fn ack(&mut self, ids: Vec<i64>) -> Result<(), End> {
        if ids.len() > MAX_ACK_IDS {
            return self
                .error(
                    WsErrorCode::InvalidFrame,
                    "at most 1000 ids per ack",
                    None,
                    None,
                )
                .await;
        }
        let rx = self.state.writer.ack(self.device_id, ids).await;
        self.pending.push_back(Pending::Ack { rx });
        Ok(())
    }

    async fn typing(&mut self, to_user: i64, state: TypingState) -> Result<(), End> {
        let from = self.user_id;
        let friends = self
            .state
            .db
            .run(move |conn| are_friends(conn, from, to_user))
            .await
            .unwrap_or(false);
        if !friends {
            return self
                .error(
                    WsErrorCode::NotFriends,
                    "typing indicators go to friends only",
                    None,
                    None,
                )
                .await;
        }
        let frame = text_push(
            ServerFrame::Typing {
                from_user: from,
                state,
            }
            .to_text(),
        );
        self.state.hub.push_to_user(to_user, &frame);
        Ok(())
    }
}

fn writer_gone() -> ApiError {
    ApiError::new(ErrorCode::Unavailable, "service temporarily unavailable")
}

/// Pushes a committed envelope to its device if connected here, or wakes the other relays on
/// the database (PostgreSQL) so the one holding the device pushes it.
async fn deliver(state: &AppState, to_device: i64, envelope: &Envelope, committed: Instant) {
    let eid = envelope.eid;
    let frame = Push {
        eid: Some(eid),
        text: envelope_frame(envelope).into(),
        committed: Some(committed),
    };
    if !state.hub.push_to_device(to_device, frame) && state.db.backend() == Backend::Postgres {
        let instance = state.instance;
        let woke = state
            .db
            .run(move |conn| notify::announce(conn, instance, to_device, eid))
            .await;
        if let Err(e) = woke {
            tracing::warn!(error = %e, "NOTIFY failed; the envelope waits for the backlog");
        }
    }
}

/// Delivery receipts for acknowledged envelopes, to their senders' devices.
fn receipts(state: &AppState, device_id: i64, deleted: Vec<(i64, String)>) {
    state
        .metrics
        .envelopes_acked
        .inc_by(u64::try_from(deleted.len()).unwrap_or(u64::MAX));
    for (sender_device, client_id) in deleted {
        let receipt = text_push(
            ServerFrame::Delivered {
                id: &client_id,
                to_device: device_id,
            }
            .to_text(),
        );
        state.hub.push_to_device(sender_device, receipt);
    }
}
