//! ms_id edits and lookups, friend requests, friends and blocks over real HTTP, on SQLite and
//! PostgreSQL.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Backend, PASSWORD, TestRelay, assert_error, call, ok_json};
use diesel::prelude::*;
use relay_server::api::error::ApiError;
use relay_server::db::schema::{friend_requests, friendships, ms_id_holds};
use relay_server::services::friends::are_friends;
use reqwest::Method;
use serde_json::{Value, json};

const DAY: i64 = 86_400;

struct User {
    id: i64,
    email: String,
    token: String,
}

/// Signs in again (after moving the clock past the session lifetime).
async fn relogin(relay: &TestRelay, who: &mut User) {
    who.token = relay.token(&who.email).await.0;
}

async fn user(relay: &TestRelay, ms_id: &str) -> User {
    let email = format!("{}@example.org", ms_id.to_ascii_lowercase());
    let created = relay.register(&email, ms_id).await;
    let (token, _) = relay.token(&email).await;
    User {
        id: created["user_id"].as_i64().unwrap(),
        email,
        token,
    }
}

impl common::Bearer for User {
    fn bearer(&self) -> &str {
        &self.token
    }
}

async fn set_ms_id(relay: &TestRelay, who: &User, ms_id: &str) -> reqwest::Response {
    call(
        relay,
        Method::PUT,
        "/api/v1/me/ms_id",
        who,
        Some(json!({ "ms_id": ms_id })),
    )
    .await
}

async fn lookup(relay: &TestRelay, who: &User, ms_id: &str) -> reqwest::Response {
    call(
        relay,
        Method::GET,
        &format!("/api/v1/users/{ms_id}"),
        who,
        None,
    )
    .await
}

async fn send(relay: &TestRelay, who: &User, ms_id: &str, note: Option<&str>) -> reqwest::Response {
    let body = match note {
        Some(n) => json!({ "ms_id": ms_id, "note": n }),
        None => json!({ "ms_id": ms_id }),
    };
    call(
        relay,
        Method::POST,
        "/api/v1/friends/requests",
        who,
        Some(body),
    )
    .await
}

async fn requests(relay: &TestRelay, who: &User) -> Value {
    ok_json(
        call(relay, Method::GET, "/api/v1/friends/requests", who, None).await,
        200,
    )
    .await
}

async fn friend_ms_ids(relay: &TestRelay, who: &User) -> Vec<String> {
    let list = ok_json(
        call(relay, Method::GET, "/api/v1/friends", who, None).await,
        200,
    )
    .await;
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| f["ms_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn request_action(relay: &TestRelay, who: &User, id: i64, action: &str) -> reqwest::Response {
    match action {
        "cancel" => {
            call(
                relay,
                Method::DELETE,
                &format!("/api/v1/friends/requests/{id}"),
                who,
                None,
            )
            .await
        }
        _ => {
            call(
                relay,
                Method::POST,
                &format!("/api/v1/friends/requests/{id}/{action}"),
                who,
                None,
            )
            .await
        }
    }
}

/// Sends a request from `a` to `b_ms_id` and has `b` accept it.
async fn befriend(relay: &TestRelay, a: &User, b: &User, b_ms_id: &str) {
    let sent = ok_json(send(relay, a, b_ms_id, None).await, 201).await;
    let id = sent["request"]["id"].as_i64().unwrap();
    ok_json(request_action(relay, b, id, "accept").await, 200).await;
}

async fn db_are_friends(relay: &TestRelay, a: i64, b: i64) -> bool {
    relay
        .state
        .db
        .run(move |conn| are_friends(conn, a, b))
        .await
        .unwrap()
}

/// Rows of `friend_requests` and `friendships` between `a` and `b`, either direction.
async fn rows_between(relay: &TestRelay, a: i64, b: i64) -> (i64, i64) {
    relay
        .state
        .db
        .run(move |conn| {
            let requests: i64 = friend_requests::table
                .filter(
                    friend_requests::sender_id
                        .eq(a)
                        .and(friend_requests::recipient_id.eq(b))
                        .or(friend_requests::sender_id
                            .eq(b)
                            .and(friend_requests::recipient_id.eq(a))),
                )
                .count()
                .get_result(conn)?;
            let friends: i64 = friendships::table
                .filter(
                    friendships::user_low
                        .eq(a.min(b))
                        .and(friendships::user_high.eq(a.max(b))),
                )
                .count()
                .get_result(conn)?;
            Ok::<_, ApiError>((requests, friends))
        })
        .await
        .unwrap()
}

async fn rename_keeps_friends(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    let mut carol = user(relay, "carol").await;
    befriend(relay, &alice, &bob, "bob").await;

    let me = ok_json(set_ms_id(relay, &alice, "Alice.Two").await, 200).await;
    assert_eq!(me["ms_id"], "alice.two");
    assert_eq!(me["user_id"], alice.id);
    // Setting the current one again is a no-op.
    ok_json(set_ms_id(relay, &alice, "alice.two").await, 200).await;

    assert_eq!(friend_ms_ids(relay, &bob).await, ["alice.two"]);
    assert_eq!(friend_ms_ids(relay, &alice).await, ["bob"]);
    assert!(db_are_friends(relay, alice.id, bob.id).await);
    assert_error(lookup(relay, &bob, "alice").await, 404, "not_found").await;
    let profile = ok_json(lookup(relay, &bob, "ALICE.two").await, 200).await;
    assert_eq!(
        profile,
        json!({"user_id": alice.id, "ms_id": "alice.two", "display_name": "Test User"})
    );

    // The old ms_id is held for alice: nobody else gets it, by edit or registration.
    assert_error(
        set_ms_id(relay, &carol, "alice").await,
        409,
        "ms_id_unavailable",
    )
    .await;
    let resp = relay
        .client()
        .post(relay.url("/api/v1/accounts"))
        .json(&json!({"email": "x@example.org", "password": PASSWORD, "ms_id": "ALICE", "display_name": "X"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 409, "ms_id_unavailable").await;
    // A taken one is unavailable too.
    assert_error(
        set_ms_id(relay, &carol, "BOB").await,
        409,
        "ms_id_unavailable",
    )
    .await;

    // Alice takes hers back; now "alice.two" is held for her.
    ok_json(set_ms_id(relay, &alice, "alice").await, 200).await;
    assert_eq!(friend_ms_ids(relay, &bob).await, ["alice"]);
    assert!(db_are_friends(relay, alice.id, bob.id).await);
    assert_error(
        set_ms_id(relay, &carol, "alice.two").await,
        409,
        "ms_id_unavailable",
    )
    .await;
    // Still held one second before the 30 days are over (the test relay's clock moves
    // only when advanced) ...
    relay.clock().advance(30 * DAY - 1);
    relogin(relay, &mut carol).await;
    assert_error(
        set_ms_id(relay, &carol, "alice.two").await,
        409,
        "ms_id_unavailable",
    )
    .await;
    // ... and free when they are.
    relay.clock().advance(1);
    let me = ok_json(set_ms_id(relay, &carol, "alice.two").await, 200).await;
    assert_eq!(me["ms_id"], "alice.two");
    let held: Vec<(String, i64)> = relay
        .state
        .db
        .run(|conn| {
            ms_id_holds::table
                .order(ms_id_holds::ms_id.asc())
                .select((ms_id_holds::ms_id, ms_id_holds::previous_owner))
                .load(conn)
                .map_err(ApiError::from)
        })
        .await
        .unwrap();
    // carol's released "carol" is held for her; the reclaimed/taken ones are not held any more.
    assert_eq!(held, [("carol".to_owned(), carol.id)]);
}

async fn deleted_account_ms_id_held(relay: &TestRelay) {
    let dave = user(relay, "dave").await;
    let mut erin = user(relay, "erin").await;
    befriend(relay, &dave, &erin, "erin").await;
    let resp = call(
        relay,
        Method::DELETE,
        "/api/v1/me",
        &dave,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(friend_ms_ids(relay, &erin).await, Vec::<String>::new());
    assert_error(lookup(relay, &erin, "dave").await, 404, "not_found").await;
    assert_error(
        set_ms_id(relay, &erin, "dave").await,
        409,
        "ms_id_unavailable",
    )
    .await;
    relay.clock().advance(30 * DAY + 1);
    relogin(relay, &mut erin).await;
    ok_json(set_ms_id(relay, &erin, "dave").await, 200).await;
}

async fn case_insensitive(relay: &TestRelay) {
    let mixed = user(relay, "MiXeD").await;
    let other = user(relay, "other").await;
    let me = ok_json(
        call(relay, Method::GET, "/api/v1/me", &mixed, None).await,
        200,
    )
    .await;
    assert_eq!(me["ms_id"], "mixed");
    let resp = relay
        .client()
        .post(relay.url("/api/v1/accounts"))
        .json(&json!({"email": "y@example.org", "password": PASSWORD, "ms_id": "MIXED", "display_name": "Y"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 409, "ms_id_unavailable").await;
    assert_error(
        set_ms_id(relay, &other, "mIxEd").await,
        409,
        "ms_id_unavailable",
    )
    .await;
    for form in ["mixed", "MIXED", "Mixed"] {
        let p = ok_json(lookup(relay, &other, form).await, 200).await;
        assert_eq!(p["ms_id"], "mixed");
    }
    let sent = ok_json(send(relay, &other, "MIXED", None).await, 201).await;
    assert_eq!(sent["request"]["ms_id"], "mixed");
    assert_error(
        send(relay, &other, "mixed", None).await,
        409,
        "duplicate_request",
    )
    .await;
    // Self request in another case.
    assert_error(
        send(relay, &mixed, "MIXED", None).await,
        400,
        "self_request",
    )
    .await;
}

async fn bad_ms_ids(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let long = "a".repeat(33);
    let bad: Vec<&str> = vec![
        "",
        "ab",
        &long,
        "ali\u{0430}ce", // Cyrillic а
        "\u{0430}lice",  // Cyrillic а first
        "ali\u{200b}ce", // zero-width space
        "\u{ff41}lice",  // fullwidth a
        "\u{212a}elvin", // Kelvin sign: lowercases to 'k' under Unicode rules
        "alice\u{301}",  // combining accent
        "a lice",
        " alice",
        "alice\t",
        "alice/x",
        "alice@x",
        ".alice",
        "alice.",
        "_alice",
        "alice-",
        "a..b",
        "a._b",
    ];
    for ms_id in &bad {
        assert_error(set_ms_id(relay, &alice, ms_id).await, 400, "invalid_ms_id").await;
    }
    // Nothing changed.
    let me = ok_json(
        call(relay, Method::GET, "/api/v1/me", &alice, None).await,
        200,
    )
    .await;
    assert_eq!(me["ms_id"], "alice");
    // 32 characters is fine, 3 too.
    ok_json(set_ms_id(relay, &alice, &"b".repeat(32)).await, 200).await;
    ok_json(set_ms_id(relay, &alice, "a.b").await, 200).await;
    ok_json(set_ms_id(relay, &alice, "a-1_b.c").await, 200).await;

    // Lookups and requests refuse what cannot be an ms_id.
    for ms_id in [
        "ab",
        "ali\u{0430}ce",
        "\u{ff41}lice",
        "ali\u{200b}ce",
        &long,
    ] {
        let path_form = ms_id.to_owned();
        assert_error(
            lookup(relay, &alice, &path_form).await,
            400,
            "invalid_ms_id",
        )
        .await;
        assert_error(send(relay, &alice, ms_id, None).await, 400, "invalid_ms_id").await;
        let resp = call(
            relay,
            Method::POST,
            "/api/v1/blocks",
            &alice,
            Some(json!({ "ms_id": ms_id })),
        )
        .await;
        assert_error(resp, 400, "invalid_ms_id").await;
    }
    // Wrong JSON types.
    let resp = call(
        relay,
        Method::PUT,
        "/api/v1/me/ms_id",
        &alice,
        Some(json!({ "ms_id": 42 })),
    )
    .await;
    assert_error(resp, 400, "invalid_json").await;
    let resp = call(
        relay,
        Method::POST,
        "/api/v1/friends/requests",
        &alice,
        Some(json!({ "ms_id": "bob", "note": ["x"] })),
    )
    .await;
    assert_error(resp, 400, "invalid_json").await;
    // Notes: 280 characters at most, no control characters.
    user(relay, "bob").await;
    let long_note = "é".repeat(281);
    assert_error(
        send(relay, &alice, "bob", Some(&long_note)).await,
        400,
        "invalid_input",
    )
    .await;
    assert_error(
        send(relay, &alice, "bob", Some("bell\u{7}")).await,
        400,
        "invalid_input",
    )
    .await;
    let sent = ok_json(
        send(relay, &alice, "bob", Some(&"é".repeat(280))).await,
        201,
    )
    .await;
    assert_eq!(
        sent["request"]["note"].as_str().unwrap().chars().count(),
        280
    );
    // Unauthenticated calls.
    let resp = relay
        .client()
        .get(relay.url("/api/v1/users/bob"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "unauthorized").await;
    let resp = relay
        .client()
        .get(relay.url("/api/v1/friends"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "unauthorized").await;
}

async fn request_lifecycle(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;

    // Send with a note.
    let sent = ok_json(
        send(relay, &alice, "bob", Some("  hi, it's Alice ")).await,
        201,
    )
    .await;
    assert_eq!(sent["status"], "pending");
    assert!(sent.get("friend").is_none());
    let id = sent["request"]["id"].as_i64().unwrap();
    assert_eq!(sent["request"]["ms_id"], "bob");
    assert_eq!(sent["request"]["note"], "hi, it's Alice");
    let out = requests(relay, &alice).await;
    assert_eq!(out["incoming"], json!([]));
    assert_eq!(out["outgoing"].as_array().unwrap().len(), 1);
    assert_eq!(out["outgoing"][0]["id"], id);
    assert_eq!(out["outgoing"][0]["ms_id"], "bob");
    let inc = requests(relay, &bob).await;
    assert_eq!(inc["outgoing"], json!([]));
    let item = &inc["incoming"][0];
    assert_eq!(item["id"], id);
    assert_eq!(item["ms_id"], "alice");
    assert_eq!(item["display_name"], "Test User");
    assert_eq!(item["note"], "hi, it's Alice");
    assert!(item["created_at"].as_i64().unwrap() > 0);

    // Decline: gone for both; declining again is not_found.
    assert_eq!(
        request_action(relay, &bob, id, "decline").await.status(),
        204
    );
    assert_eq!(
        requests(relay, &alice).await,
        json!({"incoming": [], "outgoing": []})
    );
    assert_eq!(
        requests(relay, &bob).await,
        json!({"incoming": [], "outgoing": []})
    );
    assert_error(
        request_action(relay, &bob, id, "decline").await,
        404,
        "not_found",
    )
    .await;

    // Send (no note) and cancel.
    let sent = ok_json(send(relay, &alice, "bob", None).await, 201).await;
    assert_eq!(sent["request"]["note"], Value::Null);
    let id = sent["request"]["id"].as_i64().unwrap();
    assert_eq!(
        request_action(relay, &alice, id, "cancel").await.status(),
        204
    );
    assert_eq!(requests(relay, &bob).await["incoming"], json!([]));
    assert_error(
        request_action(relay, &bob, id, "accept").await,
        404,
        "not_found",
    )
    .await;

    // Send and accept.
    let sent = ok_json(send(relay, &alice, "bob", None).await, 201).await;
    let id = sent["request"]["id"].as_i64().unwrap();
    let friend = ok_json(request_action(relay, &bob, id, "accept").await, 200).await;
    assert_eq!(friend["ms_id"], "alice");
    assert_eq!(friend["display_name"], "Test User");
    assert!(friend["since"].as_i64().unwrap() > 0);
    assert_eq!(friend_ms_ids(relay, &alice).await, ["bob"]);
    assert_eq!(friend_ms_ids(relay, &bob).await, ["alice"]);
    assert_eq!(rows_between(relay, alice.id, bob.id).await, (0, 1));
    assert!(db_are_friends(relay, alice.id, bob.id).await);
    assert!(db_are_friends(relay, bob.id, alice.id).await);
    assert!(!db_are_friends(relay, alice.id, alice.id).await);
    assert_error(
        request_action(relay, &bob, id, "accept").await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        send(relay, &alice, "bob", None).await,
        409,
        "already_friends",
    )
    .await;
    assert_error(
        send(relay, &bob, "ALICE", None).await,
        409,
        "already_friends",
    )
    .await;

    // Remove.
    let resp = call(relay, Method::DELETE, "/api/v1/friends/Bob", &alice, None).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(friend_ms_ids(relay, &alice).await, Vec::<String>::new());
    assert_eq!(friend_ms_ids(relay, &bob).await, Vec::<String>::new());
    assert!(!db_are_friends(relay, alice.id, bob.id).await);
    assert_eq!(rows_between(relay, alice.id, bob.id).await, (0, 0));
    let resp = call(relay, Method::DELETE, "/api/v1/friends/bob", &alice, None).await;
    assert_error(resp, 404, "not_found").await;
    let resp = call(
        relay,
        Method::DELETE,
        "/api/v1/friends/nobody",
        &alice,
        None,
    )
    .await;
    assert_error(resp, 404, "not_found").await;
    // They can become friends again.
    befriend(relay, &bob, &alice, "alice").await;
    assert!(db_are_friends(relay, alice.id, bob.id).await);
}

async fn self_duplicates_and_mutual(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    let carol = user(relay, "carol").await;
    assert_error(
        send(relay, &alice, "alice", None).await,
        400,
        "self_request",
    )
    .await;
    assert_error(send(relay, &alice, "nobody", None).await, 404, "not_found").await;
    ok_json(send(relay, &alice, "bob", None).await, 201).await;
    assert_error(
        send(relay, &alice, "BOB", Some("again")).await,
        409,
        "duplicate_request",
    )
    .await;
    assert_eq!(
        requests(relay, &alice).await["outgoing"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Bob asks alice back: accepted at once, both requests gone.
    let resp = ok_json(send(relay, &bob, "alice", Some("oh hi")).await, 200).await;
    assert_eq!(resp["status"], "accepted");
    assert!(resp.get("request").is_none());
    assert_eq!(resp["friend"]["ms_id"], "alice");
    assert_eq!(rows_between(relay, alice.id, bob.id).await, (0, 1));
    assert_eq!(
        requests(relay, &alice).await,
        json!({"incoming": [], "outgoing": []})
    );
    assert_eq!(friend_ms_ids(relay, &bob).await, ["alice"]);

    // Several requests at once are listed in order.
    ok_json(send(relay, &carol, "alice", Some("1")).await, 201).await;
    ok_json(send(relay, &carol, "bob", Some("2")).await, 201).await;
    let c = requests(relay, &carol).await;
    let notes: Vec<&str> = c["outgoing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["note"].as_str().unwrap())
        .collect();
    assert_eq!(notes, ["1", "2"]);
}

async fn someone_elses_request(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    let carol = user(relay, "carol").await;
    let sent = ok_json(send(relay, &alice, "bob", None).await, 201).await;
    let id = sent["request"]["id"].as_i64().unwrap();
    for action in ["accept", "decline", "cancel"] {
        assert_error(
            request_action(relay, &carol, id, action).await,
            404,
            "not_found",
        )
        .await;
        assert_error(
            request_action(relay, &carol, 9_999_999, action).await,
            404,
            "not_found",
        )
        .await;
    }
    // The sender cannot accept or decline, the recipient cannot cancel.
    assert_error(
        request_action(relay, &alice, id, "accept").await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        request_action(relay, &alice, id, "decline").await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        request_action(relay, &bob, id, "cancel").await,
        404,
        "not_found",
    )
    .await;
    // Bad ids.
    let resp = call(
        relay,
        Method::POST,
        "/api/v1/friends/requests/abc/accept",
        &bob,
        None,
    )
    .await;
    assert_error(resp, 400, "invalid_input").await;
    // The request survived all of that.
    assert_eq!(requests(relay, &bob).await["incoming"][0]["id"], id);
    assert_eq!(rows_between(relay, alice.id, bob.id).await, (1, 0));
    assert_eq!(rows_between(relay, alice.id, carol.id).await, (0, 0));
}

async fn block_hides_blocker(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    let carol = user(relay, "carol").await;
    befriend(relay, &alice, &bob, "bob").await;
    ok_json(send(relay, &carol, "bob", Some("hello")).await, 201).await;
    ok_json(send(relay, &alice, "carol", None).await, 201).await;

    // Bob blocks alice (a friend) and carol (a pending request to him).
    let block = |who: &'static str| json!({ "ms_id": who });
    let resp = call(
        relay,
        Method::POST,
        "/api/v1/blocks",
        &bob,
        Some(block("ALICE")),
    )
    .await;
    assert_eq!(resp.status(), 204);
    let resp = call(
        relay,
        Method::POST,
        "/api/v1/blocks",
        &bob,
        Some(block("carol")),
    )
    .await;
    assert_eq!(resp.status(), 204);
    // Blocking again changes nothing.
    let resp = call(
        relay,
        Method::POST,
        "/api/v1/blocks",
        &bob,
        Some(block("carol")),
    )
    .await;
    assert_eq!(resp.status(), 204);
    let resp = call(
        relay,
        Method::POST,
        "/api/v1/blocks",
        &bob,
        Some(block("bob")),
    )
    .await;
    assert_error(resp, 400, "self_request").await;
    let resp = call(
        relay,
        Method::POST,
        "/api/v1/blocks",
        &bob,
        Some(block("nobody")),
    )
    .await;
    assert_error(resp, 404, "not_found").await;

    // The database holds nothing between them any more; alice and carol are untouched.
    assert_eq!(rows_between(relay, alice.id, bob.id).await, (0, 0));
    assert_eq!(rows_between(relay, carol.id, bob.id).await, (0, 0));
    assert_eq!(rows_between(relay, alice.id, carol.id).await, (1, 0));
    assert!(!db_are_friends(relay, alice.id, bob.id).await);
    assert_eq!(friend_ms_ids(relay, &alice).await, Vec::<String>::new());
    assert_eq!(
        requests(relay, &bob).await,
        json!({"incoming": [], "outgoing": []})
    );
    assert_eq!(requests(relay, &carol).await["outgoing"], json!([]));

    // To alice, bob does not exist.
    assert_error(lookup(relay, &alice, "bob").await, 404, "not_found").await;
    assert_error(send(relay, &alice, "bob", None).await, 404, "not_found").await;
    let resp = call(
        relay,
        Method::POST,
        "/api/v1/blocks",
        &alice,
        Some(block("bob")),
    )
    .await;
    assert_error(resp, 404, "not_found").await;
    let resp = call(relay, Method::DELETE, "/api/v1/friends/bob", &alice, None).await;
    assert_error(resp, 404, "not_found").await;
    // Bob sees alice, and is told he blocked her.
    ok_json(lookup(relay, &bob, "alice").await, 200).await;
    assert_error(send(relay, &bob, "alice", None).await, 403, "blocked").await;
    let list = ok_json(
        call(relay, Method::GET, "/api/v1/blocks", &bob, None).await,
        200,
    )
    .await;
    let mut blocked: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["ms_id"].as_str().unwrap())
        .collect();
    blocked.sort_unstable();
    assert_eq!(blocked, ["alice", "carol"]);
    assert!(list[0]["blocked_at"].as_i64().unwrap() > 0);
    assert_eq!(list[0]["display_name"], "Test User");
    // A rename does not escape the block.
    ok_json(set_ms_id(relay, &bob, "robert").await, 200).await;
    assert_error(lookup(relay, &alice, "robert").await, 404, "not_found").await;

    // Unblock: visible again, nothing restored, a new request works.
    let resp = call(relay, Method::DELETE, "/api/v1/blocks/Alice", &bob, None).await;
    assert_eq!(resp.status(), 204);
    let resp = call(relay, Method::DELETE, "/api/v1/blocks/alice", &bob, None).await;
    assert_error(resp, 404, "not_found").await;
    let resp = call(relay, Method::DELETE, "/api/v1/blocks/bob", &alice, None).await;
    assert_error(resp, 404, "not_found").await;
    ok_json(lookup(relay, &alice, "robert").await, 200).await;
    assert_eq!(friend_ms_ids(relay, &alice).await, Vec::<String>::new());
    befriend(relay, &alice, &bob, "robert").await;
    assert!(db_are_friends(relay, alice.id, bob.id).await);
    // Carol is still blocked.
    assert_error(lookup(relay, &carol, "robert").await, 404, "not_found").await;
    let list = ok_json(
        call(relay, Method::GET, "/api/v1/blocks", &bob, None).await,
        200,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

/// Every view of another user names them by user id too (the id WebSocket frames use:
/// `presence.user`, `typing.from_user`, `envelope.from_user`), and an ms_id edit keeps it.
async fn views_carry_user_ids(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    let carol = user(relay, "carol").await;
    let dave = user(relay, "dave").await;

    // A pending request: the recipient's id in the answer and in the outgoing list, the
    // sender's in the recipient's incoming list.
    let sent = ok_json(send(relay, &alice, "bob", Some("hi")).await, 201).await;
    assert_eq!(sent["request"]["user_id"], bob.id, "{sent}");
    let out = requests(relay, &alice).await;
    assert_eq!(out["outgoing"][0]["user_id"], bob.id, "{out}");
    let inc = requests(relay, &bob).await;
    assert_eq!(inc["incoming"][0]["user_id"], alice.id, "{inc}");
    let item = inc["incoming"][0].as_object().unwrap();
    let mut keys: Vec<&str> = item.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "display_name",
            "id",
            "ms_id",
            "note",
            "user_id"
        ]
    );

    // A profile.
    let profile = ok_json(lookup(relay, &bob, "ALICE").await, 200).await;
    assert_eq!(
        profile,
        json!({"user_id": alice.id, "ms_id": "alice", "display_name": "Test User"})
    );

    // A mutual request accepted at once names the new friend.
    let accepted = ok_json(send(relay, &bob, "alice", None).await, 200).await;
    assert_eq!(accepted["friend"]["user_id"], alice.id, "{accepted}");
    // An accepted request too.
    let sent = ok_json(send(relay, &carol, "alice", None).await, 201).await;
    let id = sent["request"]["id"].as_i64().unwrap();
    assert_eq!(sent["request"]["user_id"], alice.id);
    let friend = ok_json(request_action(relay, &alice, id, "accept").await, 200).await;
    assert_eq!(friend["user_id"], carol.id, "{friend}");

    // The friend list.
    let list = ok_json(
        call(relay, Method::GET, "/api/v1/friends", &alice, None).await,
        200,
    )
    .await;
    let ids: Vec<(String, i64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["ms_id"].as_str().unwrap().to_owned(),
                f["user_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [("bob".to_owned(), bob.id), ("carol".to_owned(), carol.id)]
    );

    // The block list.
    let resp = call(
        relay,
        Method::POST,
        "/api/v1/blocks",
        &alice,
        Some(json!({"ms_id": "dave"})),
    )
    .await;
    assert_eq!(resp.status(), 204);
    let blocked = ok_json(
        call(relay, Method::GET, "/api/v1/blocks", &alice, None).await,
        200,
    )
    .await;
    assert_eq!(blocked[0]["user_id"], dave.id, "{blocked}");

    // A rename keeps the id.
    ok_json(set_ms_id(relay, &bob, "robert").await, 200).await;
    let list = ok_json(
        call(relay, Method::GET, "/api/v1/friends", &alice, None).await,
        200,
    )
    .await;
    assert_eq!(list[1]["ms_id"], "robert");
    assert_eq!(list[1]["user_id"], bob.id);
}

/// `GET /api/v1/ms_ids/{ms_id}` without a session.
async fn availability(relay: &TestRelay, ms_id: &str) -> reqwest::Response {
    relay
        .client()
        .get(relay.url(&format!("/api/v1/ms_ids/{ms_id}")))
        .send()
        .await
        .unwrap()
}

async fn available(relay: &TestRelay, ms_id: &str) -> Value {
    ok_json(availability(relay, ms_id).await, 200).await
}

/// Sign-up asks whether an ms_id can be had: free, taken (in any case), held back after its
/// release (rename or account deletion) until the hold ends, or malformed.
async fn ms_id_availability(relay: &TestRelay) {
    assert_eq!(
        available(relay, "NewUser").await,
        json!({"ms_id": "newuser", "available": true})
    );
    let alice = user(relay, "alice").await;
    for form in ["alice", "ALICE", "aLiCe"] {
        assert_eq!(
            available(relay, form).await,
            json!({"ms_id": "alice", "available": false}),
            "{form}"
        );
    }
    // Released by a rename: held back (for everyone asking here, the previous owner included:
    // this is the sign-up check; the owner takes it back with PUT /me/ms_id).
    ok_json(set_ms_id(relay, &alice, "alice.two").await, 200).await;
    assert_eq!(available(relay, "alice").await["available"], false);
    assert_eq!(available(relay, "Alice.Two").await["available"], false);
    let with_session = relay
        .client()
        .get(relay.url("/api/v1/ms_ids/alice"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(with_session, 200).await["available"], false);
    // Released by deleting the account: held back too.
    let bob = user(relay, "bob").await;
    let resp = call(
        relay,
        Method::DELETE,
        "/api/v1/me",
        &bob,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(available(relay, "bob").await["available"], false);
    // Free again when the holds end (30 days); the taken one stays taken.
    relay.clock().advance(30 * DAY);
    assert_eq!(available(relay, "alice").await["available"], true);
    assert_eq!(available(relay, "bob").await["available"], true);
    assert_eq!(available(relay, "alice.two").await["available"], false);

    // Malformed: the rules for a new ms_id, not only the shape of one.
    let long = "a".repeat(33);
    for bad in [
        "ab",
        long.as_str(),
        ".alice",
        "alice-",
        "a..b",
        "a._b",
        "ali\u{0430}ce",
        "\u{ff41}lice",
        "ali\u{200b}ce",
        "a%20b",
    ] {
        assert_error(availability(relay, bad).await, 400, "invalid_ms_id").await;
    }
    // Nothing was created by asking.
    assert_eq!(available(relay, "newuser").await["available"], true);
}

async fn openapi_lists_routes(relay: &TestRelay) {
    let doc: Value = relay
        .client()
        .get(relay.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/me/ms_id", "put"),
        ("/api/v1/ms_ids/{ms_id}", "get"),
        ("/api/v1/users/{ms_id}", "get"),
        ("/api/v1/friends/requests", "post"),
        ("/api/v1/friends/requests", "get"),
        ("/api/v1/friends/requests/{id}/accept", "post"),
        ("/api/v1/friends/requests/{id}/decline", "post"),
        ("/api/v1/friends/requests/{id}", "delete"),
        ("/api/v1/friends", "get"),
        ("/api/v1/friends/{ms_id}", "delete"),
        ("/api/v1/blocks", "post"),
        ("/api/v1/blocks", "get"),
        ("/api/v1/blocks/{ms_id}", "delete"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
}

/// Cookie-authenticated writes need the CSRF header; registration uses the new-ms_id rules.
async fn cookie_csrf_and_registration_rules(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    user(relay, "bob").await;
    let (token, csrf) = relay.token(&alice.email).await;
    let cookie = format!("securechat_session={token}");
    let put = |csrf: Option<String>| {
        let mut req = relay
            .client()
            .put(relay.url("/api/v1/me/ms_id"))
            .header("cookie", &cookie)
            .json(&json!({"ms_id": "alice2"}));
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        req.send()
    };
    assert_error(put(None).await.unwrap(), 403, "csrf_failed").await;
    let resp = relay
        .client()
        .post(relay.url("/api/v1/friends/requests"))
        .header("cookie", &cookie)
        .json(&json!({"ms_id": "bob"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "csrf_failed").await;
    assert_eq!(requests(relay, &alice).await["outgoing"], json!([]));
    assert_eq!(put(Some(csrf)).await.unwrap().status(), 200);
    // Reads need no CSRF header.
    let resp = relay
        .client()
        .get(relay.url("/api/v1/users/bob"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    for ms_id in [".lead", "trail_", "dou..ble", "mi\u{0445}ed"] {
        let resp = relay
            .client()
            .post(relay.url("/api/v1/accounts"))
            .json(&json!({"email": "z@example.org", "password": PASSWORD, "ms_id": ms_id, "display_name": "Z"}))
            .send()
            .await
            .unwrap();
        assert_error(resp, 400, "invalid_ms_id").await;
    }
}

on_both_backends!(
    cookie_csrf_and_registration_rules,
    rename_keeps_friends,
    deleted_account_ms_id_held,
    case_insensitive,
    bad_ms_ids,
    request_lifecycle,
    self_duplicates_and_mutual,
    someone_elses_request,
    block_hides_blocker,
    openapi_lists_routes,
    views_carry_user_ids,
    ms_id_availability,
);

async fn assert_rate_limited(resp: reqwest::Response) {
    let retry_after: u64 = resp
        .headers()
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_error(resp, 429, "rate_limited").await;
}

async fn rate_limits(backend: Backend) {
    let Some(relay) = TestRelay::start_with(backend, true).await else {
        return;
    };
    let alice = user(&relay, "alice").await;
    let bob = user(&relay, "bob").await;

    // ms_id edits: 3 a day per account.
    for name in ["alice1", "alice2", "alice3"] {
        ok_json(set_ms_id(&relay, &alice, name).await, 200).await;
    }
    assert_rate_limited(set_ms_id(&relay, &alice, "alice4").await).await;
    // Other accounts are not affected.
    ok_json(set_ms_id(&relay, &bob, "bob1").await, 200).await;

    // Lookups: 60 a minute per account (answered or not). The relay's clock is frozen, so no
    // token is refilled while the test runs: exactly 60 pass.
    for _ in 0..60 {
        assert_eq!(lookup(&relay, &bob, "nobody").await.status(), 404);
    }
    assert_rate_limited(lookup(&relay, &bob, "nobody").await).await;
    // Blocking tells whether an ms_id exists, so it shares the lookup limit.
    assert_rate_limited(
        call(
            &relay,
            Method::POST,
            "/api/v1/blocks",
            &bob,
            Some(json!({"ms_id": "nobody"})),
        )
        .await,
    )
    .await;
    // A second later one token is back (60 a minute).
    relay.clock().advance(1);
    assert_eq!(lookup(&relay, &bob, "nobody").await.status(), 404);
    assert_rate_limited(lookup(&relay, &bob, "nobody").await).await;

    // Friend requests: 30 an hour per account.
    for i in 0..30 {
        let resp = send(&relay, &alice, &format!("nobody{i}"), None).await;
        assert_eq!(resp.status(), 404);
    }
    assert_rate_limited(send(&relay, &alice, "bob1", None).await).await;
    // Bob can still send one.
    ok_json(send(&relay, &bob, "alice3", None).await, 201).await;
    relay.stop().await;
}

/// Only ms_id edits that were made count against the 3 a day (issue #12 item 19): edits
/// refused as malformed or taken, and setting the current ms_id again, leave the budget alone.
async fn refused_ms_id_edits_are_free(backend: Backend) {
    let Some(relay) = TestRelay::start_with(backend, true).await else {
        return;
    };
    let alice = user(&relay, "alice").await;
    user(&relay, "bob").await;
    for bad in ["a", "Bad!", "-alice", "al..ice"] {
        assert_error(set_ms_id(&relay, &alice, bad).await, 400, "invalid_ms_id").await;
    }
    for taken in ["bob", "BOB"] {
        assert_error(
            set_ms_id(&relay, &alice, taken).await,
            409,
            "ms_id_unavailable",
        )
        .await;
    }
    ok_json(set_ms_id(&relay, &alice, "alice").await, 200).await;
    for name in ["alice1", "alice2", "alice3"] {
        ok_json(set_ms_id(&relay, &alice, name).await, 200).await;
    }
    assert_rate_limited(set_ms_id(&relay, &alice, "alice4").await).await;
    relay.stop().await;
}

#[actix_web::test]
async fn refused_ms_id_edits_are_free_sqlite() {
    refused_ms_id_edits_are_free(Backend::Sqlite).await;
}

#[actix_web::test]
async fn refused_ms_id_edits_are_free_postgres() {
    refused_ms_id_edits_are_free(Backend::Postgres).await;
}

#[actix_web::test]
async fn rate_limits_sqlite() {
    rate_limits(Backend::Sqlite).await;
}

#[actix_web::test]
async fn rate_limits_postgres() {
    rate_limits(Backend::Postgres).await;
}

/// The availability check is an anonymous ms_id oracle: 60 a minute per IP (a burst of 60,
/// then one a second), malformed questions included; `429 rate_limited` with `Retry-After`.
async fn ms_id_availability_rate_limited(backend: Backend) {
    let Some(relay) = TestRelay::start_with(backend, true).await else {
        return;
    };
    for i in 0..59 {
        let resp = availability(&relay, &format!("free{i}")).await;
        assert_eq!(resp.status(), 200, "question {i}");
    }
    assert_eq!(availability(&relay, "x").await.status(), 400);
    // The relay's clock is frozen: no token comes back while the test runs.
    assert_rate_limited(availability(&relay, "free60").await).await;
    relay.clock().advance(1);
    assert_eq!(availability(&relay, "free61").await.status(), 200);
    assert_rate_limited(availability(&relay, "free62").await).await;
    relay.stop().await;
}

#[actix_web::test]
async fn ms_id_availability_rate_limited_sqlite() {
    ms_id_availability_rate_limited(Backend::Sqlite).await;
}

#[actix_web::test]
async fn ms_id_availability_rate_limited_postgres() {
    ms_id_availability_rate_limited(Backend::Postgres).await;
}

/// Many users ask one user at the same moment: every request lands (no `database is locked`
/// or stale-snapshot failures on SQLite), and she can accept them all.
async fn concurrent_requests(relay: &TestRelay) {
    let star = user(relay, "star").await;
    let mut fans = Vec::new();
    for i in 0..8 {
        fans.push(user(relay, &format!("fan{i}")).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for fan in &fans {
        let client = relay.client();
        let url = relay.url("/api/v1/friends/requests");
        let token = fan.token.clone();
        tasks.spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"ms_id": "star", "note": "hi"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 201);
    }
    let incoming = requests(relay, &star).await["incoming"].clone();
    let ids: Vec<i64> = incoming
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), fans.len());
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids {
        let client = relay.client();
        let url = relay.url(&format!("/api/v1/friends/requests/{id}/accept"));
        let token = star.token.clone();
        tasks.spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(friend_ms_ids(relay, &star).await.len(), fans.len());
}

/// ms_ids that differ only in their separators are one handle (issue #12 item 17):
/// `alice.smith` taken makes `alice_smith` and `alice-smith` unavailable to everyone else —
/// at sign-up, in the availability check and as an edit, held ones too — while the owner may
/// still switch between them.
async fn look_alike_ms_ids(relay: &TestRelay) {
    let alice = user(relay, "alice.smith").await;
    let eve = user(relay, "eve").await;
    for look_alike in ["alice_smith", "ALICE-SMITH", "alice.smith"] {
        assert_eq!(
            available(relay, look_alike).await["available"],
            false,
            "{look_alike}"
        );
        assert_error(
            set_ms_id(relay, &eve, look_alike).await,
            409,
            "ms_id_unavailable",
        )
        .await;
        let resp = relay
            .client()
            .post(relay.url("/api/v1/accounts"))
            .json(
                &json!({"email": "mallory@example.org", "password": PASSWORD,
                          "ms_id": look_alike, "display_name": "Alice Smith"}),
            )
            .send()
            .await
            .unwrap();
        assert_error(resp, 409, "ms_id_unavailable").await;
    }
    // Unrelated handles stay free.
    assert_eq!(available(relay, "alice.smiths").await["available"], true);
    // The owner switches separators; the old form is then held for the owner alone.
    ok_json(set_ms_id(relay, &alice, "alice_smith").await, 200).await;
    assert_error(
        set_ms_id(relay, &eve, "alice-smith").await,
        409,
        "ms_id_unavailable",
    )
    .await;
    ok_json(set_ms_id(relay, &alice, "alice-smith").await, 200).await;
    // Renamed away: the held handle is still out of reach in every form.
    ok_json(set_ms_id(relay, &alice, "alice.two").await, 200).await;
    assert_error(
        set_ms_id(relay, &eve, "alice.smith").await,
        409,
        "ms_id_unavailable",
    )
    .await;
    ok_json(set_ms_id(relay, &alice, "alice_smith").await, 200).await;
}

on_both_backends!(look_alike_ms_ids);

on_both_backends!(concurrent_requests);

/// Two users ask each other at the same moment: one request is created and the other turns
/// it into a friendship — never two crossed pending requests.
async fn concurrent_mutual_requests(relay: &TestRelay) {
    let mut pairs = Vec::new();
    for i in 0..5 {
        let a = user(relay, &format!("left{i}")).await;
        let b = user(relay, &format!("right{i}")).await;
        pairs.push((a, b, i));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (a, b, i) in &pairs {
        for (who, target) in [(a, format!("right{i}")), (b, format!("left{i}"))] {
            let client = relay.client();
            let url = relay.url("/api/v1/friends/requests");
            let token = who.token.clone();
            tasks.spawn(async move {
                let status = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "ms_id": target }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                (target, status)
            });
        }
    }
    let mut statuses = Vec::new();
    while let Some(done) = tasks.join_next().await {
        statuses.push(done.unwrap());
    }
    for (a, b, i) in &pairs {
        let mut mine: Vec<u16> = statuses
            .iter()
            .filter(|(t, _)| *t == format!("right{i}") || *t == format!("left{i}"))
            .map(|(_, s)| *s)
            .collect();
        mine.sort_unstable();
        assert_eq!(mine, [200, 201], "pair {i}");
        assert_eq!(rows_between(relay, a.id, b.id).await, (0, 1), "pair {i}");
    }
}

on_both_backends!(concurrent_mutual_requests);
