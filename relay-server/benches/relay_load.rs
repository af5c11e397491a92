//! Relay load generator (issue #4): `cargo xtask bench relay`, or directly
//! `cargo bench --profile release -p relay-server --bench relay_load -- [OPTIONS]`.
//!
//! Starts the real `securechat-relay` binary (release build) on a fresh SQLite file and, when
//! PostgreSQL answers at `postgres://postgres@127.0.0.1:5432`, on a fresh `sc_bench_*`
//! database (dropped afterwards), with rate limits off, and measures over loopback:
//!
//! 1. idle: `--idle` WebSockets (one device each) held open, relay RSS (SQLite run only);
//! 2. throughput: `--pairs` sender → recipient device pairs, each sender pipelining `send`
//!    frames with at most `--window` unanswered for `--seconds`, recipients acknowledging in
//!    batches: delivered envelopes/s, end-to-end latency (the ciphertext carries a sequence
//!    number and the send time), loss (accepted but not delivered after a drain period);
//! 3. fixed rate: the same at `--rate` envelopes/s in total for `--rate-seconds`, for p99;
//! 4. baseline: the same client code against a bare actix-ws echo server (this binary
//!    re-executed with `--echo-server`), for the relay/echo ratio.
//!
//! Prints a table and writes it to `--out` (default `target/bench-relay.txt`).
// A load generator, like a test: a broken setup (relay not starting, a refused handshake)
// aborts the run with a message, so unwrap/expect/panic/indexing are allowed here.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use diesel::prelude::*;
use futures_util::{SinkExt, StreamExt};
use relay_server::api::error::ApiError;
use relay_server::db::Db;
use relay_server::db::schema::{devices, envelopes, friendships};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";
const PG_BASE_URL: &str = "postgres://postgres@127.0.0.1:5432";
const PASSWORD: &str = "correct horse battery staple 42";
/// Longest wait for a handshake or the relay to become healthy.
const WAIT: Duration = Duration::from_secs(60);
/// After the senders stop, the drain waits for what was accepted until nothing arrives for
/// this long (an overloaded relay works through its backlog first).
const DRAIN: Duration = Duration::from_secs(5);
/// Ciphertext size (sequence number, send time, padding).
const PAYLOAD: usize = 256;
/// Recipients acknowledge this many envelopes at once (or whatever they have after 2 ms idle).
const ACK_BATCH: usize = 100;

const GOAL_THROUGHPUT: f64 = 20_000.0;
const GOAL_P99_MS: f64 = 5.0;
const GOAL_IDLE_MB: f64 = 300.0;
const GOAL_RATE: f64 = 10_000.0;

#[derive(Debug, Clone)]
struct Args {
    relay_bin: PathBuf,
    seconds: f64,
    rate: f64,
    rate_seconds: f64,
    pairs: usize,
    window: usize,
    idle: usize,
    out: PathBuf,
    postgres: bool,
}

fn parse_args() -> Option<Args> {
    let mut a = Args {
        relay_bin: PathBuf::from(env!("CARGO_BIN_EXE_securechat-relay")),
        seconds: 10.0,
        rate: GOAL_RATE,
        rate_seconds: 10.0,
        pairs: 8,
        window: 64,
        idle: 10_000,
        out: PathBuf::from("target/bench-relay.txt"),
        postgres: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--echo-server" => {
                run_echo_server(&val());
                return None;
            }
            "--relay-bin" => a.relay_bin = PathBuf::from(val()),
            "--seconds" => a.seconds = val().parse().expect("--seconds"),
            "--rate" => a.rate = val().parse().expect("--rate"),
            "--rate-seconds" => a.rate_seconds = val().parse().expect("--rate-seconds"),
            "--pairs" => a.pairs = val().parse().expect("--pairs"),
            "--window" => a.window = val().parse().expect("--window"),
            "--idle" => a.idle = val().parse().expect("--idle"),
            "--out" => a.out = PathBuf::from(val()),
            "--no-postgres" => a.postgres = false,
            // cargo bench passes `--bench` to harness = false targets.
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    Some(a)
}

fn main() {
    let Some(args) = parse_args() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(args));
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The base URL the relay prints on stdout once it has bound its port.
fn listening_on(child: &mut Child) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(base) = line.strip_prefix("SecureChat relay listening on ") {
                let _ = tx.send(base.to_owned());
            }
        }
    });
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|e| panic!("the relay never said where it listens: {e}"))
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// (VmRSS, VmHWM) of a process in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Soft limit of open files of this process.
fn nofile_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

// ---------------------------------------------------------------------------------------------
// The relay process and its database

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Relay {
    child: Child,
    base: String,
    database_url: String,
    pg_database: Option<String>,
    sqlite_path: Option<PathBuf>,
    outbox: PathBuf,
}

impl Relay {
    async fn start(bin: &PathBuf, backend: Backend) -> Option<Self> {
        let (database_url, pg_database, sqlite_path) = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{}.db", unique("sc_bench")));
                (format!("sqlite://{}", path.display()), None, Some(path))
            }
            Backend::Postgres => {
                let mut admin = match PgConnection::establish(PG_ADMIN_URL) {
                    Ok(c) => c,
                    Err(e) => {
                        println!("PostgreSQL SKIPPED ({PG_ADMIN_URL}: {e})");
                        return None;
                    }
                };
                let name = unique("sc_bench");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create bench database");
                (
                    format!("{PG_BASE_URL}/{name}?sslmode=disable"),
                    Some(name),
                    None,
                )
            }
        };
        let outbox = std::env::temp_dir().join(unique("sc_bench_outbox"));
        // The relay needs two descriptors per connection (the socket and the duplicate it keeps
        // to shut down a stalled peer): raise its soft limit to the hard one. Every client
        // comes from 127.0.0.1: no per-address connection cap. Port 0: the relay binds a port
        // the OS picks and prints it.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@""#)
            .arg(bin)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--database-url")
            .arg(&database_url)
            .arg("--mail-url")
            .arg(format!("file://{}", outbox.display()))
            .arg("--max-connections-per-ip")
            .arg("0")
            .arg("--secret-key-file")
            .arg(outbox.with_extension("key"))
            .env("SECURECHAT_DISABLE_RATE_LIMITS", "true")
            .env("SECURECHAT_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let base = listening_on(&mut child);
        let mut relay = Self {
            child,
            base,
            database_url,
            pg_database,
            sqlite_path,
            outbox,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = relay.child.try_wait().unwrap() {
                panic!("relay exited early: {status}");
            }
            if let Ok(resp) = client.get(format!("{}/healthz", relay.base)).send().await
                && resp.status() == 200
            {
                return Some(relay);
            }
            assert!(Instant::now() < deadline, "relay did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn ws_url(&self) -> String {
        format!("{}/api/v1/ws", self.base.replacen("http://", "ws://", 1))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Registers and signs in; returns (user id, token).
    async fn user(&self, ms_id: &str) -> (i64, String) {
        let client = reqwest::Client::new();
        let email = format!("{ms_id}@example.org");
        let resp = client
            .post(format!("{}/api/v1/accounts", self.base))
            .json(&json!({"email": email, "password": PASSWORD, "ms_id": ms_id, "display_name": "Bench"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "register {ms_id}");
        let created: Value = resp.json().await.unwrap();
        let resp = client
            .post(format!("{}/api/v1/sessions", self.base))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login {ms_id}");
        let body: Value = resp.json().await.unwrap();
        (
            created["user_id"].as_i64().unwrap(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(name) = &self.pg_database
            && let Ok(mut admin) = PgConnection::establish(PG_ADMIN_URL)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        let _ = std::fs::remove_dir_all(&self.outbox);
    }
}

/// Inserts `n` devices of `user_id` (in chunks: SQLite binds at most 32766 values).
async fn insert_devices(db: &Db, user_id: i64, n: usize, tag: &str) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = (start + 500).min(n);
        let tag = tag.to_owned();
        // One row per statement (diesel's multi-backend connection has no batch insert with
        // RETURNING on SQLite), one transaction per chunk.
        let got = db
            .run(move |conn| {
                conn.transaction::<_, ApiError, _>(|conn| {
                    let mut got = Vec::with_capacity(end - start);
                    for i in start..end {
                        got.push(
                            diesel::insert_into(devices::table)
                                .values((
                                    devices::user_id.eq(user_id),
                                    devices::identity_key
                                        .eq(format!("{tag}-{user_id}-{i}").into_bytes()),
                                    devices::name.eq(format!("{tag}-{i}")),
                                    devices::created_at.eq(0_i64),
                                ))
                                .returning(devices::id)
                                .get_result::<i64>(conn)?,
                        );
                    }
                    Ok(got)
                })
            })
            .await
            .unwrap();
        ids.extend(got);
        start = end;
    }
    ids
}

/// Envelope rows queued (accepted, not acknowledged), 1 s after a phase (acks in flight).
async fn queued_rows(db: &Db) -> i64 {
    tokio::time::sleep(Duration::from_secs(1)).await;
    db.run(|conn| {
        envelopes::table
            .count()
            .get_result::<i64>(conn)
            .map_err(ApiError::from)
    })
    .await
    .unwrap()
}

async fn befriend(db: &Db, a: i64, b: i64) {
    let (low, high) = (a.min(b), a.max(b));
    db.run(move |conn| {
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
}

// ---------------------------------------------------------------------------------------------
// The client

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket the way a native client does (bearer token, device header, subprotocol).
async fn connect(url: &str, token: &str, device: i64) -> Socket {
    let mut req = url.into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h.insert(
        "x-securechat-device",
        HeaderValue::from_str(&device.to_string()).unwrap(),
    );
    h.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("securechat.v1"),
    );
    let (socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("WebSocket handshake timed out")
        .expect("WebSocket handshake");
    socket
}

/// Phase number, part of every `send` id: ids are idempotency keys, so an id reused while an
/// envelope with it is still queued would be answered `accepted` without a new envelope.
static PHASE: AtomicU64 = AtomicU64::new(0);

fn send_frame(phase: u64, seq: u64, to_device: i64) -> String {
    let mut bytes = vec![0_u8; PAYLOAD];
    bytes[..8].copy_from_slice(&seq.to_le_bytes());
    bytes[8..16].copy_from_slice(&now_ns().to_le_bytes());
    json!({
        "v": 1, "type": "send", "id": format!("p{phase}m{seq}"), "to_device": to_device,
        "kind": 1, "ciphertext": B64.encode(&bytes),
    })
    .to_string()
}

/// (sequence number, latency in µs) of a frame carrying one of our ciphertexts.
fn decode(v: &Value) -> Option<(u64, u64)> {
    let bytes = B64.decode(v["ciphertext"].as_str()?).ok()?;
    let seq = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let sent = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((seq, now_ns().saturating_sub(sent) / 1000))
}

/// Counters of one load phase.
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    accepted: AtomicU64,
    errors: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    reconnects: AtomicU64,
    ack_errors: AtomicU64,
    /// When the last envelope arrived (ns since `epoch`).
    last_delivery: AtomicU64,
    latencies: Mutex<Vec<u64>>,
    first_error: Mutex<Option<String>>,
}

/// One sender device: `send` frames to `to_device`, at most `window` unanswered, paced to
/// `rate` frames/s if given, until `stop`. Echo mode: the echoed frame is the delivery.
#[allow(clippy::too_many_arguments)]
async fn sender(
    socket: Socket,
    to_device: i64,
    window: usize,
    rate: Option<f64>,
    stop: Arc<AtomicBool>,
    c: Arc<Counters>,
    echo: bool,
) {
    let (mut sink, mut stream) = socket.split();
    let permits = Arc::new(Semaphore::new(window));
    let finished = Arc::new(AtomicU64::new(u64::MAX));
    let reader = {
        let permits = permits.clone();
        let finished = finished.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let mut answered = 0_u64;
            let mut lat = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut deadline = None::<Instant>;
            loop {
                let total = finished.load(Ordering::Acquire);
                if answered >= total {
                    break;
                }
                if total != u64::MAX {
                    let d = *deadline.get_or_insert_with(|| Instant::now() + DRAIN);
                    if Instant::now() > d {
                        break;
                    }
                }
                let before = answered;
                let msg = match tokio::time::timeout(Duration::from_millis(20), stream.next()).await
                {
                    Err(_) => continue,
                    Ok(None | Some(Err(_))) => break,
                    Ok(Some(Ok(Message::Text(t)))) => t,
                    Ok(Some(Ok(_))) => continue,
                };
                let v: Value = serde_json::from_str(msg.as_str()).unwrap();
                match v["type"].as_str() {
                    Some("accepted") => {
                        answered += 1;
                        c.accepted.fetch_add(1, Ordering::Relaxed);
                        permits.add_permits(1);
                    }
                    Some("send") if echo => {
                        answered += 1;
                        c.accepted.fetch_add(1, Ordering::Relaxed);
                        permits.add_permits(1);
                        if let Some((seq, us)) = decode(&v) {
                            if seen.insert(seq) {
                                c.delivered.fetch_add(1, Ordering::Relaxed);
                                lat.push(us);
                            } else {
                                c.duplicates.fetch_add(1, Ordering::Relaxed);
                            }
                            c.last_delivery.fetch_max(now_ns(), Ordering::Relaxed);
                        }
                    }
                    Some("error") => {
                        answered += 1;
                        c.errors.fetch_add(1, Ordering::Relaxed);
                        c.first_error.lock().unwrap().get_or_insert(v.to_string());
                        permits.add_permits(1);
                    }
                    _ => {}
                }
                if answered > before {
                    deadline = None;
                }
            }
            c.latencies.lock().unwrap().extend(lat);
            stream
        })
    };

    let started = Instant::now();
    let phase = PHASE.load(Ordering::Relaxed);
    let mut seq = 0_u64;
    'outer: while !stop.load(Ordering::Relaxed) {
        let due = rate.map_or(u64::MAX, |r| (started.elapsed().as_secs_f64() * r) as u64);
        if seq >= due {
            sink.flush().await.unwrap();
            tokio::time::sleep(Duration::from_micros(500)).await;
            continue;
        }
        let permit = match permits.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                sink.flush().await.unwrap();
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break 'outer;
                    }
                    if let Ok(p) =
                        tokio::time::timeout(Duration::from_millis(50), permits.acquire()).await
                    {
                        break p.unwrap();
                    }
                }
            }
        };
        permit.forget();
        sink.feed(Message::text(send_frame(phase, seq, to_device)))
            .await
            .unwrap();
        seq += 1;
        c.sent.fetch_add(1, Ordering::Relaxed);
    }
    sink.flush().await.unwrap();
    finished.store(seq, Ordering::Release);
    let stream = reader.await.unwrap();
    let mut socket = sink.reunite(stream).unwrap();
    let _ = socket.close(None).await;
}

/// How a recipient reconnects: (URL, token, device).
type Reconnect = (String, String, i64);

/// One recipient device: records each envelope, acknowledges in batches, until `stop`. Like
/// a real client it reconnects when the relay closes the connection (a client too slow for
/// its push queue is disconnected; the backlog comes again on the new connection).
async fn recipient(mut socket: Socket, again: Reconnect, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let mut pending: Vec<i64> = Vec::new();
    let mut lat = Vec::new();
    let mut seen = std::collections::HashSet::new();
    loop {
        let msg = match tokio::time::timeout(Duration::from_millis(2), socket.next()).await {
            Err(_) => None,
            Ok(None | Some(Err(_))) => {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                c.reconnects.fetch_add(1, Ordering::Relaxed);
                pending.clear();
                socket = connect(&again.0, &again.1, again.2).await;
                continue;
            }
            Ok(Some(Ok(Message::Text(t)))) => Some(t),
            Ok(Some(Ok(_))) => continue,
        };
        let idle = msg.is_none();
        if let Some(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == "envelope" {
                let (seq, us) = decode(&v).expect("a ciphertext of ours");
                let from = v["from_device"].as_i64().unwrap();
                if seen.insert((from, seq)) {
                    c.delivered.fetch_add(1, Ordering::Relaxed);
                    lat.push(us);
                } else {
                    c.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                c.last_delivery.fetch_max(now_ns(), Ordering::Relaxed);
                pending.push(v["eid"].as_i64().unwrap());
            } else if v["type"] == "error" {
                // The relay refused an ack (e.g. `unavailable`): those envelopes stay queued.
                c.ack_errors.fetch_add(1, Ordering::Relaxed);
                c.first_error.lock().unwrap().get_or_insert(v.to_string());
            }
        }
        if pending.len() >= ACK_BATCH || (idle && !pending.is_empty()) {
            let ack = json!({"v": 1, "type": "ack", "ids": std::mem::take(&mut pending)});
            // A failed send shows up as the end of the stream on the next read.
            let _ = socket.send(Message::text(ack.to_string())).await;
        }
        if idle && stop.load(Ordering::Relaxed) {
            break;
        }
    }
    c.latencies.lock().unwrap().extend(lat);
    let _ = socket.close(None).await;
}

/// Waits for `queue_empty` (the backlog is sent; what follows is live).
async fn wait_queue_empty(socket: &mut Socket) {
    loop {
        let msg = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("no queue_empty");
        if let Some(Ok(Message::Text(t))) = msg {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == "queue_empty" {
                return;
            }
        } else if !matches!(msg, Some(Ok(_))) {
            panic!("connection ended before queue_empty: {msg:?}");
        }
    }
}

/// Result of one load phase.
struct PhaseResult {
    sent: u64,
    accepted: u64,
    errors: u64,
    delivered: u64,
    duplicates: u64,
    reconnects: u64,
    ack_errors: u64,
    /// Envelope rows left in the database 1 s after the phase (accepted, never acknowledged).
    queued: i64,
    send_secs: f64,
    delivered_per_s: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    rss: (f64, f64),
    first_error: Option<String>,
}

impl PhaseResult {
    fn loss(&self) -> i64 {
        i64::try_from(self.accepted).unwrap_or(i64::MAX)
            - i64::try_from(self.delivered).unwrap_or(i64::MAX)
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

/// A load phase: `senders` (socket, to_device) and `recipients` sockets (already past
/// `queue_empty`); runs for `secs`, then drains.
async fn load_phase(
    senders: Vec<(Socket, i64)>,
    recipients: Vec<(Socket, Reconnect)>,
    window: usize,
    total_rate: Option<f64>,
    secs: f64,
    pid: u32,
    echo: bool,
) -> PhaseResult {
    PHASE.fetch_add(1, Ordering::Relaxed);
    let c = Arc::new(Counters::default());
    let stop_send = Arc::new(AtomicBool::new(false));
    let stop_recv = Arc::new(AtomicBool::new(false));
    let n = senders.len().max(1) as f64;
    let started_ns = now_ns();
    let recv_tasks: Vec<_> = recipients
        .into_iter()
        .map(|(s, again)| tokio::spawn(recipient(s, again, stop_recv.clone(), c.clone())))
        .collect();
    let send_tasks: Vec<_> = senders
        .into_iter()
        .map(|(s, to)| {
            tokio::spawn(sender(
                s,
                to,
                window,
                total_rate.map(|r| r / n),
                stop_send.clone(),
                c.clone(),
                echo,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop_send.store(true, Ordering::Relaxed);
    let send_secs = (now_ns() - started_ns) as f64 / 1e9;
    let rss = rss_mb(pid);
    for t in send_tasks {
        t.await.unwrap();
    }
    // Drain: everything accepted should arrive; give up once nothing arrived for `DRAIN`.
    let mut last = (c.delivered.load(Ordering::Relaxed), Instant::now());
    while c.delivered.load(Ordering::Relaxed) < c.accepted.load(Ordering::Relaxed)
        && last.1.elapsed() < DRAIN
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = c.delivered.load(Ordering::Relaxed);
        if now > last.0 {
            last = (now, Instant::now());
        }
    }
    stop_recv.store(true, Ordering::Relaxed);
    for t in recv_tasks {
        t.await.unwrap();
    }
    let mut lat = std::mem::take(&mut *c.latencies.lock().unwrap());
    lat.sort_unstable();
    let delivered = c.delivered.load(Ordering::Relaxed);
    let span = (c.last_delivery.load(Ordering::Relaxed).max(started_ns) - started_ns) as f64 / 1e9;
    PhaseResult {
        sent: c.sent.load(Ordering::Relaxed),
        accepted: c.accepted.load(Ordering::Relaxed),
        errors: c.errors.load(Ordering::Relaxed),
        delivered,
        duplicates: c.duplicates.load(Ordering::Relaxed),
        reconnects: c.reconnects.load(Ordering::Relaxed),
        ack_errors: c.ack_errors.load(Ordering::Relaxed),
        queued: 0,
        send_secs,
        delivered_per_s: if span > 0.0 {
            delivered as f64 / span
        } else {
            0.0
        },
        p50: percentile(&lat, 0.50),
        p95: percentile(&lat, 0.95),
        p99: percentile(&lat, 0.99),
        max: percentile(&lat, 1.0),
        rss,
        first_error: c.first_error.lock().unwrap().clone(),
    }
}

/// Sockets for one phase against the relay: every recipient is past `queue_empty`.
async fn relay_sockets(
    url: &str,
    sender_token: &str,
    senders: &[i64],
    recipient_token: &str,
    recipients: &[i64],
) -> (Vec<(Socket, i64)>, Vec<(Socket, Reconnect)>) {
    let mut r = Vec::new();
    for &d in recipients {
        let mut s = connect(url, recipient_token, d).await;
        wait_queue_empty(&mut s).await;
        r.push((s, (url.to_owned(), recipient_token.to_owned(), d)));
    }
    let mut s = Vec::new();
    for (&d, &to) in senders.iter().zip(recipients) {
        s.push((connect(url, sender_token, d).await, to));
    }
    (s, r)
}

/// Opens `n` idle connections (one device each); returns (RSS before, RSS after, opened).
async fn idle_phase(relay: &Relay, db: &Db, n: usize) -> (f64, f64, usize) {
    let (user, token) = relay.user("idle").await;
    let ids = insert_devices(db, user, n, "idle").await;
    let before = rss_mb(relay.pid()).0;
    let gate = Arc::new(Semaphore::new(32));
    let url = relay.ws_url();
    let opened = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|d| {
            let (gate, url, token, opened) =
                (gate.clone(), url.clone(), token.clone(), opened.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                let mut s = connect(&url, &token, d).await;
                wait_queue_empty(&mut s).await;
                opened.fetch_add(1, Ordering::Relaxed);
                s
            })
        })
        .collect();
    let mut sockets = Vec::with_capacity(n);
    for t in tasks {
        sockets.push(t.await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_mb(relay.pid()).0;
    let opened = opened.load(Ordering::Relaxed);
    drop(sockets);
    tokio::time::sleep(Duration::from_secs(1)).await;
    (before, after, opened)
}

// ---------------------------------------------------------------------------------------------
// The echo baseline

async fn echo(
    req: actix_web::HttpRequest,
    body: actix_web::web::Payload,
) -> actix_web::Result<actix_web::HttpResponse> {
    let (mut resp, mut session, mut stream) = actix_ws::handle(&req, body)?;
    resp.headers_mut().insert(
        actix_web::http::header::SEC_WEBSOCKET_PROTOCOL,
        actix_web::http::header::HeaderValue::from_static("securechat.v1"),
    );
    actix_web::rt::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let sent = match msg {
                actix_ws::Message::Text(t) => session.text(t).await,
                actix_ws::Message::Ping(b) => session.pong(&b).await,
                actix_ws::Message::Close(_) => break,
                _ => Ok(()),
            };
            if sent.is_err() {
                break;
            }
        }
        let _ = session.close(None).await;
    });
    Ok(resp)
}

/// `--echo-server ADDR`: a bare actix-ws echo server (the baseline), until killed.
fn run_echo_server(addr: &str) {
    let addr = addr.to_owned();
    actix_web::rt::System::new().block_on(async move {
        actix_web::HttpServer::new(|| {
            actix_web::App::new().route("/ws", actix_web::web::get().to(echo))
        })
        .bind(addr)
        .expect("bind the echo server")
        .run()
        .await
        .expect("echo server");
    });
}

struct EchoServer(Child, u16);

impl EchoServer {
    async fn start() -> Self {
        let port = free_port();
        let child = Command::new(std::env::current_exe().unwrap())
            .arg("--echo-server")
            .arg(format!("127.0.0.1:{port}"))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "echo server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self(child, port)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The run

struct BackendResult {
    backend: Backend,
    idle: Option<(f64, f64, usize)>,
    throughput: PhaseResult,
    rate: PhaseResult,
    /// The fixed-rate run again at half the measured throughput (what the relay sustains).
    half: Option<(f64, PhaseResult)>,
}

async fn bench_backend(args: &Args, backend: Backend) -> Option<BackendResult> {
    let relay = Relay::start(&args.relay_bin, backend).await?;
    println!("{backend:?}: relay pid {} at {}", relay.pid(), relay.base);
    let db = Db::connect(&relay.database_url).unwrap();
    let idle = if backend == Backend::Sqlite && args.idle > 0 {
        // Each idle connection takes a descriptor here too.
        let limit = nofile_limit();
        let n = args.idle.min(limit.saturating_sub(500));
        if n < args.idle {
            println!("open files limit {limit}: only {n} idle connections (raise with ulimit -n)");
        }
        println!("{backend:?}: opening {n} idle connections…");
        let r = idle_phase(&relay, &db, n).await;
        println!(
            "{backend:?}: idle: {} open, RSS {:.1} MB before, {:.1} MB with them",
            r.2, r.0, r.1
        );
        Some(r)
    } else {
        None
    };
    let (alice, alice_token) = relay.user("alice").await;
    let (bob, bob_token) = relay.user("bob").await;
    befriend(&db, alice, bob).await;
    let senders = insert_devices(&db, alice, args.pairs, "send").await;
    let recipients = insert_devices(&db, bob, args.pairs, "recv").await;
    let url = relay.ws_url();

    println!("{backend:?}: throughput, {} s…", args.seconds);
    let (s, r) = relay_sockets(&url, &alice_token, &senders, &bob_token, &recipients).await;
    let throughput = load_phase(s, r, args.window, None, args.seconds, relay.pid(), false).await;
    let mut throughput = throughput;
    throughput.queued = queued_rows(&db).await;
    print_phase(&throughput);

    println!(
        "{backend:?}: fixed rate {} /s, {} s…",
        args.rate, args.rate_seconds
    );
    let (s, r) = relay_sockets(&url, &alice_token, &senders, &bob_token, &recipients).await;
    let rate = load_phase(
        s,
        r,
        1_000_000,
        Some(args.rate),
        args.rate_seconds,
        relay.pid(),
        false,
    )
    .await;
    let mut rate = rate;
    rate.queued = queued_rows(&db).await;
    print_phase(&rate);

    // Offered more than it sustains, the latency is the queue's growth: measure again at half
    // the measured throughput (rounded down to 100/s).
    let half_rate = (throughput.delivered_per_s / 200.0).floor() * 100.0;
    let half = if half_rate >= 100.0 && half_rate < args.rate {
        println!(
            "{backend:?}: fixed rate {half_rate} /s (half the throughput), {} s…",
            args.rate_seconds
        );
        let (s, r) = relay_sockets(&url, &alice_token, &senders, &bob_token, &recipients).await;
        let p = load_phase(
            s,
            r,
            1_000_000,
            Some(half_rate),
            args.rate_seconds,
            relay.pid(),
            false,
        )
        .await;
        let mut p = p;
        p.queued = queued_rows(&db).await;
        print_phase(&p);
        Some((half_rate, p))
    } else {
        None
    };
    drop(db);
    Some(BackendResult {
        backend,
        idle,
        throughput,
        rate,
        half,
    })
}

fn print_phase(r: &PhaseResult) {
    println!(
        "  {:.1} s: sent {} accepted {} errors {} delivered {} dup {} reconnects {} loss {} queued {} ack errors {} | {:.0} delivered/s | p50 {:.2} p95 {:.2} p99 {:.2} max {:.2} ms | RSS {:.1} MB",
        r.send_secs,
        r.sent,
        r.accepted,
        r.errors,
        r.delivered,
        r.duplicates,
        r.reconnects,
        r.loss(),
        r.queued,
        r.ack_errors,
        r.delivered_per_s,
        r.p50,
        r.p95,
        r.p99,
        r.max,
        r.rss.0
    );
    if let Some(e) = &r.first_error {
        println!("  first error: {e}");
    }
}

async fn echo_phase(args: &Args, rate: Option<f64>, secs: f64) -> PhaseResult {
    let server = EchoServer::start().await;
    let url = format!("ws://127.0.0.1:{}/ws", server.1);
    let mut s = Vec::new();
    for _ in 0..args.pairs {
        s.push((connect(&url, "none", 0).await, 0));
    }
    let window = if rate.is_some() {
        1_000_000
    } else {
        args.window
    };
    load_phase(s, Vec::new(), window, rate, secs, server.0.id(), true).await
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

async fn run(args: Args) {
    let _ = epoch();
    println!("relay load generator: {args:?}");
    println!("echo baseline: throughput, {} s…", args.seconds);
    let echo_tp = echo_phase(&args, None, args.seconds).await;
    print_phase(&echo_tp);
    println!("echo baseline: fixed rate {} /s…", args.rate);
    let echo_rate = echo_phase(&args, Some(args.rate), args.rate_seconds).await;
    print_phase(&echo_rate);

    let mut results = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backend == Backend::Postgres && !args.postgres {
            continue;
        }
        if let Some(r) = bench_backend(&args, backend).await {
            results.push(r);
        }
    }

    let mut t = String::new();
    let _ = writeln!(
        t,
        "Relay load (relay-server/benches/relay_load.rs): loopback, {} sender→recipient device \
         pairs, {} B ciphertexts, window {} per sender, throughput {} s, fixed rate {}/s for {} s; \
         client and relay share {} CPUs",
        args.pairs,
        PAYLOAD,
        args.window,
        args.seconds,
        args.rate,
        args.rate_seconds,
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get),
    );
    let _ = writeln!(
        t,
        "{:<22} {:>11} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8}",
        "run", "deliv./s", "p50 ms", "p95 ms", "p99 ms", "max ms", "loss", "RSS MB"
    );
    let row = |t: &mut String, name: &str, r: &PhaseResult| {
        let _ = writeln!(
            t,
            "{:<22} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>8.1}",
            name,
            r.delivered_per_s,
            r.p50,
            r.p95,
            r.p99,
            r.max,
            r.loss(),
            r.rss.0
        );
    };
    row(&mut t, "echo, max", &echo_tp);
    row(&mut t, &format!("echo, {}/s", args.rate), &echo_rate);
    for r in &results {
        let name = format!("{:?}", r.backend).to_lowercase();
        row(&mut t, &format!("{name}, max"), &r.throughput);
        row(&mut t, &format!("{name}, {}/s", args.rate), &r.rate);
        if let Some((rate, p)) = &r.half {
            row(&mut t, &format!("{name}, {rate}/s"), p);
        }
        if r.throughput.errors + r.rate.errors > 0 {
            let _ = writeln!(
                t,
                "  {name}: {} + {} sends refused, first: {}",
                r.throughput.errors,
                r.rate.errors,
                r.throughput
                    .first_error
                    .as_deref()
                    .or(r.rate.first_error.as_deref())
                    .unwrap_or("")
            );
        }
    }
    let _ = writeln!(t);
    let _ = writeln!(t, "Goals (issue #4):");
    for r in &results {
        let name = format!("{:?}", r.backend).to_lowercase();
        let tp = r.throughput.delivered_per_s;
        let ratio = tp / echo_tp.delivered_per_s;
        // The issue states the throughput goal for SQLite, the default backend (and the p99 goal
        // with it); PostgreSQL's figures are reported against the same numbers for information.
        let judge = |ok: bool| {
            if r.backend == Backend::Sqlite {
                verdict(ok)
            } else if ok {
                "would meet it (information)"
            } else {
                "below it (information: the goals are for SQLite)"
            }
        };
        let _ = writeln!(
            t,
            "  {name}: persisted+delivered {tp:.0}/s (goal >= {GOAL_THROUGHPUT:.0}/s on SQLite): {} \
             ({ratio:.3}x the echo baseline)",
            judge(tp >= GOAL_THROUGHPUT)
        );
        let achieved = r.rate.delivered_per_s;
        let _ = writeln!(
            t,
            "  {name}: p99 {:.2} ms at {achieved:.0}/s offered {}/s (goal <= {GOAL_P99_MS} ms at {GOAL_RATE:.0}/s): {}",
            r.rate.p99,
            args.rate,
            judge(r.rate.p99 <= GOAL_P99_MS && achieved >= GOAL_RATE * 0.95)
        );
        if let Some((rate, p)) = &r.half {
            let _ = writeln!(
                t,
                "  {name}: p99 {:.2} ms at {rate}/s (half the measured throughput, for reference)",
                p.p99
            );
        }
        let half = r.half.as_ref().map(|(_, p)| p);
        let loss = r.throughput.loss() + r.rate.loss() + half.map_or(0, PhaseResult::loss);
        let dup = r.throughput.duplicates + r.rate.duplicates + half.map_or(0, |p| p.duplicates);
        let reconnects =
            r.throughput.reconnects + r.rate.reconnects + half.map_or(0, |p| p.reconnects);
        let ack_errors =
            r.throughput.ack_errors + r.rate.ack_errors + half.map_or(0, |p| p.ack_errors);
        let queued = [Some(&r.throughput), Some(&r.rate), half]
            .into_iter()
            .flatten()
            .map(|p| p.queued)
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            t,
            "  {name}: loss {loss} (accepted, not delivered; drain until {} s without a delivery) \
             (goal 0): {}; {reconnects} recipient reconnects (disconnected as too slow), \
             {dup} redeliveries after them; at most {queued} envelopes left unacknowledged in \
             the database after a phase; {ack_errors} acks refused by the relay",
            DRAIN.as_secs(),
            verdict(loss == 0)
        );
        if let Some((before, after, opened)) = r.idle {
            let _ = writeln!(
                t,
                "  {name}: {opened} idle WebSockets: relay RSS {after:.1} MB ({before:.1} MB before, \
                 {:.1} KB each) (goal 10000 in <= {GOAL_IDLE_MB} MB): {}",
                (after - before) * 1024.0 / opened.max(1) as f64,
                verdict(opened >= 10_000 && after <= GOAL_IDLE_MB)
            );
        }
    }
    print!("\n{t}");
    if let Some(dir) = args.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&args.out, &t).unwrap_or_else(|e| panic!("{}: {e}", args.out.display()));
    println!("written to {}", args.out.display());
}
