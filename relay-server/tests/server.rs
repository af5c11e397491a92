//! The relay as a program: the `securechat-relay` binary on its embedded defaults (what
//! `cargo xtask run` starts), `--help`, graceful shutdown, and the web app directory.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Backend, TestRelay, assert_error, unique_name};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_securechat-relay");

fn temp_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique_name(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn wait_healthy(url: &str, child: &mut std::process::Child) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("relay exited early: {status}");
        }
        if let Ok(resp) = client.get(url).send().await
            && resp.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "relay did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// No flags (but port 0, the OS picks the port): SQLite file and mail outbox in the working directory, migrations
/// applied, accounts work; SIGTERM stops it cleanly (exit status 0).
#[actix_web::test]
async fn binary_runs_on_embedded_defaults_and_stops_on_sigterm() {
    let dir = temp_dir("sc_bin");
    let mut command = Command::new(BIN);
    command
        .current_dir(&dir)
        .env_remove("DATABASE_URL")
        .stderr(Stdio::null());
    let (mut child, base) = common::spawn_relay(command);
    wait_healthy(&format!("{base}/healthz"), &mut child).await;

    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/accounts"))
        .json(&serde_json::json!({
            "email": "newcomer@example.org",
            "password": common::PASSWORD,
            "ms_id": "newcomer",
            "display_name": "New Comer"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(dir.join("securechat.db").is_file(), "default SQLite file");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Graceful shutdown gives open connections up to 10 s; a loaded machine adds to that.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "relay ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_explains_every_setting() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--listen", "SECURECHAT_LISTEN"),
        ("--database-url", "DATABASE_URL"),
        ("--mail-url", "SECURECHAT_MAIL_URL"),
        ("--mail-from", "SECURECHAT_MAIL_FROM"),
        ("--tls-cert", "SECURECHAT_TLS_CERT"),
        ("--tls-key", "SECURECHAT_TLS_KEY"),
        ("--allowed-origins", "SECURECHAT_ALLOWED_ORIGINS"),
        ("--web-dir", "SECURECHAT_WEB_DIR"),
        ("--metrics", "SECURECHAT_METRICS"),
        ("--trusted-proxies", "SECURECHAT_TRUSTED_PROXIES"),
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
        assert!(help.contains(env), "--help lacks {env}");
    }
    assert!(help.contains("127.0.0.1:8080"));
    assert!(help.contains("sqlite://./securechat.db"));
}

#[test]
fn a_bad_database_url_is_a_clear_startup_error() {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--database-url", "mysql://nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mysql") || stderr.contains("database"),
        "{stderr}"
    );
}

fn write_web_app(dir: &Path) {
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>SecureChat</title>",
    )
    .unwrap();
    std::fs::write(dir.join("app.js"), "console.log('hi');").unwrap();
}

/// `--web-dir` serves the app at `/`, the API keeps its routes and typed errors, unknown
/// paths get the typed 404, and nothing outside the directory is reachable.
#[actix_web::test]
async fn web_dir_is_served_beside_the_api() {
    let web = temp_dir("sc_web");
    write_web_app(&web);
    let dir = web.clone();
    let relay = TestRelay::start_configured(Backend::Sqlite, false, move |c| {
        c.web_dir = Some(dir);
    })
    .await
    .unwrap();
    let client = relay.client();

    let index = client.get(relay.url("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(index.headers().contains_key("content-security-policy"));
    assert!(index.text().await.unwrap().contains("SecureChat"));

    let js = client.get(relay.url("/app.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );

    let health = client.get(relay.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let doc = client
        .get(relay.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);

    assert_error(
        client.get(relay.url("/missing.js")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_error(
        client.get(relay.url("/api/v1/nope")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    for escape in ["/../Cargo.toml", "/%2e%2e/Cargo.toml", "/..%2fCargo.toml"] {
        let resp = client.get(relay.url(escape)).send().await.unwrap();
        assert_ne!(resp.status(), 200, "{escape} must not escape the web dir");
    }
    relay.stop().await;
    let _ = std::fs::remove_dir_all(&web);
}

#[test]
fn a_web_dir_without_index_html_is_refused_at_startup() {
    let empty = temp_dir("sc_web_empty");
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!("sqlite://{}/x.db", empty.display()))
        .arg("--web-dir")
        .arg(&empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("index.html"));
    let _ = std::fs::remove_dir_all(&empty);
}

/// Strict CORS: only configured origins get `Access-Control-Allow-Origin`, with credentials;
/// a preflight from any other origin is refused. Security headers are on every response.
#[actix_web::test]
async fn cors_is_strict_and_security_headers_are_set() {
    let relay = TestRelay::start_configured(Backend::Sqlite, false, |c| {
        c.allowed_origins = vec!["https://chat.example.org".into()];
    })
    .await
    .unwrap();
    let client = relay.client();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, relay.url("/api/v1/sessions"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://chat.example.org").await.unwrap();
    assert!(ok.status().is_success(), "{}", ok.status());
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://chat.example.org"
    );
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");

    let evil = preflight("https://evil.example.com").await.unwrap();
    assert!(!evil.status().is_success(), "{}", evil.status());
    assert!(!evil.headers().contains_key("access-control-allow-origin"));

    let simple = client
        .get(relay.url("/healthz"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(!simple.headers().contains_key("access-control-allow-origin"));

    let resp = client.get(relay.url("/api/v1/me")).send().await.unwrap();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(resp.headers()[name], value, "{name}");
    }
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    relay.stop().await;
}

/// `securechat-relay backup FILE` writes a consistent copy of a live SQLite database — what
/// still sits in the write-ahead log included — that another relay starts on; it never
/// overwrites a file, and on PostgreSQL it points to `pg_dump`.
#[actix_web::test]
async fn backup_copies_a_live_sqlite_database() {
    let relay = TestRelay::start(Backend::Sqlite).await.unwrap();
    relay.register("ada@example.org", "ada").await;
    let database_url = relay.state.config.database_url.clone();
    let dir = temp_dir("sc_backup");
    let file = dir.join("securechat-backup.db");

    let out = Command::new(BIN)
        .args(["--database-url", &database_url, "backup"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("backup written"), "{stdout}");

    // A relay on the copy knows Ada.
    let mut command = Command::new(BIN);
    command
        .args(["--database-url", &format!("sqlite://{}", file.display())])
        .arg("--secret-key-file")
        .arg(dir.join("secret.key"))
        .arg("--mail-url")
        .arg(format!("file://{}", dir.join("outbox").display()))
        .env("SECURECHAT_DISABLE_RATE_LIMITS", "true")
        .env("SECURECHAT_DB_WAIT_SECS", "120")
        .stderr(Stdio::null());
    let (mut child, base) = common::spawn_relay(command);
    wait_healthy(&format!("{base}/healthz"), &mut child).await;
    let login = reqwest::Client::new()
        .post(format!("{base}/api/v1/sessions"))
        .json(&serde_json::json!({"email": "ada@example.org", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(login.status(), 200, "the copy holds Ada's account");

    // Never over an existing file; PostgreSQL has its own tool.
    let again = Command::new(BIN)
        .args(["--database-url", &database_url, "backup"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let pg = Command::new(BIN)
        .args([
            "--database-url",
            "postgres://postgres@127.0.0.1/test",
            "backup",
        ])
        .arg(dir.join("pg.db"))
        .output()
        .unwrap();
    assert!(!pg.status.success());
    assert!(String::from_utf8_lossy(&pg.stderr).contains("pg_dump"));
    assert!(!dir.join("pg.db").exists());
    relay.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue #12 item 16: `--help` shows which environment variable sets a flag, never its value
/// when that value may hold a password (database and mail URLs).
#[test]
fn help_does_not_print_secret_environment_values() {
    let out = Command::new(BIN)
        .arg("--help")
        .env("DATABASE_URL", "postgres://relay:db-pw-7f3a@127.0.0.1/chat")
        .env(
            "SECURECHAT_MAIL_URL",
            "smtps://relay:mail-pw-91c2@mail.example.org:465",
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("DATABASE_URL"), "{help}");
    for secret in ["db-pw-7f3a", "mail-pw-91c2"] {
        assert!(!help.contains(secret), "--help prints {secret}");
    }
}

/// Issue #12 item 16: the access log shows requests to attachments without their ids (an id
/// is the capability to download the ciphertext).
#[actix_web::test]
async fn access_log_leaves_out_attachment_ids() {
    let dir = temp_dir("sc_log");
    let mut command = Command::new(BIN);
    command
        .current_dir(&dir)
        .env_remove("DATABASE_URL")
        .env("SECURECHAT_LOG", "info")
        .env("SECURECHAT_DISABLE_RATE_LIMITS", "true")
        .stderr(Stdio::piped());
    let (mut child, base) = common::spawn_relay(command);
    wait_healthy(&format!("{base}/healthz"), &mut child).await;
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/api/v1/accounts"))
        .json(&serde_json::json!({"email": "logs@example.org", "password": common::PASSWORD, "ms_id": "logs", "display_name": "Logs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/sessions"))
        .json(&serde_json::json!({"email": "logs@example.org", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let uploaded: serde_json::Value = http
        .post(format!("{base}/api/v1/attachments"))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = uploaded["id"].as_str().unwrap().to_owned();
    let got = http
        .get(format!("{base}/api/v1/attachments/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let _ = got.bytes().await;
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("GET /api/v1/attachments/"),
        "the download is in the access log: {log}"
    );
    assert!(
        !log.contains(&id),
        "the access log holds the attachment id: {log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
