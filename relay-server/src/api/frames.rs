//! The WebSocket frame protocol, version 1: JSON text frames `{"v":1,"type":…}`. Documented
//! for client authors in `docs/api.md`.

use crate::services::delivery::Envelope;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// The protocol version this relay speaks.
pub const VERSION: u8 = 1;

/// Frames a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Store and forward one envelope to one device (`to_device`), or to every device of a
    /// room's joined members but the sending one (`room`); exactly one of the two.
    Send {
        /// Client-chosen message id, 1–64 characters; the idempotency key per recipient device.
        id: String,
        /// Recipient device id.
        #[serde(default)]
        to_device: Option<i64>,
        /// Room id.
        #[serde(default)]
        room: Option<i64>,
        /// Message kind (opaque to the relay, 0–65535).
        kind: i32,
        /// Standard base64 of the ciphertext (at most 64 KiB decoded).
        ciphertext: String,
    },
    /// Acknowledge (and delete) delivered envelopes.
    Ack {
        /// Envelope ids (`eid`), at most 1000.
        ids: Vec<i64>,
    },
    /// A typing indicator for a friend.
    Typing {
        /// The friend's user id.
        to_user: i64,
        /// Typing state.
        state: TypingState,
    },
}

/// Typing state.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TypingState {
    /// Started typing.
    Typing,
    /// Stopped.
    Idle,
}

/// What a `rooms_changed` notice reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomChange {
    /// The room was created (told to the creator).
    Created,
    /// `user` was invited by `by`.
    Invited,
    /// `user` joined.
    Joined,
    /// `user` declined the invitation.
    Declined,
    /// `user` left.
    Left,
    /// `user` was removed by the admin `by`.
    Removed,
    /// `user` was made admin by `by`.
    Promoted,
    /// `user` was made a plain member again by `by`.
    Demoted,
    /// The admin `by` renamed the room.
    Renamed,
    /// The admin `by` deleted the room.
    Deleted,
}

/// Frames the relay sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// The envelope `id` for `to_device` (or every copy for `room`) is committed.
    Accepted {
        /// The client's message id.
        id: &'a str,
        /// The recipient device (direct sends).
        #[serde(skip_serializing_if = "Option::is_none")]
        to_device: Option<i64>,
        /// The room (room sends).
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<i64>,
    },
    /// An envelope for this device.
    Envelope {
        /// Envelope id: acknowledge it with `ack`.
        eid: i64,
        /// Sending user id.
        from_user: i64,
        /// Sending device id.
        from_device: i64,
        /// The sender's message id.
        id: &'a str,
        /// Message kind.
        kind: i32,
        /// Standard base64 ciphertext.
        ciphertext: String,
        /// Stored at, Unix seconds.
        sent_at: i64,
        /// The room it was sent to (absent for a direct envelope).
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<i64>,
    },
    /// The backlog has been sent; what follows is live.
    QueueEmpty {},
    /// The recipient device acknowledged the envelope `id` (receipt to the sender device).
    Delivered {
        /// The sender's message id.
        id: &'a str,
        /// The device that acknowledged it.
        to_device: i64,
    },
    /// A friend's typing indicator.
    Typing {
        /// The friend's user id.
        from_user: i64,
        /// The state.
        state: TypingState,
    },
    /// A friend came online or went offline.
    Presence {
        /// The friend's user id.
        user: i64,
        /// Whether they have a connected device.
        online: bool,
    },
    /// The user's friends, pending friend requests or blocks changed: refetch them. A change
    /// notice, like the two below: best effort, never stored.
    FriendsChanged {},
    /// The membership of a room changed (someone was invited, joined, declined, left or was
    /// removed, or became admin), the room was renamed or deleted, or the user created it:
    /// refetch `GET /rooms` and the room's members. `change`, `user` and `by` say what
    /// happened, for timelines ("Carol left") and sender-key rotation.
    RoomsChanged {
        /// The room.
        room: i64,
        /// What changed.
        #[serde(skip_serializing_if = "Option::is_none")]
        change: Option<RoomChange>,
        /// The member the change is about (membership changes).
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<i64>,
        /// Who made the change.
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<i64>,
    },
    /// A user's device list changed (a device was registered or removed): refetch it before
    /// the next message to them (or to a room they are in).
    DevicesChanged {
        /// The user whose devices changed (possibly the receiving user).
        user: i64,
    },
    /// A frame was refused; the connection stays open.
    Error {
        /// Machine-readable code.
        code: WsErrorCode,
        /// Human-readable explanation.
        message: &'a str,
        /// The `id` of the refused `send`, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        /// The `to_device` of the refused `send`, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        to_device: Option<i64>,
        /// The `room` of the refused `send`, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<i64>,
        /// For `rate_limited`: seconds to wait.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
}

/// The error codes of `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WsErrorCode {
    /// The frame is not JSON (or not a JSON object).
    InvalidJson,
    /// `v` is missing or not a version this relay speaks.
    UnsupportedVersion,
    /// `type` is missing or unknown.
    UnknownType,
    /// A field is missing, has the wrong type, or breaks a limit (the message says which).
    InvalidFrame,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported,
    /// The ciphertext is larger than 64 KiB.
    TooLarge,
    /// No such recipient device.
    UnknownDevice,
    /// The recipient device is not a contact's (friend or fellow joined room member) nor one's
    /// own; for `typing`, the user is not a friend.
    NotFriends,
    /// The recipient device's queue is full; retry later.
    QueueFull,
    /// The sender is not a joined member of the room (or the room does not exist).
    NotAMember,
    /// Too many frames: retry after `retry_after` seconds.
    RateLimited,
    /// Storage is unavailable; retry later.
    Unavailable,
    /// Something failed inside the relay; retry later.
    Internal,
}

#[derive(Serialize)]
struct Versioned<'a> {
    v: u8,
    #[serde(flatten)]
    frame: &'a ServerFrame<'a>,
}

impl ServerFrame<'_> {
    /// The frame as JSON text, with `"v":1`.
    #[must_use]
    pub fn to_text(&self) -> String {
        serde_json::to_string(&Versioned {
            v: VERSION,
            frame: self,
        })
        // Serializing these plain structs cannot fail; an empty object would be ignored.
        .unwrap_or_else(|_| String::from("{}"))
    }

    /// An `error` frame without a message id.
    #[must_use]
    pub fn error(code: WsErrorCode, message: &str) -> String {
        ServerFrame::Error {
            code,
            message,
            id: None,
            to_device: None,
            room: None,
            retry_after: None,
        }
        .to_text()
    }
}

/// The `envelope` frame of a queued envelope.
#[must_use]
pub fn envelope_text(e: &Envelope) -> String {
    ServerFrame::Envelope {
        eid: e.eid,
        from_user: e.from_user,
        from_device: e.from_device,
        id: &e.client_id,
        kind: e.kind,
        ciphertext: B64.encode(&e.ciphertext),
        sent_at: e.sent_at,
        room: e.room,
    }
    .to_text()
}

/// Known client frame types.
pub const CLIENT_TYPES: &[&str] = &["send", "ack", "typing"];
