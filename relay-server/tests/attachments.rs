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
