//! Devices and the prekey directory: what a peer needs to start an end-to-end session with a
//! device (DESIGN "Directory"; protocol sections 5–7).
//!
//! Rules:
//! - Every key is decoded with `crypto-core` and every signature verified **strictly** by the
//!   relay itself: the identity's binding signature when it is decoded, and the signed prekey's
//!   signature against the device's identity on registration and rotation. Malformed keys are
//!   `invalid_key`, forged signatures `bad_signature`; nothing is stored then.
//! - The relay stores the canonical re-encoding of what it decoded, so what it serves is
//!   exactly what was verified.
//! - An identity key belongs to at most one device (`identity_taken`); an account has at most
//!   [`MAX_DEVICES_PER_USER`] devices, a device at most [`MAX_ONE_TIME_PREKEYS_PER_DEVICE`]
//!   unused one-time prekeys, uploaded at most [`MAX_ONE_TIME_PREKEYS_PER_UPLOAD`] at a time.
//! - A rotated signed prekey must have a greater id than the current one (`stale_prekey`), so
//!   an old prekey (whose secret may have leaked) cannot be put back.
//! - A device addressed by id that is not the caller's is `not_found`, like an unknown one.
//! - Only users **in contact** ([`contacts::in_contact`]: friends, or joined members of a
//!   common room, and no block either way) see a user's devices and fetch their bundles; to
//!   anyone else the user looks like no account at all (`not_found`, as for blocks). A user
//!   also sees their own devices this way, so their devices can start sessions with each other.
//! - Registering or removing a device sends `devices_changed` to the owner's devices and to
//!   every user in contact with them ([`crate::services::events::devices_changed_now`]).
//! - A bundle fetch claims the device's oldest one-time prekey **atomically**: concurrent
//!   fetches never get the same one (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: the write
//!   lock of `BEGIN IMMEDIATE`). When none remain, the bundle comes without one.

use crate::api::error::{ApiError, ErrorCode};
use crate::db::schema::{devices, one_time_prekeys, sessions, signed_prekeys};
use crate::db::{DbConnection, write_transaction};
use crate::services::twofa::{self, SecondFactor};
use crate::services::{accounts, contacts, profiles, validate};
use crate::state::AppState;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_core::error::{DecodeError, SignatureError};
use crypto_core::identity::PublicIdentity;
use crypto_core::prekeys::{OneTimePrekey, PrekeyBundle, SignedPrekey};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Binary};
use std::net::IpAddr;
use zeroize::Zeroizing;

/// Most devices per account.
pub const MAX_DEVICES_PER_USER: i64 = 10;
/// Most one-time prekeys in one upload (crypto-core generates batches of this size).
pub const MAX_ONE_TIME_PREKEYS_PER_UPLOAD: usize =
    crypto_core::account::MAX_ONE_TIME_PREKEYS_PER_BATCH;
/// Most unused one-time prekeys stored per device (what a crypto-core account keeps).
pub const MAX_ONE_TIME_PREKEYS_PER_DEVICE: i64 = 500;

/// One of the caller's own devices.
#[derive(Debug, Clone)]
pub struct OwnDevice {
    /// Device id.
    pub id: i64,
    /// Encoded `PublicIdentity`.
    pub identity_key: Vec<u8>,
    /// Name given by the owner.
    pub name: String,
    /// Registered, Unix seconds.
    pub created_at: i64,
    /// Last activity, Unix seconds (set by message delivery).
    pub last_seen_at: Option<i64>,
    /// Id of the current signed prekey.
    pub signed_prekey_id: i64,
    /// Unused one-time prekeys left on the relay.
    pub one_time_prekeys: i64,
}

/// A device as a friend sees it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Device id.
    pub id: i64,
    /// Encoded `PublicIdentity`.
    pub identity_key: Vec<u8>,
    /// Name given by the owner.
    pub name: String,
}

/// A fetched prekey bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The device it belongs to.
    pub device_id: i64,
    /// The verified bundle (with the claimed one-time prekey, if one was left).
    pub bundle: PrekeyBundle,
}

/// A verified device registration, ready to store.
#[derive(Debug)]
pub struct NewDevice {
    identity: PublicIdentity,
    name: String,
    signed_prekey: SignedPrekey,
    one_time_prekeys: Vec<OneTimePrekey>,
}

fn no_such_device() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such device")
}

/// A crypto-core decoding or verification failure of `field` as an API error.
fn key_error(field: &str, e: &DecodeError) -> ApiError {
    match e {
        DecodeError::BadSignature => ApiError::new(
            ErrorCode::BadSignature,
            format!("{field}: signature does not verify"),
        ),
        other => ApiError::new(ErrorCode::InvalidKey, format!("{field}: {other}")),
    }
}

/// A signature check of `field` that failed, as an API error (the same as a decoder's
/// `BadSignature`).
fn signature_error(field: &str, e: SignatureError) -> ApiError {
    key_error(field, &DecodeError::from(e))
}

fn base64(field: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    BASE64.decode(value).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidKey,
            format!("{field}: not standard base64"),
        )
    })
}

/// Decodes an identity; decoding checks the Ed25519 key and verifies the binding signature
/// strictly (`PublicIdentity::new`).
fn decode_identity(value: &str) -> Result<PublicIdentity, ApiError> {
    PublicIdentity::decode(&base64("identity_key", value)?)
        .map_err(|e| key_error("identity_key", &e))
}

/// Decodes a signed prekey and verifies its signature against `identity`.
fn decode_signed_prekey(value: &str, identity: &PublicIdentity) -> Result<SignedPrekey, ApiError> {
    let spk = SignedPrekey::decode(&base64("signed_prekey", value)?)
        .map_err(|e| key_error("signed_prekey", &e))?;
    spk.verify(identity)
        .map_err(|e| signature_error("signed_prekey", e))?;
    Ok(spk)
}

/// Decodes an upload of one-time prekeys: 1 to [`MAX_ONE_TIME_PREKEYS_PER_UPLOAD`] of them
/// (`payload_too_large` beyond), with distinct ids (`duplicate_prekey`).
fn decode_one_time_prekeys(
    values: &[String],
    allow_empty: bool,
) -> Result<Vec<OneTimePrekey>, ApiError> {
    if values.len() > MAX_ONE_TIME_PREKEYS_PER_UPLOAD {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("at most {MAX_ONE_TIME_PREKEYS_PER_UPLOAD} one-time prekeys per request"),
        ));
    }
    if values.is_empty() && !allow_empty {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "prekeys must hold at least one one-time prekey",
        ));
    }
    let mut keys = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let field = format!("one_time_prekeys[{i}]");
        let key =
            OneTimePrekey::decode(&base64(&field, value)?).map_err(|e| key_error(&field, &e))?;
        keys.push(key);
    }
    let mut ids: Vec<u32> = keys.iter().map(|k| k.id).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|w| w.first() == w.get(1)) {
        let id = pair.first().copied().unwrap_or_default();
        return Err(duplicate_prekey(i64::from(id)));
    }
    Ok(keys)
}

fn duplicate_prekey(key_id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::DuplicatePrekey,
        format!("one-time prekey id {key_id} is repeated or already stored for this device"),
    )
}

impl NewDevice {
    /// Decodes and verifies a registration: `invalid_key`, `bad_signature`, `invalid_input`
    /// (name), `payload_too_large` or `duplicate_prekey` when it is not acceptable.
    pub fn verify(
        identity_key: &str,
        name: &str,
        signed_prekey: &str,
        one_time_prekeys: &[String],
    ) -> Result<Self, ApiError> {
        let name = validate::device_name(name)?;
        let identity = decode_identity(identity_key)?;
        let signed_prekey = decode_signed_prekey(signed_prekey, &identity)?;
        let one_time_prekeys = decode_one_time_prekeys(one_time_prekeys, true)?;
        Ok(Self {
            identity,
            name,
            signed_prekey,
            one_time_prekeys,
        })
    }
}

/// Serializes registrations of one account on PostgreSQL (read committed): two concurrent
/// ones could otherwise both see room under the device cap. The row lock does not conflict
/// with the key-share locks foreign keys take. SQLite needs nothing: [`write_transaction`]
/// holds the database's write lock.
fn lock_user(conn: &mut DbConnection, user_id: i64) -> Result<(), ApiError> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .bind::<BigInt, _>(user_id)
            .execute(pg)?;
    }
    Ok(())
}

/// The identity of the caller's device `device_id` (`not_found` when it is not theirs), with
/// the device row locked on PostgreSQL (see [`lock_user`]) for a read-then-write.
fn owned_device(conn: &mut DbConnection, caller: i64, device_id: i64) -> Result<Vec<u8>, ApiError> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT 1 FROM devices WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE")
            .bind::<BigInt, _>(device_id)
            .bind::<BigInt, _>(caller)
            .execute(pg)?;
    }
    devices::table
        .filter(devices::id.eq(device_id))
        .filter(devices::user_id.eq(caller))
        .select(devices::identity_key)
        .first::<Vec<u8>>(conn)
        .optional()?
        .ok_or_else(no_such_device)
}

fn stored_identity(bytes: &[u8]) -> Result<PublicIdentity, ApiError> {
    PublicIdentity::decode(bytes).map_err(|e| ApiError::internal(format!("stored identity: {e}")))
}

fn insert_one_time_prekeys(
    conn: &mut DbConnection,
    device_id: i64,
    keys: &[OneTimePrekey],
    now: i64,
) -> Result<(), ApiError> {
    for key in keys {
        let key_id = i64::from(key.id);
        diesel::insert_into(one_time_prekeys::table)
            .values((
                one_time_prekeys::device_id.eq(device_id),
                one_time_prekeys::key_id.eq(key_id),
                one_time_prekeys::prekey.eq(key.encode()),
                one_time_prekeys::created_at.eq(now),
            ))
            .execute(conn)
            .map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    duplicate_prekey(key_id)
                }
                other => ApiError::from(other),
            })?;
    }
    Ok(())
}

fn count_one_time_prekeys_of(conn: &mut DbConnection, device_id: i64) -> Result<i64, ApiError> {
    Ok(one_time_prekeys::table
        .filter(one_time_prekeys::device_id.eq(device_id))
        .count()
        .get_result::<i64>(conn)?)
}

/// How long after a full sign-in (password and second factor) a session may add a device
/// without repeating them (issue #12 item 10: a stolen session must not silently add a device
/// that friends then encrypt to).
pub const RECENT_SIGN_IN_SECS: i64 = 600;

/// The password (and second factor) sent with a device registration by an older session.
pub struct Reauth {
    /// Where the request came from (password checks are rate limited per IP too).
    pub ip: IpAddr,
    /// The account password.
    pub password: Zeroizing<String>,
    /// The second factor, when 2FA is on.
    pub factor: SecondFactor,
}

/// Refuses `reauth_required` unless `session_id` signed in within [`RECENT_SIGN_IN_SECS`] or
/// `reauth` proves the password (and second factor) again.
async fn require_recent_sign_in(
    state: &AppState,
    caller: i64,
    session_id: i64,
    reauth: Option<Reauth>,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    let signed_in_at: Option<i64> = state
        .db
        .run(move |conn| {
            sessions::table
                .find(session_id)
                .select(sessions::created_at)
                .first::<i64>(conn)
                .optional()
                .map_err(ApiError::from)
        })
        .await?;
    if signed_in_at.is_some_and(|at| now.saturating_sub(at) <= RECENT_SIGN_IN_SECS) {
        return Ok(());
    }
    match reauth {
        Some(r) => {
            accounts::reauthenticate(state, caller, r.ip, r.password, r.factor).await?;
            Ok(())
        }
        None => Err(ApiError::new(
            ErrorCode::ReauthRequired,
            "adding a device needs a recent sign-in: send the password (and a second-factor code) with the request, or sign in again",
        )),
    }
}

/// Registers a verified device for `caller`, signed in as `session_id`; returns its id. The
/// session must have signed in recently or `reauth` must prove the password again ([`RECENT_SIGN_IN_SECS`]); the
/// addition is a security event, and the account's other devices and its contacts get a
/// `devices_changed` notice.
pub async fn register(
    state: &AppState,
    caller: i64,
    session_id: i64,
    device: NewDevice,
    reauth: Option<Reauth>,
) -> Result<i64, ApiError> {
    require_recent_sign_in(state, caller, session_id, reauth).await?;
    let now = state.clock.now();
    let identity_key = device.identity.encode();
    let spk_id = i64::from(device.signed_prekey.id());
    let spk = device.signed_prekey.encode();
    let device_id = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                lock_user(conn, caller)?;
                let existing: i64 = devices::table
                    .filter(devices::user_id.eq(caller))
                    .count()
                    .get_result(conn)?;
                if existing >= MAX_DEVICES_PER_USER {
                    return Err(ApiError::new(
                        ErrorCode::TooManyDevices,
                        format!(
                            "an account has at most {MAX_DEVICES_PER_USER} devices; remove one first"
                        ),
                    ));
                }
                let taken = diesel::select(diesel::dsl::exists(
                    devices::table.filter(devices::identity_key.eq(&identity_key)),
                ))
                .get_result::<bool>(conn)?;
                if taken {
                    return Err(identity_taken());
                }
                let device_id = diesel::insert_into(devices::table)
                    .values((
                        devices::user_id.eq(caller),
                        devices::identity_key.eq(&identity_key),
                        devices::name.eq(&device.name),
                        devices::created_at.eq(now),
                    ))
                    .returning(devices::id)
                    .get_result::<i64>(conn)
                    .map_err(|e| match e {
                        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                            identity_taken()
                        }
                        other => ApiError::from(other),
                    })?;
                diesel::insert_into(signed_prekeys::table)
                    .values((
                        signed_prekeys::device_id.eq(device_id),
                        signed_prekeys::key_id.eq(spk_id),
                        signed_prekeys::prekey.eq(&spk),
                        signed_prekeys::created_at.eq(now),
                    ))
                    .execute(conn)?;
                insert_one_time_prekeys(conn, device_id, &device.one_time_prekeys, now)?;
                twofa::log_event(conn, caller, "device_added", now)?;
                Ok(device_id)
            })
        })
        .await?;
    crate::services::events::devices_changed_now(state, caller).await;
    Ok(device_id)
}

fn identity_taken() -> ApiError {
    ApiError::new(
        ErrorCode::IdentityTaken,
        "this identity key is already registered",
    )
}

/// The caller's devices, oldest first, with their prekey state.
pub async fn list_own(state: &AppState, caller: i64) -> Result<Vec<OwnDevice>, ApiError> {
    state
        .db
        .run(move |conn| {
            type Row = (i64, Vec<u8>, String, i64, Option<i64>, i64);
            let rows: Vec<Row> = devices::table
                .inner_join(signed_prekeys::table)
                .filter(devices::user_id.eq(caller))
                .order(devices::id.asc())
                .select((
                    devices::id,
                    devices::identity_key,
                    devices::name,
                    devices::created_at,
                    devices::last_seen_at,
                    signed_prekeys::key_id,
                ))
                .load(conn)?;
            let mut out = Vec::with_capacity(rows.len());
            // At most MAX_DEVICES_PER_USER rows: one count each is cheap.
            for (id, identity_key, name, created_at, last_seen_at, signed_prekey_id) in rows {
                out.push(OwnDevice {
                    id,
                    identity_key,
                    name,
                    created_at,
                    last_seen_at,
                    signed_prekey_id,
                    one_time_prekeys: count_one_time_prekeys_of(conn, id)?,
                });
            }
            Ok::<_, ApiError>(out)
        })
        .await
}

/// Removes one of the caller's devices, with its prekeys and queued envelopes (cascade).
pub async fn delete(state: &AppState, caller: i64, device_id: i64) -> Result<(), ApiError> {
    let deleted = state
        .db
        .run(move |conn| {
            Ok::<_, ApiError>(
                diesel::delete(
                    devices::table
                        .filter(devices::id.eq(device_id))
                        .filter(devices::user_id.eq(caller)),
                )
                .execute(conn)?,
            )
        })
        .await?;
    if deleted == 0 {
        return Err(no_such_device());
    }
    crate::services::events::devices_changed_now(state, caller).await;
    Ok(())
}

/// The user `ms_id` addresses, if the caller may see their devices: someone in contact with
/// the caller ([`contacts::in_contact`]), or the caller.
fn directory_owner(conn: &mut DbConnection, caller: i64, ms_id: &str) -> Result<i64, ApiError> {
    let (owner, _) = profiles::find_visible(conn, caller, ms_id)?;
    if owner != caller && !contacts::in_contact(conn, caller, owner)? {
        return Err(profiles::no_such_user());
    }
    Ok(owner)
}

/// The devices of `raw_ms_id`, oldest first, if they are in contact with the caller (or are
/// the caller); otherwise `not_found`.
pub async fn list_for(
    state: &AppState,
    caller: i64,
    raw_ms_id: &str,
) -> Result<Vec<DeviceInfo>, ApiError> {
    let ms_id = validate::ms_id_lookup(raw_ms_id)?;
    state
        .db
        .run(move |conn| {
            let owner = directory_owner(conn, caller, &ms_id)?;
            let rows: Vec<(i64, Vec<u8>, String)> = devices::table
                .filter(devices::user_id.eq(owner))
                .order(devices::id.asc())
                .select((devices::id, devices::identity_key, devices::name))
                .load(conn)?;
            Ok::<_, ApiError>(
                rows.into_iter()
                    .map(|(id, identity_key, name)| DeviceInfo {
                        id,
                        identity_key,
                        name,
                    })
                    .collect(),
            )
        })
        .await
}

/// Replaces the signed prekey of the caller's device `device_id`. The new one must verify
/// against the device identity and have a greater id than the current one.
pub async fn rotate_signed_prekey(
    state: &AppState,
    caller: i64,
    device_id: i64,
    raw_signed_prekey: &str,
) -> Result<(), ApiError> {
    let bytes = base64("signed_prekey", raw_signed_prekey)?;
    let spk = SignedPrekey::decode(&bytes).map_err(|e| key_error("signed_prekey", &e))?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                let identity = stored_identity(&owned_device(conn, caller, device_id)?)?;
                spk.verify(&identity)
                    .map_err(|e| signature_error("signed_prekey", e))?;
                let new_id = i64::from(spk.id());
                let current: Option<i64> = signed_prekeys::table
                    .filter(signed_prekeys::device_id.eq(device_id))
                    .select(signed_prekeys::key_id)
                    .first(conn)
                    .optional()?;
                if let Some(current) = current
                    && new_id <= current
                {
                    return Err(ApiError::new(
                        ErrorCode::StalePrekey,
                        format!(
                            "the signed prekey id must be greater than the current one ({current})"
                        ),
                    ));
                }
                let values = (
                    signed_prekeys::key_id.eq(new_id),
                    signed_prekeys::prekey.eq(spk.encode()),
                    signed_prekeys::created_at.eq(now),
                );
                if current.is_some() {
                    diesel::update(
                        signed_prekeys::table.filter(signed_prekeys::device_id.eq(device_id)),
                    )
                    .set(values)
                    .execute(conn)?;
                } else {
                    diesel::insert_into(signed_prekeys::table)
                        .values((signed_prekeys::device_id.eq(device_id), values))
                        .execute(conn)?;
                }
                Ok(())
            })
        })
        .await
}

/// Adds one-time prekeys to the caller's device `device_id`; returns how many it now has.
pub async fn upload_one_time_prekeys(
    state: &AppState,
    caller: i64,
    device_id: i64,
    raw_prekeys: &[String],
) -> Result<i64, ApiError> {
    let keys = decode_one_time_prekeys(raw_prekeys, false)?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                owned_device(conn, caller, device_id)?;
                let stored = count_one_time_prekeys_of(conn, device_id)?;
                let total = stored.saturating_add(i64::try_from(keys.len()).unwrap_or(i64::MAX));
                if total > MAX_ONE_TIME_PREKEYS_PER_DEVICE {
                    return Err(ApiError::new(
                        ErrorCode::TooManyPrekeys,
                        format!(
                            "a device holds at most {MAX_ONE_TIME_PREKEYS_PER_DEVICE} one-time \
                             prekeys ({stored} stored)"
                        ),
                    ));
                }
                let ids: Vec<i64> = keys.iter().map(|k| i64::from(k.id)).collect();
                let clash: Option<i64> = one_time_prekeys::table
                    .filter(one_time_prekeys::device_id.eq(device_id))
                    .filter(one_time_prekeys::key_id.eq_any(&ids))
                    .select(one_time_prekeys::key_id)
                    .order(one_time_prekeys::key_id.asc())
                    .first(conn)
                    .optional()?;
                if let Some(key_id) = clash {
                    return Err(duplicate_prekey(key_id));
                }
                insert_one_time_prekeys(conn, device_id, &keys, now)?;
                Ok(total)
            })
        })
        .await
}

/// How many unused one-time prekeys the caller's device `device_id` has on the relay.
pub async fn count_one_time_prekeys(
    state: &AppState,
    caller: i64,
    device_id: i64,
) -> Result<i64, ApiError> {
    state
        .db
        .run(move |conn| {
            owned_device(conn, caller, device_id)?;
            count_one_time_prekeys_of(conn, device_id)
        })
        .await
}

#[derive(QueryableByName)]
struct ClaimedPrekey {
    #[diesel(sql_type = Binary)]
    prekey: Vec<u8>,
}

/// Removes and returns the oldest one-time prekey of `device_id`, if any. Each one is handed
/// out at most once, whatever the concurrency.
fn claim_one_time_prekey(
    conn: &mut DbConnection,
    device_id: i64,
) -> Result<Option<Vec<u8>>, ApiError> {
    match conn {
        // One statement; concurrent claims skip the rows others have locked instead of
        // waiting for them and then finding them deleted (which would serve no prekey while
        // others remain).
        DbConnection::Pg(pg) => Ok(diesel::sql_query(
            "DELETE FROM one_time_prekeys WHERE id = (\
                 SELECT id FROM one_time_prekeys WHERE device_id = $1 \
                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED\
             ) RETURNING prekey",
        )
        .bind::<BigInt, _>(device_id)
        .get_result::<ClaimedPrekey>(pg)
        .optional()?
        .map(|row| row.prekey)),
        // BEGIN IMMEDIATE takes the write lock before the read: no other claim runs between
        // the select and the delete.
        other => write_transaction(other, |conn| {
            let oldest: Option<(i64, Vec<u8>)> = one_time_prekeys::table
                .filter(one_time_prekeys::device_id.eq(device_id))
                .order(one_time_prekeys::id.asc())
                .select((one_time_prekeys::id, one_time_prekeys::prekey))
                .first(conn)
                .optional()?;
            let Some((id, prekey)) = oldest else {
                return Ok(None);
            };
            diesel::delete(one_time_prekeys::table.filter(one_time_prekeys::id.eq(id)))
                .execute(conn)?;
            Ok::<_, ApiError>(Some(prekey))
        }),
    }
}

/// The prekey bundle of device `device_id` of `raw_ms_id`, claiming one of its one-time
/// prekeys. Only for users in contact with the owner (and the owner); `not_found` otherwise,
/// and for a device that is not theirs.
pub async fn claim_bundle(
    state: &AppState,
    caller: i64,
    raw_ms_id: &str,
    device_id: i64,
) -> Result<Bundle, ApiError> {
    let ms_id = validate::ms_id_lookup(raw_ms_id)?;
    state
        .db
        .run(move |conn| {
            let owner = directory_owner(conn, caller, &ms_id)?;
            let (identity, spk): (Vec<u8>, Vec<u8>) = devices::table
                .inner_join(signed_prekeys::table)
                .filter(devices::id.eq(device_id))
                .filter(devices::user_id.eq(owner))
                .select((devices::identity_key, signed_prekeys::prekey))
                .first(conn)
                .optional()?
                .ok_or_else(no_such_device)?;
            // Decode what was verified on upload before consuming anything.
            let identity = stored_identity(&identity)?;
            let spk = SignedPrekey::decode(&spk)
                .map_err(|e| ApiError::internal(format!("stored signed prekey: {e}")))?;
            let otpk = claim_one_time_prekey(conn, device_id)?
                .map(|bytes| OneTimePrekey::decode(&bytes))
                .transpose()
                .map_err(|e| ApiError::internal(format!("stored one-time prekey: {e}")))?;
            let bundle = PrekeyBundle::new(identity, spk, otpk)
                .map_err(|e| ApiError::internal(format!("stored bundle: {e}")))?;
            Ok::<_, ApiError>(Bundle { device_id, bundle })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_core::Account;

    fn encoded(keys: &[OneTimePrekey]) -> Vec<String> {
        keys.iter().map(|k| BASE64.encode(k.encode())).collect()
    }

    #[test]
    fn one_time_prekey_batches() {
        let mut acc = Account::new().unwrap();
        let keys = acc.generate_one_time_prekeys(100).unwrap();
        assert_eq!(
            decode_one_time_prekeys(&encoded(&keys), false).unwrap(),
            keys
        );
        let mut too_many = encoded(&keys);
        too_many.push(too_many[0].clone());
        assert_eq!(
            decode_one_time_prekeys(&too_many, false).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
        assert_eq!(
            decode_one_time_prekeys(&[], false).unwrap_err().code,
            ErrorCode::InvalidInput
        );
        assert!(decode_one_time_prekeys(&[], true).unwrap().is_empty());
        let dup = encoded(&[keys[7], keys[3], keys[7]]);
        let err = decode_one_time_prekeys(&dup, false).unwrap_err();
        assert_eq!(err.code, ErrorCode::DuplicatePrekey);
        assert!(err.message.contains(&keys[7].id.to_string()), "{err}");
        let bad = vec![encoded(&keys[..1])[0].clone(), "AAAA".to_owned()];
        let err = decode_one_time_prekeys(&bad, false).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidKey);
        assert!(err.message.starts_with("one_time_prekeys[1]"), "{err}");
    }

    #[test]
    fn signatures_are_checked_strictly() {
        let mut acc = Account::new().unwrap();
        let spk = acc.generate_signed_prekey(1).unwrap();
        let identity = BASE64.encode(acc.identity().encode());
        let decoded = decode_identity(&identity).unwrap();
        assert_eq!(&decoded, acc.identity());
        let spk_b64 = BASE64.encode(spk.encode());
        assert_eq!(decode_signed_prekey(&spk_b64, &decoded).unwrap(), spk);

        // Every single-bit flip of the signatures is refused as a bad signature.
        let identity_bytes = acc.identity().encode();
        for bit in 0..8 * 64 {
            let mut forged = identity_bytes.clone();
            forged[65 + bit / 8] ^= 1 << (bit % 8);
            let err = decode_identity(&BASE64.encode(&forged)).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadSignature, "identity bit {bit}");
        }
        let spk_bytes = spk.encode();
        for bit in 0..8 * 64 {
            let mut forged = spk_bytes.clone();
            forged[45 + bit / 8] ^= 1 << (bit % 8);
            let err = decode_signed_prekey(&BASE64.encode(&forged), &decoded).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadSignature, "signed prekey bit {bit}");
        }
        let other = Account::new().unwrap();
        let err = decode_signed_prekey(&spk_b64, other.identity()).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadSignature);
        assert_eq!(
            decode_identity("AQ==").unwrap_err().code,
            ErrorCode::InvalidKey
        );
        // Standard base64 with its padding, nothing else.
        assert!(spk_b64.ends_with('='));
        assert_eq!(
            decode_signed_prekey(&spk_b64.replace('=', ""), &decoded)
                .unwrap_err()
                .code,
            ErrorCode::InvalidKey
        );
        let url_safe = identity.replace('+', "-").replace('/', "_");
        if url_safe != identity {
            assert_eq!(
                decode_identity(&url_safe).unwrap_err().code,
                ErrorCode::InvalidKey
            );
        }
    }
}
