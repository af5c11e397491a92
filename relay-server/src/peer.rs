//! Per-TCP-connection state, set up when a worker takes a connection
//! ([`on_connect`], registered with `HttpServer::on_connect`) and found by handlers through
//! `HttpRequest::conn_data`.
//!
//! [`PeerSocket`] lets the WebSocket task shut down the socket of a peer that stopped reading:
//! actix's HTTP/1 dispatcher has no write timeout, so without it a connection whose client
//! never reads keeps its buffers until the client goes away.
//!
//! [`PeerSlot`] counts the open connections of each client address (IPv6: its /64) against
//! `--max-connections-per-ip`; a connection over the cap is answered 429 and closed
//! ([`crate::api::transport`]).

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use std::any::Any;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, Shutdown};
use std::sync::{Arc, Mutex, MutexGuard};

/// A duplicate handle of a connection's TCP socket (the same socket, its own descriptor,
/// closed when the last clone drops).
#[derive(Debug, Clone)]
pub struct PeerSocket(Arc<socket2::Socket>);

impl PeerSocket {
    fn of(stream: &TcpStream) -> Option<Self> {
        match socket2::SockRef::from(stream).try_clone() {
            Ok(socket) => Some(Self(Arc::new(socket))),
            Err(e) => {
                tracing::warn!(error = %e, "cannot duplicate a connection's socket");
                None
            }
        }
    }

    /// Shuts the socket down both ways: actix's pending write fails, the dispatcher drops the
    /// connection and its buffers, the peer sees the connection end.
    pub fn abort(&self) {
        if let Err(e) = self.0.shutdown(Shutdown::Both) {
            tracing::debug!(error = %e, "shutting down a stalled socket failed");
        }
    }
}

/// Open connections per client address.
#[derive(Debug)]
pub struct PeerCounts {
    open: Mutex<HashMap<IpAddr, usize>>,
    /// Most open connections per address; 0: no cap.
    cap: usize,
}

impl PeerCounts {
    /// Counts with `cap` connections per address at most (0: no cap).
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self {
            open: Mutex::default(),
            cap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Never held across a call that can panic: a poisoned map is still consistent.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The slot of a new connection from `ip`: admitted while its address is under the cap.
    #[must_use]
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> PeerSlot {
        let key = bucket(ip);
        let mut open = self.lock();
        let count = open.entry(key).or_insert(0);
        let admitted = self.cap == 0 || *count < self.cap;
        if admitted {
            *count += 1;
        } else if *count == 0 {
            open.remove(&key);
        }
        PeerSlot {
            counts: self.clone(),
            key,
            admitted,
        }
    }

    /// Open (admitted) connections from `ip`'s address.
    #[must_use]
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.lock().get(&bucket(ip)).copied().unwrap_or(0)
    }
}

/// The address a connection counts against: IPv4 as is, IPv6 by /64 (one subscriber's
/// prefix), IPv4-mapped IPv6 as IPv4.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// A connection's place in its address's count, given back when the connection ends.
#[derive(Debug)]
pub struct PeerSlot {
    counts: Arc<PeerCounts>,
    key: IpAddr,
    admitted: bool,
}

impl PeerSlot {
    /// Whether the connection is within its address's cap.
    #[must_use]
    pub fn admitted(&self) -> bool {
        self.admitted
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if !self.admitted {
            return;
        }
        let mut open = self.counts.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The TCP stream under `conn`: plain, or under rustls.
fn tcp_stream(conn: &dyn Any) -> Option<&TcpStream> {
    if let Some(tcp) = conn.downcast_ref::<TcpStream>() {
        return Some(tcp);
    }
    conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()
        .map(|tls| tls.get_ref().0)
}

/// The connection hook (`HttpServer::on_connect`): counts the connection against its
/// address and records its socket for the handlers.
pub fn on_connect(counts: Arc<PeerCounts>) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync {
    move |conn, data| {
        let Some(tcp) = tcp_stream(conn) else {
            return;
        };
        if let Ok(addr) = tcp.peer_addr() {
            data.insert(counts.open(addr.ip()));
        }
        if let Some(socket) = PeerSocket::of(tcp) {
            data.insert(socket);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_open_connections_per_address() {
        let counts = Arc::new(PeerCounts::new(2));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let a = counts.open(ip);
        let b = counts.open(ip);
        let c = counts.open(ip);
        assert!(a.admitted() && b.admitted());
        assert!(!c.admitted());
        assert!(counts.open("192.0.2.8".parse().unwrap()).admitted());
        drop(c);
        assert_eq!(counts.open_from(ip), 2);
        drop(a);
        assert_eq!(counts.open_from(ip), 1);
        assert!(counts.open(ip).admitted());
        drop(b);
        assert_eq!(counts.open_from(ip), 0);
    }

    #[test]
    fn ipv6_counts_by_64() {
        let counts = Arc::new(PeerCounts::new(1));
        let one = counts.open("2001:db8:1:2::1".parse().unwrap());
        assert!(one.admitted());
        assert!(
            !counts
                .open("2001:db8:1:2:ffff::9".parse().unwrap())
                .admitted()
        );
        assert!(counts.open("2001:db8:1:3::1".parse().unwrap()).admitted());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let m = counts.open(mapped);
        assert!(m.admitted());
        assert!(!counts.open(v4).admitted());
    }

    #[test]
    fn zero_means_no_cap() {
        let counts = Arc::new(PeerCounts::new(0));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let slots: Vec<PeerSlot> = (0..100).map(|_| counts.open(ip)).collect();
        assert!(slots.iter().all(PeerSlot::admitted));
    }
}
