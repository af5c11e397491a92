//! Shared state handed to every handler: no globals.

use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::services::hub::Hub;
use crate::services::passwords::Passwords;
use crate::services::ratelimit::RateLimits;
use crate::services::writer::Writer;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Everything a request handler may need.
#[derive(Clone)]
pub struct AppState {
    /// Database pool.
    pub db: Db,
    /// Configuration.
    pub config: Arc<Config>,
    /// Outgoing mail.
    pub mailer: Mailer,
    /// Time source.
    pub clock: Clock,
    /// Abuse limits.
    pub limits: Arc<RateLimits>,
    /// The process-wide cap on concurrent argon2 runs (every password hash and check).
    pub passwords: Arc<Passwords>,
    /// Attachment bytes reserved by uploads in progress (`services::attachments`).
    pub uploads: Arc<crate::services::attachments::Reservations>,
    /// Live WebSocket connections (in-process).
    pub hub: Arc<Hub>,
    /// This relay process's random id (to skip its own NOTIFY wake-ups).
    pub instance: u64,
    /// Whether the PostgreSQL LISTEN connection is up (cross-relay push).
    pub listening: Arc<AtomicBool>,
    /// Operational metrics (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// Group commit of envelope sends and acks (`services::writer`).
    pub writer: Writer,
    /// The key secrets are encrypted under at rest (`services::at_rest`).
    pub at_rest: Arc<crate::services::at_rest::AtRestKey>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}
