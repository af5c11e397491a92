//! Which client address the per-IP rate limits see (issue #12 item 9): the peer's, or, when
//! the peer is a trusted reverse proxy (`SECURECHAT_TRUSTED_PROXIES`), the address that proxy
//! put in `X-Forwarded-For`; IPv6 clients count by /64. The relay binary on loopback, with its
//! production limits, on SQLite and PostgreSQL. Registration is limited to 10 an hour per IP
//! before its body is looked at, so malformed sign-ups (400) count without hashing anything.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Backend, drop_pg_database, fresh_database, spawn_relay, unique_name};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_securechat-relay");

/// The relay binary; killed and its files removed on drop.
struct Relay {
    child: Child,
    base: String,
    pg_database: Option<String>,
    sqlite_path: Option<PathBuf>,
    dir: PathBuf,
}

impl Relay {
    fn start(backend: Backend, trusted_proxies: Option<&str>) -> Option<Self> {
        let (database_url, pg_database, sqlite_path) = fresh_database(backend)?;
        let dir = std::env::temp_dir().join(unique_name("sc_client_ip"));
        let mut command = Command::new(BIN);
        command
            .env("DATABASE_URL", &database_url)
            .env(
                "SECURECHAT_MAIL_URL",
                format!("file://{}", dir.join("outbox").display()),
            )
            .env("SECURECHAT_BLOB_DIR", dir.join("blobs"))
            .env("SECURECHAT_SECRET_KEY_FILE", dir.join("secret.key"))
            .env("SECURECHAT_DB_WAIT_SECS", "120")
            .env("SECURECHAT_LOG", "warn")
            .env_remove("SECURECHAT_DISABLE_RATE_LIMITS")
            .stderr(Stdio::null());
        if let Some(list) = trusted_proxies {
            command.env("SECURECHAT_TRUSTED_PROXIES", list);
        }
        let (child, base) = spawn_relay(command);
        Some(Self {
            child,
            base,
            pg_database,
            sqlite_path,
            dir,
        })
    }

    /// A malformed sign-up, as sent through a proxy that forwarded for `forwarded_for`:
    /// 400 while the bucket of the address the relay sees has tokens, then 429.
    async fn sign_up_from(&self, forwarded_for: Option<&str>) -> u16 {
        let mut req = reqwest::Client::new()
            .post(format!("{}/api/v1/accounts", self.base))
            .json(&json!({"email": "not an address", "password": "x", "ms_id": "x", "display_name": "x"}));
        if let Some(value) = forwarded_for {
            req = req.header("x-forwarded-for", value);
        }
        req.send().await.unwrap().status().as_u16()
    }

    /// Spends the 10 sign-ups an hour of the address the relay sees for `forwarded_for`.
    async fn spend(&self, forwarded_for: Option<&str>) {
        for i in 0..10 {
            assert_eq!(self.sign_up_from(forwarded_for).await, 400, "sign-up {i}");
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(name) = &self.pg_database {
            drop_pg_database(name);
        }
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Behind a trusted proxy (loopback here) each client has its own bucket, named by the
/// proxy's `X-Forwarded-For`: the address the proxy appended, not what the client claimed
/// before it; IPv6 clients by /64; the proxy's own requests count for the proxy.
async fn trusted_proxy_forwards_the_client_address(backend: Backend) {
    let Some(relay) = Relay::start(backend, Some("192.0.2.1, 127.0.0.0/8")) else {
        return;
    };
    relay.spend(Some("203.0.113.7")).await;
    assert_eq!(relay.sign_up_from(Some("203.0.113.7")).await, 429);
    // A client's own X-Forwarded-For comes first; the trusted proxy appends the real address.
    assert_eq!(
        relay.sign_up_from(Some("198.51.100.1, 203.0.113.7")).await,
        429
    );
    assert_eq!(relay.sign_up_from(Some("203.0.113.8")).await, 400);
    assert_eq!(relay.sign_up_from(None).await, 400);
    assert_eq!(relay.sign_up_from(Some("not an address")).await, 400);

    relay.spend(Some("2001:db8:1:2::1")).await;
    assert_eq!(
        relay
            .sign_up_from(Some("2001:db8:1:2:ffff:ffff:ffff:ffff"))
            .await,
        429,
        "one /64, one bucket"
    );
    assert_eq!(relay.sign_up_from(Some("2001:db8:1:3::1")).await, 400);
}

/// Without the setting, or from a peer that is not one of the trusted proxies, the header is
/// ignored: a client cannot pick a fresh bucket by sending it.
async fn untrusted_forwarded_for_is_ignored(backend: Backend) {
    for trusted in [None, Some("10.0.0.0/8, 2001:db8::/32")] {
        let Some(relay) = Relay::start(backend, trusted) else {
            return;
        };
        for i in 0..10 {
            let claimed = format!("203.0.113.{i}");
            assert_eq!(relay.sign_up_from(Some(&claimed)).await, 400, "{trusted:?}");
        }
        assert_eq!(
            relay.sign_up_from(Some("203.0.113.99")).await,
            429,
            "{trusted:?}"
        );
    }
}

#[actix_web::test]
async fn trusted_proxy_forwards_the_client_address_sqlite() {
    trusted_proxy_forwards_the_client_address(Backend::Sqlite).await;
}

#[actix_web::test]
async fn trusted_proxy_forwards_the_client_address_postgres() {
    trusted_proxy_forwards_the_client_address(Backend::Postgres).await;
}

#[actix_web::test]
async fn untrusted_forwarded_for_is_ignored_sqlite() {
    untrusted_forwarded_for_is_ignored(Backend::Sqlite).await;
}

#[actix_web::test]
async fn untrusted_forwarded_for_is_ignored_postgres() {
    untrusted_forwarded_for_is_ignored(Backend::Postgres).await;
}
