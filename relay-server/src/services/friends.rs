//! Friends: requests by ms_id, accept, decline, cancel, remove, block.
//!
//! Everything is keyed by internal user id, so an ms_id edit breaks nothing. Rules:
//! - A request to oneself is `self_request`; a second pending request to the same user is
//!   `duplicate_request`; a request to a friend is `already_friends`.
//! - **Mutual requests become a friendship**: when B already asked A and A now asks B, the
//!   relay accepts B's request at once (both users want it; Signal and Wire users expect
//!   that, not an error) and answers with the new friend.
//! - **A block hides the blocker**: to the blocked user, the blocker looks like no account at
//!   all (`not_found` on lookups, requests, blocks). The blocker gets `blocked` when they
//!   address the user they blocked (except to unblock). Blocking ends the friendship and
//!   deletes the pending requests between the two, in both directions; unblocking restores
//!   neither.
//! - A request id that is not the caller's (as recipient for accept/decline, as sender for
//!   cancel) is `not_found`, like an unknown one.
//! - After each change, `friends_changed` goes to the connected devices of every user whose
//!   lists changed ([`events::friends_changed`]): both users for a request, a cancel, an
//!   accept and a removal; only the decliner for a decline (the sender is not told); the
//!   blocker for a new block or an unblock, and the blocked user only when the block took a
//!   friendship or a request from them (otherwise a notice would tell them of the block).

use crate::api::error::{ApiError, ErrorCode};
use crate::db::DbConnection;
use crate::db::schema::{blocks, friend_requests, friendships, users};
use crate::services::profiles::{self, Profile};
use crate::services::{events, validate};
use crate::state::AppState;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// A pending friend request, seen by one of its two users.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// Request id.
    pub id: i64,
    /// The other user (the sender for incoming, the recipient for outgoing requests).
    pub other: Profile,
    /// The sender's note.
    pub note: Option<String>,
    /// Sent, Unix seconds.
    pub created_at: i64,
}

/// The caller's pending requests.
#[derive(Debug, Clone, Default)]
pub struct Requests {
    /// Sent to the caller, oldest first.
    pub incoming: Vec<RequestInfo>,
    /// Sent by the caller, oldest first.
    pub outgoing: Vec<RequestInfo>,
}

/// A friend.
#[derive(Debug, Clone)]
pub struct Friend {
    /// Their profile (current ms_id).
    pub profile: Profile,
    /// Friends since, Unix seconds.
    pub since: i64,
}

/// A user the caller blocked.
#[derive(Debug, Clone)]
pub struct BlockedUser {
    /// Their profile.
    pub profile: Profile,
    /// Blocked at, Unix seconds.
    pub blocked_at: i64,
}

/// What sending a request did.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// A pending request was created.
    Pending(RequestInfo),
    /// The other user had already asked the caller: they are friends now.
    Accepted(Friend),
}

fn not_found_request() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such friend request")
}

fn ordered(a: i64, b: i64) -> (i64, i64) {
    if a < b { (a, b) } else { (b, a) }
}

/// Whether `a` and `b` are friends. The check message delivery, bundle fetches and presence
/// rely on.
pub fn are_friends(conn: &mut DbConnection, a: i64, b: i64) -> Result<bool, ApiError> {
    if a == b {
        return Ok(false);
    }
    let (low, high) = ordered(a, b);
    let found = diesel::select(diesel::dsl::exists(
        friendships::table
            .filter(friendships::user_low.eq(low))
            .filter(friendships::user_high.eq(high)),
    ))
    .get_result::<bool>(conn)?;
    Ok(found)
}

/// The users whose friend, request or block lists show `user`: their friends, the other
/// side of their pending requests (both ways) and the users who blocked them, ascending.
/// They are the ones told (`friends_changed`) when `user` changes how they look (an ms_id
/// edit) or disappears (account deletion).
pub fn partners(conn: &mut DbConnection, user: i64) -> Result<Vec<i64>, ApiError> {
    let mut ids: std::collections::BTreeSet<i64> =
        crate::services::delivery::friend_ids(conn, user)?
            .into_iter()
            .collect();
    let requests: Vec<(i64, i64)> = friend_requests::table
        .filter(
            friend_requests::sender_id
                .eq(user)
                .or(friend_requests::recipient_id.eq(user)),
        )
        .select((friend_requests::sender_id, friend_requests::recipient_id))
        .load(conn)?;
    ids.extend(requests.into_iter().flat_map(|(s, r)| [s, r]));
    let blockers: Vec<i64> = blocks::table
        .filter(blocks::blocked_id.eq(user))
        .select(blocks::blocker_id)
        .load(conn)?;
    ids.extend(blockers);
    ids.remove(&user);
    Ok(ids.into_iter().collect())
}

/// Whether `blocker` has blocked `blocked`.
pub fn has_blocked(conn: &mut DbConnection, blocker: i64, blocked: i64) -> Result<bool, ApiError> {
    let found = diesel::select(diesel::dsl::exists(
        blocks::table
            .filter(blocks::blocker_id.eq(blocker))
            .filter(blocks::blocked_id.eq(blocked)),
    ))
    .get_result::<bool>(conn)?;
    Ok(found)
}

/// Serializes changes to the relation between `a` and `b` until the end of the transaction.
/// On PostgreSQL (read committed) two transactions could otherwise both see "no request from
/// the other side" and leave two crossed pending requests, or race on the friendship row;
/// a transaction-scoped advisory lock on the pair prevents that. SQLite needs nothing: a
/// [`crate::db::write_transaction`] already holds the database's write lock.
fn lock_pair(conn: &mut DbConnection, a: i64, b: i64) -> Result<(), ApiError> {
    if let DbConnection::Pg(pg) = conn {
        let (low, high) = ordered(a, b);
        // One 64-bit key per pair; a collision only makes two pairs wait for each other.
        let key = low.wrapping_mul(1_000_003).wrapping_add(high);
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(key)
            .execute(pg)?;
    }
    Ok(())
}

/// Makes `a` and `b` friends (if they are not yet) and deletes the requests between them.
fn befriend(conn: &mut DbConnection, a: i64, b: i64, now: i64) -> Result<i64, ApiError> {
    delete_requests_between(conn, a, b)?;
    let (low, high) = ordered(a, b);
    let since: Option<i64> = friendships::table
        .filter(friendships::user_low.eq(low))
        .filter(friendships::user_high.eq(high))
        .select(friendships::created_at)
        .first(conn)
        .optional()?;
    if let Some(since) = since {
        return Ok(since);
    }
    diesel::insert_into(friendships::table)
        .values((
            friendships::user_low.eq(low),
            friendships::user_high.eq(high),
            friendships::created_at.eq(now),
        ))
        .execute(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                ApiError::new(ErrorCode::AlreadyFriends, "you are already friends")
            }
            other => ApiError::from(other),
        })?;
    Ok(now)
}

/// Deletes the pending requests between `a` and `b`, both ways; returns how many.
fn delete_requests_between(conn: &mut DbConnection, a: i64, b: i64) -> Result<usize, ApiError> {
    Ok(diesel::delete(
        friend_requests::table.filter(
            friend_requests::sender_id
                .eq(a)
                .and(friend_requests::recipient_id.eq(b))
                .or(friend_requests::sender_id
                    .eq(b)
                    .and(friend_requests::recipient_id.eq(a))),
        ),
    )
    .execute(conn)?)
}

fn profile_of(conn: &mut DbConnection, user_id: i64) -> Result<Profile, ApiError> {
    let (ms_id, display_name): (String, String) = users::table
        .filter(users::id.eq(user_id))
        .select((users::ms_id, users::display_name))
        .first(conn)?;
    Ok(Profile {
        user_id,
        ms_id,
        display_name,
    })
}

/// The user an action by ms_id addresses, as the caller sees them (`not_found` if there is
/// none or they blocked the caller), with the pair locked (see [`lock_pair`]) before the
/// block is checked.
fn locate(conn: &mut DbConnection, caller: i64, ms_id: &str) -> Result<(i64, Profile), ApiError> {
    let (id, profile) = profiles::find_by_ms_id(conn, ms_id)?.ok_or_else(profiles::no_such_user)?;
    if id != caller {
        lock_pair(conn, caller, id)?;
        if has_blocked(conn, id, caller)? {
            return Err(profiles::no_such_user());
        }
    }
    Ok((id, profile))
}

/// The target of a friend request: visible to the caller, not the caller, not blocked by
/// the caller.
fn target(conn: &mut DbConnection, caller: i64, ms_id: &str) -> Result<(i64, Profile), ApiError> {
    let (id, profile) = locate(conn, caller, ms_id)?;
    if id == caller {
        return Err(ApiError::new(
            ErrorCode::SelfRequest,
            "you cannot send a friend request to yourself",
        ));
    }
    if has_blocked(conn, caller, id)? {
        return Err(ApiError::new(
            ErrorCode::Blocked,
            "you blocked this user; unblock them first",
        ));
    }
    Ok((id, profile))
}

/// Sends a friend request to `raw_ms_id`, or accepts theirs if they already asked.
pub async fn send_request(
    state: &AppState,
    caller: i64,
    raw_ms_id: &str,
    raw_note: Option<&str>,
) -> Result<SendOutcome, ApiError> {
    let ms_id = validate::ms_id_lookup(raw_ms_id)?;
    let note = validate::note(raw_note)?;
    let now = state.clock.now();
    let outcome = state
        .db
        .run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                let (other, profile) = target(conn, caller, &ms_id)?;
                if are_friends(conn, caller, other)? {
                    return Err(ApiError::new(
                        ErrorCode::AlreadyFriends,
                        "you are already friends",
                    ));
                }
                let pending = |conn: &mut DbConnection, from: i64, to: i64| {
                    diesel::select(diesel::dsl::exists(
                        friend_requests::table
                            .filter(friend_requests::sender_id.eq(from))
                            .filter(friend_requests::recipient_id.eq(to)),
                    ))
                    .get_result::<bool>(conn)
                };
                if pending(conn, caller, other)? {
                    return Err(duplicate());
                }
                if pending(conn, other, caller)? {
                    let since = befriend(conn, caller, other, now)?;
                    return Ok(SendOutcome::Accepted(Friend { profile, since }));
                }
                let id = diesel::insert_into(friend_requests::table)
                    .values((
                        friend_requests::sender_id.eq(caller),
                        friend_requests::recipient_id.eq(other),
                        friend_requests::note.eq(&note),
                        friend_requests::created_at.eq(now),
                    ))
                    .returning(friend_requests::id)
                    .get_result::<i64>(conn)
                    .map_err(|e| match e {
                        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                            duplicate()
                        }
                        other => ApiError::from(other),
                    })?;
                Ok(SendOutcome::Pending(RequestInfo {
                    id,
                    other: profile,
                    note: note.clone(),
                    created_at: now,
                }))
            })
        })
        .await?;
    let other = match &outcome {
        SendOutcome::Pending(request) => request.other.user_id,
        SendOutcome::Accepted(friend) => friend.profile.user_id,
    };
    events::friends_changed(state, [caller, other]);
    Ok(outcome)
}

fn duplicate() -> ApiError {
    ApiError::new(
        ErrorCode::DuplicateRequest,
        "you already sent this user a friend request",
    )
}

type RequestRow = (i64, Option<String>, i64, i64, String, String);

fn request_info((id, note, created_at, user_id, ms_id, display_name): RequestRow) -> RequestInfo {
    RequestInfo {
        id,
        other: Profile {
            user_id,
            ms_id,
            display_name,
        },
        note,
        created_at,
    }
}

/// The caller's incoming and outgoing pending requests.
pub async fn list_requests(state: &AppState, caller: i64) -> Result<Requests, ApiError> {
    state
        .db
        .run(move |conn| {
            let incoming: Vec<RequestRow> = friend_requests::table
                .inner_join(users::table.on(users::id.eq(friend_requests::sender_id)))
                .filter(friend_requests::recipient_id.eq(caller))
                .order(friend_requests::id.asc())
                .select((
                    friend_requests::id,
                    friend_requests::note,
                    friend_requests::created_at,
                    users::id,
                    users::ms_id,
                    users::display_name,
                ))
                .load(conn)?;
            let outgoing: Vec<RequestRow> = friend_requests::table
                .inner_join(users::table.on(users::id.eq(friend_requests::recipient_id)))
                .filter(friend_requests::sender_id.eq(caller))
                .order(friend_requests::id.asc())
                .select((
                    friend_requests::id,
                    friend_requests::note,
                    friend_requests::created_at,
                    users::id,
                    users::ms_id,
                    users::display_name,
                ))
                .load(conn)?;
            Ok::<_, ApiError>(Requests {
                incoming: incoming.into_iter().map(request_info).collect(),
                outgoing: outgoing.into_iter().map(request_info).collect(),
            })
        })
        .await
}

/// Accepts a request sent to the caller; returns the new friend.
pub async fn accept(state: &AppState, caller: i64, request_id: i64) -> Result<Friend, ApiError> {
    let now = state.clock.now();
    let friend = state
        .db
        .run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                let sender: Option<i64> = friend_requests::table
                    .filter(friend_requests::id.eq(request_id))
                    .filter(friend_requests::recipient_id.eq(caller))
                    .select(friend_requests::sender_id)
                    .first(conn)
                    .optional()?;
                let sender = sender.ok_or_else(not_found_request)?;
                lock_pair(conn, caller, sender)?;
                // Re-read under the lock: a concurrent accept, cancel or block may have won.
                let still_there = diesel::select(diesel::dsl::exists(
                    friend_requests::table.filter(friend_requests::id.eq(request_id)),
                ))
                .get_result::<bool>(conn)?;
                if !still_there {
                    return Err(not_found_request());
                }
                let since = befriend(conn, caller, sender, now)?;
                Ok(Friend {
                    profile: profile_of(conn, sender)?,
                    since,
                })
            })
        })
        .await?;
    events::friends_changed(state, [caller, friend.profile.user_id]);
    Ok(friend)
}

/// Declines a request sent to the caller (the sender is not told; it just disappears).
pub async fn decline(state: &AppState, caller: i64, request_id: i64) -> Result<(), ApiError> {
    delete_request(state, request_id, caller, false).await?;
    events::friends_changed(state, [caller]);
    Ok(())
}

/// Cancels a request the caller sent.
pub async fn cancel(state: &AppState, caller: i64, request_id: i64) -> Result<(), ApiError> {
    let recipient = delete_request(state, request_id, caller, true).await?;
    events::friends_changed(state, [caller, recipient]);
    Ok(())
}

/// Deletes a request the caller sent (`as_sender`) or received; returns the other user.
async fn delete_request(
    state: &AppState,
    request_id: i64,
    caller: i64,
    as_sender: bool,
) -> Result<i64, ApiError> {
    state
        .db
        .run(move |conn| {
            let row: Option<(i64, i64)> = friend_requests::table
                .filter(friend_requests::id.eq(request_id))
                .select((friend_requests::sender_id, friend_requests::recipient_id))
                .first(conn)
                .optional()?;
            let other = match row {
                Some((sender, recipient)) if as_sender && sender == caller => recipient,
                Some((sender, recipient)) if !as_sender && recipient == caller => sender,
                _ => return Err(not_found_request()),
            };
            // A concurrent cancel, decline, accept or block may delete it first.
            let n =
                diesel::delete(friend_requests::table.filter(friend_requests::id.eq(request_id)))
                    .execute(conn)?;
            if n == 0 {
                return Err(not_found_request());
            }
            Ok(other)
        })
        .await
}

/// The caller's friends, ordered by ms_id.
pub async fn list_friends(state: &AppState, caller: i64) -> Result<Vec<Friend>, ApiError> {
    state
        .db
        .run(move |conn| {
            type Row = (i64, i64, String, String);
            let mut rows: Vec<Row> = friendships::table
                .inner_join(users::table.on(users::id.eq(friendships::user_high)))
                .filter(friendships::user_low.eq(caller))
                .select((
                    friendships::created_at,
                    users::id,
                    users::ms_id,
                    users::display_name,
                ))
                .load(conn)?;
            let high: Vec<Row> = friendships::table
                .inner_join(users::table.on(users::id.eq(friendships::user_low)))
                .filter(friendships::user_high.eq(caller))
                .select((
                    friendships::created_at,
                    users::id,
                    users::ms_id,
                    users::display_name,
                ))
                .load(conn)?;
            rows.extend(high);
            rows.sort_by(|a, b| a.2.cmp(&b.2));
            Ok::<_, ApiError>(
                rows.into_iter()
                    .map(|(since, user_id, ms_id, display_name)| Friend {
                        profile: Profile {
                            user_id,
                            ms_id,
                            display_name,
                        },
                        since,
                    })
                    .collect(),
            )
        })
        .await
}

/// Ends the friendship with `raw_ms_id` (`not_found` when they are not friends).
pub async fn remove_friend(state: &AppState, caller: i64, raw_ms_id: &str) -> Result<(), ApiError> {
    let ms_id = validate::ms_id_lookup(raw_ms_id)?;
    let removed = state
        .db
        .run(move |conn| {
            let Some((other, _)) = profiles::find_by_ms_id(conn, &ms_id)? else {
                return Ok(None);
            };
            let (low, high) = ordered(caller, other);
            let n = diesel::delete(
                friendships::table
                    .filter(friendships::user_low.eq(low))
                    .filter(friendships::user_high.eq(high)),
            )
            .execute(conn)?;
            Ok::<_, ApiError>((n > 0).then_some(other))
        })
        .await?;
    let Some(other) = removed else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no friend with this ms_id",
        ));
    };
    events::friends_changed(state, [caller, other]);
    Ok(())
}

/// Blocks `raw_ms_id`: ends the friendship and deletes the requests between the two.
/// Blocking someone already blocked changes nothing.
pub async fn block(state: &AppState, caller: i64, raw_ms_id: &str) -> Result<(), ApiError> {
    let ms_id = validate::ms_id_lookup(raw_ms_id)?;
    let now = state.clock.now();
    let (other, new_block, took_something) = state
        .db
        .run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                let (other, _) = locate(conn, caller, &ms_id)?;
                if other == caller {
                    return Err(ApiError::new(
                        ErrorCode::SelfRequest,
                        "you cannot block yourself",
                    ));
                }
                let new_block = !has_blocked(conn, caller, other)?;
                if new_block {
                    diesel::insert_into(blocks::table)
                        .values((
                            blocks::blocker_id.eq(caller),
                            blocks::blocked_id.eq(other),
                            blocks::created_at.eq(now),
                        ))
                        .execute(conn)
                        .map_err(|e| match e {
                            // A concurrent identical block: the same end state.
                            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                                ApiError::new(ErrorCode::Conflict, "already blocked; retry")
                            }
                            other => ApiError::from(other),
                        })?;
                }
                let requests = delete_requests_between(conn, caller, other)?;
                let (low, high) = ordered(caller, other);
                let friendship = diesel::delete(
                    friendships::table
                        .filter(friendships::user_low.eq(low))
                        .filter(friendships::user_high.eq(high)),
                )
                .execute(conn)?;
                Ok((other, new_block, requests + friendship > 0))
            })
        })
        .await?;
    // The blocked user hears of it only when their own lists changed.
    if took_something {
        events::friends_changed(state, [caller, other]);
    } else if new_block {
        events::friends_changed(state, [caller]);
    }
    Ok(())
}

/// Lifts the caller's block of `raw_ms_id` (`not_found` when there is none).
pub async fn unblock(state: &AppState, caller: i64, raw_ms_id: &str) -> Result<(), ApiError> {
    let ms_id = validate::ms_id_lookup(raw_ms_id)?;
    let deleted = state
        .db
        .run(move |conn| {
            let Some((other, _)) = profiles::find_by_ms_id(conn, &ms_id)? else {
                return Ok(0);
            };
            let n = diesel::delete(
                blocks::table
                    .filter(blocks::blocker_id.eq(caller))
                    .filter(blocks::blocked_id.eq(other)),
            )
            .execute(conn)?;
            Ok::<_, ApiError>(n)
        })
        .await?;
    if deleted == 0 {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "you have not blocked a user with this ms_id",
        ));
    }
    events::friends_changed(state, [caller]);
    Ok(())
}

/// The users the caller blocked, most recent first.
pub async fn list_blocks(state: &AppState, caller: i64) -> Result<Vec<BlockedUser>, ApiError> {
    state
        .db
        .run(move |conn| {
            let rows: Vec<(i64, i64, String, String)> = blocks::table
                .inner_join(users::table.on(users::id.eq(blocks::blocked_id)))
                .filter(blocks::blocker_id.eq(caller))
                .order(blocks::created_at.desc())
                .select((
                    blocks::created_at,
                    users::id,
                    users::ms_id,
                    users::display_name,
                ))
                .load(conn)?;
            Ok::<_, ApiError>(
                rows.into_iter()
                    .map(|(blocked_at, user_id, ms_id, display_name)| BlockedUser {
                        profile: Profile {
                            user_id,
                            ms_id,
                            display_name,
                        },
                        blocked_at,
                    })
                    .collect(),
            )
        })
        .await
}
