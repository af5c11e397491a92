//! `GET /metrics`, on SQLite and PostgreSQL: the exposition parses (HELP and TYPE for every
//! family, `name{labels} value` samples, `# EOF`), the envelope counters, the latency
//! histogram and the connections gauge follow an online send and ack, and the queue depth
//! counts envelopes waiting for an offline device. Off unless `--metrics`, and not in the
//! OpenAPI document.
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
use futures_util::{SinkExt, StreamExt};
use relay_server::api::error::ApiError;
use relay_server::db::schema::{devices, friendships};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(15);

const FAMILIES: [(&str, &str); 9] = [
    ("securechat_ws_connections", "gauge"),
    ("securechat_envelopes_received", "counter"),
    ("securechat_envelopes_delivered", "counter"),
    ("securechat_envelopes_acked", "counter"),
    ("securechat_queue_depth", "gauge"),
    ("securechat_delivery_latency_seconds", "histogram"),
    ("securechat_http_requests", "counter"),
    ("securechat_writer_batch_jobs", "histogram"),
    ("securechat_writer_jobs", "counter"),
];

/// A parsed exposition: samples by `name{labels}` (exactly as written), and the families that
/// have HELP and TYPE lines.
#[derive(Debug)]
struct Scrape {
    samples: BTreeMap<String, f64>,
    help: BTreeSet<String>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn get(&self, key: &str) -> f64 {
        *self
            .samples
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key} in {:#?}", self.samples))
    }
}

/// Parses the text format strictly enough to catch a malformed line.
fn parse(text: &str) -> Scrape {
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let mut samples = BTreeMap::new();
    let mut help = BTreeSet::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').expect("HELP name text");
            assert!(!doc.is_empty(), "{line}");
            help.insert(name.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "unexpected type in {line}"
            );
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line}");
        let (key, value) = line.rsplit_once(' ').expect("sample: name{labels} value");
        let name = match key.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("labels end with }");
                for pair in labels.split(',') {
                    let (k, v) = pair.split_once('=').expect("label k=\"v\"");
                    assert!(
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    );
                    assert!(
                        v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                        "{line}"
                    );
                }
                name
            }
            None => key,
        };
        assert!(
            name.starts_with("securechat_")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = FAMILIES
            .iter()
            .map(|(f, _)| *f)
            .find(|f| {
                name == *f
                    || name
                        .strip_prefix(f)
                        .is_some_and(|s| ["_total", "_bucket", "_sum", "_count"].contains(&s))
            })
            .unwrap_or_else(|| panic!("sample of an unknown family: {line}"));
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        assert!(
            samples.insert(key.to_owned(), value).is_none(),
            "repeated {line}"
        );
    }
    Scrape {
        samples,
        help,
        types,
    }
}

async fn scrape(relay: &TestRelay) -> Scrape {
    let resp = relay
        .client()
        .get(relay.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        ctype.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ctype}"
    );
    parse(&resp.text().await.unwrap())
}

/// Scrapes until the connections gauge reads `n` (a closed socket's task ends shortly after).
async fn connections_become(relay: &TestRelay, n: f64) {
    common::eventually(&format!("the connections gauge reads {n}"), || async {
        scrape(relay).await.get("securechat_ws_connections") == n
    })
    .await;
}

// --- users, friends, devices and a WebSocket client (as in tests/delivery.rs) ---

struct User {
    id: i64,
    token: String,
}

async fn user(relay: &TestRelay, ms_id: &str) -> User {
    let email = format!("{ms_id}@example.org");
    let created = relay.register(&email, ms_id).await;
    let (token, _) = relay.token(&email).await;
    User {
        id: created["user_id"].as_i64().unwrap(),
        token,
    }
}

async fn device(relay: &TestRelay, user_id: i64) -> i64 {
    let key = common::unique_name("identity").into_bytes();
    relay
        .state
        .db
        .run(move |conn| {
            Ok::<_, ApiError>(
                diesel::insert_into(devices::table)
                    .values((
                        devices::user_id.eq(user_id),
                        devices::identity_key.eq(key),
                        devices::name.eq("test device"),
                        devices::created_at.eq(0_i64),
                    ))
                    .returning(devices::id)
                    .get_result::<i64>(conn)?,
            )
        })
        .await
        .unwrap()
}

struct Pair {
    a: User,
    b: User,
    dev_a: i64,
    dev_b: i64,
}

async fn friends(relay: &TestRelay) -> Pair {
    let a = user(relay, "alice").await;
    let b = user(relay, "bob").await;
    let (low, high) = (a.id.min(b.id), a.id.max(b.id));
    relay
        .state
        .db
        .run(move |conn| {
            diesel::insert_into(friendships::table)
                .values((
                    friendships::user_low.eq(low),
                    friendships::user_high.eq(high),
                    friendships::created_at.eq(0_i64),
                ))
                .execute(conn)
                .map_err(ApiError::from)
        })
        .await
        .unwrap();
    let dev_a = device(relay, a.id).await;
    let dev_b = device(relay, b.id).await;
    Pair { a, b, dev_a, dev_b }
}

struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Opens a connection and reads its backlog up to `queue_empty`.
async fn open(relay: &TestRelay, who: &User, device_id: i64) -> (Ws, Vec<Value>) {
    let url = format!("{}/api/v1/ws", relay.base.replacen("http://", "ws://", 1));
    let mut req = url.into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", who.token)).unwrap(),
    );
    h.insert(
        "x-securechat-device",
        HeaderValue::from_str(&device_id.to_string()).unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut ws = Ws { socket };
    let mut backlog = Vec::new();
    loop {
        let v = ws.frame().await;
        match v["type"].as_str() {
            Some("envelope") => backlog.push(v),
            Some("queue_empty") => return (ws, backlog),
            _ => panic!("unexpected frame in backlog: {v}"),
        }
    }
}

impl Ws {
    async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    /// The next text frame, skipping presence.
    async fn frame(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("timed out waiting for a frame");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["type"] != "presence" {
                        return v;
                    }
                }
                Some(Ok(Message::Close(f))) => panic!("unexpected close {f:?}"),
                None | Some(Err(_)) => panic!("connection lost"),
                Some(Ok(_)) => {}
            }
        }
    }

    async fn expect(&mut self, kind: &str) -> Value {
        let v = self.frame().await;
        assert_eq!(v["type"], kind, "expected {kind}, got {v}");
        v
    }

    async fn send_msg(&mut self, id: &str, to_device: i64) {
        self.send(json!({"v": 1, "type": "send", "id": id, "to_device": to_device, "kind": 1, "ciphertext": B64.encode(b"sealed")}))
            .await;
    }

    async fn ack(&mut self, envelopes: &[Value]) {
        let ids: Vec<&Value> = envelopes.iter().map(|e| &e["eid"]).collect();
        self.send(json!({"v": 1, "type": "ack", "ids": ids})).await;
    }

    async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

// --- tests ---

/// Every family has HELP and TYPE; samples parse; a fresh relay starts from zero.
async fn exposition_parses(relay: &TestRelay) {
    // The first scrape: no HTTP response finished yet, so the (labelled) request counter has
    // no sample and no lines; the second one has.
    let s = scrape(relay).await;
    assert!(!s.types.contains_key("securechat_http_requests"));
    let s = scrape(relay).await;
    for (family, kind) in FAMILIES {
        assert!(s.help.contains(family), "no HELP for {family}");
        assert_eq!(
            s.types.get(family).map(String::as_str),
            Some(kind),
            "TYPE of {family}"
        );
    }
    for key in [
        "securechat_ws_connections",
        "securechat_envelopes_received_total",
        "securechat_envelopes_delivered_total",
        "securechat_envelopes_acked_total",
        "securechat_queue_depth",
        "securechat_delivery_latency_seconds_count",
        "securechat_delivery_latency_seconds_sum",
    ] {
        assert_eq!(s.get(key), 0.0, "{key} on a fresh relay");
    }
    assert_eq!(
        s.get("securechat_delivery_latency_seconds_bucket{le=\"+Inf\"}"),
        0.0
    );
    assert!(
        s.samples
            .contains_key("securechat_delivery_latency_seconds_bucket{le=\"0.0005\"}")
    );
    assert!(
        s.samples
            .contains_key("securechat_delivery_latency_seconds_bucket{le=\"5.0\"}")
    );
    assert_eq!(s.get("securechat_http_requests_total{code=\"200\"}"), 1.0);
}

/// A→B online: received, delivered, acked and the latency count each go up by one; the
/// connections gauge follows the open sockets.
async fn online_send_and_ack(relay: &TestRelay) {
    let p = friends(relay).await;
    let (mut b, _) = open(relay, &p.b, p.dev_b).await;
    let (mut a, _) = open(relay, &p.a, p.dev_a).await;
    connections_become(relay, 2.0).await;

    a.send_msg("m1", p.dev_b).await;
    a.expect("accepted").await;
    let env = b.expect("envelope").await;
    b.ack(std::slice::from_ref(&env)).await;
    a.expect("delivered").await;

    let s = scrape(relay).await;
    assert_eq!(s.get("securechat_envelopes_received_total"), 1.0);
    assert_eq!(s.get("securechat_envelopes_delivered_total"), 1.0);
    assert_eq!(s.get("securechat_envelopes_acked_total"), 1.0);
    assert_eq!(s.get("securechat_delivery_latency_seconds_count"), 1.0);
    assert_eq!(
        s.get("securechat_delivery_latency_seconds_bucket{le=\"+Inf\"}"),
        1.0
    );
    // One live push: its latency is a real, positive duration (no upper bound: a loaded
    // machine may take any time between the commit and the push).
    let latency = s.get("securechat_delivery_latency_seconds_sum");
    assert!(latency > 0.0, "latency {latency}");
    // The send and the ack went through the writer, and both were committed.
    assert_eq!(s.get("securechat_writer_jobs_total"), 2.0);
    assert_eq!(s.get("securechat_writer_batch_jobs_sum"), 2.0);
    assert_eq!(s.get("securechat_queue_depth"), 0.0);
    assert_eq!(s.get("securechat_ws_connections"), 2.0);

    a.close().await;
    connections_become(relay, 1.0).await;
    b.close().await;
    connections_become(relay, 0.0).await;
}

/// Five envelopes to an offline device: queue depth 5, nothing delivered; B drains and acks:
/// queue depth 0, delivered 5 (from the backlog: no latency samples), acked 5.
async fn queue_depth_counts_offline_envelopes(relay: &TestRelay) {
    let p = friends(relay).await;
    let (mut a, _) = open(relay, &p.a, p.dev_a).await;
    for i in 0..5 {
        a.send_msg(&format!("m{i}"), p.dev_b).await;
        a.expect("accepted").await;
    }
    // A retry of a queued envelope is not received twice.
    a.send_msg("m0", p.dev_b).await;
    a.expect("accepted").await;

    let s = scrape(relay).await;
    assert_eq!(s.get("securechat_queue_depth"), 5.0);
    assert_eq!(s.get("securechat_envelopes_received_total"), 5.0);
    assert_eq!(s.get("securechat_envelopes_delivered_total"), 0.0);

    let (mut b, backlog) = open(relay, &p.b, p.dev_b).await;
    assert_eq!(backlog.len(), 5);
    let s = scrape(relay).await;
    assert_eq!(
        s.get("securechat_queue_depth"),
        5.0,
        "delivered is not acked"
    );
    assert_eq!(s.get("securechat_envelopes_delivered_total"), 5.0);

    b.ack(&backlog).await;
    for _ in 0..5 {
        a.expect("delivered").await;
    }
    let s = scrape(relay).await;
    assert_eq!(s.get("securechat_queue_depth"), 0.0);
    assert_eq!(s.get("securechat_envelopes_acked_total"), 5.0);
    assert_eq!(s.get("securechat_delivery_latency_seconds_count"), 0.0);
    a.close().await;
    b.close().await;
}

on_both_backends!(
    exposition_parses,
    online_send_and_ack,
    queue_depth_counts_offline_envelopes
);

/// Without `--metrics` the path is not routed.
#[actix_web::test]
async fn off_without_the_flag() {
    let relay = TestRelay::start_configured(Backend::Sqlite, false, |c| c.metrics = false)
        .await
        .unwrap();
    let resp = relay
        .client()
        .get(relay.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    relay.stop().await;
}

/// Not part of the API: absent from the OpenAPI document.
#[test]
fn not_in_the_openapi_document() {
    let doc = serde_json::to_value(relay_server::server::openapi_document()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(!paths.keys().any(|p| p.contains("metrics")), "{paths:?}");
}
