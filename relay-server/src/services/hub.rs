//! The in-process hub of live WebSocket connections: one entry per connected device.
//!
//! Pushes never wait: each connection has a queue bounded in frames ([`PUSH_QUEUE`]) and in
//! bytes (the hub's budget, `--ws-push-queue-kib`), and [`Hub::push_to_device`] uses
//! `try_send`, so a slow client cannot block a sender. A client whose queue overflows is
//! disconnected ([`Kick::TooSlow`]); what it missed stays in the database and comes back
//! with its backlog when it reconnects. The hub holds no message state of its own: losing it
//! (a restart) loses nothing.
//!
//! The hub also ends connections whose authorization ended ([`Hub::revoke`]): a revoked or
//! signed-out session, a password change, a removed device, a deleted account.
//!
//! Scope: one relay process. Relays sharing one PostgreSQL database forward envelopes and
//! revocations to each other through [`crate::services::notify`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Capacity of a connection's push queue in frames (serialized frames waiting to be written).
pub const PUSH_QUEUE: usize = 1024;
/// Default byte budget of a connection's push queue (`--ws-push-queue-kib`): 8 MiB, about 90
/// envelopes of the largest size.
pub const PUSH_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// A serialized frame queued for a connection.
#[derive(Debug, Clone)]
pub struct Push {
    /// The envelope id, for `envelope` frames (a connection skips ones it already sent).
    pub eid: Option<i64>,
    /// The JSON text.
    pub text: Arc<str>,
    /// When a live envelope was committed (for the delivery latency metric).
    pub committed: Option<Instant>,
}

/// Why the hub ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// A newer connection of the same device took over.
    Replaced,
    /// The connection's push queue overflowed (frames or bytes).
    TooSlow,
    /// Its session ended or its device was removed ([`Hub::revoke`]).
    Unauthorized,
}

/// Connections whose authorization ended, to close at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// Those of one session (revoked or signed out).
    Session(i64),
    /// Those of every session of `user_id` except `keep` (a password change keeps the
    /// session that made it; a deleted account keeps none).
    User {
        /// The account.
        user_id: i64,
        /// The session whose connections stay.
        keep: Option<i64>,
    },
    /// Those of one device (removed).
    Device(i64),
}

impl Revoked {
    fn matches(self, conn: &Conn, device_id: i64) -> bool {
        match self {
            Self::Session(session) => conn.session_id == session,
            Self::User { user_id, keep } => {
                conn.user_id == user_id && keep != Some(conn.session_id)
            }
            Self::Device(device) => device_id == device,
        }
    }
}

struct Conn {
    conn_id: u64,
    user_id: i64,
    session_id: i64,
    tx: mpsc::Sender<Push>,
    /// Bytes of text queued in `tx` (the receiver subtracts what it takes).
    queued: Arc<AtomicUsize>,
    kick: Option<oneshot::Sender<Kick>>,
}

impl Conn {
    fn kick(&mut self, why: Kick) {
        if let Some(kick) = self.kick.take() {
            let _ = kick.send(why);
        }
    }
}

#[derive(Default)]
struct Inner {
    devices: HashMap<i64, Conn>,
    users: HashMap<i64, HashSet<i64>>,
}

impl Inner {
    fn remove(&mut self, device_id: i64) -> Option<Conn> {
        let conn = self.devices.remove(&device_id)?;
        if let Some(set) = self.users.get_mut(&conn.user_id) {
            set.remove(&device_id);
            if set.is_empty() {
                self.users.remove(&conn.user_id);
            }
        }
        Some(conn)
    }
}

/// The receiving end of a connection's push queue.
#[derive(Debug)]
pub struct PushQueue {
    rx: mpsc::Receiver<Push>,
    queued: Arc<AtomicUsize>,
}

impl PushQueue {
    fn took(&self, push: &Push) {
        self.queued.fetch_sub(push.text.len(), Ordering::Relaxed);
    }

    /// The next pushed frame; `None` once the hub dropped the connection. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Push> {
        let push = self.rx.recv().await?;
        self.took(&push);
        Some(push)
    }

    /// The next pushed frame if one is queued.
    pub fn try_recv(&mut self) -> Result<Push, mpsc::error::TryRecvError> {
        let push = self.rx.try_recv()?;
        self.took(&push);
        Ok(push)
    }
}

/// A registered connection: its id, its push queue and its kick signal.
#[derive(Debug)]
pub struct Registration {
    /// Identifies this connection among the device's successive connections.
    pub conn_id: u64,
    /// Frames pushed to this connection.
    pub pushes: PushQueue,
    /// Fires when the hub ends this connection.
    pub kicked: oneshot::Receiver<Kick>,
    /// Whether the user had no other connected device (they just came online).
    pub user_came_online: bool,
}

/// Live connections by device.
pub struct Hub {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    /// Most bytes queued for one connection.
    budget: usize,
}

impl Default for Hub {
    fn default() -> Self {
        Self::with_budget(PUSH_QUEUE_BYTES)
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock is never held across an await or a fallible call; a poisoned lock still
        // holds consistent maps.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A hub whose connections may each have up to `budget` bytes of pushes queued (a frame
    /// larger than the budget still goes to a connection with nothing queued).
    #[must_use]
    pub fn with_budget(budget: usize) -> Self {
        Self {
            inner: Mutex::default(),
            next_id: AtomicU64::new(0),
            budget,
        }
    }

    /// Registers a connection of `device_id`, signed in with `session_id`; an earlier
    /// connection of the same device is kicked with [`Kick::Replaced`].
    pub fn register(&self, user_id: i64, session_id: i64, device_id: i64) -> Registration {
        let conn_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(PUSH_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let pushes = PushQueue {
            rx,
            queued: queued.clone(),
        };
        let (kick, kicked) = oneshot::channel();
        let mut inner = self.lock();
        if let Some(mut old) = inner.remove(device_id) {
            old.kick(Kick::Replaced);
        }
        let set = inner.users.entry(user_id).or_default();
        let user_came_online = set.is_empty();
        set.insert(device_id);
        inner.devices.insert(
            device_id,
            Conn {
                conn_id,
                user_id,
                session_id,
                tx,
                queued,
                kick: Some(kick),
            },
        );
        Registration {
            conn_id,
            pushes,
            kicked,
            user_came_online,
        }
    }

    /// Removes the connection `conn_id` of `device_id` (if it is still the registered one: a
    /// replaced or kicked connection is already gone); returns whether its user has no
    /// connected device left.
    pub fn unregister(&self, user_id: i64, device_id: i64, conn_id: u64) -> bool {
        let mut inner = self.lock();
        let current = inner
            .devices
            .get(&device_id)
            .is_some_and(|c| c.conn_id == conn_id);
        if current {
            inner.remove(device_id);
        }
        !inner.users.contains_key(&user_id)
    }

    /// Queues `frame` for `device_id` if it is connected; returns whether it was queued.
    /// A full queue (frames or bytes) disconnects that device ([`Kick::TooSlow`]).
    pub fn push_to_device(&self, device_id: i64, frame: Push) -> bool {
        let mut inner = self.lock();
        let Some(conn) = inner.devices.get_mut(&device_id) else {
            return false;
        };
        let len = frame.text.len();
        let queued = conn.queued.fetch_add(len, Ordering::Relaxed);
        let over_budget = queued > 0 && queued.saturating_add(len) > self.budget;
        let sent = if over_budget {
            Err(mpsc::error::TrySendError::Full(frame))
        } else {
            conn.tx.try_send(frame)
        };
        if sent.is_err() {
            conn.queued.fetch_sub(len, Ordering::Relaxed);
        }
        match sent {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(device_id, "push queue full; disconnecting the slow client");
                if let Some(mut conn) = inner.remove(device_id) {
                    conn.kick(Kick::TooSlow);
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Ends the connections `what` names ([`Kick::Unauthorized`]); returns how many.
    pub fn revoke(&self, what: Revoked) -> usize {
        let mut inner = self.lock();
        let ended: Vec<i64> = inner
            .devices
            .iter()
            .filter(|(device_id, conn)| what.matches(conn, **device_id))
            .map(|(device_id, _)| *device_id)
            .collect();
        for device_id in &ended {
            if let Some(mut conn) = inner.remove(*device_id) {
                conn.kick(Kick::Unauthorized);
            }
        }
        ended.len()
    }

    /// Queues `frame` for every connected device of `user_id`.
    pub fn push_to_user(&self, user_id: i64, frame: &Push) {
        let devices: Vec<i64> = self
            .lock()
            .users
            .get(&user_id)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        for device_id in devices {
            self.push_to_device(device_id, frame.clone());
        }
    }

    /// Whether `user_id` has a connected device.
    pub fn is_online(&self, user_id: i64) -> bool {
        self.lock().users.contains_key(&user_id)
    }

    /// Whether `device_id` is connected.
    pub fn is_connected(&self, device_id: i64) -> bool {
        self.lock().devices.contains_key(&device_id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn push(text: &str) -> Push {
        Push {
            eid: None,
            text: text.into(),
            committed: None,
        }
    }

    #[test]
    fn a_second_connection_replaces_the_first() {
        let hub = Hub::default();
        let mut first = hub.register(1, 100, 10);
        assert!(first.user_came_online);
        let mut second = hub.register(1, 100, 10);
        assert!(second.user_came_online, "the replaced one no longer counts");
        assert_eq!(first.kicked.try_recv().unwrap(), Kick::Replaced);
        assert!(hub.push_to_device(10, push("x")));
        assert_eq!(&*second.pushes.try_recv().unwrap().text, "x");
        assert!(first.pushes.try_recv().is_err());
        // The old connection's unregister does not remove the new one.
        assert!(!hub.unregister(1, 10, first.conn_id));
        assert!(hub.is_connected(10));
        assert!(hub.unregister(1, 10, second.conn_id));
        assert!(!hub.is_online(1));
    }

    #[test]
    fn online_until_the_last_device_leaves() {
        let hub = Hub::default();
        let a = hub.register(1, 100, 10);
        let b = hub.register(1, 100, 11);
        assert!(a.user_came_online);
        assert!(!b.user_came_online);
        assert!(!hub.unregister(1, 10, a.conn_id));
        assert!(hub.is_online(1));
        assert!(hub.unregister(1, 11, b.conn_id));
        assert!(!hub.is_online(1));
    }

    #[test]
    fn a_full_queue_kicks_the_slow_client_without_blocking() {
        let hub = Hub::default();
        let mut slow = hub.register(1, 100, 10);
        for _ in 0..PUSH_QUEUE {
            assert!(hub.push_to_device(10, push("x")));
        }
        assert!(!hub.push_to_device(10, push("overflow")));
        assert_eq!(slow.kicked.try_recv().unwrap(), Kick::TooSlow);
        assert!(!hub.is_connected(10));
        // The kicked connection's own unregister reports the user offline.
        assert!(hub.unregister(1, 10, slow.conn_id));
        assert!(!hub.push_to_device(10, push("after")));
    }

    #[test]
    fn push_to_user_reaches_every_device() {
        let hub = Hub::default();
        let mut a = hub.register(1, 100, 10);
        let mut b = hub.register(1, 100, 11);
        let mut other = hub.register(2, 200, 20);
        hub.push_to_user(1, &push("t"));
        assert!(a.pushes.try_recv().is_ok());
        assert!(b.pushes.try_recv().is_ok());
        assert!(other.pushes.try_recv().is_err());
    }

    #[test]
    fn the_byte_budget_kicks_a_client_that_falls_behind() {
        let hub = Hub::with_budget(1000);
        let mut slow = hub.register(1, 100, 10);
        // One frame larger than the budget passes when nothing is queued.
        assert!(hub.push_to_device(10, push(&"x".repeat(1500))));
        assert_eq!(slow.pushes.try_recv().unwrap().text.len(), 1500);
        for _ in 0..3 {
            assert!(hub.push_to_device(10, push(&"y".repeat(300))));
        }
        // Taking one off makes room again: the budget counts what is queued now.
        assert!(slow.pushes.try_recv().is_ok());
        assert!(hub.push_to_device(10, push(&"z".repeat(300))));
        assert!(!hub.push_to_device(10, push(&"w".repeat(300))));
        assert_eq!(slow.kicked.try_recv().unwrap(), Kick::TooSlow);
        assert!(!hub.is_connected(10));
    }

    #[test]
    fn the_default_budget_is_bytes_not_only_frames() {
        let hub = Hub::default();
        let slow = hub.register(1, 100, 10);
        let big = "e".repeat(88 * 1024);
        let mut queued = 0;
        while hub.push_to_device(10, push(&big)) {
            queued += 1;
            assert!(queued < PUSH_QUEUE, "never kicked");
        }
        assert!(queued * big.len() <= PUSH_QUEUE_BYTES);
        drop(slow);
    }

    #[test]
    fn revoke_ends_the_named_connections_only() {
        let hub = Hub::default();
        let mut phone = hub.register(1, 100, 10);
        let mut laptop = hub.register(1, 101, 11);
        let mut tablet = hub.register(1, 102, 12);
        let mut other = hub.register(2, 200, 20);
        assert_eq!(hub.revoke(Revoked::Session(101)), 1);
        assert_eq!(laptop.kicked.try_recv().unwrap(), Kick::Unauthorized);
        assert_eq!(hub.revoke(Revoked::Device(12)), 1);
        assert_eq!(tablet.kicked.try_recv().unwrap(), Kick::Unauthorized);
        assert_eq!(
            hub.revoke(Revoked::User {
                user_id: 1,
                keep: Some(100)
            }),
            0
        );
        assert!(phone.kicked.try_recv().is_err());
        assert_eq!(
            hub.revoke(Revoked::User {
                user_id: 1,
                keep: None
            }),
            1
        );
        assert_eq!(phone.kicked.try_recv().unwrap(), Kick::Unauthorized);
        assert!(other.kicked.try_recv().is_err());
        assert!(hub.is_connected(20));
        assert!(!hub.is_online(1));
    }
}
