//! WebSocket frames of the delivery protocol, version 1 (docs/api.md §2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

/// Client → relay.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientFrame<'a> {
    Send {
        v: u8,
        id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        to_device: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<i64>,
        kind: u16,
        ciphertext: String,
    },
    Ack {
        v: u8,
        ids: &'a [i64],
    },
    Typing {
        v: u8,
        to_user: i64,
        state: &'a str,
    },
}

impl ClientFrame<'_> {
    pub(crate) fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

pub(crate) fn send_frame(id: &str, to_device: i64, kind: u16, ciphertext: &[u8]) -> String {
    ClientFrame::Send {
        v: 1,
        id,
        to_device: Some(to_device),
        room: None,
        kind,
        ciphertext: BASE64.encode(ciphertext),
    }
    .to_json()
}

pub(crate) fn room_frame(id: &str, room: i64, kind: u16, ciphertext: &[u8]) -> String {
    ClientFrame::Send {
        v: 1,
        id,
        to_device: None,
        room: Some(room),
        kind,
        ciphertext: BASE64.encode(ciphertext),
    }
    .to_json()
}

/// Relay → client. Unknown types are kept as [`RelayFrame::Unknown`] (a newer relay may add
/// frames; they are ignored, not fatal).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RelayFrame {
    Accepted {
        id: String,
        to_device: Option<i64>,
        room: Option<i64>,
    },
    Envelope(Envelope),
    QueueEmpty,
    Delivered {
        id: String,
        to_device: i64,
    },
    Typing {
        from_user: i64,
        typing: bool,
    },
    Presence {
        user: i64,
        online: bool,
    },
    FriendsChanged,
    RoomsChanged {
        room: i64,
        change: Option<String>,
        user: Option<i64>,
        by: Option<i64>,
    },
    DevicesChanged {
        user: i64,
    },
    Error {
        code: String,
        message: String,
        id: Option<String>,
        to_device: Option<i64>,
        room: Option<i64>,
        retry_after: Option<u64>,
    },
    Unknown(String),
}

/// A stored envelope for this device.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) eid: i64,
    pub(crate) from_user: i64,
    pub(crate) from_device: i64,
    pub(crate) id: String,
    pub(crate) kind: u16,
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) sent_at: i64,
    pub(crate) room: Option<i64>,
}

#[derive(Deserialize)]
struct Raw {
    v: u8,
    #[serde(rename = "type")]
    kind_of: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    to_device: Option<i64>,
    #[serde(default)]
    room: Option<i64>,
    #[serde(default)]
    eid: Option<i64>,
    #[serde(default)]
    from_user: Option<i64>,
    #[serde(default)]
    from_device: Option<i64>,
    #[serde(default)]
    kind: Option<u16>,
    #[serde(default)]
    ciphertext: Option<String>,
    #[serde(default)]
    sent_at: Option<i64>,
    #[serde(default)]
    user: Option<i64>,
    #[serde(default)]
    online: Option<bool>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    change: Option<String>,
    #[serde(default)]
    by: Option<i64>,
}

/// Why a relay frame was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FrameError(pub(crate) String);

/// Largest ciphertext the relay accepts (decoded).
pub(crate) const MAX_CIPHERTEXT: usize = 64 * 1024;

impl RelayFrame {
    /// Parses a text frame; every missing or wrong field is a [`FrameError`], never a panic.
    pub(crate) fn parse(text: &str) -> Result<Self, FrameError> {
        // from_slice, as everywhere else: serde_json's `from_str` would link a second copy of
        // its whole parser (monomorphized over `StrRead`) into the wasm.
        let raw: Raw = serde_json::from_slice(text.as_bytes())
            .map_err(|e| FrameError(format!("not a frame: {e}")))?;
        if raw.v != 1 {
            return Err(FrameError(format!("frame version {}", raw.v)));
        }
        let need = |field: &str| FrameError(format!("{} frame without {field}", raw.kind_of));
        Ok(match raw.kind_of.as_str() {
            "accepted" => Self::Accepted {
                id: raw.id.ok_or_else(|| need("id"))?,
                to_device: raw.to_device,
                room: raw.room,
            },
            "envelope" => {
                let b64 = raw.ciphertext.ok_or_else(|| need("ciphertext"))?;
                if b64.len() > MAX_CIPHERTEXT / 3 * 4 + 4 {
                    return Err(FrameError("envelope ciphertext over 64 KiB".into()));
                }
                let ciphertext = BASE64
                    .decode(b64)
                    .map_err(|_| FrameError("envelope ciphertext is not base64".into()))?;
                Self::Envelope(Envelope {
                    eid: raw.eid.ok_or_else(|| need("eid"))?,
                    from_user: raw.from_user.ok_or_else(|| need("from_user"))?,
                    from_device: raw.from_device.ok_or_else(|| need("from_device"))?,
                    id: raw.id.ok_or_else(|| need("id"))?,
                    kind: raw.kind.ok_or_else(|| need("kind"))?,
                    ciphertext,
                    sent_at: raw.sent_at.ok_or_else(|| need("sent_at"))?,
                    room: raw.room,
                })
            }
            "queue_empty" => Self::QueueEmpty,
            "delivered" => Self::Delivered {
                id: raw.id.ok_or_else(|| need("id"))?,
                to_device: raw.to_device.ok_or_else(|| need("to_device"))?,
            },
            "typing" => Self::Typing {
                from_user: raw.from_user.ok_or_else(|| need("from_user"))?,
                typing: match raw.state.as_deref() {
                    Some("typing") => true,
                    Some("idle") => false,
                    _ => return Err(need("state")),
                },
            },
            "presence" => Self::Presence {
                user: raw.user.ok_or_else(|| need("user"))?,
                online: raw.online.ok_or_else(|| need("online"))?,
            },
            "friends_changed" => Self::FriendsChanged,
            "rooms_changed" => Self::RoomsChanged {
                room: raw.room.ok_or_else(|| need("room"))?,
                change: raw.change,
                user: raw.user,
                by: raw.by,
            },
            "devices_changed" => Self::DevicesChanged {
                user: raw.user.ok_or_else(|| need("user"))?,
            },
            "error" => Self::Error {
                code: raw.code.ok_or_else(|| need("code"))?,
                message: raw.message.unwrap_or_default(),
                id: raw.id,
                to_device: raw.to_device,
                room: raw.room,
                retry_after: raw.retry_after,
            },
            other => Self::Unknown(other.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_frames() {
        let f = RelayFrame::parse(
            r#"{"v":1,"type":"envelope","eid":1201,"from_user":7,"from_device":12,"id":"01HZX3","kind":1,"ciphertext":"AAEC","sent_at":1795000000}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            RelayFrame::Envelope(Envelope {
                eid: 1201,
                from_user: 7,
                from_device: 12,
                id: "01HZX3".into(),
                kind: 1,
                ciphertext: vec![0, 1, 2],
                sent_at: 1_795_000_000,
                room: None,
            })
        );
        assert_eq!(
            RelayFrame::parse(r#"{"v":1,"type":"presence","user":7,"online":true}"#).unwrap(),
            RelayFrame::Presence {
                user: 7,
                online: true
            }
        );
        assert_eq!(
            RelayFrame::parse(r#"{"v":1,"type":"something_new"}"#).unwrap(),
            RelayFrame::Unknown("something_new".into())
        );
    }

    #[test]
    fn refuses_hostile_frames_without_panicking() {
        for bad in [
            "",
            "null",
            "[]",
            "{}",
            r#"{"v":2,"type":"queue_empty"}"#,
            r#"{"v":1,"type":"envelope"}"#,
            r#"{"v":1,"type":"envelope","eid":1,"from_user":7,"from_device":12,"id":"x","kind":1,"ciphertext":"!!","sent_at":1}"#,
            r#"{"v":1,"type":"envelope","eid":1,"from_user":7,"from_device":12,"id":"x","kind":70000,"ciphertext":"AA==","sent_at":1}"#,
            r#"{"v":1,"type":"typing","from_user":7,"state":"dancing"}"#,
            r#"{"v":1,"type":"accepted"}"#,
            r#"{"v":1,"type":"presence","user":"7","online":true}"#,
        ] {
            assert!(RelayFrame::parse(bad).is_err(), "{bad}");
        }
        let huge = format!(
            r#"{{"v":1,"type":"envelope","eid":1,"from_user":7,"from_device":12,"id":"x","kind":1,"ciphertext":"{}","sent_at":1}}"#,
            "A".repeat(100_000)
        );
        assert!(RelayFrame::parse(&huge).is_err());
    }

    #[cfg(not(target_family = "wasm"))]
    proptest::proptest! {
        /// Arbitrary text, and arbitrary values in every field of a well-formed frame, give a
        /// frame or an error, never a panic.
        #[test]
        fn any_text_parses_or_errs(text in ".{0,300}") {
            let _ = RelayFrame::parse(&text);
        }

        #[test]
        fn any_field_values_parse_or_err(
            kind in "[a-z_]{0,16}",
            eid in proptest::num::i64::ANY,
            id in ".{0,80}",
            k in 0u32..100_000,
            ct in "[A-Za-z0-9+/=!]{0,64}",
            v in 0u8..3,
        ) {
            let frame = serde_json::json!({
                "v": v, "type": kind, "eid": eid, "from_user": eid, "from_device": eid,
                "id": id, "kind": k, "ciphertext": ct, "sent_at": eid, "room": eid,
                "user": eid, "online": true, "state": id, "code": id, "to_device": eid,
            });
            let _ = RelayFrame::parse(&frame.to_string());
        }
    }
}
