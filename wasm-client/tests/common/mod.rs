//! Harness for the native client tests: the real `securechat-relay` binary on a loopback port
//! the OS picks, on a fresh SQLite file, and helpers that drive clients until an event arrives.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hmac::{Hmac, KeyInit, Mac};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wasm_client::store::MemoryStore;
use wasm_client::store::sealed::{KdfParams, SealedStore};
use wasm_client::transport::SocketReceiver;
use wasm_client::transport::native::{NativeReceiver, NativeTransport};
use wasm_client::{Client, ConnectionState, Event, LoginOutcome};

pub const PASSWORD: &str = "correct horse battery staple 42";
/// Local store password (the tests use cheap Argon2 parameters).
pub const STORE_PASSWORD: &str = "local store password";

/// The relay binary: `SECURECHAT_RELAY_BIN`, else `target/debug/securechat-relay` (built by
/// `cargo xtask test`, or `cargo build -p relay-server` by hand).
pub fn relay_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("SECURECHAT_RELAY_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let bin = target.join("debug/securechat-relay");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p relay-server` first (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// A relay process with its own database, blob folder and mail outbox in a temporary folder.
pub struct Relay {
    pub dir: PathBuf,
    pub base: String,
    child: Option<Child>,
}

impl Relay {
    pub fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sc_client_{name}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(dir.join("outbox")).unwrap();
        let mut relay = Self {
            dir,
            base: String::new(),
            child: None,
        };
        relay.spawn();
        relay
    }

    fn spawn(&mut self) {
        let mut child = Command::new(relay_bin())
            .arg("--database-url")
            .arg(format!("sqlite://{}", self.dir.join("relay.db").display()))
            .arg("--mail-url")
            .arg(format!("file://{}", self.dir.join("outbox").display()))
            .arg("--blob-dir")
            .arg(self.dir.join("blobs"))
            .arg("--secret-key-file")
            .arg(self.dir.join("secret.key"))
            .env("SECURECHAT_LISTEN", "127.0.0.1:0")
            .env("SECURECHAT_DISABLE_RATE_LIMITS", "true")
            .env("SECURECHAT_DB_WAIT_SECS", "120")
            .env("SECURECHAT_LOG", "warn")
            .env("SECURECHAT_METRICS", "true")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start securechat-relay");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(base) = line.strip_prefix("SecureChat relay listening on ") {
                    let _ = tx.send(base.to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(base) => self.base = base,
            Err(e) => {
                let _ = child.kill();
                panic!("the relay never said where it listens: {e}");
            }
        }
        self.child = Some(child);
    }

    /// Kills the relay (SIGKILL: nothing is flushed on purpose) and starts it again on the same
    /// database; the port changes.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The mails in the outbox so far.
    pub fn mails(&self) -> std::collections::BTreeSet<PathBuf> {
        std::fs::read_dir(self.dir.join("outbox"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }

    /// The code of the one mail written since `before` (`... code is: 123456`).
    pub fn new_code(&self, before: &std::collections::BTreeSet<PathBuf>) -> String {
        let new: Vec<PathBuf> = self.mails().difference(before).cloned().collect();
        assert_eq!(new.len(), 1, "exactly one new mail");
        let mail = std::fs::read_to_string(&new[0]).unwrap();
        let at = mail.find("code is: ").expect("a code in the mail") + "code is: ".len();
        let code: String = mail[at..].chars().take(6).collect();
        assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        code
    }

    pub fn transport(&self) -> NativeTransport {
        NativeTransport::new(&self.base).unwrap()
    }

    /// The value of one counter or gauge of the relay's `GET /metrics` (0 when absent).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Every byte the relay keeps at rest: the database files and the blobs.
    pub fn bytes_at_rest(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if !path.ends_with("outbox") {
                        stack.push(path);
                    }
                } else {
                    out.extend(std::fs::read(&path).unwrap_or_default());
                }
            }
        }
        out
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub type TestClient = Client<NativeTransport, MemoryStore>;

/// Ada and Bob, one device each, friends, connected and synced; with their user ids.
pub async fn two_friends(relay: &Relay) -> (Device, i64, Device, i64) {
    let mut ada = Device::new(relay).await;
    let mut bob = Device::new(relay).await;
    let ada_id = ada
        .client
        .register("ada@example.org", PASSWORD, "ada", "Ada")
        .await
        .unwrap()
        .user_id;
    let bob_id = bob
        .client
        .register("bob@example.org", PASSWORD, "bob", "Bob")
        .await
        .unwrap()
        .user_id;
    ada.sign_in("ada@example.org", "ada laptop").await;
    bob.sign_in("bob@example.org", "bob laptop").await;
    ada.client.send_friend_request("bob", None).await.unwrap();
    let request = bob.client.friend_requests().await.unwrap().incoming[0].id;
    bob.client.accept_friend_request(request).await.unwrap();
    for d in [&mut ada, &mut bob] {
        d.connect().await;
        d.synced().await;
    }
    (ada, ada_id, bob, bob_id)
}

/// A device of a user: its client, the socket's reading half, and its raw store.
pub struct Device {
    pub client: TestClient,
    pub socket: Option<NativeReceiver>,
    pub raw: MemoryStore,
    pub events: Vec<Event>,
}

impl Device {
    /// A new device with an empty store.
    pub async fn new(relay: &Relay) -> Self {
        Self::with_store_password(relay, STORE_PASSWORD).await
    }

    /// A new device whose store is wrapped with `password` (the web app uses the account's).
    pub async fn with_store_password(relay: &Relay, password: &str) -> Self {
        let raw = MemoryStore::new();
        let store = SealedStore::create(raw.clone(), password, KdfParams::INSECURE_FOR_TESTS)
            .await
            .unwrap();
        let client = Client::new(relay.transport(), store).await.unwrap();
        Self {
            client,
            socket: None,
            raw,
            events: Vec::new(),
        }
    }

    /// The same device after a reload: a new client over the same store (and a relay URL that
    /// may have changed).
    pub async fn reload(self, relay: &Relay) -> Self {
        let store = SealedStore::open(self.raw.clone(), STORE_PASSWORD)
            .await
            .unwrap();
        let client = Client::new(relay.transport(), store).await.unwrap();
        Self {
            client,
            socket: None,
            raw: self.raw,
            events: Vec::new(),
        }
    }

    /// Signs in without a second factor and registers the device.
    pub async fn sign_in(&mut self, email: &str, name: &str) {
        let outcome = self.client.login(email, PASSWORD).await.unwrap();
        assert_eq!(outcome, LoginOutcome::SignedIn);
        self.client.ensure_device(name).await.unwrap();
    }

    pub async fn connect(&mut self) {
        self.socket = Some(self.client.connect().await.unwrap());
    }

    /// Handles socket events until `pred` holds for one of them (60 s at most: generous for a
    /// loaded machine). Reconnects when the relay closes the socket, as an app would.
    pub async fn until(&mut self, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
        if let Some(i) = self.events.iter().position(&mut pred) {
            return self.events.remove(i);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let socket = self.socket.as_mut().expect("connected");
            let event = tokio::time::timeout_at(deadline, socket.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {:?}", self.events));
            let events = self.client.handle(event).await.unwrap();
            let mut found = None;
            for e in events {
                if found.is_none() && pred(&e) {
                    found = Some(e);
                } else {
                    self.events.push(e);
                }
            }
            if let Some(e) = found {
                return e;
            }
            if !self.client.is_connected() {
                if let Some(Event::Connection {
                    state: ConnectionState::Stopped,
                }) = self.events.last()
                {
                    panic!("the relay ended this device's session while waiting for {what}");
                }
                self.connect().await;
            }
        }
    }

    /// Sends a text; events it causes (a key change, …) are kept for [`Device::until`].
    pub async fn send(&mut self, to_user: i64, text: &str) -> wasm_client::Message {
        let (message, events) = self.client.send_text(to_user, text).await.unwrap();
        self.events.extend(events);
        message
    }

    /// Sends a text to a room, keeping the events it causes.
    pub async fn send_room(&mut self, room: i64, text: &str) -> wasm_client::Message {
        let (message, events) = self.client.send_room_text(room, text).await.unwrap();
        self.events.extend(events);
        message
    }

    /// Waits for the backlog to be received.
    pub async fn synced(&mut self) {
        self.until("queue_empty", |e| {
            matches!(
                e,
                Event::Connection {
                    state: ConnectionState::Online
                }
            )
        })
        .await;
    }

    /// Waits for an incoming message with this text.
    pub async fn receives(&mut self, text: &str) -> wasm_client::Message {
        match self
            .until(
                &format!("message {text:?}"),
                |e| matches!(e, Event::Message { message } if message.text == text),
            )
            .await
        {
            Event::Message { message } => *message,
            _ => unreachable!(),
        }
    }
}

fn base32_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("base32"),
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30 s) at Unix time `unix`, computed independently of
/// the relay's totp-rs.
pub fn totp(secret_b32: &str, unix: u64) -> String {
    let mut mac =
        <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&base32_decode(secret_b32)).unwrap();
    mac.update(&(unix / 30).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    format!("{:06}", bin % 1_000_000)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
