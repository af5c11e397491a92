//! Accounts and sessions over real HTTP, on SQLite and PostgreSQL.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Backend, PASSWORD, TestRelay, assert_error};
use serde_json::{Value, json};

async fn get_me(relay: &TestRelay, token: &str) -> reqwest::Response {
    relay
        .client()
        .get(relay.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn register_raw(relay: &TestRelay, body: Value) -> reqwest::Response {
    relay
        .client()
        .post(relay.url("/api/v1/accounts"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn account(email: &str, password: &str, ms_id: &str) -> Value {
    json!({"email": email, "password": password, "ms_id": ms_id, "display_name": "Someone"})
}

async fn healthy(relay: &TestRelay) {
    let resp = relay
        .client()
        .get(relay.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn register_login_me_logout(relay: &TestRelay) {
    let created = relay.register("  Alice@Example.org ", "Alice").await;
    assert_eq!(created["email"], "alice@example.org");
    assert_eq!(created["ms_id"], "alice");
    assert_eq!(created["display_name"], "Test User");
    let user_id = created["user_id"].as_i64().unwrap();

    let resp = relay.login("ALICE@example.org", PASSWORD).await;
    assert_eq!(resp.status(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("securechat_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user_id"], user_id);
    assert!(body["expires_at"].as_i64().unwrap() > relay.clock().now());
    let token = body["token"].as_str().unwrap();

    let me: Value = get_me(relay, token).await.json().await.unwrap();
    assert_eq!(
        me,
        json!({"user_id": user_id, "email": "alice@example.org", "email_verified": false,
               "ms_id": "alice", "display_name": "Test User", "totp_enabled": false,
               "email_2fa_enabled": false, "recovery_codes_remaining": 0})
    );

    let resp = relay
        .client()
        .delete(relay.url("/api/v1/sessions/current"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let cleared = resp.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cleared.starts_with("securechat_session=;"), "{cleared}");
    assert_error(get_me(relay, token).await, 401, "unauthorized").await;
    healthy(relay).await;
}

async fn cookie_auth_and_csrf(relay: &TestRelay) {
    relay.register("bob@example.org", "bob").await;
    let (token, csrf) = relay.token("bob@example.org").await;
    let cookie = format!("securechat_session={token}");
    let me = relay
        .client()
        .get(relay.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let body = json!({"password": PASSWORD, "new_email": "bob2@example.org"});
    let resp = relay
        .client()
        .put(relay.url("/api/v1/me/email"))
        .header("cookie", &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "csrf_failed").await;
    let resp = relay
        .client()
        .put(relay.url("/api/v1/me/email"))
        .header("cookie", &cookie)
        .header("x-csrf-token", "wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "csrf_failed").await;
    let resp = relay
        .client()
        .put(relay.url("/api/v1/me/email"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    // The change happens with the code mailed to the new address, a cookie write too.
    let code = code_in(&mails_to(relay, "bob2@example.org")[0]).unwrap();
    let confirm = |csrf: Option<String>| {
        let mut req = relay
            .client()
            .post(relay.url("/api/v1/me/email/change/confirm"))
            .header("cookie", &cookie)
            .json(&json!({"code": code}));
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        req.send()
    };
    assert_error(confirm(None).await.unwrap(), 403, "csrf_failed").await;
    let resp = confirm(Some(csrf.clone())).await.unwrap();
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["email"], "bob2@example.org");
    assert_eq!(me["email_verified"], true);
    // The new address signs in; the old one no longer does.
    relay.token("bob2@example.org").await;
    assert_error(
        relay.login("bob@example.org", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    // A cookie-authenticated client with a reqwest cookie store works end to end.
    let jar_client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let resp = jar_client
        .post(relay.url("/api/v1/sessions"))
        .json(&json!({"email": "bob2@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let me = jar_client
        .get(relay.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

async fn sessions_list_and_revoke(relay: &TestRelay) {
    relay.register("carol@example.org", "carol").await;
    relay.register("dave@example.org", "dave").await;
    let (first, _) = relay.token("carol@example.org").await;
    let (second, _) = relay.token("carol@example.org").await;
    assert_ne!(first, second, "a new token at each login");
    let (dave, _) = relay.token("dave@example.org").await;

    let list: Vec<Value> = relay
        .client()
        .get(relay.url("/api/v1/sessions"))
        .bearer_auth(&second)
        .header("user-agent", "test-agent/1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    for s in &list {
        let mut keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "created_at",
                "current",
                "expires_at",
                "id",
                "last_used_at",
                "user_agent"
            ]
        );
    }
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    let other_id = list.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_i64()
        .unwrap();

    // Dave cannot revoke Carol's session.
    let resp = relay
        .client()
        .delete(relay.url(&format!("/api/v1/sessions/{other_id}")))
        .bearer_auth(&dave)
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "not_found").await;
    assert_eq!(get_me(relay, &first).await.status(), 200);

    let resp = relay
        .client()
        .delete(relay.url(&format!("/api/v1/sessions/{other_id}")))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_error(get_me(relay, &first).await, 401, "unauthorized").await;
    assert_eq!(get_me(relay, &second).await.status(), 200);
    let resp = relay
        .client()
        .delete(relay.url("/api/v1/sessions/not-a-number"))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "invalid_input").await;
}

async fn expired_and_forged_tokens(relay: &TestRelay) {
    relay.register("erin@example.org", "erin").await;
    let (token, _) = relay.token("erin@example.org").await;
    assert_eq!(get_me(relay, &token).await.status(), 200);
    // Forged: well-formed but unknown; malformed; wrong scheme.
    let forged = "A".repeat(43);
    assert_error(get_me(relay, &forged).await, 401, "unauthorized").await;
    assert_error(get_me(relay, "garbage").await, 401, "unauthorized").await;
    let resp = relay
        .client()
        .get(relay.url("/api/v1/me"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "unauthorized").await;
    let resp = relay
        .client()
        .get(relay.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "unauthorized").await;

    let ttl = i64::try_from(relay.state.config.session_ttl_hours).unwrap() * 3600;
    relay.clock().advance(ttl + 1);
    assert_error(get_me(relay, &token).await, 401, "unauthorized").await;
    healthy(relay).await;
}

async fn registration_validation(relay: &TestRelay) {
    relay.register("frank@example.org", "frank").await;
    // A taken address is not revealed (see registration_does_not_reveal_accounts); a taken
    // ms_id is public anyway, and is refused before the address is looked at.
    let resp = register_raw(relay, account("frank3@example.org", PASSWORD, "FRANK")).await;
    assert_error(resp, 409, "ms_id_unavailable").await;
    let resp = register_raw(relay, account("FRANK@example.org", PASSWORD, "FRANK")).await;
    assert_error(resp, 409, "ms_id_unavailable").await;

    let resp = register_raw(relay, account("g@example.org", "password123", "gina")).await;
    assert_error(resp, 400, "weak_password").await;
    for password in ["Xk9#pQ2".to_owned(), "Xk9#pQ2z".repeat(16) + "a"] {
        let resp = register_raw(relay, account("g@example.org", &password, "gina")).await;
        assert_error(resp, 400, "password_length").await;
    }
    for ms_id in ["ab", &"a".repeat(33), "Bad Id", "ali\u{0441}e", "a/b", ""] {
        let resp = register_raw(relay, account("g@example.org", PASSWORD, ms_id)).await;
        assert_error(resp, 400, "invalid_ms_id").await;
    }
    for email in ["nobody", "a@b", "a@@b.org", "a b@c.org", "é@b.org", ""] {
        let resp = register_raw(relay, account(email, PASSWORD, "gina")).await;
        assert_error(resp, 400, "invalid_email").await;
    }
    for name in ["", "   ", "bell\u{7}", &"n".repeat(65)] {
        let mut body = account("g@example.org", PASSWORD, "gina");
        body["display_name"] = json!(name);
        assert_error(register_raw(relay, body).await, 400, "invalid_input").await;
    }
    // SQL-looking input is data.
    let sneaky = "Robert'); DROP TABLE users;--";
    let mut body = account("g@example.org", PASSWORD, "gina");
    body["display_name"] = json!(sneaky);
    let resp = register_raw(relay, body).await;
    assert_eq!(resp.status(), 201);
    let resp = relay.login("g@example.org", PASSWORD).await;
    let token = resp.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me: Value = get_me(relay, &token).await.json().await.unwrap();
    assert_eq!(me["display_name"], sneaky);
    healthy(relay).await;
}

async fn malformed_bodies(relay: &TestRelay) {
    let url = relay.url("/api/v1/accounts");
    let c = relay.client();
    let send = |body: String| {
        c.post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in [
        "{".to_owned(),
        "not json".to_owned(),
        r#"{"email": 5, "password": "x", "ms_id": "abc", "display_name": "x"}"#.to_owned(),
        r#"{"email": "a@b.org"}"#.to_owned(),
        "[]".to_owned(),
    ] {
        assert_error(send(body).await.unwrap(), 400, "invalid_json").await;
    }
    let resp = c
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "invalid_json").await;
    let huge = format!(
        r#"{{"email": "a@b.org", "password": "{}", "ms_id": "abc", "display_name": "x"}}"#,
        "x".repeat(17 * 1024)
    );
    assert_error(send(huge).await.unwrap(), 413, "payload_too_large").await;
    let resp = relay
        .client()
        .post(relay.url("/api/v1/sessions"))
        .header("content-type", "application/json")
        .body(r#"{"email": "a@b.org"}"#)
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "invalid_json").await;
    let resp = relay
        .client()
        .get(relay.url("/api/v1/nope"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "not_found").await;
    healthy(relay).await;
}

async fn wrong_credentials(relay: &TestRelay) {
    relay.register("hank@example.org", "hank").await;
    let a = assert_error(
        relay.login("hank@example.org", "wrong password!").await,
        401,
        "invalid_credentials",
    )
    .await;
    let b = assert_error(
        relay.login("nobody@example.org", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    let c = assert_error(
        relay.login("not-an-email", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(a["message"], b["message"]);
    assert_eq!(b["message"], c["message"]);
}

/// `last_used_at` of the caller's session, from `GET /api/v1/sessions` (itself a use).
async fn last_used(relay: &TestRelay, token: &str) -> i64 {
    let list: Vec<Value> = relay
        .client()
        .get(relay.url("/api/v1/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list.iter().find(|s| s["current"] == true).unwrap()["last_used_at"]
        .as_i64()
        .unwrap()
}

/// A session's `last_used_at` is written at most once a minute, not on every request (each
/// write takes SQLite's write lock).
async fn last_used_written_once_a_minute(relay: &TestRelay) {
    relay.register("lou@example.org", "lou").await;
    let (token, _) = relay.token("lou@example.org").await;
    let signed_in = relay.clock().now();
    relay.clock().advance(30);
    assert_eq!(get_me(relay, &token).await.status(), 200);
    assert_eq!(
        last_used(relay, &token).await,
        signed_in,
        "30 s later: not rewritten"
    );
    relay.clock().advance(30);
    assert_eq!(
        last_used(relay, &token).await,
        signed_in + 60,
        "a minute later: rewritten"
    );
}

async fn delete_account(relay: &TestRelay) {
    relay.register("ivy@example.org", "ivy").await;
    let (token, _) = relay.token("ivy@example.org").await;
    let resp = relay
        .client()
        .delete(relay.url("/api/v1/me"))
        .bearer_auth(&token)
        .json(&json!({"password": "not my password"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "invalid_credentials").await;
    let resp = relay
        .client()
        .delete(relay.url("/api/v1/me"))
        .bearer_auth(&token)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_error(get_me(relay, &token).await, 401, "unauthorized").await;
    assert_error(
        relay.login("ivy@example.org", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    // The address can be registered again.
    relay.register("ivy@example.org", "ivy2").await;
}

async fn password_change(relay: &TestRelay) {
    relay.register("jack@example.org", "jack").await;
    let (keep, _) = relay.token("jack@example.org").await;
    let (other, _) = relay.token("jack@example.org").await;
    let new_password = "a different horse battery 77";
    let change = |current: &str, new: &str| {
        relay
            .client()
            .put(relay.url("/api/v1/me/password"))
            .bearer_auth(&keep)
            .json(&json!({"password": current, "new_password": new}))
            .send()
    };
    assert_error(
        change("wrong password!", new_password).await.unwrap(),
        401,
        "invalid_credentials",
    )
    .await;
    assert_error(
        change(PASSWORD, "short").await.unwrap(),
        400,
        "password_length",
    )
    .await;
    assert_error(
        change(PASSWORD, "password123").await.unwrap(),
        400,
        "weak_password",
    )
    .await;
    assert_eq!(change(PASSWORD, new_password).await.unwrap().status(), 204);
    assert_eq!(get_me(relay, &keep).await.status(), 200);
    assert_error(get_me(relay, &other).await, 401, "unauthorized").await;
    assert_error(
        relay.login("jack@example.org", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        relay.login("jack@example.org", new_password).await.status(),
        200
    );
}

async fn email_change_conflicts(relay: &TestRelay) {
    relay.register("kim@example.org", "kim").await;
    relay.register("lee@example.org", "lee").await;
    let (token, _) = relay.token("kim@example.org").await;
    let put = |body: Value| {
        relay
            .client()
            .put(relay.url("/api/v1/me/email"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let resp = put(json!({"password": PASSWORD, "new_email": "bad"}))
        .await
        .unwrap();
    assert_error(resp, 400, "invalid_email").await;
    let resp = put(json!({"password": "nope nope nope", "new_email": "kim2@example.org"}))
        .await
        .unwrap();
    assert_error(resp, 401, "invalid_credentials").await;
}

/// Accounts stored with this address.
async fn accounts_with(relay: &TestRelay, email: &'static str) -> i64 {
    use diesel::prelude::*;
    use relay_server::db::schema::users;
    relay
        .state
        .db
        .run(move |conn| {
            users::table
                .filter(users::email.eq(email))
                .count()
                .get_result::<i64>(conn)
                .map_err(relay_server::api::error::ApiError::from)
        })
        .await
        .unwrap()
}

/// The mails in the outbox sent to `to`.
fn mails_to(relay: &TestRelay, to: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(&relay.outbox) else {
        return Vec::new();
    };
    dir.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|m| m.lines().any(|l| l == format!("To: {to}")))
        .collect()
}

/// The 6-digit code in a mail (`... code is: 123456`), if it has one.
fn code_in(mail: &str) -> Option<String> {
    let at = mail.find("code is: ")? + "code is: ".len();
    Some(mail[at..].chars().take(6).collect())
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// Registration does not reveal which addresses have accounts (issue #12 item 8): with a
/// taken address it answers like a success, with a user id no account will ever have, creates
/// nothing, and mails the address's owner instead.
async fn registration_does_not_reveal_accounts(relay: &TestRelay) {
    let real = relay.register("nia@example.org", "nia").await;
    let other_password = "another horse battery 9";
    let resp = register_raw(relay, account("NIA@example.org", other_password, "nia2")).await;
    assert_eq!(resp.status(), 201);
    let decoy: Value = resp.json().await.unwrap();
    assert_eq!(keys(&decoy), keys(&real), "{decoy}");
    assert_eq!(decoy["email"], "nia@example.org");
    assert_eq!(decoy["ms_id"], "nia2");
    assert!(decoy["user_id"].as_i64().unwrap() > real["user_id"].as_i64().unwrap());
    // Nothing changed: Nia's password still works, the other one does not, one account.
    assert_eq!(relay.login("nia@example.org", PASSWORD).await.status(), 200);
    assert_error(
        relay.login("nia@example.org", other_password).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(accounts_with(relay, "nia@example.org").await, 1);
    // The owner of the address is told, without a code or a link to act on.
    common::eventually("a mail to the address's owner", || async {
        mails_to(relay, "nia@example.org").len() == 1
    })
    .await;
    let mail = &mails_to(relay, "nia@example.org")[0];
    assert!(mail.contains("already has an account"), "{mail}");
    assert_eq!(code_in(mail), None);
    // The id in the decoy answer is never anyone's.
    let next = relay.register("oli@example.org", "oli").await;
    assert!(next["user_id"].as_i64().unwrap() > decoy["user_id"].as_i64().unwrap());
}

async fn put_email(relay: &TestRelay, token: &str, new_email: &str) -> reqwest::Response {
    relay
        .client()
        .put(relay.url("/api/v1/me/email"))
        .bearer_auth(token)
        .json(&json!({"password": PASSWORD, "new_email": new_email}))
        .send()
        .await
        .unwrap()
}

async fn confirm_email_change(relay: &TestRelay, token: &str, code: &str) -> reqwest::Response {
    relay
        .client()
        .post(relay.url("/api/v1/me/email/change/confirm"))
        .bearer_auth(token)
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap()
}

/// `PUT /me/email` does not reveal which addresses have accounts (issue #12 item 8): a taken
/// address and a free one get the same answer (202, the account unchanged); the change
/// happens only with the code mailed to the new address (`POST /me/email/change/confirm`),
/// which also verifies it; the owner of a taken address gets a notice without a code, and
/// the old address is told of the change.
async fn email_change_is_confirmed_through_the_new_address(relay: &TestRelay) {
    relay.register("kai@example.org", "kai").await;
    relay.register("lin@example.org", "lin").await;
    let (token, _) = relay.token("kai@example.org").await;
    let me_before: Value = get_me(relay, &token).await.json().await.unwrap();

    let taken = put_email(relay, &token, "LIN@example.org").await;
    assert_eq!(taken.status(), 202);
    let taken: Value = taken.json().await.unwrap();
    relay.clock().advance(61);
    let free = put_email(relay, &token, "kai.new@example.org").await;
    assert_eq!(free.status(), 202);
    let free: Value = free.json().await.unwrap();
    assert_eq!(taken, free, "the same answer either way");
    assert_eq!(free, me_before, "nothing changed yet");

    let to_lin = mails_to(relay, "lin@example.org");
    assert_eq!(to_lin.len(), 1);
    assert_eq!(code_in(&to_lin[0]), None, "{}", to_lin[0]);
    let to_new = mails_to(relay, "kai.new@example.org");
    assert_eq!(to_new.len(), 1);
    let code = code_in(&to_new[0]).expect("a code to the new address");
    let me_now: Value = get_me(relay, &token).await.json().await.unwrap();
    assert_eq!(me_now["email"], "kai@example.org");

    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert_error(
        confirm_email_change(relay, &token, &wrong).await,
        401,
        "invalid_code",
    )
    .await;
    let resp = confirm_email_change(relay, &token, &code).await;
    assert_eq!(resp.status(), 200);
    let me_after: Value = resp.json().await.unwrap();
    assert_eq!(me_after["email"], "kai.new@example.org");
    assert_eq!(me_after["email_verified"], true);
    // Used: every code of the account is gone with the change.
    assert_error(
        confirm_email_change(relay, &token, &code).await,
        401,
        "invalid_code",
    )
    .await;
    assert_eq!(
        relay.login("kai.new@example.org", PASSWORD).await.status(),
        200
    );
    assert_error(
        relay.login("kai@example.org", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    let to_old = mails_to(relay, "kai@example.org");
    assert_eq!(to_old.len(), 1, "the old address is told");
    assert!(to_old[0].contains("kai.new@example.org"), "{}", to_old[0]);
    // Lin's account is untouched.
    assert_eq!(relay.login("lin@example.org", PASSWORD).await.status(), 200);
}

/// An address taken between the request and its confirmation: the confirmation (which only
/// the holder of the new address can make) is refused with `409 email_taken`.
async fn email_change_to_an_address_taken_meanwhile(relay: &TestRelay) {
    relay.register("max@example.org", "max").await;
    let (token, _) = relay.token("max@example.org").await;
    assert_eq!(
        put_email(relay, &token, "zed@example.org").await.status(),
        202
    );
    let code = code_in(&mails_to(relay, "zed@example.org")[0]).unwrap();
    relay.register("zed@example.org", "zed").await;
    assert_error(
        confirm_email_change(relay, &token, &code).await,
        409,
        "email_taken",
    )
    .await;
    let me: Value = get_me(relay, &token).await.json().await.unwrap();
    assert_eq!(me["email"], "max@example.org");
    // Nothing pending: a confirmation without a request is a wrong code.
    let (other, _) = relay.token("zed@example.org").await;
    assert_error(
        confirm_email_change(relay, &other, "123456").await,
        401,
        "invalid_code",
    )
    .await;
}

/// E-mail change requests are limited per account: each mails a code, so they share the
/// e-mail budget (one a minute, 5 an hour).
async fn email_changes_rate_limited(backend: Backend) {
    let Some(relay) = TestRelay::start_with(backend, true).await else {
        return;
    };
    relay.register("ola@example.org", "ola").await;
    let (token, _) = relay.token("ola@example.org").await;
    assert_eq!(
        put_email(&relay, &token, "ola0@example.org").await.status(),
        202
    );
    assert_rate_limited(put_email(&relay, &token, "ola1@example.org").await).await;
    for i in 1..5 {
        relay.clock().advance(60);
        assert_eq!(
            put_email(&relay, &token, &format!("ola{i}@example.org"))
                .await
                .status(),
            202
        );
    }
    relay.clock().advance(60);
    assert_rate_limited(put_email(&relay, &token, "ola5@example.org").await).await;
    relay.stop().await;
}

#[actix_web::test]
async fn email_changes_rate_limited_sqlite() {
    email_changes_rate_limited(Backend::Sqlite).await;
}

#[actix_web::test]
async fn email_changes_rate_limited_postgres() {
    email_changes_rate_limited(Backend::Postgres).await;
}

async fn held_ms_id(relay: &TestRelay) {
    use diesel::prelude::*;
    use relay_server::db::schema::ms_id_holds;
    let until = relay.clock().now() + 3600;
    relay
        .state
        .db
        .run(move |conn| {
            diesel::insert_into(ms_id_holds::table)
                .values((
                    ms_id_holds::ms_id.eq("heldname"),
                    ms_id_holds::previous_owner.eq(999_i64),
                    ms_id_holds::held_until.eq(until),
                ))
                .execute(conn)
                .map_err(relay_server::api::error::ApiError::from)
        })
        .await
        .unwrap();
    let resp = register_raw(relay, account("m@example.org", PASSWORD, "HeldName")).await;
    assert_error(resp, 409, "ms_id_unavailable").await;
    relay.clock().advance(3601);
    relay.register("m@example.org", "heldname").await;
}

/// Concurrent registrations: distinct ones all succeed (no `database is locked` 500s on
/// SQLite); racing for one e-mail address or one ms_id, exactly one wins and the others get
/// the typed conflict.
async fn concurrent_registrations(relay: &TestRelay) {
    let mut distinct = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (client, url) = (relay.client(), relay.url("/api/v1/accounts"));
        distinct.spawn(async move {
            let body = account(
                &format!("racer{i}@example.org"),
                PASSWORD,
                &format!("racer{i}"),
            );
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses = distinct.join_all().await;
    assert_eq!(statuses, vec![201; 8]);

    let mut same = tokio::task::JoinSet::new();
    for i in 0..6 {
        let (client, url) = (relay.client(), relay.url("/api/v1/accounts"));
        same.spawn(async move {
            let body = account("same@example.org", PASSWORD, &format!("same{i}"));
            let resp = client.post(url).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, body["error"].as_str().map(str::to_owned))
        });
    }
    // Every one is answered alike (the address's owner is not revealed) and exactly one
    // account exists.
    let results = same.join_all().await;
    assert_eq!(results, vec![(201, None); 6], "{results:?}");
    assert_eq!(accounts_with(relay, "same@example.org").await, 1);
    healthy(relay).await;
}

on_both_backends!(
    concurrent_registrations,
    held_ms_id,
    register_login_me_logout,
    cookie_auth_and_csrf,
    sessions_list_and_revoke,
    expired_and_forged_tokens,
    registration_validation,
    malformed_bodies,
    wrong_credentials,
    delete_account,
    last_used_written_once_a_minute,
    password_change,
    email_change_conflicts,
    registration_does_not_reveal_accounts,
    email_change_is_confirmed_through_the_new_address,
    email_change_to_an_address_taken_meanwhile,
);

async fn rate_limited_registration(backend: Backend) {
    let Some(relay) = TestRelay::start_with(backend, true).await else {
        return;
    };
    for i in 0..10 {
        relay
            .register(&format!("user{i}@example.org"), &format!("user{i}"))
            .await;
    }
    let resp = register_raw(&relay, account("user10@example.org", PASSWORD, "user10")).await;
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
    healthy(&relay).await;
    relay.stop().await;
}

#[actix_web::test]
async fn rate_limit_sqlite() {
    rate_limited_registration(Backend::Sqlite).await;
}

#[actix_web::test]
async fn rate_limit_postgres() {
    rate_limited_registration(Backend::Postgres).await;
}

/// Answers a signed-in user's password check: `PUT /me/password` with `password`.
async fn put_password(relay: &TestRelay, token: &str, password: &str) -> reqwest::Response {
    relay
        .client()
        .put(relay.url("/api/v1/me/password"))
        .bearer_auth(token)
        .json(&json!({"password": password, "new_password": "a different horse battery 77"}))
        .send()
        .await
        .unwrap()
}

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

/// Password checks of a signed-in user (issue #12, item 1) are rate limited like logins:
/// 10 per account per 15 minutes, right or wrong, shared by every route that takes the
/// password; 30 per IP per minute across accounts.
async fn password_checks_rate_limited(backend: Backend) {
    let Some(relay) = TestRelay::start_with(backend, true).await else {
        return;
    };
    relay.register("kim@example.org", "kim").await;
    let (kim, _) = relay.token("kim@example.org").await;
    for _ in 0..10 {
        assert_error(
            put_password(&relay, &kim, "not the password").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_rate_limited(put_password(&relay, &kim, "not the password").await).await;
    // The right password is refused too, and the other routes share the budget.
    assert_rate_limited(put_password(&relay, &kim, PASSWORD).await).await;
    let other_routes = [
        (
            reqwest::Method::PUT,
            "/api/v1/me/email",
            json!({"password": PASSWORD, "new_email": "kim2@example.org"}),
        ),
        (
            reqwest::Method::DELETE,
            "/api/v1/me",
            json!({"password": PASSWORD}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/me/2fa/totp/setup",
            json!({"password": PASSWORD}),
        ),
    ];
    for (method, path, body) in &other_routes {
        let resp = relay
            .client()
            .request(method.clone(), relay.url(path))
            .bearer_auth(&kim)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_rate_limited(resp).await;
    }
    assert_eq!(get_me(&relay, &kim).await.status(), 200, "not deleted");
    // 90 s later one check is back (10 per 15 minutes).
    relay.clock().advance(90);
    assert_eq!(put_password(&relay, &kim, PASSWORD).await.status(), 204);
    assert_rate_limited(put_password(&relay, &kim, "a different horse battery 77").await).await;

    // Per IP: 30 a minute across accounts. Another minute refills this client's bucket
    // (it spent 17 so far, and 150 s give back more than the burst of 30).
    relay.clock().advance(60);
    let mut tokens = Vec::new();
    for i in 0..4 {
        let email = format!("ip{i}@example.org");
        relay.register(&email, &format!("ip{i}")).await;
        tokens.push(relay.token(&email).await.0);
    }
    for token in &tokens[..3] {
        for _ in 0..10 {
            assert_error(
                put_password(&relay, token, "not the password").await,
                401,
                "invalid_credentials",
            )
            .await;
        }
    }
    assert_rate_limited(put_password(&relay, &tokens[3], "not the password").await).await;
    healthy(&relay).await;
    relay.stop().await;
}

#[actix_web::test]
async fn password_checks_rate_limited_sqlite() {
    password_checks_rate_limited(Backend::Sqlite).await;
}

#[actix_web::test]
async fn password_checks_rate_limited_postgres() {
    password_checks_rate_limited(Backend::Postgres).await;
}

/// At most `--password-hash-concurrency` argon2 runs at once (issue #12, item 1): with every
/// slot taken, password checks, logins and registrations get `503 unavailable` with
/// `Retry-After` after a short wait; a storm of parallel wrong passwords gets only 401 or 503
/// answers (429 once rate limited) while `/healthz` keeps answering.
async fn argon2_runs_are_capped(backend: Backend) {
    let Some(relay) = TestRelay::start_configured(backend, false, |c| {
        c.password_hash_concurrency = 2;
        c.password_hash_wait_ms = 100;
    })
    .await
    else {
        return;
    };
    relay.register("lee@example.org", "lee").await;
    let (lee, _) = relay.token("lee@example.org").await;

    // Every slot held (as by two long argon2 runs): refused, not queued without end.
    let passwords = relay.state.passwords.clone();
    assert_eq!(passwords.permits(), 2);
    let held = vec![
        passwords.permit().await.unwrap(),
        passwords.permit().await.unwrap(),
    ];
    let assert_busy = |resp: reqwest::Response| async move {
        let retry_after: u64 = resp
            .headers()
            .get("retry-after")
            .expect("Retry-After header")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after >= 1);
        assert_error(resp, 503, "unavailable").await;
    };
    assert_busy(put_password(&relay, &lee, "not the password").await).await;
    assert_busy(relay.login("lee@example.org", PASSWORD).await).await;
    assert_busy(register_raw(&relay, account("late@example.org", PASSWORD, "latecomer")).await)
        .await;
    healthy(&relay).await;
    drop(held);
    assert_error(
        put_password(&relay, &lee, "not the password").await,
        401,
        "invalid_credentials",
    )
    .await;

    // A storm of parallel wrong passwords from one session, with health checks among them.
    let mut storm = tokio::task::JoinSet::new();
    for i in 0..150 {
        let (client, url, token) = (
            relay.client(),
            relay.url("/api/v1/me/password"),
            lee.clone(),
        );
        let health = relay.url("/healthz");
        storm.spawn(async move {
            if i % 10 == 0 {
                let status = client.get(health).send().await.unwrap().status().as_u16();
                return ("healthz", status);
            }
            let status = client
                .put(url)
                .bearer_auth(token)
                .json(&json!({"password": format!("guess {i}"), "new_password": "x"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            ("password", status)
        });
    }
    for (what, status) in storm.join_all().await {
        match what {
            "healthz" => assert_eq!(status, 200, "/healthz during the storm"),
            _ => assert!(
                [401, 429, 503].contains(&status),
                "a wrong password answered {status}"
            ),
        }
    }
    assert_eq!(passwords.waiting(), 0);
    healthy(&relay).await;
    assert_eq!(get_me(&relay, &lee).await.status(), 200);
    relay.stop().await;
}

#[actix_web::test]
async fn argon2_runs_are_capped_sqlite() {
    argon2_runs_are_capped(Backend::Sqlite).await;
}

#[actix_web::test]
async fn argon2_runs_are_capped_postgres() {
    argon2_runs_are_capped(Backend::Postgres).await;
}
