//! Group commit for the envelope queue: one writer thread stores envelopes and deletes
//! acknowledged ones for every WebSocket connection of this relay process, many per
//! transaction.
//!
//! Connections hand their `send` and `ack` work to [`Writer`] and get the outcome through a
//! one-shot channel once the transaction that holds it has committed, so "accepted" still
//! means "committed". While one transaction commits, the next jobs queue up; the writer then
//! takes everything queued (up to [`MAX_BATCH`]) into the next transaction. Under light load a
//! batch holds one job and nothing waits for a timer; under heavy load one commit (and, on
//! SQLite, one write-lock acquisition) serves hundreds of envelopes, and no two connections of
//! this process compete for SQLite's write lock.
//!
//! Each job keeps the rules of [`delivery::store`] and [`delivery::ack`], in job order inside
//! the transaction (a repeated send in the same batch finds the first one). Refusals
//! (`not_friends`, `unknown_device`, `queue_full`) are per job and do not affect the others.
//! If the batch transaction fails as a whole (a storage error, or on PostgreSQL a unique-key
//! race with another relay process), every job of the batch is retried alone with
//! [`delivery::store`] / [`delivery::ack`], which answer each one correctly.

use crate::api::error::{ApiError, ErrorCode};
use crate::db::schema::envelopes;
use crate::db::{Db, DbConnection, write_transaction};
use crate::metrics::Metrics;
use crate::services::delivery::{
    self, DeliveryError, ENVELOPE_TTL, Envelope, NewEnvelope, QUEUE_CAP, Stored,
};
use crate::services::friends::are_friends;
use diesel::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most jobs in one transaction.
pub const MAX_BATCH: usize = 512;
/// Jobs waiting for the writer before submitters wait (back-pressure).
const QUEUE: usize = 8192;

/// The outcome of a send.
pub type StoreResult = Result<Stored, DeliveryError>;
/// The outcome of an ack: `(sender device, client id)` of each deleted envelope.
pub type AckResult = Result<Vec<(i64, String)>, ApiError>;

enum Job {
    Store {
        new: NewEnvelope,
        now: i64,
        reply: oneshot::Sender<StoreResult>,
    },
    Ack {
        device: i64,
        ids: Vec<i64>,
        reply: oneshot::Sender<AckResult>,
    },
}

/// Handle to the writer thread (cheap to clone). The thread ends when every handle is gone.
#[derive(Clone, Debug)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store { .. } => f.write_str("Job::Store"),
            Self::Ack { .. } => f.write_str("Job::Ack"),
        }
    }
}

fn gone() -> ApiError {
    ApiError::new(ErrorCode::Unavailable, "service temporarily unavailable")
}

impl Writer {
    /// Starts the writer thread on `db`'s pool; batch sizes go to `metrics`.
    pub fn start(db: Db, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("envelope-writer".into())
            .spawn(move || run(&db, &metrics, rx))?;
        Ok(Self { jobs })
    }

    /// Queues a send; the receiver yields its outcome after the commit.
    pub async fn store(&self, new: NewEnvelope, now: i64) -> oneshot::Receiver<StoreResult> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(Job::Store { reply, .. })) =
            self.jobs.send(Job::Store { new, now, reply }).await
        {
            let _ = reply.send(Err(DeliveryError::Api(gone())));
        }
        rx
    }

    /// Queues an ack; the receiver yields its outcome after the commit.
    pub async fn ack(&self, device: i64, ids: Vec<i64>) -> oneshot::Receiver<AckResult> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(Job::Ack { reply, .. })) =
            self.jobs.send(Job::Ack { device, ids, reply }).await
        {
            let _ = reply.send(Err(gone()));
        }
        rx
    }
}

fn run(db: &Db, metrics: &Metrics, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        #[allow(clippy::cast_precision_loss)] // at most MAX_BATCH
        metrics.writer_batch.observe(batch.len() as f64);
        process(db, &mut batch);
    }
}

/// What one job produced inside the batch transaction.
enum Outcome {
    Store(StoreResult),
    Ack(Vec<(i64, String)>),
}

fn process(db: &Db, batch: &mut Vec<Job>) {
    let mut conn = match db.get() {
        Ok(conn) => conn,
        Err(e) => {
            let e = ApiError::from(e);
            for job in batch.drain(..) {
                match job {
                    Job::Store { reply, .. } => {
                        let _ = reply.send(Err(DeliveryError::Api(e.clone())));
                    }
                    Job::Ack { reply, .. } => {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
            return;
        }
    };
    match write_transaction(&mut conn, |conn| run_batch(conn, batch)) {
        Ok(outcomes) => {
            for (job, outcome) in batch.drain(..).zip(outcomes) {
                match (job, outcome) {
                    (Job::Store { reply, .. }, Outcome::Store(result)) => {
                        let _ = reply.send(result);
                    }
                    (Job::Ack { reply, .. }, Outcome::Ack(deleted)) => {
                        let _ = reply.send(Ok(deleted));
                    }
                    // run_batch answers each job with its own kind of outcome.
                    (Job::Store { reply, .. }, Outcome::Ack(_)) => {
                        let _ = reply.send(Err(DeliveryError::Api(ApiError::internal(
                            "writer outcome mismatch",
                        ))));
                    }
                    (Job::Ack { reply, .. }, Outcome::Store(_)) => {
                        let _ = reply.send(Err(ApiError::internal("writer outcome mismatch")));
                    }
                }
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, jobs = batch.len(), "batch failed; one job per transaction");
            for job in batch.drain(..) {
                match job {
                    Job::Store { new, now, reply } => {
                        let _ = reply.send(delivery::store(&mut conn, &new, now));
                    }
                    Job::Ack { device, ids, reply } => {
                        let _ = reply.send(delivery::ack(&mut conn, device, &ids));
                    }
                }
            }
        }
    }
}

/// Per-transaction memo of the lookups a send repeats.
#[derive(Default)]
struct Memo {
    owners: HashMap<i64, Option<i64>>,
    friends: HashMap<(i64, i64), bool>,
    queued: HashMap<i64, i64>,
}

fn run_batch(conn: &mut DbConnection, batch: &[Job]) -> Result<Vec<Outcome>, ApiError> {
    let mut memo = Memo::default();
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let outcome = match job {
            Job::Store { new, now, .. } => match store_one(conn, &mut memo, new, *now) {
                Err(DeliveryError::Api(e)) => return Err(e),
                result => Outcome::Store(result),
            },
            Job::Ack { device, ids, .. } => {
                let deleted = delivery::ack_rows(conn, *device, ids)?;
                if let Some(count) = memo.queued.get_mut(device) {
                    *count = count.saturating_sub(i64::try_from(deleted.len()).unwrap_or(0));
                }
                Outcome::Ack(deleted)
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// [`delivery::store`]'s rules for one job inside the batch transaction.
fn store_one(
    conn: &mut DbConnection,
    memo: &mut Memo,
    new: &NewEnvelope,
    now: i64,
) -> Result<Stored, DeliveryError> {
    let owner = match memo.owners.get(&new.to_device) {
        Some(owner) => *owner,
        None => {
            let owner = delivery::device_owner(conn, new.to_device)?;
            memo.owners.insert(new.to_device, owner);
            owner
        }
    };
    let Some(to_user) = owner else {
        return Err(DeliveryError::UnknownDevice);
    };
    if to_user != new.from_user {
        let pair = (new.from_user, to_user);
        let friends = match memo.friends.get(&pair) {
            Some(friends) => *friends,
            None => {
                let friends = are_friends(conn, new.from_user, to_user)?;
                memo.friends.insert(pair, friends);
                friends
            }
        };
        if !friends {
            return Err(DeliveryError::NotFriends);
        }
    }
    if let Some(envelope) =
        delivery::find_queued(conn, new.from_device, &new.client_id, new.to_device)?
    {
        return Ok(Stored {
            envelope,
            to_user,
            fresh: false,
        });
    }
    let queued = match memo.queued.get(&new.to_device) {
        Some(queued) => *queued,
        None => {
            let queued = delivery::queued_count(conn, new.to_device, now)?;
            memo.queued.insert(new.to_device, queued);
            queued
        }
    };
    if queued >= QUEUE_CAP {
        return Err(DeliveryError::QueueFull);
    }
    // A unique-key failure here (another relay process raced us on PostgreSQL) fails the
    // batch, and the job is retried alone by `delivery::store`, which handles the race.
    let eid = diesel::insert_into(envelopes::table)
        .values((
            envelopes::recipient_device_id.eq(new.to_device),
            envelopes::sender_user_id.eq(new.from_user),
            envelopes::sender_device_id.eq(new.from_device),
            envelopes::client_id.eq(&new.client_id),
            envelopes::kind.eq(new.kind),
            envelopes::ciphertext.eq(&new.ciphertext),
            envelopes::created_at.eq(now),
            envelopes::expires_at.eq(now.saturating_add(ENVELOPE_TTL)),
        ))
        .returning(envelopes::id)
        .get_result::<i64>(conn)?;
    memo.queued.insert(new.to_device, queued.saturating_add(1));
    Ok(Stored {
        envelope: Envelope {
            eid,
            from_user: new.from_user,
            from_device: new.from_device,
            client_id: new.client_id.clone(),
            kind: new.kind,
            ciphertext: new.ciphertext.clone(),
            sent_at: now,
            room: None,
        },
        to_user,
        fresh: true,
    })
}
