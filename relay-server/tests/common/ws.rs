//! WebSocket test client and fixtures shared by the delivery and room suites: users, device
//! rows and friendships inserted directly, and a tokio-tungstenite client for protocol v1.

use super::TestRelay;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use diesel::prelude::*;
use futures_util::{SinkExt, StreamExt};
use relay_server::api::error::ApiError;
use relay_server::db::schema::{devices, envelopes, friendships};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(15);

pub struct User {
    pub id: i64,
    pub token: String,
}

pub async fn user(relay: &TestRelay, ms_id: &str) -> User {
    let email = format!("{ms_id}@example.org");
    let created = relay.register(&email, ms_id).await;
    let (token, _) = relay.token(&email).await;
    User {
        id: created["user_id"].as_i64().unwrap(),
        token,
    }
}

/// Inserts a device row directly (the device API lives elsewhere).
pub async fn device(relay: &TestRelay, user_id: i64) -> i64 {
    static N: AtomicU64 = AtomicU64::new(0);
    let key = format!(
        "identity-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
    .into_bytes();
    relay
        .state
        .db
        .run(move |conn| {
            Ok::<_, ApiError>(
                diesel::insert_into(devices::table)
                    .values((
                        devices::user_id.eq(user_id),
                        devices::identity_key.eq(key),
                        devices::name.eq("test device"),
                        devices::created_at.eq(0_i64),
                    ))
                    .returning(devices::id)
                    .get_result::<i64>(conn)?,
            )
        })
        .await
        .unwrap()
}

pub async fn befriend(relay: &TestRelay, a: &User, b: &User) {
    let (low, high) = if a.id < b.id {
        (a.id, b.id)
    } else {
        (b.id, a.id)
    };
    relay
        .state
        .db
        .run(move |conn| {
            diesel::insert_into(friendships::table)
                .values((
                    friendships::user_low.eq(low),
                    friendships::user_high.eq(high),
                    friendships::created_at.eq(0_i64),
                ))
                .execute(conn)
                .map_err(ApiError::from)
        })
        .await
        .unwrap();
}

/// Envelope rows, optionally only those for one recipient device.
pub async fn rows(relay: &TestRelay, to_device: Option<i64>) -> i64 {
    relay
        .state
        .db
        .run(move |conn| {
            let mut q = envelopes::table.into_boxed();
            if let Some(d) = to_device {
                q = q.filter(envelopes::recipient_device_id.eq(d));
            }
            q.count().get_result::<i64>(conn).map_err(ApiError::from)
        })
        .await
        .unwrap()
}

/// The relay's change notices: best-effort hints to refetch a list over HTTP.
pub const NOTICES: &[&str] = &["friends_changed", "rooms_changed", "devices_changed"];

fn is_notice(v: &Value) -> bool {
    v["type"].as_str().is_some_and(|t| NOTICES.contains(&t))
}

pub fn ws_url(relay: &TestRelay) -> String {
    format!("{}/api/v1/ws", relay.base.replacen("http://", "ws://", 1))
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Ws {
    pub socket: Socket,
}

/// How a read ended.
#[derive(Debug)]
pub enum Got {
    Frame(Value),
    Closed(Option<u16>),
}

pub async fn open(relay: &TestRelay, who: &User, device_id: i64) -> Ws {
    let mut req = ws_url(relay).into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", who.token)).unwrap(),
    );
    h.insert(
        "x-securechat-device",
        HeaderValue::from_str(&device_id.to_string()).unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    Ws { socket }
}

/// Opens and reads up to `queue_empty`; returns the backlog envelopes.
pub async fn open_drained(relay: &TestRelay, who: &User, device_id: i64) -> (Ws, Vec<Value>) {
    let mut ws = open(relay, who, device_id).await;
    let backlog = ws.backlog().await;
    (ws, backlog)
}

impl Ws {
    pub async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.socket.send(msg).await.unwrap();
    }

    /// The next text frame or the close, skipping presence frames and change notices (see
    /// [`NOTICES`]; [`Ws::notice`] reads those).
    pub async fn next(&mut self) -> Got {
        loop {
            let msg = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("timed out waiting for a frame");
            match msg {
                None => return Got::Closed(None),
                Some(Err(_)) => return Got::Closed(None),
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    assert_eq!(v["v"], 1, "every frame carries v=1: {v}");
                    if v["type"] == "presence" || is_notice(&v) {
                        continue;
                    }
                    return Got::Frame(v);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Got::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn frame(&mut self) -> Value {
        match self.next().await {
            Got::Frame(v) => v,
            Got::Closed(code) => panic!("closed ({code:?}) while waiting for a frame"),
        }
    }

    pub async fn expect(&mut self, kind: &str) -> Value {
        let v = self.frame().await;
        assert_eq!(v["type"], kind, "expected {kind}, got {v}");
        v
    }

    pub async fn expect_error(&mut self, code: &str) -> Value {
        let v = self.expect("error").await;
        assert_eq!(v["code"], code, "{v}");
        assert!(v["message"].is_string());
        v
    }

    pub async fn expect_close(&mut self) -> Option<u16> {
        match self.next().await {
            Got::Closed(code) => code,
            Got::Frame(v) => panic!("expected a close, got {v}"),
        }
    }

    /// Envelopes up to `queue_empty`.
    pub async fn backlog(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self.frame().await;
            match v["type"].as_str() {
                Some("envelope") => out.push(v),
                Some("queue_empty") => return out,
                _ => panic!("unexpected frame in backlog: {v}"),
            }
        }
    }

    /// The next text frame, presence included.
    pub async fn raw_next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("timed out waiting for a frame");
            match msg {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
                Some(Ok(Message::Close(f))) => panic!("unexpected close {f:?}"),
                None | Some(Err(_)) => panic!("connection lost"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Nothing but presence (and change notices) arrives within `ms`.
    pub async fn quiet(&mut self, ms: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    assert!(
                        v["type"] == "presence" || is_notice(&v),
                        "unexpected frame {v}"
                    );
                }
                Ok(Some(Ok(Message::Close(f)))) => panic!("unexpected close {f:?}"),
                Ok(_) => {}
            }
        }
    }

    /// The next change notice (`friends_changed`, `rooms_changed`, `devices_changed`),
    /// skipping presence; any other frame fails the test.
    pub async fn notice(&mut self) -> Value {
        loop {
            let v = self.raw_next().await;
            assert_eq!(v["v"], 1, "every frame carries v=1: {v}");
            if v["type"] == "presence" {
                continue;
            }
            assert!(is_notice(&v), "expected a change notice, got {v}");
            return v;
        }
    }

    /// The next change notice, which must be of type `kind`.
    pub async fn expect_notice(&mut self, kind: &str) -> Value {
        let v = self.notice().await;
        assert_eq!(v["type"], kind, "expected {kind}, got {v}");
        v
    }

    /// Returns once the relay is done with every frame sent before (acks included): it
    /// answers frames in order, so the answer to a probe of an unknown type comes only after
    /// every earlier frame has taken effect.
    pub async fn settled(&mut self) {
        self.send(json!({"v": 1, "type": "settle_probe"})).await;
        self.expect_error("unknown_type").await;
    }

    pub async fn send_msg(&mut self, id: &str, to_device: i64, body: &[u8]) {
        self.send(json!({"v": 1, "type": "send", "id": id, "to_device": to_device, "kind": 1, "ciphertext": B64.encode(body)}))
            .await;
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
