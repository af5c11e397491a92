//! Crash durability of WebSocket delivery (issue #4): the real `securechat-relay` binary is
//! killed with SIGKILL while two sender devices pipeline `send` frames, then restarted on the
//! same database. Every envelope the relay had answered `accepted` for is delivered, every
//! envelope the senders retried (client retry semantics: resend everything not `accepted`,
//! plus some that were) is delivered, nothing is delivered twice, the ciphertexts are intact,
//! and the queue is empty once the recipient acknowledged. On SQLite and PostgreSQL, with the
//! recipient offline, and with the recipient online but not acknowledging.
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
use common::{Backend, unique_name};
use diesel::prelude::*;
use futures_util::{SinkExt, StreamExt};
use relay_server::api::error::ApiError;
use relay_server::db::Db;
use relay_server::db::schema::{devices, envelopes, friendships};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const BIN: &str = env!("CARGO_BIN_EXE_securechat-relay");
/// Longest wait for any single frame or state.
const WAIT: Duration = Duration::from_secs(30);
/// Messages each sender device has in its outbox.
const MESSAGES: usize = 1500;
/// Sends a sender keeps in flight (sent, not yet `accepted`).
const WINDOW: usize = 100;
/// Kill the relay once this many sends were accepted in total (and each sender had some
/// accepted, and an online recipient had something pushed).
const KILL_AT_ACCEPTED: usize = 400;
/// Before the kill a sender sends no more than this many of its `MESSAGES`: however fast the
/// relay and however late the kill, the crash finds part of every outbox unsent.
const SEND_BEFORE_KILL: usize = 1000;
/// Acknowledge in batches of this many envelopes.
const ACK_BATCH: usize = 100;

fn payload(sender: usize, i: usize) -> Vec<u8> {
    format!("payload-{sender}-{i}").into_bytes()
}

/// The relay binary, its database and temp files; everything is removed on drop (also when
/// the test panics).
struct Harness {
    database_url: String,
    pg_database: Option<String>,
    sqlite_path: Option<PathBuf>,
    outbox: PathBuf,
    child: Option<Child>,
    base: String,
}

impl Harness {
    fn new(backend: Backend) -> Option<Self> {
        let (database_url, pg_database, sqlite_path) = common::fresh_database(backend)?;
        let outbox = std::env::temp_dir().join(unique_name("sc_kill_outbox"));
        Some(Self {
            database_url,
            pg_database,
            sqlite_path,
            outbox,
            child: None,
            base: String::new(),
        })
    }

    /// Starts the binary on a port the OS picks and waits until `/healthz` answers 200.
    async fn start(&mut self) {
        assert!(self.child.is_none(), "relay already running");
        let mut command = Command::new(BIN);
        command
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--mail-url")
            .arg(format!("file://{}", self.outbox.display()))
            .arg("--secret-key-file")
            .arg(self.outbox.with_extension("key"))
            .env("SECURECHAT_DISABLE_RATE_LIMITS", "true")
            // Outcomes are checked, not how long a request waited on a starved machine.
            .env("SECURECHAT_DB_WAIT_SECS", "120")
            .env("SECURECHAT_LOG", "warn")
            .stderr(Stdio::null());
        let (child, base) = common::spawn_relay(command);
        self.child = Some(child);
        self.base = base;
        // Healthy, and on PostgreSQL listening for other relays' envelopes (a NOTIFY sent
        // before its LISTEN would never reach it).
        let postgres = self.database_url.starts_with("postgres");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + 2 * WAIT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("relay exited early: {status}");
            }
            if let Ok(resp) = client.get(format!("{}/healthz", self.base)).send().await
                && resp.status() == 200
                && let Ok(health) = resp.json::<Value>().await
                && (!postgres || health["cross_relay_push"] == true)
            {
                return;
            }
            assert!(Instant::now() < deadline, "relay did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown code of the relay runs.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("relay running");
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "relay died of SIGKILL: {status}");
    }

    fn ws_url(&self) -> String {
        format!("{}/api/v1/ws", self.base.replacen("http://", "ws://", 1))
    }

    /// Registers and signs in; returns (user id, token).
    async fn user(&self, ms_id: &str) -> (i64, String) {
        let client = reqwest::Client::new();
        let email = format!("{ms_id}@example.org");
        let resp = client
            .post(format!("{}/api/v1/accounts", self.base))
            .json(&json!({"email": email, "password": common::PASSWORD, "ms_id": ms_id, "display_name": "Kill Test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "register {ms_id}");
        let created: Value = resp.json().await.unwrap();
        let resp = client
            .post(format!("{}/api/v1/sessions", self.base))
            .json(&json!({"email": email, "password": common::PASSWORD}))
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

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(name) = &self.pg_database {
            common::drop_pg_database(name);
        }
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        let _ = std::fs::remove_dir_all(&self.outbox);
    }
}

async fn insert_device(db: &Db, user_id: i64, name: &str) -> i64 {
    let key = unique_name(&format!("identity-{name}")).into_bytes();
    let name = name.to_owned();
    db.run(move |conn| {
        Ok::<_, ApiError>(
            diesel::insert_into(devices::table)
                .values((
                    devices::user_id.eq(user_id),
                    devices::identity_key.eq(key),
                    devices::name.eq(name),
                    devices::created_at.eq(0_i64),
                ))
                .returning(devices::id)
                .get_result::<i64>(conn)?,
        )
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

async fn queued_rows(db: &Db) -> i64 {
    db.run(|conn| {
        envelopes::table
            .count()
            .get_result::<i64>(conn)
            .map_err(ApiError::from)
    })
    .await
    .unwrap()
}

/// (sender device, client id) of every queued envelope.
async fn committed_ids(db: &Db) -> HashSet<(i64, String)> {
    db.run(|conn| {
        envelopes::table
            .select((envelopes::sender_device_id, envelopes::client_id))
            .load::<(i64, String)>(conn)
            .map_err(ApiError::from)
    })
    .await
    .unwrap()
    .into_iter()
    .collect()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

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
        .unwrap();
    socket
}

/// One sender device's outbox: `send` frames for `ids` to `to_device` on `socket`, pipelined
/// with at most `WINDOW` unanswered, and no more than `send_at_most` of them (then it waits for
/// the connection to end). Returns the ids answered `accepted` before the connection ended (or
/// all of them). `accepted` counts this sender's accepted sends as they come.
async fn send_all(
    socket: Socket,
    sender: usize,
    to_device: i64,
    ids: Vec<usize>,
    send_at_most: usize,
    accepted_count: Arc<AtomicUsize>,
) -> HashSet<usize> {
    let (mut sink, mut stream) = socket.split();
    let mut accepted = HashSet::new();
    let mut next = 0;
    let mut inflight = 0;
    let sendable = ids.len().min(send_at_most);
    'outer: loop {
        while inflight < WINDOW && next < sendable {
            let i = ids[next];
            let frame = json!({
                "v": 1, "type": "send", "id": format!("m{i}"), "to_device": to_device,
                "kind": 1, "ciphertext": B64.encode(payload(sender, i)),
            });
            if sink.send(Message::text(frame.to_string())).await.is_err() {
                break 'outer;
            }
            next += 1;
            inflight += 1;
        }
        if accepted.len() == ids.len() {
            break;
        }
        // Longer than the kill's own deadline: a sender done with its share before the kill
        // waits for it here.
        let msg = tokio::time::timeout(4 * WAIT, stream.next())
            .await
            .expect("sender timed out waiting for a frame");
        match msg {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                match v["type"].as_str() {
                    Some("accepted") => {
                        assert_eq!(v["to_device"], to_device, "{v}");
                        let i: usize = v["id"].as_str().unwrap()[1..].parse().unwrap();
                        assert!(ids.contains(&i), "accepted an id never sent: {v}");
                        assert!(
                            accepted.insert(i),
                            "sender {sender}: `accepted` twice for one send: {v}"
                        );
                        accepted_count.fetch_add(1, Ordering::Relaxed);
                        inflight -= 1;
                    }
                    Some("presence" | "delivered" | "queue_empty") => {}
                    _ => panic!("sender {sender}: unexpected frame {v}"),
                }
            }
            Some(Ok(_)) => {}
        }
    }
    accepted
}

/// An online recipient that never acknowledges: the envelopes pushed to it before the
/// connection died, as (sender device, id); `pushed` counts them as they come.
async fn listen_without_ack(mut socket: Socket, pushed: Arc<AtomicUsize>) -> Vec<(i64, String)> {
    let mut seen = Vec::new();
    loop {
        let Ok(msg) = tokio::time::timeout(WAIT, socket.next()).await else {
            panic!("online recipient timed out");
        };
        match msg {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return seen,
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "envelope" {
                    seen.push((
                        v["from_device"].as_i64().unwrap(),
                        v["id"].as_str().unwrap().to_owned(),
                    ));
                    pushed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn kill_while_sending(backend: Backend, recipient_online: bool) {
    let Some(mut h) = Harness::new(backend) else {
        return;
    };
    h.start().await;
    let (alice, alice_token) = h.user("alice").await;
    let (bob, bob_token) = h.user("bob").await;
    // The binary applied the migrations; the test writes the device and friendship rows.
    let db = Db::connect_waiting(&h.database_url, Duration::from_secs(120)).unwrap();
    let senders = [
        insert_device(&db, alice, "alice-phone").await,
        insert_device(&db, alice, "alice-laptop").await,
    ];
    let bob_device = insert_device(&db, bob, "bob-phone").await;
    befriend(&db, alice, bob).await;

    // Phase 1: both sender devices pipeline their outbox; the relay is killed mid-stream.
    // Every connection is open before anything is sent, so the kill can never land in a
    // WebSocket handshake.
    let pushed = Arc::new(AtomicUsize::new(0));
    let live = if recipient_online {
        let socket = connect(&h.ws_url(), &bob_token, bob_device).await;
        Some(tokio::spawn(listen_without_ack(socket, pushed.clone())))
    } else {
        None
    };
    let mut sockets = Vec::new();
    for &device in &senders {
        sockets.push(connect(&h.ws_url(), &alice_token, device).await);
    }
    let counts: Vec<Arc<AtomicUsize>> = senders
        .iter()
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(s, socket)| {
            tokio::spawn(send_all(
                socket,
                s,
                bob_device,
                (0..MESSAGES).collect(),
                SEND_BEFORE_KILL,
                counts[s].clone(),
            ))
        })
        .collect();
    // Kill once every sender had sends accepted, enough in all, and (when online) the
    // recipient had envelopes pushed: events, not elapsed time, decide. The deadline only
    // turns a relay that makes no progress into a failure.
    let deadline = Instant::now() + 2 * WAIT;
    loop {
        let each: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: usize = each.iter().sum();
        let pushed_now = pushed.load(Ordering::Relaxed);
        if total >= KILL_AT_ACCEPTED
            && each.iter().all(|&n| n > 0)
            && (!recipient_online || pushed_now > 0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no progress before the kill: accepted {each:?}, pushed {pushed_now}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    h.kill();
    let mut accepted: Vec<HashSet<usize>> = Vec::new();
    for task in tasks {
        accepted.push(
            tokio::time::timeout(WAIT, task)
                .await
                .expect("sender did not notice the crash")
                .unwrap(),
        );
    }
    let live_seen = match live {
        Some(task) => tokio::time::timeout(WAIT, task)
            .await
            .expect("recipient did not notice the crash")
            .unwrap(),
        None => Vec::new(),
    };
    let accepted_before: usize = accepted.iter().map(HashSet::len).sum();
    assert!(accepted_before > 0, "nothing accepted before the kill");
    assert!(
        accepted_before <= senders.len() * SEND_BEFORE_KILL,
        "more accepted than sent before the kill"
    );
    if recipient_online {
        assert!(
            !live_seen.is_empty(),
            "nothing was pushed live before the kill"
        );
    }
    // With the relay dead, the database already holds every accepted envelope; the rows
    // beyond those are sends committed whose `accepted` never reached the sender, which the
    // resends below must not store twice.
    let committed = committed_ids(&db).await;
    let mut committed_unconfirmed = 0;
    for (s, &device) in senders.iter().enumerate() {
        for &i in &accepted[s] {
            assert!(
                committed.contains(&(device, format!("m{i}"))),
                "LOST at SIGKILL: sender {s} m{i} was accepted but is not in the database"
            );
        }
        committed_unconfirmed += committed
            .iter()
            .filter(|(d, id)| *d == device && !accepted[s].contains(&id[1..].parse().unwrap()))
            .count();
    }
    assert_eq!(
        committed.len(),
        accepted_before + committed_unconfirmed,
        "envelope rows not sent by the two senders"
    );

    // Phase 2: restart on the same database; each sender resends everything not accepted,
    // and also the first 20 it saw accepted (as if those `accepted` frames had been lost).
    h.start().await;
    let mut resent_total = 0;
    let mut tasks = Vec::new();
    for (s, &device) in senders.iter().enumerate() {
        let mut outbox: Vec<usize> = (0..MESSAGES).filter(|i| !accepted[s].contains(i)).collect();
        let mut lost_acks: Vec<usize> = accepted[s].iter().copied().collect();
        lost_acks.sort_unstable();
        outbox.extend(lost_acks.into_iter().take(20));
        resent_total += outbox.len();
        let socket = connect(&h.ws_url(), &alice_token, device).await;
        tasks.push((
            outbox.clone(),
            tokio::spawn(send_all(
                socket,
                s,
                bob_device,
                outbox,
                usize::MAX,
                Arc::new(AtomicUsize::new(0)),
            )),
        ));
    }
    for (outbox, task) in tasks {
        let got = tokio::time::timeout(WAIT * 4, task)
            .await
            .expect("resend did not finish")
            .unwrap();
        assert_eq!(
            got.len(),
            outbox.len(),
            "after the restart every resend is accepted"
        );
    }

    // Phase 3: the recipient drains its backlog, acknowledging in batches.
    let mut socket = connect(&h.ws_url(), &bob_token, bob_device).await;
    let mut raw: Vec<(i64, String)> = Vec::new();
    let mut eids: Vec<i64> = Vec::new();
    let mut pending_ack: Vec<i64> = Vec::new();
    let mut wrong_payload = Vec::new();
    loop {
        let msg = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("timed out draining the backlog");
        let v: Value = match msg {
            Some(Ok(Message::Text(t))) => serde_json::from_str(t.as_str()).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("recipient connection ended while draining: {other:?}"),
        };
        match v["type"].as_str() {
            Some("envelope") => {
                let from_device = v["from_device"].as_i64().unwrap();
                let id = v["id"].as_str().unwrap().to_owned();
                let s = senders
                    .iter()
                    .position(|&d| d == from_device)
                    .unwrap_or_else(|| panic!("envelope from an unknown device: {v}"));
                assert_eq!(v["from_user"], alice, "{v}");
                assert_eq!(v["kind"], 1, "{v}");
                let i: usize = id[1..].parse().unwrap();
                let bytes = B64.decode(v["ciphertext"].as_str().unwrap()).unwrap();
                if bytes != payload(s, i) {
                    wrong_payload.push(v.clone());
                }
                let eid = v["eid"].as_i64().unwrap();
                eids.push(eid);
                pending_ack.push(eid);
                raw.push((from_device, id));
                if pending_ack.len() >= ACK_BATCH {
                    let ack =
                        json!({"v": 1, "type": "ack", "ids": std::mem::take(&mut pending_ack)});
                    socket.send(Message::text(ack.to_string())).await.unwrap();
                }
            }
            Some("queue_empty") => break,
            Some("presence") => {}
            _ => panic!("unexpected frame while draining: {v}"),
        }
    }
    if !pending_ack.is_empty() {
        let ack = json!({"v": 1, "type": "ack", "ids": pending_ack});
        socket.send(Message::text(ack.to_string())).await.unwrap();
    }
    assert!(
        wrong_payload.is_empty(),
        "ciphertexts changed: {wrong_payload:?}"
    );

    // Raw stream: no (from_device, id) twice, no eid twice.
    let mut counts: HashMap<&(i64, String), usize> = HashMap::new();
    for key in &raw {
        *counts.entry(key).or_default() += 1;
    }
    let mut duplicated: Vec<_> = counts.iter().filter(|&(_, &n)| n > 1).collect();
    duplicated.sort();
    assert!(
        duplicated.is_empty(),
        "the relay delivered {} ids more than once (dedup bug): {duplicated:?}",
        duplicated.len()
    );
    assert_eq!(
        eids.iter().collect::<BTreeSet<_>>().len(),
        eids.len(),
        "an eid came twice in one connection"
    );

    // After client dedup: exactly the whole outbox of each sender, once each. That covers
    // every id accepted before the kill and every resent one.
    let delivered: HashSet<(i64, String)> = raw.iter().cloned().collect();
    let mut missing_accepted = Vec::new();
    let mut missing_resent = Vec::new();
    for (s, &device) in senders.iter().enumerate() {
        for i in 0..MESSAGES {
            if !delivered.contains(&(device, format!("m{i}"))) {
                if accepted[s].contains(&i) {
                    missing_accepted.push((s, i));
                } else {
                    missing_resent.push((s, i));
                }
            }
        }
    }
    assert!(
        missing_accepted.is_empty(),
        "LOST: accepted before SIGKILL but never delivered: {missing_accepted:?}"
    );
    assert!(
        missing_resent.is_empty(),
        "resent and accepted after the restart but never delivered: {missing_resent:?}"
    );
    assert_eq!(delivered.len(), senders.len() * MESSAGES);
    assert_eq!(raw.len(), senders.len() * MESSAGES);
    // What the online recipient saw before the crash was not acknowledged: it came again.
    for key in &live_seen {
        assert!(
            delivered.contains(key),
            "pushed live, not redelivered: {key:?}"
        );
    }

    // The acks emptied the queue.
    let deadline = Instant::now() + WAIT;
    loop {
        let left = queued_rows(&db).await;
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} envelopes still queued after the acks"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = socket.close(None).await;
    drop(db);
    eprintln!(
        "{backend:?}, recipient online: {recipient_online}: accepted before SIGKILL {accepted_before} \
         (per sender {:?}), committed but unconfirmed {committed_unconfirmed}, pushed live before it {}, resent after restart {resent_total}, \
         delivered {} envelopes, 0 duplicates, queue empty",
        accepted.iter().map(HashSet::len).collect::<Vec<_>>(),
        live_seen.len(),
        raw.len(),
    );
}

#[actix_web::test]
async fn sigkill_while_sending_loses_nothing_sqlite() {
    kill_while_sending(Backend::Sqlite, false).await;
}

#[actix_web::test]
async fn sigkill_while_sending_loses_nothing_postgres() {
    kill_while_sending(Backend::Postgres, false).await;
}

#[actix_web::test]
async fn sigkill_while_sending_to_an_online_recipient_sqlite() {
    kill_while_sending(Backend::Sqlite, true).await;
}

#[actix_web::test]
async fn sigkill_while_sending_to_an_online_recipient_postgres() {
    kill_while_sending(Backend::Postgres, true).await;
}

/// Reads text frames until one of type `kind` (skipping presence and `queue_empty`).
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, socket.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for `{kind}`"))
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == kind {
                return v;
            }
        }
    }
}

/// Scale-out (issue #4): two relay processes share one PostgreSQL database. An envelope a
/// device sends through relay 1 reaches a device connected to relay 2 in real time (relay 1's
/// NOTIFY wakes relay 2's LISTEN), and back; nothing waits for a reconnect.
#[actix_web::test]
async fn two_relay_processes_share_one_postgres_database() {
    let Some(mut one) = Harness::new(Backend::Postgres) else {
        return;
    };
    one.start().await;
    let mut two = Harness {
        database_url: one.database_url.clone(),
        pg_database: None,
        sqlite_path: None,
        outbox: std::env::temp_dir().join(unique_name("sc_two_outbox")),
        child: None,
        base: String::new(),
    };
    two.start().await;
    assert_ne!(one.base, two.base);

    let (alice, alice_token) = one.user("alice").await;
    let (bob, bob_token) = one.user("bob").await;
    let db = Db::connect_waiting(&one.database_url, Duration::from_secs(120)).unwrap();
    let dev_a = insert_device(&db, alice, "alice-laptop").await;
    let dev_b = insert_device(&db, bob, "bob-phone").await;
    befriend(&db, alice, bob).await;

    // Bob is connected to relay 2 with an empty queue; Alice to relay 1.
    let mut b = connect(&two.ws_url(), &bob_token, dev_b).await;
    next_of(&mut b, "queue_empty").await;
    let mut a = connect(&one.ws_url(), &alice_token, dev_a).await;
    next_of(&mut a, "queue_empty").await;

    // No polling: without the NOTIFY from relay 1 the envelope would reach Bob only on a
    // reconnect, so its arrival on the open connection shows the live path.
    for i in 0..20 {
        let id = format!("x{i}");
        a.send(Message::text(
            json!({"v": 1, "type": "send", "id": id, "to_device": dev_b, "kind": 1,
                   "ciphertext": B64.encode(payload(0, i))})
            .to_string(),
        ))
        .await
        .unwrap();
        next_of(&mut a, "accepted").await;
        let env = next_of(&mut b, "envelope").await;
        assert_eq!(env["id"], id.as_str());
        assert_eq!(
            B64.decode(env["ciphertext"].as_str().unwrap()).unwrap(),
            payload(0, i)
        );
        b.send(Message::text(
            json!({"v": 1, "type": "ack", "ids": [env["eid"]]}).to_string(),
        ))
        .await
        .unwrap();
    }

    // And back: Bob sends through relay 2, Alice receives on relay 1.
    b.send(Message::text(
        json!({"v": 1, "type": "send", "id": "reply", "to_device": dev_a, "kind": 1,
               "ciphertext": B64.encode(b"reply")})
        .to_string(),
    ))
    .await
    .unwrap();
    next_of(&mut b, "accepted").await;
    let env = next_of(&mut a, "envelope").await;
    assert_eq!(env["id"], "reply");
    a.send(Message::text(
        json!({"v": 1, "type": "ack", "ids": [env["eid"]]}).to_string(),
    ))
    .await
    .unwrap();

    let deadline = Instant::now() + WAIT;
    while queued_rows(&db).await > 0 {
        assert!(
            Instant::now() < deadline,
            "acked envelopes were not deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(two);
}
