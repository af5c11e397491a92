//! Operational metrics, served at `GET /metrics` (with `--metrics`) in the OpenMetrics text
//! format, which Prometheus scrapes natively.
//!
//! Only aggregate numbers of this relay process: no user, device or envelope appears in a
//! label. The queue depth is counted in the database at scrape time, so it is right for
//! several relays sharing one PostgreSQL database (each reports the same, shared number);
//! every other metric is this process's own.

use crate::api::error::ApiError;
use crate::db::schema::envelopes;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use diesel::prelude::*;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Instant;

/// The content type of the exposition (OpenMetrics 1.0 text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the delivery latency buckets, in seconds (0.5 ms to 5 s).
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Upper bounds of the writer batch buckets (jobs per transaction).
pub const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 16.0, 64.0, 128.0, 256.0, 512.0];

type StatusLabel = [(&'static str, u16); 1];

/// The relay's metrics; cheap to update from any task (atomics).
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub ws_connections: Gauge,
    /// Envelopes committed from senders (a repeated send of a queued envelope is not counted).
    pub envelopes_received: Counter,
    /// Envelope frames written to a recipient's socket, live or from the backlog (a
    /// redelivery after a reconnect counts again).
    pub envelopes_delivered: Counter,
    /// Envelopes deleted by their recipient's acknowledgement.
    pub envelopes_acked: Counter,
    /// Unexpired envelopes waiting in the database (set at scrape time).
    pub queue_depth: Gauge,
    /// Seconds from the commit of an envelope to its live push onto the recipient's socket.
    pub delivery_latency: Histogram,
    /// HTTP responses by status code (WebSocket upgrades count once, as 101).
    pub http_requests: Family<StatusLabel, Counter>,
    /// Sends and acks per envelope-writer transaction (group commit).
    pub writer_batch: Histogram,
    /// Sends and acks handed to the envelope writers (minus the batch histogram's sum: the
    /// jobs waiting for a transaction).
    pub writer_jobs: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every metric (counters get their `_total` suffix from the encoder).
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let ws_connections = Gauge::default();
        let envelopes_received = Counter::default();
        let envelopes_delivered = Counter::default();
        let envelopes_acked = Counter::default();
        let queue_depth = Gauge::default();
        let delivery_latency = Histogram::new(LATENCY_BUCKETS);
        let http_requests = Family::<StatusLabel, Counter>::default();
        let writer_batch = Histogram::new(BATCH_BUCKETS);
        let writer_jobs = Counter::default();
        registry.register(
            "securechat_ws_connections",
            "Open WebSocket connections on this relay",
            ws_connections.clone(),
        );
        registry.register(
            "securechat_envelopes_received",
            "Envelopes accepted from senders (committed)",
            envelopes_received.clone(),
        );
        registry.register(
            "securechat_envelopes_delivered",
            "Envelopes pushed to a recipient's WebSocket, live or from the backlog",
            envelopes_delivered.clone(),
        );
        registry.register(
            "securechat_envelopes_acked",
            "Envelopes acknowledged by their recipient (deleted)",
            envelopes_acked.clone(),
        );
        registry.register(
            "securechat_queue_depth",
            "Unexpired envelopes waiting in the database for their recipient device",
            queue_depth.clone(),
        );
        registry.register(
            "securechat_delivery_latency_seconds",
            "Seconds from an envelope's commit to its live push onto the recipient's WebSocket",
            delivery_latency.clone(),
        );
        registry.register(
            "securechat_http_requests",
            "HTTP responses by status code",
            http_requests.clone(),
        );
        registry.register(
            "securechat_writer_batch_jobs",
            "Sends and acks committed per envelope-writer transaction (group commit)",
            writer_batch.clone(),
        );
        registry.register(
            "securechat_writer_jobs",
            "Sends and acks handed to the envelope writers (queued or committed)",
            writer_jobs.clone(),
        );
        Self {
            writer_batch,
            writer_jobs,
            registry,
            ws_connections,
            envelopes_received,
            envelopes_delivered,
            envelopes_acked,
            queue_depth,
            delivery_latency,
            http_requests,
        }
    }

    /// Records an envelope pushed to its recipient; `committed` is when it was committed, for
    /// a live push (a backlog one has none).
    pub fn delivered(&self, committed: Option<Instant>) {
        self.envelopes_delivered.inc();
        if let Some(at) = committed {
            self.delivery_latency.observe(at.elapsed().as_secs_f64());
        }
    }

    /// Records an HTTP response.
    pub fn http_response(&self, status: u16) {
        self.http_requests.get_or_create(&[("code", status)]).inc();
    }

    /// Marks a WebSocket connection open until the guard drops.
    #[must_use]
    pub fn ws_open(&self) -> ConnectionGuard {
        self.ws_connections.inc();
        ConnectionGuard {
            gauge: self.ws_connections.clone(),
        }
    }

    /// The exposition text.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Decrements the connections gauge when dropped (however the connection task ends).
#[derive(Debug)]
pub struct ConnectionGuard {
    gauge: Gauge,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Unexpired envelopes in the database.
fn queued_envelopes(conn: &mut crate::db::DbConnection, now: i64) -> Result<i64, ApiError> {
    Ok(envelopes::table
        .filter(envelopes::expires_at.gt(now))
        .count()
        .get_result(conn)?)
}

/// `GET /metrics` (routed only with `--metrics`; not part of the API or its OpenAPI
/// document). Answers 503 when the database does not (the queue depth needs it).
pub async fn scrape(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let depth = state
        .db
        .run(move |conn| queued_envelopes(conn, now))
        .await?;
    state.metrics.queue_depth.set(depth);
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(state.metrics.render()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_help_and_type() {
        let m = Metrics::new();
        m.envelopes_received.inc();
        m.delivered(Some(Instant::now()));
        m.http_response(200);
        {
            let _open = m.ws_open();
            assert_eq!(m.ws_connections.get(), 1);
        }
        assert_eq!(m.ws_connections.get(), 0);
        let text = m.render();
        for (name, kind) in [
            ("securechat_ws_connections", "gauge"),
            ("securechat_envelopes_received", "counter"),
            ("securechat_envelopes_delivered", "counter"),
            ("securechat_envelopes_acked", "counter"),
            ("securechat_queue_depth", "gauge"),
            ("securechat_delivery_latency_seconds", "histogram"),
            ("securechat_http_requests", "counter"),
            ("securechat_writer_batch_jobs", "histogram"),
        ] {
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{text}");
            assert!(text.contains(&format!("# HELP {name} ")), "{text}");
        }
        assert!(
            text.contains("securechat_envelopes_received_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("securechat_delivery_latency_seconds_count 1\n"),
            "{text}"
        );
        assert!(
            text.contains("securechat_http_requests_total{code=\"200\"} 1\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
