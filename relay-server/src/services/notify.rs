//! Live push across relays sharing one PostgreSQL database: LISTEN/NOTIFY.
//!
//! After a relay commits a new envelope it runs `pg_notify(CHANNEL, "<relay>:<device>:<eid>")`.
//! Every relay listens on [`CHANNEL`] with its own tokio-postgres connection (diesel's
//! `PgConnection` can only poll for notifications); one that has the recipient device
//! connected loads the envelope and pushes it. The sender's own relay ignores its own
//! notifications (it pushed already). Notifications are only a wake-up: a relay that misses
//! one (listener reconnecting) loses nothing, the envelope stays queued and comes with the
//! device's next backlog. SQLite relays are single-process and skip all of this.
//!
//! Ended authorizations travel on the same channel ([`announce_revoked`]): a revoked session,
//! a password change, a removed device or a deleted account closes the affected sockets on
//! every relay at once (payloads `<relay>:s:<session>`, `<relay>:u:<user>:<kept session or ->`,
//! `<relay>:d:<device>`; a relay of an older version ignores them). They are sent inside the
//! transaction that ends the authorization, so they go out exactly when it commits. A relay
//! that misses one still closes the socket at its own once-a-minute re-check.

use crate::api::error::ApiError;
use crate::db::schema::envelopes;
use crate::db::{Backend, DbConnection};
use crate::services::delivery::Envelope;
use crate::services::hub::{Push, Revoked};
use crate::state::AppState;
use diesel::prelude::*;
use diesel::sql_types::Text;
use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

/// The notification channel.
pub const CHANNEL: &str = "securechat_envelopes";

fn payload(instance: u64, device_id: i64, eid: i64) -> String {
    format!("{instance}:{device_id}:{eid}")
}

/// A notification on [`CHANNEL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    /// Envelope `eid` was committed for `device`.
    Envelope { device: i64, eid: i64 },
    /// These connections lost their authorization.
    Revoked(Revoked),
}

fn revoked_payload(instance: u64, what: Revoked) -> String {
    match what {
        Revoked::Session(session) => format!("{instance}:s:{session}"),
        Revoked::User { user_id, keep } => match keep {
            Some(keep) => format!("{instance}:u:{user_id}:{keep}"),
            None => format!("{instance}:u:{user_id}:-"),
        },
        Revoked::Device(device) => format!("{instance}:d:{device}"),
    }
}

fn parse(payload: &str) -> Option<(u64, Notice)> {
    let parts: Vec<&str> = payload.split(':').collect();
    let instance = parts.first()?.parse().ok()?;
    let notice = match parts.get(1..)? {
        ["s", session] => Notice::Revoked(Revoked::Session(session.parse().ok()?)),
        ["u", user, "-"] => Notice::Revoked(Revoked::User {
            user_id: user.parse().ok()?,
            keep: None,
        }),
        ["u", user, keep] => Notice::Revoked(Revoked::User {
            user_id: user.parse().ok()?,
            keep: Some(keep.parse().ok()?),
        }),
        ["d", device] => Notice::Revoked(Revoked::Device(device.parse().ok()?)),
        [device, eid] => Notice::Envelope {
            device: device.parse().ok()?,
            eid: eid.parse().ok()?,
        },
        _ => return None,
    };
    Some((instance, notice))
}

/// Announces a committed envelope to the other relays (PostgreSQL only; no-op on SQLite).
pub fn announce(
    conn: &mut DbConnection,
    instance: u64,
    device_id: i64,
    eid: i64,
) -> Result<(), ApiError> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(payload(instance, device_id, eid))
            .execute(pg)?;
    }
    Ok(())
}

/// Tells the other relays (PostgreSQL only; no-op on SQLite) to close the connections `what`
/// names. Call it inside the transaction that ends the authorization.
pub fn announce_revoked(
    conn: &mut DbConnection,
    instance: u64,
    what: Revoked,
) -> Result<(), ApiError> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(revoked_payload(instance, what))
            .execute(pg)?;
    }
    Ok(())
}

fn queued(conn: &mut DbConnection, device_id: i64, eid: i64) -> Result<Option<Envelope>, ApiError> {
    Ok(envelopes::table
        .filter(envelopes::id.eq(eid))
        .filter(envelopes::recipient_device_id.eq(device_id))
        .select(Envelope::as_select())
        .first(conn)
        .optional()?)
}

/// Starts the listener task when the backend is PostgreSQL (and a tokio runtime is running).
pub fn spawn_listener(state: AppState) {
    if state.db.backend() != Backend::Postgres {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no runtime: cross-relay push disabled");
        return;
    };
    runtime.spawn(async move {
        loop {
            if let Err(e) = listen(&state).await {
                tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
            }
            state.listening.store(false, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}

async fn listen(state: &AppState) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) =
        tokio_postgres::connect(&state.config.database_url, tokio_postgres::NoTls).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "LISTEN connection error");
                    return;
                }
                None => return,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    state.listening.store(true, Ordering::Relaxed);
    while let Some(text) = rx.recv().await {
        let Some((instance, notice)) = parse(&text) else {
            continue;
        };
        if instance == state.instance {
            continue;
        }
        let (device_id, eid) = match notice {
            Notice::Envelope { device, eid } => (device, eid),
            Notice::Revoked(what) => {
                state.hub.revoke(what);
                continue;
            }
        };
        if !state.hub.is_connected(device_id) {
            continue;
        }
        let found = state.db.run(move |conn| queued(conn, device_id, eid)).await;
        match found {
            Ok(Some(envelope)) => {
                let text = crate::api::frames::envelope_text(&envelope);
                state.hub.push_to_device(
                    device_id,
                    Push {
                        eid: Some(envelope.eid),
                        text: text.into(),
                        // Committed on another relay: its clock is not comparable.
                        committed: None,
                    },
                );
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cross-relay push: envelope lookup failed"),
        }
    }
    driver.abort();
    drop(client);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        assert_eq!(
            parse(&payload(7, 42, 1001)),
            Some((
                7,
                Notice::Envelope {
                    device: 42,
                    eid: 1001
                }
            ))
        );
        assert_eq!(parse("x:1:2"), None);
        assert_eq!(parse("1:2"), None);
        assert_eq!(parse("1:2:3:4"), None);
    }

    #[test]
    fn revocations_round_trip() {
        for what in [
            Revoked::Session(5),
            Revoked::User {
                user_id: 6,
                keep: Some(9),
            },
            Revoked::User {
                user_id: 6,
                keep: None,
            },
            Revoked::Device(8),
        ] {
            assert_eq!(
                parse(&revoked_payload(3, what)),
                Some((3, Notice::Revoked(what)))
            );
        }
        assert_eq!(parse("3:s:x"), None);
        assert_eq!(parse("3:q:1"), None);
        assert_eq!(parse("3:u:1"), None);
    }
}
