//! One WebSocket connection's life: registration in the hub, presence, the backlog, then one
//! task multiplexing the client's frames, the hub's pushes, the pending commits and the
//! heartbeat, and at the end the close.
//!
//! Every write to the socket is bounded: it must finish within `--ws-write-timeout-ms`, and a
//! kick from the hub (replaced, too slow, authorization ended) interrupts it. A client that
//! stops reading fills its TCP window, then actix's queue, and the write times out: the
//! connection ends and its socket is shut down ([`PeerSocket::abort`]), so neither this task
//! nor the connection's buffers stay pinned by a peer that never reads.

use super::{
    CLOSE_IDLE, CLOSE_REPLACED, CLOSE_TOO_SLOW, CLOSE_UNAUTHORIZED, IDLE_INTERVALS, MAX_PENDING,
};
use crate::api::frames::{ServerFrame, WsErrorCode};
use crate::peer::PeerSocket;
use crate::services::delivery::{self, BATCH, Envelope};
use crate::services::hub::{Kick, Push, PushQueue, Registration};
use crate::services::writer::{AckResult, StoreResult};
use crate::state::AppState;
use actix_web::web::Bytes;
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Longest wait for the close frame to go out and the connection to end before its socket is
/// shut down (shorter if the write timeout is).
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub(super) fn close(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
}

/// Why the connection loop ended.
pub(super) enum End {
    /// Close with this reason.
    Close(CloseReason),
    /// The peer is gone (closed or the socket broke).
    Gone,
    /// A write did not finish within the write timeout: the peer stopped reading.
    Stalled,
}

/// What a kick from the hub ends the connection with.
fn kicked(kick: Kick) -> End {
    let (code, description) = match kick {
        Kick::Replaced => (
            CLOSE_REPLACED,
            "replaced by a newer connection of this device",
        ),
        Kick::TooSlow => (CLOSE_TOO_SLOW, "too slow; reconnect for the backlog"),
        Kick::Unauthorized => (CLOSE_UNAUTHORIZED, "session ended; sign in again"),
    };
    End::Close(close(CloseCode::Other(code), description))
}

/// The hub's kick signal, remembered once it fired (a oneshot may be awaited only once).
struct KickSignal {
    rx: oneshot::Receiver<Kick>,
    fired: Option<Kick>,
}

impl KickSignal {
    /// Resolves when the hub ends the connection (at once if it already did). Cancel-safe.
    async fn fired(&mut self) -> Kick {
        if let Some(kick) = self.fired {
            return kick;
        }
        // The hub dropped the connection without a reason: treat as replaced.
        let kick = (&mut self.rx).await.unwrap_or(Kick::Replaced);
        self.fired = Some(kick);
        kick
    }
}

/// A write to the socket.
enum Outgoing {
    Text(String),
    Ping,
    Pong(Bytes),
}

/// Who a new connection is, from the handshake.
pub(super) struct Peer {
    pub(super) state: AppState,
    pub(super) session_id: i64,
    pub(super) user_id: i64,
    pub(super) device_id: i64,
    pub(super) session: Session,
    /// The TCP socket under the connection, to shut down if it stalls (absent only when the
    /// server's connection hook did not run, as in unit tests of the handler).
    pub(super) socket: Option<PeerSocket>,
}

pub(super) struct Connection {
    pub(super) state: AppState,
    session_id: i64,
    pub(super) user_id: i64,
    pub(super) device_id: i64,
    session: Session,
    socket: Option<PeerSocket>,
    kick: KickSignal,
    write_timeout: Duration,
    /// Ids of envelopes sent from the backlog that the hub has not pushed yet: an envelope
    /// committed while the backlog was read arrives both ways, and the push is then skipped.
    /// Live pushes are not recorded (the hub pushes an envelope to a connection once), so
    /// this holds at most one backlog's worth of ids.
    backlog_sent: HashSet<i64>,
    /// Frames waiting for a commit, answered in the order they came (see [`MAX_PENDING`]).
    pub(super) pending: VecDeque<Pending>,
}

/// A frame whose answer waits, in arrival order.
pub(super) enum Pending {
    /// A direct send in the writer.
    Send {
        id: String,
        to_device: i64,
        rx: oneshot::Receiver<StoreResult>,
    },
    /// An ack in the writer.
    Ack { rx: oneshot::Receiver<AckResult> },
    /// An answer computed at once, queued behind earlier ones to keep the order.
    Ready(String),
}

/// The outcome of the oldest pending frame.
pub(super) enum Done {
    Send(Result<StoreResult, oneshot::error::RecvError>),
    Ack(Result<AckResult, oneshot::error::RecvError>),
    Ready,
}

/// Waits for the oldest pending frame and takes it off the queue (cancel-safe: nothing is
/// taken unless its outcome is returned).
pub(super) async fn next_done(pending: &mut VecDeque<Pending>) -> Option<(Pending, Done)> {
    let done = match pending.front_mut()? {
        Pending::Send { rx, .. } => Done::Send(rx.await),
        Pending::Ack { rx } => Done::Ack(rx.await),
        Pending::Ready(_) => Done::Ready,
    };
    pending.pop_front().map(|front| (front, done))
}

pub(super) fn text_push(text: String) -> Push {
    Push {
        eid: None,
        text: text.into(),
        committed: None,
    }
}

pub(super) fn envelope_frame(e: &Envelope) -> String {
    crate::api::frames::envelope_text(e)
}

/// Runs a connection from registration to close.
pub(super) async fn run(peer: Peer, mut stream: actix_ws::AggregatedMessageStream) {
    let _open = peer.state.metrics.ws_open();
    let hub = peer.state.hub.clone();
    let Registration {
        conn_id,
        mut pushes,
        kicked,
        user_came_online,
    } = hub.register(peer.user_id, peer.session_id, peer.device_id);
    let write_timeout = Duration::from_millis(peer.state.config.ws_write_timeout_ms.max(1));
    let mut conn = Connection {
        state: peer.state,
        session_id: peer.session_id,
        user_id: peer.user_id,
        device_id: peer.device_id,
        session: peer.session,
        socket: peer.socket,
        kick: KickSignal {
            rx: kicked,
            fired: None,
        },
        write_timeout,
        backlog_sent: HashSet::new(),
        pending: VecDeque::new(),
    };
    let end = conn.open(user_came_online, &mut stream, &mut pushes).await;
    let last = hub.unregister(conn.user_id, conn.device_id, conn_id);
    conn.finish_pending_detached();
    conn.finish(end, &mut stream).await;
    if last {
        conn.announce_offline().await;
    }
}

impl Connection {
    async fn open(
        &mut self,
        user_came_online: bool,
        stream: &mut actix_ws::AggregatedMessageStream,
        pushes: &mut PushQueue,
    ) -> End {
        let opened = async {
            if user_came_online {
                self.announce_online().await?;
            }
            self.send_backlog().await
        };
        match opened.await {
            Ok(()) => self.serve(stream, pushes).await,
            Err(end) => end,
        }
    }

    /// Ends the connection: the close frame (if any) within a short grace, then, if the
    /// connection is still up (a peer that does not read), its socket is shut down.
    async fn finish(&mut self, end: End, stream: &mut actix_ws::AggregatedMessageStream) {
        let grace = CLOSE_GRACE.min(self.write_timeout);
        let closed = match end {
            End::Gone => true,
            End::Stalled => false,
            End::Close(reason) => {
                let session = self.session.clone();
                tokio::time::timeout(grace, async move {
                    // The response ends after the close frame; the stream ends with it.
                    if session.close(Some(reason)).await.is_ok() {
                        while stream.recv().await.is_some() {}
                    }
                })
                .await
                .is_ok()
            }
        };
        if !closed && let Some(socket) = &self.socket {
            tracing::debug!(
                device_id = self.device_id,
                "WebSocket peer stalled; socket shut down"
            );
            socket.abort();
        }
    }

    /// One bounded write: it fails with [`End::Stalled`] after the write timeout, and gives
    /// way to a kick from the hub.
    async fn write(&mut self, out: Outgoing) -> Result<(), End> {
        let session = &mut self.session;
        let write = async move {
            match out {
                Outgoing::Text(text) => session.text(text).await,
                Outgoing::Ping => session.ping(b"").await,
                Outgoing::Pong(bytes) => session.pong(&bytes).await,
            }
        };
        tokio::select! {
            biased;
            kick = self.kick.fired() => Err(kicked(kick)),
            written = tokio::time::timeout(self.write_timeout, write) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(End::Gone),
                Err(_) => Err(End::Stalled),
            },
        }
    }

    pub(super) async fn write_text(&mut self, frame: String) -> Result<(), End> {
        self.write(Outgoing::Text(frame)).await
    }

    /// Presence to online friends, and theirs to this device.
    async fn announce_online(&mut self) -> Result<(), End> {
        for friend in self.presence(true).await {
            let theirs = ServerFrame::Presence {
                user: friend,
                online: true,
            }
            .to_text();
            self.write_text(theirs).await?;
        }
        Ok(())
    }

    /// Presence (offline) to online friends.
    async fn announce_offline(&mut self) {
        self.presence(false).await;
    }

    /// Pushes this user's presence to their online friends; returns those friends.
    async fn presence(&mut self, online: bool) -> Vec<i64> {
        let user_id = self.user_id;
        let friends = match self
            .state
            .db
            .run(move |conn| delivery::friend_ids(conn, user_id))
            .await
        {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "presence: friends lookup failed");
                return Vec::new();
            }
        };
        let frame = text_push(
            ServerFrame::Presence {
                user: user_id,
                online,
            }
            .to_text(),
        );
        let mut online_friends = Vec::new();
        for friend in friends {
            if self.state.hub.is_online(friend) {
                self.state.hub.push_to_user(friend, &frame);
                online_friends.push(friend);
            }
        }
        online_friends
    }

    /// Prunes expired envelopes, sends the backlog in batches, then `queue_empty`.
    async fn send_backlog(&mut self) -> Result<(), End> {
        let device_id = self.device_id;
        let now = self.state.clock.now();
        let prep = self
            .state
            .db
            .run(move |conn| {
                delivery::touch_device(conn, device_id, now)?;
                delivery::prune_expired(conn, Some(device_id), now)
            })
            .await;
        if let Err(e) = prep {
            tracing::warn!(error = %e, "backlog: prune failed");
        }
        let mut after = 0_i64;
        loop {
            let now = self.state.clock.now();
            let batch = self
                .state
                .db
                .run(move |conn| delivery::backlog(conn, device_id, after, now, BATCH))
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "backlog fetch failed");
                    End::Close(close(
                        CloseCode::Error,
                        "storage unavailable; reconnect later",
                    ))
                })?;
            let done = batch.len() < usize::try_from(BATCH).unwrap_or(usize::MAX);
            for envelope in &batch {
                after = after.max(envelope.eid);
                self.backlog_sent.insert(envelope.eid);
                self.write_text(envelope_frame(envelope)).await?;
                self.state.metrics.delivered(None);
            }
            if done {
                break;
            }
        }
        self.write_text(ServerFrame::QueueEmpty {}.to_text()).await
    }

    async fn serve(
        &mut self,
        stream: &mut actix_ws::AggregatedMessageStream,
        pushes: &mut PushQueue,
    ) -> End {
        let period = Duration::from_secs(self.state.config.ws_heartbeat_secs.max(1));
        let idle_timeout = period.saturating_mul(IDLE_INTERVALS);
        let mut heartbeat = tokio::time::interval(period);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut last_auth_check = Instant::now();
        loop {
            let step = tokio::select! {
                kick = self.kick.fired() => Err(kicked(kick)),
                pushed = pushes.recv() => match pushed {
                    Some(frame) => self.push(frame).await,
                    // The hub let go of the connection: it kicked it first, say why.
                    None => Err(kicked(self.kick.fired().await)),
                },
                done = next_done(&mut self.pending), if !self.pending.is_empty() => match done {
                    Some((front, done)) => self.complete(front, done).await,
                    None => Ok(()),
                },
                msg = stream.recv(), if self.pending.len() < MAX_PENDING => {
                    last_heard = Instant::now();
                    match msg {
                        Some(Err(actix_ws::ProtocolError::Io(e)))
                            if !e.to_string().contains("maximum") =>
                        {
                            self.drain_after_disconnect(stream).await;
                            Err(End::Gone)
                        }
                        msg => self.incoming(msg).await,
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > idle_timeout {
                        Err(End::Close(close(CloseCode::Other(CLOSE_IDLE), "idle timeout")))
                    } else if last_auth_check.elapsed() >= idle_timeout && {
                        last_auth_check = Instant::now();
                        !self.still_authorized().await
                    } {
                        Err(kicked(Kick::Unauthorized))
                    } else {
                        self.write(Outgoing::Ping).await
                    }
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// The peer closed the TCP connection. actix-ws reports that before the frames it had
    /// already read from the socket (a client that sends an `ack` and closes at once), and then
    /// yields those frames: they are taken here, so an ack or send the client wrote before
    /// hanging up still takes effect. Nothing can be answered any more.
    async fn drain_after_disconnect(&mut self, stream: &mut actix_ws::AggregatedMessageStream) {
        loop {
            match tokio::time::timeout(Duration::from_secs(1), stream.recv()).await {
                Ok(Some(Ok(AggregatedMessage::Text(text)))) => {
                    // Answers fail (the socket is gone); the writer work is queued all the same.
                    let _ = self.frame(&text).await;
                }
                Ok(Some(Ok(
                    AggregatedMessage::Binary(_)
                    | AggregatedMessage::Ping(_)
                    | AggregatedMessage::Pong(_),
                ))) => {}
                Ok(Some(Ok(AggregatedMessage::Close(_)) | Err(_)) | None) | Err(_) => return,
            }
        }
    }

    /// Re-checks the session and the device once a minute (a logout or revocation ends the
    /// connection at once through the hub; this catches expiry, and a NOTIFY another relay
    /// missed). A database failure keeps the connection: the check runs again later.
    async fn still_authorized(&self) -> bool {
        let (session_id, user_id, device_id) = (self.session_id, self.user_id, self.device_id);
        let now = self.state.clock.now();
        self.state
            .db
            .run(move |conn| delivery::still_authorized(conn, session_id, user_id, device_id, now))
            .await
            .unwrap_or(true)
    }

    /// A frame pushed by the hub; envelopes already sent on this connection are skipped.
    async fn push(&mut self, frame: Push) -> Result<(), End> {
        if let Some(eid) = frame.eid
            && self.backlog_sent.remove(&eid)
        {
            return Ok(());
        }
        self.write_text(frame.text.to_string()).await?;
        if frame.eid.is_some() {
            self.state.metrics.delivered(frame.committed);
        }
        Ok(())
    }

    async fn incoming(
        &mut self,
        msg: Option<Result<AggregatedMessage, actix_ws::ProtocolError>>,
    ) -> Result<(), End> {
        match msg {
            None => Err(End::Gone),
            Some(Err(actix_ws::ProtocolError::Overflow)) => {
                Err(End::Close(close(CloseCode::Size, "frame too large")))
            }
            Some(Err(actix_ws::ProtocolError::Io(e))) if e.to_string().contains("maximum") => {
                Err(End::Close(close(CloseCode::Size, "message too large")))
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "WebSocket protocol error");
                Err(End::Close(close(CloseCode::Protocol, "protocol error")))
            }
            Some(Ok(AggregatedMessage::Text(text))) => self.frame(&text).await,
            Some(Ok(AggregatedMessage::Binary(_))) => {
                self.reply(ServerFrame::error(
                    WsErrorCode::BinaryNotSupported,
                    "binary frames are not part of the protocol; send JSON text frames",
                ))
                .await
            }
            Some(Ok(AggregatedMessage::Ping(bytes))) => self.write(Outgoing::Pong(bytes)).await,
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            Some(Ok(AggregatedMessage::Close(_))) => {
                Err(End::Close(close(CloseCode::Normal, "bye")))
            }
        }
    }
}
