//! Real-time delivery over `GET /api/v1/ws`, on SQLite and PostgreSQL: online and offline
//! delivery, acknowledgements, redelivery, idempotent sends, refusals, malformed frames,
//! replacement of a device's connection, handshake authentication, typing.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Backend, TestRelay};
use diesel::prelude::*;
use futures_util::StreamExt;
use relay_server::api::error::ApiError;
use relay_server::db::schema::envelopes;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use common::ws::*;
struct Pair {
    a: User,
    b: User,
    dev_a: i64,
    dev_b: i64,
}

async fn friends(relay: &TestRelay) -> Pair {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    befriend(relay, &a, &b).await;
    let dev_a = device(relay, a.id).await;
    let dev_b = device(relay, b.id).await;
    Pair { a, b, dev_a, dev_b }
}

/// A→B while both are online: `accepted` after the commit, the envelope pushed to B, B's ack
/// deletes the row and A gets a delivery receipt.
async fn online_delivery(relay: &TestRelay) {
    let p = friends(relay).await;
    let (mut b, backlog) = open_drained(relay, &p.b, p.dev_b).await;
    assert!(backlog.is_empty());
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;

    a.send_msg("m1", p.dev_b, b"hello bob").await;
    let accepted = a.expect("accepted").await;
    assert_eq!(accepted["id"], "m1");
    assert_eq!(accepted["to_device"], p.dev_b);
    // `accepted` means committed: the row is there.
    assert_eq!(rows(relay, Some(p.dev_b)).await, 1);

    let env = b.expect("envelope").await;
    assert_eq!(env["id"], "m1");
    assert_eq!(env["from_user"], p.a.id);
    assert_eq!(env["from_device"], p.dev_a);
    assert_eq!(env["kind"], 1);
    assert_eq!(
        B64.decode(env["ciphertext"].as_str().unwrap()).unwrap(),
        b"hello bob"
    );
    assert!(env["sent_at"].as_i64().unwrap() > 0);

    b.send(json!({"v": 1, "type": "ack", "ids": [env["eid"]]}))
        .await;
    let receipt = a.expect("delivered").await;
    assert_eq!(receipt["id"], "m1");
    assert_eq!(receipt["to_device"], p.dev_b);
    assert_eq!(rows(relay, None).await, 0);

    // B to A works the same way; an ack of an unknown id is ignored.
    b.send_msg("r1", p.dev_a, b"hi alice").await;
    b.expect("accepted").await;
    let env = a.expect("envelope").await;
    assert_eq!(env["from_user"], p.b.id);
    a.send(json!({"v": 1, "type": "ack", "ids": [env["eid"], 999_999]}))
        .await;
    b.expect("delivered").await;
    a.close().await;
    b.close().await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Everything the database holds, as bytes: the SQLite file and its WAL, or a `pg_dump` of the
/// PostgreSQL database (bytea there appears as hex, so callers also look for the hex form).
fn database_bytes(relay: &TestRelay) -> Vec<u8> {
    let url = &relay.state.config.database_url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut all = std::fs::read(path).unwrap();
        if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
            all.extend(wal);
        }
        all
    } else {
        let out = std::process::Command::new("pg_dump")
            .arg(url)
            .output()
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

fn assert_no_trace(relay: &TestRelay, marker: &[u8], when: &str) {
    let db = database_bytes(relay);
    assert!(db.len() > 1000, "the database dump is suspiciously small");
    for form in [
        marker.to_vec(),
        hex::encode(marker).into_bytes(),
        B64.encode(marker).into_bytes(),
    ] {
        assert!(!contains(&db, &form), "plaintext in the database {when}");
    }
    if let Ok(dir) = std::fs::read_dir(&relay.state.config.blob_dir) {
        for file in dir {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(
                !contains(&bytes, marker),
                "plaintext in the blob store {when}"
            );
        }
    }
}

/// An end-to-end run through the relay's real APIs with crypto-core on both ends: devices
/// registered with real keys, a bundle fetched, X3DH + Double Ratchet messages over the
/// WebSocket and an encrypted attachment; the plaintext arrives, and no trace of it exists in
/// the database or the blob store, neither while queued nor after the acks.
async fn end_to_end_leaves_no_plaintext(relay: &TestRelay) {
    use crypto_core::Account;
    use crypto_core::attachment::{decrypt_attachment, encrypt_attachment};
    use crypto_core::message::SessionMessage;
    use crypto_core::prekeys::PrekeyBundle;

    let marker = b"MEET-AT-THE-OLD-MILL-AT-NINE-7f3a";
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    befriend(relay, &a, &b).await;
    let client = relay.client();
    let register = |who: &User, acc: &Account, otpks: Vec<crypto_core::prekeys::OneTimePrekey>| {
        let body = json!({
            "identity_key": B64.encode(acc.identity().encode()),
            "name": "laptop",
            "signed_prekey": B64.encode(acc.signed_prekey().unwrap().encode()),
            "one_time_prekeys": otpks.iter().map(|k| B64.encode(k.encode())).collect::<Vec<_>>(),
        });
        client
            .post(relay.url("/api/v1/devices"))
            .bearer_auth(&who.token)
            .json(&body)
            .send()
    };
    let mut alice_acc = Account::new().unwrap();
    alice_acc.generate_signed_prekey(1_800_000_000).unwrap();
    let mut bob_acc = Account::new().unwrap();
    bob_acc.generate_signed_prekey(1_800_000_000).unwrap();
    let bob_otpks = bob_acc.generate_one_time_prekeys(5).unwrap();
    let resp = register(&a, &alice_acc, Vec::new()).await.unwrap();
    assert_eq!(resp.status(), 201);
    let dev_a = resp.json::<Value>().await.unwrap()["device_id"]
        .as_i64()
        .unwrap();
    let resp = register(&b, &bob_acc, bob_otpks).await.unwrap();
    assert_eq!(resp.status(), 201);
    let dev_b = resp.json::<Value>().await.unwrap()["device_id"]
        .as_i64()
        .unwrap();

    // Alice fetches Bob's bundle and encrypts; an attachment goes up encrypted too.
    let fetched: Value = client
        .post(relay.url(&format!("/api/v1/users/bob/devices/{dev_b}/bundle")))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bundle =
        PrekeyBundle::decode(&B64.decode(fetched["bundle"].as_str().unwrap()).unwrap()).unwrap();
    let mut to_bob = alice_acc.create_outbound_session(&bundle).unwrap();
    let file: Vec<u8> = marker.iter().copied().cycle().take(200_000).collect();
    let (file_ct, file_info) = encrypt_attachment(&file).unwrap();
    let uploaded: Value = client
        .post(relay.url("/api/v1/attachments"))
        .bearer_auth(&a.token)
        .header("content-type", "application/octet-stream")
        .body(file_ct)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let attachment_id = uploaded["id"].as_str().unwrap().to_owned();
    let mut texts = Vec::new();
    let (mut ws_a, _) = open_drained(relay, &a, dev_a).await;
    for i in 0..3 {
        let text = format!(
            "{} #{i} file {attachment_id}",
            String::from_utf8_lossy(marker)
        );
        let wire = to_bob.encrypt(text.as_bytes()).unwrap().encode();
        ws_a.send_msg(&format!("e2e-{i}"), dev_b, &wire).await;
        ws_a.expect("accepted").await;
        texts.push(text);
    }
    assert_no_trace(relay, marker, "while the messages are queued");

    // Bob receives, decrypts, downloads and decrypts the attachment, and acks.
    let (mut ws_b, backlog) = open_drained(relay, &b, dev_b).await;
    assert_eq!(backlog.len(), 3);
    let mut from_alice = None;
    for (env, text) in backlog.iter().zip(&texts) {
        let wire = B64.decode(env["ciphertext"].as_str().unwrap()).unwrap();
        let message = SessionMessage::decode(&wire).unwrap();
        let plain = match (&mut from_alice, &message) {
            (None, SessionMessage::Prekey(first)) => {
                let (session, plain) = bob_acc.create_inbound_session(first).unwrap();
                from_alice = Some(session);
                plain
            }
            (Some(session), _) => session.decrypt(&message).unwrap(),
            (None, _) => panic!("the first message must be a prekey message"),
        };
        assert_eq!(plain.as_slice(), text.as_bytes());
    }
    let blob = client
        .get(relay.url(&format!("/api/v1/attachments/{attachment_id}")))
        .bearer_auth(&b.token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        decrypt_attachment(&blob, &file_info).unwrap().as_slice(),
        file.as_slice()
    );
    let eids: Vec<Value> = backlog.iter().map(|e| e["eid"].clone()).collect();
    ws_b.send(json!({"v": 1, "type": "ack", "ids": eids})).await;
    ws_a.expect("delivered").await;
    assert_eq!(rows(relay, None).await, 0);
    assert_no_trace(relay, marker, "after delivery");
    ws_a.close().await;
    ws_b.close().await;
}

/// 250 envelopes sent while B is offline arrive in order, in batches, then `queue_empty`.
async fn offline_backlog(relay: &TestRelay) {
    let p = friends(relay).await;
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;
    for i in 0..250 {
        a.send_msg(&format!("m{i}"), p.dev_b, format!("body {i}").as_bytes())
            .await;
    }
    for i in 0..250 {
        let acc = a.expect("accepted").await;
        assert_eq!(acc["id"], format!("m{i}"));
    }
    assert_eq!(rows(relay, Some(p.dev_b)).await, 250);

    let (mut b, backlog) = open_drained(relay, &p.b, p.dev_b).await;
    assert_eq!(backlog.len(), 250);
    let mut last = 0;
    for (i, env) in backlog.iter().enumerate() {
        assert_eq!(env["id"], format!("m{i}"));
        let eid = env["eid"].as_i64().unwrap();
        assert!(eid > last, "arrival order");
        last = eid;
        assert_eq!(
            B64.decode(env["ciphertext"].as_str().unwrap()).unwrap(),
            format!("body {i}").as_bytes()
        );
    }
    let ids: Vec<Value> = backlog.iter().map(|e| e["eid"].clone()).collect();
    b.send(json!({"v": 1, "type": "ack", "ids": ids})).await;
    for _ in 0..250 {
        a.expect("delivered").await;
    }
    assert_eq!(rows(relay, None).await, 0);
    a.close().await;
    b.close().await;
}

/// Delivered but not acknowledged: redelivered on the next connection.
async fn redelivery_without_ack(relay: &TestRelay) {
    let p = friends(relay).await;
    let (mut b, _) = open_drained(relay, &p.b, p.dev_b).await;
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;
    a.send_msg("x1", p.dev_b, b"one").await;
    a.send_msg("x2", p.dev_b, b"two").await;
    a.expect("accepted").await;
    a.expect("accepted").await;
    let e1 = b.expect("envelope").await;
    let e2 = b.expect("envelope").await;
    assert_eq!(
        (e1["id"].as_str(), e2["id"].as_str()),
        (Some("x1"), Some("x2"))
    );
    drop(b); // gone without acking

    let (mut b, backlog) = open_drained(relay, &p.b, p.dev_b).await;
    let ids: Vec<&str> = backlog.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["x1", "x2"]);
    assert_eq!(backlog[0]["eid"], e1["eid"]);
    b.send(json!({"v": 1, "type": "ack", "ids": [e1["eid"]]}))
        .await;
    a.expect("delivered").await;
    b.close().await;

    let (b, backlog) = open_drained(relay, &p.b, p.dev_b).await;
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0]["id"], "x2");
    b.close().await;
    a.close().await;
}

/// The same client id to the same device is stored once; to another device it is another
/// envelope.
async fn duplicate_send_stored_once(relay: &TestRelay) {
    let p = friends(relay).await;
    let dev_b2 = device(relay, p.b.id).await;
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;
    for _ in 0..3 {
        a.send_msg("same", p.dev_b, b"payload").await;
        let acc = a.expect("accepted").await;
        assert_eq!(acc["id"], "same");
    }
    assert_eq!(rows(relay, Some(p.dev_b)).await, 1);
    a.send_msg("same", dev_b2, b"payload").await;
    a.expect("accepted").await;
    assert_eq!(rows(relay, None).await, 2);

    let (b, backlog) = open_drained(relay, &p.b, p.dev_b).await;
    assert_eq!(backlog.len(), 1);
    b.close().await;
    a.close().await;
}

/// Strangers, unknown devices and other people's envelopes: typed errors, nothing stored or
/// deleted.
async fn refusals(relay: &TestRelay) {
    let p = friends(relay).await;
    let carol = user(relay, "carol").await;
    let dev_c = device(relay, carol.id).await;
    let dev_a2 = device(relay, p.a.id).await;
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;

    a.send_msg("s1", dev_c, b"to a stranger").await;
    let err = a.expect_error("not_friends").await;
    assert_eq!(err["id"], "s1");
    assert_eq!(err["to_device"], dev_c);

    a.send_msg("s2", 987_654_321, b"to nowhere").await;
    let err = a.expect_error("unknown_device").await;
    assert_eq!(err["id"], "s2");
    assert_eq!(rows(relay, None).await, 0);

    // One's own other device is fine.
    a.send_msg("s3", dev_a2, b"sync").await;
    a.expect("accepted").await;
    // A friend's device is fine; the stranger cannot ack it away.
    a.send_msg("s4", p.dev_b, b"for bob").await;
    let acc = a.expect("accepted").await;
    assert_eq!(acc["id"], "s4");
    let (mut c, _) = open_drained(relay, &carol, dev_c).await;
    let eids: Vec<i64> = relay
        .state
        .db
        .run(|conn| {
            envelopes::table
                .select(envelopes::id)
                .load::<i64>(conn)
                .map_err(ApiError::from)
        })
        .await
        .unwrap();
    c.send(json!({"v": 1, "type": "ack", "ids": eids})).await;
    // The stranger cannot send to A either.
    c.send_msg("c1", p.dev_a, b"hi?").await;
    c.expect_error("not_friends").await;
    assert_eq!(rows(relay, None).await, 2);
    c.close().await;
    a.close().await;
}

/// Malformed frames get typed errors and the connection keeps working; binary frames too;
/// an oversized frame closes with 1009 and the relay stays up.
async fn malformed_frames(relay: &TestRelay) {
    let p = friends(relay).await;
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;

    a.send_raw(Message::text("not json")).await;
    a.expect_error("invalid_json").await;
    a.send_raw(Message::text("[1,2]")).await;
    a.expect_error("invalid_json").await;
    a.send(json!({"type": "send"})).await;
    a.expect_error("unsupported_version").await;
    a.send(json!({"v": 2, "type": "ack", "ids": []})).await;
    a.expect_error("unsupported_version").await;
    a.send(json!({"v": 1, "type": "nope"})).await;
    a.expect_error("unknown_type").await;
    a.send(json!({"v": 1})).await;
    a.expect_error("unknown_type").await;
    a.send(json!({"v": 1, "type": "send", "id": 5, "to_device": p.dev_b, "kind": 1, "ciphertext": "aGk="}))
        .await;
    a.expect_error("invalid_frame").await;
    a.send(json!({"v": 1, "type": "send", "id": "w1", "to_device": "bob", "kind": 1, "ciphertext": "aGk="}))
        .await;
    let err = a.expect_error("invalid_frame").await;
    assert_eq!(err["id"], "w1");
    a.send(json!({"v": 1, "type": "send", "id": "w2", "to_device": p.dev_b, "kind": 1}))
        .await;
    a.expect_error("invalid_frame").await;
    a.send(json!({"v": 1, "type": "send", "id": "w3", "to_device": p.dev_b, "kind": 1, "ciphertext": "%%%"}))
        .await;
    a.expect_error("invalid_frame").await;
    a.send(json!({"v": 1, "type": "send", "id": "w4", "to_device": p.dev_b, "kind": 1, "ciphertext": ""}))
        .await;
    a.expect_error("invalid_frame").await;
    a.send(json!({"v": 1, "type": "send", "id": "x".repeat(65), "to_device": p.dev_b, "kind": 1, "ciphertext": "aGk="}))
        .await;
    a.expect_error("invalid_frame").await;
    a.send(json!({"v": 1, "type": "send", "id": "w5", "to_device": p.dev_b, "kind": -1, "ciphertext": "aGk="}))
        .await;
    a.expect_error("invalid_frame").await;
    a.send(json!({"v": 1, "type": "send", "id": "w6", "to_device": p.dev_b, "kind": 1, "ciphertext": "aGk=", "extra": true}))
        .await;
    a.expect_error("invalid_frame").await;
    a.send(json!({"v": 1, "type": "ack", "ids": ["one"]})).await;
    a.expect_error("invalid_frame").await;
    a.send(json!({"v": 1, "type": "ack", "ids": vec![1; 1001]}))
        .await;
    a.expect_error("invalid_frame").await;
    a.send(json!({"v": 1, "type": "typing", "to_user": p.b.id, "state": "dancing"}))
        .await;
    a.expect_error("invalid_frame").await;
    // 64 KiB + 1 byte of ciphertext: refused, not stored.
    a.send_msg("big", p.dev_b, &vec![7_u8; 64 * 1024 + 1]).await;
    let err = a.expect_error("too_large").await;
    assert_eq!(err["id"], "big");
    a.send_raw(Message::binary(vec![1_u8, 2, 3])).await;
    a.expect_error("binary_not_supported").await;
    assert_eq!(rows(relay, None).await, 0);

    // Exactly 64 KiB is fine, and the connection still works.
    a.send_msg("max", p.dev_b, &vec![7_u8; 64 * 1024]).await;
    a.expect("accepted").await;
    assert_eq!(rows(relay, None).await, 1);

    // A frame over the limit closes the connection with 1009.
    a.send_raw(Message::text("x".repeat(300 * 1024))).await;
    assert_eq!(a.expect_close().await, Some(1009));

    // The relay is still up.
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;
    a.send_msg("after", p.dev_b, b"still here").await;
    a.expect("accepted").await;
    a.close().await;
}

/// A second connection of the same device replaces the first (close code 4001).
async fn second_connection_replaces_first(relay: &TestRelay) {
    let p = friends(relay).await;
    let (mut first, _) = open_drained(relay, &p.b, p.dev_b).await;
    let (mut second, _) = open_drained(relay, &p.b, p.dev_b).await;
    assert_eq!(first.expect_close().await, Some(4001));

    // Pushes go to the new connection.
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;
    a.send_msg("n1", p.dev_b, b"to the new one").await;
    a.expect("accepted").await;
    let env = second.expect("envelope").await;
    assert_eq!(env["id"], "n1");
    second.close().await;
    a.close().await;
}

fn handshake_status(
    result: Result<(Socket, impl Sized), tokio_tungstenite::tungstenite::Error>,
) -> u16 {
    match result {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or(b"{}"))
                .unwrap_or(Value::Null);
            assert!(body["error"].is_string(), "typed error body: {body}");
            resp.status().as_u16()
        }
        Err(e) => panic!("handshake failed otherwise: {e}"),
    }
}

async fn try_open(relay: &TestRelay, headers: &[(&'static str, String)]) -> u16 {
    let mut req = ws_url(relay).into_client_request().unwrap();
    for (name, value) in headers {
        req.headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    handshake_status(tokio_tungstenite::connect_async(req).await)
}

/// The handshake: 401 without or with a forged token, 404 for someone else's device, 403 for
/// a foreign Origin; the relay's own origin, configured origins and the subprotocol way in.
async fn handshake_auth(relay: &TestRelay) {
    let p = friends(relay).await;
    let dev = ("x-securechat-device", p.dev_a.to_string());
    let bearer = ("authorization", format!("Bearer {}", p.a.token));
    assert_eq!(try_open(relay, std::slice::from_ref(&dev)).await, 401);
    let forged = ("authorization", format!("Bearer {}", "A".repeat(43)));
    assert_eq!(try_open(relay, &[dev.clone(), forged]).await, 401);
    let garbage = ("authorization", "Bearer nope".to_owned());
    assert_eq!(try_open(relay, &[dev.clone(), garbage]).await, 401);
    assert_eq!(try_open(relay, std::slice::from_ref(&bearer)).await, 400);
    let bobs = ("x-securechat-device", p.dev_b.to_string());
    assert_eq!(try_open(relay, &[bearer.clone(), bobs]).await, 404);
    let evil = ("origin", "https://evil.example.com".to_owned());
    assert_eq!(
        try_open(relay, &[bearer.clone(), dev.clone(), evil]).await,
        403
    );
    let own = ("origin", relay.base.clone());
    assert_eq!(
        try_open(relay, &[bearer.clone(), dev.clone(), own]).await,
        101
    );
    let unlisted = ("origin", "https://chat.example.org".to_owned());
    assert_eq!(
        try_open(relay, &[bearer.clone(), dev.clone(), unlisted]).await,
        403
    );

    // Browsers: token and device as subprotocols; the relay answers `securechat.v1`.
    let protocols = format!("securechat.v1, token.{}, device.{}", p.a.token, p.dev_a);
    let mut req = ws_url(relay).into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&protocols).unwrap(),
    );
    let (socket, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "securechat.v1");
    let mut ws = Ws { socket };
    ws.backlog().await;
    ws.close().await;
    // The web app's session cookie works from the relay's own origin, not from a foreign one
    // (cross-site WebSocket hijacking).
    let cookie = ("cookie", format!("securechat_session={}", p.a.token));
    let own = ("origin", relay.base.clone());
    assert_eq!(
        try_open(relay, &[cookie.clone(), dev.clone(), own]).await,
        101
    );
    let evil = ("origin", "https://evil.example.com".to_owned());
    assert_eq!(try_open(relay, &[cookie, dev.clone(), evil]).await, 403);
    // A forged token as a subprotocol: 401.
    let protocols = format!(
        "securechat.v1, token.{}, device.{}",
        "B".repeat(43),
        p.dev_a
    );
    assert_eq!(
        try_open(relay, &[("sec-websocket-protocol", protocols)]).await,
        401
    );
}

/// Typing reaches a friend's devices and not a stranger; presence reaches friends.
async fn typing_and_presence(relay: &TestRelay) {
    let p = friends(relay).await;
    let carol = user(relay, "carol").await;
    let dev_c = device(relay, carol.id).await;
    let (mut b, _) = open_drained(relay, &p.b, p.dev_b).await;
    let (mut c, _) = open_drained(relay, &carol, dev_c).await;
    let mut a = open(relay, &p.a, p.dev_a).await;
    // A learns that B is online; B learns that A came online.
    let mut saw_b_online = false;
    loop {
        let v = a.raw_next().await;
        match v["type"].as_str() {
            Some("presence") => {
                assert_eq!(v["user"], p.b.id, "only friends' presence: {v}");
                saw_b_online = v["online"] == true;
            }
            Some("queue_empty") => break,
            _ => panic!("unexpected {v}"),
        }
    }
    assert!(saw_b_online);
    let v = b.raw_next().await;
    assert_eq!(v["type"], "presence");
    assert_eq!(v["user"], p.a.id);
    assert_eq!(v["online"], true);

    a.send(json!({"v": 1, "type": "typing", "to_user": p.b.id, "state": "typing"}))
        .await;
    let t = b.expect("typing").await;
    assert_eq!(t["from_user"], p.a.id);
    assert_eq!(t["state"], "typing");
    a.send(json!({"v": 1, "type": "typing", "to_user": carol.id, "state": "typing"}))
        .await;
    a.expect_error("not_friends").await;
    c.quiet(300).await;

    // A leaves: B sees A offline; Carol sees nothing.
    a.close().await;
    let v = b.raw_next().await;
    assert_eq!(v["type"], "presence");
    assert_eq!(v["user"], p.a.id);
    assert_eq!(v["online"], false);
    c.quiet(300).await;
    b.close().await;
    c.close().await;
}

/// Nothing lives only in the relay's memory: a second relay started on the same database
/// (a restart, or a scaled-out instance) delivers what the first one accepted.
async fn another_relay_on_the_same_database_delivers(relay: &TestRelay) {
    let p = friends(relay).await;
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;
    a.send_msg("persist", p.dev_b, b"survives").await;
    a.expect("accepted").await;
    a.close().await;

    let mut config = (*relay.state.config).clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = relay_server::server::build_state(config).unwrap();
    let server = relay_server::server::serve(listener, state).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let mut req = format!("ws://127.0.0.1:{port}/api/v1/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", p.b.token)).unwrap(),
    );
    req.headers_mut().insert(
        "x-securechat-device",
        HeaderValue::from_str(&p.dev_b.to_string()).unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut b = Ws { socket };
    let backlog = b.backlog().await;
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0]["id"], "persist");
    b.send(json!({"v": 1, "type": "ack", "ids": [backlog[0]["eid"]]}))
        .await;
    // No frame answers an ack; once a later frame is answered, the ack has taken effect.
    b.settled().await;
    assert_eq!(
        rows(relay, None).await,
        0,
        "the ack did not delete the envelope"
    );
    b.close().await;
    handle.stop(false).await;
}

/// The same send racing with itself (a client retrying on two sockets in quick succession):
/// every attempt succeeds and one row is stored, on PostgreSQL's read committed too.
async fn concurrent_identical_sends_store_one(relay: &TestRelay) {
    let p = friends(relay).await;
    for round in 0..5 {
        let new = relay_server::services::delivery::NewEnvelope {
            from_user: p.a.id,
            from_device: p.dev_a,
            to_device: p.dev_b,
            client_id: format!("race{round}"),
            kind: 1,
            ciphertext: b"same".to_vec(),
        };
        let now = relay.clock().now();
        let attempts = (0..8).map(|_| {
            let new = new.clone();
            relay.state.db.run(move |conn| {
                relay_server::services::delivery::store(conn, &new, now)
                    .map_err(|e| ApiError::internal(format!("{e:?}")))
            })
        });
        let results = futures_util::future::join_all(attempts).await;
        let mut eids = Vec::new();
        let mut fresh = 0;
        for r in results {
            let stored = r.expect("every identical send succeeds");
            eids.push(stored.envelope.eid);
            fresh += usize::from(stored.fresh);
        }
        eids.dedup();
        assert_eq!(eids.len(), 1, "one envelope: {eids:?}");
        assert_eq!(fresh, 1);
    }
    assert_eq!(rows(relay, None).await, 5);
}

/// Expired envelopes are not delivered and are pruned.
async fn expired_not_delivered(relay: &TestRelay) {
    let p = friends(relay).await;
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;
    a.send_msg("old", p.dev_b, b"stale").await;
    a.expect("accepted").await;
    a.close().await;
    relay.clock().advance(31 * 86_400);
    // Sessions expired too: sign in again.
    let bob = User {
        id: p.b.id,
        token: relay.token("bob@example.org").await.0,
    };
    let (b, backlog) = open_drained(relay, &bob, p.dev_b).await;
    assert!(backlog.is_empty());
    assert_eq!(rows(relay, None).await, 0);
    b.close().await;
}

/// Holds the envelope table's write lock from another connection (SQLite: the database write
/// lock; PostgreSQL: an EXCLUSIVE lock on `envelopes`) until `release` is signalled, so that
/// the relay's writer blocks on its first transaction while more frames queue behind it.
fn hold_envelope_lock(
    relay: &TestRelay,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    use diesel::connection::SimpleConnection;
    use relay_server::db::DbConnection;
    let db = relay.state.db.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        let mut conn = db.get().unwrap();
        match &mut *conn {
            DbConnection::Sqlite(c) => c.batch_execute("BEGIN IMMEDIATE").unwrap(),
            DbConnection::Pg(c) => c
                .batch_execute("BEGIN; LOCK TABLE envelopes IN EXCLUSIVE MODE")
                .unwrap(),
        }
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
        conn.batch_execute("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();
    (release_tx, handle)
}

/// A burst of 200 frames sent without waiting (sends, repeats, refusals, a malformed one, an
/// ack) while the writer is held up: answered one for one in frame order, the good sends
/// stored once each and delivered in order, and committed many per transaction (the writer's
/// batch histogram shows transactions of more than 4 jobs).
async fn pipelined_burst_group_commit(relay: &TestRelay) {
    let p = friends(relay).await;
    let carol = user(relay, "carol").await;
    let dev_c = device(relay, carol.id).await;
    let (mut b, _) = open_drained(relay, &p.b, p.dev_b).await;
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;

    let sample = |key: &str| -> f64 {
        let text = relay.state.metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {text}"))
    };
    let jobs_before = sample("securechat_writer_jobs_total");
    let (release, holder) = hold_envelope_lock(relay);
    // (answer type, id or error code) expected for each frame, in order; and the ids B gets.
    let mut expected: Vec<(&str, String)> = Vec::new();
    let mut stored: Vec<String> = Vec::new();
    for i in 0..200 {
        let id = format!("p{i}");
        match i % 50 {
            10 => {
                a.send_msg(&id, dev_c, b"to a stranger").await;
                expected.push(("error", "not_friends".into()));
            }
            20 => {
                a.send(json!({"v": 1, "type": "send", "id": id, "to_device": p.dev_b, "kind": 1, "ciphertext": "not base64!"}))
                    .await;
                expected.push(("error", "invalid_frame".into()));
            }
            30 => {
                // A repeat of the previous send: answered again, stored once.
                let previous = format!("p{}", i - 1);
                a.send_msg(&previous, p.dev_b, format!("body {previous}").as_bytes())
                    .await;
                expected.push(("accepted", previous));
            }
            40 => {
                // An ack in the same batch (of nothing of A's): no answer.
                a.send(json!({"v": 1, "type": "ack", "ids": [999_999]}))
                    .await;
            }
            _ => {
                a.send_msg(&id, p.dev_b, format!("body {id}").as_bytes())
                    .await;
                expected.push(("accepted", id.clone()));
                stored.push(id);
            }
        }
    }
    // Every frame but the 4 malformed ones is a writer job. Once all 196 are handed over,
    // they sit in at most two transactions (the one blocked by the lock and the next, which
    // takes everything queued), so one of them holds more than 4 jobs.
    let deadline = std::time::Instant::now() + 4 * WAIT;
    while sample("securechat_writer_jobs_total") < jobs_before + 196.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay never queued the burst"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    release.send(()).unwrap();
    holder.join().unwrap();

    for (kind, key) in &expected {
        let v = a.expect(kind).await;
        if *kind == "error" {
            assert_eq!(&v["code"], key.as_str(), "{v}");
        } else {
            assert_eq!(&v["id"], key.as_str(), "{v}");
            assert_eq!(v["to_device"], p.dev_b);
        }
    }
    assert_eq!(rows(relay, Some(p.dev_b)).await, stored.len() as i64);

    let mut eids = Vec::new();
    for id in &stored {
        let env = b.expect("envelope").await;
        assert_eq!(&env["id"], id.as_str());
        assert_eq!(
            B64.decode(env["ciphertext"].as_str().unwrap()).unwrap(),
            format!("body {id}").as_bytes()
        );
        eids.push(env["eid"].clone());
    }
    b.quiet(200).await;
    b.send(json!({"v": 1, "type": "ack", "ids": eids})).await;
    for id in &stored {
        let receipt = a.expect("delivered").await;
        assert_eq!(&receipt["id"], id.as_str());
    }
    assert_eq!(rows(relay, None).await, 0);

    let count = sample("securechat_writer_batch_jobs_count");
    let sum = sample("securechat_writer_batch_jobs_sum");
    let at_most_4 = sample("securechat_writer_batch_jobs_bucket{le=\"4.0\"}");
    let text = relay.state.metrics.render();
    assert!(sum > count, "no transaction held more than one job: {text}");
    assert!(
        at_most_4 < count,
        "no transaction held more than 4 jobs: {text}"
    );
    a.close().await;
    b.close().await;
}

/// An ack followed at once by the close (a client quitting right after acknowledging): the
/// ack still takes effect and the receipts go out. (actix-ws reports the closed connection
/// before the frames it had already read; the relay reads them after the error.)
async fn ack_then_close_at_once(relay: &TestRelay) {
    let p = friends(relay).await;
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;
    for round in 0..20 {
        let (mut b, _) = open_drained(relay, &p.b, p.dev_b).await;
        let mut eids = Vec::new();
        for i in 0..5 {
            a.send_msg(&format!("r{round}m{i}"), p.dev_b, b"x").await;
            a.expect("accepted").await;
        }
        for _ in 0..5 {
            eids.push(b.expect("envelope").await["eid"].clone());
        }
        b.send(json!({"v": 1, "type": "ack", "ids": eids})).await;
        b.close().await;
        common::eventually(
            &format!("round {round}: the ack sent just before the close takes effect"),
            || async { rows(relay, Some(p.dev_b)).await == 0 },
        )
        .await;
        // And the senders get their delivery receipts.
        for i in 0..5 {
            assert_eq!(a.expect("delivered").await["id"], format!("r{round}m{i}"));
        }
    }
    a.close().await;
}

/// An envelope answered `accepted` is the recipient's: it stays queued when its sender then
/// deletes the sending device, or the whole account (the sender columns used to cascade).
async fn sender_deletion_keeps_accepted_envelopes(relay: &TestRelay) {
    let p = friends(relay).await;
    let dev_a2 = device(relay, p.a.id).await;
    let (mut a, _) = open_drained(relay, &p.a, p.dev_a).await;
    a.send_msg("m1", p.dev_b, b"before the device goes").await;
    assert_eq!(a.expect("accepted").await["id"], "m1");
    a.close().await;
    let resp = relay
        .client()
        .delete(relay.url(&format!("/api/v1/devices/{}", p.dev_a)))
        .bearer_auth(&p.a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        rows(relay, Some(p.dev_b)).await,
        1,
        "device deletion kept m1"
    );

    let (mut a2, _) = open_drained(relay, &p.a, dev_a2).await;
    a2.send_msg("m2", p.dev_b, b"before the account goes").await;
    assert_eq!(a2.expect("accepted").await["id"], "m2");
    a2.close().await;
    let resp = relay
        .client()
        .delete(relay.url("/api/v1/me"))
        .bearer_auth(&p.a.token)
        .json(&json!({"password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        rows(relay, Some(p.dev_b)).await,
        2,
        "account deletion kept m1, m2"
    );

    let (_b, backlog) = open_drained(relay, &p.b, p.dev_b).await;
    let got: Vec<(String, i64, i64, Vec<u8>)> = backlog
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["from_user"].as_i64().unwrap(),
                e["from_device"].as_i64().unwrap(),
                B64.decode(e["ciphertext"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "m1".to_owned(),
                p.a.id,
                p.dev_a,
                b"before the device goes".to_vec()
            ),
            (
                "m2".to_owned(),
                p.a.id,
                dev_a2,
                b"before the account goes".to_vec()
            ),
        ]
    );
}

on_both_backends!(
    end_to_end_leaves_no_plaintext,
    sender_deletion_keeps_accepted_envelopes,
    ack_then_close_at_once,
    pipelined_burst_group_commit,
    online_delivery,
    offline_backlog,
    redelivery_without_ack,
    duplicate_send_stored_once,
    refusals,
    malformed_frames,
    second_connection_replaces_first,
    handshake_auth,
    typing_and_presence,
    expired_not_delivered,
    another_relay_on_the_same_database_delivers,
    concurrent_identical_sends_store_one,
);

/// A configured allowed origin may connect; others still may not.
async fn configured_origin(backend: Backend) {
    let Some(relay) = TestRelay::start_configured(backend, false, |c| {
        c.allowed_origins = vec!["https://chat.example.org".into()];
    })
    .await
    else {
        return;
    };
    let p = friends(&relay).await;
    let dev = ("x-securechat-device", p.dev_a.to_string());
    let bearer = ("authorization", format!("Bearer {}", p.a.token));
    let allowed = ("origin", "https://chat.example.org".to_owned());
    assert_eq!(
        try_open(&relay, &[bearer.clone(), dev.clone(), allowed]).await,
        101
    );
    let other = ("origin", "https://chat.example.org.evil.test".to_owned());
    assert_eq!(try_open(&relay, &[bearer, dev, other]).await, 403);
    relay.stop().await;
}

/// With the production limits: a burst of 600 send/typing frames per account, then
/// `rate_limited` with `retry_after`; 30 WebSocket handshakes per account per minute, then 429.
async fn rate_limits(backend: Backend) {
    let Some(relay) = TestRelay::start_with(backend, true).await else {
        return;
    };
    let p = friends(&relay).await;
    let (mut a, _) = open_drained(&relay, &p.a, p.dev_a).await;
    for _ in 0..600 {
        a.send(json!({"v": 1, "type": "typing", "to_user": p.b.id, "state": "typing"}))
            .await;
    }
    // The relay's clock is frozen (no refill however long the 600 frames took): the 601st
    // frame is refused.
    a.send_msg("limited", p.dev_b, b"one too many").await;
    let err = a.expect_error("rate_limited").await;
    assert_eq!(err["id"], "limited");
    assert!(err["retry_after"].as_u64().unwrap() >= 1);
    assert_eq!(rows(&relay, None).await, 0);
    // The bucket refills at 10 a second: a tenth of a second later one send passes, the next
    // does not.
    relay.clock().advance_by(Duration::from_millis(100));
    a.send_msg("refilled", p.dev_b, b"one more").await;
    assert_eq!(a.expect("accepted").await["id"], "refilled");
    a.send_msg("limited again", p.dev_b, b"one too many").await;
    assert_eq!(a.expect_error("rate_limited").await["id"], "limited again");
    assert_eq!(rows(&relay, None).await, 1);
    a.close().await;

    let dev = ("x-securechat-device", p.dev_b.to_string());
    let bearer = ("authorization", format!("Bearer {}", p.b.token));
    for _ in 0..30 {
        assert_eq!(try_open(&relay, &[bearer.clone(), dev.clone()]).await, 101);
    }
    assert_eq!(try_open(&relay, &[bearer, dev]).await, 429);
    relay.stop().await;
}

#[actix_web::test]
async fn rate_limits_sqlite() {
    rate_limits(Backend::Sqlite).await;
}

#[actix_web::test]
async fn rate_limits_postgres() {
    rate_limits(Backend::Postgres).await;
}

/// The relay pings; a client that answers stays, one that stops reading (no pongs, no frames)
/// is closed with 4002 after three heartbeat intervals.
async fn heartbeat_and_idle_timeout(backend: Backend) {
    let Some(relay) =
        TestRelay::start_configured(backend, false, |c| c.ws_heartbeat_secs = 1).await
    else {
        return;
    };
    let p = friends(&relay).await;
    // Reading (so answering pings) through four pings, which is more than the three silent
    // intervals that close a connection: still open. Counted in pings, not in seconds, so a
    // slow machine only makes it take longer.
    let (mut live, _) = open_drained(&relay, &p.a, p.dev_a).await;
    let mut pings = 0;
    while pings < 4 {
        match tokio::time::timeout(WAIT, live.socket.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Close(f)))) => panic!("closed while answering pings: {f:?}"),
            Ok(None | Some(Err(_))) => panic!("connection lost"),
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("no ping within {WAIT:?} (after {pings})"),
        }
    }
    live.send_msg("alive", p.dev_b, b"still open").await;
    live.expect("accepted").await;

    // Not reading: no pongs go out, so the relay drops the connection and closes it with
    // 4002. The test watches the relay's side without touching the socket (reading would
    // answer the pings).
    let (mut silent, _) = open_drained(&relay, &p.b, p.dev_b).await;
    assert!(relay.state.hub.is_connected(p.dev_b));
    let deadline = std::time::Instant::now() + 4 * WAIT;
    while relay.state.hub.is_connected(p.dev_b) {
        assert!(
            std::time::Instant::now() < deadline,
            "the silent connection was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The close frame is there, unless the client's late pongs hit the closed socket first
    // (tungstenite flushes them before reading on).
    loop {
        match tokio::time::timeout(WAIT, silent.socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(f))) => {
                assert_eq!(f.map(|f| u16::from(f.code)), Some(4002));
                break;
            }
            None | Some(Err(_)) => break,
            Some(Ok(_)) => {}
        }
    }
    live.close().await;

    // Signing out ends the open connection (checked every three intervals): close 4004.
    let (mut signed_out, _) = open_drained(&relay, &p.a, p.dev_a).await;
    let resp = relay
        .client()
        .delete(relay.url("/api/v1/sessions/current"))
        .bearer_auth(&p.a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let code = loop {
        match tokio::time::timeout(WAIT, signed_out.socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            None | Some(Err(_)) => break None,
            Some(Ok(_)) => {}
        }
    };
    assert_eq!(code, Some(4004));
    relay.stop().await;
}

#[actix_web::test]
async fn heartbeat_and_idle_timeout_sqlite() {
    heartbeat_and_idle_timeout(Backend::Sqlite).await;
}

#[actix_web::test]
async fn heartbeat_and_idle_timeout_postgres() {
    heartbeat_and_idle_timeout(Backend::Postgres).await;
}

/// Two relays on one PostgreSQL database: an envelope accepted by one is pushed live by the
/// other, which has the recipient connected (LISTEN/NOTIFY).
#[actix_web::test]
async fn cross_relay_live_push_postgres() {
    let Some(relay) = TestRelay::start(Backend::Postgres).await else {
        return;
    };
    let p = friends(&relay).await;
    let mut config = (*relay.state.config).clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = relay_server::server::build_state(config).unwrap();
    let listening = state.listening.clone();
    let server = relay_server::server::serve(listener, state).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let deadline = std::time::Instant::now() + 4 * WAIT;
    while !listening.load(Ordering::Relaxed) {
        assert!(
            std::time::Instant::now() < deadline,
            "the second relay never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut req = format!("ws://127.0.0.1:{port}/api/v1/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", p.b.token)).unwrap(),
    );
    req.headers_mut().insert(
        "x-securechat-device",
        HeaderValue::from_str(&p.dev_b.to_string()).unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut b = Ws { socket };
    assert!(b.backlog().await.is_empty());

    let (mut a, _) = open_drained(&relay, &p.a, p.dev_a).await;
    for i in 0..3 {
        a.send_msg(&format!("x{i}"), p.dev_b, b"across relays")
            .await;
        a.expect("accepted").await;
    }
    for i in 0..3 {
        let env = b.expect("envelope").await;
        assert_eq!(env["id"], format!("x{i}"));
    }
    a.close().await;
    b.close().await;
    handle.stop(false).await;
    relay.stop().await;
}

#[actix_web::test]
async fn configured_origin_sqlite() {
    configured_origin(Backend::Sqlite).await;
}

#[actix_web::test]
async fn configured_origin_postgres() {
    configured_origin(Backend::Postgres).await;
}
