//! Storage: one diesel code path over SQLite and PostgreSQL.
//!
//! `DbConnection` is a diesel `MultiConnection`; queries written once run on either backend.
//! Connections come from an r2d2 pool, and every query runs on the blocking thread pool
//! ([`Db::run`]) so the async workers never wait on the database.

pub mod schema;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::time::Duration;

/// Migrations for each backend, embedded in the binary and applied at start.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
/// See [`SQLITE_MIGRATIONS`].
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL, for several relays sharing one database.
    Pg(PgConnection),
    /// SQLite, the zero-configuration default.
    Sqlite(SqliteConnection),
}

/// Which backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://…`
    Sqlite,
    /// `postgres://…` or `postgresql://…`
    Postgres,
}

/// Errors of the storage layer. Their text is logged, never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names no supported backend.
    #[error("unsupported database URL (expected sqlite://… or postgres://…)")]
    UnsupportedUrl,
    /// Could not connect or check out a connection.
    #[error("database connection: {0}")]
    Connection(String),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migration(String),
    /// A query failed.
    #[error("database query: {0}")]
    Query(#[from] diesel::result::Error),
    /// The blocking task was cancelled.
    #[error("database task cancelled")]
    Cancelled,
}

impl Backend {
    /// Detects the backend of a URL.
    pub fn of(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite://") || url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(DbError::UnsupportedUrl)
        }
    }
}

/// diesel's SQLite connection takes a path, not a URL.
pub(crate) fn connection_string(url: &str, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url)
            .to_owned(),
        Backend::Postgres => url.to_owned(),
    }
}

#[derive(Debug)]
struct Pragmas {
    /// How long a statement waits for SQLite's write lock.
    busy_timeout: Duration,
}

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(conn) = conn {
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                 PRAGMA wal_autocheckpoint = 0;",
                self.busy_timeout.as_millis()
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// How long a request waits for a pooled connection or SQLite's write lock by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Connections a pool keeps open while idle; it grows on demand up to its size (8 on SQLite,
/// 16 on PostgreSQL). Relays sharing one PostgreSQL server then hold few idle connections.
const MIN_IDLE: u32 = 2;

/// The connection pool shared by the request handlers.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<DbConnection>>,
    backend: Backend,
    /// Held by every clone; the SQLite checkpointer stops when the last one is dropped.
    _alive: std::sync::Arc<()>,
    /// Set by the SQLite checkpointer when the write-ahead log keeps growing (see
    /// [`start_checkpointer`]); taken by the envelope writer between transactions.
    checkpoint_wanted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connects once (so a wrong URL fails fast with the real cause), applies pending
    /// migrations and builds the pool, whose requests wait up to [`DEFAULT_WAIT`] for a
    /// connection or SQLite's write lock.
    pub fn connect(url: &str) -> Result<Self, DbError> {
        Self::connect_waiting(url, DEFAULT_WAIT)
    }

    /// [`Self::connect`], waiting up to `wait` for a pooled connection or SQLite's write lock
    /// before a request fails.
    pub fn connect_waiting(url: &str, wait: Duration) -> Result<Self, DbError> {
        let backend = Backend::of(url)?;
        let target = connection_string(url, backend);
        let mut first =
            DbConnection::establish(&target).map_err(|e| DbError::Connection(e.to_string()))?;
        if let DbConnection::Sqlite(conn) = &mut first {
            // The wait first: changing the journal mode needs the lock.
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;",
                wait.as_millis()
            ))
            .map_err(DbError::Query)?;
        }
        run_migrations(&mut first)?;
        drop(first);
        let size = match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        };
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(MIN_IDLE))
            .connection_timeout(wait)
            .connection_customizer(Box::new(Pragmas { busy_timeout: wait }))
            .build(ConnectionManager::<DbConnection>::new(target.clone()))
            .map_err(|e| DbError::Connection(e.to_string()))?;
        let alive = std::sync::Arc::new(());
        let checkpoint_wanted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if backend == Backend::Sqlite {
            start_checkpointer(
                &target,
                std::sync::Arc::downgrade(&alive),
                checkpoint_wanted.clone(),
            )?;
        }
        Ok(Self {
            pool,
            backend,
            _alive: alive,
            checkpoint_wanted,
        })
    }

    /// The backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// SQLite: whether the checkpointer asked a writer to checkpoint (and clears the request).
    #[must_use]
    pub fn take_checkpoint_request(&self) -> bool {
        self.checkpoint_wanted
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Checks out a connection (blocking).
    pub fn get(&self) -> Result<PooledConnection<ConnectionManager<DbConnection>>, DbError> {
        self.pool
            .get()
            .map_err(|e| DbError::Connection(e.to_string()))
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let pool = self.pool.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| E::from(DbError::Connection(e.to_string())))?;
            f(&mut conn)
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(_) => Err(E::from(DbError::Cancelled)),
        }
    }
}

/// Log size (pages of 4 KiB) above which the envelope writer is asked to checkpoint: 16 MiB.
const WAL_PAGES_BEFORE_WRITER_CHECKPOINT: i32 = 4096;

/// A row of `PRAGMA wal_checkpoint`: pages in the log, pages copied to the database.
#[derive(diesel::QueryableByName)]
struct CheckpointResult {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

/// How often the SQLite checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// SQLite: pool connections do not checkpoint the write-ahead log when they commit
/// (`wal_autocheckpoint = 0`): an automatic checkpoint runs inside the commit that crosses
/// the threshold and syncs the database file, stalling that commit (and every send waiting
/// on the envelope writer) for milliseconds. Instead this thread runs a PASSIVE checkpoint
/// every [`CHECKPOINT_EVERY`] on its own connection; it never blocks writers or readers, and
/// with `synchronous = NORMAL` commits stay durable through the log (SQLite's WAL mode
/// documentation). The thread ends when the last [`Db`] clone is dropped.
///
/// A PASSIVE checkpoint copies the log up to where it stood when it began; under sustained
/// writes the log never gets fully copied, so SQLite never restarts it and it grows (by
/// gigabytes in a minute at full load, and copying that later stalls the disk). When the log
/// still holds more than [`WAL_PAGES_BEFORE_WRITER_CHECKPOINT`] pages after a checkpoint, the
/// thread asks the envelope writer ([`Db::take_checkpoint_request`]) to checkpoint between two
/// of its transactions, where nothing appends meanwhile, so the log restarts.
fn start_checkpointer(
    path: &str,
    alive: std::sync::Weak<()>,
    wanted: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), DbError> {
    let mut conn =
        SqliteConnection::establish(path).map_err(|e| DbError::Connection(e.to_string()))?;
    conn.batch_execute("PRAGMA busy_timeout = 5000;")
        .map_err(DbError::Query)?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                if alive.upgrade().is_none() {
                    break;
                }
                match diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
                    .load::<CheckpointResult>(&mut conn)
                {
                    Ok(rows) => {
                        if rows
                            .first()
                            .is_some_and(|r| r.log > WAL_PAGES_BEFORE_WRITER_CHECKPOINT)
                        {
                            wanted.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed; retried later"),
                }
            }
        })
        .map_err(|e| DbError::Connection(format!("checkpoint thread: {e}")))?;
    Ok(())
}

/// Applies the pending migrations of the connection's backend.
pub fn run_migrations(conn: &mut DbConnection) -> Result<(), DbError> {
    let result = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| DbError::Migration(e.to_string()))
}

/// Reverts every applied migration (tests of the down scripts).
pub fn revert_all_migrations(conn: &mut DbConnection) -> Result<(), DbError> {
    let result = match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Pg(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| DbError::Migration(e.to_string()))
}

/// Runs `f` in a transaction for a read-then-write sequence. On SQLite the transaction starts
/// with `BEGIN IMMEDIATE`, taking the write lock up front (waiting up to `busy_timeout`):
/// a plain deferred transaction that reads and then writes fails at once with
/// `SQLITE_BUSY` when another connection committed in between (its snapshot is stale, and
/// waiting cannot help), which concurrent friend requests hit. On PostgreSQL it is an
/// ordinary transaction. Nested `transaction` calls inside `f` become savepoints.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let DbConnection::Sqlite(sqlite) = conn else {
        return conn.transaction(f);
    };
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    let result = f(conn);
    let DbConnection::Sqlite(sqlite) = conn else {
        return Err(E::from(diesel::result::Error::BrokenTransactionManager));
    };
    match result {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(sqlite)?;
            Ok(value)
        }
        Err(e) => {
            // A failed rollback marks the connection broken; the pool then discards it.
            let _ = AnsiTransactionManager::rollback_transaction(sqlite);
            Err(e)
        }
    }
}
