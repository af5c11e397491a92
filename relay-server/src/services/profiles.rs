//! Public profiles and ms_id edits.
//!
//! An ms_id is the public, case-insensitive handle of an account (stored lowercased; rules in
//! [`validate::ms_id`]). Everything else — friendships, requests, blocks — is keyed by the
//! internal user id, so an edit breaks nothing. A released ms_id (edited away, or its account
//! deleted) is held for [`MS_ID_HOLD_SECONDS`]: during the hold only its previous owner may take
//! it back, so nobody can grab a handle the moment its owner renames and impersonate them.
//! A block hides the blocker: to the blocked user, the blocker looks like no account at all.

use crate::api::error::{ApiError, ErrorCode};
use crate::db::DbConnection;
use crate::db::schema::{ms_id_holds, users};
use crate::services::ratelimit::Action;
use crate::services::{accounts, friends, validate};
use crate::state::AppState;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// How long a released ms_id is held back for its previous owner: 30 days.
pub const MS_ID_HOLD_SECONDS: i64 = 30 * 86_400;

/// What anyone signed in may see of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Internal user id (the id WebSocket frames name users by).
    pub user_id: i64,
    /// Public handle.
    pub ms_id: String,
    /// Display name.
    pub display_name: String,
}

/// `not_found` for an ms_id: no such account, or one that hides from the caller.
pub fn no_such_user() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no user with this ms_id")
}

fn ms_id_unavailable() -> ApiError {
    ApiError::new(ErrorCode::MsIdUnavailable, "this ms_id is not available")
}

/// The account with this (normalized) ms_id, if any: its id and profile.
pub fn find_by_ms_id(
    conn: &mut DbConnection,
    ms_id: &str,
) -> Result<Option<(i64, Profile)>, ApiError> {
    let row: Option<(i64, String, String)> = users::table
        .filter(users::ms_id.eq(ms_id))
        .select((users::id, users::ms_id, users::display_name))
        .first(conn)
        .optional()?;
    Ok(row.map(|(id, ms_id, display_name)| {
        (
            id,
            Profile {
                user_id: id,
                ms_id,
                display_name,
            },
        )
    }))
}

/// The account with this ms_id as `viewer` sees it: `not_found` when there is none or when it
/// has blocked `viewer`.
pub fn find_visible(
    conn: &mut DbConnection,
    viewer: i64,
    ms_id: &str,
) -> Result<(i64, Profile), ApiError> {
    match find_by_ms_id(conn, ms_id)? {
        Some((id, profile)) if !friends::has_blocked(conn, id, viewer)? => Ok((id, profile)),
        _ => Err(no_such_user()),
    }
}

/// Holds `ms_id` for `previous_owner` until `now` + [`MS_ID_HOLD_SECONDS`], replacing any
/// older (expired) hold of the same ms_id. Call inside a transaction.
pub fn hold_ms_id(
    conn: &mut DbConnection,
    ms_id: &str,
    previous_owner: i64,
    now: i64,
) -> Result<(), ApiError> {
    diesel::delete(ms_id_holds::table.filter(ms_id_holds::ms_id.eq(ms_id))).execute(conn)?;
    diesel::insert_into(ms_id_holds::table)
        .values((
            ms_id_holds::ms_id.eq(ms_id),
            ms_id_holds::previous_owner.eq(previous_owner),
            ms_id_holds::held_until.eq(now.saturating_add(MS_ID_HOLD_SECONDS)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The public profile of `raw_ms_id` as `viewer` sees it (`invalid_ms_id`, `not_found`).
pub async fn lookup(state: &AppState, viewer: i64, raw_ms_id: &str) -> Result<Profile, ApiError> {
    let ms_id = validate::ms_id_lookup(raw_ms_id)?;
    state
        .db
        .run(move |conn| Ok::<_, ApiError>(find_visible(conn, viewer, &ms_id)?.1))
        .await
}

/// Whether `raw_ms_id` could be registered now: `(normalized ms_id, available)`. Malformed
/// (by the rules for a new ms_id) is `invalid_ms_id`; taken (in any case) or held back after
/// its release is unavailable — also to the previous owner, who takes a held ms_id back with
/// [`change_ms_id`]: this answers for sign-up.
pub async fn availability(state: &AppState, raw_ms_id: &str) -> Result<(String, bool), ApiError> {
    let ms_id = validate::ms_id(raw_ms_id)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let free = accounts::ms_id_free(conn, &ms_id, None, now)?;
            Ok::<_, ApiError>((ms_id, free))
        })
        .await
}

/// Changes the caller's ms_id (`invalid_ms_id`, `ms_id_unavailable`, and `rate_limited` beyond
/// the account's [`Action::MsIdEdit`] budget, which only edits that are made use). The old one
/// is held for the caller for 30 days; taking back one's own held ms_id ends its hold. Setting
/// the current ms_id again changes nothing. The users whose lists show the caller
/// ([`friends::partners`]) get `friends_changed`.
pub async fn change_ms_id(state: &AppState, user_id: i64, raw_ms_id: &str) -> Result<(), ApiError> {
    let new_id = validate::ms_id(raw_ms_id)?;
    let now = state.clock.now();
    let limits = state.limits.clone();
    let partners = state
        .db
        .run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                let current: Option<String> = users::table
                    .filter(users::id.eq(user_id))
                    .select(users::ms_id)
                    .first(conn)
                    .optional()?;
                let Some(current) = current else {
                    return Err(ApiError::new(
                        ErrorCode::Unauthorized,
                        "invalid or expired session",
                    ));
                };
                if current == new_id {
                    return Ok(Vec::new());
                }
                if !accounts::ms_id_free(conn, &new_id, Some(user_id), now)? {
                    return Err(ms_id_unavailable());
                }
                // Only an edit that is made takes from the daily budget (issue #12 item 19;
                // a race lost at the update below still costs one).
                limits.check_account(Action::MsIdEdit, &format!("user:{user_id}"))?;
                diesel::delete(ms_id_holds::table.filter(ms_id_holds::ms_id.eq(&new_id)))
                    .execute(conn)?;
                diesel::update(users::table.filter(users::id.eq(user_id)))
                    .set((
                        users::ms_id.eq(&new_id),
                        users::ms_id_changed_at.eq(Some(now)),
                    ))
                    .execute(conn)
                    .map_err(|e| match e {
                        // A concurrent edit or registration took it between check and update.
                        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                            ms_id_unavailable()
                        }
                        other => ApiError::from(other),
                    })?;
                hold_ms_id(conn, &current, user_id, now)?;
                friends::partners(conn, user_id)
            })
        })
        .await?;
    crate::services::events::friends_changed(state, partners);
    Ok(())
}
