//! "Remember me" in a JavaScript host: the storage key wrapped by a **non-extractable WebCrypto
//! AES-GCM key** that the raw store keeps (the package's `IndexedDbStore` keeps it in
//! IndexedDB, where a `CryptoKey` is stored as an opaque object: script on the page can use it
//! to unwrap, but never read its bytes, so a copy of the wrapped blob alone opens nothing).
//!
//! The raw store provides three optional methods next to `get`/`write` (docs/client.md, "Local
//! storage"): `getKey(name)`, `putKey(name, key)` and `deleteKey(name)`. The wrap stored in the
//! keyring ([`super::sealed::SealedStore::set_platform_wrap`]) is
//! `0x01 || iv (12) || AES-GCM-256(device key, iv, storage key, AD = "SecureChat store v1
//! device key")`.

use super::sealed::StorageKey;
use crate::error::{ClientError, Result};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use zeroize::Zeroizing;

/// The name under which the store keeps the device key.
const KEY_NAME: &str = "device";
const WRAP_VERSION: u8 = 1;
const WRAP_AD: &[u8] = b"SecureChat store v1 device key";

#[wasm_bindgen]
extern "C" {
    /// `crypto.subtle`, only the three calls used here (no web-sys features: smaller glue).
    type Subtle;

    #[wasm_bindgen(method, catch, js_name = generateKey)]
    fn generate_key(
        this: &Subtle,
        algorithm: &Object,
        extractable: bool,
        usages: &Array,
    ) -> std::result::Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn encrypt(
        this: &Subtle,
        algorithm: &Object,
        key: &JsValue,
        data: &[u8],
    ) -> std::result::Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn decrypt(
        this: &Subtle,
        algorithm: &Object,
        key: &JsValue,
        data: &[u8],
    ) -> std::result::Result<Promise, JsValue>;
}

fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "JavaScript error".to_owned())
}

fn storage(e: &JsValue) -> ClientError {
    ClientError::Storage(js_message(e))
}

fn subtle() -> Result<Subtle> {
    let crypto =
        Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).map_err(|e| storage(&e))?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).map_err(|e| storage(&e))?;
    if subtle.is_undefined() {
        return Err(ClientError::Storage(
            "WebCrypto (crypto.subtle) is not available: a secure context (https) is needed".into(),
        ));
    }
    Ok(subtle.unchecked_into())
}

fn object(pairs: &[(&str, &JsValue)]) -> Result<Object> {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).map_err(|e| storage(&e))?;
    }
    Ok(o)
}

fn aes_gcm(iv: &[u8]) -> Result<Object> {
    object(&[
        ("name", &JsValue::from_str("AES-GCM")),
        ("iv", &Uint8Array::from(iv).into()),
        ("additionalData", &Uint8Array::from(WRAP_AD).into()),
    ])
}

/// Calls the store's optional method `name`; `None` if the store does not have it.
async fn call(store: &JsValue, name: &str, args: &[&JsValue]) -> Result<Option<JsValue>> {
    let f = Reflect::get(store, &JsValue::from_str(name)).map_err(|e| storage(&e))?;
    let Some(f) = f.dyn_ref::<Function>() else {
        return Ok(None);
    };
    let returned = match args {
        [] => f.call0(store),
        [a] => f.call1(store, a),
        [a, b, ..] => f.call2(store, a, b),
    }
    .map_err(|e| storage(&e))?;
    let value = JsFuture::from(Promise::resolve(&returned))
        .await
        .map_err(|e| storage(&e))?;
    Ok(Some(value))
}

async fn await_promise(
    p: std::result::Result<Promise, JsValue>,
) -> std::result::Result<JsValue, JsValue> {
    JsFuture::from(p?).await
}

/// Whether `store` can keep a device key (has `getKey`, `putKey` and `deleteKey`).
#[must_use]
pub fn supported(store: &JsValue) -> bool {
    ["getKey", "putKey", "deleteKey"]
        .iter()
        .all(|m| Reflect::get(store, &JsValue::from_str(m)).is_ok_and(|f| f.is_function()))
}

/// Makes a new non-extractable device key, has `store` keep it (replacing any other), and
/// returns `key` wrapped by it, for the keyring.
pub async fn wrap(store: &JsValue, key: &StorageKey) -> Result<Vec<u8>> {
    if !supported(store) {
        return Err(ClientError::InvalidArgument(
            "this store cannot keep a device key (it needs getKey, putKey and deleteKey)".into(),
        ));
    }
    let subtle = subtle()?;
    let params = object(&[
        ("name", &JsValue::from_str("AES-GCM")),
        ("length", &JsValue::from_f64(256.0)),
    ])?;
    let usages = Array::of2(&JsValue::from_str("encrypt"), &JsValue::from_str("decrypt"));
    let device_key = await_promise(subtle.generate_key(&params, false, &usages))
        .await
        .map_err(|e| storage(&e))?;
    let mut iv = [0u8; 12];
    getrandom::fill(&mut iv).map_err(|e| ClientError::Storage(format!("no randomness: {e}")))?;
    let sealed = await_promise(subtle.encrypt(&aes_gcm(&iv)?, &device_key, key.as_bytes()))
        .await
        .map_err(|e| storage(&e))?;
    let sealed = Uint8Array::new(&sealed).to_vec();
    call(
        store,
        "putKey",
        &[&JsValue::from_str(KEY_NAME), &device_key],
    )
    .await?;
    let mut out = Vec::with_capacity(1 + iv.len() + sealed.len());
    out.push(WRAP_VERSION);
    out.extend_from_slice(&iv);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Unwraps the storage key with the device key `store` keeps. A missing device key, or one
/// that did not make this wrap, is [`ClientError::WrongPassword`] (the app asks for the
/// password then).
pub async fn unwrap(store: &JsValue, wrap: &[u8]) -> Result<StorageKey> {
    let device_key = call(store, "getKey", &[&JsValue::from_str(KEY_NAME)])
        .await?
        .filter(|k| !k.is_undefined() && !k.is_null())
        .ok_or(ClientError::WrongPassword)?;
    let (&version, rest) = wrap
        .split_first()
        .ok_or_else(|| ClientError::StoreCorrupted("empty device key wrap".into()))?;
    if version != WRAP_VERSION {
        return Err(ClientError::StoreCorrupted(format!(
            "device key wrap version {version} (this client reads {WRAP_VERSION})"
        )));
    }
    let (iv, sealed) = rest
        .split_first_chunk::<12>()
        .ok_or_else(|| ClientError::StoreCorrupted("device key wrap length".into()))?;
    let opened = await_promise(subtle()?.decrypt(&aes_gcm(iv)?, &device_key, sealed))
        .await
        .map_err(|_| ClientError::WrongPassword)?;
    let bytes = Zeroizing::new(Uint8Array::new(&opened).to_vec());
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| ClientError::StoreCorrupted("device key wrap length".into()))?;
    Ok(StorageKey::from_bytes(key))
}

/// Whether `store` holds a device key.
pub async fn exists(store: &JsValue) -> Result<bool> {
    Ok(call(store, "getKey", &[&JsValue::from_str(KEY_NAME)])
        .await?
        .is_some_and(|k| !k.is_undefined() && !k.is_null()))
}

/// Has `store` delete its device key (nothing to do if it cannot keep one).
pub async fn forget(store: &JsValue) -> Result<()> {
    call(store, "deleteKey", &[&JsValue::from_str(KEY_NAME)])
        .await
        .map(drop)
}
