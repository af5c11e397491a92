//! Rooms: groups of friends. Rules (see `docs/api.md`):
//! - The creator is the first joined member. Only joined members may invite, and only their
//!   own friends (a blocked or unknown user, or a non-friend, is `not_found`). Inviting someone
//!   already invited or joined changes nothing. A room holds at most [`MAX_ROOM_MEMBERS`]
//!   members, invitees included (`conflict`).
//! - An invitee joins or declines; a member (invited or joined) may leave at any time. A room
//!   left by its last member (invitees included) is deleted.
//! - To anyone who is neither joined nor invited, a room does not exist (`not_found`); the
//!   member list is for joined members only, and leaves out members blocked either way with
//!   the caller.
//! - A room envelope is stored once per device of every joined member except the sending
//!   device and the devices of members blocked either way with the sender, in one
//!   transaction ([`crate::services::delivery::store_room`]).
//! - Joined members are in contact with each other ([`crate::services::contacts`]).
//! - After a change, `rooms_changed` goes to the room's joined members and to the user who was
//!   invited, declined or left ([`events::rooms_changed`]); creating a room tells the
//!   creator's devices. A repeated invite or join changes nothing and tells nobody.

use crate::api::error::{ApiError, ErrorCode};
use crate::api::frames::RoomChange;
use crate::db::schema::{devices, room_members, rooms, users};
use crate::db::{DbConnection, write_transaction};
use crate::services::contacts::blocked_with;
use crate::services::friends::are_friends;
use crate::services::profiles;
use crate::services::ratelimit::Action;
use crate::services::{events, validate};
use crate::state::AppState;
use diesel::prelude::*;

/// Membership state `invited`.
pub const INVITED: &str = "invited";
/// Membership state `joined`.
pub const JOINED: &str = "joined";
/// Role `admin`: may rename the room, remove members, make members admin, delete the room.
pub const ADMIN: &str = "admin";
/// Role `member`.
pub const MEMBER: &str = "member";
/// Most members (invited and joined) of one room: with at most
/// [`crate::services::devices::MAX_DEVICES_PER_USER`] devices each, a room send stores at most
/// 1000 envelopes.
pub const MAX_ROOM_MEMBERS: i64 = 100;
/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 64;

/// A room as one of its members sees it.
#[derive(Debug, Clone)]
pub struct Room {
    /// Room id.
    pub id: i64,
    /// Optional name.
    pub name: Option<String>,
    /// The caller's state: `invited` or `joined`.
    pub state: String,
    /// Created at, Unix seconds.
    pub created_at: i64,
}

/// A member of a room.
#[derive(Debug, Clone)]
pub struct Member {
    /// User id (as in `envelope` frames' `from_user`).
    pub user_id: i64,
    /// Current ms_id.
    pub ms_id: String,
    /// Display name.
    pub display_name: String,
    /// `invited` or `joined`.
    pub state: String,
    /// `admin` or `member` (see [`admins`]).
    pub role: String,
    /// The member's device ids (joined members only; empty for invitees).
    pub devices: Vec<i64>,
}

fn no_such_room() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such room")
}

fn not_room_admin() -> ApiError {
    ApiError::new(
        ErrorCode::NotRoomAdmin,
        "only an admin of the room may do this",
    )
}

/// The room's admins: its joined members with the role `admin`, or, when none is left (they
/// left or deleted their accounts), its longest-standing joined member.
pub fn admins(conn: &mut DbConnection, room_id: i64) -> Result<Vec<i64>, ApiError> {
    let named: Vec<i64> = room_members::table
        .filter(room_members::room_id.eq(room_id))
        .filter(room_members::state.eq(JOINED))
        .filter(room_members::role.eq(ADMIN))
        .select(room_members::user_id)
        .load(conn)?;
    if !named.is_empty() {
        return Ok(named);
    }
    Ok(room_members::table
        .filter(room_members::room_id.eq(room_id))
        .filter(room_members::state.eq(JOINED))
        .order((room_members::created_at.asc(), room_members::user_id.asc()))
        .select(room_members::user_id)
        .first(conn)
        .optional()?
        .into_iter()
        .collect())
}

/// `not_found` unless the caller joined the room, `not_room_admin` unless they are an admin.
fn require_admin(conn: &mut DbConnection, room_id: i64, caller: i64) -> Result<(), ApiError> {
    if !is_joined(conn, room_id, caller)? {
        return Err(no_such_room());
    }
    if admins(conn, room_id)?.contains(&caller) {
        Ok(())
    } else {
        Err(not_room_admin())
    }
}

/// Serializes membership changes of one room on PostgreSQL (a row lock on the room until the
/// transaction ends), so that concurrent invites cannot pass the member cap together.
/// SQLite's write transaction already excludes every other writer.
fn lock_room(conn: &mut DbConnection, room_id: i64) -> Result<(), ApiError> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT id FROM rooms WHERE id = $1 FOR UPDATE")
            .bind::<diesel::sql_types::BigInt, _>(room_id)
            .execute(pg)?;
    }
    Ok(())
}

/// Trims a room name and checks it like a display name (1–64 characters, no control or
/// deceptive format characters). An absent name is no name; an empty or blank one is refused
/// (docs/api.md: 1–64 characters).
pub fn room_name(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim) {
        None => Ok(None),
        Some(name) => validate::display_name(name).map(Some).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "name must be 1 to 64 characters without control characters",
            )
        }),
    }
}

/// The caller's membership state in a room, if any.
pub fn member_state(
    conn: &mut DbConnection,
    room_id: i64,
    user_id: i64,
) -> Result<Option<String>, ApiError> {
    Ok(room_members::table
        .filter(room_members::room_id.eq(room_id))
        .filter(room_members::user_id.eq(user_id))
        .select(room_members::state)
        .first(conn)
        .optional()?)
}

/// Whether `user_id` is a joined member of `room_id`.
pub fn is_joined(conn: &mut DbConnection, room_id: i64, user_id: i64) -> Result<bool, ApiError> {
    Ok(member_state(conn, room_id, user_id)?.as_deref() == Some(JOINED))
}

/// The joined members of a room.
pub fn joined_members(conn: &mut DbConnection, room_id: i64) -> Result<Vec<i64>, ApiError> {
    Ok(room_members::table
        .filter(room_members::room_id.eq(room_id))
        .filter(room_members::state.eq(JOINED))
        .select(room_members::user_id)
        .load(conn)?)
}

/// The devices of every joined member of a room.
pub fn joined_devices(conn: &mut DbConnection, room_id: i64) -> Result<Vec<(i64, i64)>, ApiError> {
    Ok(room_members::table
        .inner_join(devices::table.on(devices::user_id.eq(room_members::user_id)))
        .filter(room_members::room_id.eq(room_id))
        .filter(room_members::state.eq(JOINED))
        .select((devices::id, devices::user_id))
        .order(devices::id.asc())
        .load(conn)?)
}

fn room_for(conn: &mut DbConnection, room_id: i64, user_id: i64) -> Result<Room, ApiError> {
    let row: Option<(i64, Option<String>, i64, String)> = rooms::table
        .inner_join(room_members::table)
        .filter(rooms::id.eq(room_id))
        .filter(room_members::user_id.eq(user_id))
        .select((
            rooms::id,
            rooms::name,
            rooms::created_at,
            room_members::state,
        ))
        .first(conn)
        .optional()?;
    let (id, name, created_at, state) = row.ok_or_else(no_such_room)?;
    Ok(Room {
        id,
        name,
        state,
        created_at,
    })
}

/// Creates a room with the caller as its first joined member and admin. Rate limited per
/// account ([`Action::RoomCreate`]).
pub async fn create(state: &AppState, caller: i64, name: Option<&str>) -> Result<Room, ApiError> {
    let name = room_name(name)?;
    state
        .limits
        .check_account(Action::RoomCreate, &caller.to_string())?;
    let now = state.clock.now();
    let room = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                let id: i64 = diesel::insert_into(rooms::table)
                    .values((
                        rooms::created_by.eq(caller),
                        rooms::name.eq(&name),
                        rooms::created_at.eq(now),
                    ))
                    .returning(rooms::id)
                    .get_result(conn)?;
                diesel::insert_into(room_members::table)
                    .values((
                        room_members::room_id.eq(id),
                        room_members::user_id.eq(caller),
                        room_members::state.eq(JOINED),
                        room_members::invited_by.eq(caller),
                        room_members::created_at.eq(now),
                        room_members::role.eq(ADMIN),
                    ))
                    .execute(conn)?;
                Ok::<_, ApiError>(Room {
                    id,
                    name,
                    state: JOINED.to_owned(),
                    created_at: now,
                })
            })
        })
        .await?;
    events::rooms_changed(
        state,
        room.id,
        Some((RoomChange::Created, None, caller)),
        [caller],
    );
    Ok(room)
}

/// The rooms the caller joined or is invited to, oldest first.
pub async fn list(state: &AppState, caller: i64) -> Result<Vec<Room>, ApiError> {
    state
        .db
        .run(move |conn| {
            let rows: Vec<(i64, Option<String>, i64, String)> = rooms::table
                .inner_join(room_members::table)
                .filter(room_members::user_id.eq(caller))
                .order(rooms::id.asc())
                .select((
                    rooms::id,
                    rooms::name,
                    rooms::created_at,
                    room_members::state,
                ))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(id, name, created_at, state)| Room {
                    id,
                    name,
                    state,
                    created_at,
                })
                .collect())
        })
        .await
}

/// Invites a friend of the caller (who must be a joined member) by ms_id. Rate limited per
/// account ([`Action::RoomInvite`]).
pub async fn invite(
    state: &AppState,
    caller: i64,
    room_id: i64,
    ms_id: &str,
) -> Result<(), ApiError> {
    let ms_id = validate::ms_id_lookup(ms_id)?;
    state
        .limits
        .check_account(Action::RoomInvite, &caller.to_string())?;
    let now = state.clock.now();
    let told = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                lock_room(conn, room_id)?;
                if !is_joined(conn, room_id, caller)? {
                    return Err(no_such_room());
                }
                let Some((invitee, _)) = profiles::find_by_ms_id(conn, &ms_id)? else {
                    return Err(profiles::no_such_user());
                };
                // Blocking ends a friendship, so a block either way is covered here too.
                if !are_friends(conn, caller, invitee)? {
                    return Err(profiles::no_such_user());
                }
                if member_state(conn, room_id, invitee)?.is_some() {
                    return Ok(None);
                }
                let members: i64 = room_members::table
                    .filter(room_members::room_id.eq(room_id))
                    .count()
                    .get_result(conn)?;
                if members >= MAX_ROOM_MEMBERS {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        "the room has the maximum number of members (100)",
                    ));
                }
                diesel::insert_into(room_members::table)
                    .values((
                        room_members::room_id.eq(room_id),
                        room_members::user_id.eq(invitee),
                        room_members::state.eq(INVITED),
                        room_members::invited_by.eq(caller),
                        room_members::created_at.eq(now),
                    ))
                    .execute(conn)?;
                let mut told = joined_members(conn, room_id)?;
                told.push(invitee);
                Ok(Some((invitee, told)))
            })
        })
        .await?;
    if let Some((invitee, told)) = told {
        events::rooms_changed(
            state,
            room_id,
            Some((RoomChange::Invited, Some(invitee), caller)),
            told,
        );
    }
    Ok(())
}

/// Accepts an invitation (joining twice changes nothing).
pub async fn join(state: &AppState, caller: i64, room_id: i64) -> Result<Room, ApiError> {
    let (room, told) = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                match member_state(conn, room_id, caller)?.as_deref() {
                    None => return Err(no_such_room()),
                    Some(JOINED) => return Ok((room_for(conn, room_id, caller)?, Vec::new())),
                    Some(_) => {}
                }
                diesel::update(
                    room_members::table
                        .filter(room_members::room_id.eq(room_id))
                        .filter(room_members::user_id.eq(caller)),
                )
                .set(room_members::state.eq(JOINED))
                .execute(conn)?;
                Ok((
                    room_for(conn, room_id, caller)?,
                    joined_members(conn, room_id)?,
                ))
            })
        })
        .await?;
    events::rooms_changed(
        state,
        room_id,
        Some((RoomChange::Joined, Some(caller), caller)),
        told,
    );
    Ok(room)
}

/// Declines an invitation (`only_invited`) or leaves a room (any state). A room left by its
/// last member is deleted.
pub async fn leave(
    state: &AppState,
    caller: i64,
    room_id: i64,
    only_invited: bool,
) -> Result<(), ApiError> {
    let told = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                let mut q = diesel::delete(
                    room_members::table
                        .filter(room_members::room_id.eq(room_id))
                        .filter(room_members::user_id.eq(caller)),
                )
                .into_boxed();
                if only_invited {
                    q = q.filter(room_members::state.eq(INVITED));
                }
                if q.execute(conn)? == 0 {
                    return Err(no_such_room());
                }
                let anyone_left = diesel::select(diesel::dsl::exists(
                    room_members::table.filter(room_members::room_id.eq(room_id)),
                ))
                .get_result::<bool>(conn)?;
                if !anyone_left {
                    diesel::delete(rooms::table.filter(rooms::id.eq(room_id))).execute(conn)?;
                }
                let mut told = joined_members(conn, room_id)?;
                told.push(caller);
                Ok(told)
            })
        })
        .await?;
    let change = if only_invited {
        RoomChange::Declined
    } else {
        RoomChange::Left
    };
    events::rooms_changed(state, room_id, Some((change, Some(caller), caller)), told);
    Ok(())
}

/// The members of a room the caller joined, with the devices of the joined ones; a member
/// blocked either way with the caller is left out.
pub async fn members(state: &AppState, caller: i64, room_id: i64) -> Result<Vec<Member>, ApiError> {
    state
        .db
        .run(move |conn| {
            if !is_joined(conn, room_id, caller)? {
                return Err(no_such_room());
            }
            let rows: Vec<(i64, String, String, String, String)> = room_members::table
                .inner_join(users::table.on(users::id.eq(room_members::user_id)))
                .filter(room_members::room_id.eq(room_id))
                .order(room_members::created_at.asc())
                .then_order_by(room_members::user_id.asc())
                .select((
                    room_members::user_id,
                    users::ms_id,
                    users::display_name,
                    room_members::state,
                    room_members::role,
                ))
                .load(conn)?;
            let blocked = blocked_with(conn, caller)?;
            let devices = joined_devices(conn, room_id)?;
            let admins = admins(conn, room_id)?;
            Ok(rows
                .into_iter()
                .filter(|(user_id, ..)| !blocked.contains(user_id))
                .map(|(user_id, ms_id, display_name, state, _)| Member {
                    devices: devices
                        .iter()
                        .filter(|(_, owner)| *owner == user_id)
                        .map(|(d, _)| *d)
                        .collect(),
                    role: if admins.contains(&user_id) {
                        ADMIN.to_owned()
                    } else {
                        MEMBER.to_owned()
                    },
                    user_id,
                    ms_id,
                    display_name,
                    state,
                })
                .collect())
        })
        .await
}

/// Renames a room (an admin only); `None` removes the name.
pub async fn rename(
    state: &AppState,
    caller: i64,
    room_id: i64,
    name: Option<&str>,
) -> Result<Room, ApiError> {
    let name = room_name(name)?;
    let (room, told) = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                require_admin(conn, room_id, caller)?;
                diesel::update(rooms::table.filter(rooms::id.eq(room_id)))
                    .set(rooms::name.eq(&name))
                    .execute(conn)?;
                Ok::<_, ApiError>((
                    room_for(conn, room_id, caller)?,
                    joined_members(conn, room_id)?,
                ))
            })
        })
        .await?;
    events::rooms_changed(
        state,
        room_id,
        Some((RoomChange::Renamed, None, caller)),
        told,
    );
    Ok(room)
}

/// Removes a member, invited or joined (an admin only; to remove oneself, leave).
pub async fn remove_member(
    state: &AppState,
    caller: i64,
    room_id: i64,
    user_id: i64,
) -> Result<(), ApiError> {
    let told = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                lock_room(conn, room_id)?;
                require_admin(conn, room_id, caller)?;
                if user_id == caller {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        "to remove yourself, leave the room",
                    ));
                }
                let removed = diesel::delete(
                    room_members::table
                        .filter(room_members::room_id.eq(room_id))
                        .filter(room_members::user_id.eq(user_id)),
                )
                .execute(conn)?;
                if removed == 0 {
                    return Err(ApiError::new(
                        ErrorCode::NotFound,
                        "no such member in this room",
                    ));
                }
                let mut told = joined_members(conn, room_id)?;
                told.push(user_id);
                Ok(told)
            })
        })
        .await?;
    events::rooms_changed(
        state,
        room_id,
        Some((RoomChange::Removed, Some(user_id), caller)),
        told,
    );
    Ok(())
}

/// Makes a joined member admin, or an admin a member again (an admin only; the room keeps at
/// least one admin).
pub async fn set_role(
    state: &AppState,
    caller: i64,
    room_id: i64,
    user_id: i64,
    admin: bool,
) -> Result<(), ApiError> {
    let role = if admin { ADMIN } else { MEMBER };
    let told = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                lock_room(conn, room_id)?;
                require_admin(conn, room_id, caller)?;
                if !is_joined(conn, room_id, user_id)? {
                    return Err(ApiError::new(
                        ErrorCode::NotFound,
                        "no such joined member in this room",
                    ));
                }
                // An admin by seniority (no admin left) is written down first, so that the
                // change below cannot leave the room without one.
                diesel::update(
                    room_members::table
                        .filter(room_members::room_id.eq(room_id))
                        .filter(room_members::user_id.eq(caller)),
                )
                .set(room_members::role.eq(ADMIN))
                .execute(conn)?;
                diesel::update(
                    room_members::table
                        .filter(room_members::room_id.eq(room_id))
                        .filter(room_members::user_id.eq(user_id)),
                )
                .set(room_members::role.eq(role))
                .execute(conn)?;
                let left: i64 = room_members::table
                    .filter(room_members::room_id.eq(room_id))
                    .filter(room_members::state.eq(JOINED))
                    .filter(room_members::role.eq(ADMIN))
                    .count()
                    .get_result(conn)?;
                if left == 0 {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        "a room keeps at least one admin: make someone else admin first",
                    ));
                }
                joined_members(conn, room_id)
            })
        })
        .await?;
    let change = if admin {
        RoomChange::Promoted
    } else {
        RoomChange::Demoted
    };
    events::rooms_changed(state, room_id, Some((change, Some(user_id), caller)), told);
    Ok(())
}

/// Deletes a room with its memberships (an admin only). Envelopes already queued for its
/// members stay until delivered.
pub async fn delete(state: &AppState, caller: i64, room_id: i64) -> Result<(), ApiError> {
    let told = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                lock_room(conn, room_id)?;
                require_admin(conn, room_id, caller)?;
                let told: Vec<i64> = room_members::table
                    .filter(room_members::room_id.eq(room_id))
                    .select(room_members::user_id)
                    .load(conn)?;
                diesel::delete(room_members::table.filter(room_members::room_id.eq(room_id)))
                    .execute(conn)?;
                diesel::delete(rooms::table.filter(rooms::id.eq(room_id))).execute(conn)?;
                Ok::<_, ApiError>(told)
            })
        })
        .await?;
    events::rooms_changed(
        state,
        room_id,
        Some((RoomChange::Deleted, None, caller)),
        told,
    );
    Ok(())
}
