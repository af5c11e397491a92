//! Encrypted attachments: opaque blobs (a crypto-core attachment ciphertext, whose key travels
//! inside an end-to-end encrypted message) streamed to a file under the blob directory,
//! addressed by an unguessable 128-bit id, with a size cap, a per-account quota and an expiry.
//! The relay never holds the key and never reads the bytes.
//!
//! An upload is written to `tmp-<id>` chunk by chunk (memory stays bounded by the chunk size),
//! checked against the cap and the quota as it grows, flushed to disk, and only then renamed to
//! `<id>` and recorded; a failed or refused upload leaves neither file nor row.

use crate::api::error::{ApiError, ErrorCode};
use crate::db::schema::attachments;
use crate::state::AppState;
use diesel::prelude::*;
use futures_util::{Stream, StreamExt};
use std::path::PathBuf;
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

/// Bytes of live attachments `owner` holds.
async fn used_bytes(state: &AppState, owner: i64, now: i64) -> Result<u64, ApiError> {
    let sizes: Vec<i64> = state
        .db
        .run(move |conn| {
            attachments::table
                .filter(attachments::owner_id.eq(owner))
                .filter(attachments::expires_at.gt(now))
                .select(attachments::size)
                .load::<i64>(conn)
                .map_err(ApiError::from)
        })
        .await?;
    Ok(sizes
        .into_iter()
        .map(|s| u64::try_from(s).unwrap_or(0))
        .fold(0u64, u64::saturating_add))
}

/// Streams an upload to disk and records it. `declared` is the request's `Content-Length`,
/// when it gave one (refused early when already too large).
pub async fn upload<S, E>(
    state: &AppState,
    owner: i64,
    declared: Option<u64>,
    mut body: S,
) -> Result<Stored, ApiError>
where
    S: Stream<Item = Result<actix_web::web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let quota = state
        .config
        .attachment_quota_mib
        .saturating_mul(1024 * 1024);
    let now = state.clock.now();
    if declared.is_some_and(|n| n > MAX_ATTACHMENT_BYTES) {
        return Err(too_large());
    }
    let used = used_bytes(state, owner, now).await?;
    let room = quota.saturating_sub(used);
    if declared.is_some_and(|n| n > room) {
        return Err(quota_exceeded(quota));
    }

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
            diesel::insert_into(attachments::table)
                .values((
                    attachments::id.eq(&row_id),
                    attachments::owner_id.eq(owner),
                    attachments::size.eq(size_i64),
                    attachments::created_at.eq(now),
                    attachments::expires_at.eq(expires_at),
                ))
                .execute(conn)
                .map_err(ApiError::from)
        })
        .await;
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
