//! Encrypted attachments: opaque blobs (a crypto-core attachment ciphertext, whose key travels
//! inside an end-to-end encrypted message) streamed to a file under the blob directory,
//! addressed by an unguessable 128-bit id, with a size cap, a per-account quota and an expiry.
//! The relay never holds the key and never reads the bytes.
//!
//! An upload first reserves its bytes (the declared `Content-Length`, or all the room left) in
//! this process's [`Reservations`], so parallel uploads of one account cannot each see the same
//! free room; it is then written to `tmp-<id>` chunk by chunk (memory stays bounded by the
//! chunk size), checked against the cap and the reservation as it grows, flushed to disk,
//! renamed to `<id>` and recorded — in a transaction that locks the owner and checks the quota
//! again against the recorded attachments, which also covers other relays sharing the
//! database. A failed or refused upload leaves neither file nor row. The files of a deleted
//! account are removed with it, and [`sweep_orphans`] removes files that have no row.

use crate::api::error::{ApiError, ErrorCode};
use crate::db::DbConnection;
use crate::db::schema::attachments;
use crate::services::ratelimit::Action;
use crate::state::AppState;
use diesel::prelude::*;
use futures_util::{Stream, StreamExt};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::io::AsyncWriteExt;

/// Largest accepted attachment, in bytes (25 MiB).
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;

/// An attachment as its uploader sees it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// 32 lowercase hex characters (128 random bits).
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

/// Checks the form of an attachment id (32 lowercase hex digits), so a path never reaches the
/// file system.
pub fn parse_id(raw: &str) -> Result<String, ApiError> {
    if raw.len() == 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidInput,
            "an attachment id is 32 lowercase hexadecimal characters",
        ))
    }
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such attachment (or it expired)")
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("an attachment is at most {MAX_ATTACHMENT_BYTES} bytes"),
    )
}

fn quota_exceeded(quota: u64) -> ApiError {
    ApiError::new(
        ErrorCode::QuotaExceeded,
        format!("this upload would exceed the account's attachment quota of {quota} bytes"),
    )
}

fn blob_path(state: &AppState, id: &str) -> PathBuf {
    state.config.blob_dir.join(id)
}

/// Seconds a blob file without a row is left alone by [`sweep_orphans`]: it may belong to an
/// upload being recorded right now (here or on another relay sharing the blob directory).
pub const ORPHAN_GRACE_SECS: i64 = 3600;

/// Bytes of uploads in progress in this process, per account.
#[derive(Debug, Default)]
pub struct Reservations {
    reserved: Mutex<HashMap<i64, u64>>,
}

/// Bytes reserved for one upload; given back when dropped (the upload recorded or failed).
struct Reservation<'a> {
    table: &'a Reservations,
    owner: i64,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.table.reserved.lock()
            && let Some(held) = map.get_mut(&self.owner)
        {
            *held = held.saturating_sub(self.bytes);
            if *held == 0 {
                map.remove(&self.owner);
            }
        }
    }
}

impl Reservations {
    /// Reserves `wanted` bytes (all the room left when `None`) for an upload by `owner`, who
    /// holds `used` bytes of recorded attachments; `quota_exceeded` when they do not fit next
    /// to the uploads of `owner` already in progress.
    fn reserve(
        &self,
        owner: i64,
        used: u64,
        quota: u64,
        wanted: Option<u64>,
    ) -> Result<Reservation<'_>, ApiError> {
        let mut map = self
            .reserved
            .lock()
            .map_err(|_| ApiError::internal("attachment reservations lock poisoned"))?;
        let held = map.get(&owner).copied().unwrap_or(0);
        let room = quota.saturating_sub(used).saturating_sub(held);
        let bytes = match wanted {
            Some(n) if n <= room => n,
            None if room > 0 => room.min(MAX_ATTACHMENT_BYTES),
            _ => return Err(quota_exceeded(quota)),
        };
        map.insert(owner, held.saturating_add(bytes));
        Ok(Reservation {
            table: self,
            owner,
            bytes,
        })
    }
}

/// Bytes of live attachments `owner` holds.
fn used_bytes(conn: &mut DbConnection, owner: i64, now: i64) -> Result<u64, ApiError> {
    let sizes = attachments::table
        .filter(attachments::owner_id.eq(owner))
        .filter(attachments::expires_at.gt(now))
        .select(attachments::size)
        .load::<i64>(conn)?;
    Ok(sizes
        .into_iter()
        .map(|s| u64::try_from(s).unwrap_or(0))
        .fold(0u64, u64::saturating_add))
}

/// Serializes the quota checks of one account's uploads on PostgreSQL (a row lock on the
/// owner until the transaction ends). SQLite's write transaction already excludes every other
/// writer.
fn lock_owner(conn: &mut DbConnection, owner: i64) -> Result<(), ApiError> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind::<diesel::sql_types::BigInt, _>(owner)
            .execute(pg)?;
    }
    Ok(())
}

/// Streams an upload to disk and records it. `declared` is the request's `Content-Length`,
/// when it gave one (refused early when already too large). Uploads are rate limited per
/// account and per IP ([`Action::Upload`]).
pub async fn upload<S, E>(
    state: &AppState,
    owner: i64,
    ip: IpAddr,
    declared: Option<u64>,
    mut body: S,
) -> Result<Stored, ApiError>
where
    S: Stream<Item = Result<actix_web::web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    state.limits.check_ip(Action::Upload, ip)?;
    state
        .limits
        .check_account(Action::Upload, &owner.to_string())?;
    let quota = state
        .config
        .attachment_quota_mib
        .saturating_mul(1024 * 1024);
    let now = state.clock.now();
    if declared.is_some_and(|n| n > MAX_ATTACHMENT_BYTES) {
        return Err(too_large());
    }
    let used = state
        .db
        .run(move |conn| used_bytes(conn, owner, now))
        .await?;
    let reservation = state.uploads.reserve(owner, used, quota, declared)?;
    let room = reservation.bytes;

    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(ApiError::internal)?;
    let id = hex::encode(raw);
    tokio::fs::create_dir_all(&state.config.blob_dir)
        .await
        .map_err(ApiError::internal)?;
    let tmp = state.config.blob_dir.join(format!("tmp-{id}"));
    let written = write_stream(&tmp, &mut body, room, quota).await;
    let size = match written {
        Ok(size) => size,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    };
    let final_path = blob_path(state, &id);
    if let Err(e) = tokio::fs::rename(&tmp, &final_path).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(ApiError::internal(e));
    }
    let ttl =
        i64::try_from(state.config.attachment_ttl_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
    let expires_at = now.saturating_add(ttl);
    let size_i64 = i64::try_from(size).map_err(ApiError::internal)?;
    let row_id = id.clone();
    let inserted = state
        .db
        .run(move |conn| {
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                // Again, now that the bytes are here: uploads recorded meanwhile (finished
                // since our first look, or on another relay) count too.
                lock_owner(conn, owner)?;
                if used_bytes(conn, owner, now)?.saturating_add(size) > quota {
                    return Err(quota_exceeded(quota));
                }
                diesel::insert_into(attachments::table)
                    .values((
                        attachments::id.eq(&row_id),
                        attachments::owner_id.eq(owner),
                        attachments::size.eq(size_i64),
                        attachments::created_at.eq(now),
                        attachments::expires_at.eq(expires_at),
                    ))
                    .execute(conn)?;
                Ok(())
            })
        })
        .await;
    drop(reservation);
    if let Err(e) = inserted {
        let _ = tokio::fs::remove_file(&final_path).await;
        return Err(e);
    }
    Ok(Stored {
        id,
        size,
        expires_at,
    })
}

/// Writes `body` to `path`, refusing it once it grows past the cap or past `room` (the bytes
/// reserved for it).
async fn write_stream<S, E>(
    path: &std::path::Path,
    body: &mut S,
    room: u64,
    quota: u64,
) -> Result<u64, ApiError>
where
    S: Stream<Item = Result<actix_web::web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(ApiError::internal)?;
    let mut size: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("the upload was interrupted: {e}"),
            )
        })?;
        size = size.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
        if size > MAX_ATTACHMENT_BYTES {
            return Err(too_large());
        }
        if size > room {
            return Err(quota_exceeded(quota));
        }
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    if size == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "an attachment cannot be empty",
        ));
    }
    file.sync_all().await.map_err(ApiError::internal)?;
    Ok(size)
}

/// The file of a live attachment, for any signed-in user who has its id.
pub async fn open(state: &AppState, id: &str) -> Result<PathBuf, ApiError> {
    let id = parse_id(id)?;
    let now = state.clock.now();
    let key = id.clone();
    let live: Option<String> = state
        .db
        .run(move |conn| {
            attachments::table
                .filter(attachments::id.eq(&key))
                .filter(attachments::expires_at.gt(now))
                .select(attachments::id)
                .first::<String>(conn)
                .optional()
                .map_err(ApiError::from)
        })
        .await?;
    if live.is_none() {
        return Err(not_found());
    }
    let path = blob_path(state, &id);
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(not_found());
    }
    Ok(path)
}

/// Deletes one of `owner`'s attachments (anyone else's looks nonexistent).
pub async fn delete(state: &AppState, owner: i64, id: &str) -> Result<(), ApiError> {
    let id = parse_id(id)?;
    let key = id.clone();
    let deleted = state
        .db
        .run(move |conn| {
            diesel::delete(
                attachments::table
                    .filter(attachments::id.eq(&key))
                    .filter(attachments::owner_id.eq(owner)),
            )
            .execute(conn)
            .map_err(ApiError::from)
        })
        .await?;
    if deleted == 0 {
        return Err(not_found());
    }
    let _ = tokio::fs::remove_file(blob_path(state, &id)).await;
    Ok(())
}

/// Deletes expired attachments (rows and files), and the files of accounts that no longer
/// exist; returns how many were removed.
pub async fn prune_expired(state: &AppState) -> Result<usize, ApiError> {
    let now = state.clock.now();
    let expired: Vec<String> = state
        .db
        .run(move |conn| {
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                let ids = attachments::table
                    .filter(attachments::expires_at.le(now))
                    .select(attachments::id)
                    .load::<String>(conn)?;
                diesel::delete(attachments::table.filter(attachments::expires_at.le(now)))
                    .execute(conn)?;
                Ok(ids)
            })
        })
        .await?;
    for id in &expired {
        let _ = tokio::fs::remove_file(blob_path(state, id)).await;
    }
    Ok(expired.len())
}

/// The ids of `owner`'s attachments (read before deleting the account, whose rows cascade).
pub fn ids_of_owner(conn: &mut DbConnection, owner: i64) -> Result<Vec<String>, ApiError> {
    Ok(attachments::table
        .filter(attachments::owner_id.eq(owner))
        .select(attachments::id)
        .load::<String>(conn)?)
}

/// Removes the files of attachments whose rows are gone (best effort: a file left behind is
/// swept later by [`sweep_orphans`]).
pub async fn remove_files(state: &AppState, ids: &[String]) {
    for id in ids {
        if let Err(e) = tokio::fs::remove_file(blob_path(state, id)).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "removing an attachment file failed");
        }
    }
}

/// Deletes the files of the blob directory that have no attachment row and were last written
/// at least [`ORPHAN_GRACE_SECS`] ago: finished blobs never recorded (a crash, or a deletion
/// whose file removal failed) and temporary files of abandoned uploads. Files whose names are
/// not blob names are left alone. Returns how many were deleted.
pub async fn sweep_orphans(state: &AppState) -> Result<usize, ApiError> {
    let now = state.clock.now();
    let mut dir = match tokio::fs::read_dir(&state.config.blob_dir).await {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(ApiError::internal(e)),
    };
    // (path, id, temporary)
    let mut old = Vec::new();
    while let Some(entry) = dir.next_entry().await.map_err(ApiError::internal)? {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let (id, temporary) = match name.strip_prefix("tmp-") {
            Some(rest) => (rest, true),
            None => (name, false),
        };
        if parse_id(id).is_err() {
            continue;
        }
        let Ok(meta) = entry.metadata().await else {
            continue;
        };
        let written = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        if !meta.is_file() || written.is_none_or(|w| now.saturating_sub(w) < ORPHAN_GRACE_SECS) {
            continue;
        }
        old.push((entry.path(), id.to_owned(), temporary));
    }
    let finished: Vec<String> = old
        .iter()
        .filter(|(_, _, temporary)| !temporary)
        .map(|(_, id, _)| id.clone())
        .collect();
    let recorded: HashSet<String> = state
        .db
        .run(move |conn| {
            let mut found = HashSet::new();
            for batch in finished.chunks(500) {
                found.extend(
                    attachments::table
                        .filter(attachments::id.eq_any(batch))
                        .select(attachments::id)
                        .load::<String>(conn)?,
                );
            }
            Ok::<_, ApiError>(found)
        })
        .await?;
    let mut removed = 0;
    for (path, id, temporary) in old {
        if !temporary && recorded.contains(&id) {
            continue;
        }
        match tokio::fs::remove_file(&path).await {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "removing an orphaned blob file failed"),
        }
    }
    Ok(removed)
}
