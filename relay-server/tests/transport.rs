//! Transport settings (issue #12, item 13), on SQLite and PostgreSQL:
//! - the WebSocket `Origin` check compares the scheme too: a plain-HTTP relay refuses
//!   `https://<its host>`, a relay reached over HTTPS refuses `http://<its host>`;
//! - a relay reached over HTTPS (`--tls-cert`, or `--secure-cookies` behind a TLS proxy)
//!   marks the session cookie `Secure` and sends `Strict-Transport-Security`; `--tls-cert`
//!   alone turns both on.
//!
//! No TLS handshake here: the repository has no certificate generator (rcgen is not in
//! Cargo.lock), so the `--tls-cert` case is checked through the configuration the relay
//! builds (`build_state`), and the headers through a relay told it is behind HTTPS.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::ws::{device, user, ws_url};
use common::{Backend, PASSWORD, TestRelay};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The handshake's HTTP status with `origin` (101 when upgraded).
async fn open_with_origin(relay: &TestRelay, token: &str, device_id: i64, origin: &str) -> u16 {
    let mut req = ws_url(relay).into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h.insert(
        "x-securechat-device",
        HeaderValue::from_str(&device_id.to_string()).unwrap(),
    );
    h.insert("origin", HeaderValue::from_str(origin).unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

fn host(relay: &TestRelay) -> String {
    relay.base.trim_start_matches("http://").to_owned()
}

/// Plain HTTP: the relay's own origin is `http://host`; `https://host` is another origin.
async fn origin_scheme_plain(relay: &TestRelay) {
    let me = user(relay, "plain").await;
    let dev = device(relay, me.id).await;
    let host = host(relay);
    let http = format!("http://{host}");
    let https = format!("https://{host}");
    assert_eq!(open_with_origin(relay, &me.token, dev, &http).await, 101);
    assert_eq!(open_with_origin(relay, &me.token, dev, &https).await, 403);
    // No HSTS over plain HTTP, and no `Secure` cookie.
    let resp = relay.login("plain@example.org", PASSWORD).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("strict-transport-security").is_none());
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(!cookie.contains("; Secure"), "{cookie}");
}

/// Reached over HTTPS (here: `--secure-cookies`, as behind a TLS proxy): `https://host` is the
/// own origin and `http://host` is not; the cookie is `Secure`; HSTS on every response.
async fn origin_scheme_https(relay: &TestRelay) {
    let me = user(relay, "secure").await;
    let dev = device(relay, me.id).await;
    let host = host(relay);
    let http = format!("http://{host}");
    let https = format!("https://{host}");
    assert_eq!(open_with_origin(relay, &me.token, dev, &https).await, 101);
    assert_eq!(open_with_origin(relay, &me.token, dev, &http).await, 403);
    let resp = relay.login("secure@example.org", PASSWORD).await;
    assert_eq!(resp.status(), 200);
    let hsts = resp.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(hsts.starts_with("max-age="), "{hsts}");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Errors and health checks carry it too.
    let resp = relay
        .client()
        .get(relay.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("strict-transport-security").is_some());
    let resp = relay
        .client()
        .delete(relay.url("/api/v1/sessions/current"))
        .bearer_auth(&me.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let removal = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(removal.contains("; Secure"), "{removal}");
}

macro_rules! both {
    ($name:ident, $adjust:expr) => {
        mod $name {
            use super::*;

            #[actix_web::test]
            async fn sqlite() {
                if let Some(relay) =
                    TestRelay::start_configured(Backend::Sqlite, false, $adjust).await
                {
                    super::$name(&relay).await;
                    relay.stop().await;
                }
            }

            #[actix_web::test]
            async fn postgres() {
                if let Some(relay) =
                    TestRelay::start_configured(Backend::Postgres, false, $adjust).await
                {
                    super::$name(&relay).await;
                    relay.stop().await;
                }
            }
        }
    };
}

both!(origin_scheme_plain, |_| {});
both!(origin_scheme_https, |c| c.secure_cookies = true);

/// `--tls-cert` (with its key) alone makes the relay's configuration one reached over HTTPS:
/// `Secure` cookies (and so HSTS and the `https` origin) without `--secure-cookies`. The
/// files are not read until the server starts serving, so none are needed here.
#[actix_web::test]
async fn tls_implies_secure_cookies() {
    let Some((database_url, pg, sqlite)) = common::fresh_database(Backend::Sqlite) else {
        return;
    };
    assert!(pg.is_none());
    let mut config = relay_server::Config::defaults();
    config.database_url = database_url;
    config.mail_url = format!(
        "file://{}",
        std::env::temp_dir()
            .join(common::unique_name("sc_tls_outbox"))
            .display()
    );
    config.tls_cert = Some("/nonexistent/cert.pem".into());
    config.tls_key = Some("/nonexistent/key.pem".into());
    assert!(!config.secure_cookies);
    let state = relay_server::server::build_state(config).unwrap();
    assert!(
        state.config.secure_cookies,
        "--tls-cert implies Secure cookies"
    );
    drop(state);
    if let Some(path) = sqlite {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
