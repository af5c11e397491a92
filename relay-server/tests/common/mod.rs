//! Test harness: a relay on a loopback port, on a fresh SQLite file or a fresh PostgreSQL
//! database, with a `file://` mail outbox, `/metrics` on and (unless asked) no rate limits.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod ws;

use diesel::{Connection, PgConnection, RunQueryDsl};
use hmac::{Hmac, KeyInit, Mac};
use relay_server::Config;
use relay_server::clock::Clock;
use relay_server::state::AppState;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Admin URL of the test PostgreSQL server (trust auth).
///
/// `sslmode=disable`: libpq would otherwise negotiate TLS on loopback with OpenSSL, whose exit
/// handler then races connection pools still closing in other threads: a test binary whose
/// tests all passed died of SIGSEGV in libcrypto at exit (1 run in 20 under load).
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";
const PG_BASE_URL: &str = "postgres://postgres@127.0.0.1:5432";
const PG_OPTIONS: &str = "?sslmode=disable";

/// A password zxcvbn accepts.
pub const PASSWORD: &str = "correct horse battery staple 42";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A name no other test (or test process) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A fresh database URL for `backend`, or `None` when PostgreSQL is unreachable outside CI.
pub fn fresh_database(backend: Backend) -> Option<(String, Option<String>, Option<PathBuf>)> {
    match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{}.db", unique_name("sc_test")));
            Some((format!("sqlite://{}", path.display()), None, Some(path)))
        }
        Backend::Postgres => {
            let mut admin = match PgConnection::establish(PG_ADMIN_URL) {
                Ok(c) => c,
                Err(e) => {
                    if ci() {
                        panic!("PostgreSQL unreachable at {PG_ADMIN_URL} in CI: {e}");
                    }
                    eprintln!("PostgreSQL suite SKIPPED ({PG_ADMIN_URL}: {e})");
                    return None;
                }
            };
            let name = unique_name("sc_test");
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .expect("create test database");
            Some((
                format!("{PG_BASE_URL}/{name}{PG_OPTIONS}"),
                Some(name),
                None,
            ))
        }
    }
}

/// What the relay prints on stdout once it has bound its port.
const LISTENING: &str = "SecureChat relay listening on ";

/// Starts `command` (the relay binary and its flags) on a loopback port the OS chooses, and
/// returns the process and its base URL, read from the line the relay prints once bound. No
/// port is picked before the relay binds it, so no other process can take it in between.
pub fn spawn_relay(mut command: Command) -> (Child, String) {
    let mut child = command
        .env("SECURECHAT_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start securechat-relay");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(base) = line.strip_prefix(LISTENING) {
                let _ = tx.send(base.to_owned());
            }
        }
    });
    // A generous bound: migrations on a loaded machine take seconds, not minutes.
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(base) => (child, base),
        Err(e) => {
            let _ = child.kill();
            panic!(
                "the relay never said where it listens ({e}): {:?}",
                child.wait()
            );
        }
    }
}

/// Drops a test database, best effort.
pub fn drop_pg_database(name: &str) {
    if let Ok(mut admin) = PgConnection::establish(PG_ADMIN_URL) {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin);
    }
}

/// A running relay.
pub struct TestRelay {
    pub base: String,
    pub backend: Backend,
    pub state: AppState,
    pub outbox: PathBuf,
    handle: actix_web::dev::ServerHandle,
    pg_database: Option<String>,
    sqlite_path: Option<PathBuf>,
}

impl TestRelay {
    /// Starts a relay without rate limits; `None` when the backend is skipped.
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, false).await
    }

    /// Starts a relay, with the production rate limits when `rate_limits`. Like every test
    /// relay, its clock is frozen (see [`Clock::freeze`]).
    pub async fn start_with(backend: Backend, rate_limits: bool) -> Option<Self> {
        Self::start_configured(backend, rate_limits, |_| {}).await
    }

    /// Starts a relay whose mail goes to `mail_url` (default: a `file://` outbox).
    pub async fn start_with_mail(
        backend: Backend,
        rate_limits: bool,
        mail_url: Option<String>,
    ) -> Option<Self> {
        Self::start_configured(backend, rate_limits, move |c| {
            if let Some(url) = mail_url {
                c.mail_url = url;
            }
        })
        .await
    }

    /// Starts a relay like [`Self::start_with`], after `adjust` has changed its configuration.
    pub async fn start_configured(
        backend: Backend,
        rate_limits: bool,
        adjust: impl FnOnce(&mut Config),
    ) -> Option<Self> {
        let (database_url, pg_database, sqlite_path) = fresh_database(backend)?;
        let outbox = std::env::temp_dir().join(unique_name("sc_outbox"));
        let mut config = Config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database_url = database_url;
        config.mail_url = format!("file://{}", outbox.display());
        config.disable_rate_limits = !rate_limits;
        config.blob_dir = outbox.with_extension("blobs");
        config.secret_key_file = outbox.with_extension("key");
        config.metrics = true;
        // A starved CI machine may hold a connection or SQLite's write lock for seconds; the
        // tests check outcomes, not how long a request waited.
        config.db_wait_secs = 120;
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = relay_server::server::build_state(config).expect("build state");
        // Time passes for this relay only when a test says so (`clock().advance`): no token
        // bucket refills while a test counts requests, no hold or code expires and no TOTP
        // step changes in the middle of a test, however slowly this machine runs it.
        state.clock.freeze();
        let server = relay_server::server::serve(listener, state.clone()).expect("serve");
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Some(Self {
            base: format!("http://127.0.0.1:{port}"),
            backend,
            state,
            outbox,
            handle,
            pg_database,
            sqlite_path,
        })
    }

    /// The relay's clock, frozen: move it forward to expire things or refill rate limits.
    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client without a cookie store.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder().build().unwrap()
    }

    /// Registers `email` / `ms_id` with [`PASSWORD`]; asserts 201.
    pub async fn register(&self, email: &str, ms_id: &str) -> Value {
        let resp = self
            .client()
            .post(self.url("/api/v1/accounts"))
            .json(&json!({"email": email, "password": PASSWORD, "ms_id": ms_id, "display_name": "Test User"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "register {email}");
        resp.json().await.unwrap()
    }

    /// Logs in; returns the login response body.
    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client()
            .post(self.url("/api/v1/sessions"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Logs in with [`PASSWORD`]; returns (token, csrf token).
    pub async fn token(&self, email: &str) -> (String, String) {
        let resp = self.login(email, PASSWORD).await;
        assert_eq!(resp.status(), 200, "login {email}");
        let body: Value = resp.json().await.unwrap();
        (
            body["token"].as_str().unwrap().to_owned(),
            body["csrf_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Another relay on this relay's database and clock, with nothing of its memory (fresh
    /// rate limits, hub, writer): what a restart, or a second relay sharing PostgreSQL, sees.
    /// Its rate limits are on when `rate_limits`.
    pub fn another_relay(&self, rate_limits: bool) -> OtherRelay {
        let mut config = (*self.state.config).clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.disable_rate_limits = !rate_limits;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut state = relay_server::server::build_state(config).expect("build state");
        state.clock = self.state.clock.clone();
        state.limits = std::sync::Arc::new(relay_server::services::ratelimit::RateLimits::new(
            !rate_limits,
            &state.clock,
        ));
        let server = relay_server::server::serve(listener, state.clone()).expect("serve");
        let handle = server.handle();
        actix_web::rt::spawn(server);
        OtherRelay {
            base: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        }
    }

    /// Stops the server and removes its database.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// A second relay started by [`TestRelay::another_relay`]; stop it before the first.
pub struct OtherRelay {
    pub base: String,
    pub state: AppState,
    handle: actix_web::dev::ServerHandle,
}

impl OtherRelay {
    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server (the database belongs to the first relay).
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_database {
            drop_pg_database(name);
        }
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        let _ = std::fs::remove_dir_all(&self.outbox);
        let _ = std::fs::remove_dir_all(&self.state.config.blob_dir);
    }
}

/// Longest wait for something that must happen eventually: a bound that turns a relay that
/// makes no progress into a failure, far above what a loaded machine needs.
pub const EVENTUALLY: Duration = Duration::from_secs(60);

/// Polls `check` every 20 ms until it holds; fails with `what` after [`EVENTUALLY`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + EVENTUALLY;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {EVENTUALLY:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts an error response: its status, its code, and a body of exactly `error` + `message`.
pub async fn assert_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status for {code}");
    let body: Value = resp.json().await.expect("JSON error body");
    let obj = body.as_object().expect("error body is an object");
    let mut keys: Vec<&String> = obj.keys().collect();
    keys.sort();
    assert_eq!(keys, ["error", "message"], "error body keys: {body}");
    assert_eq!(body["error"], code, "error code: {body}");
    assert!(body["message"].is_string());
    body
}

/// Runs each listed async test function on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[actix_web::test]
                async fn sqlite() {
                    if let Some(relay) = TestRelay::start(Backend::Sqlite).await {
                        super::$name(&relay).await;
                        relay.stop().await;
                    }
                }

                #[actix_web::test]
                async fn postgres() {
                    if let Some(relay) = TestRelay::start(Backend::Postgres).await {
                        super::$name(&relay).await;
                        relay.stop().await;
                    }
                }
            }
        )*
    };
}

// RFC 6238 by hand, independent of the relay's TOTP code (checked against the RFC's
// vectors in tests/two_factor.rs).

pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u64, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .expect("base32 character") as u64;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// HOTP (RFC 4226 §5.3) with HMAC-SHA-1, `digits` digits.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    format!(
        "{:0width$}",
        bin % 10u32.pow(digits),
        width = digits as usize
    )
}

/// TOTP (RFC 6238 §4): 30-second steps, 6 digits.
pub fn totp_at(secret_b32: &str, unix: i64) -> String {
    hotp(&base32_decode(secret_b32), (unix / 30) as u64, 6)
}

/// A signed-in test user whose token authenticates [`call`].
pub trait Bearer {
    fn bearer(&self) -> &str;
}

/// An authenticated API call (Bearer token) with an optional JSON body.
pub async fn call(
    relay: &TestRelay,
    method: reqwest::Method,
    path: &str,
    who: &impl Bearer,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = relay
        .client()
        .request(method, relay.url(path))
        .bearer_auth(who.bearer());
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// Asserts the status and returns the JSON body (`null` when there is none).
pub async fn ok_json(resp: reqwest::Response, status: u16) -> Value {
    let got = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "body: {body}");
    body
}
