//! wasm-client in a real browser (headless Chromium through `wasm-bindgen-test-runner` and
//! chromedriver; `cargo xtask test` runs it):
//!
//! ```text
//! WASM_BINDGEN_USE_BROWSER=1 cargo test -p wasm-client --target wasm32-unknown-unknown --test browser
//! ```
//!
//! - The package's `IndexedDbStore` (js/stores.js) under the sealed store: what was written
//!   survives closing and reopening the database, a batch is applied all or nothing, and
//!   nothing in the database is readable (no plaintext, no logical record name).
//! - The sealed store's wrong password is a typed error, in Rust and through the JS API.
//! - "Remember me": the storage key wrapped by a non-extractable WebCrypto AES-GCM key kept in
//!   IndexedDB; reopening without the password works, another key is refused, forgetting the
//!   device leaves only the password.
//! - With a relay (`cargo xtask test` starts one and compiles its URL in through
//!   `SECURECHAT_TEST_RELAY_URL`, allowing the test page's origin): two clients of the JS API
//!   in the page sign up, become friends, connect over the browser's WebSocket and exchange a
//!   message each way through `fetch` and `WebSocket`, with CORS and the origin check on.

#![cfg(all(target_family = "wasm", target_os = "unknown"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use js_sys::{Array, Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_client::ErrorCode;
use wasm_client::bindings::{JsRawStore, JsStore, SecureChatClient};
use wasm_client::store::sealed::{KdfParams, SealedStore};

// IndexedDB and a secure-context WebCrypto: a browser, never Node.
wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(module = "/js/stores.js")]
extern "C" {
    /// The package's IndexedDB store, exactly as apps get it.
    #[derive(Clone)]
    type IndexedDbStore;

    #[wasm_bindgen(static_method_of = IndexedDbStore, js_name = open)]
    fn open_db(name: &str) -> Promise;

    #[wasm_bindgen(static_method_of = IndexedDbStore)]
    fn destroy(name: &str) -> Promise;

    #[wasm_bindgen(method)]
    fn close(this: &IndexedDbStore);

    #[wasm_bindgen(method, js_name = write)]
    fn write_js(this: &IndexedDbStore, ops: &JsValue) -> Promise;

    #[wasm_bindgen(method, js_name = getKey)]
    fn get_key(this: &IndexedDbStore, name: &str) -> Promise;

    #[wasm_bindgen(method, js_name = putKey)]
    fn put_key(this: &IndexedDbStore, name: &str, key: &JsValue) -> Promise;
}

#[wasm_bindgen(inline_js = r#"
export function uniqueName(prefix) {
  return `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
}
// Every record of the database as [key, bytes] pairs, read straight from IndexedDB.
export function dump(name) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(name);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction("records", "readonly");
      const store = tx.objectStore("records");
      const keys = store.getAllKeys();
      const values = store.getAll();
      tx.oncomplete = () => {
        db.close();
        resolve(keys.result.map((k, i) => [k, new Uint8Array(values.result[i])]));
      };
      tx.onerror = () => reject(tx.error);
    };
  });
}
// Two good puts, then one whose value IndexedDB cannot store (a function).
export function badBatch() {
  return [
    { put: "a", value: new Uint8Array([1]) },
    { put: "b", value: new Uint8Array([2]) },
    { put: "c", value: () => 3 },
  ];
}
export function shortId() {
  return Math.random().toString(36).slice(2, 10);
}
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
// Calls obj[name](...args) and returns what it returns (a Promise for the client's methods).
export function call(obj, name, args) {
  return obj[name](...args);
}
// Collects a client's events into an array.
export function listen(client) {
  const events = [];
  client.onEvent((e) => events.push(e));
  return events;
}
// A file of `n` pseudo-random bytes (a marker inside) and a recorder of progress calls.
export function testFile(n, marker) {
  const bytes = new Uint8Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; bytes[i] = x & 0xff; }
  bytes.set(new TextEncoder().encode(marker), Math.floor(n / 2));
  return { file: new File([bytes], "photo.bin", { type: "application/octet-stream" }), bytes };
}
export function progressRecorder() {
  const calls = [];
  return { calls, record: (sent, total) => calls.push([sent, total]) };
}
export function newAesKey() {
  return crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}
export async function describeKey(key) {
  let exported = true;
  try { await crypto.subtle.exportKey("raw", key); } catch (_) { exported = false; }
  return { isCryptoKey: key instanceof CryptoKey, extractable: key.extractable, algorithm: key.algorithm.name, length: key.algorithm.length, exported };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = uniqueName)]
    fn unique_name(prefix: &str) -> String;
    fn dump(name: &str) -> Promise;
    #[wasm_bindgen(js_name = badBatch)]
    fn bad_batch() -> JsValue;
    #[wasm_bindgen(js_name = shortId)]
    fn short_id() -> String;
    fn sleep(ms: u32) -> Promise;
    #[wasm_bindgen(catch)]
    fn call(obj: &JsValue, name: &str, args: Array) -> Result<JsValue, JsValue>;
    fn listen(client: &JsValue) -> Array;
    #[wasm_bindgen(js_name = testFile)]
    fn test_file(n: u32, marker: &str) -> JsValue;
    #[wasm_bindgen(js_name = progressRecorder)]
    fn progress_recorder() -> JsValue;
    #[wasm_bindgen(js_name = newAesKey)]
    fn new_aes_key() -> Promise;
    #[wasm_bindgen(js_name = describeKey)]
    fn describe_key(key: &JsValue) -> Promise;
}

/// No relay is contacted by these tests (opening a client reads only the store).
const NO_RELAY: &str = "http://127.0.0.1:9";

async fn wait(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

async fn open_idb(name: &str) -> IndexedDbStore {
    wait(IndexedDbStore::open_db(name))
        .await
        .unwrap()
        .unchecked_into()
}

fn raw(store: &IndexedDbStore) -> JsRawStore {
    store.clone().unchecked_into()
}

fn sealed_over(store: &IndexedDbStore) -> JsStore {
    JsStore::new(raw(store))
}

fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap()
}

fn error_code(error: &JsValue) -> String {
    assert_eq!(
        get(error, "name").as_string().as_deref(),
        Some("SecureChatError"),
        "{error:?}"
    );
    get(error, "code").as_string().unwrap()
}

/// Every (key, bytes) pair stored in database `name`.
async fn records(name: &str) -> Vec<(String, Vec<u8>)> {
    let all: Array = wait(dump(name)).await.unwrap().unchecked_into();
    all.iter()
        .map(|pair| {
            let pair: Array = pair.unchecked_into();
            let key = pair.get(0).as_string().unwrap();
            let bytes: Uint8Array = pair.get(1).unchecked_into();
            (key, bytes.to_vec())
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[wasm_bindgen_test]
async fn indexeddb_store_survives_reopening_and_holds_nothing_readable() {
    let name = unique_name("sc-reopen");
    let idb = open_idb(&name).await;
    let store = SealedStore::create(sealed_over(&idb), "local pw", KdfParams::INSECURE_FOR_TESTS)
        .await
        .unwrap();
    let mut batch = store.batch();
    batch.put("profile:alice.example", &"secret plaintext alice");
    for i in 0..50u32 {
        batch.put(
            &format!("msg:u7:{i}"),
            &format!("message number {i} to bob.example"),
        );
    }
    batch.commit().await.unwrap();
    let mut batch = store.batch();
    batch.delete("msg:u7:0");
    batch.commit().await.unwrap();
    drop(store);
    idb.close();

    // Reopened from IndexedDB: everything is there and opens with the password.
    let idb = open_idb(&name).await;
    let store = SealedStore::open(sealed_over(&idb), "local pw")
        .await
        .unwrap();
    let profile: String = store.get("profile:alice.example").await.unwrap().unwrap();
    assert_eq!(profile, "secret plaintext alice");
    assert!(store.get::<String>("msg:u7:0").await.unwrap().is_none());
    for i in 1..50u32 {
        let m: String = store.get(&format!("msg:u7:{i}")).await.unwrap().unwrap();
        assert_eq!(m, format!("message number {i} to bob.example"));
    }
    drop(store);
    idb.close();

    // At rest: 1 keyring + 50 records, every name a MAC, no plaintext and no logical name.
    let all = records(&name).await;
    assert_eq!(all.len(), 51);
    for (key, value) in &all {
        assert!(
            key == "keyring" || (key.len() == 65 && key.starts_with('r')),
            "readable record name {key}"
        );
        for secret in [
            "alice",
            "bob.example",
            "secret plaintext",
            "message number",
            "msg:",
            "profile",
        ] {
            assert!(!key.contains(secret), "{key} holds {secret}");
            assert!(
                !contains(value, secret.as_bytes()),
                "{key}'s value holds {secret}"
            );
        }
    }
    wait(IndexedDbStore::destroy(&name)).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_batch_is_applied_all_or_nothing() {
    let name = unique_name("sc-batch");
    let idb = open_idb(&name).await;
    // The third put cannot be stored: the two before it must not be either.
    let err = wait(idb.write_js(&bad_batch())).await.unwrap_err();
    assert!(!err.is_undefined());
    let raw_store = sealed_over(&idb);
    use wasm_client::store::Store as _;
    assert_eq!(raw_store.get("a").await.unwrap(), None);
    assert_eq!(raw_store.get("b").await.unwrap(), None);
    assert_eq!(raw_store.get("c").await.unwrap(), None);

    // A good batch lands whole, puts and deletes in order.
    use wasm_client::store::StoreOp;
    raw_store
        .write(vec![
            StoreOp::Put("a".into(), vec![1]),
            StoreOp::Put("b".into(), vec![2]),
            StoreOp::Delete("a".into()),
            StoreOp::Put("c".into(), vec![3; 100_000]),
        ])
        .await
        .unwrap();
    assert_eq!(raw_store.get("a").await.unwrap(), None);
    assert_eq!(raw_store.get("b").await.unwrap(), Some(vec![2]));
    assert_eq!(raw_store.get("c").await.unwrap(), Some(vec![3; 100_000]));
    idb.close();
    wait(IndexedDbStore::destroy(&name)).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_wrong_password_is_a_typed_error() {
    let name = unique_name("sc-password");
    let idb = open_idb(&name).await;
    SealedStore::create(sealed_over(&idb), "right pw", KdfParams::INSECURE_FOR_TESTS)
        .await
        .unwrap();
    let err = SealedStore::open(sealed_over(&idb), "wrong pw")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongPassword);

    // Through the JS API as an app sees it: a SecureChatError with code "wrong_password".
    let err = wait(SecureChatClient::open(
        NO_RELAY.into(),
        raw(&idb),
        "wrong pw".into(),
        false,
        None,
    ))
    .await
    .unwrap_err();
    assert_eq!(error_code(&err), "wrong_password");
    wait(SecureChatClient::open(
        NO_RELAY.into(),
        raw(&idb),
        "right pw".into(),
        false,
        None,
    ))
    .await
    .unwrap();
    idb.close();
    wait(IndexedDbStore::destroy(&name)).await.unwrap();
}

#[wasm_bindgen_test]
async fn remember_me_reopens_without_the_password_and_refuses_another_key() {
    let name = unique_name("sc-remember");
    let idb = open_idb(&name).await;
    let remember = js_sys::Object::new();
    Reflect::set(&remember, &"remember".into(), &JsValue::TRUE).unwrap();

    // Not remembered yet: openRemembered refuses, the app asks for the password.
    wait(SecureChatClient::open(
        NO_RELAY.into(),
        raw(&idb),
        "local pw".into(),
        true,
        None,
    ))
    .await
    .unwrap();
    assert_eq!(
        wait(SecureChatClient::is_remembered(raw(&idb)))
            .await
            .unwrap(),
        JsValue::FALSE
    );
    let err = wait(SecureChatClient::open_remembered(
        NO_RELAY.into(),
        raw(&idb),
    ))
    .await
    .unwrap_err();
    assert_eq!(error_code(&err), "wrong_password");

    // Signing in with "remember me".
    wait(SecureChatClient::open(
        NO_RELAY.into(),
        raw(&idb),
        "local pw".into(),
        false,
        Some(remember.clone().unchecked_into()),
    ))
    .await
    .unwrap();
    idb.close();

    // The device key is a non-extractable AES-GCM CryptoKey in IndexedDB.
    let idb = open_idb(&name).await;
    let key = wait(idb.get_key("device")).await.unwrap();
    let about = wait(describe_key(&key)).await.unwrap();
    assert_eq!(get(&about, "isCryptoKey"), JsValue::TRUE);
    assert_eq!(get(&about, "extractable"), JsValue::FALSE);
    assert_eq!(get(&about, "exported"), JsValue::FALSE);
    assert_eq!(
        get(&about, "algorithm").as_string().as_deref(),
        Some("AES-GCM")
    );
    assert_eq!(get(&about, "length").as_f64(), Some(256.0));
    // The keyring holds only an opaque wrap; nothing else readable was added.
    for (k, v) in records(&name).await {
        assert!(k == "keyring" || k.starts_with('r'));
        assert!(!contains(&v, b"local pw"));
    }

    // Reopened after closing the database, without the password.
    assert_eq!(
        wait(SecureChatClient::is_remembered(raw(&idb)))
            .await
            .unwrap(),
        JsValue::TRUE
    );
    wait(SecureChatClient::open_remembered(
        NO_RELAY.into(),
        raw(&idb),
    ))
    .await
    .unwrap();

    // Another device key (another browser profile's, or one put there by someone) is refused.
    let other = wait(new_aes_key()).await.unwrap();
    wait(idb.put_key("device", &other)).await.unwrap();
    let err = wait(SecureChatClient::open_remembered(
        NO_RELAY.into(),
        raw(&idb),
    ))
    .await
    .unwrap_err();
    assert_eq!(error_code(&err), "wrong_password");
    // A wrap made by another key is refused the same way: remember again, then restore the
    // old wrap under the new key (done here by remembering twice and swapping the keys).
    wait(SecureChatClient::open(
        NO_RELAY.into(),
        raw(&idb),
        "local pw".into(),
        false,
        Some(remember.clone().unchecked_into()),
    ))
    .await
    .unwrap();
    let first = wait(idb.get_key("device")).await.unwrap();
    wait(SecureChatClient::open(
        NO_RELAY.into(),
        raw(&idb),
        "local pw".into(),
        false,
        Some(remember.unchecked_into()),
    ))
    .await
    .unwrap();
    wait(SecureChatClient::open_remembered(
        NO_RELAY.into(),
        raw(&idb),
    ))
    .await
    .unwrap();
    wait(idb.put_key("device", &first)).await.unwrap();
    let err = wait(SecureChatClient::open_remembered(
        NO_RELAY.into(),
        raw(&idb),
    ))
    .await
    .unwrap_err();
    assert_eq!(error_code(&err), "wrong_password");

    // Forgetting the device: only the password opens the store.
    wait(SecureChatClient::forget_device(raw(&idb)))
        .await
        .unwrap();
    assert_eq!(
        wait(SecureChatClient::is_remembered(raw(&idb)))
            .await
            .unwrap(),
        JsValue::FALSE
    );
    assert!(wait(idb.get_key("device")).await.unwrap().is_undefined());
    let err = wait(SecureChatClient::open_remembered(
        NO_RELAY.into(),
        raw(&idb),
    ))
    .await
    .unwrap_err();
    assert_eq!(error_code(&err), "wrong_password");
    wait(SecureChatClient::open(
        NO_RELAY.into(),
        raw(&idb),
        "local pw".into(),
        false,
        None,
    ))
    .await
    .unwrap();
    idb.close();
    wait(IndexedDbStore::destroy(&name)).await.unwrap();
}

/// The relay `cargo xtask test` started for this build (`None`: the round trip is skipped).
const RELAY_URL: Option<&str> = option_env!("SECURECHAT_TEST_RELAY_URL");

/// `client.name(...args)`, awaited.
async fn invoke(client: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let returned = call(client, name, args.iter().cloned().collect())?;
    wait(Promise::resolve(&returned)).await
}

async fn until(events: &Array, what: &str, pred: impl Fn(&JsValue) -> bool) -> JsValue {
    for _ in 0..600 {
        if let Some(found) = events.iter().find(|e| pred(e)) {
            return found;
        }
        wait(sleep(100)).await.unwrap();
    }
    panic!(
        "timed out waiting for {what}: {:?}",
        js_sys::JSON::stringify(events)
    );
}

struct User {
    client: JsValue,
    events: Array,
    user_id: f64,
    ms_id: String,
    idb: IndexedDbStore,
    db: String,
}

async fn sign_up(relay: &str, name: &str) -> User {
    let db = unique_name(&format!("sc-{name}"));
    let idb = open_idb(&db).await;
    let client = wait(SecureChatClient::open(
        relay.into(),
        raw(&idb),
        "local pw".into(),
        true,
        None,
    ))
    .await
    .unwrap();
    let ms_id = format!("{name}{}", short_id());
    let email = JsValue::from_str(&format!("{ms_id}@example.org"));
    let password = JsValue::from_str("correct horse battery staple 42");
    let created = invoke(
        &client,
        "register",
        &[
            email.clone(),
            password.clone(),
            JsValue::from_str(&ms_id),
            JsValue::from_str(name),
        ],
    )
    .await
    .unwrap();
    let outcome = invoke(&client, "login", &[email, password]).await.unwrap();
    assert_eq!(
        get(&outcome, "status").as_string().as_deref(),
        Some("signed_in")
    );
    invoke(
        &client,
        "ensureDevice",
        &[JsValue::from_str(&format!("{name} chromium"))],
    )
    .await
    .unwrap();
    let events = listen(&client);
    User {
        client,
        events,
        user_id: get(&created, "user_id").as_f64().unwrap(),
        ms_id,
        idb,
        db,
    }
}

/// The conversation `{user}` as a plain object.
fn conversation_with(user_id: f64) -> JsValue {
    let conversation = js_sys::Object::new();
    Reflect::set(&conversation, &"user".into(), &JsValue::from_f64(user_id)).unwrap();
    conversation.into()
}

fn is(event: &JsValue, kind: &str) -> bool {
    get(event, "type").as_string().as_deref() == Some(kind)
}

#[wasm_bindgen_test]
async fn two_clients_exchange_messages_through_a_real_relay() {
    let Some(relay) = RELAY_URL else {
        // Built without a relay (not through `cargo xtask test`): nothing to talk to.
        return;
    };
    let ada = sign_up(relay, "ada").await;
    let bob = sign_up(relay, "bob").await;

    invoke(
        &bob.client,
        "sendFriendRequest",
        &[JsValue::from_str(&ada.ms_id), JsValue::NULL],
    )
    .await
    .unwrap();
    let requests = invoke(&ada.client, "friendRequests", &[]).await.unwrap();
    let incoming: Array = get(&requests, "incoming").unchecked_into();
    assert_eq!(incoming.length(), 1);
    invoke(
        &ada.client,
        "acceptFriendRequest",
        &[get(&incoming.get(0), "id")],
    )
    .await
    .unwrap();

    for user in [&ada, &bob] {
        invoke(&user.client, "connect", &[]).await.unwrap();
        until(&user.events, "online", |e| {
            is(e, "connection") && get(e, "state").as_string().as_deref() == Some("online")
        })
        .await;
    }

    let hello = format!("hello from chromium {}", short_id());
    let sent = invoke(
        &ada.client,
        "sendText",
        &[JsValue::from_f64(bob.user_id), JsValue::from_str(&hello)],
    )
    .await
    .unwrap();
    assert_eq!(get(&sent, "status").as_string().as_deref(), Some("pending"));
    let got = until(&bob.events, "ada's message", |e| {
        is(e, "message") && get(&get(e, "message"), "text").as_string().as_deref() == Some(&hello)
    })
    .await;
    assert_eq!(
        get(&get(&got, "message"), "from_user").as_f64(),
        Some(ada.user_id)
    );

    let reply = format!("reply from chromium {}", short_id());
    invoke(
        &bob.client,
        "sendText",
        &[JsValue::from_f64(ada.user_id), JsValue::from_str(&reply)],
    )
    .await
    .unwrap();
    until(&ada.events, "bob's reply", |e| {
        is(e, "message") && get(&get(e, "message"), "text").as_string().as_deref() == Some(&reply)
    })
    .await;

    // A 2.5 MiB file, uploaded from a `File` in slices with progress, and downloaded.
    let marker = format!("FILE MARKER {}", short_id());
    let file = test_file(2_621_440, &marker);
    let recorder = progress_recorder();
    let reference = invoke(
        &ada.client,
        "uploadFile",
        &[
            get(&file, "file"),
            JsValue::from_str("application/octet-stream"),
            JsValue::from_str("photo.bin"),
            get(&recorder, "record"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(get(&reference, "size").as_f64(), Some(2_621_440.0));
    let calls: Vec<(f64, f64)> = Array::from(&get(&recorder, "calls"))
        .iter()
        .map(|c| {
            let c = Array::from(&c);
            (c.get(0).as_f64().unwrap(), c.get(1).as_f64().unwrap())
        })
        .collect();
    let total = calls.last().unwrap().1;
    assert!(
        total > 2_621_440.0,
        "the ciphertext is a little larger: {calls:?}"
    );
    assert_eq!(calls.last().unwrap().0, total, "{calls:?}");
    assert!(
        calls
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 == w[1].1),
        "progress only grows: {calls:?}"
    );
    invoke(
        &ada.client,
        "sendAttachment",
        &[
            conversation_with(bob.user_id),
            reference,
            JsValue::from_str("the file"),
        ],
    )
    .await
    .unwrap();
    let got = until(&bob.events, "ada's file", |e| {
        is(e, "message")
            && get(&get(e, "message"), "text").as_string().as_deref() == Some("the file")
    })
    .await;
    let downloaded: Uint8Array = invoke(
        &bob.client,
        "downloadAttachment",
        &[get(&get(&got, "message"), "attachment")],
    )
    .await
    .unwrap()
    .unchecked_into();
    let sent_bytes: Uint8Array = get(&file, "bytes").unchecked_into();
    assert!(
        downloaded.to_vec() == sent_bytes.to_vec(),
        "the file round-trips"
    );

    // The history, read back from IndexedDB through the sealed store.
    let history: Array = invoke(
        &ada.client,
        "history",
        &[conversation_with(bob.user_id), JsValue::from_f64(10.0)],
    )
    .await
    .unwrap()
    .unchecked_into();
    let texts: Vec<String> = history
        .iter()
        .map(|m| get(&m, "text").as_string().unwrap())
        .collect();
    assert_eq!(texts, [hello.clone(), reply.clone(), "the file".to_owned()]);

    for user in [&ada, &bob] {
        invoke(&user.client, "disconnect", &[]).await.unwrap();
    }
    // Nothing readable in either browser database: no text, no ms_id.
    for user in [&ada, &bob] {
        user.idb.close();
        for (key, value) in records(&user.db).await {
            for secret in [&hello, &reply, &ada.ms_id, &bob.ms_id, &marker] {
                assert!(!key.contains(secret.as_str()), "{key} holds {secret}");
                assert!(
                    !contains(&value, secret.as_bytes()),
                    "{key}'s value holds {secret}"
                );
            }
        }
    }
}
