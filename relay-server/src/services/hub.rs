//! The in-process hub of live WebSocket connections: one entry per connected device.
//!
//! Pushes never wait: each connection has a bounded queue and [`Hub::push_to_device`] uses
//! `try_send`, so a slow client cannot block a sender. A client whose queue overflows is
//! disconnected ([`Kick::TooSlow`]); what it missed stays in the database and comes back
//! with its backlog when it reconnects. The hub holds no message state of its own: losing it
//! (a restart) loses nothing.
//!
//! Scope: one relay process. Several relays sharing one PostgreSQL database do not see each
//! other's connections yet (a later LISTEN/NOTIFY bridge); their clients still get every
//! envelope from the backlog on reconnect.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Capacity of a connection's push queue (serialized frames waiting to be written).
pub const PUSH_QUEUE: usize = 1024;

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
    /// The connection's push queue overflowed.
    TooSlow,
}

struct Conn {
    conn_id: u64,
    user_id: i64,
    tx: mpsc::Sender<Push>,
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

/// A registered connection: its id, its push queue and its kick signal.
#[derive(Debug)]
pub struct Registration {
    /// Identifies this connection among the device's successive connections.
    pub conn_id: u64,
    /// Frames pushed to this connection.
    pub pushes: mpsc::Receiver<Push>,
    /// Fires when the hub ends this connection.
    pub kicked: oneshot::Receiver<Kick>,
    /// Whether the user had no other connected device (they just came online).
    pub user_came_online: bool,
}

/// Live connections by device.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
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

    /// Registers a connection of `device_id`; an earlier connection of the same device is
    /// kicked with [`Kick::Replaced`].
    pub fn register(&self, user_id: i64, device_id: i64) -> Registration {
        let conn_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, pushes) = mpsc::channel(PUSH_QUEUE);
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
                tx,
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
    /// A full queue disconnects that device ([`Kick::TooSlow`]).
    pub fn push_to_device(&self, device_id: i64, frame: Push) -> bool {
        let mut inner = self.lock();
        let Some(conn) = inner.devices.get_mut(&device_id) else {
            return false;
        };
        match conn.tx.try_send(frame) {
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
        let mut first = hub.register(1, 10);
        assert!(first.user_came_online);
        let mut second = hub.register(1, 10);
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
        let a = hub.register(1, 10);
        let b = hub.register(1, 11);
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
        let mut slow = hub.register(1, 10);
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
        let mut a = hub.register(1, 10);
        let mut b = hub.register(1, 11);
        let mut other = hub.register(2, 20);
        hub.push_to_user(1, &push("t"));
        assert!(a.pushes.try_recv().is_ok());
        assert!(b.pushes.try_recv().is_ok());
        assert!(other.pushes.try_recv().is_err());
    }
}
