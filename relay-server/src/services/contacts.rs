//! Who is in contact with whom: the one rule for reaching another user's devices.
//!
//! Two different users are **in contact** when they are friends, or when both are *joined*
//! members of a common room (sender keys of a room travel over pairwise sessions, so every
//! joined member must be able to start a session with every other one, friends or not) — and
//! never when either has blocked the other. An invited member who has not joined is not in
//! contact through the room.
//!
//! Being in contact lets a user list the other's devices (`GET /users/{ms_id}/devices`), fetch
//! their prekey bundles and `send` direct envelopes to their devices
//! ([`crate::services::delivery`]); it is also who learns of their device changes
//! (`devices_changed`). Room fan-out and room member lists skip users blocked either way
//! ([`blocked_with`]). Typing indicators, presence and room invitations stay between friends
//! ([`crate::services::friends::are_friends`]).

use crate::api::error::ApiError;
use crate::db::DbConnection;
use crate::db::schema::{blocks, room_members};
use crate::services::friends::are_friends;
use crate::services::rooms::JOINED;
use diesel::prelude::*;
use std::collections::BTreeSet;

/// Whether either of `a` and `b` has blocked the other.
pub fn blocked_either_way(conn: &mut DbConnection, a: i64, b: i64) -> Result<bool, ApiError> {
    Ok(diesel::select(diesel::dsl::exists(
        blocks::table.filter(
            blocks::blocker_id
                .eq(a)
                .and(blocks::blocked_id.eq(b))
                .or(blocks::blocker_id.eq(b).and(blocks::blocked_id.eq(a))),
        ),
    ))
    .get_result::<bool>(conn)?)
}

/// The users `user` has blocked or who blocked `user`.
pub fn blocked_with(conn: &mut DbConnection, user: i64) -> Result<BTreeSet<i64>, ApiError> {
    let rows: Vec<(i64, i64)> = blocks::table
        .filter(blocks::blocker_id.eq(user).or(blocks::blocked_id.eq(user)))
        .select((blocks::blocker_id, blocks::blocked_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(blocker, blocked)| if blocker == user { blocked } else { blocker })
        .collect())
}

/// The rooms `user` joined.
fn joined_rooms(conn: &mut DbConnection, user: i64) -> Result<Vec<i64>, ApiError> {
    Ok(room_members::table
        .filter(room_members::user_id.eq(user))
        .filter(room_members::state.eq(JOINED))
        .select(room_members::room_id)
        .load(conn)?)
}

/// Whether `a` and `b` are both joined members of at least one common room.
pub fn share_a_joined_room(conn: &mut DbConnection, a: i64, b: i64) -> Result<bool, ApiError> {
    let rooms_of_a = joined_rooms(conn, a)?;
    if rooms_of_a.is_empty() {
        return Ok(false);
    }
    Ok(diesel::select(diesel::dsl::exists(
        room_members::table
            .filter(room_members::user_id.eq(b))
            .filter(room_members::state.eq(JOINED))
            .filter(room_members::room_id.eq_any(rooms_of_a)),
    ))
    .get_result::<bool>(conn)?)
}

/// Whether the two (different) users `a` and `b` are in contact: friends, or joined members of
/// a common room, and neither has blocked the other. A user is not "in contact" with
/// themselves; callers that also allow one's own devices check that first.
///
/// Friends first, and without a block check: a block ends the friendship in the transaction
/// that stores it, and no friendship starts across a block, so friends have no block between
/// them. This keeps the check as cheap as the friendship check it replaced on the path every
/// direct `send` takes.
pub fn in_contact(conn: &mut DbConnection, a: i64, b: i64) -> Result<bool, ApiError> {
    if a == b {
        return Ok(false);
    }
    if are_friends(conn, a, b)? {
        return Ok(true);
    }
    Ok(share_a_joined_room(conn, a, b)? && !blocked_either_way(conn, a, b)?)
}

/// Every user in contact with `user` (the rule of [`in_contact`]), ascending, without `user`.
pub fn contacts_of(conn: &mut DbConnection, user: i64) -> Result<Vec<i64>, ApiError> {
    let mut ids: BTreeSet<i64> = crate::services::delivery::friend_ids(conn, user)?
        .into_iter()
        .collect();
    let my_rooms = joined_rooms(conn, user)?;
    let fellows: Vec<i64> = room_members::table
        .filter(room_members::room_id.eq_any(my_rooms))
        .filter(room_members::state.eq(JOINED))
        .filter(room_members::user_id.ne(user))
        .select(room_members::user_id)
        .distinct()
        .load(conn)?;
    ids.extend(fellows);
    ids.remove(&user);
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let blocked = blocked_with(conn, user)?;
    Ok(ids.difference(&blocked).copied().collect())
}
