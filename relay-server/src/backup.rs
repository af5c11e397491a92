//! `securechat-relay backup FILE`: a consistent copy of the relay's SQLite database, taken while
//! the relay runs (SQLite's `VACUUM INTO`, which reads one snapshot of the write-ahead-logged
//! database and writes a compact, self-contained database file). Writers are not held up for
//! more than the copy's read transaction. PostgreSQL deployments use `pg_dump` instead
//! (docs/deployment.md), and attachments are files under the blob directory, copied
//! separately.

use crate::db::{Backend, DbError, connection_string};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a backup was not written.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The relay runs on PostgreSQL.
    #[error(
        "this relay uses PostgreSQL: back it up with `pg_dump --format=custom` (see docs/deployment.md)"
    )]
    NotSqlite,
    /// The URL names no supported backend.
    #[error(transparent)]
    Url(#[from] DbError),
    /// The target exists already (a backup never overwrites a file).
    #[error("{0} exists already: a backup never overwrites a file")]
    Exists(PathBuf),
    /// SQLite could not open the database or write the copy.
    #[error("backup failed: {0}")]
    Sqlite(String),
}

/// Copies the SQLite database at `database_url` into the new file `to`, waiting up to `wait`
/// for a lock; returns the size of the copy in bytes.
pub fn sqlite_snapshot(database_url: &str, to: &Path, wait: Duration) -> Result<u64, BackupError> {
    if Backend::of(database_url)? != Backend::Sqlite {
        return Err(BackupError::NotSqlite);
    }
    if to.exists() {
        return Err(BackupError::Exists(to.to_owned()));
    }
    let source = connection_string(database_url, Backend::Sqlite);
    if !Path::new(&source).is_file() {
        return Err(BackupError::Sqlite(format!("no database file at {source}")));
    }
    let target = to
        .to_str()
        .ok_or_else(|| BackupError::Sqlite("the backup path is not valid UTF-8".into()))?;
    let mut conn =
        SqliteConnection::establish(&source).map_err(|e| BackupError::Sqlite(e.to_string()))?;
    conn.batch_execute(&format!("PRAGMA busy_timeout = {};", wait.as_millis()))
        .map_err(|e| BackupError::Sqlite(e.to_string()))?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<diesel::sql_types::Text, _>(target)
        .execute(&mut conn)
        .map_err(|e| BackupError::Sqlite(e.to_string()))?;
    std::fs::metadata(to)
        .map(|m| m.len())
        .map_err(|e| BackupError::Sqlite(e.to_string()))
}
