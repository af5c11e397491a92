//! Live push across relays sharing one PostgreSQL database: LISTEN/NOTIFY.
//!
//! After a relay commits a new envelope it runs `pg_notify(CHANNEL, "<relay>:<device>:<eid>")`.
//! Every relay listens on [`CHANNEL`] with its own tokio-postgres connection (diesel's
//! `PgConnection` can only poll for notifications); one that has the recipient device
//! connected loads the envelope and pushes it. The sender's own relay ignores its own
//! notifications (it pushed already). Notifications are only a wake-up: a relay that misses
//! one (listener reconnecting) loses nothing, the envelope stays queued and comes with the
//! device's next backlog. SQLite relays are single-process and skip all of this.

use crate::api::error::ApiError;
use crate::db::schema::envelopes;
use crate::db::{Backend, DbConnection};
use crate::services::delivery::Envelope;
use crate::services::hub::Push;
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

fn parse(payload: &str) -> Option<(u64, i64, i64)> {
    let mut parts = payload.split(':');
    let instance = parts.next()?.parse().ok()?;
    let device = parts.next()?.parse().ok()?;
    let eid = parts.next()?.parse().ok()?;
    Some((instance, device, eid))
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
        let Some((instance, device_id, eid)) = parse(&text) else {
            continue;
        };
        if instance == state.instance || !state.hub.is_connected(device_id) {
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
        assert_eq!(parse(&payload(7, 42, 1001)), Some((7, 42, 1001)));
        assert_eq!(parse("x:1:2"), None);
        assert_eq!(parse("1:2"), None);
    }
}
