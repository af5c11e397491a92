//! Accounts and sessions: registration, password login, session listing and revocation,
//! profile reads, password and e-mail changes, account deletion.
//!
//! With a second factor on, a correct password yields a login challenge
//! ([`LoginOutcome::SecondFactorRequired`], completed through [`crate::services::twofa`]),
//! and sensitive changes need the password and a current code
//! ([`require_second_factor_if_enabled`]).

use crate::api::error::{ApiError, ErrorCode};
use crate::db::schema::{login_challenges, ms_id_holds, sessions, users};
use crate::services::hub::Revoked;
use crate::services::notify;
use crate::services::ratelimit::Action;
use crate::services::twofa::{self, Challenge, SecondFactor};
use crate::services::{passwords, tokens, validate};
use crate::state::AppState;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use std::net::IpAddr;
use zeroize::Zeroizing;

/// Longest stored `User-Agent`, in bytes.
const MAX_USER_AGENT: usize = 256;

/// A registration request (raw, before validation).
pub struct Registration {
    /// E-mail address.
    pub email: String,
    /// Password.
    pub password: Zeroizing<String>,
    /// Requested ms_id.
    pub ms_id: String,
    /// Display name.
    pub display_name: String,
}

/// An account as the owner sees it.
#[derive(Debug, Clone)]
pub struct Account {
    /// Internal id.
    pub user_id: i64,
    /// Normalized e-mail address.
    pub email: String,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// Public handle.
    pub ms_id: String,
    /// Display name.
    pub display_name: String,
    /// TOTP second factor on.
    pub totp_enabled: bool,
    /// E-mail second factor on.
    pub email_2fa_enabled: bool,
    /// Unused recovery codes (filled by [`me`] and [`change_email`]; 0 elsewhere).
    pub recovery_codes_remaining: i64,
}

/// A session just created: the token is shown to the client once.
pub struct NewSession {
    /// The session token (only its SHA-256 is stored).
    pub token: Zeroizing<String>,
    /// Its CSRF token (for cookie-authenticated writes).
    pub csrf_token: String,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Owner.
    pub user_id: i64,
}

/// What a correct password leads to.
pub enum LoginOutcome {
    /// Signed in.
    Session(NewSession),
    /// The account has a second factor: the caller must complete this challenge.
    SecondFactorRequired(Challenge),
}

/// One of the caller's sessions.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Session id.
    pub id: i64,
    /// Created, Unix seconds.
    pub created_at: i64,
    /// Last authenticated request, Unix seconds.
    pub last_used_at: i64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// `User-Agent` at login.
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

type UserRow = (i64, String, bool, String, String, String, bool, bool);

fn user_columns() -> (
    users::id,
    users::email,
    users::email_verified,
    users::password_hash,
    users::ms_id,
    users::display_name,
    users::totp_enabled,
    users::email_2fa_enabled,
) {
    (
        users::id,
        users::email,
        users::email_verified,
        users::password_hash,
        users::ms_id,
        users::display_name,
        users::totp_enabled,
        users::email_2fa_enabled,
    )
}

fn account_of(row: UserRow) -> (Account, String) {
    let (user_id, email, email_verified, hash, ms_id, display_name, totp, email_2fa) = row;
    (
        Account {
            user_id,
            email,
            email_verified,
            ms_id,
            display_name,
            totp_enabled: totp,
            email_2fa_enabled: email_2fa,
            recovery_codes_remaining: 0,
        },
        hash,
    )
}

fn invalid_credentials() -> ApiError {
    ApiError::new(ErrorCode::InvalidCredentials, "wrong e-mail or password")
}

fn email_taken() -> ApiError {
    ApiError::new(
        ErrorCode::EmailTaken,
        "this e-mail address is already registered",
    )
}

/// Takes a user id from the sequence without making an account (a row inserted and deleted in
/// one transaction): the ids are never reused (SQLite AUTOINCREMENT, a PostgreSQL identity),
/// so no account will ever have it.
fn unused_user_id(
    conn: &mut crate::db::DbConnection,
    password_hash: &str,
    now: i64,
) -> Result<i64, ApiError> {
    let filler = format!(
        "unused.{}",
        tokens::new_token().map_err(ApiError::internal)?.as_str()
    );
    let id = diesel::insert_into(users::table)
        .values((
            users::email.eq(&filler),
            users::email_verified.eq(false),
            users::password_hash.eq(password_hash),
            users::ms_id.eq(&filler),
            users::display_name.eq(""),
            users::totp_enabled.eq(false),
            users::email_2fa_enabled.eq(false),
            users::created_at.eq(now),
        ))
        .returning(users::id)
        .get_result::<i64>(conn)?;
    diesel::delete(users::table.filter(users::id.eq(id))).execute(conn)?;
    Ok(id)
}

/// Tells the owner of `address` that someone tried to register it again (in the background:
/// how long mail takes must not tell the caller anything).
fn tell_address_owner(state: &AppState, address: String) {
    let state = state.clone();
    tokio::spawn(async move {
        let body = format!(
            "Someone tried to create an {issuer} account with this e-mail address, which \
             already has an account. Nothing was changed.\n\n\
             If it was you: sign in with your password instead. If not, nothing needs to \
             be done.\n",
            issuer = state.config.issuer,
        );
        if let Err(e) = state
            .mailer
            .send(
                &address,
                "Your address already has a SecureChat account",
                body,
            )
            .await
        {
            tracing::warn!(error = %e, "telling an address's owner of a sign-up failed");
        }
    });
}

fn ms_id_unavailable() -> ApiError {
    ApiError::new(ErrorCode::MsIdUnavailable, "this ms_id is not available")
}

/// Maps a unique-constraint violation on `users` to `email_taken` / `ms_id_unavailable` (a
/// concurrent registration won the race between our check and our insert).
fn user_conflict(e: DieselError) -> ApiError {
    if let DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = &e {
        let text = format!(
            "{} {}",
            info.message(),
            info.constraint_name().unwrap_or_default()
        );
        return if text.contains("email") {
            email_taken()
        } else {
            ms_id_unavailable()
        };
    }
    ApiError::from(e)
}

diesel::define_sql_function! {
    /// SQL `replace(text, from, to)` (the same on SQLite and PostgreSQL).
    fn replace(text: diesel::sql_types::Text, from: diesel::sql_types::Text, to: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Whether `ms_id` is free for `caller` (`None` for a new account): no other account has it,
/// or one differing only in its separators ([`validate::ms_id_key`]), and no live hold of any
/// such form reserves it for someone else. Call inside the transaction that takes the ms_id:
/// on PostgreSQL it first takes a transaction lock on the folded form, so two concurrent
/// claims of look-alikes cannot both pass (SQLite's write transactions are serial already).
pub fn ms_id_free(
    conn: &mut crate::db::DbConnection,
    ms_id: &str,
    caller: Option<i64>,
    now: i64,
) -> Result<bool, ApiError> {
    let key = validate::ms_id_key(ms_id);
    if let crate::db::DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind::<diesel::sql_types::Text, _>(format!("ms_id:{key}"))
            .execute(pg)?;
    }
    let folded = replace(replace(users::ms_id, "_", "."), "-", ".");
    let others: i64 = users::table
        .filter(folded.eq(&key))
        .filter(users::id.ne(caller.unwrap_or(0)))
        .count()
        .get_result(conn)?;
    if others > 0 {
        return Ok(false);
    }
    let held_folded = replace(replace(ms_id_holds::ms_id, "_", "."), "-", ".");
    let held_for_others: i64 = ms_id_holds::table
        .filter(held_folded.eq(&key))
        .filter(ms_id_holds::held_until.gt(now))
        .filter(ms_id_holds::previous_owner.ne(caller.unwrap_or(0)))
        .count()
        .get_result(conn)?;
    Ok(held_for_others == 0)
}

/// Creates an account. An address that already has an account is not revealed (issue #12
/// item 8): the answer is the same, with a user id no account will ever have, nothing is
/// created, and the address's owner is told by mail. A taken ms_id (public anyway) is
/// refused before the address is looked at.
pub async fn register(state: &AppState, input: Registration) -> Result<Account, ApiError> {
    let email = validate::email(&input.email)?;
    let ms_id = validate::ms_id(&input.ms_id)?;
    let display_name = validate::display_name(&input.display_name)?;
    passwords::check_new_password(&input.password, &[&email, &ms_id, &display_name])?;
    let hash = state.passwords.hash(input.password).await?;
    let now = state.clock.now();
    let account = Account {
        user_id: 0,
        email: email.clone(),
        email_verified: false,
        ms_id: ms_id.clone(),
        display_name: display_name.clone(),
        totp_enabled: false,
        email_2fa_enabled: false,
        recovery_codes_remaining: 0,
    };
    let decoy_hash = hash.clone();
    let created = state
        .db
        .run(move |conn| {
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                if !ms_id_free(conn, &ms_id, None, now)? {
                    return Err(ms_id_unavailable());
                }
                let taken: Option<i64> = users::table
                    .filter(users::email.eq(&email))
                    .select(users::id)
                    .first(conn)
                    .optional()?;
                if taken.is_some() {
                    return Ok((unused_user_id(conn, &hash, now)?, false));
                }
                diesel::insert_into(users::table)
                    .values((
                        users::email.eq(&email),
                        users::email_verified.eq(false),
                        users::password_hash.eq(&hash),
                        users::ms_id.eq(&ms_id),
                        users::display_name.eq(&display_name),
                        users::totp_enabled.eq(false),
                        users::email_2fa_enabled.eq(false),
                        users::created_at.eq(now),
                    ))
                    .returning(users::id)
                    .get_result::<i64>(conn)
                    .map(|id| (id, true))
                    .map_err(user_conflict)
            })
        })
        .await;
    let (user_id, created) = match created {
        // A concurrent registration of the address won the race: answered alike.
        Err(e) if e.code == ErrorCode::EmailTaken => {
            let id = state
                .db
                .run(move |conn| {
                    crate::db::write_transaction(conn, |conn| {
                        unused_user_id(conn, &decoy_hash, now)
                    })
                })
                .await?;
            (id, false)
        }
        other => other?,
    };
    if !created {
        tell_address_owner(state, account.email.clone());
    }
    Ok(Account { user_id, ..account })
}

/// Creates a session for `user_id` with a fresh random token.
pub async fn create_session(
    state: &AppState,
    user_id: i64,
    user_agent: Option<String>,
) -> Result<NewSession, ApiError> {
    let token = tokens::new_token().map_err(ApiError::internal)?;
    let hash = tokens::hash_token(&token);
    let now = state.clock.now();
    let ttl =
        i64::try_from(state.config.session_ttl_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
    let expires_at = now.saturating_add(ttl);
    let user_agent = user_agent.map(|ua| truncate(&ua, MAX_USER_AGENT));
    state
        .db
        .run(move |conn| {
            diesel::insert_into(sessions::table)
                .values((
                    sessions::user_id.eq(user_id),
                    sessions::token_hash.eq(&hash),
                    sessions::created_at.eq(now),
                    sessions::expires_at.eq(expires_at),
                    sessions::last_used_at.eq(now),
                    sessions::user_agent.eq(user_agent),
                ))
                .execute(conn)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    let csrf_token = tokens::csrf_token(&token);
    Ok(NewSession {
        token,
        csrf_token,
        expires_at,
        user_id,
    })
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_owned()
}

async fn find_by_email(
    state: &AppState,
    email: String,
) -> Result<Option<(Account, String)>, ApiError> {
    state
        .db
        .run(move |conn| {
            let row: Option<UserRow> = users::table
                .filter(users::email.eq(&email))
                .select(user_columns())
                .first(conn)
                .optional()?;
            Ok::<_, ApiError>(row.map(account_of))
        })
        .await
}

async fn find_by_id(state: &AppState, user_id: i64) -> Result<(Account, String), ApiError> {
    state
        .db
        .run(move |conn| {
            let row: Option<UserRow> = users::table
                .filter(users::id.eq(user_id))
                .select(user_columns())
                .first(conn)
                .optional()?;
            Ok::<_, ApiError>(row.map(account_of))
        })
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "invalid or expired session"))
}

/// The account key used by the per-account login limit.
#[must_use]
pub fn login_key(raw_email: &str) -> String {
    validate::email(raw_email).unwrap_or_else(|_| raw_email.trim().to_ascii_lowercase())
}

/// Checks e-mail and password. Unknown address and wrong password give the same error after
/// the same amount of work (an argon2 verification either way).
pub async fn login(
    state: &AppState,
    raw_email: &str,
    password: Zeroizing<String>,
    user_agent: Option<String>,
) -> Result<LoginOutcome, ApiError> {
    let found = match validate::email(raw_email) {
        Ok(email) => find_by_email(state, email).await?,
        Err(_) => None,
    };
    let (account, hash) = match found {
        Some((account, hash)) => (Some(account), Some(hash)),
        None => (None, None),
    };
    let ok = state.passwords.verify(password, hash).await?;
    let Some(account) = account.filter(|_| ok) else {
        return Err(invalid_credentials());
    };
    if account.totp_enabled || account.email_2fa_enabled {
        let challenge = twofa::start_challenge(state, account.user_id).await?;
        return Ok(LoginOutcome::SecondFactorRequired(challenge));
    }
    let session = create_session(state, account.user_id, user_agent).await?;
    Ok(LoginOutcome::Session(session))
}

/// For sensitive account changes (password, e-mail, deletion, 2FA settings): when a second
/// factor is on, demands a current code (TOTP, a `reauth` e-mail code, or a recovery code) and
/// checks it (`two_factor_required` when missing; `invalid_code`, `code_replayed`,
/// `code_expired`, `too_many_attempts` when wrong). Without 2FA it passes.
pub async fn require_second_factor_if_enabled(
    state: &AppState,
    account: &Account,
    factor: SecondFactor,
) -> Result<(), ApiError> {
    if account.totp_enabled || account.email_2fa_enabled {
        twofa::require_second_factor(state, account.user_id, factor).await?;
    }
    Ok(())
}

/// The caller's account, with its count of unused recovery codes.
pub async fn me(state: &AppState, user_id: i64) -> Result<Account, ApiError> {
    let account = find_by_id(state, user_id).await?.0;
    let remaining = twofa::recovery_codes_remaining(state, user_id).await?;
    Ok(Account {
        recovery_codes_remaining: remaining,
        ..account
    })
}

/// Loads the account and checks its current password (`invalid_credentials`). Every check
/// takes a token from the [`Action::PasswordCheck`] buckets of the account and of `ip` first
/// (`429 rate_limited`), right password or wrong.
async fn check_password(
    state: &AppState,
    user_id: i64,
    ip: IpAddr,
    password: Zeroizing<String>,
) -> Result<Account, ApiError> {
    state.limits.check_ip(Action::PasswordCheck, ip)?;
    state
        .limits
        .check_account(Action::PasswordCheck, &user_id.to_string())?;
    let (account, hash) = find_by_id(state, user_id).await?;
    if !state.passwords.verify(password, Some(hash)).await? {
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "wrong password",
        ));
    }
    Ok(account)
}

/// Loads the account and checks its current password and, when 2FA is on, a current code.
pub async fn reauthenticate(
    state: &AppState,
    user_id: i64,
    ip: IpAddr,
    password: Zeroizing<String>,
    factor: SecondFactor,
) -> Result<Account, ApiError> {
    let account = check_password(state, user_id, ip, password).await?;
    require_second_factor_if_enabled(state, &account, factor).await?;
    Ok(account)
}

/// The caller's live sessions, newest first.
pub async fn list_sessions(
    state: &AppState,
    user_id: i64,
    current_session: i64,
) -> Result<Vec<SessionInfo>, ApiError> {
    let now = state.clock.now();
    let rows = state
        .db
        .run(move |conn| {
            let rows: Vec<(i64, i64, i64, i64, Option<String>)> = sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::expires_at.gt(now))
                .order(sessions::id.desc())
                .select((
                    sessions::id,
                    sessions::created_at,
                    sessions::last_used_at,
                    sessions::expires_at,
                    sessions::user_agent,
                ))
                .load(conn)?;
            Ok::<_, ApiError>(rows)
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, created_at, last_used_at, expires_at, user_agent)| SessionInfo {
                id,
                created_at,
                last_used_at,
                expires_at,
                user_agent,
                current: id == current_session,
            },
        )
        .collect())
}

/// Revokes one of the caller's sessions (`not_found` for anyone else's or an unknown id);
/// its WebSocket connections close at once, on every relay.
pub async fn revoke_session(
    state: &AppState,
    user_id: i64,
    session_id: i64,
) -> Result<(), ApiError> {
    let instance = state.instance;
    let what = Revoked::Session(session_id);
    let deleted = state
        .db
        .run(move |conn| {
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                let n = diesel::delete(
                    sessions::table
                        .filter(sessions::id.eq(session_id))
                        .filter(sessions::user_id.eq(user_id)),
                )
                .execute(conn)?;
                if n > 0 {
                    notify::announce_revoked(conn, instance, what)?;
                }
                Ok(n)
            })
        })
        .await?;
    if deleted == 0 {
        return Err(ApiError::new(ErrorCode::NotFound, "no such session"));
    }
    state.hub.revoke(what);
    Ok(())
}

/// Deletes the account after checking its password; sessions, friendships, requests, blocks
/// and attachments cascade, and the attachment files are removed. Its ms_id is held for 30 days (nobody can reclaim it: the id that could is
/// gone), so no one can take over a deleted account's handle at once.
pub async fn delete_account(
    state: &AppState,
    user_id: i64,
    ip: IpAddr,
    password: Zeroizing<String>,
    factor: SecondFactor,
) -> Result<(), ApiError> {
    reauthenticate(state, user_id, ip, password, factor).await?;
    let now = state.clock.now();
    let instance = state.instance;
    let gone = Revoked::User {
        user_id,
        keep: None,
    };
    let told = state
        .db
        .run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                // Read inside the transaction: the ms_id may have changed since the check.
                let ms_id: String = users::table
                    .filter(users::id.eq(user_id))
                    .select(users::ms_id)
                    .first(conn)?;
                // Who loses what, and which files go, read before the cascade removes it.
                let told = Departure::of(conn, user_id)?;
                let files = crate::services::attachments::ids_of_owner(conn, user_id)?;
                diesel::delete(users::table.filter(users::id.eq(user_id))).execute(conn)?;
                crate::services::profiles::hold_ms_id(conn, &ms_id, user_id, now)?;
                notify::announce_revoked(conn, instance, gone)?;
                Ok::<_, ApiError>((told, files))
            })
        })
        .await?;
    let (told, files) = told;
    state.hub.revoke(gone);
    crate::services::attachments::remove_files(state, &files).await;
    told.announce(state, user_id);
    Ok(())
}

/// Whom a deleted account's departure changes something for (change notices,
/// [`crate::services::events`]).
struct Departure {
    /// Friends, request partners and blockers: `friends_changed`.
    partners: Vec<i64>,
    /// Each room the user was in (joined or invited), with its other joined members:
    /// `rooms_changed`.
    rooms: Vec<(i64, Vec<i64>)>,
    /// The user's contacts, if the user had devices: `devices_changed`.
    contacts: Option<Vec<i64>>,
}

impl Departure {
    fn of(conn: &mut crate::db::DbConnection, user_id: i64) -> Result<Self, ApiError> {
        use crate::db::schema::{devices, room_members};
        use crate::services::{contacts, friends, rooms};
        let partners = friends::partners(conn, user_id)?;
        let room_ids: Vec<i64> = room_members::table
            .filter(room_members::user_id.eq(user_id))
            .select(room_members::room_id)
            .load(conn)?;
        let mut in_rooms = Vec::with_capacity(room_ids.len());
        for room in room_ids {
            let mut members = rooms::joined_members(conn, room)?;
            members.retain(|&m| m != user_id);
            in_rooms.push((room, members));
        }
        let had_devices = diesel::select(diesel::dsl::exists(
            devices::table.filter(devices::user_id.eq(user_id)),
        ))
        .get_result::<bool>(conn)?;
        let contacts = if had_devices {
            Some(contacts::contacts_of(conn, user_id)?)
        } else {
            None
        };
        Ok(Self {
            partners,
            rooms: in_rooms,
            contacts,
        })
    }

    fn announce(self, state: &AppState, user_id: i64) {
        use crate::services::events;
        events::friends_changed(state, self.partners);
        for (room, members) in self.rooms {
            events::rooms_changed(state, room, None, members);
        }
        if let Some(contacts) = self.contacts {
            events::devices_changed(state, user_id, contacts);
        }
    }
}

/// Changes the password after checking the current one, and signs out every other session
/// (their WebSocket connections close at once).
pub async fn change_password(
    state: &AppState,
    user_id: i64,
    current_session: i64,
    ip: IpAddr,
    password: Zeroizing<String>,
    new_password: Zeroizing<String>,
    factor: SecondFactor,
) -> Result<(), ApiError> {
    // Rules first, so a refused new password does not spend a one-time code.
    let account = check_password(state, user_id, ip, password).await?;
    passwords::check_new_password(
        &new_password,
        &[&account.email, &account.ms_id, &account.display_name],
    )?;
    require_second_factor_if_enabled(state, &account, factor).await?;
    let now = state.clock.now();
    let hash = state.passwords.hash(new_password).await?;
    let instance = state.instance;
    let signed_out = Revoked::User {
        user_id,
        keep: Some(current_session),
    };
    state
        .db
        .run(move |conn| {
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                diesel::update(users::table.filter(users::id.eq(user_id)))
                    .set(users::password_hash.eq(&hash))
                    .execute(conn)?;
                diesel::delete(
                    sessions::table
                        .filter(sessions::user_id.eq(user_id))
                        .filter(sessions::id.ne(current_session)),
                )
                .execute(conn)?;
                // A login half done with the old password must not be finished with it.
                diesel::delete(
                    login_challenges::table.filter(login_challenges::user_id.eq(user_id)),
                )
                .execute(conn)?;
                twofa::log_event(conn, user_id, "password_changed", now)?;
                notify::announce_revoked(conn, instance, signed_out)?;
                Ok(())
            })
        })
        .await?;
    state.hub.revoke(signed_out);
    Ok(())
}

/// Starts an e-mail address change after checking the password (and, with 2FA on, a current
/// code): a code goes to the new address, and the change happens when it is entered
/// ([`twofa::confirm_email_change`]); the answer, the unchanged account, is the same whether
/// or not the address has an account (issue #12 item 8). E-mail 2FA stays on across the
/// change and its codes go to the new address from then on.
pub async fn change_email(
    state: &AppState,
    user_id: i64,
    ip: IpAddr,
    password: Zeroizing<String>,
    new_email: &str,
    factor: SecondFactor,
) -> Result<Account, ApiError> {
    let email = validate::email(new_email)?;
    reauthenticate(state, user_id, ip, password, factor).await?;
    twofa::start_email_change(state, user_id, email).await?;
    me(state, user_id).await
}

/// Ends the session making the request; its WebSocket connections close at once.
pub async fn logout(state: &AppState, session_id: i64) -> Result<(), ApiError> {
    let instance = state.instance;
    let what = Revoked::Session(session_id);
    state
        .db
        .run(move |conn| {
            crate::db::write_transaction::<_, ApiError, _>(conn, |conn| {
                diesel::delete(sessions::table.filter(sessions::id.eq(session_id)))
                    .execute(conn)?;
                notify::announce_revoked(conn, instance, what)?;
                Ok(())
            })
        })
        .await?;
    state.hub.revoke(what);
    Ok(())
}
