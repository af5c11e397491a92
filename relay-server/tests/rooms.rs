//! Rooms on SQLite and PostgreSQL: create, invite (friends only), join, decline, leave,
//! list, members; room sends over `GET /api/v1/ws` fanned out to every joined member device
//! but the sending one, with the delivery guarantees of direct envelopes.
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
use relay_server::api::error::ApiError;
use relay_server::db::schema::{room_members, rooms, users};
use serde_json::{Value, json};

use common::ws::*;
impl Ws {
    async fn send_room(&mut self, id: &str, room: i64, body: &[u8]) {
        self.send(json!({"v": 1, "type": "send", "id": id, "room": room, "kind": 7, "ciphertext": B64.encode(body)}))
            .await;
    }
}

async fn post(relay: &TestRelay, who: &User, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut req = relay.client().post(relay.url(path)).bearer_auth(&who.token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn get(relay: &TestRelay, who: &User, path: &str) -> reqwest::Response {
    relay
        .client()
        .get(relay.url(path))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap()
}

async fn create_room(relay: &TestRelay, who: &User, name: Option<&str>) -> i64 {
    let resp = post(relay, who, "/api/v1/rooms", Some(json!({ "name": name }))).await;
    assert_eq!(resp.status().as_u16(), 201);
    let room: Value = resp.json().await.unwrap();
    assert_eq!(room["state"], "joined");
    room["id"].as_i64().unwrap()
}

async fn invite(relay: &TestRelay, who: &User, room: i64, ms_id: &str) -> reqwest::Response {
    post(
        relay,
        who,
        &format!("/api/v1/rooms/{room}/invites"),
        Some(json!({ "ms_id": ms_id })),
    )
    .await
}

async fn join(relay: &TestRelay, who: &User, room: i64) -> reqwest::Response {
    post(relay, who, &format!("/api/v1/rooms/{room}/join"), None).await
}

async fn rooms_of(relay: &TestRelay, who: &User) -> Vec<Value> {
    let resp = get(relay, who, "/api/v1/rooms").await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    body["rooms"].as_array().unwrap().clone()
}

/// `owner` creates a room and brings every other user in (they must be owner's friends).
async fn room_with(relay: &TestRelay, owner: &User, others: &[(&User, &str)]) -> i64 {
    let room = create_room(relay, owner, None).await;
    for (who, ms_id) in others {
        assert_eq!(
            invite(relay, owner, room, ms_id).await.status().as_u16(),
            204
        );
        assert_eq!(join(relay, who, room).await.status().as_u16(), 200);
    }
    room
}

/// Create, list, invite (friends only), join, decline, leave, members.
async fn lifecycle(relay: &TestRelay) {
    use common::assert_error;
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    let c = user(relay, "carol").await;
    let d = user(relay, "dave").await;
    befriend(relay, &a, &b).await;
    befriend(relay, &a, &c).await;
    let dev_b = device(relay, b.id).await;

    // Name: optional, trimmed, validated like a display name.
    let resp = post(
        relay,
        &a,
        "/api/v1/rooms",
        Some(json!({ "name": "  Team  " })),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 201);
    let room: Value = resp.json().await.unwrap();
    assert_eq!(room["name"], "Team");
    assert_eq!(room["state"], "joined");
    let room = room["id"].as_i64().unwrap();
    let resp = post(
        relay,
        &a,
        "/api/v1/rooms",
        Some(json!({ "name": "a\u{7}b" })),
    )
    .await;
    assert_error(resp, 400, "invalid_input").await;
    let resp = post(
        relay,
        &a,
        "/api/v1/rooms",
        Some(json!({ "name": "x".repeat(65) })),
    )
    .await;
    assert_error(resp, 400, "invalid_input").await;
    let resp = post(relay, &a, "/api/v1/rooms", Some(json!({}))).await;
    assert_eq!(resp.status().as_u16(), 201);
    let unnamed: Value = resp.json().await.unwrap();
    assert!(unnamed["name"].is_null());

    let listed = rooms_of(relay, &a).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], room);
    // The last member leaving deletes the room.
    let unnamed = unnamed["id"].as_i64().unwrap();
    let leave_unnamed = format!("/api/v1/rooms/{unnamed}/leave");
    assert_eq!(
        post(relay, &a, &leave_unnamed, None)
            .await
            .status()
            .as_u16(),
        204
    );
    assert_eq!(rooms_of(relay, &a).await.len(), 1);
    let left = relay
        .state
        .db
        .run(move |conn| {
            rooms::table
                .filter(rooms::id.eq(unnamed))
                .count()
                .get_result::<i64>(conn)
                .map_err(ApiError::from)
        })
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert!(rooms_of(relay, &b).await.is_empty());

    // Invite B (a friend): B sees an invitation, but not the members until joining.
    assert_eq!(invite(relay, &a, room, "BOB").await.status().as_u16(), 204);
    assert_eq!(
        invite(relay, &a, room, "bob").await.status().as_u16(),
        204,
        "idempotent"
    );
    let listed = rooms_of(relay, &b).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["state"], "invited");
    let members_path = format!("/api/v1/rooms/{room}/members");
    assert_error(get(relay, &b, &members_path).await, 404, "not_found").await;
    // An invitee cannot invite.
    assert_error(invite(relay, &b, room, "alice").await, 404, "not_found").await;

    let resp = join(relay, &b, room).await;
    assert_eq!(resp.status().as_u16(), 200);
    let joined: Value = resp.json().await.unwrap();
    assert_eq!(joined["state"], "joined");
    assert_eq!(joined["name"], "Team");
    assert_eq!(
        join(relay, &b, room).await.status().as_u16(),
        200,
        "idempotent"
    );

    // B may invite only B's friends: C is A's friend, not B's.
    assert_error(invite(relay, &b, room, "carol").await, 404, "not_found").await;
    assert_error(invite(relay, &a, room, "nobody").await, 404, "not_found").await;
    assert_error(invite(relay, &a, room, "dave").await, 404, "not_found").await;
    assert_error(invite(relay, &a, room, "!!").await, 400, "invalid_ms_id").await;

    // Members: ms_id, state and device ids.
    let resp = get(relay, &a, &members_path).await;
    assert_eq!(resp.status().as_u16(), 200);
    let members: Value = resp.json().await.unwrap();
    let members = members["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["ms_id"], "alice");
    assert_eq!(members[0]["state"], "joined");
    assert_eq!(members[1]["ms_id"], "bob");
    assert_eq!(members[1]["user_id"], b.id);
    assert_eq!(members[1]["devices"], json!([dev_b]));

    // C: invited, declines; cannot join afterwards; invited again, joins, leaves.
    assert_eq!(
        invite(relay, &a, room, "carol").await.status().as_u16(),
        204
    );
    let resp = get(relay, &a, &members_path).await;
    let members: Value = resp.json().await.unwrap();
    assert_eq!(members["members"][2]["state"], "invited");
    assert_eq!(members["members"][2]["devices"], json!([]));
    let decline = format!("/api/v1/rooms/{room}/decline");
    assert_eq!(post(relay, &c, &decline, None).await.status().as_u16(), 204);
    assert!(rooms_of(relay, &c).await.is_empty());
    assert_error(join(relay, &c, room).await, 404, "not_found").await;
    assert_error(post(relay, &c, &decline, None).await, 404, "not_found").await;
    assert_eq!(
        invite(relay, &a, room, "carol").await.status().as_u16(),
        204
    );
    assert_eq!(join(relay, &c, room).await.status().as_u16(), 200);
    // A joined member cannot "decline".
    assert_error(post(relay, &c, &decline, None).await, 404, "not_found").await;
    let leave = format!("/api/v1/rooms/{room}/leave");
    assert_eq!(post(relay, &c, &leave, None).await.status().as_u16(), 204);
    assert_error(post(relay, &c, &leave, None).await, 404, "not_found").await;
    assert!(rooms_of(relay, &c).await.is_empty());
    assert_error(get(relay, &c, &members_path).await, 404, "not_found").await;

    // Outsiders: the room does not exist for them.
    assert_error(get(relay, &d, &members_path).await, 404, "not_found").await;
    assert_error(join(relay, &d, room).await, 404, "not_found").await;
    assert_error(post(relay, &d, &leave, None).await, 404, "not_found").await;
    assert_error(
        get(relay, &a, "/api/v1/rooms/999999/members").await,
        404,
        "not_found",
    )
    .await;
    // Signed-out callers.
    let resp = relay
        .client()
        .get(relay.url("/api/v1/rooms"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "unauthorized").await;
}

struct Trio {
    a: User,
    b: User,
    c: User,
    a1: i64,
    a2: i64,
    b1: i64,
    b2: i64,
    c1: i64,
    room: i64,
}

/// A (two devices), B (two devices) and C (one device) in one room; A is friends with both.
async fn trio(relay: &TestRelay) -> Trio {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    let c = user(relay, "carol").await;
    befriend(relay, &a, &b).await;
    befriend(relay, &a, &c).await;
    let a1 = device(relay, a.id).await;
    let a2 = device(relay, a.id).await;
    let b1 = device(relay, b.id).await;
    let b2 = device(relay, b.id).await;
    let c1 = device(relay, c.id).await;
    let room = room_with(relay, &a, &[(&b, "bob"), (&c, "carol")]).await;
    Trio {
        a,
        b,
        c,
        a1,
        a2,
        b1,
        b2,
        c1,
        room,
    }
}

/// One room send from A's first device reaches B's two devices, C's device and A's other
/// device — not the sending one — with one `accepted`, the same id and ciphertext.
async fn fan_out_online(relay: &TestRelay) {
    let t = trio(relay).await;
    let (mut a1, _) = open_drained(relay, &t.a, t.a1).await;
    let (mut a2, _) = open_drained(relay, &t.a, t.a2).await;
    let (mut b1, _) = open_drained(relay, &t.b, t.b1).await;
    let (mut b2, _) = open_drained(relay, &t.b, t.b2).await;
    let (mut c1, _) = open_drained(relay, &t.c, t.c1).await;

    a1.send_room("g1", t.room, b"group message").await;
    let accepted = a1.expect("accepted").await;
    assert_eq!(accepted["id"], "g1");
    assert_eq!(accepted["room"], t.room);
    assert!(accepted.get("to_device").is_none(), "{accepted}");
    // Committed before `accepted`: one row per recipient device.
    assert_eq!(rows(relay, None).await, 4);
    assert_eq!(rows(relay, Some(t.a1)).await, 0);

    for ws in [&mut a2, &mut b1, &mut b2, &mut c1] {
        let env = ws.expect("envelope").await;
        assert_eq!(env["id"], "g1");
        assert_eq!(env["room"], t.room);
        assert_eq!(env["from_user"], t.a.id);
        assert_eq!(env["from_device"], t.a1);
        assert_eq!(env["kind"], 7);
        assert_eq!(
            B64.decode(env["ciphertext"].as_str().unwrap()).unwrap(),
            b"group message"
        );
    }
    a1.quiet(300).await;

    // A direct envelope carries no `room`.
    b1.send_msg("d1", t.a1, b"direct").await;
    b1.expect("accepted").await;
    let env = a1.expect("envelope").await;
    assert!(env.get("room").is_none(), "{env}");

    for ws in [a1, a2, b1, b2, c1] {
        ws.close().await;
    }
}

/// An offline member gets room envelopes from the backlog; a duplicate send is stored once
/// per device; an ack deletes only that device's copy; a member who left gets nothing new.
async fn backlog_duplicates_ack_leave(relay: &TestRelay) {
    let t = trio(relay).await;
    let leave = format!("/api/v1/rooms/{}/leave", t.room);
    assert_eq!(post(relay, &t.c, &leave, None).await.status().as_u16(), 204);
    let (mut c1, _) = open_drained(relay, &t.c, t.c1).await;

    let (mut a1, _) = open_drained(relay, &t.a, t.a1).await;
    a1.send_room("g1", t.room, b"while offline").await;
    assert_eq!(a1.expect("accepted").await["room"], t.room);
    a1.send_room("g1", t.room, b"while offline").await;
    assert_eq!(a1.expect("accepted").await["id"], "g1");
    // a2, b1, b2: once each; C left.
    assert_eq!(rows(relay, None).await, 3);
    assert_eq!(rows(relay, Some(t.b1)).await, 1);
    assert_eq!(rows(relay, Some(t.b2)).await, 1);
    assert_eq!(rows(relay, Some(t.c1)).await, 0);
    c1.quiet(300).await;

    let (mut b1, backlog) = open_drained(relay, &t.b, t.b1).await;
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0]["id"], "g1");
    assert_eq!(backlog[0]["room"], t.room);
    b1.send(json!({"v": 1, "type": "ack", "ids": [backlog[0]["eid"]]}))
        .await;
    // The sender device gets a receipt for b1's copy.
    let receipt = a1.expect("delivered").await;
    assert_eq!(receipt["to_device"], t.b1);
    assert_eq!(rows(relay, Some(t.b1)).await, 0);
    assert_eq!(rows(relay, Some(t.b2)).await, 1);
    assert_eq!(rows(relay, Some(t.a2)).await, 1);

    // b2 cannot ack b1's or a2's copy away.
    let (mut b2, backlog2) = open_drained(relay, &t.b, t.b2).await;
    assert_eq!(backlog2.len(), 1);
    let a2_eid = backlog2[0]["eid"].as_i64().unwrap() - 1;
    b2.send(json!({"v": 1, "type": "ack", "ids": [a2_eid]}))
        .await;
    // Nothing answers the ack, and once a later frame is answered it has taken effect.
    b2.settled().await;
    assert_eq!(rows(relay, Some(t.a2)).await, 1);

    for ws in [a1, b1, b2, c1] {
        ws.close().await;
    }
}

/// Only joined members may send to a room; the target must be one of `to_device` / `room`.
async fn room_send_refusals(relay: &TestRelay) {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    let d = user(relay, "dave").await;
    befriend(relay, &a, &b).await;
    befriend(relay, &a, &d).await;
    let dev_b = device(relay, b.id).await;
    let dev_d = device(relay, d.id).await;
    let room = create_room(relay, &a, None).await;
    assert_eq!(invite(relay, &a, room, "bob").await.status().as_u16(), 204);

    // Invited, not joined.
    let (mut wb, _) = open_drained(relay, &b, dev_b).await;
    wb.send_room("x1", room, b"hi").await;
    let err = wb.expect_error("not_a_member").await;
    assert_eq!(err["id"], "x1");
    assert_eq!(err["room"], room);
    // Outsider, and a room that does not exist.
    let (mut wd, _) = open_drained(relay, &d, dev_d).await;
    wd.send_room("x2", room, b"hi").await;
    wd.expect_error("not_a_member").await;
    wd.send_room("x3", 999_999, b"hi").await;
    wd.expect_error("not_a_member").await;
    // Both or neither target.
    wd.send(json!({"v": 1, "type": "send", "id": "x4", "room": room, "to_device": dev_b, "kind": 1, "ciphertext": "aGk="}))
        .await;
    wd.expect_error("invalid_frame").await;
    wd.send(json!({"v": 1, "type": "send", "id": "x5", "kind": 1, "ciphertext": "aGk="}))
        .await;
    wd.expect_error("invalid_frame").await;
    assert_eq!(rows(relay, None).await, 0);
    wb.close().await;
    wd.close().await;
}

/// Deleting the creator's account removes their membership, not the room.
async fn creator_deleted(relay: &TestRelay) {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    befriend(relay, &a, &b).await;
    let room = room_with(relay, &a, &[(&b, "bob")]).await;
    let a_id = a.id;
    relay
        .state
        .db
        .run(move |conn| {
            diesel::delete(users::table.filter(users::id.eq(a_id)))
                .execute(conn)
                .map_err(ApiError::from)
        })
        .await
        .unwrap();
    let listed = rooms_of(relay, &b).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], room);
    let resp = get(relay, &b, &format!("/api/v1/rooms/{room}/members")).await;
    let members: Value = resp.json().await.unwrap();
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    assert_eq!(members["members"][0]["ms_id"], "bob");
}

/// A room holds at most 100 members, invitees included.
/// Adds `n` invited members to `room`, inserted directly (registering through the API hashes
/// passwords).
async fn fill(relay: &TestRelay, room: i64, n: usize) {
    relay
        .state
        .db
        .run(move |conn| {
            for i in 0..n {
                let id: i64 = diesel::insert_into(users::table)
                    .values((
                        users::email.eq(format!("filler{i}@example.org")),
                        users::email_verified.eq(false),
                        users::password_hash.eq("x"),
                        users::ms_id.eq(format!("filler{i}")),
                        users::display_name.eq("filler"),
                        users::totp_enabled.eq(false),
                        users::email_2fa_enabled.eq(false),
                        users::created_at.eq(0_i64),
                    ))
                    .returning(users::id)
                    .get_result(conn)?;
                diesel::insert_into(room_members::table)
                    .values((
                        room_members::room_id.eq(room),
                        room_members::user_id.eq(id),
                        room_members::state.eq("invited"),
                        room_members::invited_by.eq(id),
                        room_members::created_at.eq(0_i64),
                    ))
                    .execute(conn)?;
            }
            Ok::<_, ApiError>(())
        })
        .await
        .unwrap();
}

/// Issue #12 item 4: invitations that race for the last places cannot pass the cap (on
/// PostgreSQL each counted the members before any had inserted).
async fn concurrent_invites_respect_the_cap(relay: &TestRelay) {
    let a = user(relay, "alice").await;
    let mut friends = Vec::new();
    for name in ["bob", "carol", "dave", "erin", "frank", "grace"] {
        let f = user(relay, name).await;
        befriend(relay, &a, &f).await;
        friends.push(name);
    }
    let room = create_room(relay, &a, None).await;
    fill(relay, room, 97).await;
    let answers =
        futures_util::future::join_all(friends.iter().map(|name| invite(relay, &a, room, name)))
            .await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        4,
        "{statuses:?}"
    );
    let members = relay
        .state
        .db
        .run(move |conn| {
            room_members::table
                .filter(room_members::room_id.eq(room))
                .count()
                .get_result::<i64>(conn)
                .map_err(ApiError::from)
        })
        .await
        .unwrap();
    assert_eq!(members, 100);
}

async fn member_cap(relay: &TestRelay) {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    befriend(relay, &a, &b).await;
    let room = create_room(relay, &a, None).await;
    fill(relay, room, 99).await;
    common::assert_error(invite(relay, &a, room, "bob").await, 409, "conflict").await;
    let leave = format!("/api/v1/rooms/{room}/leave");
    let filler = relay
        .state
        .db
        .run(|conn| {
            users::table
                .filter(users::ms_id.eq("filler0"))
                .select(users::id)
                .first::<i64>(conn)
                .map_err(ApiError::from)
        })
        .await
        .unwrap();
    relay
        .state
        .db
        .run(move |conn| {
            diesel::delete(room_members::table.filter(room_members::user_id.eq(filler)))
                .execute(conn)
                .map_err(ApiError::from)
        })
        .await
        .unwrap();
    assert_eq!(invite(relay, &a, room, "bob").await.status().as_u16(), 204);
    assert_eq!(join(relay, &b, room).await.status().as_u16(), 200);
    assert_eq!(post(relay, &b, &leave, None).await.status().as_u16(), 204);
}

/// A full queue on one member device refuses the whole room send: no copy is stored.
async fn queue_full_stores_nothing(relay: &TestRelay) {
    use relay_server::db::DbConnection;
    let t = trio(relay).await;
    let (a_id, a1, b2) = (t.a.id, t.a1, t.b2);
    relay
        .state
        .db
        .run(move |conn| {
            let sql = |blob: &str| {
                format!(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
                     INSERT INTO envelopes (recipient_device_id, sender_user_id, sender_device_id, \
                     client_id, kind, ciphertext, created_at, expires_at) \
                     SELECT {b2}, {a_id}, {a1}, 'fill' || i, 1, {blob}, 0, 9000000000000 FROM n"
                )
            };
            match conn {
                DbConnection::Sqlite(c) => diesel::sql_query(sql("x'00'")).execute(c),
                DbConnection::Pg(c) => diesel::sql_query(sql("'\\x00'::bytea")).execute(c),
            }
            .map_err(ApiError::from)
        })
        .await
        .unwrap();
    assert_eq!(rows(relay, Some(t.b2)).await, 10_000);
    let (mut ws, _) = open_drained(relay, &t.c, t.c1).await;
    ws.send_room("g1", t.room, b"too many").await;
    let err = ws.expect_error("queue_full").await;
    assert_eq!(err["id"], "g1");
    assert_eq!(err["room"], t.room);
    assert_eq!(rows(relay, None).await, 10_000);
    ws.close().await;
}

/// A device registered through the API (real crypto-core keys and three one-time prekeys),
/// so that its bundle can be fetched.
async fn api_device(relay: &TestRelay, who: &User) -> i64 {
    let mut acc = crypto_core::Account::new().unwrap();
    acc.generate_signed_prekey(1_790_000_000).unwrap();
    let keys = acc.generate_one_time_prekeys(3).unwrap();
    let body = json!({
        "identity_key": B64.encode(acc.identity().encode()),
        "name": "laptop",
        "signed_prekey": B64.encode(acc.signed_prekey().unwrap().encode()),
        "one_time_prekeys": keys.iter().map(|k| B64.encode(k.encode())).collect::<Vec<_>>(),
    });
    let resp = post(relay, who, "/api/v1/devices", Some(body)).await;
    assert_eq!(resp.status().as_u16(), 201);
    resp.json::<Value>().await.unwrap()["device_id"]
        .as_i64()
        .unwrap()
}

/// What `from` may do with `to`'s device `to_device`: list `to`'s devices, fetch the
/// device's bundle, send it a direct envelope over `ws` (the first two answer `not_found`, the
/// send `not_friends`, when they are not in contact).
async fn assert_contact(
    relay: &TestRelay,
    from: &User,
    ws: &mut Ws,
    (to, to_ms_id, to_device): (&User, &str, i64),
    expected: bool,
) {
    use common::assert_error;
    let devices = get(relay, from, &format!("/api/v1/users/{to_ms_id}/devices")).await;
    let bundle = post(
        relay,
        from,
        &format!("/api/v1/users/{to_ms_id}/devices/{to_device}/bundle"),
        None,
    )
    .await;
    let id = format!("{}-{}-{}", from.id, to.id, rows(relay, None).await);
    ws.send_msg(&id, to_device, b"a sender key, say").await;
    if expected {
        let list: Value = devices.json().await.unwrap();
        assert_eq!(list[0]["device_id"], to_device, "{list}");
        assert_eq!(bundle.status().as_u16(), 200);
        let bundle: Value = bundle.json().await.unwrap();
        assert_eq!(bundle["device_id"], to_device);
        let accepted = ws.expect("accepted").await;
        assert_eq!(accepted["id"], id.as_str());
        assert_eq!(accepted["to_device"], to_device);
    } else {
        assert_error(devices, 404, "not_found").await;
        assert_error(bundle, 404, "not_found").await;
        let err = ws.expect_error("not_friends").await;
        assert_eq!(err["id"], id.as_str());
    }
}

/// Joined members of one room are in contact although they are not friends (A is friends with
/// B and C; B and C are not): each may list the other's devices, fetch their bundles and
/// send to their devices — the pairwise sessions that carry the room's sender keys. Not while
/// one is only invited, not while either blocks the other, not after one leaves. Typing stays
/// between friends.
async fn joined_members_are_in_contact(relay: &TestRelay) {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    let c = user(relay, "carol").await;
    befriend(relay, &a, &b).await;
    befriend(relay, &a, &c).await;
    let b1 = api_device(relay, &b).await;
    let c1 = api_device(relay, &c).await;
    let (mut wb, _) = open_drained(relay, &b, b1).await;
    let (mut wc, _) = open_drained(relay, &c, c1).await;
    let room = create_room(relay, &a, None).await;
    assert_eq!(invite(relay, &a, room, "bob").await.status().as_u16(), 204);
    assert_eq!(join(relay, &b, room).await.status().as_u16(), 200);
    assert_eq!(
        invite(relay, &a, room, "carol").await.status().as_u16(),
        204
    );

    // Carol is invited, not joined: not in contact with Bob either way.
    assert_contact(relay, &b, &mut wb, (&c, "carol", c1), false).await;
    assert_contact(relay, &c, &mut wc, (&b, "bob", b1), false).await;

    // Both joined: in contact both ways, and the envelopes arrive.
    assert_eq!(join(relay, &c, room).await.status().as_u16(), 200);
    assert_contact(relay, &b, &mut wb, (&c, "carol", c1), true).await;
    let env = wc.expect("envelope").await;
    assert_eq!(env["from_user"], b.id);
    assert!(env.get("room").is_none(), "a direct envelope: {env}");
    assert_contact(relay, &c, &mut wc, (&b, "bob", b1), true).await;
    assert_eq!(wb.expect("envelope").await["from_user"], c.id);
    // Typing is still for friends only.
    wb.send(json!({"v": 1, "type": "typing", "to_user": c.id, "state": "typing"}))
        .await;
    wb.expect_error("not_friends").await;

    // A block by either ends it both ways; lifting it restores it.
    let resp = post(relay, &c, "/api/v1/blocks", Some(json!({"ms_id": "bob"}))).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_contact(relay, &b, &mut wb, (&c, "carol", c1), false).await;
    assert_contact(relay, &c, &mut wc, (&b, "bob", b1), false).await;
    let resp = relay
        .client()
        .delete(relay.url("/api/v1/blocks/bob"))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_contact(relay, &b, &mut wb, (&c, "carol", c1), true).await;
    wc.expect("envelope").await;

    // Carol leaves: not in contact any more.
    let leave = format!("/api/v1/rooms/{room}/leave");
    assert_eq!(post(relay, &c, &leave, None).await.status().as_u16(), 204);
    assert_contact(relay, &b, &mut wb, (&c, "carol", c1), false).await;
    assert_contact(relay, &c, &mut wc, (&b, "bob", b1), false).await;
    wb.close().await;
    wc.close().await;
}

/// `blocker` blocks the user with ms_id `blocked_ms_id`.
async fn block(relay: &TestRelay, blocker: &User, blocked_ms_id: &str) {
    let resp = post(
        relay,
        blocker,
        "/api/v1/blocks",
        Some(json!({ "ms_id": blocked_ms_id })),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 204);
}

/// A block between B and C (by C when `c_blocks`, else by B) keeps their room envelopes apart
/// both ways: a room send stores no copy for the other's devices, while A and the sender's own
/// other device get theirs and the sender gets `accepted`.
async fn room_send_respects_block(relay: &TestRelay, c_blocks: bool) {
    let t = trio(relay).await;
    if c_blocks {
        block(relay, &t.c, "bob").await;
    } else {
        block(relay, &t.b, "carol").await;
    }
    let (mut a1, _) = open_drained(relay, &t.a, t.a1).await;

    // B sends: A's devices and B's other device get it, C's device nothing.
    let (mut b1, _) = open_drained(relay, &t.b, t.b1).await;
    b1.send_room("from-b", t.room, b"bob to the room").await;
    let accepted = b1.expect("accepted").await;
    assert_eq!(accepted["id"], "from-b");
    assert_eq!(accepted["room"], t.room);
    let env = a1.expect("envelope").await;
    assert_eq!(env["id"], "from-b");
    assert_eq!(env["from_user"], t.b.id);
    assert_eq!(rows(relay, Some(t.a2)).await, 1);
    assert_eq!(rows(relay, Some(t.b2)).await, 1);
    assert_eq!(rows(relay, Some(t.c1)).await, 0);
    // Committed before `accepted`: a fresh connection of C's device finds nothing queued.
    let (c1, backlog) = open_drained(relay, &t.c, t.c1).await;
    assert!(backlog.is_empty(), "C got B's room envelope: {backlog:?}");
    c1.close().await;
    b1.close().await;

    // C sends: A's devices get it, B's devices nothing.
    let (mut c1, _) = open_drained(relay, &t.c, t.c1).await;
    c1.send_room("from-c", t.room, b"carol to the room").await;
    let accepted = c1.expect("accepted").await;
    assert_eq!(accepted["id"], "from-c");
    let env = a1.expect("envelope").await;
    assert_eq!(env["id"], "from-c");
    assert_eq!(env["from_user"], t.c.id);
    assert_eq!(rows(relay, Some(t.a2)).await, 2);
    let (b1, backlog) = open_drained(relay, &t.b, t.b1).await;
    assert!(backlog.is_empty(), "B got C's room envelope: {backlog:?}");
    let (b2, backlog) = open_drained(relay, &t.b, t.b2).await;
    let ids: Vec<&Value> = backlog.iter().map(|e| &e["id"]).collect();
    assert_eq!(
        ids,
        [&json!("from-b")],
        "B's other device: only B's own send"
    );
    for ws in [a1, b1, b2, c1] {
        ws.close().await;
    }
}

async fn room_send_skips_who_blocked_the_sender(relay: &TestRelay) {
    room_send_respects_block(relay, true).await;
}

async fn room_send_skips_whom_the_sender_blocked(relay: &TestRelay) {
    room_send_respects_block(relay, false).await;
}

/// The ms_ids in `who`'s view of the room's member list, and every device id listed.
async fn member_view(relay: &TestRelay, who: &User, room: i64) -> (Vec<String>, Vec<i64>) {
    let resp = get(relay, who, &format!("/api/v1/rooms/{room}/members")).await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    let members = body["members"].as_array().unwrap();
    let ms_ids = members
        .iter()
        .map(|m| m["ms_id"].as_str().unwrap().to_owned())
        .collect();
    let devices = members
        .iter()
        .flat_map(|m| m["devices"].as_array().unwrap().clone())
        .map(|d| d.as_i64().unwrap())
        .collect();
    (ms_ids, devices)
}

/// The member list hides a user blocked either way (ms_id and devices); everyone else sees the
/// whole list, and lifting the block shows them again.
async fn members_hide_blocked(relay: &TestRelay) {
    let t = trio(relay).await;
    let all = ["alice", "bob", "carol"];
    let (names, mut devices) = member_view(relay, &t.b, t.room).await;
    assert_eq!(names, all);
    devices.sort_unstable();
    let mut every = vec![t.a1, t.a2, t.b1, t.b2, t.c1];
    every.sort_unstable();
    assert_eq!(devices, every);

    for (blocker, blocked_ms_id) in [(&t.c, "bob"), (&t.b, "carol")] {
        block(relay, blocker, blocked_ms_id).await;
        let (names, devices) = member_view(relay, &t.b, t.room).await;
        assert_eq!(names, ["alice", "bob"], "B's view");
        assert_eq!(devices, [t.a1, t.a2, t.b1, t.b2], "B's view");
        let (names, devices) = member_view(relay, &t.c, t.room).await;
        assert_eq!(names, ["alice", "carol"], "C's view");
        assert_eq!(devices, [t.a1, t.a2, t.c1], "C's view");
        let (names, devices) = member_view(relay, &t.a, t.room).await;
        assert_eq!(names, all, "A's view");
        assert_eq!(devices.len(), 5, "A's view");
        let resp = relay
            .client()
            .delete(relay.url(&format!("/api/v1/blocks/{blocked_ms_id}")))
            .bearer_auth(&blocker.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204);
        assert_eq!(member_view(relay, &t.b, t.room).await.0, all);
        assert_eq!(member_view(relay, &t.c, t.room).await.0, all);
    }
}

async fn send_json(
    relay: &TestRelay,
    who: &User,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = relay
        .client()
        .request(method, relay.url(path))
        .bearer_auth(&who.token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// (ms_id, role) of every member, as `who` sees them.
async fn roles(relay: &TestRelay, who: &User, room: i64) -> Vec<(String, String)> {
    let resp = get(relay, who, &format!("/api/v1/rooms/{room}/members")).await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["ms_id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Reads change notices until a `rooms_changed` about a membership change of `user` arrives;
/// returns it.
async fn member_event(ws: &mut Ws, room: i64, user: i64) -> Value {
    loop {
        let v = ws.notice().await;
        if v["type"] == "rooms_changed" && v["room"] == room && v["user"] == user {
            return v;
        }
    }
}

fn pair(ms_id: &str, role: &str) -> (String, String) {
    (ms_id.to_owned(), role.to_owned())
}

/// Issue #12 item 4: room roles. The creator is the room's admin; only an admin renames the
/// room, removes a member, makes a member admin or deletes the room; when the last admin
/// leaves, the longest-standing joined member becomes admin. The `rooms_changed` notice says
/// what changed (`change`, `user`, `by`), so that clients show membership changes and
/// replace their sender keys without polling.
async fn roles_and_membership_events(relay: &TestRelay) {
    use common::assert_error;
    use reqwest::Method;
    let t = trio(relay).await;
    let room = t.room;
    let (mut b1, _) = open_drained(relay, &t.b, t.b1).await;
    assert_eq!(
        roles(relay, &t.b, room).await,
        [
            pair("alice", "admin"),
            pair("bob", "member"),
            pair("carol", "member")
        ]
    );

    // A member may not rename, remove, promote or delete.
    let rename = |name: &str| json!({ "name": name });
    let room_path = format!("/api/v1/rooms/{room}");
    let carol_path = format!("/api/v1/rooms/{room}/members/{}", t.c.id);
    let bob_role = format!("/api/v1/rooms/{room}/members/{}/role", t.b.id);
    for resp in [
        send_json(relay, &t.b, Method::PATCH, &room_path, Some(rename("Mine"))).await,
        send_json(relay, &t.b, Method::DELETE, &carol_path, None).await,
        send_json(
            relay,
            &t.b,
            Method::PUT,
            &bob_role,
            Some(json!({"role": "admin"})),
        )
        .await,
        send_json(relay, &t.b, Method::DELETE, &room_path, None).await,
    ] {
        assert_error(resp, 403, "not_room_admin").await;
    }
    assert_eq!(roles(relay, &t.b, room).await.len(), 3);

    // The admin renames (validated like at creation).
    let resp = send_json(
        relay,
        &t.a,
        Method::PATCH,
        &room_path,
        Some(rename(" Weekend ")),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    let view: Value = resp.json().await.unwrap();
    assert_eq!(view["name"], "Weekend");
    assert_eq!(rooms_of(relay, &t.b).await[0]["name"], "Weekend");
    assert_error(
        send_json(relay, &t.a, Method::PATCH, &room_path, Some(rename(""))).await,
        400,
        "invalid_input",
    )
    .await;

    // The admin removes Carol: she no longer sees the room, Bob is told who did it.
    let resp = send_json(relay, &t.a, Method::DELETE, &carol_path, None).await;
    assert_eq!(resp.status().as_u16(), 204);
    let event = member_event(&mut b1, room, t.c.id).await;
    assert_eq!(event["change"], "removed", "{event}");
    assert_eq!(event["by"], t.a.id, "{event}");
    assert!(rooms_of(relay, &t.c).await.is_empty());
    assert_error(
        get(relay, &t.c, &format!("{room_path}/members")).await,
        404,
        "not_found",
    )
    .await;
    // Removing her again, or an admin removing themself: nothing to remove / leave instead.
    assert_error(
        send_json(relay, &t.a, Method::DELETE, &carol_path, None).await,
        404,
        "not_found",
    )
    .await;
    let self_path = format!("/api/v1/rooms/{room}/members/{}", t.a.id);
    assert_error(
        send_json(relay, &t.a, Method::DELETE, &self_path, None).await,
        409,
        "conflict",
    )
    .await;

    // A new member's join reaches Bob too.
    assert_eq!(
        invite(relay, &t.a, room, "carol").await.status().as_u16(),
        204
    );
    assert_eq!(
        member_event(&mut b1, room, t.c.id).await["change"],
        "invited"
    );
    assert_eq!(join(relay, &t.c, room).await.status().as_u16(), 200);
    assert_eq!(
        member_event(&mut b1, room, t.c.id).await["change"],
        "joined"
    );

    // Bob made admin may rename; a role other than admin or member is refused.
    let resp = send_json(
        relay,
        &t.a,
        Method::PUT,
        &bob_role,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        member_event(&mut b1, room, t.b.id).await["change"],
        "promoted"
    );
    assert_error(
        send_json(
            relay,
            &t.a,
            Method::PUT,
            &bob_role,
            Some(json!({"role": "owner"})),
        )
        .await,
        400,
        "invalid_json",
    )
    .await;
    let resp = send_json(
        relay,
        &t.b,
        Method::PATCH,
        &room_path,
        Some(rename("Bob's")),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);

    // When the last admin leaves, the longest-standing joined member becomes admin.
    let second = room_with(relay, &t.a, &[(&t.b, "bob"), (&t.c, "carol")]).await;
    let leave = post(relay, &t.a, &format!("/api/v1/rooms/{second}/leave"), None).await;
    assert_eq!(leave.status().as_u16(), 204);
    assert_eq!(
        roles(relay, &t.b, second).await,
        [pair("bob", "admin"), pair("carol", "member")]
    );

    // An admin deletes the room: it is gone for everyone, and everyone is told.
    let resp = send_json(relay, &t.b, Method::DELETE, &room_path, None).await;
    assert_eq!(resp.status().as_u16(), 204);
    for who in [&t.a, &t.b, &t.c] {
        assert!(rooms_of(relay, who).await.iter().all(|r| r["id"] != room));
    }
    assert_error(
        get(relay, &t.a, &format!("{room_path}/members")).await,
        404,
        "not_found",
    )
    .await;
}

on_both_backends!(
    roles_and_membership_events,
    concurrent_invites_respect_the_cap,
    lifecycle,
    queue_full_stores_nothing,
    member_cap,
    creator_deleted,
    fan_out_online,
    backlog_duplicates_ack_leave,
    room_send_refusals,
    joined_members_are_in_contact,
    room_send_skips_who_blocked_the_sender,
    room_send_skips_whom_the_sender_blocked,
    members_hide_blocked,
);

/// With the production limits, an account creates at most 30 rooms an hour; others are not
/// held back, and an hour later it may create again.
async fn room_creation_is_rate_limited(backend: Backend) {
    let Some(relay) = TestRelay::start_with(backend, true).await else {
        return;
    };
    let a = user(&relay, "alice").await;
    let b = user(&relay, "bob").await;
    for _ in 0..30 {
        create_room(&relay, &a, None).await;
    }
    let resp = post(&relay, &a, "/api/v1/rooms", Some(json!({}))).await;
    common::assert_error(resp, 429, "rate_limited").await;
    create_room(&relay, &b, None).await;
    relay.clock().advance(3600);
    create_room(&relay, &a, None).await;
    relay.stop().await;
}

#[actix_web::test]
async fn room_creation_is_rate_limited_sqlite() {
    room_creation_is_rate_limited(Backend::Sqlite).await;
}

#[actix_web::test]
async fn room_creation_is_rate_limited_postgres() {
    room_creation_is_rate_limited(Backend::Postgres).await;
}
