//! Rooms: `/rooms`, `/rooms/{id}` (rename, delete), `/invites`, `/join`, `/decline`,
//! `/leave`, `/members` (list, remove, role). See
//! [`crate::services::rooms`] for the rules; room messages travel over the WebSocket (`send`
//! with `room`).

use crate::api::auth::AuthUser;
use crate::api::error::{ApiError, ErrorBody};
use crate::services::rooms::{self, Member, Room};
use crate::state::AppState;
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /rooms` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateRoomBody {
    /// Optional name, 1 to 64 characters (trimmed; blank means none). The relay can read it:
    /// leave it out and keep the name inside encrypted messages for privacy.
    #[serde(default)]
    pub name: Option<String>,
}

/// `PATCH /rooms/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RenameRoomBody {
    /// The new name, 1 to 64 characters (trimmed), or `null` for none.
    pub name: Option<String>,
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    /// May rename the room, remove members, change roles and delete the room.
    Admin,
    /// May send, invite friends and leave.
    Member,
}

/// `PUT /rooms/{id}/members/{user_id}/role` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleBody {
    /// `admin` or `member`.
    pub role: RoleName,
}

/// `POST /rooms/{id}/invites` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InviteBody {
    /// The ms_id of a friend of the caller (any case).
    pub ms_id: String,
}

/// A room, as the caller sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomView {
    /// Room id (the `room` of `send` and `envelope` frames).
    pub id: i64,
    /// Optional name.
    pub name: Option<String>,
    /// The caller's state: `invited` or `joined`.
    pub state: String,
    /// Created at, Unix seconds.
    pub created_at: i64,
}

impl From<Room> for RoomView {
    fn from(r: Room) -> Self {
        Self {
            id: r.id,
            name: r.name,
            state: r.state,
            created_at: r.created_at,
        }
    }
}

/// The caller's rooms.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomsView {
    /// Rooms the caller joined or is invited to, oldest first.
    pub rooms: Vec<RoomView>,
}

/// A room member.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// User id (the `from_user` of their envelopes).
    pub user_id: i64,
    /// Current ms_id.
    pub ms_id: String,
    /// Display name.
    pub display_name: String,
    /// `invited` or `joined`.
    pub state: String,
    /// `admin` or `member`. When every admin has gone, the longest-standing joined member
    /// is the admin.
    pub role: String,
    /// Device ids of a joined member (every one receives room envelopes; encrypt the sender
    /// key to each); empty for an invitee.
    pub devices: Vec<i64>,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        Self {
            user_id: m.user_id,
            ms_id: m.ms_id,
            display_name: m.display_name,
            state: m.state,
            role: m.role,
            devices: m.devices,
        }
    }
}

/// The members of a room.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembersView {
    /// Members, in the order they were added.
    pub members: Vec<MemberView>,
}

/// Create a room; the caller is its first joined member.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "rooms",
    request_body = CreateRoomBody,
    responses(
        (status = 201, body = RoomView),
        (status = 400, description = "invalid_json, invalid_input (name)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 429, description = "rate_limited: 30 rooms an hour per account", body = ErrorBody),
    )
)]
#[post("/rooms")]
pub(crate) async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateRoomBody>,
) -> Result<HttpResponse, ApiError> {
    let room = rooms::create(&state, user.user_id, body.name.as_deref()).await?;
    Ok(HttpResponse::Created().json(RoomView::from(room)))
}

/// The rooms the caller joined or is invited to.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "rooms",
    responses(
        (status = 200, body = RoomsView),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
#[get("/rooms")]
pub(crate) async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let rooms = rooms::list(&state, user.user_id).await?;
    Ok(HttpResponse::Ok().json(RoomsView {
        rooms: rooms.into_iter().map(Into::into).collect(),
    }))
}

/// Invite a friend to a room the caller joined (inviting a member again changes nothing).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "rooms",
    params(("id" = i64, Path, description = "room id")),
    request_body = InviteBody,
    responses(
        (status = 204),
        (status = 400, description = "invalid_json, invalid_ms_id, invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such room joined by the caller, or no such user among the caller's friends", body = ErrorBody),
        (status = 409, description = "conflict: the room has 100 members", body = ErrorBody),
        (status = 429, description = "rate_limited: 200 invitations an hour per account", body = ErrorBody),
    )
)]
#[post("/rooms/{id}/invites")]
pub(crate) async fn invite(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Json<InviteBody>,
) -> Result<HttpResponse, ApiError> {
    rooms::invite(&state, user.user_id, path.into_inner(), &body.ms_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Accept an invitation to a room (joining again changes nothing).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "rooms",
    params(("id" = i64, Path, description = "room id")),
    responses(
        (status = 200, body = RoomView),
        (status = 400, description = "invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such room the caller is invited to", body = ErrorBody),
    )
)]
#[post("/rooms/{id}/join")]
pub(crate) async fn join(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let room = rooms::join(&state, user.user_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(RoomView::from(room)))
}

/// Decline an invitation to a room.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "rooms",
    params(("id" = i64, Path, description = "room id")),
    responses(
        (status = 204),
        (status = 400, description = "invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no pending invitation to this room", body = ErrorBody),
    )
)]
#[post("/rooms/{id}/decline")]
pub(crate) async fn decline(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    rooms::leave(&state, user.user_id, path.into_inner(), true).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Leave a room (or drop an invitation); no new room envelopes reach the caller's devices.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "rooms",
    params(("id" = i64, Path, description = "room id")),
    responses(
        (status = 204),
        (status = 400, description = "invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: the caller is not in this room", body = ErrorBody),
    )
)]
#[post("/rooms/{id}/leave")]
pub(crate) async fn leave(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    rooms::leave(&state, user.user_id, path.into_inner(), false).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The members of a room the caller joined, with the device ids of the joined ones; members
/// blocked either way with the caller are left out.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "rooms",
    params(("id" = i64, Path, description = "room id")),
    responses(
        (status = 200, body = MembersView),
        (status = 400, description = "invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "not_found: no such room joined by the caller", body = ErrorBody),
    )
)]
#[get("/rooms/{id}/members")]
pub(crate) async fn members(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let members = rooms::members(&state, user.user_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(MembersView {
        members: members.into_iter().map(Into::into).collect(),
    }))
}

/// Rename a room (an admin of the room only).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "rooms",
    params(("id" = i64, Path, description = "room id")),
    request_body = RenameRoomBody,
    responses(
        (status = 200, body = RoomView),
        (status = 400, description = "invalid_json, invalid_input (id, name)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed, not_room_admin", body = ErrorBody),
        (status = 404, description = "not_found: no such room joined by the caller", body = ErrorBody),
    )
)]
#[patch("/rooms/{id}")]
pub(crate) async fn rename(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Json<RenameRoomBody>,
) -> Result<HttpResponse, ApiError> {
    let room = rooms::rename(
        &state,
        user.user_id,
        path.into_inner(),
        body.name.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(RoomView::from(room)))
}

/// Delete a room for everyone (an admin of the room only).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "rooms",
    params(("id" = i64, Path, description = "room id")),
    responses(
        (status = 204),
        (status = 400, description = "invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed, not_room_admin", body = ErrorBody),
        (status = 404, description = "not_found: no such room joined by the caller", body = ErrorBody),
    )
)]
#[delete("/rooms/{id}")]
pub(crate) async fn delete_room(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    rooms::delete(&state, user.user_id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove a member, invited or joined (an admin of the room only; to remove yourself, leave).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "rooms",
    params(
        ("id" = i64, Path, description = "room id"),
        ("user_id" = i64, Path, description = "the member's user id"),
    ),
    responses(
        (status = 204),
        (status = 400, description = "invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed, not_room_admin", body = ErrorBody),
        (status = 404, description = "not_found: no such room joined by the caller, or no such member", body = ErrorBody),
        (status = 409, description = "conflict: removing oneself (leave instead)", body = ErrorBody),
    )
)]
#[delete("/rooms/{id}/members/{user_id}")]
pub(crate) async fn remove_member(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (room, member) = path.into_inner();
    rooms::remove_member(&state, user.user_id, room, member).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Make a joined member admin, or an admin a member again (an admin of the room only; a room
/// keeps at least one admin).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "rooms",
    params(
        ("id" = i64, Path, description = "room id"),
        ("user_id" = i64, Path, description = "the member's user id"),
    ),
    request_body = RoleBody,
    responses(
        (status = 204),
        (status = 400, description = "invalid_json (role), invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed, not_room_admin", body = ErrorBody),
        (status = 404, description = "not_found: no such room joined by the caller, or no such joined member", body = ErrorBody),
        (status = 409, description = "conflict: the room would have no admin", body = ErrorBody),
    )
)]
#[put("/rooms/{id}/members/{user_id}/role")]
pub(crate) async fn set_role(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(i64, i64)>,
    body: web::Json<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let (room, member) = path.into_inner();
    let admin = matches!(body.role, RoleName::Admin);
    rooms::set_role(&state, user.user_id, room, member, admin).await?;
    Ok(HttpResponse::NoContent().finish())
}
