//! A hostile relay: answers that break docs/api.md (wrong JSON, unknown codes, missing fields)
//! and WebSocket frames that are junk, oversized, forged or replayed. The client must turn each
//! into a typed error or a reported event, acknowledge what it cannot read, and never panic.
//! (The functional tests run against the real relay, tests/native.rs; a real relay cannot be
//! made to misbehave, hence this scripted one.)
#![cfg(not(target_family = "wasm"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wasm_client::store::MemoryStore;
use wasm_client::store::sealed::{KdfParams, SealedStore};
use wasm_client::transport::SocketReceiver;
use wasm_client::transport::native::NativeTransport;
use wasm_client::{Client, ConnectionState, ErrorCode, Event, FailureReason, LoginOutcome};

type Route = fn(&str, &str) -> (u16, &'static str, String);

/// Serves `route` over HTTP and `frames` over the WebSocket; records the client's frames.
struct Hostile {
    base: String,
    received: Arc<Mutex<Vec<String>>>,
}

impl Hostile {
    async fn start(route: Route, frames: Vec<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let frames = frames.clone();
                let log = log.clone();
                tokio::spawn(async move { serve(stream, route, frames, log).await });
            }
        });
        Self { base, received }
    }
}

async fn serve(
    mut stream: TcpStream,
    route: Route,
    frames: Vec<String>,
    log: Arc<Mutex<Vec<String>>>,
) {
    let mut head = vec![0u8; 8192];
    let n = stream.peek(&mut head).await.unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    if text.contains("upgrade: websocket") {
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        for f in frames {
            if ws.send(WsMessage::Text(f.into())).await.is_err() {
                return;
            }
        }
        while let Some(Ok(m)) = ws.next().await {
            if let WsMessage::Text(t) = m {
                log.lock().unwrap().push(t.to_string());
            }
        }
        return;
    }
    // A plain HTTP request: read the head and the body, answer from the route table.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        if buf.len() < end + 4 + length {
            continue;
        }
        let mut first = head.lines().next().unwrap_or("").split(' ');
        let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
        let (status, extra, body) = route(method, path);
        let answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        return;
    }
}

async fn client(base: &str) -> Client<NativeTransport, MemoryStore> {
    let store = SealedStore::create(MemoryStore::new(), "pw", KdfParams::INSECURE_FOR_TESTS)
        .await
        .unwrap();
    Client::new(NativeTransport::new(base).unwrap(), store)
        .await
        .unwrap()
}

fn code<T: std::fmt::Debug>(r: wasm_client::Result<T>) -> ErrorCode {
    r.unwrap_err().code()
}

#[tokio::test(flavor = "current_thread")]
async fn malformed_http_answers_are_typed_errors() {
    fn route(method: &str, path: &str) -> (u16, &'static str, String) {
        match (method, path) {
            ("POST", "/api/v1/accounts") => (201, "", "[1,2,3]".into()),
            ("GET", "/api/v1/ms_ids/a") => (
                418,
                "",
                r#"{"error":"brand_new_code","message":"from the future"}"#.into(),
            ),
            ("GET", "/api/v1/ms_ids/b") => (
                429,
                "retry-after: 7\r\n",
                r#"{"error":"rate_limited","message":"slow down"}"#.into(),
            ),
            ("GET", "/api/v1/ms_ids/c") => (200, "", r#"{"ms_id":5,"available":"yes"}"#.into()),
            ("GET", "/api/v1/ms_ids/d") => (500, "", "<html>oops</html>".into()),
            // A second-factor answer without its challenge.
            ("POST", "/api/v1/sessions") => (
                401,
                "",
                r#"{"error":"two_factor_required","message":"x"}"#.into(),
            ),
            _ => (404, "", r#"{"error":"not_found","message":"no"}"#.into()),
        }
    }
    let relay = Hostile::start(route, Vec::new()).await;
    let mut c = client(&relay.base).await;
    assert_eq!(
        code(
            c.register("a@example.org", "pw pw pw pw", "ada", "Ada")
                .await
        ),
        ErrorCode::BadResponse
    );
    assert_eq!(code(c.check_ms_id("a").await), ErrorCode::UnknownRelayCode);
    let limited = c.check_ms_id("b").await.unwrap_err();
    assert_eq!(
        (limited.code(), limited.retry_after()),
        (ErrorCode::RateLimited, Some(7))
    );
    assert_eq!(code(c.check_ms_id("c").await), ErrorCode::BadResponse);
    assert_eq!(code(c.check_ms_id("d").await), ErrorCode::BadResponse);
    assert_eq!(
        code(c.login("a@example.org", "pw").await),
        ErrorCode::BadResponse
    );
    // Nothing reached the client's state.
    assert!(!c.is_signed_in());
    // A relay that is not there at all.
    let mut gone = client("http://127.0.0.1:9").await;
    assert_eq!(
        code(gone.login("a@example.org", "pw").await),
        ErrorCode::Network
    );
}

fn envelope(eid: i64, id: &str, kind: u16, ciphertext: &[u8], room: Option<i64>) -> String {
    let room = room.map(|r| format!(r#","room":{r}"#)).unwrap_or_default();
    format!(
        r#"{{"v":1,"type":"envelope","eid":{eid},"from_user":2,"from_device":20,"id":"{id}","kind":{kind},"ciphertext":"{}","sent_at":1{room}}}"#,
        base64::engine::general_purpose::STANDARD.encode(ciphertext)
    )
}

#[tokio::test(flavor = "current_thread")]
async fn junk_forged_and_replayed_frames_are_reported_and_acked() {
    fn route(method: &str, path: &str) -> (u16, &'static str, String) {
        match (method, path) {
            ("POST", "/api/v1/sessions") => (
                200,
                "",
                r#"{"token":"tok","csrf_token":"c","expires_at":0,"user_id":1}"#.into(),
            ),
            ("POST", "/api/v1/devices") => (201, "", r#"{"device_id":10}"#.into()),
            ("GET", "/api/v1/devices/10/one-time-prekeys/count") => {
                (200, "", r#"{"remaining":100}"#.into())
            }
            _ => (404, "", r#"{"error":"not_found","message":"no"}"#.into()),
        }
    }
    // A forged session message: the right version and type bytes, then garbage.
    let mut forged = vec![2u8, 1];
    forged.extend_from_slice(&[0x5a; 120]);
    let frames =
        vec![
        "not json at all".into(),
        "{}".into(),
        r#"{"v":1,"type":"envelope","eid":"one"}"#.into(),
        format!(r#"{{"v":1,"type":"noise","pad":"{}"}}"#, "x".repeat(120_000)),
        envelope(1, "m1", 1, &[0xde, 0xad, 0xbe, 0xef], None),
        // The same (device, id) again, under a new eid: a replay.
        envelope(2, "m1", 1, &[0xde, 0xad, 0xbe, 0xef], None),
        envelope(3, "m2", 1, &forged, None),
        envelope(4, "m3", 77, b"unknown kind", None),
        envelope(5, "m4", 2, b"not a group message", Some(9)),
        r#"{"v":1,"type":"accepted","id":"never-sent","to_device":3}"#.into(),
        r#"{"v":1,"type":"delivered","id":"never-sent","to_device":3}"#.into(),
        r#"{"v":1,"type":"error","code":"made_up","message":"?","id":"never-sent","to_device":3}"#
            .into(),
        r#"{"v":1,"type":"queue_empty"}"#.into(),
    ];
    let relay = Hostile::start(route, frames).await;
    let mut c = client(&relay.base).await;
    assert_eq!(
        c.login("a@example.org", "pw").await.unwrap(),
        LoginOutcome::SignedIn
    );
    c.ensure_device("test").await.unwrap();
    let mut socket = c.connect().await.unwrap();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !events.contains(&Event::Connection {
        state: ConnectionState::Online,
    }) {
        let e = tokio::time::timeout_at(deadline, socket.recv())
            .await
            .expect("the scripted frames arrive");
        events.extend(c.handle(e).await.unwrap());
    }
    let failures: Vec<(String, FailureReason)> = events
        .iter()
        .filter_map(|e| match e {
            Event::DecryptionFailed { id, reason, .. } => Some((id.clone(), *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        failures,
        [
            ("m1".to_owned(), FailureReason::Corrupted),
            // Well-formed but from a device without a session here.
            ("m2".to_owned(), FailureReason::UnknownSession),
            ("m3".to_owned(), FailureReason::Unsupported),
            ("m4".to_owned(), FailureReason::Corrupted),
        ],
        "{events:?}"
    );
    assert!(
        events.iter().all(|e| !matches!(
            e,
            Event::Message { .. } | Event::Status { .. } | Event::SendFailed { .. }
        )),
        "{events:?}"
    );
    // Every envelope was acknowledged, the replay included.
    c.disconnect();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let acked = loop {
        let acked: Vec<i64> = relay
            .received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|f| serde_json::from_str::<serde_json::Value>(f).ok())
            .filter(|v| v["type"] == "ack")
            .flat_map(|v| v["ids"].as_array().cloned().unwrap_or_default())
            .filter_map(|id| id.as_i64())
            .collect();
        if acked.len() >= 5 || tokio::time::Instant::now() > deadline {
            break acked;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(acked, [1, 2, 3, 4, 5]);
}
