//! Group commit for the envelope queue: a writer thread (one on SQLite, [`POSTGRES_WRITERS`]
//! on PostgreSQL, each owning a share of the recipient devices) stores envelopes and deletes
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
use crate::db::{Backend, Db, DbConnection, write_transaction};
use crate::metrics::Metrics;
use crate::services::delivery::{self, DeliveryError, NewEnvelope, QUEUE_CAP, Stored};
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

/// Handle to the writer threads (cheap to clone). The threads end when every handle is gone.
#[derive(Clone, Debug)]
pub struct Writer {
    /// One queue per writer thread; a job goes to the thread of its recipient device.
    shards: Arc<[mpsc::Sender<Job>]>,
    metrics: Arc<Metrics>,
}

/// Writer threads on PostgreSQL. Each runs its own transactions, so one's statements and
/// commit overlap another's; every job for one recipient device goes to the same thread, so
/// the envelopes of one sender to one device are stored in the order they were sent, and
/// one device's queue count and acks stay within one thread. SQLite has one writer lock:
/// one thread.
pub const POSTGRES_WRITERS: usize = 4;

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
    /// Starts the writer threads on `db`'s pool; batch sizes go to `metrics`.
    pub fn start(db: Db, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let count = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => POSTGRES_WRITERS,
        };
        let mut shards = Vec::with_capacity(count);
        for n in 0..count {
            let (jobs, rx) = mpsc::channel(QUEUE);
            let (db, metrics) = (db.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("envelope-writer-{n}"))
                .spawn(move || run(&db, &metrics, rx))?;
            shards.push(jobs);
        }
        Ok(Self {
            shards: shards.into(),
            metrics,
        })
    }

    /// The queue of the thread that handles `device`'s envelopes.
    fn shard(&self, device: i64) -> Option<&mpsc::Sender<Job>> {
        let n = u64::try_from(self.shards.len()).unwrap_or(1).max(1);
        let i = usize::try_from(device.unsigned_abs() % n).unwrap_or(0);
        self.shards.get(i)
    }

    /// Queues a send; the receiver yields its outcome after the commit.
    pub async fn store(&self, new: NewEnvelope, now: i64) -> oneshot::Receiver<StoreResult> {
        let (reply, rx) = oneshot::channel();
        let Some(shard) = self.shard(new.to_device) else {
            let _ = reply.send(Err(DeliveryError::Api(gone())));
            return rx;
        };
        match shard.send(Job::Store { new, now, reply }).await {
            Ok(()) => {
                self.metrics.writer_jobs.inc();
            }
            Err(mpsc::error::SendError(Job::Store { reply, .. })) => {
                let _ = reply.send(Err(DeliveryError::Api(gone())));
            }
            Err(_) => {}
        }
        rx
    }

    /// Queues an ack; the receiver yields its outcome after the commit.
    pub async fn ack(&self, device: i64, ids: Vec<i64>) -> oneshot::Receiver<AckResult> {
        let (reply, rx) = oneshot::channel();
        let Some(shard) = self.shard(device) else {
            let _ = reply.send(Err(gone()));
            return rx;
        };
        match shard.send(Job::Ack { device, ids, reply }).await {
            Ok(()) => {
                self.metrics.writer_jobs.inc();
            }
            Err(mpsc::error::SendError(Job::Ack { reply, .. })) => {
                let _ = reply.send(Err(gone()));
            }
            Err(_) => {}
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
        if db.take_checkpoint_request() {
            checkpoint(db);
        }
    }
}

/// SQLite: a checkpoint between two transactions of the (only) writer, which completes and
/// lets the log restart (see `db::start_checkpointer`).
fn checkpoint(db: &Db) {
    use diesel::connection::SimpleConnection;
    let done = db.get().map_err(|e| e.to_string()).and_then(|mut conn| {
        conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);")
            .map_err(|e| e.to_string())
    });
    if let Err(e) = done {
        tracing::debug!(error = %e, "writer checkpoint failed; asked again later");
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
    /// `(sender user, recipient device)` → the recipient's owner or the refusal.
    reach: HashMap<(i64, i64), Result<i64, DeliveryError>>,
    /// Recipient device → unexpired envelopes queued for it.
    queued: HashMap<i64, i64>,
}

/// A send's state while its batch is built.
enum Slot {
    /// Answered already (refused, or a repeat of a queued envelope).
    Done(StoreResult),
    /// To insert: index into the insert list.
    Insert(usize, i64),
    /// A repeat of an earlier send of this batch (index into the insert list).
    RepeatOf(usize, i64),
}

/// Runs a batch: every send's checks (memoized), one query for the repeats among them, the
/// acks in order, and one multi-row insert for the new envelopes (so a batch costs a handful
/// of statements, not several per envelope: this is what makes PostgreSQL's round trips
/// affordable). Job order is kept: a later send with the same `(sender device, id, recipient
/// device)` as an earlier one of the batch is a repeat of it, queue caps count the envelopes
/// inserted before it, and new envelopes get ids in job order.
fn run_batch(conn: &mut DbConnection, batch: &[Job]) -> Result<Vec<Outcome>, ApiError> {
    let mut memo = Memo::default();
    // 1. Checks that do not depend on the other sends: device owner and contact.
    let mut checked: Vec<Option<Result<i64, DeliveryError>>> = Vec::with_capacity(batch.len());
    for job in batch {
        checked.push(match job {
            Job::Store { new, .. } => match check(conn, &mut memo, new) {
                Err(DeliveryError::Api(e)) => return Err(e),
                other => Some(other),
            },
            Job::Ack { .. } => None,
        });
    }
    // 2. Repeats of envelopes already queued, in one query.
    let keys: Vec<(i64, &str, i64)> = batch
        .iter()
        .zip(&checked)
        .filter_map(|(job, checked)| match (job, checked) {
            (Job::Store { new, .. }, Some(Ok(_))) => {
                Some((new.from_device, new.client_id.as_str(), new.to_device))
            }
            _ => None,
        })
        .collect();
    let queued_before = delivery::find_queued_many(conn, &keys)?;
    // 3. In job order: acks, queue caps, repeats, the insert list.
    let mut slots: Vec<Option<Slot>> = Vec::with_capacity(batch.len());
    let mut acks: Vec<Option<Vec<(i64, String)>>> = Vec::with_capacity(batch.len());
    let mut inserts: Vec<&NewEnvelope> = Vec::new();
    let mut in_batch: HashMap<(i64, &str, i64), usize> = HashMap::new();
    for (job, checked) in batch.iter().zip(checked) {
        match (job, checked) {
            (Job::Ack { device, ids, .. }, _) => {
                let deleted = delivery::ack_rows(conn, *device, ids)?;
                if let Some(count) = memo.queued.get_mut(device) {
                    *count = count.saturating_sub(i64::try_from(deleted.len()).unwrap_or(0));
                }
                slots.push(None);
                acks.push(Some(deleted));
            }
            (Job::Store { new, now, .. }, checked) => {
                acks.push(None);
                let to_user = match checked {
                    Some(Ok(to_user)) => to_user,
                    Some(Err(e)) => {
                        slots.push(Some(Slot::Done(Err(e))));
                        continue;
                    }
                    None => {
                        slots.push(Some(Slot::Done(Err(DeliveryError::Api(
                            ApiError::internal("send without checks"),
                        )))));
                        continue;
                    }
                };
                let key = (new.from_device, new.client_id.as_str(), new.to_device);
                let owned = (new.from_device, new.client_id.clone(), new.to_device);
                if let Some(envelope) = queued_before.get(&owned).cloned() {
                    slots.push(Some(Slot::Done(Ok(Stored {
                        envelope,
                        to_user,
                        fresh: false,
                    }))));
                    continue;
                }
                if let Some(&first) = in_batch.get(&key) {
                    slots.push(Some(Slot::RepeatOf(first, to_user)));
                    continue;
                }
                let queued = match memo.queued.get(&new.to_device) {
                    Some(queued) => *queued,
                    None => {
                        let queued = delivery::queued_count(conn, new.to_device, *now)?;
                        memo.queued.insert(new.to_device, queued);
                        queued
                    }
                };
                if queued >= QUEUE_CAP {
                    slots.push(Some(Slot::Done(Err(DeliveryError::QueueFull))));
                    continue;
                }
                memo.queued.insert(new.to_device, queued.saturating_add(1));
                in_batch.insert(key, inserts.len());
                slots.push(Some(Slot::Insert(inserts.len(), to_user)));
                inserts.push(new);
            }
        }
    }
    // 4. One insert for every new envelope (a unique-key race with another relay fails the
    // batch; each job is then retried alone by `delivery::store`, which handles it).
    let now = batch
        .iter()
        .find_map(|job| match job {
            Job::Store { now, .. } => Some(*now),
            Job::Ack { .. } => None,
        })
        .unwrap_or(0);
    let eids = delivery::insert_many(conn, &inserts, now)?;
    if eids.len() != inserts.len() {
        return Err(ApiError::internal(
            "multi-row insert returned a different count",
        ));
    }
    let stored = |i: usize, to_user: i64, fresh: bool| -> StoreResult {
        match (inserts.get(i), eids.get(i)) {
            (Some(new), Some(&eid)) => Ok(Stored {
                envelope: new.queued_as(eid, now),
                to_user,
                fresh,
            }),
            _ => Err(DeliveryError::Api(ApiError::internal(
                "insert list mismatch",
            ))),
        }
    };
    Ok(slots
        .into_iter()
        .zip(acks)
        .map(|(slot, ack)| match (slot, ack) {
            (Some(Slot::Done(result)), _) => Outcome::Store(result),
            (Some(Slot::Insert(i, to_user)), _) => Outcome::Store(stored(i, to_user, true)),
            (Some(Slot::RepeatOf(i, to_user)), _) => Outcome::Store(stored(i, to_user, false)),
            (None, Some(deleted)) => Outcome::Ack(deleted),
            (None, None) => Outcome::Ack(Vec::new()),
        })
        .collect())
}

/// [`delivery::reach`], memoized for the transaction (refusals too; storage errors are not
/// kept: they fail the batch).
fn check(
    conn: &mut DbConnection,
    memo: &mut Memo,
    new: &NewEnvelope,
) -> Result<i64, DeliveryError> {
    let key = (new.from_user, new.to_device);
    if let Some(known) = memo.reach.get(&key) {
        return known.clone();
    }
    let result = delivery::reach(conn, new.from_user, new.to_device);
    if !matches!(result, Err(DeliveryError::Api(_))) {
        memo.reach.insert(key, result.clone());
    }
    result
}
