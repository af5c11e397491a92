//! The JavaScript API (wasm-bindgen): `SecureChatClient`, over the web transport and a store
//! the app passes in (the package ships an IndexedDB store and a memory store in JavaScript;
//! any object with `get(key)` and `write(ops)` works).
//!
//! Every method returns a Promise; results are plain objects (JSON-shaped, see the TypeScript
//! declarations below); failures reject with an `Error` whose `name` is `SecureChatError` and
//! whose `code` is an [`ErrorCode`] string. The client's state sits behind an async mutex, so
//! overlapping calls wait for each other instead of failing.

use crate::api::{Reauth, SecondFactor};
use crate::error::{ClientError, ErrorCode};
use crate::store::device_key;
use crate::store::sealed::{KdfParams, SealedStore};
use crate::store::{Store, StoreError, StoreOp};
use crate::transport::web::{WebReceiver, WebTransport};
use crate::transport::{SocketReceiver, Transport};
use crate::{Client, ConnectionState, Conversation, Event};
use futures_util::lock::Mutex;
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise, spawn_local};
use zeroize::Zeroizing;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Every `code` a SecureChatError can carry: the relay's codes, then the client's own. */
export type ErrorCode = "invalid_json" | "payload_too_large" | "invalid_input" | "invalid_email"
  | "invalid_ms_id" | "password_length" | "weak_password" | "email_taken" | "ms_id_unavailable"
  | "unauthorized" | "invalid_credentials" | "csrf_failed" | "two_factor_required"
  | "invalid_challenge" | "invalid_code" | "code_expired" | "code_replayed"
  | "too_many_attempts" | "two_factor_state" | "not_found" | "self_request"
  | "duplicate_request" | "already_friends" | "blocked" | "rate_limited" | "conflict"
  | "internal" | "unavailable" | "invalid_key" | "bad_signature" | "identity_taken"
  | "too_many_devices" | "too_many_prekeys" | "duplicate_prekey" | "stale_prekey"
  | "forbidden_origin" | "quota_exceeded" | "unknown_device" | "reauth_required"
  | "not_room_admin" | "request_timeout"
  | "not_friends" | "queue_full"
  | "not_a_member" | "invalid_frame" | "too_large" | "unsupported_version" | "unknown_type"
  | "binary_not_supported" | "network" | "bad_response"
  | "unknown_relay_code" | "not_signed_in" | "no_device" | "wrong_password" | "store_corrupted"
  | "storage" | "crypto" | "identity_mismatch" | "invalid_argument" | "attachment_mismatch";
/** What every method rejects with. */
export interface SecureChatError extends Error {
  name: "SecureChatError";
  code: ErrorCode;
  /** Seconds to wait, for `rate_limited`. */
  retryAfter?: number;
}
/**
 * A raw key–value store; `write` must apply all operations atomically. The three key methods
 * are optional: a store that has them can keep the non-extractable WebCrypto key of
 * "remember me" (`OpenOptions.remember`, `SecureChatClient.openRemembered`).
 */
export interface RawStore {
  get(key: string): Promise<Uint8Array | undefined>;
  write(ops: StoreOp[]): Promise<void>;
  /** Optional: the values of many keys at once (one transaction), in order. */
  getMany?(keys: string[]): Promise<(Uint8Array | undefined)[]>;
  getKey?(name: string): Promise<CryptoKey | undefined>;
  putKey?(name: string, key: CryptoKey): Promise<void>;
  deleteKey?(name: string): Promise<void>;
}
/** Options of `SecureChatClient.open`. */
export interface OpenOptions {
  /**
   * "Remember me": also wrap the storage key with a new non-extractable WebCrypto AES-GCM key
   * that the store keeps, so that `openRemembered` opens it without the password.
   */
  remember?: boolean;
}
export type StoreOp = { put: string; value: Uint8Array } | { delete: string };
export type Conversation = { user: number } | { room: number };
export type MessageStatus = "pending" | "sent" | "delivered" | "received";
export interface AttachmentRef { id: string; key: string; digest: string; size: number; mime: string; name: string }
export interface Message {
  id: string; conversation: Conversation; from_user: number; from_device: number; outgoing: boolean;
  sent_at: number; stored_at: number; text: string; attachment: AttachmentRef | null;
  reply_to: string | null; status: MessageStatus; unverified_key: boolean;
}
export type FailureReason = "unknown_session" | "duplicate" | "corrupted" | "key_changed" | "too_old" | "unsupported";
/** What a `rooms_changed` event reports (docs/api.md). */
export type RoomChange = "created" | "invited" | "joined" | "declined" | "left" | "removed"
  | "promoted" | "demoted" | "renamed" | "deleted";
export type ConnectionState = "connecting" | "syncing" | "online" | "offline" | "stopped";
export type ClientEvent =
  | { type: "message"; message: Message }
  | { type: "status"; id: string; conversation: Conversation; status: MessageStatus }
  | { type: "send_failed"; id: string; device_id: number; code: string }
  | { type: "typing"; user_id: number; typing: boolean }
  | { type: "presence"; user_id: number; online: boolean }
  | { type: "friends_changed" }
  | { type: "rooms_changed"; room_id: number; change: RoomChange | null; user_id: number | null; by: number | null }
  | { type: "devices_changed"; user_id: number }
  | { type: "key_changed"; user_id: number; device_id: number; was_verified: boolean }
  | { type: "decryption_failed"; from_user: number; from_device: number; id: string; reason: FailureReason }
  | { type: "connection"; state: ConnectionState };
export type SecondFactor = "totp" | "email" | "recovery";
export type LoginOutcome =
  | { status: "signed_in" }
  | { status: "second_factor_required"; challenge: string; methods: SecondFactor[]; expires_at: number };
export interface AccountCreated { user_id: number; email: string; ms_id: string; display_name: string }
export interface Me { user_id: number; email: string; email_verified: boolean; ms_id: string; display_name: string; totp_enabled: boolean }
export interface MsIdAvailability { ms_id: string; available: boolean }
export interface Friend { user_id: number; ms_id: string; display_name: string; since: number }
export interface FriendRequest { id: number; user_id: number; ms_id: string; display_name: string; note: string | null; created_at: number }
export interface FriendRequests { incoming: FriendRequest[]; outgoing: FriendRequest[] }
export interface TotpSetup { secret: string; otpauth_uri: string; qr_png_base64: string }
export interface SessionInfo { id: number; created_at: number; last_used_at: number; expires_at: number; user_agent: string | null; current: boolean }
export interface ConversationSummary { count: number; unread: number; last: Message | null }
export interface Reauth { password: string; method?: SecondFactor; code?: string }
export interface SecurityEvent { id: number; kind: string; created_at: number }
export interface Blocked { user_id: number; ms_id: string; display_name: string; blocked_at: number }
export interface Profile { user_id: number; ms_id: string; display_name: string }
export interface OwnDevice { device_id: number; identity_key: string; name: string; created_at: number; one_time_prekeys: number }
export interface SafetyNumberView { digits: string; display: string; qr_base64: string }
export interface Room { id: number; name: string | null; state: "invited" | "joined"; created_at: number }
export interface RoomMember { user_id: number; ms_id: string; display_name: string; state: "invited" | "joined"; role: "admin" | "member"; devices: number[] }
"#;

#[wasm_bindgen]
extern "C" {
    /// The app's raw store.
    #[wasm_bindgen(typescript_type = "RawStore")]
    pub type JsRawStore;

    /// `SecureChatClient.open`'s options.
    #[wasm_bindgen(typescript_type = "OpenOptions")]
    pub type JsOpenOptions;

    #[wasm_bindgen(method, catch)]
    fn get(this: &JsRawStore, key: &str) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn write(this: &JsRawStore, ops: Array) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = getMany)]
    fn get_many_js(this: &JsRawStore, keys: Array) -> Result<Promise, JsValue>;
}

fn bytes_or_none(value: JsValue) -> Result<Option<Vec<u8>>, StoreError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let bytes = value
        .dyn_into::<Uint8Array>()
        .map_err(|_| StoreError("a store must give a Uint8Array or undefined".into()))?;
    Ok(Some(bytes.to_vec()))
}

/// [`Store`] over a JavaScript object.
pub struct JsStore(JsRawStore);

impl JsStore {
    /// A store over the app's object.
    #[must_use]
    pub fn new(raw: JsRawStore) -> Self {
        Self(raw)
    }
}

impl std::fmt::Debug for JsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsStore")
    }
}

fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "JavaScript error".to_owned())
}

impl Store for JsStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let promise = self.0.get(key).map_err(|e| StoreError(js_message(&e)))?;
        let value: JsValue = JsFuture::from(promise)
            .await
            .map_err(|e| StoreError(js_message(&e)))?;
        bytes_or_none(value)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let has = Reflect::has(&self.0, &JsValue::from_str("getMany")).unwrap_or(false);
        if !has {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(key).await?);
            }
            return Ok(out);
        }
        let array: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
        let promise = self
            .0
            .get_many_js(array)
            .map_err(|e| StoreError(js_message(&e)))?;
        let values: JsValue = JsFuture::from(promise)
            .await
            .map_err(|e| StoreError(js_message(&e)))?;
        let values: Array = values
            .dyn_into()
            .map_err(|_| StoreError("store.getMany must give an array".into()))?;
        if values.length() as usize != keys.len() {
            return Err(StoreError(
                "store.getMany gave the wrong number of values".into(),
            ));
        }
        values.iter().map(bytes_or_none).collect()
    }

    async fn write(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        let array = Array::new();
        for op in ops {
            let o = Object::new();
            let set = |k: &str, v: &JsValue| {
                Reflect::set(&o, &JsValue::from_str(k), v)
                    .map(drop)
                    .map_err(|e| StoreError(js_message(&e)))
            };
            match op {
                StoreOp::Put(k, v) => {
                    set("put", &JsValue::from_str(&k))?;
                    set("value", &Uint8Array::from(v.as_slice()).into())?;
                }
                StoreOp::Delete(k) => {
                    set("delete", &JsValue::from_str(&k))?;
                }
            }
            array.push(&o);
        }
        let promise = self
            .0
            .write(array)
            .map_err(|e| StoreError(js_message(&e)))?;
        let _: JsValue = JsFuture::from(promise)
            .await
            .map_err(|e| StoreError(js_message(&e)))?;
        Ok(())
    }
}

/// The error every method rejects with: an `Error` named `SecureChatError` with a `code`
/// (an error-code string) and, for rate limits, `retryAfter` (seconds).
fn js_error(e: &ClientError) -> JsValue {
    let error = js_sys::Error::new(&e.to_string());
    error.set_name("SecureChatError");
    let _ = Reflect::set(
        &error,
        &JsValue::from_str("code"),
        &JsValue::from_str(e.code().as_str()),
    );
    if let Some(seconds) = e.retry_after() {
        #[allow(clippy::cast_precision_loss)]
        let seconds = seconds as f64;
        let _ = Reflect::set(
            &error,
            &JsValue::from_str("retryAfter"),
            &JsValue::from_f64(seconds),
        );
    }
    error.into()
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let json = serde_json::to_string(value).map_err(|e| {
        js_error(&ClientError::InvalidArgument(format!(
            "cannot encode a result: {e}"
        )))
    })?;
    js_sys::JSON::parse(&json)
}

fn result<T: Serialize>(r: crate::Result<T>) -> Result<JsValue, JsValue> {
    match r {
        Ok(v) => to_js(&v),
        Err(e) => Err(js_error(&e)),
    }
}

fn conversation(value: &JsValue) -> Result<Conversation, JsValue> {
    let get = |k: &str| {
        Reflect::get(value, &JsValue::from_str(k))
            .ok()
            .and_then(|v| v.as_f64())
    };
    #[allow(clippy::cast_possible_truncation)]
    match (get("user"), get("room")) {
        (Some(u), None) if u.fract() == 0.0 => Ok(Conversation::User(u as i64)),
        (None, Some(r)) if r.fract() == 0.0 => Ok(Conversation::Room(r as i64)),
        _ => Err(js_error(&ClientError::InvalidArgument(
            "a conversation is {user: id} or {room: id}".into(),
        ))),
    }
}

fn second_factor(method: &str) -> Result<SecondFactor, JsValue> {
    match method {
        "totp" => Ok(SecondFactor::Totp),
        "email" => Ok(SecondFactor::Email),
        "recovery" => Ok(SecondFactor::Recovery),
        _ => Err(js_error(&ClientError::InvalidArgument(
            "the second factor is \"totp\", \"email\" or \"recovery\"".into(),
        ))),
    }
}

/// `LoginOutcome` as JavaScript sees it (a typed struct rather than `serde_json::json!`, which
/// would pull `serde_json::Value` and its number formatting into the wasm).
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum JsLoginOutcome<'a> {
    SignedIn,
    SecondFactorRequired {
        challenge: &'a str,
        methods: &'a [SecondFactor],
        expires_at: i64,
    },
}

type Inner = Client<WebTransport, JsStore>;

/// The high-level client.
#[wasm_bindgen]
pub struct SecureChatClient {
    inner: Rc<Mutex<Inner>>,
    listeners: Rc<RefCell<Vec<Function>>>,
    /// Set by `disconnect()`: the reconnect loop stops.
    stopped: Rc<RefCell<bool>>,
}

fn emit(listeners: &Rc<RefCell<Vec<Function>>>, events: &[Event]) {
    let listeners = listeners.borrow().clone();
    for event in events {
        let Ok(value) = to_js(event) else { continue };
        for f in &listeners {
            // A listener that throws must not stop the others or the client.
            let _ = f.call1(&JsValue::NULL, &value);
        }
    }
}

fn jitter(max: u64) -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0;
    }
    u64::from_le_bytes(b) % max.max(1)
}

async fn run_socket(
    inner: Rc<Mutex<Inner>>,
    listeners: Rc<RefCell<Vec<Function>>>,
    stopped: Rc<RefCell<bool>>,
    mut socket: WebReceiver,
) {
    let mut backoff: u64 = 500;
    loop {
        let event = socket.recv().await;
        let events = {
            let mut client = inner.lock().await;
            client.handle(event).await
        };
        let events = match events {
            Ok(events) => events,
            Err(e) => {
                // A storage failure while handling a frame: the envelope was not acked and
                // comes again; report the connection as offline and reconnect.
                let _ = e;
                vec![Event::Connection {
                    state: ConnectionState::Offline,
                }]
            }
        };
        emit(&listeners, &events);
        if events.iter().any(|e| {
            matches!(
                e,
                Event::Connection {
                    state: ConnectionState::Stopped
                }
            )
        }) {
            return;
        }
        let connected = inner.lock().await.is_connected();
        if connected {
            if events.iter().any(|e| {
                matches!(
                    e,
                    Event::Connection {
                        state: ConnectionState::Online
                    }
                )
            }) {
                backoff = 500;
            }
            continue;
        }
        // Reconnect with exponential back-off and jitter until it works or the app stops it.
        loop {
            if *stopped.borrow() {
                return;
            }
            let wait = backoff + jitter(backoff);
            let transport = inner.lock().await.transport().clone();
            transport.sleep(wait).await;
            if *stopped.borrow() {
                return;
            }
            emit(
                &listeners,
                &[Event::Connection {
                    state: ConnectionState::Connecting,
                }],
            );
            let attempt = inner.lock().await.connect().await;
            match attempt {
                Ok(s) => {
                    socket = s;
                    emit(
                        &listeners,
                        &[Event::Connection {
                            state: ConnectionState::Syncing,
                        }],
                    );
                    break;
                }
                Err(e) if e.code() == ErrorCode::Unauthorized => {
                    emit(
                        &listeners,
                        &[Event::Connection {
                            state: ConnectionState::Stopped,
                        }],
                    );
                    return;
                }
                Err(_) => {
                    backoff = (backoff * 2).min(30_000);
                    emit(
                        &listeners,
                        &[Event::Connection {
                            state: ConnectionState::Offline,
                        }],
                    );
                }
            }
        }
    }
}

#[wasm_bindgen]
impl SecureChatClient {
    /// Opens (or with `create`, starts) the sealed store in `store` with `password`, and a
    /// client for the relay at `relayUrl` (`""`: this page's origin). With
    /// `{remember: true}` the store also keeps the storage key wrapped by a new
    /// non-extractable WebCrypto key ("remember me", see `openRemembered`).
    #[wasm_bindgen(unchecked_return_type = "Promise<SecureChatClient>")]
    pub fn open(
        relay_url: String,
        store: JsRawStore,
        password: String,
        create: bool,
        options: Option<JsOpenOptions>,
    ) -> Promise {
        future_to_promise(async move {
            let remember = options
                .and_then(|o| Reflect::get(&o, &JsValue::from_str("remember")).ok())
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            let handle = JsValue::clone(&store);
            // Refused before anything is created: a failed `create` must not leave a store.
            if remember && !device_key::supported(&handle) {
                return Err(js_error(&ClientError::InvalidArgument(
                    "this store cannot keep a device key (it needs getKey, putKey and deleteKey)"
                        .into(),
                )));
            }
            let raw = JsStore(store);
            let (sealed, key) = if create {
                SealedStore::create_returning_key(raw, &password, KdfParams::RECOMMENDED).await
            } else {
                SealedStore::open_returning_key(raw, &password).await
            }
            .map_err(|e| js_error(&e))?;
            if remember {
                let wrap = device_key::wrap(&handle, &key)
                    .await
                    .map_err(|e| js_error(&e))?;
                sealed
                    .set_platform_wrap(Some(&wrap))
                    .await
                    .map_err(|e| js_error(&e))?;
            }
            drop(key);
            Self::with_store(&relay_url, sealed).await
        })
    }

    /// Opens a store that `open(..., {remember: true})` remembered, without the password.
    /// Rejects with `wrong_password` when this device is not remembered (or was forgotten, or
    /// the store's device key did not make the wrap): ask for the password then.
    #[wasm_bindgen(js_name = openRemembered, unchecked_return_type = "Promise<SecureChatClient>")]
    pub fn open_remembered(relay_url: String, store: JsRawStore) -> Promise {
        future_to_promise(async move {
            let handle = JsValue::clone(&store);
            let raw = JsStore(store);
            let wrap = SealedStore::platform_wrap(&raw)
                .await
                .map_err(|e| js_error(&e))?
                .ok_or_else(|| js_error(&ClientError::WrongPassword))?;
            let key = device_key::unwrap(&handle, &wrap)
                .await
                .map_err(|e| js_error(&e))?;
            let sealed = SealedStore::open_with_key(raw, &key)
                .await
                .map_err(|e| js_error(&e))?;
            drop(key);
            Self::with_store(&relay_url, sealed).await
        })
    }

    /// Whether `store` is remembered on this device (`openRemembered` can open it).
    #[wasm_bindgen(js_name = isRemembered, unchecked_return_type = "Promise<boolean>")]
    pub fn is_remembered(store: JsRawStore) -> Promise {
        future_to_promise(async move {
            let handle = JsValue::clone(&store);
            let raw = JsStore(store);
            if !SealedStore::exists(&raw).await.map_err(|e| js_error(&e))? {
                return Ok(JsValue::FALSE);
            }
            let wrapped = SealedStore::platform_wrap(&raw)
                .await
                .map_err(|e| js_error(&e))?
                .is_some();
            let kept = device_key::exists(&handle)
                .await
                .map_err(|e| js_error(&e))?;
            Ok(JsValue::from_bool(wrapped && kept))
        })
    }

    /// Forgets this device: removes the wrapped storage key and the device key, so that only
    /// the password opens `store` again.
    #[wasm_bindgen(js_name = forgetDevice, unchecked_return_type = "Promise<void>")]
    pub fn forget_device(store: JsRawStore) -> Promise {
        future_to_promise(async move {
            let handle = JsValue::clone(&store);
            let raw = JsStore(store);
            SealedStore::clear_platform_wrap(&raw)
                .await
                .map_err(|e| js_error(&e))?;
            device_key::forget(&handle)
                .await
                .map_err(|e| js_error(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Calls `listener` with every event.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: ClientEvent) => void")] listener: Function,
    ) {
        self.listeners.borrow_mut().push(listener);
    }

    /// Creates an account on the relay.
    #[wasm_bindgen(unchecked_return_type = "Promise<AccountCreated>")]
    pub fn register(
        &self,
        email: String,
        password: String,
        ms_id: String,
        display_name: String,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let c = inner.lock().await;
            result(c.register(&email, &password, &ms_id, &display_name).await)
        })
    }

    /// Whether an ms_id is free.
    #[wasm_bindgen(js_name = checkMsId, unchecked_return_type = "Promise<MsIdAvailability>")]
    pub fn check_ms_id(&self, ms_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let c = inner.lock().await;
            result(c.check_ms_id(&ms_id).await)
        })
    }

    /// Signs in with e-mail and password.
    #[wasm_bindgen(unchecked_return_type = "Promise<LoginOutcome>")]
    pub fn login(&self, email: String, password: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut c = inner.lock().await;
            let outcome = c.login(&email, &password).await.map_err(|e| js_error(&e))?;
            to_js(&match &outcome {
                crate::LoginOutcome::SignedIn => JsLoginOutcome::SignedIn,
                crate::LoginOutcome::SecondFactorRequired {
                    challenge,
                    methods,
                    expires_at,
                } => JsLoginOutcome::SecondFactorRequired {
                    challenge,
                    methods,
                    expires_at: *expires_at,
                },
            })
        })
    }

    /// Answers a login challenge with a second factor (`totp`, `email`, `recovery`).
    #[wasm_bindgen(js_name = completeSecondFactor, unchecked_return_type = "Promise<void>")]
    pub fn complete_second_factor(
        &self,
        challenge: String,
        method: String,
        code: String,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let method = second_factor(&method)?;
            let mut c = inner.lock().await;
            result(c.complete_second_factor(&challenge, method, &code).await)
        })
    }

    /// Signs out (the store keeps keys and history).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn logout(&self) -> Promise {
        let inner = self.inner.clone();
        *self.stopped.borrow_mut() = true;
        future_to_promise(async move {
            let mut c = inner.lock().await;
            result(c.logout().await)
        })
    }

    /// The signed-in account.
    #[wasm_bindgen(unchecked_return_type = "Promise<Me>")]
    pub fn me(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { result(inner.lock().await.me().await) })
    }

    /// Registers this device on first use; tops up prekeys later. The relay adds a device
    /// only within 10 minutes of a sign-in; later, pass `{password, method?, code?}` (it
    /// rejects with `reauth_required` otherwise).
    #[wasm_bindgen(js_name = ensureDevice, unchecked_return_type = "Promise<number>")]
    pub fn ensure_device(
        &self,
        name: String,
        #[wasm_bindgen(unchecked_optional_param_type = "Reauth")] reauth: Option<Object>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let reauth = match reauth {
                Some(r) => Some(reauth_from(&r)?),
                None => None,
            };
            result(
                inner
                    .lock()
                    .await
                    .ensure_device_with(&name, reauth.as_ref())
                    .await,
            )
        })
    }

    /// Connects and keeps the connection up (back-off with jitter) until `disconnect()`,
    /// sign-out, or a close that forbids reconnecting (4001, 4004).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn connect(&self) -> Promise {
        let inner = self.inner.clone();
        let listeners = self.listeners.clone();
        let stopped = self.stopped.clone();
        *stopped.borrow_mut() = false;
        future_to_promise(async move {
            emit(
                &listeners,
                &[Event::Connection {
                    state: ConnectionState::Connecting,
                }],
            );
            let socket = inner
                .lock()
                .await
                .connect()
                .await
                .map_err(|e| js_error(&e))?;
            emit(
                &listeners,
                &[Event::Connection {
                    state: ConnectionState::Syncing,
                }],
            );
            spawn_local(run_socket(inner, listeners, stopped, socket));
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Closes the connection and stops reconnecting.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn disconnect(&self) -> Promise {
        let inner = self.inner.clone();
        *self.stopped.borrow_mut() = true;
        future_to_promise(async move {
            inner.lock().await.disconnect();
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Sends a text to a friend; resolves with the stored message (status `pending`).
    #[wasm_bindgen(js_name = sendText, unchecked_return_type = "Promise<Message>")]
    pub fn send_text(&self, to_user: f64, text: String) -> Promise {
        let inner = self.inner.clone();
        let listeners = self.listeners.clone();
        future_to_promise(async move {
            let to_user = user_id(to_user)?;
            let (message, events) = inner
                .lock()
                .await
                .send_text(to_user, &text)
                .await
                .map_err(|e| js_error(&e))?;
            emit(&listeners, &events);
            to_js(&message)
        })
    }

    /// Tells a friend this user is typing (or stopped).
    #[wasm_bindgen(js_name = sendTyping, unchecked_return_type = "Promise<void>")]
    pub fn send_typing(&self, to_user: f64, typing: bool) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let to_user = user_id(to_user)?;
            result(inner.lock().await.send_typing(to_user, typing))
        })
    }

    /// The friend list.
    #[wasm_bindgen(unchecked_return_type = "Promise<Friend[]>")]
    pub fn friends(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { result(inner.lock().await.friends().await) })
    }

    /// Pending friend requests both ways.
    #[wasm_bindgen(js_name = friendRequests, unchecked_return_type = "Promise<FriendRequests>")]
    pub fn friend_requests(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { result(inner.lock().await.friend_requests().await) })
    }

    /// Sends a friend request by ms_id.
    #[wasm_bindgen(js_name = sendFriendRequest, unchecked_return_type = "Promise<void>")]
    pub fn send_friend_request(&self, ms_id: String, note: Option<String>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            result(
                inner
                    .lock()
                    .await
                    .send_friend_request(&ms_id, note.as_deref())
                    .await,
            )
        })
    }

    /// Accepts an incoming friend request.
    #[wasm_bindgen(js_name = acceptFriendRequest, unchecked_return_type = "Promise<void>")]
    pub fn accept_friend_request(&self, id: f64) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id = user_id(id)?;
            result(inner.lock().await.accept_friend_request(id).await)
        })
    }

    /// The conversations, most recent first, as `[conversation, summary]` pairs.
    #[wasm_bindgen(unchecked_return_type = "Promise<[Conversation, ConversationSummary][]>")]
    pub fn conversations(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { result(inner.lock().await.conversations().await) })
    }

    /// Up to `limit` messages before message number `before` (the latest when omitted).
    #[wasm_bindgen(unchecked_return_type = "Promise<Message[]>")]
    pub fn history(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Conversation")] conversation_: JsValue,
        limit: u32,
        before: Option<f64>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let conv = conversation(&conversation_)?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let before = before.filter(|b| *b >= 0.0).map(|b| b as u64);
            result(
                inner
                    .lock()
                    .await
                    .history(conv, u64::from(limit), before)
                    .await,
            )
        })
    }

    /// Starts TOTP setup (needs the password).
    #[wasm_bindgen(js_name = totpSetup, unchecked_return_type = "Promise<TotpSetup>")]
    pub fn totp_setup(&self, password: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let reauth = Reauth {
                password,
                method: None,
                code: None,
            };
            result(inner.lock().await.totp_setup(&reauth).await)
        })
    }

    /// Turns TOTP on with a first code; resolves with the recovery codes (shown once) or null.
    #[wasm_bindgen(js_name = totpActivate, unchecked_return_type = "Promise<string[] | null>")]
    pub fn totp_activate(&self, code: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { result(inner.lock().await.totp_activate(&code).await) })
    }
}

#[wasm_bindgen]
impl SecureChatClient {
    /// Creates a room (its name, if given, is readable by the relay).
    #[wasm_bindgen(js_name = createRoom, unchecked_return_type = "Promise<Room>")]
    pub fn create_room(&self, name: Option<String>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(
            async move { result(inner.lock().await.create_room(name.as_deref()).await) },
        )
    }

    /// The rooms this user joined or is invited to.
    #[wasm_bindgen(unchecked_return_type = "Promise<Room[]>")]
    pub fn rooms(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { result(inner.lock().await.rooms().await) })
    }

    /// Invites a friend (by ms_id) to a room.
    #[wasm_bindgen(js_name = inviteToRoom, unchecked_return_type = "Promise<void>")]
    pub fn invite_to_room(&self, room: f64, ms_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let room = user_id(room)?;
            result(inner.lock().await.invite_to_room(room, &ms_id).await)
        })
    }

    /// Accepts an invitation.
    #[wasm_bindgen(js_name = joinRoom, unchecked_return_type = "Promise<void>")]
    pub fn join_room(&self, room: f64) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let room = user_id(room)?;
            result(inner.lock().await.join_room(room).await)
        })
    }

    /// Leaves a room.
    #[wasm_bindgen(js_name = leaveRoom, unchecked_return_type = "Promise<void>")]
    pub fn leave_room(&self, room: f64) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let room = user_id(room)?;
            result(inner.lock().await.leave_room(room).await)
        })
    }

    /// Renames a room (admins only; `null` removes the name, which the relay can read).
    #[wasm_bindgen(js_name = renameRoom, unchecked_return_type = "Promise<Room>")]
    pub fn rename_room(&self, room: f64, name: Option<String>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let room = user_id(room)?;
            result(inner.lock().await.rename_room(room, name.as_deref()).await)
        })
    }

    /// Removes a member from a room (admins only).
    #[wasm_bindgen(js_name = removeRoomMember, unchecked_return_type = "Promise<void>")]
    pub fn remove_room_member(&self, room: f64, member: f64) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let (room, member) = (user_id(room)?, user_id(member)?);
            result(inner.lock().await.remove_room_member(room, member).await)
        })
    }

    /// Makes a joined member admin (`true`) or a member again (`false`); admins only.
    #[wasm_bindgen(js_name = setRoomAdmin, unchecked_return_type = "Promise<void>")]
    pub fn set_room_admin(&self, room: f64, member: f64, admin: bool) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let (room, member) = (user_id(room)?, user_id(member)?);
            result(inner.lock().await.set_room_admin(room, member, admin).await)
        })
    }

    /// Deletes a room for everyone (admins only).
    #[wasm_bindgen(js_name = deleteRoom, unchecked_return_type = "Promise<void>")]
    pub fn delete_room(&self, room: f64) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let room = user_id(room)?;
            result(inner.lock().await.delete_room(room).await)
        })
    }

    /// The members of a room.
    #[wasm_bindgen(js_name = roomMembers, unchecked_return_type = "Promise<RoomMember[]>")]
    pub fn room_members(&self, room: f64) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let room = user_id(room)?;
            result(inner.lock().await.room_members(room).await)
        })
    }

    /// Sends a text to a room; resolves with the stored message (status `pending`).
    #[wasm_bindgen(js_name = sendRoomText, unchecked_return_type = "Promise<Message>")]
    pub fn send_room_text(&self, room: f64, text: String) -> Promise {
        let inner = self.inner.clone();
        let listeners = self.listeners.clone();
        future_to_promise(async move {
            let room = user_id(room)?;
            let (message, events) = inner
                .lock()
                .await
                .send_room_text(room, &text)
                .await
                .map_err(|e| js_error(&e))?;
            emit(&listeners, &events);
            to_js(&message)
        })
    }
}

#[wasm_bindgen]
impl SecureChatClient {
    /// Encrypts and uploads bytes; resolves with the reference to send. `onProgress(sent,
    /// total)` is called as the ciphertext leaves (browsers; Node reports once at the end).
    /// Messages keep flowing meanwhile.
    #[wasm_bindgen(js_name = uploadAttachment, unchecked_return_type = "Promise<AttachmentRef>")]
    pub fn upload_attachment(
        &self,
        data: Vec<u8>,
        mime: String,
        name: String,
        #[wasm_bindgen(unchecked_optional_param_type = "(sent: number, total: number) => void")]
        on_progress: Option<Function>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let attachments = inner.lock().await.attachments();
            let mut progress = progress_callback(on_progress);
            result(
                attachments
                    .upload_with_progress(&data, &mime, &name, &mut progress)
                    .await,
            )
        })
    }

    /// Encrypts and uploads a `Blob` or `File`, reading it in 1 MiB slices (the whole file
    /// is never in memory at once); resolves with the reference to send. `onProgress(sent,
    /// total)` as for `uploadAttachment`.
    #[wasm_bindgen(js_name = uploadFile, unchecked_return_type = "Promise<AttachmentRef>")]
    pub fn upload_file(
        &self,
        file: web_sys::Blob,
        mime: String,
        name: String,
        #[wasm_bindgen(unchecked_optional_param_type = "(sent: number, total: number) => void")]
        on_progress: Option<Function>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let attachments = inner.lock().await.attachments();
            // A Blob's size is an exact integer below 2^53.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let size = file.size().max(0.0) as u64;
            let read = |offset: u64, len: usize| {
                let end = offset.saturating_add(len as u64);
                #[allow(clippy::cast_precision_loss)]
                let slice = file.slice_with_f64_and_f64(offset as f64, end as f64);
                async move {
                    let unreadable =
                        |_| ClientError::InvalidArgument("the file cannot be read".into());
                    let buffer = JsFuture::from(slice.map_err(unreadable)?.array_buffer())
                        .await
                        .map_err(unreadable)?;
                    Ok(Zeroizing::new(Uint8Array::new(&buffer).to_vec()))
                }
            };
            let mut progress = progress_callback(on_progress);
            result(
                attachments
                    .upload_from(size, &mime, &name, read, &mut progress)
                    .await,
            )
        })
    }

    /// Sends an uploaded attachment with a caption to `{user}` or `{room}`.
    #[wasm_bindgen(js_name = sendAttachment, unchecked_return_type = "Promise<Message>")]
    pub fn send_attachment(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Conversation")] conversation_: JsValue,
        #[wasm_bindgen(unchecked_param_type = "AttachmentRef")] attachment: JsValue,
        caption: String,
    ) -> Promise {
        let inner = self.inner.clone();
        let listeners = self.listeners.clone();
        future_to_promise(async move {
            let conv = conversation(&conversation_)?;
            let attachment = attachment_ref(&attachment)?;
            let (message, events) = inner
                .lock()
                .await
                .send_attachment(conv, attachment, &caption)
                .await
                .map_err(|e| js_error(&e))?;
            emit(&listeners, &events);
            to_js(&message)
        })
    }

    /// Downloads, checks and decrypts an attachment.
    #[wasm_bindgen(js_name = downloadAttachment, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn download_attachment(
        &self,
        #[wasm_bindgen(unchecked_param_type = "AttachmentRef")] attachment: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let attachment = attachment_ref(&attachment)?;
            let attachments = inner.lock().await.attachments();
            let data = attachments
                .download(&attachment)
                .await
                .map_err(|e| js_error(&e))?;
            Ok(Uint8Array::from(data.as_slice()).into())
        })
    }
}

/// `onProgress(sent, total)` from JavaScript as a Rust callback (what it throws is ignored).
fn progress_callback(function: Option<Function>) -> impl FnMut(u64, u64) {
    move |sent, total| {
        if let Some(f) = &function {
            #[allow(clippy::cast_precision_loss)]
            let _ = f.call2(
                &JsValue::NULL,
                &JsValue::from_f64(sent as f64),
                &JsValue::from_f64(total as f64),
            );
        }
    }
}

fn attachment_ref(value: &JsValue) -> Result<crate::payload::AttachmentRef, JsValue> {
    let json = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default();
    serde_json::from_str(&json).map_err(|e| {
        js_error(&ClientError::InvalidArgument(format!(
            "not an attachment reference: {e}"
        )))
    })
}

/// Runs `$call` on the locked client and resolves with its result as a plain object.
macro_rules! call {
    ($self:ident, |$c:ident| $call:expr) => {{
        let inner = $self.inner.clone();
        future_to_promise(async move {
            #[allow(unused_mut)]
            let mut $c = inner.lock().await;
            result($call.await)
        })
    }};
}

fn reauth_from(value: &JsValue) -> Result<Reauth, JsValue> {
    let json = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default();
    serde_json::from_str(&json).map_err(|e| {
        js_error(&ClientError::InvalidArgument(format!(
            "expected {{password, method?, code?}}: {e}"
        )))
    })
}

#[derive(Serialize)]
struct SafetyNumberView {
    digits: String,
    display: String,
    qr_base64: String,
}

#[wasm_bindgen]
impl SecureChatClient {
    /// Mails a login code for a challenge (accounts with e-mail 2FA).
    #[wasm_bindgen(js_name = sendLoginEmailCode, unchecked_return_type = "Promise<void>")]
    pub fn send_login_email_code(&self, challenge: String) -> Promise {
        call!(self, |c| c.send_login_email_code(&challenge))
    }

    /// The account's signed-in sessions.
    #[wasm_bindgen(unchecked_return_type = "Promise<SessionInfo[]>")]
    pub fn sessions(&self) -> Promise {
        call!(self, |c| c.sessions())
    }

    /// Revokes a session.
    #[wasm_bindgen(js_name = revokeSession, unchecked_return_type = "Promise<void>")]
    pub fn revoke_session(&self, id: f64) -> Promise {
        let id = user_id(id);
        call!(self, |c| async {
            c.revoke_session(id.map_err(|_| bad_id())?).await
        })
    }

    /// This account's devices.
    #[wasm_bindgen(js_name = ownDevices, unchecked_return_type = "Promise<OwnDevice[]>")]
    pub fn own_devices(&self) -> Promise {
        call!(self, |c| c.own_devices())
    }

    /// Changes the account password and re-wraps the local store under it.
    #[wasm_bindgen(js_name = changePassword, unchecked_return_type = "Promise<void>")]
    pub fn change_password(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Reauth")] auth: JsValue,
        new_password: String,
    ) -> Promise {
        let auth = reauth_from(&auth);
        call!(self, |c| async {
            let auth = auth.map_err(|_| bad_reauth())?;
            c.change_password(&auth, &new_password, KdfParams::RECOMMENDED)
                .await
        })
    }

    /// Changes the ms_id.
    #[wasm_bindgen(js_name = changeMsId, unchecked_return_type = "Promise<Me>")]
    pub fn change_ms_id(&self, ms_id: String) -> Promise {
        call!(self, |c| c.change_ms_id(&ms_id))
    }

    /// Asks to change the e-mail address (a code goes to the new address; the account is
    /// unchanged until `confirmEmailChange`).
    #[wasm_bindgen(js_name = changeEmail, unchecked_return_type = "Promise<Me>")]
    pub fn change_email(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Reauth")] auth: JsValue,
        new_email: String,
    ) -> Promise {
        let auth = reauth_from(&auth);
        call!(self, |c| async {
            let auth = auth.map_err(|_| bad_reauth())?;
            c.change_email(&auth, &new_email).await
        })
    }

    /// Turns TOTP off.
    #[wasm_bindgen(js_name = totpDisable, unchecked_return_type = "Promise<void>")]
    pub fn totp_disable(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Reauth")] auth: JsValue,
    ) -> Promise {
        let auth = reauth_from(&auth);
        call!(self, |c| async {
            c.totp_disable(&auth.map_err(|_| bad_reauth())?).await
        })
    }

    /// Mails a security code (re-authentication, turning e-mail 2FA on).
    #[wasm_bindgen(js_name = sendEmailCode, unchecked_return_type = "Promise<void>")]
    pub fn send_email_code(&self) -> Promise {
        call!(self, |c| c.send_email_code())
    }

    /// Turns e-mail codes on; resolves with new recovery codes or null.
    #[wasm_bindgen(js_name = email2faEnable, unchecked_return_type = "Promise<string[] | null>")]
    pub fn email_2fa_enable(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Reauth")] auth: JsValue,
        email_code: String,
    ) -> Promise {
        let auth = reauth_from(&auth);
        call!(self, |c| async {
            c.email_2fa_enable(&auth.map_err(|_| bad_reauth())?, &email_code)
                .await
        })
    }

    /// Turns e-mail codes off.
    #[wasm_bindgen(js_name = email2faDisable, unchecked_return_type = "Promise<void>")]
    pub fn email_2fa_disable(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Reauth")] auth: JsValue,
    ) -> Promise {
        let auth = reauth_from(&auth);
        call!(self, |c| async {
            c.email_2fa_disable(&auth.map_err(|_| bad_reauth())?).await
        })
    }

    /// Replaces the recovery codes; resolves with the new ones.
    #[wasm_bindgen(js_name = regenerateRecoveryCodes, unchecked_return_type = "Promise<string[]>")]
    pub fn regenerate_recovery_codes(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Reauth")] auth: JsValue,
    ) -> Promise {
        let auth = reauth_from(&auth);
        call!(self, |c| async {
            c.regenerate_recovery_codes(&auth.map_err(|_| bad_reauth())?)
                .await
        })
    }

    /// Mails a code that confirms the address.
    #[wasm_bindgen(js_name = sendEmailVerification, unchecked_return_type = "Promise<void>")]
    pub fn send_email_verification(&self) -> Promise {
        call!(self, |c| c.send_email_verification())
    }

    /// Confirms the address with the mailed code.
    #[wasm_bindgen(js_name = confirmEmail, unchecked_return_type = "Promise<void>")]
    pub fn confirm_email(&self, code: String) -> Promise {
        call!(self, |c| c.confirm_email(&code))
    }

    /// Completes an e-mail address change with the code mailed to the new address.
    #[wasm_bindgen(js_name = confirmEmailChange, unchecked_return_type = "Promise<Me>")]
    pub fn confirm_email_change(&self, code: String) -> Promise {
        call!(self, |c| c.confirm_email_change(&code))
    }

    /// The account's security events.
    #[wasm_bindgen(js_name = securityEvents, unchecked_return_type = "Promise<SecurityEvent[]>")]
    pub fn security_events(&self) -> Promise {
        call!(self, |c| c.security_events())
    }

    /// Deletes the account on the relay.
    #[wasm_bindgen(js_name = deleteAccount, unchecked_return_type = "Promise<void>")]
    pub fn delete_account(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Reauth")] auth: JsValue,
    ) -> Promise {
        let auth = reauth_from(&auth);
        *self.stopped.borrow_mut() = true;
        call!(self, |c| async {
            c.delete_account(&auth.map_err(|_| bad_reauth())?).await
        })
    }

    /// A user's public profile.
    #[wasm_bindgen(unchecked_return_type = "Promise<Profile>")]
    pub fn profile(&self, ms_id: String) -> Promise {
        call!(self, |c| c.profile(&ms_id))
    }

    /// Declines an incoming friend request.
    #[wasm_bindgen(js_name = declineFriendRequest, unchecked_return_type = "Promise<void>")]
    pub fn decline_friend_request(&self, id: f64) -> Promise {
        let id = user_id(id);
        call!(self, |c| async {
            c.decline_friend_request(id.map_err(|_| bad_id())?).await
        })
    }

    /// Cancels an outgoing friend request.
    #[wasm_bindgen(js_name = cancelFriendRequest, unchecked_return_type = "Promise<void>")]
    pub fn cancel_friend_request(&self, id: f64) -> Promise {
        let id = user_id(id);
        call!(self, |c| async {
            c.cancel_friend_request(id.map_err(|_| bad_id())?).await
        })
    }

    /// Ends a friendship.
    #[wasm_bindgen(js_name = removeFriend, unchecked_return_type = "Promise<void>")]
    pub fn remove_friend(&self, ms_id: String) -> Promise {
        call!(self, |c| c.remove_friend(&ms_id))
    }

    /// Blocks a user.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn block(&self, ms_id: String) -> Promise {
        call!(self, |c| c.block(&ms_id))
    }

    /// Lifts a block.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn unblock(&self, ms_id: String) -> Promise {
        call!(self, |c| c.unblock(&ms_id))
    }

    /// The users this account blocked.
    #[wasm_bindgen(unchecked_return_type = "Promise<Blocked[]>")]
    pub fn blocks(&self) -> Promise {
        call!(self, |c| c.blocks())
    }

    /// Declines a room invitation.
    #[wasm_bindgen(js_name = declineRoom, unchecked_return_type = "Promise<void>")]
    pub fn decline_room(&self, room: f64) -> Promise {
        let room = user_id(room);
        call!(self, |c| async {
            c.decline_room(room.map_err(|_| bad_id())?).await
        })
    }

    /// Marks a conversation read.
    #[wasm_bindgen(js_name = markRead, unchecked_return_type = "Promise<void>")]
    pub fn mark_read(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Conversation")] conversation_: JsValue,
    ) -> Promise {
        let conv = conversation(&conversation_);
        call!(self, |c| async {
            c.mark_read(conv.map_err(|_| bad_argument("conversation"))?)
                .await
        })
    }

    /// Marks a user verified (after comparing safety numbers) or not.
    #[wasm_bindgen(js_name = markVerified, unchecked_return_type = "Promise<void>")]
    pub fn mark_verified(&self, user: f64, verified: bool) -> Promise {
        let user = user_id(user);
        call!(self, |c| async {
            c.mark_verified(user.map_err(|_| bad_id())?, verified).await
        })
    }

    /// Accepts a contact's new device keys (their messages are no longer flagged).
    #[wasm_bindgen(js_name = acceptIdentity, unchecked_return_type = "Promise<void>")]
    pub fn accept_identity(&self, user: f64) -> Promise {
        let user = user_id(user);
        call!(self, |c| async {
            c.accept_identity(user.map_err(|_| bad_id())?).await
        })
    }

    /// The safety number with one of a contact's devices: 60 digits, grouped for display, and
    /// the QR payload (base64).
    #[wasm_bindgen(js_name = safetyNumber, unchecked_return_type = "Promise<SafetyNumberView>")]
    pub fn safety_number(&self, user: f64, device: f64) -> Promise {
        let ids = user_id(user).and_then(|u| Ok((u, user_id(device)?)));
        call!(self, |c| async {
            let (user, device) = ids.map_err(|_| bad_id())?;
            let n = c.safety_number(user, device).await?;
            Ok::<_, ClientError>(SafetyNumberView {
                digits: n.digits().to_owned(),
                display: n.display(),
                qr_base64: base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    n.qr_payload(),
                ),
            })
        })
    }
}

fn bad_id() -> ClientError {
    ClientError::InvalidArgument("ids are positive integers".into())
}

fn bad_reauth() -> ClientError {
    ClientError::InvalidArgument("expected {password, method?, code?}".into())
}

fn bad_argument(what: &str) -> ClientError {
    ClientError::InvalidArgument(format!("invalid {what}"))
}

impl SecureChatClient {
    async fn with_store(relay_url: &str, sealed: SealedStore<JsStore>) -> Result<JsValue, JsValue> {
        let client = Client::new(WebTransport::new(relay_url), sealed)
            .await
            .map_err(|e| js_error(&e))?;
        Ok(SecureChatClient {
            inner: Rc::new(Mutex::new(client)),
            listeners: Rc::new(RefCell::new(Vec::new())),
            stopped: Rc::new(RefCell::new(false)),
        }
        .into())
    }
}

fn user_id(value: f64) -> Result<i64, JsValue> {
    if value.fract() != 0.0 || !(1.0..=9_007_199_254_740_991.0).contains(&value) {
        // No `{value}`: formatting an f64 links Rust's float printing (~12 KB of wasm).
        return Err(js_error(&ClientError::InvalidArgument(
            "an id is a positive integer".into(),
        )));
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(value as i64)
}
