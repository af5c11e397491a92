//! What the client reports to the app: [`Event`]s, and the [`Message`]s of the history.

use crate::error::ErrorCode;
use crate::payload::AttachmentRef;
use serde::{Deserialize, Serialize};

/// A conversation: with one user, or a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conversation {
    /// With a user (by user id).
    User(i64),
    /// A room (by room id).
    Room(i64),
}

impl Conversation {
    pub(crate) fn key(self) -> String {
        match self {
            Self::User(id) => format!("u{id}"),
            Self::Room(id) => format!("r{id}"),
        }
    }
}

/// Where an outgoing message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Kept in the local outbox: not yet accepted by the relay for every device.
    Pending,
    /// The relay stored it for every recipient device.
    Sent,
    /// At least one of the recipient's devices received it.
    Delivered,
    /// Incoming.
    Received,
}

/// A message of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The message id (the same on every device).
    pub id: String,
    /// The conversation it belongs to.
    pub conversation: Conversation,
    /// The author.
    pub from_user: i64,
    /// The author's device.
    pub from_device: i64,
    /// Whether this account wrote it (on this or another of its devices).
    pub outgoing: bool,
    /// The author's clock, Unix milliseconds.
    pub sent_at: i64,
    /// When this device stored it, Unix milliseconds.
    pub stored_at: i64,
    /// The text.
    pub text: String,
    /// An attachment.
    pub attachment: Option<AttachmentRef>,
    /// The message it answers.
    pub reply_to: Option<String>,
    /// Delivery state.
    pub status: MessageStatus,
    /// Set when it came from a device whose identity key is new for a user the account had
    /// verified: show it with a warning until the user accepts the new key.
    pub unverified_key: bool,
}

/// Why an incoming envelope could not be read. The envelope is acknowledged (it would only
/// come back) and the failure is reported, never silently dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// No session matches it (for example the one-time prekey it names was already used).
    UnknownSession,
    /// It was already received (a replay).
    Duplicate,
    /// It is damaged or forged: authentication failed, or it does not decode.
    Corrupted,
    /// The device's identity key differs from the one its user's device list shows.
    KeyChanged,
    /// It is older than the kept skipped-message keys.
    TooOld,
    /// A kind or payload version this client does not read.
    Unsupported,
}

/// The relay connection's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Opening the WebSocket.
    Connecting,
    /// Connected; the backlog is being received.
    Syncing,
    /// Connected and up to date.
    Online,
    /// Not connected; the client will retry.
    Offline,
    /// The relay ended the session or another connection of this device took over: sign in
    /// again (no automatic reconnect).
    Stopped,
}

/// Something that happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A new message in the history (incoming, or sent from another of the account's devices).
    Message {
        /// The message.
        message: Box<Message>,
    },
    /// An outgoing message changed status.
    Status {
        /// The message id.
        id: String,
        /// The conversation.
        conversation: Conversation,
        /// The new status.
        status: MessageStatus,
    },
    /// A message could not be sent to a device (a refusal the relay says not to retry).
    SendFailed {
        /// The message id.
        id: String,
        /// The recipient device.
        device_id: i64,
        /// The relay's code.
        code: ErrorCode,
    },
    /// A friend started or stopped typing.
    Typing {
        /// The friend.
        user_id: i64,
        /// Whether they are typing.
        typing: bool,
    },
    /// A friend came online or went offline.
    Presence {
        /// The friend.
        user_id: i64,
        /// Whether they are online.
        online: bool,
    },
    /// The friend list or pending requests changed: fetch them again.
    FriendsChanged,
    /// A room changed: refetch its members (and replace the sender key when someone left).
    RoomsChanged {
        /// The room.
        room_id: i64,
        /// What changed (`created`, `invited`, `joined`, `declined`, `left`, `removed`,
        /// `promoted`, `demoted`, `renamed`, `deleted`; docs/api.md), when the relay said.
        change: Option<String>,
        /// The member it is about.
        user_id: Option<i64>,
        /// Who made the change.
        by: Option<i64>,
    },
    /// A user's devices changed.
    DevicesChanged {
        /// The user.
        user_id: i64,
    },
    /// A contact's device presented an identity key the client had not seen for that user.
    KeyChanged {
        /// The user.
        user_id: i64,
        /// The device with the new key.
        device_id: i64,
        /// Whether the user had been verified (then their messages are flagged until
        /// [`crate::Client::accept_identity`]).
        was_verified: bool,
    },
    /// An envelope could not be decrypted.
    DecryptionFailed {
        /// The sender.
        from_user: i64,
        /// The sender's device.
        from_device: i64,
        /// The sender's message id.
        id: String,
        /// Why.
        reason: FailureReason,
    },
    /// The connection state changed.
    Connection {
        /// The new state.
        state: ConnectionState,
    },
}
