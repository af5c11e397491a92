//! The application layer: what travels inside an end-to-end encrypted envelope
//! (docs/protocol.md §21). A small versioned JSON object; the relay never sees it.

use serde::{Deserialize, Serialize};

/// Envelope `kind` of a pairwise (Double Ratchet) message; its plaintext is a [`Payload`].
pub(crate) const KIND_PAIRWISE: u16 = 1;
/// Envelope `kind` of a room message: a crypto-core group message whose plaintext is a
/// [`Payload`] (protocol.md §12, §21).
pub(crate) const KIND_GROUP: u16 = 2;

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
    /// The sender's key for a room (only inside a pairwise session).
    SenderKey {
        /// The room.
        room: i64,
        /// The crypto-core `SenderKeyDistribution`, base64 (secret).
        distribution: String,
    },
}

pub(crate) struct Payload {
    pub(crate) v: u8,
    pub(crate) body: Body,
}

/// A version-1 payload as it is on the wire: one flat JSON object (protocol.md §21.2) whose
/// `type` says which fields matter. Unknown fields are ignored: later payload versions may add
/// fields (edits, reactions) that older clients skip. A plain struct rather than
/// `#[serde(flatten)]` over a `#[serde(tag = "type")]` enum, which would link serde's
/// buffering deserializer (`Content`, ~18 KB) into the wasm.
#[derive(Default, Serialize, Deserialize)]
struct Wire {
    v: u8,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_user: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attachment: Option<AttachmentRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    distribution: Option<String>,
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
        let wire = match &self.body {
            Body::Message {
                id,
                to_user,
                sent_at,
                text,
                attachment,
                reply_to,
            } => Wire {
                v: self.v,
                kind: "message".into(),
                id: id.clone(),
                to_user: *to_user,
                sent_at: Some(*sent_at),
                text: Some(text.clone()),
                attachment: attachment.clone(),
                reply_to: reply_to.clone(),
                ..Wire::default()
            },
            Body::SenderKey { room, distribution } => Wire {
                v: self.v,
                kind: "sender_key".into(),
                room: Some(*room),
                distribution: Some(distribution.clone()),
                ..Wire::default()
            },
        };
        let json = zeroize::Zeroizing::new(serde_json::to_vec(&wire).unwrap_or_default());
        // The copies of the text and the key are wiped like the JSON they went into.
        drop(wire.text.map(zeroize::Zeroizing::new));
        drop(wire.distribution.map(zeroize::Zeroizing::new));
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
        let missing = |field: &str| PayloadError(format!("payload without {field}"));
        let body = match wire.kind.as_str() {
            "message" => {
                if wire.id.is_empty() || wire.id.len() > 64 {
                    return Err(PayloadError("message id length".into()));
                }
                let text = wire.text.unwrap_or_default();
                if text.len() > MAX_TEXT_BYTES {
                    return Err(PayloadError("text over the limit".into()));
                }
                if let Some(a) = &wire.attachment
                    && (!crate::client::valid_attachment_id(&a.id)
                        || a.key.len() != 44
                        || a.digest.len() != 44
                        || a.mime.len() > 255
                        || a.name.len() > 255)
                {
                    return Err(PayloadError("malformed attachment reference".into()));
                }
                Body::Message {
                    id: wire.id,
                    to_user: wire.to_user,
                    sent_at: wire.sent_at.ok_or_else(|| missing("sent_at"))?,
                    text,
                    attachment: wire.attachment,
                    reply_to: wire.reply_to,
                }
            }
            "sender_key" => Body::SenderKey {
                room: wire.room.ok_or_else(|| missing("room"))?,
                distribution: wire.distribution.ok_or_else(|| missing("distribution"))?,
            },
            _ => return Err(PayloadError("payload: unknown type".into())),
        };
        Ok(Self { v: wire.v, body })
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

    #[cfg(not(target_family = "wasm"))]
    proptest::proptest! {
        /// A decrypted payload is attacker-chosen bytes: any of them decode or fail cleanly.
        #[test]
        fn any_bytes_decode_or_err(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = Payload::decode(&bytes);
        }

        #[test]
        fn any_json_fields_decode_or_err(
            t in "[a-z_]{0,12}",
            id in ".{0,80}",
            n in proptest::num::i64::ANY,
            text in ".{0,50}",
        ) {
            let p = serde_json::json!({
                "v": 1, "type": t, "id": id, "to_user": n, "sent_at": n, "text": text,
                "room": n, "distribution": text,
                "attachment": {"id": id, "key": text, "digest": text, "size": n, "mime": t, "name": t},
            });
            let _ = Payload::decode(p.to_string().as_bytes());
        }
    }
}
