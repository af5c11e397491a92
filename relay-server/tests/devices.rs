//! Devices and the prekey directory over real HTTP, on SQLite and PostgreSQL: registration with
//! strict signature checks, limits, rotation, deletion, friends-only visibility, bundles that
//! crypto-core verifies and starts a working session from, and one-time prekeys that are
//! never handed out twice, even to concurrent fetches.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Backend, TestRelay, assert_error, call, ok_json};
use crypto_core::Account;
use crypto_core::message::SessionMessage;
use crypto_core::prekeys::{OneTimePrekey, PrekeyBundle, SignedPrekey};
use diesel::prelude::*;
use relay_server::api::error::ApiError;
use relay_server::db::schema::{devices, envelopes, one_time_prekeys, signed_prekeys};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;

const T0: u64 = 1_790_000_000;

struct User {
    id: i64,
    ms_id: String,
    token: String,
}

async fn user(relay: &TestRelay, ms_id: &str) -> User {
    let email = format!("{ms_id}@example.org");
    let created = relay.register(&email, ms_id).await;
    let (token, _) = relay.token(&email).await;
    User {
        id: created["user_id"].as_i64().unwrap(),
        ms_id: ms_id.to_owned(),
        token,
    }
}

impl common::Bearer for User {
    fn bearer(&self) -> &str {
        &self.token
    }
}

async fn send_request(relay: &TestRelay, from: &User, to: &User) -> reqwest::Response {
    call(
        relay,
        Method::POST,
        "/api/v1/friends/requests",
        from,
        Some(json!({ "ms_id": to.ms_id })),
    )
    .await
}

/// Makes `a` and `b` friends (crossed requests become a friendship).
async fn befriend(relay: &TestRelay, a: &User, b: &User) {
    ok_json(send_request(relay, a, b).await, 201).await;
    let accepted = ok_json(send_request(relay, b, a).await, 200).await;
    assert_eq!(accepted["status"], "accepted");
}

/// A device account with a signed prekey and `otpks` one-time prekeys.
fn account(otpks: usize) -> (Account, Vec<OneTimePrekey>) {
    let mut acc = Account::new().unwrap();
    acc.generate_signed_prekey(T0).unwrap();
    let keys = acc.generate_one_time_prekeys(otpks).unwrap();
    (acc, keys)
}

fn b64_keys(keys: &[OneTimePrekey]) -> Vec<String> {
    keys.iter().map(|k| B64.encode(k.encode())).collect()
}

fn registration(acc: &Account, name: &str, keys: &[OneTimePrekey]) -> Value {
    json!({
        "identity_key": B64.encode(acc.identity().encode()),
        "name": name,
        "signed_prekey": B64.encode(acc.signed_prekey().unwrap().encode()),
        "one_time_prekeys": b64_keys(keys),
    })
}

async fn register_raw(relay: &TestRelay, who: &User, body: Value) -> reqwest::Response {
    call(relay, Method::POST, "/api/v1/devices", who, Some(body)).await
}

/// Registers `acc` for `who`; returns the device id.
async fn register(relay: &TestRelay, who: &User, acc: &Account, keys: &[OneTimePrekey]) -> i64 {
    let body = ok_json(
        register_raw(relay, who, registration(acc, "laptop", keys)).await,
        201,
    )
    .await;
    body["device_id"].as_i64().unwrap()
}

async fn own_devices(relay: &TestRelay, who: &User) -> Vec<Value> {
    ok_json(
        call(relay, Method::GET, "/api/v1/devices", who, None).await,
        200,
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

async fn count(relay: &TestRelay, who: &User, device: i64) -> reqwest::Response {
    call(
        relay,
        Method::GET,
        &format!("/api/v1/devices/{device}/one-time-prekeys/count"),
        who,
        None,
    )
    .await
}

async fn remaining(relay: &TestRelay, who: &User, device: i64) -> i64 {
    ok_json(count(relay, who, device).await, 200).await["remaining"]
        .as_i64()
        .unwrap()
}

async fn upload(
    relay: &TestRelay,
    who: &User,
    device: i64,
    keys: Vec<String>,
) -> reqwest::Response {
    call(
        relay,
        Method::POST,
        &format!("/api/v1/devices/{device}/one-time-prekeys"),
        who,
        Some(json!({ "prekeys": keys })),
    )
    .await
}

async fn rotate(
    relay: &TestRelay,
    who: &User,
    device: i64,
    spk: &SignedPrekey,
) -> reqwest::Response {
    call(
        relay,
        Method::PUT,
        &format!("/api/v1/devices/{device}/signed-prekey"),
        who,
        Some(json!({ "signed_prekey": B64.encode(spk.encode()) })),
    )
    .await
}

async fn fetch(relay: &TestRelay, who: &User, owner: &str, device: i64) -> reqwest::Response {
    call(
        relay,
        Method::POST,
        &format!("/api/v1/users/{owner}/devices/{device}/bundle"),
        who,
        None,
    )
    .await
}

/// Fetches a bundle, checks that its parts agree with it, and decodes (verifies) it.
async fn fetch_bundle(relay: &TestRelay, who: &User, owner: &str, device: i64) -> PrekeyBundle {
    let body = ok_json(fetch(relay, who, owner, device).await, 200).await;
    assert_eq!(body["device_id"], device);
    let bundle = PrekeyBundle::decode(&B64.decode(body["bundle"].as_str().unwrap()).unwrap())
        .expect("the bundle verifies");
    assert_eq!(
        body["identity_key"].as_str().unwrap(),
        B64.encode(bundle.identity().encode())
    );
    assert_eq!(
        body["signed_prekey"].as_str().unwrap(),
        B64.encode(bundle.signed_prekey().encode())
    );
    match bundle.one_time_prekey() {
        Some(k) => assert_eq!(
            body["one_time_prekey"].as_str().unwrap(),
            B64.encode(k.encode())
        ),
        None => assert!(body["one_time_prekey"].is_null(), "{body}"),
    }
    bundle
}

async fn friend_devices(relay: &TestRelay, who: &User, owner: &str) -> reqwest::Response {
    call(
        relay,
        Method::GET,
        &format!("/api/v1/users/{owner}/devices"),
        who,
        None,
    )
    .await
}

/// Rows of (devices, signed_prekeys, one_time_prekeys) of a device, straight from the database.
async fn rows_of(relay: &TestRelay, device: i64) -> (i64, i64, i64) {
    relay
        .state
        .db
        .run(move |conn| {
            let d: i64 = devices::table
                .filter(devices::id.eq(device))
                .count()
                .get_result(conn)?;
            let s: i64 = signed_prekeys::table
                .filter(signed_prekeys::device_id.eq(device))
                .count()
                .get_result(conn)?;
            let o: i64 = one_time_prekeys::table
                .filter(one_time_prekeys::device_id.eq(device))
                .count()
                .get_result(conn)?;
            Ok::<_, ApiError>((d, s, o))
        })
        .await
        .unwrap()
}

/// Queues an envelope from `from_device` (of `from_user`) to `to_device`, straight into the
/// database (delivery is built elsewhere).
async fn queue_envelope(relay: &TestRelay, from_user: i64, from_device: i64, to_device: i64) {
    relay
        .state
        .db
        .run(move |conn| {
            diesel::insert_into(envelopes::table)
                .values((
                    envelopes::recipient_device_id.eq(to_device),
                    envelopes::sender_user_id.eq(from_user),
                    envelopes::sender_device_id.eq(from_device),
                    envelopes::client_id.eq(format!("c{from_device}-{to_device}")),
                    envelopes::kind.eq(1),
                    envelopes::ciphertext.eq(vec![1u8, 2, 3]),
                    envelopes::created_at.eq(1_i64),
                    envelopes::expires_at.eq(i64::MAX),
                ))
                .execute(conn)?;
            Ok::<_, ApiError>(())
        })
        .await
        .unwrap();
}

async fn envelopes_of(relay: &TestRelay, device: i64) -> i64 {
    relay
        .state
        .db
        .run(move |conn| {
            Ok::<_, ApiError>(
                envelopes::table
                    .filter(
                        envelopes::recipient_device_id
                            .eq(device)
                            .or(envelopes::sender_device_id.eq(device)),
                    )
                    .count()
                    .get_result::<i64>(conn)?,
            )
        })
        .await
        .unwrap()
}

fn flip_last_bit(bytes: &[u8]) -> String {
    let mut bytes = bytes.to_vec();
    *bytes.last_mut().unwrap() ^= 1;
    B64.encode(bytes)
}

// ---------------------------------------------------------------------------------------------

async fn register_and_list(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    assert!(own_devices(relay, &alice).await.is_empty());

    let (acc, keys) = account(5);
    let id = register(relay, &alice, &acc, &keys).await;
    let (acc2, _) = account(0);
    let mut body = registration(&acc2, "  phone  ", &[]);
    body.as_object_mut().unwrap().remove("one_time_prekeys");
    let id2 = ok_json(register_raw(relay, &alice, body).await, 201).await["device_id"]
        .as_i64()
        .unwrap();
    assert_ne!(id, id2);

    let list = own_devices(relay, &alice).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["device_id"], id);
    assert_eq!(list[0]["name"], "laptop");
    assert_eq!(
        list[0]["identity_key"].as_str().unwrap(),
        B64.encode(acc.identity().encode())
    );
    assert_eq!(list[0]["signed_prekey_id"], 1);
    assert_eq!(list[0]["one_time_prekeys"], 5);
    assert!(list[0]["created_at"].is_i64());
    assert_eq!(list[1]["device_id"], id2);
    assert_eq!(list[1]["name"], "phone");
    assert_eq!(list[1]["one_time_prekeys"], 0);
    assert_eq!(remaining(relay, &alice, id).await, 5);
    assert_eq!(remaining(relay, &alice, id2).await, 0);

    // The owner sees their devices in the directory too (their devices talk to each other).
    let dir = ok_json(friend_devices(relay, &alice, "ALICE").await, 200).await;
    assert_eq!(dir.as_array().unwrap().len(), 2);
    let b = fetch_bundle(relay, &alice, "alice", id2).await;
    assert!(b.one_time_prekey().is_none());

    // Anonymous: unauthorized.
    let resp = relay
        .client()
        .get(relay.url("/api/v1/devices"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "unauthorized").await;
}

async fn forged_and_malformed_keys(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let (acc, keys) = account(2);
    let identity = acc.identity().encode();
    let spk = acc.signed_prekey().unwrap().encode();
    let good = registration(&acc, "laptop", &keys);
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };

    // Identity: a flipped bit in the binding signature, or in the X25519 key it signs.
    let resp = register_raw(
        relay,
        &alice,
        with("identity_key", json!(flip_last_bit(&identity))),
    )
    .await;
    assert_error(resp, 400, "bad_signature").await;
    let mut x = identity.clone();
    x[40] ^= 0x10;
    let resp = register_raw(relay, &alice, with("identity_key", json!(B64.encode(&x)))).await;
    assert_error(resp, 400, "bad_signature").await;

    // Signed prekey: a flipped bit in its signature, or one signed by another identity.
    let resp = register_raw(
        relay,
        &alice,
        with("signed_prekey", json!(flip_last_bit(&spk))),
    )
    .await;
    assert_error(resp, 400, "bad_signature").await;
    let (other, _) = account(0);
    let foreign = B64.encode(other.signed_prekey().unwrap().encode());
    let resp = register_raw(relay, &alice, with("signed_prekey", json!(foreign))).await;
    assert_error(resp, 400, "bad_signature").await;

    // Malformed encodings.
    for (field, value) in [
        ("identity_key", json!("not base64!")),
        ("identity_key", json!(B64.encode(&identity[..128]))),
        (
            "identity_key",
            json!(B64.encode([&identity[..], &[0]].concat())),
        ),
        ("identity_key", json!("")),
        ("signed_prekey", json!(B64.encode(&spk[1..]))),
        (
            "signed_prekey",
            // A signed prekey of protocol version 1, which crypto-core v2 refuses.
            json!(B64.encode([&[1u8][..], &spk[1..]].concat())),
        ),
        ("one_time_prekeys", json!(["AAAA"])),
        (
            "one_time_prekeys",
            json!([B64.encode(keys[0].encode()), "%%"]),
        ),
    ] {
        let resp = register_raw(relay, &alice, with(field, value.clone())).await;
        let body = assert_error(resp, 400, "invalid_key").await;
        assert!(
            body["message"].as_str().unwrap().starts_with(field),
            "{field}={value}: {body}"
        );
    }
    for name in ["", "   ", "a\u{0007}b", "n".repeat(65).as_str()] {
        let resp = register_raw(relay, &alice, with("name", json!(name))).await;
        assert_error(resp, 400, "invalid_input").await;
    }
    let resp = register_raw(relay, &alice, json!({ "identity_key": 1 })).await;
    assert_error(resp, 400, "invalid_json").await;

    // Nothing was stored; the good registration still works.
    assert!(own_devices(relay, &alice).await.is_empty());
    let id = register(relay, &alice, &acc, &keys).await;
    assert_eq!(remaining(relay, &alice, id).await, 2);

    // Rotation is verified against the stored identity too.
    let resp = call(
        relay,
        Method::PUT,
        &format!("/api/v1/devices/{id}/signed-prekey"),
        &alice,
        Some(json!({ "signed_prekey": flip_last_bit(&spk) })),
    )
    .await;
    assert_error(resp, 400, "bad_signature").await;
    let resp = call(
        relay,
        Method::PUT,
        &format!("/api/v1/devices/{id}/signed-prekey"),
        &alice,
        Some(json!({ "signed_prekey": "??" })),
    )
    .await;
    assert_error(resp, 400, "invalid_key").await;
    let resp = upload(relay, &alice, id, vec![B64.encode([1u8; 10])]).await;
    assert_error(resp, 400, "invalid_key").await;
    assert_eq!(remaining(relay, &alice, id).await, 2);
}

async fn identity_taken_and_device_cap(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    let (acc, keys) = account(1);
    register(relay, &alice, &acc, &keys).await;
    // The same identity again, by its owner or by someone else.
    let resp = register_raw(relay, &alice, registration(&acc, "again", &[])).await;
    assert_error(resp, 409, "identity_taken").await;
    let resp = register_raw(relay, &bob, registration(&acc, "stolen", &[])).await;
    assert_error(resp, 409, "identity_taken").await;
    assert!(own_devices(relay, &bob).await.is_empty());

    for _ in 1..10 {
        let (acc, _) = account(0);
        register(relay, &alice, &acc, &[]).await;
    }
    assert_eq!(own_devices(relay, &alice).await.len(), 10);
    let (eleventh, _) = account(0);
    let resp = register_raw(relay, &alice, registration(&eleventh, "11th", &[])).await;
    assert_error(resp, 409, "too_many_devices").await;
    assert_eq!(own_devices(relay, &alice).await.len(), 10);
    // Another account is not affected.
    register(relay, &bob, &eleventh, &[]).await;

    // After removing a device there is room again.
    let first = own_devices(relay, &alice).await[0]["device_id"]
        .as_i64()
        .unwrap();
    let resp = call(
        relay,
        Method::DELETE,
        &format!("/api/v1/devices/{first}"),
        &alice,
        None,
    )
    .await;
    assert_eq!(resp.status(), 204);
    let (again, _) = account(0);
    register(relay, &alice, &again, &[]).await;
    // The deleted device's identity may be registered again.
    register(relay, &bob, &acc, &[]).await;
}

async fn strangers_see_nothing(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    let carol = user(relay, "carol").await;
    let (acc, keys) = account(3);
    let device = register(relay, &bob, &acc, &keys).await;

    // Not friends (yet): bob looks like no account at all, like an unknown ms_id.
    for who in [&alice, &carol] {
        let resp = friend_devices(relay, who, "bob").await;
        assert_error(resp, 404, "not_found").await;
        let resp = fetch(relay, who, "bob", device).await;
        assert_error(resp, 404, "not_found").await;
    }
    let resp = friend_devices(relay, &alice, "nobody").await;
    assert_error(resp, 404, "not_found").await;
    let resp = fetch(relay, &alice, "nobody", device).await;
    assert_error(resp, 404, "not_found").await;
    let resp = friend_devices(relay, &alice, "x").await;
    assert_error(resp, 400, "invalid_ms_id").await;
    let resp = fetch(relay, &alice, "bob", 0).await;
    assert_error(resp, 404, "not_found").await;
    let resp = call(
        relay,
        Method::POST,
        "/api/v1/users/bob/devices/abc/bundle",
        &alice,
        None,
    )
    .await;
    assert_error(resp, 400, "invalid_input").await;
    // Nothing was claimed.
    assert_eq!(remaining(relay, &bob, device).await, 3);

    befriend(relay, &alice, &bob).await;
    let list = ok_json(friend_devices(relay, &alice, "Bob").await, 200).await;
    assert_eq!(
        list,
        json!([{
            "device_id": device,
            "identity_key": B64.encode(acc.identity().encode()),
            "name": "laptop",
        }])
    );
    // Still nothing for carol, and no device of bob's through alice's name.
    let resp = fetch(relay, &carol, "bob", device).await;
    assert_error(resp, 404, "not_found").await;
    let resp = fetch(relay, &bob, "alice", device).await;
    assert_error(resp, 404, "not_found").await;
    fetch_bundle(relay, &alice, "bob", device).await;
    assert_eq!(remaining(relay, &bob, device).await, 2);

    // A block ends it both ways.
    let resp = call(
        relay,
        Method::POST,
        "/api/v1/blocks",
        &bob,
        Some(json!({ "ms_id": "alice" })),
    )
    .await;
    assert_eq!(resp.status(), 204);
    let resp = friend_devices(relay, &alice, "bob").await;
    assert_error(resp, 404, "not_found").await;
    let resp = fetch(relay, &alice, "bob", device).await;
    assert_error(resp, 404, "not_found").await;
    let resp = friend_devices(relay, &bob, "alice").await;
    assert_error(resp, 404, "not_found").await;
    assert_eq!(remaining(relay, &bob, device).await, 2);
}

async fn bundle_starts_a_real_session(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    befriend(relay, &alice, &bob).await;
    let (mut bob_acc, keys) = account(3);
    let device = register(relay, &bob, &bob_acc, &keys).await;
    let (alice_acc, _) = account(0);
    register(relay, &alice, &alice_acc, &[]).await;

    let bundle = fetch_bundle(relay, &alice, "bob", device).await;
    assert_eq!(bundle.identity(), bob_acc.identity());
    assert_eq!(bundle.signed_prekey(), bob_acc.signed_prekey().unwrap());
    // The oldest one-time prekey is handed out first.
    assert_eq!(bundle.one_time_prekey(), Some(&keys[0]));
    assert_eq!(remaining(relay, &bob, device).await, 2);

    let mut to_bob = alice_acc.create_outbound_session(&bundle).unwrap();
    let first = to_bob.encrypt(b"hello Bob, via the relay").unwrap();
    let SessionMessage::Prekey(prekey) = SessionMessage::decode(&first.encode()).unwrap() else {
        panic!("the first message carries the X3DH parameters");
    };
    let (mut to_alice, plaintext) = bob_acc.create_inbound_session(&prekey).unwrap();
    assert_eq!(&plaintext[..], b"hello Bob, via the relay");
    let reply = to_alice.encrypt(b"hi Alice").unwrap();
    assert_eq!(&to_bob.decrypt(&reply).unwrap()[..], b"hi Alice");

    // Each fetch claims the next prekey; then bundles come without one, and still work.
    let second = fetch_bundle(relay, &alice, "bob", device).await;
    assert_eq!(second.one_time_prekey(), Some(&keys[1]));
    let third = fetch_bundle(relay, &alice, "bob", device).await;
    assert_eq!(third.one_time_prekey(), Some(&keys[2]));
    assert_eq!(remaining(relay, &bob, device).await, 0);
    for _ in 0..2 {
        let empty = fetch_bundle(relay, &alice, "bob", device).await;
        assert!(empty.one_time_prekey().is_none());
        assert_eq!(empty.signed_prekey(), bob_acc.signed_prekey().unwrap());
    }
    let (carol_acc, _) = account(0);
    let empty = fetch_bundle(relay, &alice, "bob", device).await;
    let mut session = carol_acc.create_outbound_session(&empty).unwrap();
    let msg = session.encrypt(b"no one-time prekey").unwrap();
    let SessionMessage::Prekey(prekey) = SessionMessage::decode(&msg.encode()).unwrap() else {
        panic!("prekey message expected");
    };
    let (_, plaintext) = bob_acc.create_inbound_session(&prekey).unwrap();
    assert_eq!(&plaintext[..], b"no one-time prekey");

    // Replenished, the next fetch has one again.
    let more = bob_acc.generate_one_time_prekeys(2).unwrap();
    let body = ok_json(upload(relay, &bob, device, b64_keys(&more)).await, 200).await;
    assert_eq!(body["remaining"], 2);
    let refilled = fetch_bundle(relay, &alice, "bob", device).await;
    assert_eq!(refilled.one_time_prekey(), Some(&more[0]));
}

async fn one_time_prekey_limits(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let (mut acc, keys) = account(10);
    let device = register(relay, &alice, &acc, &keys).await;

    // More than 100 in one call, at registration or upload.
    let mut many = Vec::new();
    for _ in 0..2 {
        many.extend(acc.generate_one_time_prekeys(100).unwrap());
    }
    let resp = upload(relay, &alice, device, b64_keys(&many[..101])).await;
    assert_error(resp, 413, "payload_too_large").await;
    let (other, _) = account(0);
    let resp = register_raw(relay, &alice, registration(&other, "x", &many[..101])).await;
    assert_error(resp, 413, "payload_too_large").await;
    let resp = upload(relay, &alice, device, vec![]).await;
    assert_error(resp, 400, "invalid_input").await;

    // Duplicate ids: within the upload, or already stored.
    let dup = vec![B64.encode(many[0].encode()), B64.encode(many[0].encode())];
    let resp = upload(relay, &alice, device, dup).await;
    assert_error(resp, 409, "duplicate_prekey").await;
    let clash = vec![B64.encode(many[0].encode()), B64.encode(keys[3].encode())];
    let body = assert_error(
        upload(relay, &alice, device, clash).await,
        409,
        "duplicate_prekey",
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&keys[3].id.to_string())
    );
    let same_id = OneTimePrekey {
        id: keys[0].id,
        key: many[5].key,
    };
    let resp = upload(relay, &alice, device, b64_keys(&[same_id])).await;
    assert_error(resp, 409, "duplicate_prekey").await;
    let (dup_acc, dup_keys) = account(2);
    let mut twice = dup_keys.clone();
    twice.push(dup_keys[0]);
    let resp = register_raw(relay, &alice, registration(&dup_acc, "dup", &twice)).await;
    assert_error(resp, 409, "duplicate_prekey").await;
    assert_eq!(own_devices(relay, &alice).await.len(), 1);
    assert_eq!(remaining(relay, &alice, device).await, 10);

    // The per-device cap: 500.
    let body = ok_json(
        upload(relay, &alice, device, b64_keys(&many[..100])).await,
        200,
    )
    .await;
    assert_eq!(body["remaining"], 110);
    ok_json(
        upload(relay, &alice, device, b64_keys(&many[100..190])).await,
        200,
    )
    .await;
    for _ in 0..3 {
        let batch = acc.generate_one_time_prekeys(100).unwrap();
        ok_json(upload(relay, &alice, device, b64_keys(&batch)).await, 200).await;
    }
    assert_eq!(remaining(relay, &alice, device).await, 500);
    let extra = acc.generate_one_time_prekeys(1).unwrap();
    let resp = upload(relay, &alice, device, b64_keys(&extra)).await;
    assert_error(resp, 409, "too_many_prekeys").await;
    assert_eq!(remaining(relay, &alice, device).await, 500);
    assert_eq!(own_devices(relay, &alice).await[0]["one_time_prekeys"], 500);

    // A claimed prekey makes room for one more.
    let bob = user(relay, "bob").await;
    befriend(relay, &alice, &bob).await;
    fetch_bundle(relay, &bob, "alice", device).await;
    let body = ok_json(upload(relay, &alice, device, b64_keys(&extra)).await, 200).await;
    assert_eq!(body["remaining"], 500);
}

async fn rotate_signed_prekey(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    befriend(relay, &alice, &bob).await;
    let (mut acc, _) = account(0);
    let device = register(relay, &alice, &acc, &[]).await;
    let old = acc.signed_prekey().unwrap().clone();

    let new = acc.generate_signed_prekey(T0 + 86_400).unwrap();
    assert_eq!(new.id(), 2);
    let resp = rotate(relay, &alice, device, &new).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(own_devices(relay, &alice).await[0]["signed_prekey_id"], 2);
    let bundle = fetch_bundle(relay, &bob, "alice", device).await;
    assert_eq!(bundle.signed_prekey(), &new);

    // The old one, or the current one again, is stale.
    assert_error(
        rotate(relay, &alice, device, &old).await,
        409,
        "stale_prekey",
    )
    .await;
    assert_error(
        rotate(relay, &alice, device, &new).await,
        409,
        "stale_prekey",
    )
    .await;
    // One signed by another identity does not verify against this device.
    let (mut other, _) = account(0);
    for _ in 0..5 {
        other.generate_signed_prekey(T0).unwrap();
    }
    let foreign = other.signed_prekey().unwrap().clone();
    assert_error(
        rotate(relay, &alice, device, &foreign).await,
        400,
        "bad_signature",
    )
    .await;
    // Not alice's device: bob cannot rotate it.
    let newer = acc.generate_signed_prekey(T0 + 2 * 86_400).unwrap();
    assert_error(rotate(relay, &bob, device, &newer).await, 404, "not_found").await;
    assert_eq!(
        fetch_bundle(relay, &bob, "alice", device)
            .await
            .signed_prekey(),
        &new
    );
    // Ids may skip ahead.
    let _ = acc.generate_signed_prekey(T0 + 3 * 86_400).unwrap();
    let latest = acc.generate_signed_prekey(T0 + 4 * 86_400).unwrap();
    assert_eq!(latest.id(), 5);
    assert_eq!(rotate(relay, &alice, device, &latest).await.status(), 204);
    assert_eq!(
        fetch_bundle(relay, &bob, "alice", device)
            .await
            .signed_prekey(),
        &latest
    );
}

async fn delete_device_and_ownership(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    befriend(relay, &alice, &bob).await;
    let (mut acc, keys) = account(4);
    let device = register(relay, &alice, &acc, &keys).await;
    let (bob_acc, _) = account(0);
    let bob_device = register(relay, &bob, &bob_acc, &[]).await;
    assert_eq!(rows_of(relay, device).await, (1, 1, 4));

    // Someone else's device id is not_found everywhere, like an unknown one.
    for id in [device, 987_654] {
        assert_error(count(relay, &bob, id).await, 404, "not_found").await;
        let more = acc.generate_one_time_prekeys(1).unwrap();
        assert_error(
            upload(relay, &bob, id, b64_keys(&more)).await,
            404,
            "not_found",
        )
        .await;
        let resp = call(
            relay,
            Method::DELETE,
            &format!("/api/v1/devices/{id}"),
            &bob,
            None,
        )
        .await;
        assert_error(resp, 404, "not_found").await;
    }
    // Bob's own device id with alice's ms_id is not hers.
    assert_error(
        fetch(relay, &bob, "alice", bob_device).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(rows_of(relay, device).await, (1, 1, 4));
    let resp = call(relay, Method::DELETE, "/api/v1/devices/x", &alice, None).await;
    assert_error(resp, 400, "invalid_input").await;

    // Envelopes to the device go with it; the one it sent, already accepted, still waits for
    // Bob's device (issue #12, item 2).
    queue_envelope(relay, bob.id, bob_device, device).await;
    queue_envelope(relay, alice.id, device, bob_device).await;
    assert_eq!(envelopes_of(relay, device).await, 2);

    let resp = call(
        relay,
        Method::DELETE,
        &format!("/api/v1/devices/{device}"),
        &alice,
        None,
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(rows_of(relay, device).await, (0, 0, 0));
    assert_eq!(envelopes_of(relay, device).await, 1);
    assert_eq!(envelopes_of(relay, bob_device).await, 1);
    assert!(own_devices(relay, &alice).await.is_empty());
    let resp = call(
        relay,
        Method::DELETE,
        &format!("/api/v1/devices/{device}"),
        &alice,
        None,
    )
    .await;
    assert_error(resp, 404, "not_found").await;
    assert_error(count(relay, &alice, device).await, 404, "not_found").await;
    assert_error(fetch(relay, &bob, "alice", device).await, 404, "not_found").await;
    let list = ok_json(friend_devices(relay, &bob, "alice").await, 200).await;
    assert_eq!(list, json!([]));
    // Bob's device is untouched.
    assert_eq!(rows_of(relay, bob_device).await, (1, 1, 0));
}

async fn concurrent_claims_never_share_a_prekey(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    befriend(relay, &alice, &bob).await;
    let (acc, keys) = account(50);
    let device = register(relay, &bob, &acc, &keys).await;

    let mut set = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let client = relay.client();
        let url = relay.url(&format!("/api/v1/users/bob/devices/{device}/bundle"));
        let token = alice.token.clone();
        set.spawn(async move {
            let resp = client.post(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.unwrap();
            PrekeyBundle::decode(&B64.decode(body["bundle"].as_str().unwrap()).unwrap())
                .unwrap()
                .one_time_prekey()
                .map(|k| k.id)
        });
    }
    let mut ids = Vec::new();
    let mut without = 0;
    while let Some(result) = set.join_next().await {
        match result.unwrap() {
            Some(id) => ids.push(id),
            None => without += 1,
        }
    }
    let distinct: HashSet<u32> = ids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "a one-time prekey was handed out twice"
    );
    assert_eq!(ids.len(), 50, "every prekey is handed out once");
    assert_eq!(without, 10);
    let expected: HashSet<u32> = keys.iter().map(|k| k.id).collect();
    assert_eq!(distinct, expected);
    assert_eq!(remaining(relay, &bob, device).await, 0);
}

/// Deleting the account removes its devices and prekeys; the identity may be registered again.
async fn account_deletion_removes_devices(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let (acc, keys) = account(3);
    let device = register(relay, &alice, &acc, &keys).await;
    assert_eq!(rows_of(relay, device).await, (1, 1, 3));
    let resp = call(
        relay,
        Method::DELETE,
        "/api/v1/me",
        &alice,
        Some(json!({ "password": common::PASSWORD })),
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(rows_of(relay, device).await, (0, 0, 0));
    let bob = user(relay, "bob").await;
    register(relay, &bob, &acc, &keys).await;
}

/// Concurrent registrations and uploads cannot go past the caps (PostgreSQL runs them in
/// parallel; the row locks serialize them per account and per device).
async fn concurrent_writes_respect_the_caps(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;

    // 14 registrations at once, one identity sent by both alice and bob.
    let (shared, _) = account(0);
    let mut bodies: Vec<(String, Value)> = (0..12)
        .map(|i| {
            (
                alice.token.clone(),
                registration(&account(0).0, &format!("d{i}"), &[]),
            )
        })
        .collect();
    bodies.push((alice.token.clone(), registration(&shared, "shared", &[])));
    bodies.push((bob.token.clone(), registration(&shared, "shared", &[])));
    let mut set = tokio::task::JoinSet::new();
    for (token, body) in bodies {
        let client = relay.client();
        let url = relay.url("/api/v1/devices");
        set.spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, body["error"].as_str().map(str::to_owned))
        });
    }
    let mut outcomes = Vec::new();
    while let Some(result) = set.join_next().await {
        outcomes.push(result.unwrap());
    }
    let created = outcomes.iter().filter(|(s, _)| *s == 201).count();
    let too_many = outcomes
        .iter()
        .filter(|(s, e)| *s == 409 && e.as_deref() == Some("too_many_devices"))
        .count();
    let taken = outcomes
        .iter()
        .filter(|(s, e)| *s == 409 && e.as_deref() == Some("identity_taken"))
        .count();
    let alice_devices = own_devices(relay, &alice).await.len();
    let bob_devices = own_devices(relay, &bob).await.len();
    assert_eq!(alice_devices, 10, "{outcomes:?}");
    assert_eq!(created, alice_devices + bob_devices, "{outcomes:?}");
    assert_eq!(created + too_many + taken, 14, "{outcomes:?}");
    // The shared identity was registered exactly once.
    let shared_key = B64.encode(shared.identity().encode());
    let mut holders = 0;
    for who in [&alice, &bob] {
        holders += own_devices(relay, who)
            .await
            .iter()
            .filter(|d| d["identity_key"] == shared_key.as_str())
            .count();
    }
    assert_eq!(holders, 1, "{outcomes:?}");

    // Five uploads of 100 at once onto a device holding 300: exactly two fit.
    let (mut acc, _) = account(0);
    let device = register(relay, &bob, &acc, &[]).await;
    for _ in 0..3 {
        let batch = acc.generate_one_time_prekeys(100).unwrap();
        ok_json(upload(relay, &bob, device, b64_keys(&batch)).await, 200).await;
    }
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let keys = b64_keys(&acc.generate_one_time_prekeys(100).unwrap());
        let client = relay.client();
        let url = relay.url(&format!("/api/v1/devices/{device}/one-time-prekeys"));
        let token = bob.token.clone();
        set.spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "prekeys": keys }))
                .send()
                .await
                .unwrap();
            resp.status().as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(result) = set.join_next().await {
        statuses.push(result.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 409, 409, 409]);
    assert_eq!(remaining(relay, &bob, device).await, 500);
}

/// The OpenAPI document lists the device operations, with session security, and their DTOs.
async fn openapi_lists_the_directory(relay: &TestRelay) {
    let doc: Value = relay
        .client()
        .get(relay.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/api/v1/devices", "post"),
        ("/api/v1/devices", "get"),
        ("/api/v1/devices/{id}", "delete"),
        ("/api/v1/devices/{id}/signed-prekey", "put"),
        ("/api/v1/devices/{id}/one-time-prekeys", "post"),
        ("/api/v1/devices/{id}/one-time-prekeys/count", "get"),
        ("/api/v1/users/{ms_id}/devices", "get"),
        ("/api/v1/users/{ms_id}/devices/{device_id}/bundle", "post"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert!(
            op["security"].to_string().contains("session_token"),
            "{method} {path} lacks session security"
        );
    }
    for schema in [
        "RegisterDeviceBody",
        "DeviceCreated",
        "OwnDeviceView",
        "DeviceView",
        "SignedPrekeyBody",
        "OneTimePrekeysBody",
        "PrekeyCount",
        "BundleView",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} missing from the OpenAPI components"
        );
    }
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"].to_string();
    for code in [
        "invalid_key",
        "bad_signature",
        "identity_taken",
        "too_many_devices",
        "too_many_prekeys",
        "duplicate_prekey",
        "stale_prekey",
    ] {
        assert!(codes.contains(code), "{code} missing from ErrorCode");
    }
}

/// Issue #12 item 10: a session that signed in more than ten minutes ago (a stolen cookie, say)
/// cannot add a device on its own: the password (and second factor, when on) must come with
/// the request. A fresh sign-in can, as a first login naturally does. Each addition is a
/// security event.
async fn adding_a_device_needs_a_recent_sign_in(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let (acc, keys) = account(2);
    register(relay, &alice, &acc, &keys).await;

    relay.clock().advance(11 * 60);
    let (acc2, keys2) = account(1);
    let resp = register_raw(relay, &alice, registration(&acc2, "stolen", &keys2)).await;
    assert_error(resp, 403, "reauth_required").await;
    assert_eq!(
        own_devices(relay, &alice).await.len(),
        1,
        "no device was added"
    );

    let mut body = registration(&acc2, "phone", &keys2);
    body["password"] = json!("not the password of alice");
    assert_error(
        register_raw(relay, &alice, body.clone()).await,
        401,
        "invalid_credentials",
    )
    .await;
    body["password"] = json!(common::PASSWORD);
    ok_json(register_raw(relay, &alice, body).await, 201).await;

    // A new sign-in may add a device without repeating the password.
    let (token, _) = relay.token("alice@example.org").await;
    let fresh = User {
        id: alice.id,
        ms_id: alice.ms_id.clone(),
        token,
    };
    let (acc3, _) = account(0);
    ok_json(
        register_raw(relay, &fresh, registration(&acc3, "tablet", &[])).await,
        201,
    )
    .await;
    assert_eq!(own_devices(relay, &alice).await.len(), 3);

    let events = ok_json(
        call(
            relay,
            Method::GET,
            "/api/v1/me/security-events",
            &alice,
            None,
        )
        .await,
        200,
    )
    .await;
    let added = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "device_added")
        .count();
    assert_eq!(added, 3, "{events}");
}

on_both_backends!(
    adding_a_device_needs_a_recent_sign_in,
    register_and_list,
    forged_and_malformed_keys,
    identity_taken_and_device_cap,
    strangers_see_nothing,
    bundle_starts_a_real_session,
    one_time_prekey_limits,
    rotate_signed_prekey,
    delete_device_and_ownership,
    concurrent_claims_never_share_a_prekey,
    concurrent_writes_respect_the_caps,
    openapi_lists_the_directory,
    account_deletion_removes_devices,
);

/// With the production limits, an account's bundle fetches stop at the burst of 200.
async fn bundle_fetches_are_rate_limited(backend: Backend) {
    let Some(relay) = TestRelay::start_with(backend, true).await else {
        return;
    };
    let alice = user(&relay, "alice").await;
    let bob = user(&relay, "bob").await;
    befriend(&relay, &alice, &bob).await;
    let (acc, _) = account(0);
    let device = register(&relay, &bob, &acc, &[]).await;
    for _ in 0..200 {
        assert_eq!(fetch(&relay, &alice, "bob", device).await.status(), 200);
    }
    let resp = fetch(&relay, &alice, "bob", device).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_error(resp, 429, "rate_limited").await;
    // Attempts count, so a stranger probing is limited the same way; other accounts are not.
    assert_eq!(fetch(&relay, &bob, "bob", device).await.status(), 200);
    relay.stop().await;
}

#[actix_web::test]
async fn bundle_fetches_are_rate_limited_sqlite() {
    bundle_fetches_are_rate_limited(Backend::Sqlite).await;
}

#[actix_web::test]
async fn bundle_fetches_are_rate_limited_postgres() {
    bundle_fetches_are_rate_limited(Backend::Postgres).await;
}
