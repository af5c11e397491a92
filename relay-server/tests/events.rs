//! Change notices over `GET /api/v1/ws`, on SQLite and PostgreSQL: `friends_changed`,
//! `rooms_changed` and `devices_changed` reach the connected devices of exactly the users whose
//! lists changed, right after the change.
//!
//! Absence is proven without sleeping: [`nothing_pending`] makes a change that notifies only
//! the user's own devices and checks that it is the next notice each of them reads (a
//! connection's pushes are queued in order, so an earlier notice would come first).
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
use common::{Backend, PASSWORD, TestRelay, ok_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

use common::ws::*;

impl common::Bearer for User {
    fn bearer(&self) -> &str {
        &self.token
    }
}

async fn call(
    relay: &TestRelay,
    who: &User,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    common::call(relay, method, path, who, body).await
}

/// Sends a friend request; returns its id (`None` when it was accepted at once).
async fn request(relay: &TestRelay, from: &User, to_ms_id: &str) -> Option<i64> {
    let resp = call(
        relay,
        from,
        Method::POST,
        "/api/v1/friends/requests",
        Some(json!({ "ms_id": to_ms_id })),
    )
    .await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    match status {
        201 => Some(body["request"]["id"].as_i64().unwrap()),
        200 => None,
        _ => panic!("friend request: {status} {body}"),
    }
}

async fn create_room(relay: &TestRelay, who: &User) -> i64 {
    let room = ok_json(
        call(relay, who, Method::POST, "/api/v1/rooms", Some(json!({}))).await,
        201,
    )
    .await;
    room["id"].as_i64().unwrap()
}

async fn room_action(relay: &TestRelay, who: &User, room: i64, action: &str, status: u16) {
    let resp = call(
        relay,
        who,
        Method::POST,
        &format!("/api/v1/rooms/{room}/{action}"),
        None,
    )
    .await;
    ok_json(resp, status).await;
}

async fn invite(relay: &TestRelay, who: &User, room: i64, ms_id: &str) {
    let resp = call(
        relay,
        who,
        Method::POST,
        &format!("/api/v1/rooms/{room}/invites"),
        Some(json!({ "ms_id": ms_id })),
    )
    .await;
    ok_json(resp, 204).await;
}

/// A device registered through the API (real crypto-core keys).
async fn api_device(relay: &TestRelay, who: &User) -> i64 {
    let mut acc = crypto_core::Account::new().unwrap();
    acc.generate_signed_prekey(1_790_000_000).unwrap();
    let body = json!({
        "identity_key": B64.encode(acc.identity().encode()),
        "name": "phone",
        "signed_prekey": B64.encode(acc.signed_prekey().unwrap().encode()),
    });
    let created = ok_json(
        call(relay, who, Method::POST, "/api/v1/devices", Some(body)).await,
        201,
    )
    .await;
    created["device_id"].as_i64().unwrap()
}

/// Checks that no notice is waiting for `who` on `sockets` (all of them `who`'s): `who`
/// creates a room, which tells only `who`'s own devices, and that must be the next notice
/// every socket reads.
async fn nothing_pending(relay: &TestRelay, who: &User, sockets: &mut [&mut Ws]) {
    let marker = create_room(relay, who).await;
    for ws in sockets.iter_mut() {
        let v = ws.notice().await;
        assert_eq!(
            v,
            json!({"v": 1, "type": "rooms_changed", "room": marker, "change": "created", "by": who.id}),
            "a notice was pending before the marker"
        );
    }
}

async fn friends_notice(sockets: &mut [&mut Ws]) {
    for ws in sockets.iter_mut() {
        let v = ws.notice().await;
        assert_eq!(v, json!({"v": 1, "type": "friends_changed"}));
    }
}

async fn room_notice(room: i64, sockets: &mut [&mut Ws]) {
    for ws in sockets.iter_mut() {
        let v = ws.notice().await;
        assert_eq!(
            (&v["type"], &v["room"]),
            (&json!("rooms_changed"), &json!(room)),
            "{v}"
        );
    }
}

async fn devices_notice(user: i64, sockets: &mut [&mut Ws]) {
    for ws in sockets.iter_mut() {
        let v = ws.notice().await;
        assert_eq!(v, json!({"v": 1, "type": "devices_changed", "user": user}));
    }
}

/// `friends_changed` goes to every connected device of each user whose friend list, pending
/// requests or block list changed; a declined request's sender is not told.
async fn friends_changed(relay: &TestRelay) {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    let c = user(relay, "carol").await;
    let (a1, a2) = (device(relay, a.id).await, device(relay, a.id).await);
    let b1 = device(relay, b.id).await;
    let c1 = device(relay, c.id).await;
    let (mut wa1, _) = open_drained(relay, &a, a1).await;
    let (mut wa2, _) = open_drained(relay, &a, a2).await;
    let (mut wb, _) = open_drained(relay, &b, b1).await;
    let (mut wc, _) = open_drained(relay, &c, c1).await;

    // A request: the recipient's devices, and the sender's (their outgoing list changed).
    let id = request(relay, &a, "bob").await.unwrap();
    friends_notice(&mut [&mut wa1, &mut wa2, &mut wb]).await;
    // Declined: the decliner's devices only; the sender is not told.
    let path = format!("/api/v1/friends/requests/{id}/decline");
    ok_json(call(relay, &b, Method::POST, &path, None).await, 204).await;
    friends_notice(&mut [&mut wb]).await;
    nothing_pending(relay, &a, &mut [&mut wa1, &mut wa2]).await;

    // Cancelled: both.
    let id = request(relay, &a, "bob").await.unwrap();
    friends_notice(&mut [&mut wa1, &mut wa2, &mut wb]).await;
    let path = format!("/api/v1/friends/requests/{id}");
    ok_json(call(relay, &a, Method::DELETE, &path, None).await, 204).await;
    friends_notice(&mut [&mut wa1, &mut wa2, &mut wb]).await;

    // Accepted: both.
    let id = request(relay, &a, "bob").await.unwrap();
    friends_notice(&mut [&mut wa1, &mut wa2, &mut wb]).await;
    let path = format!("/api/v1/friends/requests/{id}/accept");
    ok_json(call(relay, &b, Method::POST, &path, None).await, 200).await;
    friends_notice(&mut [&mut wa1, &mut wa2, &mut wb]).await;

    // Removed: both.
    let resp = call(relay, &a, Method::DELETE, "/api/v1/friends/bob", None).await;
    ok_json(resp, 204).await;
    friends_notice(&mut [&mut wa1, &mut wa2, &mut wb]).await;
    // Carol was in none of that.
    nothing_pending(relay, &c, &mut [&mut wc]).await;

    // Crossed requests: the first is a request, the second a friendship; both tell both.
    assert!(request(relay, &c, "alice").await.is_some());
    friends_notice(&mut [&mut wc, &mut wa1, &mut wa2]).await;
    assert!(request(relay, &a, "carol").await.is_none());
    friends_notice(&mut [&mut wa1, &mut wa2, &mut wc]).await;

    // A block ends the friendship: both lose each other.
    let block = |ms_id: &str| Some(json!({ "ms_id": ms_id }));
    let resp = call(relay, &a, Method::POST, "/api/v1/blocks", block("carol")).await;
    ok_json(resp, 204).await;
    friends_notice(&mut [&mut wa1, &mut wa2, &mut wc]).await;
    // A block that takes nothing from the blocked user (no friendship, no request) tells only
    // the blocker's devices (their block list changed); so does lifting a block.
    let resp = call(relay, &a, Method::POST, "/api/v1/blocks", block("bob")).await;
    ok_json(resp, 204).await;
    friends_notice(&mut [&mut wa1, &mut wa2]).await;
    // Blocking again changes nothing: nobody is told.
    let resp = call(relay, &a, Method::POST, "/api/v1/blocks", block("bob")).await;
    ok_json(resp, 204).await;
    nothing_pending(relay, &a, &mut [&mut wa1, &mut wa2]).await;
    let resp = call(relay, &a, Method::DELETE, "/api/v1/blocks/bob", None).await;
    ok_json(resp, 204).await;
    friends_notice(&mut [&mut wa1, &mut wa2]).await;
    nothing_pending(relay, &b, &mut [&mut wb]).await;

    // An ms_id edit changes how the user looks in others' lists: their friends and the users
    // with a pending request from or to them are told (Bob asks Alice, Alice is friends with
    // nobody now); Carol, blocked, is not.
    assert!(request(relay, &b, "alice").await.is_some());
    friends_notice(&mut [&mut wb, &mut wa1, &mut wa2]).await;
    let resp = call(
        relay,
        &a,
        Method::PUT,
        "/api/v1/me/ms_id",
        Some(json!({"ms_id": "alice.two"})),
    )
    .await;
    ok_json(resp, 200).await;
    friends_notice(&mut [&mut wb]).await;
    nothing_pending(relay, &c, &mut [&mut wc]).await;
    nothing_pending(relay, &a, &mut [&mut wa1, &mut wa2]).await;
    for ws in [wa1, wa2, wb, wc] {
        ws.close().await;
    }
}

/// `rooms_changed` goes to the joined members and the invitee (or the member who declines
/// or leaves) when someone is invited, joins, declines or leaves; creating a room tells the
/// creator's devices.
async fn rooms_changed(relay: &TestRelay) {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    let c = user(relay, "carol").await;
    befriend(relay, &a, &b).await;
    befriend(relay, &a, &c).await;
    let (a1, b1, c1) = (
        device(relay, a.id).await,
        device(relay, b.id).await,
        device(relay, c.id).await,
    );
    let (mut wa, _) = open_drained(relay, &a, a1).await;
    let (mut wb, _) = open_drained(relay, &b, b1).await;
    let (mut wc, _) = open_drained(relay, &c, c1).await;

    let room = create_room(relay, &a).await;
    room_notice(room, &mut [&mut wa]).await;
    // Invited: the joined members and the invitee.
    invite(relay, &a, room, "bob").await;
    room_notice(room, &mut [&mut wa, &mut wb]).await;
    // Joined: every joined member, the new one included.
    room_action(relay, &b, room, "join", 200).await;
    room_notice(room, &mut [&mut wa, &mut wb]).await;
    // Joining again, or inviting a member again, changes nothing: nobody is told.
    room_action(relay, &b, room, "join", 200).await;
    invite(relay, &a, room, "bob").await;
    nothing_pending(relay, &a, &mut [&mut wa]).await;
    nothing_pending(relay, &b, &mut [&mut wb]).await;

    invite(relay, &a, room, "carol").await;
    room_notice(room, &mut [&mut wa, &mut wb, &mut wc]).await;
    // Declined: the joined members and the decliner.
    room_action(relay, &c, room, "decline", 204).await;
    room_notice(room, &mut [&mut wa, &mut wb, &mut wc]).await;
    invite(relay, &a, room, "carol").await;
    room_notice(room, &mut [&mut wa, &mut wb, &mut wc]).await;
    // Left: the joined members who stay and the one who left, not an invitee.
    room_action(relay, &b, room, "leave", 204).await;
    room_notice(room, &mut [&mut wa, &mut wb]).await;
    nothing_pending(relay, &c, &mut [&mut wc]).await;
    // Dropping an invitation with leave is like declining.
    room_action(relay, &c, room, "leave", 204).await;
    room_notice(room, &mut [&mut wa, &mut wc]).await;
    // The last member leaves (the room is deleted): their devices are told.
    room_action(relay, &a, room, "leave", 204).await;
    room_notice(room, &mut [&mut wa]).await;
    nothing_pending(relay, &b, &mut [&mut wb]).await;
    for ws in [wa, wb, wc] {
        ws.close().await;
    }
}

/// `devices_changed` goes to the user's own devices and to every user in contact with them
/// (friends and fellow joined room members, no block either way) when they register or remove
/// a device.
async fn devices_changed(relay: &TestRelay) {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    let c = user(relay, "carol").await;
    let d = user(relay, "dave").await;
    befriend(relay, &a, &b).await;
    befriend(relay, &a, &c).await;
    // Bob and Carol are not friends, but joined members of Alice's room.
    let room = create_room(relay, &a).await;
    for (who, ms_id) in [(&b, "bob"), (&c, "carol")] {
        invite(relay, &a, room, ms_id).await;
        room_action(relay, who, room, "join", 200).await;
    }
    let (a1, b1, c1, d1) = (
        device(relay, a.id).await,
        device(relay, b.id).await,
        device(relay, c.id).await,
        device(relay, d.id).await,
    );
    let (mut wa, _) = open_drained(relay, &a, a1).await;
    let (mut wb, _) = open_drained(relay, &b, b1).await;
    let (mut wc, _) = open_drained(relay, &c, c1).await;
    let (mut wd, _) = open_drained(relay, &d, d1).await;

    // Carol adds a device: her own devices, Alice (a friend) and Bob (a fellow member) are
    // told; Dave (a stranger) is not.
    let c2 = api_device(relay, &c).await;
    devices_notice(c.id, &mut [&mut wc, &mut wa, &mut wb]).await;
    nothing_pending(relay, &d, &mut [&mut wd]).await;
    // She removes it: the same users.
    let path = format!("/api/v1/devices/{c2}");
    ok_json(call(relay, &c, Method::DELETE, &path, None).await, 204).await;
    devices_notice(c.id, &mut [&mut wc, &mut wa, &mut wb]).await;

    // Bob blocks Carol: out of contact, out of the loop (Bob's own devices hear of his block).
    let resp = call(
        relay,
        &b,
        Method::POST,
        "/api/v1/blocks",
        Some(json!({"ms_id": "carol"})),
    )
    .await;
    ok_json(resp, 204).await;
    friends_notice(&mut [&mut wb]).await;
    api_device(relay, &c).await;
    devices_notice(c.id, &mut [&mut wc, &mut wa]).await;
    nothing_pending(relay, &b, &mut [&mut wb]).await;

    // Dave has no contacts: only his own devices hear of his.
    api_device(relay, &d).await;
    devices_notice(d.id, &mut [&mut wd]).await;
    nothing_pending(relay, &a, &mut [&mut wa]).await;
    for ws in [wa, wb, wc, wd] {
        ws.close().await;
    }
}

/// Deleting an account is every change at once: its friends and request partners get
/// `friends_changed`, the members of its rooms `rooms_changed`, its contacts
/// `devices_changed`.
async fn account_deletion(relay: &TestRelay) {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    let e = user(relay, "erin").await;
    befriend(relay, &a, &e).await;
    befriend(relay, &a, &b).await;
    assert!(request(relay, &e, "bob").await.is_some());
    let room = create_room(relay, &a).await;
    for (who, ms_id) in [(&b, "bob"), (&e, "erin")] {
        invite(relay, &a, room, ms_id).await;
        room_action(relay, who, room, "join", 200).await;
    }
    let (a1, b1) = (device(relay, a.id).await, device(relay, b.id).await);
    device(relay, e.id).await;
    let (mut wa, _) = open_drained(relay, &a, a1).await;
    let (mut wb, _) = open_drained(relay, &b, b1).await;

    let resp = call(
        relay,
        &e,
        Method::DELETE,
        "/api/v1/me",
        Some(json!({ "password": PASSWORD })),
    )
    .await;
    ok_json(resp, 204).await;
    let expected: BTreeSet<String> = [
        json!({"v": 1, "type": "friends_changed"}),
        json!({"v": 1, "type": "rooms_changed", "room": room}),
        json!({"v": 1, "type": "devices_changed", "user": e.id}),
    ]
    .iter()
    .map(Value::to_string)
    .collect();
    for ws in [&mut wa, &mut wb] {
        let mut got = BTreeSet::new();
        for _ in 0..3 {
            got.insert(ws.notice().await.to_string());
        }
        assert_eq!(got, expected);
    }
    nothing_pending(relay, &a, &mut [&mut wa]).await;
    nothing_pending(relay, &b, &mut [&mut wb]).await;
    wa.close().await;
    wb.close().await;
}

on_both_backends!(
    friends_changed,
    rooms_changed,
    devices_changed,
    account_deletion
);
