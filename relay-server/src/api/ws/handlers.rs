//! The client's frames (`send`, `ack`, `typing`) and their answers, in arrival order, and the
//! pushes a committed envelope or ack causes (the envelope to its recipient, receipts to the
//! senders), on this relay or, through NOTIFY, on another one.

use super::connection::{Connection, Done, End, Pending, envelope_frame, next_done, text_push};
use crate::api::error::{ApiError, ErrorCode};
use crate::api::frames::{
    CLIENT_TYPES, ClientFrame, ServerFrame, TypingState, VERSION, WsErrorCode,
};
use crate::db::Backend;
use crate::services::delivery::{
    self, DeliveryError, Envelope, MAX_ACK_IDS, MAX_CIPHERTEXT, MAX_CLIENT_ID, NewEnvelope,
    NewRoomEnvelope, Stored,
};
use crate::services::friends::are_friends;
use crate::services::hub::Push;
use crate::services::notify;
use crate::services::ratelimit::Action;
use crate::state::AppState;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::time::Instant;

impl Connection {
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
    pub(super) async fn frame(&mut self, text: &str) -> Result<(), End> {
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
    pub(super) async fn reply(&mut self, text: String) -> Result<(), End> {
        if self.pending.is_empty() {
            self.write_text(text).await
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
    pub(super) async fn complete(&mut self, front: Pending, done: Done) -> Result<(), End> {
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
                        self.write_text(ServerFrame::error(
                            WsErrorCode::Unavailable,
                            "storage unavailable; ack again later",
                        ))
                        .await
                    }
                }
            }
            (Pending::Ready(text), _) => self.write_text(text).await,
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
                return self.write_text(frame).await;
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
        let answered = self.write_text(accepted).await;
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
    pub(super) fn finish_pending_detached(&mut self) {
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
        let answered = self.write_text(accepted).await;
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
