//! Devices and the prekey directory: `/devices`, `/users/{ms_id}/devices`.
//!
//! Keys travel as standard base64 (with padding) of their `crypto-core` encodings (protocol
//! sections 5–7). See [`crate::services::devices`] for the rules.

use crate::api::accounts::client_ip;
use crate::api::auth::AuthUser;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::profiles::limit;
use crate::api::twofa::factor;
use crate::services::devices::{self, Bundle, DeviceInfo, NewDevice, OwnDevice};
use crate::services::ratelimit::Action;
use crate::services::twofa::Method;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

/// `POST /devices` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterDeviceBody {
    /// Base64 `PublicIdentity` (129 bytes): its binding signature must verify.
    pub identity_key: String,
    /// A name for the device, 1–64 characters (trimmed).
    pub name: String,
    /// Base64 `SignedPrekey` (109 bytes), signed by the identity.
    pub signed_prekey: String,
    /// Base64 `OneTimePrekey`s (37 bytes each), at most 100, distinct ids.
    #[serde(default)]
    pub one_time_prekeys: Vec<String>,
    /// The account password: needed when the session signed in more than 10 minutes ago.
    pub password: Option<String>,
    /// With the password and 2FA on: `totp`, `email` or `recovery` (inferred when absent).
    pub method: Option<Method>,
    /// With the password and 2FA on: a current code.
    pub code: Option<String>,
}

/// A registered device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceCreated {
    /// The new device's id.
    pub device_id: i64,
}

/// One of the caller's devices.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnDeviceView {
    /// Device id.
    pub device_id: i64,
    /// Base64 `PublicIdentity`.
    pub identity_key: String,
    /// Its name.
    pub name: String,
    /// Registered, Unix seconds.
    pub created_at: i64,
    /// Last activity, Unix seconds.
    pub last_seen_at: Option<i64>,
    /// Id of the current signed prekey.
    pub signed_prekey_id: i64,
    /// Unused one-time prekeys left on the relay (upload more when low).
    pub one_time_prekeys: i64,
}

impl From<OwnDevice> for OwnDeviceView {
    fn from(d: OwnDevice) -> Self {
        Self {
            device_id: d.id,
            identity_key: BASE64.encode(&d.identity_key),
            name: d.name,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
            signed_prekey_id: d.signed_prekey_id,
            one_time_prekeys: d.one_time_prekeys,
        }
    }
}

/// A device of a contact (a friend or a fellow joined room member), or one's own.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    /// Device id (for the bundle fetch).
    pub device_id: i64,
    /// Base64 `PublicIdentity` (compare safety numbers to trust it).
    pub identity_key: String,
    /// Its name.
    pub name: String,
}

impl From<DeviceInfo> for DeviceView {
    fn from(d: DeviceInfo) -> Self {
        Self {
            device_id: d.id,
            identity_key: BASE64.encode(&d.identity_key),
            name: d.name,
        }
    }
}

/// `PUT /devices/{id}/signed-prekey` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignedPrekeyBody {
    /// Base64 `SignedPrekey`, signed by the device identity, with a greater id than the
    /// current one.
    pub signed_prekey: String,
}

/// `POST /devices/{id}/one-time-prekeys` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OneTimePrekeysBody {
    /// Base64 `OneTimePrekey`s: 1 to 100, ids distinct and not already stored.
    pub prekeys: Vec<String>,
}

/// How many one-time prekeys a device has left.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrekeyCount {
    /// Unused one-time prekeys on the relay.
    pub remaining: i64,
}

/// A prekey bundle: everything needed to start a session with the device.
#[derive(Debug, Serialize, ToSchema)]
pub struct BundleView {
    /// The device.
    pub device_id: i64,
    /// Base64 `PrekeyBundle` (238 bytes, 274 with a one-time prekey): decode it with
    /// crypto-core, which verifies it again.
    pub bundle: String,
    /// Its parts: base64 `PublicIdentity`.
    pub identity_key: String,
    /// Base64 `SignedPrekey`.
    pub signed_prekey: String,
    /// Base64 `OneTimePrekey`, claimed for the caller; absent when the device has none left.
    pub one_time_prekey: Option<String>,
}

impl From<Bundle> for BundleView {
    fn from(b: Bundle) -> Self {
        Self {
            device_id: b.device_id,
            bundle: BASE64.encode(b.bundle.encode()),
            identity_key: BASE64.encode(b.bundle.identity().encode()),
            signed_prekey: BASE64.encode(b.bundle.signed_prekey().encode()),
            one_time_prekey: b
                .bundle
                .one_time_prekey()
                .map(|k| BASE64.encode(k.encode())),
        }
    }
}

/// Register a device of the caller: its identity, a signed prekey and optionally a first
/// batch of one-time prekeys. The relay verifies every signature strictly. An account has at
/// most 10 devices.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "devices",
    request_body = RegisterDeviceBody,
    responses(
        (status = 201, body = DeviceCreated),
        (status = 400, description = "invalid_json, invalid_input (name), invalid_key, bad_signature", body = ErrorBody),
        (status = 401, description = "unauthorized; with a password: invalid_credentials, two_factor_required, invalid_code, code_replayed, code_expired", body = ErrorBody),
        (status = 403, description = "csrf_failed; reauth_required: the session signed in more than 10 minutes ago and no password came with the request", body = ErrorBody),
        (status = 409, description = "identity_taken, too_many_devices, duplicate_prekey", body = ErrorBody),
        (status = 429, description = "too_many_attempts, rate_limited (password checks)", body = ErrorBody),
        (status = 413, description = "payload_too_large: more than 100 one-time prekeys", body = ErrorBody),
    )
)]
#[post("/devices")]
pub(crate) async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    body: web::Json<RegisterDeviceBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let device = NewDevice::verify(
        &body.identity_key,
        &body.name,
        &body.signed_prekey,
        &body.one_time_prekeys,
    )?;
    let reauth = body.password.map(|password| devices::Reauth {
        ip: client_ip(&req),
        password: Zeroizing::new(password),
        factor: factor(body.method, body.code),
    });
    let device_id =
        devices::register(&state, user.user_id, user.session_id, device, reauth).await?;
    Ok(HttpResponse::Created().json(DeviceCreated { device_id }))
}

/// The caller's devices, oldest first, with their prekey state.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "devices",
    responses(
        (status = 200, body = Vec<OwnDeviceView>),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
#[get("/devices")]
pub(crate) async fn list_own(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let list = devices::list_own(&state, user.user_id).await?;
    Ok(HttpResponse::Ok().json(
        list.into_iter()
            .map(OwnDeviceView::from)
            .collect::<Vec<_>>(),
    ))
}

/// How many one-time prekeys one of the caller's devices has left on the relay.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "devices",
    params(("id" = i64, Path, description = "device id")),
    responses(
        (status = 200, body = PrekeyCount),
        (status = 400, description = "invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "not_found: no such device of the caller", body = ErrorBody),
    )
)]
#[get("/devices/{id}/one-time-prekeys/count")]
pub(crate) async fn count_one_time_prekeys(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let remaining =
        devices::count_one_time_prekeys(&state, user.user_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(PrekeyCount { remaining }))
}

/// Upload one-time prekeys for one of the caller's devices (1 to 100 per call; a device holds
/// at most 500). All or nothing.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "devices",
    params(("id" = i64, Path, description = "device id")),
    request_body = OneTimePrekeysBody,
    responses(
        (status = 200, description = "stored; `remaining` is the device's new total", body = PrekeyCount),
        (status = 400, description = "invalid_json, invalid_input (id, empty list), invalid_key", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such device of the caller", body = ErrorBody),
        (status = 409, description = "duplicate_prekey, too_many_prekeys", body = ErrorBody),
        (status = 413, description = "payload_too_large: more than 100 prekeys", body = ErrorBody),
    )
)]
#[post("/devices/{id}/one-time-prekeys")]
pub(crate) async fn upload_one_time_prekeys(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Json<OneTimePrekeysBody>,
) -> Result<HttpResponse, ApiError> {
    let remaining =
        devices::upload_one_time_prekeys(&state, user.user_id, path.into_inner(), &body.prekeys)
            .await?;
    Ok(HttpResponse::Ok().json(PrekeyCount { remaining }))
}

/// Rotate the signed prekey of one of the caller's devices. It must verify against the
/// device identity and have a greater id than the current one.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "devices",
    params(("id" = i64, Path, description = "device id")),
    request_body = SignedPrekeyBody,
    responses(
        (status = 204),
        (status = 400, description = "invalid_json, invalid_input (id), invalid_key, bad_signature", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such device of the caller", body = ErrorBody),
        (status = 409, description = "stale_prekey: id not greater than the current one", body = ErrorBody),
    )
)]
#[put("/devices/{id}/signed-prekey")]
pub(crate) async fn rotate_signed_prekey(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Json<SignedPrekeyBody>,
) -> Result<HttpResponse, ApiError> {
    devices::rotate_signed_prekey(&state, user.user_id, path.into_inner(), &body.signed_prekey)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove one of the caller's devices with its prekeys and the messages queued for it;
/// messages it sent that the relay accepted still reach their recipients.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "devices",
    params(("id" = i64, Path, description = "device id")),
    responses(
        (status = 204),
        (status = 400, description = "invalid_input (id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such device of the caller", body = ErrorBody),
    )
)]
#[delete("/devices/{id}")]
pub(crate) async fn delete_device(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    devices::delete(&state, user.user_id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A contact's devices (a friend's or a fellow joined room member's), oldest first (the caller's
/// own too). Anyone else looks nonexistent.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "devices",
    params(("ms_id" = String, Path, description = "the contact's ms_id, any case")),
    responses(
        (status = 200, body = Vec<DeviceView>),
        (status = 400, description = "invalid_ms_id", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "not_found: no such user, or not in contact (friend or fellow joined room member)", body = ErrorBody),
    )
)]
#[get("/users/{ms_id}/devices")]
pub(crate) async fn list_for_user(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let list = devices::list_for(&state, user.user_id, &path).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(DeviceView::from).collect::<Vec<_>>()))
}

/// Fetch a contact's device's prekey bundle (the caller's own devices too). Each fetch claims
/// one one-time prekey, never handed out twice; when none remain the bundle has none.
/// Limited to 200 fetches an hour per account (burst) and 600 per IP.
#[utoipa::path(
    security(("session_token" = []), ("session_cookie" = [])),
    tag = "devices",
    params(
        ("ms_id" = String, Path, description = "the contact's ms_id, any case"),
        ("device_id" = i64, Path, description = "one of their device ids"),
    ),
    responses(
        (status = 200, body = BundleView),
        (status = 400, description = "invalid_ms_id, invalid_input (device id)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "csrf_failed", body = ErrorBody),
        (status = 404, description = "not_found: no such user, not in contact, or no such device of theirs", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    )
)]
#[post("/users/{ms_id}/devices/{device_id}/bundle")]
pub(crate) async fn claim_bundle(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthUser,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    limit(&state, &req, &user, Action::BundleFetch)?;
    let (ms_id, device_id) = path.into_inner();
    let bundle = devices::claim_bundle(&state, user.user_id, &ms_id, device_id).await?;
    Ok(HttpResponse::Ok().json(BundleView::from(bundle)))
}
