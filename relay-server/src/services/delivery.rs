//! The envelope queue: store, fetch in arrival order, delete on acknowledgement, expire.
//!
//! Rules (see `docs/api.md`):
//! - A device may send to the devices of the users in contact with its user (friends, or
//!   joined members of a common room, and no block either way: [`in_contact`]) and to its own
//!   user's other devices; anything else is `not_friends` (or `unknown_device` when the device
//!   id does not exist). The check runs inside the transaction that stores the envelope.
//! - `(sender device, client id, recipient device)` is stored once: a repeated send while the
//!   envelope is still queued answers with the existing envelope (idempotent retries).
//! - An envelope stays until its recipient device acknowledges it, or until it expires
//!   ([`ENVELOPE_TTL`]); expired envelopes are never delivered and are pruned.
//! - A recipient device holds at most [`QUEUE_CAP`] unexpired envelopes (`queue_full`).
//! - A room send ([`store_room`]) needs a joined sender and stores one copy per device of every
//!   joined member but the sending device, all or none, under the same rules per copy —
//!   except the devices of a member who blocked the sender or whom the sender blocked, who get
//!   no copy (the others still get theirs).

use crate::api::error::ApiError;
use crate::db::schema::{devices, envelopes, friendships, sessions};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::services::contacts::{blocked_with, in_contact};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Largest ciphertext accepted, in bytes (decoded).
pub const MAX_CIPHERTEXT: usize = 64 * 1024;
/// Longest client-chosen message id, in characters.
pub const MAX_CLIENT_ID: usize = 64;
/// Most unexpired envelopes queued for one device.
pub const QUEUE_CAP: i64 = 10_000;
/// Lifetime of a queued envelope: 30 days.
pub const ENVELOPE_TTL: i64 = 30 * 86_400;
/// Envelopes per backlog batch.
pub const BATCH: i64 = 100;
/// Most envelope ids in one `ack`.
pub const MAX_ACK_IDS: usize = 1000;

/// Why a send was refused.
#[derive(Debug, Clone)]
pub enum DeliveryError {
    /// No such recipient device.
    UnknownDevice,
    /// The recipient device belongs to someone not in contact with the sender.
    NotFriends,
    /// The recipient's queue is full.
    QueueFull,
    /// The sender is not a joined member of the room.
    NotAMember,
    /// Storage failed.
    Api(ApiError),
}

impl From<DbError> for DeliveryError {
    fn from(e: DbError) -> Self {
        Self::Api(e.into())
    }
}

impl From<DieselError> for DeliveryError {
    fn from(e: DieselError) -> Self {
        Self::Api(e.into())
    }
}

impl From<ApiError> for DeliveryError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

/// A queued envelope, as delivered (`Envelope::as_select()` selects its columns).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = envelopes)]
pub struct Envelope {
    /// Envelope id (arrival order).
    #[diesel(column_name = id)]
    pub eid: i64,
    /// Sending user.
    #[diesel(column_name = sender_user_id)]
    pub from_user: i64,
    /// Sending device.
    #[diesel(column_name = sender_device_id)]
    pub from_device: i64,
    /// The sender's message id.
    pub client_id: String,
    /// Message kind (opaque to the relay).
    pub kind: i32,
    /// Ciphertext.
    pub ciphertext: Vec<u8>,
    /// Stored at, Unix seconds.
    #[diesel(column_name = created_at)]
    pub sent_at: i64,
    /// The room it was sent to (`None` for a direct envelope).
    #[diesel(column_name = room_id)]
    pub room: Option<i64>,
}

/// A new envelope to store.
#[derive(Debug, Clone)]
pub struct NewEnvelope {
    /// Sending user.
    pub from_user: i64,
    /// Sending device.
    pub from_device: i64,
    /// Recipient device.
    pub to_device: i64,
    /// The sender's message id.
    pub client_id: String,
    /// Message kind.
    pub kind: i32,
    /// Ciphertext.
    pub ciphertext: Vec<u8>,
}

impl NewEnvelope {
    /// The envelope as queued under `eid` at `now`.
    pub(crate) fn queued_as(&self, eid: i64, now: i64) -> Envelope {
        Envelope {
            eid,
            from_user: self.from_user,
            from_device: self.from_device,
            client_id: self.client_id.clone(),
            kind: self.kind,
            ciphertext: self.ciphertext.clone(),
            sent_at: now,
            room: None,
        }
    }
}

/// What [`store`] did.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The envelope (new or the one already queued).
    pub envelope: Envelope,
    /// The recipient device's user.
    pub to_user: i64,
    /// Whether this send created it (false: a repeat of a queued envelope).
    pub fresh: bool,
}

/// The owner of a device, if it exists.
pub fn device_owner(conn: &mut DbConnection, device_id: i64) -> Result<Option<i64>, ApiError> {
    Ok(devices::table
        .filter(devices::id.eq(device_id))
        .select(devices::user_id)
        .first(conn)
        .optional()?)
}

/// Whether the session is still live (not revoked, not expired), and the device still exists
/// and is the user's.
pub fn still_authorized(
    conn: &mut DbConnection,
    session_id: i64,
    user_id: i64,
    device_id: i64,
    now: i64,
) -> Result<bool, ApiError> {
    let session = diesel::select(diesel::dsl::exists(
        sessions::table
            .filter(sessions::id.eq(session_id))
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::expires_at.gt(now)),
    ))
    .get_result::<bool>(conn)?;
    Ok(session && device_owner(conn, device_id)? == Some(user_id))
}

/// Records that a device connected.
pub fn touch_device(conn: &mut DbConnection, device_id: i64, now: i64) -> Result<(), ApiError> {
    diesel::update(devices::table.filter(devices::id.eq(device_id)))
        .set(devices::last_seen_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

/// The ids of `user_id`'s friends.
pub fn friend_ids(conn: &mut DbConnection, user_id: i64) -> Result<Vec<i64>, ApiError> {
    let rows: Vec<(i64, i64)> = friendships::table
        .filter(
            friendships::user_low
                .eq(user_id)
                .or(friendships::user_high.eq(user_id)),
        )
        .select((friendships::user_low, friendships::user_high))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(low, high)| if low == user_id { high } else { low })
        .collect())
}

/// The envelope `from_device` sent as `client_id` to `to_device`, if still queued.
pub(crate) fn find_queued(
    conn: &mut DbConnection,
    from_device: i64,
    client_id: &str,
    to_device: i64,
) -> Result<Option<Envelope>, DieselError> {
    envelopes::table
        .filter(envelopes::sender_device_id.eq(from_device))
        .filter(envelopes::client_id.eq(client_id))
        .filter(envelopes::recipient_device_id.eq(to_device))
        .select(Envelope::as_select())
        .first(conn)
        .optional()
}

/// The owner of `to_device` if `from_user` may send to it: a device of someone in contact with
/// the sender ([`in_contact`]) or one of the sender's own (`unknown_device`, `not_friends`
/// otherwise).
pub(crate) fn reach(
    conn: &mut DbConnection,
    from_user: i64,
    to_device: i64,
) -> Result<i64, DeliveryError> {
    let Some(to_user) = device_owner(conn, to_device)? else {
        return Err(DeliveryError::UnknownDevice);
    };
    if to_user != from_user && !in_contact(conn, from_user, to_user)? {
        return Err(DeliveryError::NotFriends);
    }
    Ok(to_user)
}

/// The queued envelopes among `keys` (`(sender device, client id, recipient device)`), in one
/// query, by key.
pub(crate) fn find_queued_many(
    conn: &mut DbConnection,
    keys: &[(i64, &str, i64)],
) -> Result<HashMap<(i64, String, i64), Envelope>, DieselError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted: HashSet<(i64, &str, i64)> = keys.iter().copied().collect();
    let senders: BTreeSet<i64> = keys.iter().map(|k| k.0).collect();
    let ids: BTreeSet<&str> = keys.iter().map(|k| k.1).collect();
    let recipients: BTreeSet<i64> = keys.iter().map(|k| k.2).collect();
    let rows: Vec<(Envelope, i64)> = envelopes::table
        .filter(envelopes::sender_device_id.eq_any(senders.into_iter().collect::<Vec<_>>()))
        .filter(envelopes::client_id.eq_any(ids.into_iter().collect::<Vec<_>>()))
        .filter(envelopes::recipient_device_id.eq_any(recipients.into_iter().collect::<Vec<_>>()))
        .select((Envelope::as_select(), envelopes::recipient_device_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(e, to)| wanted.contains(&(e.from_device, e.client_id.as_str(), *to)))
        .map(|(e, to)| ((e.from_device, e.client_id.clone(), to), e))
        .collect())
}

/// Inserts `news` in one statement (ids assigned in order); returns their envelope ids in
/// the order of `news`. The caller has checked them and removed repeats.
pub(crate) fn insert_many(
    conn: &mut DbConnection,
    news: &[&NewEnvelope],
    now: i64,
) -> Result<Vec<i64>, DieselError> {
    if news.is_empty() {
        return Ok(Vec::new());
    }
    let expires = now.saturating_add(ENVELOPE_TTL);
    let rows: Vec<_> = news
        .iter()
        .map(|new| {
            (
                envelopes::recipient_device_id.eq(new.to_device),
                envelopes::sender_user_id.eq(new.from_user),
                envelopes::sender_device_id.eq(new.from_device),
                envelopes::client_id.eq(&new.client_id),
                envelopes::kind.eq(new.kind),
                envelopes::ciphertext.eq(&new.ciphertext),
                envelopes::created_at.eq(now),
                envelopes::expires_at.eq(expires),
            )
        })
        .collect();
    let columns = (
        envelopes::id,
        envelopes::sender_device_id,
        envelopes::client_id,
        envelopes::recipient_device_id,
    );
    // One multi-row statement on PostgreSQL (one round trip); SQLite runs in-process, where
    // one prepared single-row insert per envelope costs no round trip (diesel's multi-row
    // insert with RETURNING is not available through the MultiConnection either way).
    // RETURNING gives no order guarantee (SQLite says so): the ids are mapped back by key.
    let inserted: Vec<(i64, i64, String, i64)> = match conn {
        DbConnection::Pg(pg) => diesel::insert_into(envelopes::table)
            .values(rows)
            .returning(columns)
            .get_results(pg)?,
        DbConnection::Sqlite(sqlite) => {
            let mut inserted = Vec::with_capacity(rows.len());
            for row in rows {
                inserted.push(
                    diesel::insert_into(envelopes::table)
                        .values(row)
                        .returning(columns)
                        .get_result(sqlite)?,
                );
            }
            inserted
        }
    };
    let by_key: HashMap<(i64, &str, i64), i64> = inserted
        .iter()
        .map(|(id, from, cid, to)| ((*from, cid.as_str(), *to), *id))
        .collect();
    news.iter()
        .map(|new| {
            by_key
                .get(&(new.from_device, new.client_id.as_str(), new.to_device))
                .copied()
                .ok_or(DieselError::NotFound)
        })
        .collect()
}

/// How many unexpired envelopes are queued for `device`.
pub(crate) fn queued_count(
    conn: &mut DbConnection,
    device: i64,
    now: i64,
) -> Result<i64, DieselError> {
    envelopes::table
        .filter(envelopes::recipient_device_id.eq(device))
        .filter(envelopes::expires_at.gt(now))
        .count()
        .get_result(conn)
}

/// Stores an envelope after checking the sender may reach the recipient device. Returns
/// after the commit.
pub fn store(
    conn: &mut DbConnection,
    new: &NewEnvelope,
    now: i64,
) -> Result<Stored, DeliveryError> {
    // `Ok(None)`: an identical send committed between our check and our insert.
    let result = write_transaction(conn, |conn| {
        let to_user = reach(conn, new.from_user, new.to_device)?;
        if let Some(envelope) = find_queued(conn, new.from_device, &new.client_id, new.to_device)? {
            return Ok(Some(Stored {
                envelope,
                to_user,
                fresh: false,
            }));
        }
        if queued_count(conn, new.to_device, now)? >= QUEUE_CAP {
            return Err(DeliveryError::QueueFull);
        }
        let inserted = insert_many(conn, &[new], now);
        let eid = match inserted.map(|eids| eids.first().copied()) {
            Ok(Some(eid)) => eid,
            Ok(None) => return Err(ApiError::internal("insert returned no id").into()),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Some(Stored {
            envelope: new.queued_as(eid, now),
            to_user,
            fresh: true,
        }))
    })?;
    if let Some(stored) = result {
        return Ok(stored);
    }
    // The racing send won (PostgreSQL, read committed): answer with its envelope.
    let envelope = find_queued(conn, new.from_device, &new.client_id, new.to_device)?
        .ok_or_else(|| DeliveryError::Api(ApiError::internal("raced envelope vanished")))?;
    let to_user = device_owner(conn, new.to_device)?.ok_or(DeliveryError::UnknownDevice)?;
    Ok(Stored {
        envelope,
        to_user,
        fresh: false,
    })
}

/// A room envelope to fan out.
#[derive(Debug, Clone)]
pub struct NewRoomEnvelope {
    /// Sending user.
    pub from_user: i64,
    /// Sending device.
    pub from_device: i64,
    /// The room.
    pub room: i64,
    /// The sender's message id.
    pub client_id: String,
    /// Message kind.
    pub kind: i32,
    /// Ciphertext (the same for every recipient device: a sender-key group message).
    pub ciphertext: Vec<u8>,
}

/// One envelope per device of every joined member of the room except the sending device and
/// the devices of members blocked either way with the sender, stored in one transaction: all
/// of them or (on `queue_full` or an error) none. A repeated send answers with the envelopes
/// already queued (`fresh: false`) and stores only the copies for devices that have none (say,
/// a device added since). Returns `(recipient device, stored)` pairs after the commit.
pub fn store_room(
    conn: &mut DbConnection,
    new: &NewRoomEnvelope,
    now: i64,
) -> Result<Vec<(i64, Stored)>, DeliveryError> {
    write_transaction(conn, |conn| {
        if let DbConnection::Pg(pg) = conn {
            // Serializes this device's room sends, so a retry racing the original waits for it
            // instead of failing on the unique key.
            // Negative keys: the friend-pair locks use non-negative ones.
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(-1 - new.from_device)
                .execute(pg)?;
        }
        if !crate::services::rooms::is_joined(conn, new.room, new.from_user)? {
            return Err(DeliveryError::NotAMember);
        }
        let targets = crate::services::rooms::joined_devices(conn, new.room)?;
        // Read in the same transaction as the targets: a block either way keeps the two
        // users' room envelopes apart.
        let blocked = blocked_with(conn, new.from_user)?;
        let mut stored = Vec::with_capacity(targets.len());
        for (to_device, to_user) in targets {
            if to_device == new.from_device || blocked.contains(&to_user) {
                continue;
            }
            if let Some(envelope) = find_queued(conn, new.from_device, &new.client_id, to_device)? {
                stored.push((
                    to_device,
                    Stored {
                        envelope,
                        to_user,
                        fresh: false,
                    },
                ));
                continue;
            }
            if queued_count(conn, to_device, now)? >= QUEUE_CAP {
                return Err(DeliveryError::QueueFull);
            }
            let eid = diesel::insert_into(envelopes::table)
                .values((
                    envelopes::recipient_device_id.eq(to_device),
                    envelopes::sender_user_id.eq(new.from_user),
                    envelopes::sender_device_id.eq(new.from_device),
                    envelopes::client_id.eq(&new.client_id),
                    envelopes::kind.eq(new.kind),
                    envelopes::ciphertext.eq(&new.ciphertext),
                    envelopes::created_at.eq(now),
                    envelopes::expires_at.eq(now.saturating_add(ENVELOPE_TTL)),
                    envelopes::room_id.eq(Some(new.room)),
                ))
                .returning(envelopes::id)
                .get_result::<i64>(conn)?;
            stored.push((
                to_device,
                Stored {
                    envelope: Envelope {
                        eid,
                        from_user: new.from_user,
                        from_device: new.from_device,
                        client_id: new.client_id.clone(),
                        kind: new.kind,
                        ciphertext: new.ciphertext.clone(),
                        sent_at: now,
                        room: Some(new.room),
                    },
                    to_user,
                    fresh: true,
                },
            ));
        }
        Ok(stored)
    })
}

/// Up to `limit` unexpired envelopes for `device_id` with an id above `after`, in arrival
/// order.
pub fn backlog(
    conn: &mut DbConnection,
    device_id: i64,
    after: i64,
    now: i64,
    limit: i64,
) -> Result<Vec<Envelope>, ApiError> {
    Ok(envelopes::table
        .filter(envelopes::recipient_device_id.eq(device_id))
        .filter(envelopes::id.gt(after))
        .filter(envelopes::expires_at.gt(now))
        .order(envelopes::id.asc())
        .limit(limit)
        .select(Envelope::as_select())
        .load(conn)?)
}

/// Deletes the acknowledged envelopes among `ids` that are queued for `device_id` (others are
/// ignored); returns `(sender device, client id)` of each deleted one, for delivery receipts.
pub fn ack(
    conn: &mut DbConnection,
    device_id: i64,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    write_transaction(conn, |conn| ack_rows(conn, device_id, ids))
}

/// [`ack`] inside the caller's transaction.
pub(crate) fn ack_rows(
    conn: &mut DbConnection,
    device_id: i64,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, i64, String)> = envelopes::table
        .filter(envelopes::recipient_device_id.eq(device_id))
        .filter(envelopes::id.eq_any(ids))
        .select((
            envelopes::id,
            envelopes::sender_device_id,
            envelopes::client_id,
        ))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<i64> = rows.iter().map(|r| r.0).collect();
    diesel::delete(
        envelopes::table
            .filter(envelopes::recipient_device_id.eq(device_id))
            .filter(envelopes::id.eq_any(&found)),
    )
    .execute(conn)?;
    Ok(rows.into_iter().map(|(_, dev, cid)| (dev, cid)).collect())
}

/// Deletes expired envelopes (of one device, or of all when `device_id` is `None`); returns
/// how many.
pub fn prune_expired(
    conn: &mut DbConnection,
    device_id: Option<i64>,
    now: i64,
) -> Result<usize, ApiError> {
    let deleted = match device_id {
        Some(device) => diesel::delete(
            envelopes::table
                .filter(envelopes::recipient_device_id.eq(device))
                .filter(envelopes::expires_at.le(now)),
        )
        .execute(conn)?,
        None => {
            diesel::delete(envelopes::table.filter(envelopes::expires_at.le(now))).execute(conn)?
        }
    };
    Ok(deleted)
}
