//! WebSocket peers that stop reading, and sockets whose session ends (issue #12, item 5), on
//! SQLite and PostgreSQL:
//! - a raw client that never reads while the relay pushes to it is disconnected (write
//!   timeout, or the push queue's byte budget) and its socket is closed; the relay keeps
//!   serving everyone else;
//! - revoking a session, signing out, changing the password, removing a device or deleting
//!   the account closes the affected sockets at once (4004), on this relay and, on
//!   PostgreSQL, on another relay sharing the database (NOTIFY).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::ws::*;
use common::{Backend, EVENTUALLY, PASSWORD, TestRelay, eventually};
use relay_server::services::hub::Push;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

fn port(relay: &TestRelay) -> u16 {
    relay.base.rsplit(':').next().unwrap().parse().unwrap()
}

/// Opens a WebSocket with a raw TCP socket whose receive buffer is tiny, reads the `101`
/// response and returns the socket, which the test then never reads.
async fn non_reading_socket(port: u16, token: &str, device_id: i64) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    let request = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {token}\r\n\
         X-SecureChat-Device: {device_id}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // The response head only, byte by byte: nothing after it is read.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .expect("handshake answer")
            .unwrap();
        assert_eq!(n, 1, "closed during the handshake");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// Reads whatever the relay had sent until the connection ends; fails if it does not end
/// within [`EVENTUALLY`] (the relay left the socket open).
async fn read_to_end(stream: &mut TcpStream) {
    let ended = tokio::time::timeout(EVENTUALLY, async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the relay never closed the stalled socket");
}

fn big_push(i: usize) -> Push {
    let text = format!(
        "{{\"v\":1,\"type\":\"filler\",\"n\":{i},\"pad\":\"{}\"}}",
        "x".repeat(64 * 1024)
    );
    Push {
        eid: None,
        text: text.into(),
        committed: None,
    }
}

struct Trio {
    a: User,
    b: User,
    s: User,
    dev_a: i64,
    dev_b: i64,
    dev_s: i64,
}

async fn trio(relay: &TestRelay) -> Trio {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    let s = user(relay, "stalled").await;
    befriend(relay, &a, &b).await;
    let dev_a = device(relay, a.id).await;
    let dev_b = device(relay, b.id).await;
    let dev_s = device(relay, s.id).await;
    Trio {
        a,
        b,
        s,
        dev_a,
        dev_b,
        dev_s,
    }
}

/// A client that stops reading: the relay pushes ~13 MB at it (more than the kernel buffers
/// and actix's queues hold), the connection is ended (by the write timeout or the push
/// queue's byte budget, depending on `relay`'s configuration), the hub forgets it, its
/// connection count drops, and its socket is closed. Meanwhile two others keep talking.
async fn stalled_reader_is_cut_off(relay: &TestRelay) {
    let t = trio(relay).await;
    let (mut a, _) = open_drained(relay, &t.a, t.dev_a).await;
    let (mut b, _) = open_drained(relay, &t.b, t.dev_b).await;
    let mut stalled = non_reading_socket(port(relay), &t.s.token, t.dev_s).await;
    let hub = relay.state.hub.clone();
    eventually("the stalled client registered", || {
        let hub = hub.clone();
        async move { hub.is_connected(t.dev_s) }
    })
    .await;
    assert_eq!(relay.state.metrics.ws_connections.get(), 3);

    for i in 0..200 {
        if !hub.push_to_device(t.dev_s, big_push(i)) {
            break;
        }
    }
    // The others are served while the stalled one is stuck.
    a.send_msg("m1", t.dev_b, b"still here").await;
    a.expect("accepted").await;
    assert_eq!(b.expect("envelope").await["id"], "m1");
    let health = relay
        .client()
        .get(relay.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    eventually("the stalled connection is ended", || {
        let hub = hub.clone();
        async move { !hub.is_connected(t.dev_s) }
    })
    .await;
    let metrics = relay.state.metrics.clone();
    eventually("the stalled connection's task is gone", || {
        let metrics = metrics.clone();
        async move { metrics.ws_connections.get() == 2 }
    })
    .await;
    read_to_end(&mut stalled).await;

    // Nothing else was disturbed.
    b.send_msg("m2", t.dev_a, b"and here").await;
    b.expect("accepted").await;
    assert_eq!(a.expect("envelope").await["id"], "m2");
    a.close().await;
    b.close().await;
}

/// The write timeout alone ends it: a 1 s timeout and a byte budget too large to matter.
async fn write_timeout(backend: Backend) {
    let Some(relay) = TestRelay::start_configured(backend, false, |c| {
        c.ws_write_timeout_ms = 1000;
        c.ws_push_queue_kib = 1024 * 1024;
    })
    .await
    else {
        return;
    };
    stalled_reader_is_cut_off(&relay).await;
    relay.stop().await;
}

/// The byte budget alone ends it: 256 KiB of queued pushes and a write timeout far longer
/// than the test's deadlines (fewer frames than the old 1024-frame bound).
async fn push_queue_byte_budget(backend: Backend) {
    let Some(relay) = TestRelay::start_configured(backend, false, |c| {
        c.ws_write_timeout_ms = 600_000;
        c.ws_push_queue_kib = 256;
    })
    .await
    else {
        return;
    };
    stalled_reader_is_cut_off(&relay).await;
    relay.stop().await;
}

#[actix_web::test]
async fn write_timeout_sqlite() {
    write_timeout(Backend::Sqlite).await;
}

#[actix_web::test]
async fn write_timeout_postgres() {
    write_timeout(Backend::Postgres).await;
}

#[actix_web::test]
async fn push_queue_byte_budget_sqlite() {
    push_queue_byte_budget(Backend::Sqlite).await;
}

#[actix_web::test]
async fn push_queue_byte_budget_postgres() {
    push_queue_byte_budget(Backend::Postgres).await;
}

/// Another session of `who`: a second login.
async fn second_session(relay: &TestRelay, who: &str) -> User {
    let email = format!("{who}@example.org");
    let (token, _) = relay.token(&email).await;
    let me: Value = relay
        .client()
        .get(relay.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    User {
        id: me["user_id"].as_i64().unwrap(),
        token,
    }
}

/// The id of the session `token` belongs to.
async fn session_id(relay: &TestRelay, token: &str) -> i64 {
    let list: Value = relay
        .client()
        .get(relay.url("/api/v1/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .expect("the current session is listed")["id"]
        .as_i64()
        .unwrap()
}

/// The socket closes with 4004 within [`WAIT`] (the relay re-checks sessions only once a
/// minute by itself: this is the hub closing it at once).
async fn closes_unauthorized(ws: &mut Ws, what: &str) {
    assert_eq!(ws.expect_close().await, Some(4004), "{what}");
}

async fn status(resp: reqwest::Response) -> u16 {
    resp.status().as_u16()
}

/// Revocation, sign-out, password change, device removal and account deletion close the
/// affected sockets at once, and only those.
async fn revocation_closes_sockets(relay: &TestRelay) {
    let me = user(relay, "revoked").await;
    let phone = device(relay, me.id).await;
    let laptop = device(relay, me.id).await;
    let client = relay.client();

    // DELETE /sessions/{id} from another session.
    let other = second_session(relay, "revoked").await;
    let (mut ws, _) = open_drained(relay, &other, phone).await;
    let (mut keeper, _) = open_drained(relay, &me, laptop).await;
    let id = session_id(relay, &other.token).await;
    let resp = client
        .delete(relay.url(&format!("/api/v1/sessions/{id}")))
        .bearer_auth(&me.token)
        .send()
        .await
        .unwrap();
    assert_eq!(status(resp).await, 204);
    closes_unauthorized(&mut ws, "revoked session").await;
    keeper.settled().await;

    // DELETE /sessions/current.
    let other = second_session(relay, "revoked").await;
    let (mut ws, _) = open_drained(relay, &other, phone).await;
    let resp = client
        .delete(relay.url("/api/v1/sessions/current"))
        .bearer_auth(&other.token)
        .send()
        .await
        .unwrap();
    assert_eq!(status(resp).await, 204);
    closes_unauthorized(&mut ws, "signed out").await;
    keeper.settled().await;

    // PUT /me/password: the other sessions' sockets close, the changing session's stays.
    let other = second_session(relay, "revoked").await;
    let (mut ws, _) = open_drained(relay, &other, phone).await;
    let new_password = "a different horse battery 77";
    let resp = client
        .put(relay.url("/api/v1/me/password"))
        .bearer_auth(&me.token)
        .json(&json!({"password": PASSWORD, "new_password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(status(resp).await, 204);
    closes_unauthorized(&mut ws, "password changed").await;
    keeper.settled().await;

    // DELETE /devices/{id}: that device's socket closes.
    let resp = client
        .delete(relay.url(&format!("/api/v1/devices/{laptop}")))
        .bearer_auth(&me.token)
        .send()
        .await
        .unwrap();
    assert_eq!(status(resp).await, 204);
    closes_unauthorized(&mut keeper, "device removed").await;

    // DELETE /me: every socket of the account closes.
    let (mut ws, _) = open_drained(relay, &me, phone).await;
    let resp = client
        .delete(relay.url("/api/v1/me"))
        .bearer_auth(&me.token)
        .json(&json!({"password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(status(resp).await, 204);
    closes_unauthorized(&mut ws, "account deleted").await;
}

on_both_backends!(revocation_closes_sockets);

/// Two relays on one PostgreSQL database: a session revoked through relay 1 closes its
/// socket on relay 2 at once (NOTIFY), not at relay 2's next once-a-minute check.
#[actix_web::test]
async fn revocation_reaches_other_relays_postgres() {
    let Some(relay) = TestRelay::start(Backend::Postgres).await else {
        return;
    };
    let me = user(&relay, "roaming").await;
    let phone = device(&relay, me.id).await;
    let other = second_session(&relay, "roaming").await;

    let mut config = (*relay.state.config).clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port2 = listener.local_addr().unwrap().port();
    let state = relay_server::server::build_state(config).unwrap();
    let listening = state.listening.clone();
    let server = relay_server::server::serve(listener, state).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    eventually("the second relay listens", || {
        let listening = listening.clone();
        async move { listening.load(Ordering::Relaxed) }
    })
    .await;

    let mut req = format!("ws://127.0.0.1:{port2}/api/v1/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", other.token)).unwrap(),
    );
    req.headers_mut().insert(
        "x-securechat-device",
        HeaderValue::from_str(&phone.to_string()).unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut ws = Ws { socket };
    ws.backlog().await;

    let id = session_id(&relay, &other.token).await;
    let resp = relay
        .client()
        .delete(relay.url(&format!("/api/v1/sessions/{id}")))
        .bearer_auth(&me.token)
        .send()
        .await
        .unwrap();
    assert_eq!(status(resp).await, 204);
    closes_unauthorized(&mut ws, "revoked through the other relay").await;
    handle.stop(false).await;
    relay.stop().await;
}
