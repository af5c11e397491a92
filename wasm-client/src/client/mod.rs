//! The client core: accounts, devices, friends, messages, over a [`Transport`] and a sealed
//! [`Store`]. Platform-independent: the same code runs natively and in WebAssembly.
//!
//! The WebSocket is driven by the caller: [`Client::connect`] returns the socket's reading half,
//! and each [`SocketEvent`] read from it goes to [`Client::handle`], which answers with
//! [`Event`]s. So the client's state is only borrowed while an event is handled, never while
//! waiting for the network to deliver the next one.

pub(crate) mod attachments;
mod events;
mod history;
mod messaging;
mod rooms;

pub(crate) use attachments::valid_attachment_id;
pub use attachments::{Attachments, DOWNLOAD_PIECE, MAX_ATTACHMENT_BYTES, UPLOAD_PIECE};
pub use events::{ConnectionState, Conversation, Event, FailureReason, Message, MessageStatus};
pub use history::{ConversationSummary, MAX_PAGE};
pub use rooms::MAX_HELD;

use crate::api::{self, Reauth, Relay, segment};
use crate::error::{ClientError, ErrorCode, Result};
use crate::platform::now_secs;
use crate::store::Store;
use crate::store::sealed::SealedStore;
use crate::transport::{ConnectError, Method, SocketSender, Transport};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_core::{Account, PickleId, PickleKey, PublicIdentity};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use zeroize::Zeroizing;

/// One-time prekeys uploaded at registration and per replenishment.
pub const ONE_TIME_PREKEY_BATCH: usize = 50;
/// Replenish when the relay holds fewer than this many one-time prekeys.
pub const ONE_TIME_PREKEY_LOW: i64 = 20;
/// A signed prekey is replaced when it is older than this (seconds): 7 days.
pub const SIGNED_PREKEY_LIFETIME: u64 = 7 * 24 * 3600;
/// A replaced signed prekey is kept this long after its creation (seconds), so that sessions
/// started from a bundle fetched just before the rotation still open: 14 days.
pub const SIGNED_PREKEY_GRACE: u64 = 14 * 24 * 3600;

/// The outcome of a password login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Signed in.
    SignedIn,
    /// A second factor is needed: answer with [`Client::complete_second_factor`].
    SecondFactorRequired {
        /// The challenge to answer.
        challenge: String,
        /// The factors the account has.
        methods: Vec<api::SecondFactor>,
        /// When the challenge expires (Unix seconds).
        expires_at: i64,
    },
}

/// The signed-in state, persisted in the `state` record.
#[derive(Clone, Default, Serialize, Deserialize)]
struct State {
    user_id: Option<i64>,
    email: Option<String>,
    token: Option<String>,
    device_id: Option<i64>,
    /// The account pickle's id and latest counter.
    account: Option<PickleRef>,
    /// Base64 pickle key (32 random bytes) for the crypto-core pickles.
    pickle_key: String,
}

// The session token and the pickle key never reach a Debug print.
impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PickleRef {
    id: String,
    counter: u64,
}

/// A pickle and where it came from, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StoredPickle {
    id: String,
    counter: u64,
    sealed: String,
}

/// What the client knows about one of a user's devices' identity keys.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Trust {
    /// Device id → base64 identity key, as first seen.
    devices: BTreeMap<i64, String>,
    /// Whether the user verified this user's safety numbers.
    verified: bool,
    /// Devices whose key appeared after the user was verified (messages from them are flagged).
    unverified_devices: Vec<i64>,
}

/// The SecureChat client.
pub struct Client<T: Transport, S: Store> {
    relay: Relay<T>,
    store: SealedStore<S>,
    state: State,
    pickle_key: PickleKey,
    account: Option<Account>,
    socket: Option<SocketSender>,
    /// Outbox entries `(id, to_device)` written to the current socket: a flush sends only
    /// the others; a new connection sends everything again.
    on_socket: HashSet<(String, i64)>,
    /// user id → ms_id, from the friend list (device lists are fetched by ms_id).
    ms_ids: HashMap<i64, String>,
    /// user id → devices, fetched at most once per connection unless told they changed.
    devices: HashMap<i64, Vec<api::Device>>,
    /// Whether the backlog was received on the current connection.
    synced: bool,
}

impl<T: Transport, S: Store> std::fmt::Debug for Client<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("user_id", &self.state.user_id)
            .field("device_id", &self.state.device_id)
            .finish_non_exhaustive()
    }
}

fn b64_decode(what: &str, s: &str) -> Result<Vec<u8>> {
    BASE64
        .decode(s)
        .map_err(|_| ClientError::StoreCorrupted(format!("{what} is not base64")))
}

fn pickle_id_from_hex(s: &str) -> Result<PickleId> {
    let mut bytes = [0u8; 16];
    if s.len() != 32 {
        return Err(ClientError::StoreCorrupted("pickle id length".into()));
    }
    for (i, b) in bytes.iter_mut().enumerate() {
        let pair = s
            .get(2 * i..2 * i + 2)
            .ok_or_else(|| ClientError::StoreCorrupted("pickle id".into()))?;
        *b = u8::from_str_radix(pair, 16)
            .map_err(|_| ClientError::StoreCorrupted("pickle id".into()))?;
    }
    Ok(PickleId::from_bytes(bytes))
}

impl<T: Transport, S: Store> Client<T, S> {
    /// A client over an opened sealed store (see [`SealedStore::create`] / [`SealedStore::open`]);
    /// picks up the signed-in state the store holds.
    pub async fn new(transport: T, store: SealedStore<S>) -> Result<Self> {
        let state: State = match store.get("state").await? {
            Some(state) => state,
            None => {
                let mut key = Zeroizing::new([0u8; 32]);
                getrandom::fill(key.as_mut_slice())
                    .map_err(|e| ClientError::Storage(format!("no randomness: {e}")))?;
                let state = State {
                    pickle_key: BASE64.encode(key.as_slice()),
                    ..State::default()
                };
                let mut b = store.batch();
                b.put("state", &state);
                b.commit().await?;
                state
            }
        };
        let key_bytes = Zeroizing::new(b64_decode("pickle key", &state.pickle_key)?);
        let key: [u8; 32] = key_bytes
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::StoreCorrupted("pickle key length".into()))?;
        let pickle_key = PickleKey::new(key);
        let account = match &state.account {
            Some(r) => {
                let stored: StoredPickle = store
                    .get("account")
                    .await?
                    .ok_or_else(|| ClientError::StoreCorrupted("account record missing".into()))?;
                let id = pickle_id_from_hex(&r.id)?;
                let sealed = b64_decode("account", &stored.sealed)?;
                Some(Account::from_pickle(&sealed, &pickle_key, &id, r.counter)?)
            }
            None => None,
        };
        let mut relay = Relay::new(transport);
        relay.set_token(state.token.clone());
        Ok(Self {
            relay,
            store,
            state,
            pickle_key,
            account,
            socket: None,
            on_socket: HashSet::new(),
            ms_ids: HashMap::new(),
            devices: HashMap::new(),
            synced: false,
        })
    }

    /// The signed-in user's id.
    #[must_use]
    pub fn user_id(&self) -> Option<i64> {
        self.state.user_id
    }

    /// This device's id, once registered.
    #[must_use]
    pub fn device_id(&self) -> Option<i64> {
        self.state.device_id
    }

    /// Whether a session token is held (it may have expired on the relay).
    #[must_use]
    pub fn is_signed_in(&self) -> bool {
        self.state.token.is_some()
    }

    /// This device's public identity, once the device exists.
    #[must_use]
    pub fn identity(&self) -> Option<&PublicIdentity> {
        self.account.as_ref().map(Account::identity)
    }

    async fn save_state(&self) -> Result<()> {
        let mut b = self.store.batch();
        b.put("state", &self.state);
        b.commit().await
    }

    fn signed_in_user(&self) -> Result<i64> {
        match (self.state.user_id, &self.state.token) {
            (Some(id), Some(_)) => Ok(id),
            _ => Err(ClientError::NotSignedIn),
        }
    }

    // ----- accounts -----

    /// Creates an account on the relay (then [`Client::login`]). The relay's password rules
    /// come back as [`ErrorCode::PasswordLength`] / [`ErrorCode::WeakPassword`].
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        ms_id: &str,
        display_name: &str,
    ) -> Result<api::AccountCreated> {
        self.relay
            .call(
                Method::Post,
                "/api/v1/accounts",
                Some(&api::RegisterBody {
                    email,
                    password,
                    ms_id,
                    display_name,
                }),
            )
            .await
    }

    /// Whether `ms_id` can be taken (no session needed).
    pub async fn check_ms_id(&self, ms_id: &str) -> Result<api::MsIdAvailability> {
        self.relay
            .call(
                Method::Get,
                &format!("/api/v1/ms_ids/{}", segment(ms_id)),
                None::<&()>,
            )
            .await
    }

    /// Signs in with e-mail and password. A store that belongs to another account is refused
    /// ([`ErrorCode::InvalidArgument`]): one store per account.
    pub async fn login(&mut self, email: &str, password: &str) -> Result<LoginOutcome> {
        let answer = self
            .relay
            .raw(
                Method::Post,
                "/api/v1/sessions",
                Some(
                    serde_json::to_vec(&api::LoginBody { email, password })
                        .map_err(|e| ClientError::InvalidArgument(e.to_string()))?,
                ),
            )
            .await?;
        if answer.status == 401 {
            let err = api::relay_error(answer.status, answer.retry_after, &answer.body);
            if err.code() == ErrorCode::TwoFactorRequired {
                let body: api::TwoFactorRequiredBody = serde_json::from_slice(&answer.body)
                    .map_err(|e| ClientError::bad_response(format!("two_factor_required: {e}")))?;
                self.state.email = Some(email.to_owned());
                return Ok(LoginOutcome::SecondFactorRequired {
                    challenge: body.challenge,
                    methods: body.methods,
                    expires_at: body.expires_at,
                });
            }
            return Err(err);
        }
        if !(200..300).contains(&answer.status) {
            return Err(api::relay_error(
                answer.status,
                answer.retry_after,
                &answer.body,
            ));
        }
        let login: api::LoginAnswer = serde_json::from_slice(&answer.body)
            .map_err(|e| ClientError::bad_response(format!("login: {e}")))?;
        self.signed_in(email, login).await?;
        Ok(LoginOutcome::SignedIn)
    }

    /// Asks the relay to mail a login code for `challenge` (accounts with e-mail 2FA).
    pub async fn send_login_email_code(&self, challenge: &str) -> Result<()> {
        #[derive(Serialize)]
        struct Body<'a> {
            challenge: &'a str,
        }
        self.relay
            .call_empty(
                Method::Post,
                "/api/v1/sessions/challenge/email",
                Some(&Body { challenge }),
            )
            .await
    }

    /// Answers a login challenge with a second factor.
    pub async fn complete_second_factor(
        &mut self,
        challenge: &str,
        method: api::SecondFactor,
        code: &str,
    ) -> Result<()> {
        let login: api::LoginAnswer = self
            .relay
            .call(
                Method::Post,
                "/api/v1/sessions/2fa",
                Some(&api::ChallengeBody {
                    challenge,
                    method,
                    code,
                }),
            )
            .await?;
        let email = self.state.email.clone().unwrap_or_default();
        self.signed_in(&email, login).await
    }

    async fn signed_in(&mut self, email: &str, login: api::LoginAnswer) -> Result<()> {
        if let Some(existing) = self.state.user_id
            && existing != login.user_id
        {
            return Err(ClientError::InvalidArgument(
                "this store belongs to another account".into(),
            ));
        }
        let _ = login.expires_at;
        self.state.user_id = Some(login.user_id);
        self.state.email = Some(email.to_owned());
        self.state.token = Some(login.token.clone());
        self.relay.set_token(Some(login.token));
        self.save_state().await
    }

    /// Signs out: ends the relay session and forgets the token (the store keeps the account,
    /// its keys and the history for the next sign-in on this device).
    pub async fn logout(&mut self) -> Result<()> {
        self.disconnect();
        let result = self
            .relay
            .call_empty(Method::Delete, "/api/v1/sessions/current", None::<&()>)
            .await;
        self.state.token = None;
        self.relay.set_token(None);
        self.save_state().await?;
        match result {
            Err(e) if e.code() != ErrorCode::Unauthorized => Err(e),
            _ => Ok(()),
        }
    }

    /// The signed-in account.
    pub async fn me(&self) -> Result<api::Me> {
        self.signed_in_user()?;
        self.relay
            .call(Method::Get, "/api/v1/me", None::<&()>)
            .await
    }

    /// The account's live sessions.
    pub async fn sessions(&self) -> Result<Vec<api::SessionInfo>> {
        self.relay
            .call(Method::Get, "/api/v1/sessions", None::<&()>)
            .await
    }

    /// Revokes one of the account's sessions.
    pub async fn revoke_session(&self, id: i64) -> Result<()> {
        self.relay
            .call_empty(
                Method::Delete,
                &format!("/api/v1/sessions/{id}"),
                None::<&()>,
            )
            .await
    }

    /// Starts TOTP setup (needs the password): the secret, its URI and QR code.
    pub async fn totp_setup(&self, reauth: &api::Reauth) -> Result<api::TotpSetup> {
        self.relay
            .call(Method::Post, "/api/v1/me/2fa/totp/setup", Some(reauth))
            .await
    }

    /// Turns TOTP on with a first code; returns the recovery codes (shown once), if new ones
    /// were made.
    pub async fn totp_activate(&self, code: &str) -> Result<Option<Vec<String>>> {
        let a: api::Activated = self
            .relay
            .call(
                Method::Post,
                "/api/v1/me/2fa/totp/activate",
                Some(&api::CodeBody { code }),
            )
            .await?;
        Ok(a.recovery_codes)
    }

    /// Changes the account password on the relay. When the local store is wrapped with the
    /// account password (what the web app does), it is re-wrapped under the new one; a store
    /// with a password of its own keeps it ([`Client::change_store_password`]).
    pub async fn change_password(
        &self,
        reauth: &api::Reauth,
        new_password: &str,
        params: crate::store::sealed::KdfParams,
    ) -> Result<()> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            reauth: &'a api::Reauth,
            new_password: &'a str,
        }
        self.relay
            .call_empty(
                Method::Put,
                "/api/v1/me/password",
                Some(&Body {
                    reauth,
                    new_password,
                }),
            )
            .await?;
        match self
            .store
            .change_password(&reauth.password, new_password, params)
            .await
        {
            Err(ClientError::WrongPassword) => Ok(()),
            other => other,
        }
    }

    /// Re-wraps the local store under a new password (needs the current one).
    pub async fn change_store_password(
        &self,
        current: &str,
        new: &str,
        params: crate::store::sealed::KdfParams,
    ) -> Result<()> {
        self.store.change_password(current, new, params).await
    }

    /// Turns TOTP off (password and a current code).
    pub async fn totp_disable(&self, reauth: &api::Reauth) -> Result<()> {
        self.relay
            .call_empty(Method::Post, "/api/v1/me/2fa/totp/disable", Some(reauth))
            .await
    }

    /// Mails a security code to the account's address (for `method: email` re-authentication
    /// and as the `email_code` that turns e-mail 2FA on).
    pub async fn send_email_code(&self) -> Result<()> {
        self.relay
            .call_empty(Method::Post, "/api/v1/me/2fa/email/send", None::<&()>)
            .await
    }

    /// Turns e-mail codes on: the password, a code just mailed, and with TOTP on a current
    /// TOTP or recovery code in `reauth`.
    pub async fn email_2fa_enable(
        &self,
        reauth: &api::Reauth,
        email_code: &str,
    ) -> Result<Option<Vec<String>>> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            reauth: &'a api::Reauth,
            email_code: &'a str,
        }
        let a: api::Activated = self
            .relay
            .call(
                Method::Post,
                "/api/v1/me/2fa/email/enable",
                Some(&Body { reauth, email_code }),
            )
            .await?;
        Ok(a.recovery_codes)
    }

    /// Turns e-mail codes off.
    pub async fn email_2fa_disable(&self, reauth: &api::Reauth) -> Result<()> {
        self.relay
            .call_empty(Method::Post, "/api/v1/me/2fa/email/disable", Some(reauth))
            .await
    }

    /// Replaces the recovery codes; returns the new ones (shown once).
    pub async fn regenerate_recovery_codes(&self, reauth: &api::Reauth) -> Result<Vec<String>> {
        let r: api::RecoveryCodes = self
            .relay
            .call(
                Method::Post,
                "/api/v1/me/2fa/recovery/regenerate",
                Some(reauth),
            )
            .await?;
        Ok(r.recovery_codes)
    }

    /// Mails a code that confirms the account's address.
    pub async fn send_email_verification(&self) -> Result<()> {
        self.relay
            .call_empty(Method::Post, "/api/v1/me/email/verify/send", None::<&()>)
            .await
    }

    /// Confirms the address with the mailed code.
    pub async fn confirm_email(&self, code: &str) -> Result<()> {
        self.relay
            .call_empty(
                Method::Post,
                "/api/v1/me/email/verify/confirm",
                Some(&api::CodeBody { code }),
            )
            .await
    }

    /// Asks to change the e-mail address: the relay mails a code to the new address (then
    /// [`Client::confirm_email_change`]) and answers with the account, still unchanged, whether
    /// or not the new address has an account.
    pub async fn change_email(&self, reauth: &api::Reauth, new_email: &str) -> Result<api::Me> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            reauth: &'a api::Reauth,
            new_email: &'a str,
        }
        self.relay
            .call(
                Method::Put,
                "/api/v1/me/email",
                Some(&Body { reauth, new_email }),
            )
            .await
    }

    /// Completes an e-mail address change with the code mailed to the new address; returns
    /// the account with its new (verified) address.
    pub async fn confirm_email_change(&self, code: &str) -> Result<api::Me> {
        self.relay
            .call(
                Method::Post,
                "/api/v1/me/email/change/confirm",
                Some(&api::CodeBody { code }),
            )
            .await
    }

    /// The account's security events, newest first.
    pub async fn security_events(&self) -> Result<Vec<api::SecurityEvent>> {
        self.relay
            .call(Method::Get, "/api/v1/me/security-events", None::<&()>)
            .await
    }

    /// Deletes the account on the relay and forgets the token (the local store is the app's
    /// to delete).
    pub async fn delete_account(&mut self, reauth: &api::Reauth) -> Result<()> {
        self.relay
            .call_empty(Method::Delete, "/api/v1/me", Some(reauth))
            .await?;
        self.disconnect();
        self.state.token = None;
        self.relay.set_token(None);
        self.save_state().await
    }

    /// The users this account blocked.
    pub async fn blocks(&self) -> Result<Vec<api::Blocked>> {
        self.relay
            .call(Method::Get, "/api/v1/blocks", None::<&()>)
            .await
    }

    /// Changes the ms_id.
    pub async fn change_ms_id(&self, ms_id: &str) -> Result<api::Me> {
        self.relay
            .call(
                Method::Put,
                "/api/v1/me/ms_id",
                Some(&api::MsIdBody { ms_id }),
            )
            .await
    }

    // ----- friends -----

    /// Sends a friend request by ms_id (if they had asked first, you are friends at once).
    pub async fn send_friend_request(&self, ms_id: &str, note: Option<&str>) -> Result<()> {
        self.relay
            .call_empty(
                Method::Post,
                "/api/v1/friends/requests",
                Some(&api::SendRequestBody { ms_id, note }),
            )
            .await
    }

    /// Pending requests both ways.
    pub async fn friend_requests(&self) -> Result<api::FriendRequests> {
        self.relay
            .call(Method::Get, "/api/v1/friends/requests", None::<&()>)
            .await
    }

    /// Accepts an incoming request.
    pub async fn accept_friend_request(&self, id: i64) -> Result<()> {
        self.relay
            .call_empty(
                Method::Post,
                &format!("/api/v1/friends/requests/{id}/accept"),
                None::<&()>,
            )
            .await
    }

    /// Declines an incoming request.
    pub async fn decline_friend_request(&self, id: i64) -> Result<()> {
        self.relay
            .call_empty(
                Method::Post,
                &format!("/api/v1/friends/requests/{id}/decline"),
                None::<&()>,
            )
            .await
    }

    /// Cancels an outgoing request.
    pub async fn cancel_friend_request(&self, id: i64) -> Result<()> {
        self.relay
            .call_empty(
                Method::Delete,
                &format!("/api/v1/friends/requests/{id}"),
                None::<&()>,
            )
            .await
    }

    /// Ends a friendship.
    pub async fn remove_friend(&self, ms_id: &str) -> Result<()> {
        self.relay
            .call_empty(
                Method::Delete,
                &format!("/api/v1/friends/{}", segment(ms_id)),
                None::<&()>,
            )
            .await
    }

    /// Blocks a user.
    pub async fn block(&self, ms_id: &str) -> Result<()> {
        self.relay
            .call_empty(
                Method::Post,
                "/api/v1/blocks",
                Some(&api::MsIdBody { ms_id }),
            )
            .await
    }

    /// Lifts a block.
    pub async fn unblock(&self, ms_id: &str) -> Result<()> {
        self.relay
            .call_empty(
                Method::Delete,
                &format!("/api/v1/blocks/{}", segment(ms_id)),
                None::<&()>,
            )
            .await
    }

    /// The friend list (also refreshes the client's user id → ms_id map).
    pub async fn friends(&mut self) -> Result<Vec<api::Friend>> {
        let friends: Vec<api::Friend> = self
            .relay
            .call(Method::Get, "/api/v1/friends", None::<&()>)
            .await?;
        for f in &friends {
            self.ms_ids.insert(f.user_id, f.ms_id.clone());
        }
        Ok(friends)
    }

    /// A user's public profile.
    pub async fn profile(&mut self, ms_id: &str) -> Result<api::Profile> {
        let p: api::Profile = self
            .relay
            .call(
                Method::Get,
                &format!("/api/v1/users/{}", segment(ms_id)),
                None::<&()>,
            )
            .await?;
        self.ms_ids.insert(p.user_id, p.ms_id.clone());
        Ok(p)
    }

    // ----- devices -----

    /// Makes sure this device exists: on the first call after sign-in, creates its identity,
    /// signed prekey and one-time prekeys and registers them; later calls rotate the signed
    /// prekey when due and top up one-time prekeys.
    pub async fn ensure_device(&mut self, name: &str) -> Result<i64> {
        self.ensure_device_with(name, None).await
    }

    /// [`Client::ensure_device`] with the password (and second factor) again: the relay adds
    /// a device only for a sign-in less than 10 minutes old, and answers `reauth_required`
    /// otherwise (docs/api.md, "Authentication").
    pub async fn ensure_device_with(&mut self, name: &str, reauth: Option<&Reauth>) -> Result<i64> {
        self.signed_in_user()?;
        if let Some(id) = self.state.device_id {
            self.maintain_prekeys().await?;
            return Ok(id);
        }
        let mut account = match self.account.take() {
            Some(a) => a,
            None => Account::new()?,
        };
        let spk = match account.signed_prekey() {
            Some(spk) => spk.clone(),
            None => account.generate_signed_prekey(now_secs())?,
        };
        let otpks = account.generate_one_time_prekeys(ONE_TIME_PREKEY_BATCH)?;
        // The keys exist before the relay knows them: persist first, so that a crash after the
        // upload cannot lose the secrets of published prekeys.
        self.account = Some(account);
        self.save_account().await?;
        let identity = self
            .account
            .as_ref()
            .map(|a| BASE64.encode(a.identity().encode()))
            .unwrap_or_default();
        let created: api::DeviceCreated = self
            .relay
            .call(
                Method::Post,
                "/api/v1/devices",
                Some(&api::RegisterDeviceBody {
                    identity_key: identity,
                    name,
                    signed_prekey: BASE64.encode(spk.encode()),
                    one_time_prekeys: otpks.iter().map(|k| BASE64.encode(k.encode())).collect(),
                    password: reauth.map(|r| r.password.as_str()),
                    method: reauth.and_then(|r| r.method),
                    code: reauth.and_then(|r| r.code.as_deref()),
                }),
            )
            .await?;
        self.state.device_id = Some(created.device_id);
        self.save_state().await?;
        Ok(created.device_id)
    }

    /// Rotates the signed prekey when it is older than [`SIGNED_PREKEY_LIFETIME`] and uploads
    /// one-time prekeys when the relay holds fewer than [`ONE_TIME_PREKEY_LOW`].
    pub async fn maintain_prekeys(&mut self) -> Result<()> {
        let device_id = self.state.device_id.ok_or(ClientError::NoDevice)?;
        let now = now_secs();
        let account = self.account.as_mut().ok_or(ClientError::NoDevice)?;
        let due = account
            .signed_prekey()
            .is_none_or(|spk| spk.created_at().saturating_add(SIGNED_PREKEY_LIFETIME) <= now);
        if due {
            let spk = account.generate_signed_prekey(now)?;
            account.forget_signed_prekeys_before(now.saturating_sub(SIGNED_PREKEY_GRACE));
            self.save_account().await?;
            self.relay
                .call_empty(
                    Method::Put,
                    &format!("/api/v1/devices/{device_id}/signed-prekey"),
                    Some(&api::SignedPrekeyBody {
                        signed_prekey: BASE64.encode(spk.encode()),
                    }),
                )
                .await?;
        }
        let count: api::PrekeyCount = self
            .relay
            .call(
                Method::Get,
                &format!("/api/v1/devices/{device_id}/one-time-prekeys/count"),
                None::<&()>,
            )
            .await?;
        if count.remaining < ONE_TIME_PREKEY_LOW {
            let account = self.account.as_mut().ok_or(ClientError::NoDevice)?;
            let keys = account.generate_one_time_prekeys(ONE_TIME_PREKEY_BATCH)?;
            self.save_account().await?;
            self.relay
                .call_empty(
                    Method::Post,
                    &format!("/api/v1/devices/{device_id}/one-time-prekeys"),
                    Some(&api::PrekeysBody {
                        prekeys: keys.iter().map(|k| BASE64.encode(k.encode())).collect(),
                    }),
                )
                .await?;
        }
        Ok(())
    }

    /// This account's devices.
    pub async fn own_devices(&self) -> Result<Vec<api::OwnDevice>> {
        self.relay
            .call(Method::Get, "/api/v1/devices", None::<&()>)
            .await
    }

    pub(crate) fn account_pickle(&mut self) -> Result<Option<(PickleRef, StoredPickle)>> {
        let Some(account) = self.account.as_mut() else {
            return Ok(None);
        };
        let sealed = account.pickle(&self.pickle_key)?;
        let r = PickleRef {
            id: account.pickle_id().to_string(),
            counter: sealed.counter(),
        };
        let stored = StoredPickle {
            id: r.id.clone(),
            counter: r.counter,
            sealed: BASE64.encode(sealed.as_bytes()),
        };
        Ok(Some((r, stored)))
    }

    async fn save_account(&mut self) -> Result<()> {
        let Some((r, stored)) = self.account_pickle()? else {
            return Ok(());
        };
        self.state.account = Some(r);
        let mut b = self.store.batch();
        b.put("account", &stored);
        b.put("state", &self.state);
        b.commit().await
    }

    // ----- connection -----

    /// Opens the WebSocket. Returns the reading half: pass every event it yields to
    /// [`Client::handle`]. Resends the outbox at once.
    pub async fn connect(&mut self) -> Result<T::Receiver> {
        self.signed_in_user()?;
        let device_id = self.state.device_id.ok_or(ClientError::NoDevice)?;
        let token = self.state.token.clone().ok_or(ClientError::NotSignedIn)?;
        let (tx, rx) = match self.relay.transport().connect(&token, device_id).await {
            Ok(pair) => pair,
            Err(ConnectError::Refused(answer)) => {
                return Err(api::relay_error(
                    answer.status,
                    answer.retry_after,
                    &answer.body,
                ));
            }
            Err(ConnectError::Network(e)) => return Err(ClientError::Network(e)),
        };
        self.socket = Some(tx);
        self.on_socket.clear();
        self.synced = false;
        // Device lists may have changed while offline.
        self.devices.clear();
        self.flush_outbox().await?;
        Ok(rx)
    }

    /// Closes the WebSocket (code 1000).
    pub fn disconnect(&mut self) {
        if let Some(tx) = self.socket.take() {
            let _ = tx.unbounded_send(crate::transport::Outgoing::Close(1000));
        }
        self.on_socket.clear();
    }

    /// Whether a socket is open.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.socket.as_ref().is_some_and(|s| !s.is_closed())
    }

    /// Whether the backlog of the current connection has been received.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The transport (for its `sleep`, in reconnect loops).
    pub fn transport(&self) -> &T {
        self.relay.transport()
    }

    /// Whether to reconnect after the socket closed with `code` (docs/api.md §2.4: never after
    /// 4001 "replaced" or 4004 "session ended").
    #[must_use]
    pub fn should_reconnect(code: Option<u16>) -> bool {
        !matches!(code, Some(4001 | 4004))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn state_debug_leaves_out_the_token_and_the_pickle_key() {
        let state = super::State {
            user_id: Some(7),
            token: Some("secret-token-abc".into()),
            pickle_key: "cGlja2xlIGtleQ==".into(),
            email: Some("ada@example.org".into()),
            ..super::State::default()
        };
        let printed = format!("{state:?}");
        assert!(printed.contains("user_id: Some(7)"), "{printed}");
        for secret in ["secret-token-abc", "cGlja2xlIGtleQ==", "ada@example.org"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
}
