//! Friends, friend requests and blocks: `/friends`, `/friends/requests`, `/blocks`.
//!
//! Users are addressed by ms_id (any case); requests by id. See [`crate::services::friends`]
//! for the rules (mutual requests become a friendship; a block hides the blocker).

use crate::api::auth::AuthUser;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::profiles::limit;
use crate::services::friends::{self, BlockedUser, Friend, RequestInfo, SendOutcome};
use crate::services::ratelimit::Action;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /friends/requests` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendRequestBody {
    /// The ms_id of the user to ask (any case).
    pub ms_id: String,
    /// Optional note, at most 280 characters (trimmed; line breaks allowed, other control
    /// characters not).
    #[serde(default)]
    pub note: Option<String>,
}

/// A pending friend request.
#[derive(Debug, Serialize, ToSchema)]
pub struct FriendRequestView {
    /// Request id (for accept, decline, cancel).
    pub id: i64,
    /// The other user's id (the id WebSocket frames name users by).
    pub user_id: i64,
    /// The other user's current ms_id (sender of an incoming, recipient of an outgoing one).
    pub ms_id: String,
    /// The other user's display name.
    pub display_name: String,
    /// The sender's note.
    pub note: Option<String>,
    /// Sent, Unix seconds.
    pub created_at: i64,
}

impl From<RequestInfo> for FriendRequestView {
    fn from(r: RequestInfo) -> Self {
        Self {
            id: r.id,
            user_id: r.other.user_id,
            ms_id: r.other.ms_id,
            display_name: r.other.display_name,
            note: r.note,
            created_at: r.created_at,
        }
    }
}

/// The caller's pending requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct FriendRequestsView {
    /// Sent to the caller, oldest first.
    pub incoming: Vec<FriendRequestView>,
    /// Sent by the caller, oldest first.
    pub outgoing: Vec<FriendRequestView>,
}

/// A friend.
#[derive(Debug, Serialize, ToSchema)]
pub struct FriendView {
    /// Their user id (`presence.user`, `typing.from_user`, `envelope.from_user`).
    pub user_id: i64,
    /// Their current ms_id.
    pub ms_id: String,
    /// Their display name.
    pub display_name: String,
    /// Friends since, Unix seconds.
    pub since: i64,
}

impl From<Friend> for FriendView {
    fn from(f: Friend) -> Self {
        Self {
            user_id: f.profile.user_id,
            ms_id: f.profile.ms_id,
            display_name: f.profile.display_name,
            since: f.since,
        }
    }
}

/// What `POST /friends/requests` did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SendStatus {
    /// A request is pending (201, `request` is set).
    Pending,
    /// The other user had already asked the caller, so they are friends now (200, `friend`
    /// is set).
    Accepted,
}

/// Result of sending a friend request.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendRequestResponse {
    /// `pending` or `accepted`.
    pub status: SendStatus,
    /// The new request, when `pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<FriendRequestView>,
    /// The new friend, when `accepted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub friend: Option<FriendView>,
}

/// `POST /blocks` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BlockBody {
    /// The ms_id of the user to block (any case).
    pub ms_id: String,
}

/// A user the caller blocked.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockView {
    /// Their user id.
    pub user_id: i64,
    /// Their current ms_id.
    pub ms_id: String,
    /// Their display name.
    pub display_name: String,
    /// Blocked at, Unix seconds.
    pub blocked_at: i64,
}

impl From<BlockedUser> for BlockView {
    fn from(b: BlockedUser) -> Self {
        Self {
            user_id: b.profile.user_id,
            ms_id: b.profile.ms_id,
            display_name: b.profile.display_name,
            blocked_at: b.blocked_at,
        }
    }
}

/// Send a friend request by ms_id. If that user already asked the caller, the two become
/// friends at once (200, `accepted`). Limited to 30 attempts an hour per account and 60 per IP.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "friends",
    request_body = SendRequestBody,
    responses(
        (status = 201, description = "pending", body = SendRequestResponse),
        (status = 200, description = "accepted: they had asked the caller already", body = SendRequestResponse),
        (status = 400, description = "invalid_json, invalid_ms_id, invalid_input (note), self_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "blocked: the caller blocked this user; csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such user (or one who blocked the caller)", body = ErrorBody),
        (status = 409, description = "duplicate_request, already_friends", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
#[post("/friends/requests")]
pub(crate) async fn send_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<SendRequestBody>,
) -> Result<HttpResponse, ApiError> {
    limit(&state, &req, &user, Action::FriendRequest)?;
    let outcome =
        friends::send_request(&state, user.user_id, &body.ms_id, body.note.as_deref()).await?;
    Ok(match outcome {
        SendOutcome::Pending(request) => HttpResponse::Created().json(SendRequestResponse {
            status: SendStatus::Pending,
            request: Some(request.into()),
            friend: None,
        }),
        SendOutcome::Accepted(friend) => HttpResponse::Ok().json(SendRequestResponse {
            status: SendStatus::Accepted,
            request: None,
            friend: Some(friend.into()),
        }),
    })
}

/// The caller's incoming and outgoing pending friend requests.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "friends",
    responses(
        (status = 200, body = FriendRequestsView),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
#[get("/friends/requests")]
pub(crate) async fn list_requests(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let requests = friends::list_requests(&state, user.user_id).await?;
    Ok(HttpResponse::Ok().json(FriendRequestsView {
        incoming: requests.incoming.into_iter().map(Into::into).collect(),
        outgoing: requests.outgoing.into_iter().map(Into::into).collect(),
    }))
}

/// Accept a friend request sent to the caller.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "friends",
    params(("id" = i64, Path, description = "request id")),
    responses(
        (status = 200, body = FriendView),
        (status = 400, description = "invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such request sent to the caller", body = ErrorBody),
    )
)]
#[post("/friends/requests/{id}/accept")]
pub(crate) async fn accept_request(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let friend = friends::accept(&state, user.user_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(FriendView::from(friend)))
}

/// Decline a friend request sent to the caller (the sender is not told).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "friends",
    params(("id" = i64, Path, description = "request id")),
    responses(
        (status = 204),
        (status = 400, description = "invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such request sent to the caller", body = ErrorBody),
    )
)]
#[post("/friends/requests/{id}/decline")]
pub(crate) async fn decline_request(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    friends::decline(&state, user.user_id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Cancel a friend request the caller sent.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "friends",
    params(("id" = i64, Path, description = "request id")),
    responses(
        (status = 204),
        (status = 400, description = "invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such request sent by the caller", body = ErrorBody),
    )
)]
#[delete("/friends/requests/{id}")]
pub(crate) async fn cancel_request(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    friends::cancel(&state, user.user_id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's friends (user id, ms_id, display name, since), ordered by ms_id.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "friends",
    responses(
        (status = 200, body = Vec<FriendView>),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
#[get("/friends")]
pub(crate) async fn list_friends(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let list = friends::list_friends(&state, user.user_id).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(FriendView::from).collect::<Vec<_>>()))
}

/// End a friendship.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "friends",
    params(("ms_id" = String, Path, description = "the friend's ms_id, any case")),
    responses(
        (status = 204),
        (status = 400, description = "invalid_ms_id", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no friend with this ms_id", body = ErrorBody),
    )
)]
#[delete("/friends/{ms_id}")]
pub(crate) async fn remove_friend(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    friends::remove_friend(&state, user.user_id, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Block a user: ends the friendship and deletes pending requests both ways; the caller then
/// looks nonexistent to them. Blocking again changes nothing. Counts as a lookup for the
/// rate limit.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "blocks",
    request_body = BlockBody,
    responses(
        (status = 204),
        (status = 400, description = "invalid_json, invalid_ms_id, self_request (blocking oneself)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such user (or one who blocked the caller)", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
#[post("/blocks")]
pub(crate) async fn block(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<BlockBody>,
) -> Result<HttpResponse, ApiError> {
    // 204 or 404 tells whether an ms_id exists: limited like lookups.
    limit(&state, &req, &user, Action::Lookup)?;
    friends::block(&state, user.user_id, &body.ms_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lift a block (friendship and requests are not restored).
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "blocks",
    params(("ms_id" = String, Path, description = "the blocked user's ms_id, any case")),
    responses(
        (status = 204),
        (status = 400, description = "invalid_ms_id", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: the caller has not blocked this ms_id", body = ErrorBody),
    )
)]
#[delete("/blocks/{ms_id}")]
pub(crate) async fn unblock(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    friends::unblock(&state, user.user_id, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The users the caller blocked, most recent first.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "blocks",
    responses(
        (status = 200, body = Vec<BlockView>),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
#[get("/blocks")]
pub(crate) async fn list_blocks(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let list = friends::list_blocks(&state, user.user_id).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(BlockView::from).collect::<Vec<_>>()))
}
