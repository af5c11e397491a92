//! The bad-input table: every malformed, oversized, forged, replayed or unauthorized request
//! gets its documented status and error code; afterwards the relay still answers and the
//! database holds exactly what the good requests put there. Runs on SQLite and PostgreSQL.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Backend, PASSWORD, TestRelay, assert_error, totp_at};
use diesel::prelude::*;
use relay_server::db::schema::{blocks, friend_requests, friendships, rooms, sessions, users};
use serde_json::{Value, json};

/// How a case authenticates.
#[derive(Clone)]
enum Auth {
    None,
    Bearer(String),
    /// Raw `Authorization` header value.
    Header(String),
    /// Session cookie, with an optional `X-CSRF-Token`.
    Cookie(String, Option<String>),
}

/// A request body.
#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    auth: Auth,
    body: Body,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: impl Into<String>,
    auth: Auth,
    body: Body,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        auth,
        body,
        status,
        code,
    }
}

fn register_body(email: &str, password: &str, ms_id: &str, display_name: &str) -> Body {
    Body::Json(json!({
        "email": email, "password": password, "ms_id": ms_id, "display_name": display_name
    }))
}

fn raw_json(text: &str) -> Body {
    Body::Raw("application/json", text.as_bytes().to_vec())
}

async fn send(relay: &TestRelay, c: &Case) -> reqwest::Response {
    let client = relay.client();
    let method = reqwest::Method::from_bytes(c.method.as_bytes()).unwrap();
    let mut req = client.request(method, relay.url(&c.path));
    match &c.auth {
        Auth::None => {}
        Auth::Bearer(t) => req = req.bearer_auth(t),
        Auth::Header(h) => req = req.header("authorization", h),
        Auth::Cookie(t, csrf) => {
            req = req.header("cookie", format!("securechat_session={t}"));
            if let Some(csrf) = csrf {
                req = req.header("x-csrf-token", csrf);
            }
        }
    }
    match &c.body {
        Body::None => {}
        Body::Json(v) => req = req.json(v),
        Body::Raw(ct, bytes) => req = req.header("content-type", *ct).body(bytes.clone()),
    }
    req.send().await.unwrap()
}

/// Users and their tokens for the table.
struct World {
    alice: String,
    alice_csrf: String,
    revoked: String,
    bob_session_id: i64,
    /// Alice's pending request to Bob.
    alice_to_bob: i64,
    /// Dave has TOTP on.
    dave: String,
    /// Dave's TOTP secret, and the code that activated it.
    dave_secret: String,
    dave_activation_code: String,
    /// Two of Dave's login challenges.
    dave_challenge: String,
    dave_challenge2: String,
}

async fn post_json(relay: &TestRelay, path: &str, token: Option<&str>, body: Value) -> Value {
    let mut req = relay.client().post(relay.url(path)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().json().await.unwrap()
}

async fn login_challenge(relay: &TestRelay, email: &str) -> String {
    let resp = relay.login(email, PASSWORD).await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "two_factor_required");
    body["challenge"].as_str().unwrap().to_owned()
}

async fn world(relay: &TestRelay) -> World {
    relay.register("alice@example.org", "alice").await;
    relay.register("bob@example.org", "bob").await;
    relay.register("carol@example.org", "carol").await;
    let (alice, alice_csrf) = relay.token("alice@example.org").await;
    let (revoked, _) = relay.token("alice@example.org").await;
    let resp = relay
        .client()
        .delete(relay.url("/api/v1/sessions/current"))
        .bearer_auth(&revoked)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (bob, _) = relay.token("bob@example.org").await;
    let list: Value = relay
        .client()
        .get(relay.url("/api/v1/sessions"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bob_session_id = list[0]["id"].as_i64().unwrap();

    // Alice asks Bob; Carol blocks Alice.
    let sent: Value = relay
        .client()
        .post(relay.url("/api/v1/friends/requests"))
        .bearer_auth(&alice)
        .json(&json!({"ms_id": "bob", "note": "hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice_to_bob = sent["request"]["id"].as_i64().unwrap();
    let (carol, _) = relay.token("carol@example.org").await;
    let resp = relay
        .client()
        .post(relay.url("/api/v1/blocks"))
        .bearer_auth(&carol)
        .json(&json!({"ms_id": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    // Dave turns TOTP on (codes computed by the tests' own RFC 6238).
    relay.register("dave@example.org", "dave").await;
    let (dave, _) = relay.token("dave@example.org").await;
    let setup = post_json(
        relay,
        "/api/v1/me/2fa/totp/setup",
        Some(&dave),
        json!({"password": PASSWORD}),
    )
    .await;
    let dave_secret = setup["secret"].as_str().unwrap().to_owned();
    let now = relay.clock().now();
    relay.clock().advance(30 - now.rem_euclid(30) + 1);
    let dave_activation_code = totp_at(&dave_secret, relay.clock().now());
    let activated = post_json(
        relay,
        "/api/v1/me/2fa/totp/activate",
        Some(&dave),
        json!({"code": dave_activation_code}),
    )
    .await;
    assert_eq!(activated["recovery_codes"].as_array().unwrap().len(), 10);
    let dave_challenge = login_challenge(relay, "dave@example.org").await;
    let dave_challenge2 = login_challenge(relay, "dave@example.org").await;
    World {
        alice,
        alice_csrf,
        revoked,
        bob_session_id,
        alice_to_bob,
        dave,
        dave_secret,
        dave_activation_code,
        dave_challenge,
        dave_challenge2,
    }
}

fn account_cases(w: &World) -> Vec<Case> {
    let alice = || Auth::Bearer(w.alice.clone());
    let reg = "/api/v1/accounts";
    let login = "/api/v1/sessions";
    let forged = "A".repeat(43);
    vec![
        // Malformed and oversized bodies.
        case(
            "truncated JSON",
            "POST",
            reg,
            Auth::None,
            raw_json(r#"{"email":"#),
            400,
            "invalid_json",
        ),
        case(
            "JSON array instead of object",
            "POST",
            reg,
            Auth::None,
            raw_json("[1,2,3]"),
            400,
            "invalid_json",
        ),
        case(
            "wrong field type",
            "POST",
            reg,
            Auth::None,
            Body::Json(
                json!({"email": 5, "password": PASSWORD, "ms_id": "dave", "display_name": "D"}),
            ),
            400,
            "invalid_json",
        ),
        case(
            "missing field",
            "POST",
            reg,
            Auth::None,
            Body::Json(json!({"email": "d@example.org", "password": PASSWORD})),
            400,
            "invalid_json",
        ),
        case(
            "null field",
            "POST",
            reg,
            Auth::None,
            Body::Json(
                json!({"email": null, "password": PASSWORD, "ms_id": "dave", "display_name": "D"}),
            ),
            400,
            "invalid_json",
        ),
        case(
            "body not JSON at all",
            "POST",
            reg,
            Auth::None,
            raw_json("email=d@example.org"),
            400,
            "invalid_json",
        ),
        case(
            "wrong content type",
            "POST",
            reg,
            Auth::None,
            Body::Raw("text/plain", br#"{"email":"d@example.org"}"#.to_vec()),
            400,
            "invalid_json",
        ),
        case(
            "oversized body (32 KiB)",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, "dave", &"D".repeat(32 * 1024)),
            413,
            "payload_too_large",
        ),
        case(
            "deeply nested JSON",
            "POST",
            reg,
            Auth::None,
            raw_json(&format!("{}{}", "[".repeat(5000), "]".repeat(5000))),
            400,
            "invalid_json",
        ),
        case(
            "invalid UTF-8 in body",
            "POST",
            reg,
            Auth::None,
            Body::Raw("application/json", b"{\"email\":\"\xff\xfe\"}".to_vec()),
            400,
            "invalid_json",
        ),
        // ms_id rules, unicode tricks, SQL-looking strings.
        case(
            "ms_id with a space",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, "da ve", "D"),
            400,
            "invalid_ms_id",
        ),
        case(
            "ms_id with Cyrillic a",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, "\u{0430}lice", "D"),
            400,
            "invalid_ms_id",
        ),
        case(
            "ms_id with zero-width space",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, "ali\u{200b}ce", "D"),
            400,
            "invalid_ms_id",
        ),
        case(
            "ms_id in fullwidth letters",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, "\u{ff41}lice", "D"),
            400,
            "invalid_ms_id",
        ),
        case(
            "ms_id too short",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, "ab", "D"),
            400,
            "invalid_ms_id",
        ),
        case(
            "ms_id too long",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, &"a".repeat(33), "D"),
            400,
            "invalid_ms_id",
        ),
        case(
            "ms_id SQL injection",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, "x'; DROP TABLE users;--", "D"),
            400,
            "invalid_ms_id",
        ),
        case(
            "ms_id taken in other case",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, "ALICE", "D"),
            409,
            "ms_id_unavailable",
        ),
        // E-mail, password, display name.
        case(
            "e-mail without @",
            "POST",
            reg,
            Auth::None,
            register_body("dave.example.org", PASSWORD, "dave", "D"),
            400,
            "invalid_email",
        ),
        case(
            "e-mail with NUL byte",
            "POST",
            reg,
            Auth::None,
            register_body("d\u{0}@example.org", PASSWORD, "dave", "D"),
            400,
            "invalid_email",
        ),
        case(
            "e-mail SQL injection",
            "POST",
            reg,
            Auth::None,
            register_body("' OR '1'='1", PASSWORD, "dave", "D"),
            400,
            "invalid_email",
        ),
        case(
            "password too short",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", "Xy7!", "dave", "D"),
            400,
            "password_length",
        ),
        case(
            "password too long",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", &"Xy7!".repeat(33), "dave", "D"),
            400,
            "password_length",
        ),
        case(
            "common password",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", "password123", "dave", "D"),
            400,
            "weak_password",
        ),
        case(
            "password equal to the ms_id",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", "davedavedave", "davedavedave", "D"),
            400,
            "weak_password",
        ),
        case(
            "empty display name",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, "dave", "   "),
            400,
            "invalid_input",
        ),
        case(
            "display name with control character",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, "dave", "Da\u{7}ve"),
            400,
            "invalid_input",
        ),
        case(
            "display name with right-to-left override",
            "POST",
            reg,
            Auth::None,
            register_body("d@example.org", PASSWORD, "dave", "evil\u{202e}gpj.exe"),
            400,
            "invalid_input",
        ),
        // Login.
        case(
            "wrong password",
            "POST",
            login,
            Auth::None,
            Body::Json(json!({"email": "alice@example.org", "password": "not the password"})),
            401,
            "invalid_credentials",
        ),
        case(
            "unknown e-mail",
            "POST",
            login,
            Auth::None,
            Body::Json(json!({"email": "nobody@example.org", "password": PASSWORD})),
            401,
            "invalid_credentials",
        ),
        case(
            "login SQL injection",
            "POST",
            login,
            Auth::None,
            Body::Json(json!({"email": "' OR 1=1 --", "password": "' OR 1=1 --"})),
            401,
            "invalid_credentials",
        ),
        // Tokens.
        case(
            "no token",
            "GET",
            "/api/v1/me",
            Auth::None,
            Body::None,
            401,
            "unauthorized",
        ),
        case(
            "forged token",
            "GET",
            "/api/v1/me",
            Auth::Bearer(forged.clone()),
            Body::None,
            401,
            "unauthorized",
        ),
        case(
            "revoked token",
            "GET",
            "/api/v1/me",
            Auth::Bearer(w.revoked.clone()),
            Body::None,
            401,
            "unauthorized",
        ),
        case(
            "Basic instead of Bearer",
            "GET",
            "/api/v1/me",
            Auth::Header("Basic YWxpY2U6cGFzcw==".into()),
            Body::None,
            401,
            "unauthorized",
        ),
        case(
            "empty Bearer token",
            "GET",
            "/api/v1/me",
            Auth::Header("Bearer ".into()),
            Body::None,
            401,
            "unauthorized",
        ),
        case(
            "forged cookie",
            "GET",
            "/api/v1/me",
            Auth::Cookie(forged, None),
            Body::None,
            401,
            "unauthorized",
        ),
        case(
            "cookie write without CSRF token",
            "DELETE",
            "/api/v1/sessions/current",
            Auth::Cookie(w.alice.clone(), None),
            Body::None,
            403,
            "csrf_failed",
        ),
        case(
            "cookie write with a wrong CSRF token",
            "DELETE",
            "/api/v1/sessions/current",
            Auth::Cookie(w.alice.clone(), Some(format!("{}x", w.alice_csrf))),
            Body::None,
            403,
            "csrf_failed",
        ),
        // Other people's things, bad paths.
        case(
            "revoke another user's session",
            "DELETE",
            format!("/api/v1/sessions/{}", w.bob_session_id),
            alice(),
            Body::None,
            404,
            "not_found",
        ),
        case(
            "session id not a number",
            "DELETE",
            "/api/v1/sessions/abc",
            alice(),
            Body::None,
            400,
            "invalid_input",
        ),
        case(
            "session id overflows i64",
            "DELETE",
            "/api/v1/sessions/99999999999999999999",
            alice(),
            Body::None,
            400,
            "invalid_input",
        ),
        case(
            "password change with the wrong password",
            "PUT",
            "/api/v1/me/password",
            alice(),
            Body::Json(
                json!({"password": "wrong password", "new_password": "another fine passphrase 7"}),
            ),
            401,
            "invalid_credentials",
        ),
        case(
            "e-mail change confirmation with nothing pending",
            "POST",
            "/api/v1/me/email/change/confirm",
            alice(),
            Body::Json(json!({"code": "123456"})),
            401,
            "invalid_code",
        ),
        case(
            "e-mail change confirmation without a code",
            "POST",
            "/api/v1/me/email/change/confirm",
            alice(),
            Body::Json(json!({})),
            400,
            "invalid_json",
        ),
        case(
            "delete account with the wrong password",
            "DELETE",
            "/api/v1/me",
            alice(),
            Body::Json(json!({"password": "wrong password"})),
            401,
            "invalid_credentials",
        ),
        case(
            "unknown endpoint",
            "GET",
            "/api/v1/nothing-here",
            alice(),
            Body::None,
            404,
            "not_found",
        ),
    ]
}

fn friend_cases(w: &World) -> Vec<Case> {
    let alice = || Auth::Bearer(w.alice.clone());
    let req = "/api/v1/friends/requests";
    let ask = |ms_id: &str| Body::Json(json!({"ms_id": ms_id}));
    vec![
        case(
            "friend request to yourself",
            "POST",
            req,
            alice(),
            ask("alice"),
            400,
            "self_request",
        ),
        case(
            "friend request to yourself, other case",
            "POST",
            req,
            alice(),
            ask("ALICE"),
            400,
            "self_request",
        ),
        case(
            "friend request to nobody",
            "POST",
            req,
            alice(),
            ask("nobody-here"),
            404,
            "not_found",
        ),
        case(
            "friend request with a bad ms_id",
            "POST",
            req,
            alice(),
            ask("bob; --"),
            400,
            "invalid_ms_id",
        ),
        case(
            "friend request, ms_id of wrong type",
            "POST",
            req,
            alice(),
            Body::Json(json!({"ms_id": ["bob"]})),
            400,
            "invalid_json",
        ),
        case(
            "duplicate friend request",
            "POST",
            req,
            alice(),
            ask("bob"),
            409,
            "duplicate_request",
        ),
        case(
            "friend request to a user who blocked you",
            "POST",
            req,
            alice(),
            ask("carol"),
            404,
            "not_found",
        ),
        case(
            "friend request note too long",
            "POST",
            req,
            alice(),
            Body::Json(json!({"ms_id": "carol", "note": "x".repeat(281)})),
            400,
            "invalid_input",
        ),
        case(
            "friend request note with bidi override",
            "POST",
            req,
            alice(),
            Body::Json(json!({"ms_id": "bob", "note": "hi \u{202e}olleh"})),
            400,
            "invalid_input",
        ),
        case(
            "friend request without a session",
            "POST",
            req,
            Auth::None,
            ask("bob"),
            401,
            "unauthorized",
        ),
        case(
            "accept your own outgoing request",
            "POST",
            format!("{req}/{}/accept", w.alice_to_bob),
            alice(),
            Body::None,
            404,
            "not_found",
        ),
        case(
            "decline a request that does not exist",
            "POST",
            format!("{req}/987654/decline"),
            alice(),
            Body::None,
            404,
            "not_found",
        ),
        case(
            "accept a non-numeric request id",
            "POST",
            format!("{req}/xyz/accept"),
            alice(),
            Body::None,
            400,
            "invalid_input",
        ),
        case(
            "remove a stranger from friends",
            "DELETE",
            "/api/v1/friends/bob",
            alice(),
            Body::None,
            404,
            "not_found",
        ),
        case(
            "look up a user who blocked you",
            "GET",
            "/api/v1/users/carol",
            alice(),
            Body::None,
            404,
            "not_found",
        ),
        case(
            "look up a malformed ms_id",
            "GET",
            "/api/v1/users/%E2%80%AEbob",
            alice(),
            Body::None,
            400,
            "invalid_ms_id",
        ),
        case(
            "block a user who blocked you",
            "POST",
            "/api/v1/blocks",
            alice(),
            ask("carol"),
            404,
            "not_found",
        ),
        case(
            "unblock someone not blocked",
            "DELETE",
            "/api/v1/blocks/bob",
            alice(),
            Body::None,
            404,
            "not_found",
        ),
        case(
            "ms_id edit to a taken one",
            "PUT",
            "/api/v1/me/ms_id",
            alice(),
            ask("Bob"),
            409,
            "ms_id_unavailable",
        ),
        case(
            "ms_id availability: too short",
            "GET",
            "/api/v1/ms_ids/ab",
            Auth::None,
            Body::None,
            400,
            "invalid_ms_id",
        ),
        case(
            "ms_id availability: separator at the start",
            "GET",
            "/api/v1/ms_ids/.alice",
            Auth::None,
            Body::None,
            400,
            "invalid_ms_id",
        ),
        case(
            "ms_id availability: a homoglyph",
            "GET",
            "/api/v1/ms_ids/\u{0430}lice",
            Auth::None,
            Body::None,
            400,
            "invalid_ms_id",
        ),
        case(
            "ms_id availability: SQL injection",
            "GET",
            "/api/v1/ms_ids/x'%20OR%20'1'='1",
            Auth::None,
            Body::None,
            400,
            "invalid_ms_id",
        ),
        case(
            "ms_id edit with a homoglyph",
            "PUT",
            "/api/v1/me/ms_id",
            alice(),
            ask("\u{0430}lice2"),
            400,
            "invalid_ms_id",
        ),
    ]
}

fn two_factor_cases(w: &World) -> Vec<Case> {
    let dave = || Auth::Bearer(w.dave.clone());
    let submit = "/api/v1/sessions/2fa";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A code of a step far outside the ±1 window: well-formed but wrong.
    let wrong = totp_at(&w.dave_secret, i64::try_from(now).unwrap() + 100_000);
    let code = |challenge: &str, code: &str| {
        Body::Json(json!({"challenge": challenge, "method": "totp", "code": code}))
    };
    let c2 = &w.dave_challenge2;
    vec![
        case(
            "2FA with a forged challenge",
            "POST",
            submit,
            Auth::None,
            code(&"x".repeat(43), &wrong),
            401,
            "invalid_challenge",
        ),
        case(
            "2FA with an unknown method",
            "POST",
            submit,
            Auth::None,
            Body::Json(json!({"challenge": w.dave_challenge, "method": "sms", "code": "123456"})),
            400,
            "invalid_json",
        ),
        case(
            "2FA with a wrong TOTP code",
            "POST",
            submit,
            Auth::None,
            code(&w.dave_challenge, &wrong),
            401,
            "invalid_code",
        ),
        case(
            "2FA replaying the activation code",
            "POST",
            submit,
            Auth::None,
            code(&w.dave_challenge, &w.dave_activation_code),
            401,
            "code_replayed",
        ),
        case(
            "2FA wrong code 1/5",
            "POST",
            submit,
            Auth::None,
            code(c2, &wrong),
            401,
            "invalid_code",
        ),
        case(
            "2FA wrong code 2/5",
            "POST",
            submit,
            Auth::None,
            code(c2, "000000x"),
            401,
            "invalid_code",
        ),
        case(
            "2FA wrong code 3/5",
            "POST",
            submit,
            Auth::None,
            code(c2, &wrong),
            401,
            "invalid_code",
        ),
        case(
            "2FA wrong code 4/5",
            "POST",
            submit,
            Auth::None,
            code(c2, &wrong),
            401,
            "invalid_code",
        ),
        case(
            "2FA wrong code 5/5: too many attempts",
            "POST",
            submit,
            Auth::None,
            code(c2, &wrong),
            429,
            "too_many_attempts",
        ),
        case(
            "2FA on a challenge killed by wrong codes",
            "POST",
            submit,
            Auth::None,
            code(c2, &totp_at(&w.dave_secret, i64::try_from(now).unwrap())),
            429,
            "too_many_attempts",
        ),
        case(
            "TOTP setup while TOTP is on",
            "POST",
            "/api/v1/me/2fa/totp/setup",
            dave(),
            Body::Json(json!({"password": PASSWORD, "method": "totp", "code": wrong})),
            409,
            "two_factor_state",
        ),
        case(
            "TOTP disable with the wrong password",
            "POST",
            "/api/v1/me/2fa/totp/disable",
            dave(),
            Body::Json(json!({"password": "wrong password", "method": "totp", "code": wrong})),
            401,
            "invalid_credentials",
        ),
        case(
            "password change without the second factor",
            "PUT",
            "/api/v1/me/password",
            dave(),
            Body::Json(json!({"password": PASSWORD, "new_password": "another fine passphrase 7"})),
            401,
            "two_factor_required",
        ),
        case(
            "password change with a wrong code",
            "PUT",
            "/api/v1/me/password",
            dave(),
            Body::Json(
                json!({"password": PASSWORD, "new_password": "another fine passphrase 7", "method": "totp", "code": wrong}),
            ),
            401,
            "invalid_code",
        ),
        case(
            "recovery code that was never issued",
            "POST",
            submit,
            Auth::None,
            Body::Json(
                json!({"challenge": w.dave_challenge, "method": "recovery", "code": "aaaaa-bbbbb"}),
            ),
            401,
            "invalid_code",
        ),
    ]
}

/// A device registration body from a real crypto-core account; `tweak` may corrupt it.
fn device_body(tweak: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>)) -> Body {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    let mut acc = crypto_core::Account::new().unwrap();
    acc.generate_signed_prekey(1_800_000_000).unwrap();
    let mut identity = acc.identity().encode();
    let mut prekey = acc.signed_prekey().unwrap().encode();
    tweak(&mut identity, &mut prekey);
    Body::Json(json!({
        "identity_key": B64.encode(identity),
        "name": "laptop",
        "signed_prekey": B64.encode(prekey),
    }))
}

fn device_cases(w: &World) -> Vec<Case> {
    let alice = || Auth::Bearer(w.alice.clone());
    let dev = "/api/v1/devices";
    let last = |v: &mut Vec<u8>| {
        let n = v.len() - 1;
        v[n] ^= 1;
    };
    vec![
        case(
            "device identity not base64",
            "POST",
            dev,
            alice(),
            Body::Json(json!({"identity_key": "%%%", "name": "x", "signed_prekey": "AA=="})),
            400,
            "invalid_key",
        ),
        case(
            "device identity truncated",
            "POST",
            dev,
            alice(),
            device_body(|i, _| i.truncate(40)),
            400,
            "invalid_key",
        ),
        case(
            "device identity with a forged signature",
            "POST",
            dev,
            alice(),
            device_body(|i, _| last(i)),
            400,
            "bad_signature",
        ),
        case(
            "signed prekey with a forged signature",
            "POST",
            dev,
            alice(),
            device_body(|_, p| last(p)),
            400,
            "bad_signature",
        ),
        case(
            "device name with a bidi override",
            "POST",
            dev,
            alice(),
            device_body(|_, _| {}).renamed("lap\u{202e}pot"),
            400,
            "invalid_input",
        ),
        case(
            "devices of a stranger",
            "GET",
            "/api/v1/users/bob/devices",
            alice(),
            Body::None,
            404,
            "not_found",
        ),
        case(
            "bundle of a stranger's device",
            "POST",
            "/api/v1/users/bob/devices/1/bundle",
            alice(),
            Body::None,
            404,
            "not_found",
        ),
        case(
            "delete a device that is not yours",
            "DELETE",
            "/api/v1/devices/424242",
            alice(),
            Body::None,
            404,
            "not_found",
        ),
        case(
            "prekey count of an unknown device",
            "GET",
            "/api/v1/devices/424242/one-time-prekeys/count",
            alice(),
            Body::None,
            404,
            "not_found",
        ),
    ]
}

impl Body {
    /// The same JSON body with another `name`.
    fn renamed(self, name: &str) -> Body {
        match self {
            Body::Json(mut v) => {
                v["name"] = json!(name);
                Body::Json(v)
            }
            other => other,
        }
    }
}

async fn count_users(relay: &TestRelay) -> i64 {
    relay
        .state
        .db
        .run(|conn| {
            users::table
                .count()
                .get_result::<i64>(conn)
                .map_err(|e| panic!("{e}"))
        })
        .await
        .map_err(|e: relay_server::api::error::ApiError| e)
        .unwrap()
}

fn room_cases(w: &World) -> Vec<Case> {
    let alice = || Auth::Bearer(w.alice.clone());
    let named = |name: Value| Body::Json(json!({ "name": name }));
    vec![
        case(
            "room name empty",
            "POST",
            "/api/v1/rooms",
            alice(),
            named(json!("")),
            400,
            "invalid_input",
        ),
        case(
            "room name blank",
            "POST",
            "/api/v1/rooms",
            alice(),
            named(json!("   ")),
            400,
            "invalid_input",
        ),
        case(
            "room name of 65 characters",
            "POST",
            "/api/v1/rooms",
            alice(),
            named(json!("é".repeat(65))),
            400,
            "invalid_input",
        ),
        case(
            "room name with a control character",
            "POST",
            "/api/v1/rooms",
            alice(),
            named(json!("a\u{7}b")),
            400,
            "invalid_input",
        ),
        case(
            "room name not a string",
            "POST",
            "/api/v1/rooms",
            alice(),
            named(json!(5)),
            400,
            "invalid_json",
        ),
        case(
            "room rename of 65 characters",
            "PATCH",
            "/api/v1/rooms/1",
            alice(),
            named(json!("é".repeat(65))),
            400,
            "invalid_input",
        ),
        case(
            "rename a room one is not in",
            "PATCH",
            "/api/v1/rooms/999999",
            alice(),
            named(json!("Mine")),
            404,
            "not_found",
        ),
        case(
            "delete a room one is not in",
            "DELETE",
            "/api/v1/rooms/999999",
            alice(),
            Body::None,
            404,
            "not_found",
        ),
        case(
            "room id not a number",
            "DELETE",
            "/api/v1/rooms/abc",
            alice(),
            Body::None,
            400,
            "invalid_input",
        ),
        case(
            "remove a member of a room one is not in",
            "DELETE",
            "/api/v1/rooms/999999/members/1",
            alice(),
            Body::None,
            404,
            "not_found",
        ),
        case(
            "room role neither admin nor member",
            "PUT",
            "/api/v1/rooms/999999/members/1/role",
            alice(),
            Body::Json(json!({"role": "owner"})),
            400,
            "invalid_json",
        ),
    ]
}

async fn bad_input_table(relay: &TestRelay) {
    let w = world(relay).await;
    let users_before = count_users(relay).await;
    let mut cases = account_cases(&w);
    cases.extend(friend_cases(&w));
    cases.extend(two_factor_cases(&w));
    cases.extend(device_cases(&w));
    cases.extend(room_cases(&w));
    assert!(cases.len() >= 40, "the table has {} cases", cases.len());
    for c in &cases {
        let resp = send(relay, c).await;
        let status = resp.status().as_u16();
        if status != c.status {
            let body = resp.text().await.unwrap_or_default();
            panic!(
                "case `{}`: expected {} {}, got {status}: {body}",
                c.name, c.status, c.code
            );
        }
        let body = assert_error(resp, c.status, c.code).await;
        let message = body["message"].as_str().unwrap();
        for leak in [
            "diesel", "sqlite", "postgres", "panicked", "SELECT", "thread",
        ] {
            assert!(
                !message.contains(leak),
                "case `{}` leaks `{leak}`: {message}",
                c.name
            );
        }
    }

    // The relay still answers, nothing was created or lost, and the good tokens still work.
    let health = relay
        .client()
        .get(relay.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        count_users(relay).await,
        users_before,
        "no account created or lost"
    );
    let me: Value = relay
        .client()
        .get(relay.url("/api/v1/me"))
        .bearer_auth(&w.alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["ms_id"], "alice");
    assert_eq!(me["email"], "alice@example.org");
    let alice_sessions: i64 = relay
        .state
        .db
        .run(|conn| {
            sessions::table
                .inner_join(users::table)
                .filter(users::ms_id.eq("alice"))
                .count()
                .get_result::<i64>(conn)
                .map_err(|e| panic!("{e}"))
        })
        .await
        .map_err(|e: relay_server::api::error::ApiError| e)
        .unwrap();
    assert_eq!(
        alice_sessions, 1,
        "only the live session is left (the revoked one is gone)"
    );
    let room_count: i64 = relay
        .state
        .db
        .run(|conn| {
            rooms::table
                .count()
                .get_result::<i64>(conn)
                .map_err(relay_server::api::error::ApiError::from)
        })
        .await
        .unwrap();
    assert_eq!(room_count, 0, "no refused room was created");
    let (again, _) = relay.token("alice@example.org").await;
    assert!(!again.is_empty());

    // The social graph is exactly what the setup made: one request, no friendship, one block.
    let (requests, friends, blocked) = relay
        .state
        .db
        .run(|conn| {
            let r = friend_requests::table.count().get_result::<i64>(conn);
            let f = friendships::table.count().get_result::<i64>(conn);
            let b = blocks::table.count().get_result::<i64>(conn);
            match (r, f, b) {
                (Ok(r), Ok(f), Ok(b)) => Ok((r, f, b)),
                _ => panic!("count failed"),
            }
        })
        .await
        .map_err(|e: relay_server::api::error::ApiError| e)
        .unwrap();
    assert_eq!((requests, friends, blocked), (1, 0, 1));
    let device_rows = relay
        .state
        .db
        .run(|conn| {
            relay_server::db::schema::devices::table
                .count()
                .get_result::<i64>(conn)
                .map_err(|e| panic!("{e}"))
        })
        .await
        .map_err(|e: relay_server::api::error::ApiError| e)
        .unwrap();
    assert_eq!(device_rows, 0, "no refused device was stored");

    // Dave's second factor is still on, and his password did not change.
    let me: Value = relay
        .client()
        .get(relay.url("/api/v1/me"))
        .bearer_auth(&w.dave)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["totp_enabled"], true);
    assert_eq!(login_challenge(relay, "dave@example.org").await.len(), 43);
}

on_both_backends!(bad_input_table);

/// An expired session token is refused like a forged one.
async fn expired_token(relay: &TestRelay) {
    relay.register("erin@example.org", "erin").await;
    let (token, _) = relay.token("erin@example.org").await;
    let ttl = i64::try_from(relay.state.config.session_ttl_hours * 3600).unwrap();
    relay.clock().advance(ttl + 1);
    let resp = relay
        .client()
        .get(relay.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "unauthorized").await;
    let _ = PASSWORD;
}

on_both_backends!(expired_token);

/// Refusals that need the production rate limits or a busy relay (issue #12, items 1 and 3):
/// password checks and uploads beyond the account's budget, and password hashing while every
/// slot is taken.
async fn rate_limited_and_busy_refusals(backend: Backend) {
    let Some(relay) = TestRelay::start_configured(backend, true, |c| {
        c.password_hash_concurrency = 1;
        c.password_hash_wait_ms = 50;
    })
    .await
    else {
        return;
    };
    relay.register("gus@example.org", "gus").await;
    let (gus_token, _) = relay.token("gus@example.org").await;
    let gus = || Auth::Bearer(gus_token.clone());
    let wrong = Body::Json(json!({"password": "not the password", "new_password": PASSWORD}));
    let mut cases: Vec<Case> = (0..10)
        .map(|_| {
            case(
                "wrong password within the budget",
                "PUT",
                "/api/v1/me/password",
                gus(),
                wrong.clone(),
                401,
                "invalid_credentials",
            )
        })
        .collect();
    cases.extend([
        case(
            "11th password check in 15 minutes",
            "PUT",
            "/api/v1/me/password",
            gus(),
            wrong.clone(),
            429,
            "rate_limited",
        ),
        case(
            "account deletion with the right password, budget spent",
            "DELETE",
            "/api/v1/me",
            gus(),
            Body::Json(json!({"password": PASSWORD})),
            429,
            "rate_limited",
        ),
    ]);
    // Uploads: 60 an hour per account (issue #12, item 3).
    for i in 0..60 {
        let ok = send(
            &relay,
            &case(
                "upload within the budget",
                "POST",
                "/api/v1/attachments",
                gus(),
                Body::Raw("application/octet-stream", vec![1; 8]),
                201,
                "",
            ),
        )
        .await;
        assert_eq!(ok.status(), 201, "upload {i}");
    }
    cases.push(case(
        "61st upload in an hour",
        "POST",
        "/api/v1/attachments",
        gus(),
        Body::Raw("application/octet-stream", vec![1; 8]),
        429,
        "rate_limited",
    ));
    for c in &cases {
        let resp = send(&relay, c).await;
        assert!(
            c.status != 429 || resp.headers().contains_key("retry-after"),
            "case `{}`: no Retry-After",
            c.name
        );
        assert_error(resp, c.status, c.code).await;
    }

    // Every hashing slot busy: refused with 503 and Retry-After, nothing created.
    let held = relay.state.passwords.permit().await.unwrap();
    let busy = [
        case(
            "login while every hashing slot is busy",
            "POST",
            "/api/v1/sessions",
            Auth::None,
            Body::Json(json!({"email": "gus@example.org", "password": PASSWORD})),
            503,
            "unavailable",
        ),
        case(
            "registration while every hashing slot is busy",
            "POST",
            "/api/v1/accounts",
            Auth::None,
            register_body("hal@example.org", PASSWORD, "hal", "Hal"),
            503,
            "unavailable",
        ),
    ];
    let users_before = count_users(&relay).await;
    for c in &busy {
        let resp = send(&relay, c).await;
        assert!(
            resp.headers().contains_key("retry-after"),
            "case `{}`: no Retry-After",
            c.name
        );
        assert_error(resp, c.status, c.code).await;
    }
    drop(held);
    assert_eq!(
        count_users(&relay).await,
        users_before,
        "no account created"
    );
    let me = relay
        .client()
        .get(relay.url("/api/v1/me"))
        .bearer_auth(&gus_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the account is still there");
    relay.stop().await;
}

#[actix_web::test]
async fn rate_limited_and_busy_refusals_sqlite() {
    rate_limited_and_busy_refusals(Backend::Sqlite).await;
}

#[actix_web::test]
async fn rate_limited_and_busy_refusals_postgres() {
    rate_limited_and_busy_refusals(Backend::Postgres).await;
}
