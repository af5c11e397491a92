//! The application layer: what travels inside an end-to-end encrypted envelope
//! (docs/protocol.md, "Application payloads"). A small versioned JSON object; the relay never
//! sees it.

use serde::{Deserialize, Serialize};

/// Envelope `kind` of a pairwise (Double Ratchet) message; its plaintext is a [`Payload`].
pub(crate) const KIND_PAIRWISE: u16 = 1;

/// The largest text a message carries, in bytes (longer texts belong in an attachment).
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// The payload version this client writes and reads.
pub(crate) const PAYLOAD_VERSION: u8 = 1;

/// A reference to an encrypted attachment on the relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// The relay's attachment id.
    pub id: String,
    /// The attachment key, base64.
    pub key: String,
    /// SHA-256 of the ciphertext, base64.
    pub digest: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// MIME type.
    pub mime: String,
    /// File name.
    pub name: String,
}

/// What an envelope carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// A chat message.
    Message {
        /// The message id (the same for every recipient device).
        id: String,
        /// For the sender's own other devices: the user the message was sent to.
        to_user: Option<i64>,
        /// The sender's clock, Unix milliseconds.
        sent_at: i64,
        /// Text (may be empty with an attachment).
        text: String,
        /// An attachment.
        attachment: Option<AttachmentRef>,
        /// The id of the message this one answers.
        reply_to: Option<String>,
    },
}

pub(crate) struct Payload {
    pub(crate) v: u8,
    pub(crate) body: Body,
}

/// A version-1 payload as it is on the wire: one flat JSON object (protocol.md §21.2).
/// Unknown fields are ignored: later payload versions may add fields (edits, reactions) that
/// older clients skip. A plain struct rather than `#[serde(flatten)]` over a
/// `#[serde(tag = "type")]` enum, which would link serde's buffering deserializer
/// (`Content`, ~18 KB) into the wasm.
#[derive(Serialize, Deserialize)]
struct Wire {
    v: u8,
    #[serde(rename = "type")]
    kind: String,
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_user: Option<i64>,
    sent_at: i64,
    #[serde(default)]
    text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attachment: Option<AttachmentRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<String>,
}

/// Why a decrypted payload was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PayloadError(pub(crate) String);

impl Payload {
    pub(crate) fn new(body: Body) -> Self {
        Self {
            v: PAYLOAD_VERSION,
            body,
        }
    }

    pub(crate) fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let Body::Message {
            id,
            to_user,
            sent_at,
            text,
            attachment,
            reply_to,
        } = &self.body;
        let wire = Wire {
            v: self.v,
            kind: "message".into(),
            id: id.clone(),
            to_user: *to_user,
            sent_at: *sent_at,
            text: text.clone(),
            attachment: attachment.clone(),
            reply_to: reply_to.clone(),
        };
        let json = zeroize::Zeroizing::new(serde_json::to_vec(&wire).unwrap_or_default());
        // The copy of the text is wiped like the JSON it went into.
        drop(zeroize::Zeroizing::new(wire.text));
        json
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        #[derive(Deserialize)]
        struct Version {
            v: u8,
        }
        let version: Version = serde_json::from_slice(bytes)
            .map_err(|_| PayloadError("not a payload object".into()))?;
        if version.v != PAYLOAD_VERSION {
            return Err(PayloadError(format!(
                "payload version {} (this client reads {PAYLOAD_VERSION})",
                version.v
            )));
        }
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| PayloadError(format!("payload: {e}")))?;
        if wire.kind != "message" {
            return Err(PayloadError("payload: unknown type".into()));
        }
        if wire.id.is_empty() || wire.id.len() > 64 {
            return Err(PayloadError("message id length".into()));
        }
        if wire.text.len() > MAX_TEXT_BYTES {
            return Err(PayloadError("text over the limit".into()));
        }
        Ok(Self {
            v: wire.v,
            body: Body::Message {
                id: wire.id,
                to_user: wire.to_user,
                sent_at: wire.sent_at,
                text: wire.text,
                attachment: wire.attachment,
                reply_to: wire.reply_to,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hostile_payloads() {
        let p = Payload::new(Body::Message {
            id: "abc".into(),
            to_user: Some(7),
            sent_at: 1,
            text: "hi".into(),
            attachment: None,
            reply_to: None,
        });
        let bytes = p.encode();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":1,"type":"message","id":"abc","to_user":7,"sent_at":1,"text":"hi"}"#
        );
        assert_eq!(Payload::decode(&bytes).unwrap().body, p.body);
        for bad in [
            &b""[..],
            b"[]",
            b"{\"v\":2,\"type\":\"message\",\"id\":\"a\",\"sent_at\":1}",
            b"{\"v\":1,\"type\":\"nope\"}",
            b"{\"v\":1,\"type\":\"message\",\"id\":\"\",\"sent_at\":1}",
            b"\xff\xfe",
        ] {
            assert!(
                Payload::decode(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!(
            r#"{{"v":1,"type":"message","id":"a","sent_at":1,"text":"{}"}}"#,
            "x".repeat(MAX_TEXT_BYTES + 1)
        );
        assert!(Payload::decode(long.as_bytes()).is_err());
    }
}
