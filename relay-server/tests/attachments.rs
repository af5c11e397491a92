//! Encrypted attachments over real HTTP, on SQLite and PostgreSQL: a crypto-core attachment
//! ciphertext goes up and comes back byte for byte; caps, quota, expiry, ownership and bad ids
//! get typed errors; nothing refused leaves a file or a row; and no trace of the plaintext
//! reaches the blob store.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Backend, TestRelay, assert_error};
use crypto_core::attachment::{decrypt_attachment, encrypt_attachment};
use diesel::prelude::*;
use relay_server::api::error::ApiError;
use relay_server::db::schema::attachments;
use serde_json::Value;

const MIB: usize = 1024 * 1024;

async fn user(relay: &TestRelay, name: &str) -> String {
    relay.register(&format!("{name}@example.org"), name).await;
    relay.token(&format!("{name}@example.org")).await.0
}

async fn upload(relay: &TestRelay, token: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut req = relay
        .client()
        .post(relay.url("/api/v1/attachments"))
        .header("content-type", "application/octet-stream")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn download(relay: &TestRelay, token: Option<&str>, id: &str) -> reqwest::Response {
    let mut req = relay
        .client()
        .get(relay.url(&format!("/api/v1/attachments/{id}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// Files in the blob directory (finished and temporary).
fn blob_files(relay: &TestRelay) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(&relay.state.config.blob_dir) {
        Ok(dir) => dir.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

async fn rows(relay: &TestRelay) -> i64 {
    relay
        .state
        .db
        .run(|conn| {
            attachments::table
                .count()
                .get_result::<i64>(conn)
                .map_err(ApiError::from)
        })
        .await
        .unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn round_trip_without_plaintext(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    let marker = b"TOP-SECRET-PLAINTEXT-MARKER-4f1c";
    let mut plaintext = Vec::with_capacity(3 * MIB);
    while plaintext.len() < 3 * MIB {
        plaintext.extend_from_slice(marker);
    }
    let (ciphertext, info) = encrypt_attachment(&plaintext).unwrap();

    let resp = upload(relay, Some(&alice), ciphertext.clone()).await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created["size"].as_u64().unwrap(), ciphertext.len() as u64);

    // Any signed-in user holding the id (it travels inside an encrypted message) downloads it.
    let resp = download(relay, Some(&bob), &id).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let fetched = resp.bytes().await.unwrap();
    assert_eq!(fetched.as_ref(), ciphertext.as_slice());
    let opened = decrypt_attachment(&fetched, &info).unwrap();
    assert_eq!(opened.as_slice(), plaintext.as_slice());

    // Range requests work (resumable downloads).
    let part = relay
        .client()
        .get(relay.url(&format!("/api/v1/attachments/{id}")))
        .bearer_auth(&bob)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &ciphertext[10..20]);

    // The blob store holds the ciphertext only.
    let files = blob_files(relay);
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = std::fs::read(&files[0]).unwrap();
    assert_eq!(stored, ciphertext);
    assert!(!contains(&stored, marker), "plaintext in the blob store");
    if let Some(path) = relay.state.config.database_url.strip_prefix("sqlite://") {
        let db = std::fs::read(path).unwrap();
        assert!(!contains(&db, marker), "plaintext in the database");
    }

    // Anonymous access is refused.
    assert_error(
        upload(relay, None, vec![1, 2, 3]).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(download(relay, None, &id).await, 401, "unauthorized").await;
}

async fn refusals_leave_nothing(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    // Over 25 MiB: refused, no file, no row.
    let big = vec![7u8; 25 * MIB + 1];
    assert_error(
        upload(relay, Some(&alice), big).await,
        413,
        "payload_too_large",
    )
    .await;
    // Empty.
    assert_error(
        upload(relay, Some(&alice), Vec::new()).await,
        400,
        "invalid_input",
    )
    .await;
    assert!(blob_files(relay).is_empty(), "{:?}", blob_files(relay));
    assert_eq!(rows(relay).await, 0);

    // Bad ids never reach the file system.
    for bad in [
        "..%2F..%2Fetc%2Fpasswd",
        "ABCDEF0123456789ABCDEF0123456789",
        "1234",
        "zz",
    ] {
        let resp = download(relay, Some(&alice), bad).await;
        assert_error(resp, 400, "invalid_input").await;
    }
    let unknown = "0123456789abcdef0123456789abcdef";
    assert_error(
        download(relay, Some(&alice), unknown).await,
        404,
        "not_found",
    )
    .await;

    // Only the owner deletes; for anyone else it does not exist.
    let resp = upload(relay, Some(&alice), vec![9u8; 1000]).await;
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let del = |token: String, id: String| {
        let client = relay.client();
        let url = relay.url(&format!("/api/v1/attachments/{id}"));
        async move { client.delete(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_error(del(bob.clone(), id.clone()).await, 404, "not_found").await;
    assert_eq!(del(alice.clone(), id.clone()).await.status(), 204);
    assert_error(download(relay, Some(&bob), &id).await, 404, "not_found").await;
    assert!(blob_files(relay).is_empty());
    assert_eq!(rows(relay).await, 0);
}

async fn quota_and_expiry(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    // The harness relay has the default 250 MiB quota: fill 10 × 25 MiB, then one more byte.
    let chunk = vec![3u8; 25 * MIB];
    let mut first = String::new();
    for i in 0..10 {
        let resp = upload(relay, Some(&alice), chunk.clone()).await;
        assert_eq!(resp.status(), 201, "upload {i}");
        if i == 0 {
            first = resp.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
        }
    }
    assert_error(
        upload(relay, Some(&alice), vec![1]).await,
        413,
        "quota_exceeded",
    )
    .await;
    assert_eq!(rows(relay).await, 10);
    assert_eq!(blob_files(relay).len(), 10, "a refused upload left a file");

    // After the TTL the attachments are gone for downloaders, then pruned from disk, and the
    // quota is free again.
    let ttl = i64::try_from(relay.state.config.attachment_ttl_days * 86_400).unwrap();
    relay.clock().advance(ttl + 1);
    let alice = relay.token("alice@example.org").await.0;
    assert_error(
        download(relay, Some(&alice), &first).await,
        404,
        "not_found",
    )
    .await;
    let pruned = relay_server::services::attachments::prune_expired(&relay.state)
        .await
        .unwrap();
    assert_eq!(pruned, 10);
    assert!(blob_files(relay).is_empty());
    assert_eq!(upload(relay, Some(&alice), vec![1]).await.status(), 201);
}

on_both_backends!(
    round_trip_without_plaintext,
    refusals_leave_nothing,
    quota_and_expiry
);

/// A relay whose accounts may hold 1 MiB of attachments.
async fn small_quota_relay(backend: Backend, rate_limits: bool) -> Option<TestRelay> {
    TestRelay::start_configured(backend, rate_limits, |c| c.attachment_quota_mib = 1).await
}

fn status_and_code(status: u16, body: &Value) -> (u16, String) {
    (status, body["error"].as_str().unwrap_or("").to_owned())
}

/// Parallel uploads cannot overrun the quota together (issue #12, item 3): of six 900 KiB
/// uploads against 1 MiB, exactly one is stored; the others leave no file and no row.
async fn parallel_uploads_share_the_quota(backend: Backend) {
    let Some(relay) = small_quota_relay(backend, false).await else {
        return;
    };
    let alice = user(&relay, "alice").await;
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (client, url, token) = (
            relay.client(),
            relay.url("/api/v1/attachments"),
            alice.clone(),
        );
        racers.spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/octet-stream")
                .body(vec![5u8; 900 * 1024])
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            status_and_code(status, &body)
        });
    }
    let mut results = racers.join_all().await;
    results.sort();
    assert_eq!(results[0], (201, String::new()), "{results:?}");
    for r in &results[1..] {
        assert_eq!(r, &(413, "quota_exceeded".to_owned()), "{results:?}");
    }
    assert_eq!(rows(&relay).await, 1);
    assert_eq!(blob_files(&relay).len(), 1, "{:?}", blob_files(&relay));
    relay.stop().await;
}

#[actix_web::test]
async fn parallel_uploads_share_the_quota_sqlite() {
    parallel_uploads_share_the_quota(Backend::Sqlite).await;
}

#[actix_web::test]
async fn parallel_uploads_share_the_quota_postgres() {
    parallel_uploads_share_the_quota(Backend::Postgres).await;
}

/// The quota is checked again when the upload is recorded: bytes another relay (sharing the
/// database) stored while this upload streamed count, and the late upload is refused without
/// leaving a file.
async fn quota_rechecked_at_insert(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(relay) = small_quota_relay(backend, false).await else {
        return;
    };
    let created = relay.register("alice@example.org", "alice").await;
    let owner = created["user_id"].as_i64().unwrap();
    let alice = relay.token("alice@example.org").await.0;
    let size = 600 * 1024;
    let address = relay.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/attachments HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {alice}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![1u8; 100 * 1024]).await.unwrap();
    stream.flush().await.unwrap();
    // The upload is streaming once its temporary file holds bytes.
    common::eventually("the upload streams to its temporary file", || {
        let files = blob_files(&relay);
        async move {
            files
                .iter()
                .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        }
    })
    .await;
    // Meanwhile "another relay" records 600 KiB for the same account.
    let now = relay.clock().now();
    relay
        .state
        .db
        .run(move |conn| {
            diesel::insert_into(attachments::table)
                .values((
                    attachments::id.eq("0123456789abcdef0123456789abcdef"),
                    attachments::owner_id.eq(owner),
                    attachments::size.eq(600 * 1024_i64),
                    attachments::created_at.eq(now),
                    attachments::expires_at.eq(now + 86_400),
                ))
                .execute(conn)
                .map_err(ApiError::from)
        })
        .await
        .unwrap();
    stream
        .write_all(&vec![1u8; size - 100 * 1024])
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 413"),
        "the late upload was not refused: {response}"
    );
    assert!(response.contains("quota_exceeded"), "{response}");
    assert_eq!(rows(&relay).await, 1, "only the other relay's row");
    assert!(blob_files(&relay).is_empty(), "{:?}", blob_files(&relay));
    relay.stop().await;
}

#[actix_web::test]
async fn quota_rechecked_at_insert_sqlite() {
    quota_rechecked_at_insert(Backend::Sqlite).await;
}

#[actix_web::test]
async fn quota_rechecked_at_insert_postgres() {
    quota_rechecked_at_insert(Backend::Postgres).await;
}

/// Deleting the account deletes its attachment files, not only their rows.
async fn account_deletion_removes_files(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let bob = user(relay, "bob").await;
    for _ in 0..2 {
        assert_eq!(
            upload(relay, Some(&alice), vec![4u8; 1000]).await.status(),
            201
        );
    }
    let kept = upload(relay, Some(&bob), vec![6u8; 1000]).await;
    assert_eq!(kept.status(), 201);
    let kept = kept.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(blob_files(relay).len(), 3);
    let resp = relay
        .client()
        .delete(relay.url("/api/v1/me"))
        .bearer_auth(&alice)
        .json(&serde_json::json!({"password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(rows(relay).await, 1);
    let files = blob_files(relay);
    assert_eq!(files.len(), 1, "alice's files are left: {files:?}");
    assert!(files[0].ends_with(&kept));
}

/// Files without a row (a crash between writing and recording, a deletion whose file removal
/// failed) are swept once they are an hour old; live blobs, and files that are not blobs, stay.
async fn orphan_files_swept(relay: &TestRelay) {
    let alice = user(relay, "alice").await;
    let live = upload(relay, Some(&alice), vec![8u8; 1000]).await;
    let live = live.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = relay.state.config.blob_dir.clone();
    let orphan = dir.join("00000000000000000000000000000001");
    let stale_tmp = dir.join("tmp-00000000000000000000000000000002");
    let other = dir.join("README.txt");
    for path in [&orphan, &stale_tmp, &other] {
        std::fs::write(path, b"left behind").unwrap();
    }
    let sweep = || relay_server::services::attachments::sweep_orphans(&relay.state);
    // Fresh files may belong to an upload still being recorded: kept.
    assert_eq!(sweep().await.unwrap(), 0);
    assert_eq!(blob_files(relay).len(), 4);
    relay.clock().advance(2 * 3600);
    assert_eq!(sweep().await.unwrap(), 2);
    let mut left: Vec<String> = blob_files(relay)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected = vec![live.clone(), "README.txt".to_owned()];
    expected.sort();
    assert_eq!(left, expected);
    let alice = relay.token("alice@example.org").await.0;
    assert_eq!(download(relay, Some(&alice), &live).await.status(), 200);
}

on_both_backends!(account_deletion_removes_files, orphan_files_swept);

/// Uploads are rate limited per account: 60 an hour, then 429 with `Retry-After`.
async fn uploads_rate_limited(backend: Backend) {
    let Some(relay) = TestRelay::start_with(backend, true).await else {
        return;
    };
    let alice = user(&relay, "alice").await;
    for i in 0..60 {
        assert_eq!(
            upload(&relay, Some(&alice), vec![1u8; 16]).await.status(),
            201,
            "upload {i}"
        );
    }
    let resp = upload(&relay, Some(&alice), vec![1u8; 16]).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_error(resp, 429, "rate_limited").await;
    assert_eq!(rows(&relay).await, 60);
    let bob = user(&relay, "bob").await;
    assert_eq!(
        upload(&relay, Some(&bob), vec![1u8; 16]).await.status(),
        201
    );
    relay.stop().await;
}

#[actix_web::test]
async fn uploads_rate_limited_sqlite() {
    uploads_rate_limited(Backend::Sqlite).await;
}

#[actix_web::test]
async fn uploads_rate_limited_postgres() {
    uploads_rate_limited(Backend::Postgres).await;
}
