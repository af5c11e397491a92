//! The sealed store: nothing readable at rest.
//!
//! - A random 32-byte **storage key** seals everything. Two subkeys are derived from it with
//!   HKDF-SHA256: one names records, one seals values.
//! - A record's stored name is `r` + hex(HMAC-SHA256(name key, logical name)): no ms_id, user id
//!   or conversation is readable from the names.
//! - A value is `0x01 || nonce (24) || XChaCha20-Poly1305(value key, nonce, plaintext,
//!   AD = "SecureChat store v1 record" || logical name)`: a value moved to another record fails
//!   to open.
//! - The storage key itself is kept in the one record with a fixed name, `keyring`, wrapped by
//!   a key derived from the user's password with Argon2id (salt and parameters stored beside it),
//!   and optionally by a key the platform keeps ("remember me": in the browser, a
//!   non-extractable WebCrypto key). A wrong password fails the wrap's authentication:
//!   [`ClientError::WrongPassword`].
//!
//! Security notes: an attacker who can *write* the store can replay an older value of a
//! record (rollback); the client detects a rolled-back pickle only against counters kept in
//! other records. Record sizes and the number of records are visible.

use super::{Store, StoreOp};
use crate::error::{ClientError, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

const KEYRING: &str = "keyring";
const VALUE_VERSION: u8 = 1;
const NAME_INFO: &[u8] = b"SecureChat store v1 record names";
const VALUE_INFO: &[u8] = b"SecureChat store v1 record values";
const VALUE_AD: &[u8] = b"SecureChat store v1 record";
const WRAP_AD: &[u8] = b"SecureChat store v1 keyring";

/// Argon2id parameters for the password wrapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// OWASP's recommended minimum for Argon2id (19 MiB, 2 passes, 1 lane): ~0.1 s natively
    /// and a few hundred milliseconds in a browser (docs/benchmarks.md).
    pub const RECOMMENDED: Self = Self {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    /// Cheap parameters for tests only: they do not protect a password.
    pub const INSECURE_FOR_TESTS: Self = Self {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn derive(&self, password: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let params =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
                .map_err(|e| ClientError::InvalidArgument(format!("Argon2 parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(password, salt, out.as_mut_slice())
            .map_err(|e| ClientError::InvalidArgument(format!("Argon2: {e}")))?;
        Ok(out)
    }

    fn ad(&self) -> Vec<u8> {
        let mut ad = WRAP_AD.to_vec();
        ad.extend_from_slice(&self.memory_kib.to_be_bytes());
        ad.extend_from_slice(&self.iterations.to_be_bytes());
        ad.extend_from_slice(&self.parallelism.to_be_bytes());
        ad
    }
}

/// The storage key (32 random bytes), wiped on drop.
pub struct StorageKey(Zeroizing<[u8; 32]>);

impl StorageKey {
    /// A new random key.
    pub fn generate() -> Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut_slice())
            .map_err(|e| ClientError::Storage(format!("no randomness: {e}")))?;
        Ok(Self(key))
    }

    /// Wraps raw bytes (for a platform that unwrapped the key itself, e.g. WebCrypto).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw bytes (for a platform that wraps the key itself).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageKey").finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Keyring {
    version: u32,
    password: PasswordWrap,
    /// The storage key wrapped by the platform ("remember me"), opaque to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<String>,
    /// HMAC of a fixed string under the name key: tells a wrong platform key from a damaged
    /// store.
    check: String,
}

#[derive(Serialize, Deserialize)]
struct PasswordWrap {
    params: KdfParams,
    salt: String,
    nonce: String,
    wrapped: String,
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| ClientError::Storage(format!("no randomness: {e}")))?;
    Ok(out)
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>> {
    BASE64
        .decode(s)
        .map_err(|_| ClientError::StoreCorrupted(format!("keyring {field} is not base64")))
}

fn subkey(key: &StorageKey, info: &[u8]) -> Zeroizing<[u8; 32]> {
    let hk = hkdf::Hkdf::<Sha256>::new(None, key.as_bytes());
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is always a valid HKDF-SHA256 output length.
    if hk.expand(info, out.as_mut_slice()).is_err() {
        out.zeroize();
    }
    out
}

fn wrap_with_password(key: &StorageKey, password: &str, params: KdfParams) -> Result<PasswordWrap> {
    let salt: [u8; 16] = random()?;
    let nonce: [u8; 24] = random()?;
    let kek = params.derive(password.as_bytes(), &salt)?;
    let cipher = XChaCha20Poly1305::new((&*kek).into());
    let wrapped = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: key.as_bytes(),
                aad: &params.ad(),
            },
        )
        .map_err(|_| ClientError::Storage("cannot wrap the storage key".into()))?;
    Ok(PasswordWrap {
        params,
        salt: BASE64.encode(salt),
        nonce: BASE64.encode(nonce),
        wrapped: BASE64.encode(wrapped),
    })
}

fn unwrap_with_password(wrap: &PasswordWrap, password: &str) -> Result<StorageKey> {
    let salt = b64("salt", &wrap.salt)?;
    let nonce: [u8; 24] = b64("nonce", &wrap.nonce)?
        .try_into()
        .map_err(|_| ClientError::StoreCorrupted("keyring nonce length".into()))?;
    let wrapped = b64("wrapped key", &wrap.wrapped)?;
    let kek = wrap.params.derive(password.as_bytes(), &salt)?;
    let cipher = XChaCha20Poly1305::new((&*kek).into());
    let key = Zeroizing::new(
        cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &wrapped,
                    aad: &wrap.params.ad(),
                },
            )
            .map_err(|_| ClientError::WrongPassword)?,
    );
    let bytes: [u8; 32] = key
        .as_slice()
        .try_into()
        .map_err(|_| ClientError::StoreCorrupted("wrapped key length".into()))?;
    Ok(StorageKey::from_bytes(bytes))
}

/// The client's view of a raw [`Store`]: sealed values under MAC'd names.
pub struct SealedStore<S> {
    raw: S,
    name_key: Zeroizing<[u8; 32]>,
    value_key: Zeroizing<[u8; 32]>,
}

impl<S> std::fmt::Debug for SealedStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedStore").finish_non_exhaustive()
    }
}

impl<S: Store> SealedStore<S> {
    /// Whether `raw` already holds a sealed store.
    pub async fn exists(raw: &S) -> Result<bool> {
        Ok(raw.get(KEYRING).await.map_err(storage)?.is_some())
    }

    /// Starts a new sealed store in `raw` (which must be empty) under a new random storage key
    /// wrapped by `password`.
    pub async fn create(raw: S, password: &str, params: KdfParams) -> Result<Self> {
        Self::create_returning_key(raw, password, params)
            .await
            .map(|(store, _)| store)
    }

    /// [`Self::create`], also giving the storage key, for a platform that wraps it too
    /// ("remember me", [`Self::set_platform_wrap`]).
    pub async fn create_returning_key(
        raw: S,
        password: &str,
        params: KdfParams,
    ) -> Result<(Self, StorageKey)> {
        if Self::exists(&raw).await? {
            return Err(ClientError::InvalidArgument(
                "the store already holds an account; open it instead".into(),
            ));
        }
        let key = StorageKey::generate()?;
        let store = Self::with_key(raw, &key);
        let keyring = Keyring {
            version: 1,
            password: wrap_with_password(&key, password, params)?,
            platform: None,
            check: store.check_value(),
        };
        store.write_keyring(&keyring).await?;
        Ok((store, key))
    }

    /// Opens the store with the user's password ([`ClientError::WrongPassword`] if it is not
    /// the one the store was wrapped with).
    pub async fn open(raw: S, password: &str) -> Result<Self> {
        Self::open_returning_key(raw, password)
            .await
            .map(|(store, _)| store)
    }

    /// [`Self::open`], also giving the storage key, for a platform that wraps it too
    /// ("remember me", [`Self::set_platform_wrap`]).
    pub async fn open_returning_key(raw: S, password: &str) -> Result<(Self, StorageKey)> {
        let keyring = Self::read_keyring(&raw).await?;
        let key = unwrap_with_password(&keyring.password, password)?;
        Ok((Self::with_key(raw, &key), key))
    }

    /// Opens the store with a storage key the platform unwrapped ("remember me"); a wrong key
    /// is [`ClientError::WrongPassword`].
    pub async fn open_with_key(raw: S, key: &StorageKey) -> Result<Self> {
        let keyring = Self::read_keyring(&raw).await?;
        let store = Self::with_key(raw, key);
        if store.check_value() != keyring.check {
            return Err(ClientError::WrongPassword);
        }
        Ok(store)
    }

    /// The platform's wrapping of the storage key, if "remember me" is on.
    pub async fn platform_wrap(raw: &S) -> Result<Option<Vec<u8>>> {
        let keyring = Self::read_keyring(raw).await?;
        keyring
            .platform
            .map(|w| b64("platform wrap", &w))
            .transpose()
    }

    /// Re-wraps the storage key under a new password (after a password change). Needs the
    /// current password, so an unlocked store alone cannot change it.
    pub async fn change_password(&self, current: &str, new: &str, params: KdfParams) -> Result<()> {
        let mut keyring = Self::read_keyring(&self.raw).await?;
        let key = unwrap_with_password(&keyring.password, current)?;
        keyring.password = wrap_with_password(&key, new, params)?;
        self.write_keyring(&keyring).await
    }

    /// Stores (or with `None` removes) the platform's wrapping of the storage key.
    pub async fn set_platform_wrap(&self, wrap: Option<&[u8]>) -> Result<()> {
        let mut keyring = Self::read_keyring(&self.raw).await?;
        keyring.platform = wrap.map(|w| BASE64.encode(w));
        Self::write_keyring_to(&self.raw, &keyring).await
    }

    /// Removes the platform's wrapping of the storage key without opening the store ("forget
    /// this device"; only the password opens it afterwards). Nothing to do on an empty store.
    pub async fn clear_platform_wrap(raw: &S) -> Result<()> {
        if !Self::exists(raw).await? {
            return Ok(());
        }
        let mut keyring = Self::read_keyring(raw).await?;
        if keyring.platform.take().is_none() {
            return Ok(());
        }
        Self::write_keyring_to(raw, &keyring).await
    }

    fn with_key(raw: S, key: &StorageKey) -> Self {
        Self {
            raw,
            name_key: subkey(key, NAME_INFO),
            value_key: subkey(key, VALUE_INFO),
        }
    }

    async fn read_keyring(raw: &S) -> Result<Keyring> {
        let bytes = raw
            .get(KEYRING)
            .await
            .map_err(storage)?
            .ok_or_else(|| ClientError::InvalidArgument("the store is empty".into()))?;
        let keyring: Keyring = serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::StoreCorrupted(format!("keyring: {e}")))?;
        if keyring.version != 1 {
            return Err(ClientError::StoreCorrupted(format!(
                "keyring version {} (this client reads 1)",
                keyring.version
            )));
        }
        Ok(keyring)
    }

    async fn write_keyring(&self, keyring: &Keyring) -> Result<()> {
        Self::write_keyring_to(&self.raw, keyring).await
    }

    async fn write_keyring_to(raw: &S, keyring: &Keyring) -> Result<()> {
        let bytes = serde_json::to_vec(keyring)
            .map_err(|e| ClientError::Storage(format!("keyring: {e}")))?;
        raw.write(vec![StoreOp::Put(KEYRING.into(), bytes)])
            .await
            .map_err(storage)
    }

    fn check_value(&self) -> String {
        self.record_name("\u{0}keyring check")
    }

    fn record_name(&self, logical: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.name_key.as_slice()) else {
            // HMAC accepts keys of any length.
            return String::new();
        };
        mac.update(logical.as_bytes());
        let tag = mac.finalize().into_bytes();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut name = String::with_capacity(65);
        name.push('r');
        for b in tag {
            // Two hex digits without `format!` (one allocation per byte, and fmt code in the wasm).
            for nibble in [b >> 4, b & 0x0f] {
                name.push(char::from(
                    HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
                ));
            }
        }
        name
    }

    fn seal(&self, logical: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce: [u8; 24] = random()?;
        let cipher = XChaCha20Poly1305::new((&*self.value_key).into());
        let mut aad = VALUE_AD.to_vec();
        aad.extend_from_slice(logical.as_bytes());
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| ClientError::Storage("cannot seal a record".into()))?;
        let mut out = Vec::with_capacity(1 + 24 + sealed.len());
        out.push(VALUE_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open_value(&self, logical: &str, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let corrupt = || ClientError::StoreCorrupted(format!("record {logical} cannot be opened"));
        let (&version, rest) = stored.split_first().ok_or_else(corrupt)?;
        if version != VALUE_VERSION {
            return Err(ClientError::StoreCorrupted(format!(
                "record version {version} (this client reads {VALUE_VERSION})"
            )));
        }
        let (nonce, sealed) = rest.split_first_chunk::<24>().ok_or_else(corrupt)?;
        let cipher = XChaCha20Poly1305::new((&*self.value_key).into());
        let mut aad = VALUE_AD.to_vec();
        aad.extend_from_slice(logical.as_bytes());
        cipher
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| corrupt())
    }

    /// The raw bytes of record `logical`.
    pub async fn get_bytes(&self, logical: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let Some(stored) = self
            .raw
            .get(&self.record_name(logical))
            .await
            .map_err(storage)?
        else {
            return Ok(None);
        };
        self.open_value(logical, &stored).map(Some)
    }

    /// Record `logical`, decoded from JSON.
    pub async fn get<T: DeserializeOwned>(&self, logical: &str) -> Result<Option<T>> {
        let Some(bytes) = self.get_bytes(logical).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ClientError::StoreCorrupted(format!("record {logical}: {e}")))
    }

    /// Records `logicals`, decoded from JSON, read together (one transaction where the store
    /// can); a missing record is `None`.
    pub async fn get_many<T: DeserializeOwned>(
        &self,
        logicals: &[String],
    ) -> Result<Vec<Option<T>>> {
        let names: Vec<String> = logicals.iter().map(|l| self.record_name(l)).collect();
        let stored = self.raw.get_many(&names).await.map_err(storage)?;
        let mut out = Vec::with_capacity(stored.len());
        for (logical, value) in logicals.iter().zip(stored) {
            out.push(match value {
                Some(v) => {
                    let bytes = self.open_value(logical, &v)?;
                    Some(serde_json::from_slice(&bytes).map_err(|e| {
                        ClientError::StoreCorrupted(format!("record {logical}: {e}"))
                    })?)
                }
                None => None,
            });
        }
        Ok(out)
    }

    /// A new write batch; nothing is stored until [`Batch::commit`].
    #[must_use]
    pub fn batch(&self) -> Batch<'_, S> {
        Batch {
            store: self,
            ops: Vec::new(),
            error: None,
        }
    }
}

fn storage(e: super::StoreError) -> ClientError {
    ClientError::Storage(e.0)
}

/// Changes applied together ([`Store::write`] is atomic).
pub struct Batch<'a, S> {
    store: &'a SealedStore<S>,
    ops: Vec<StoreOp>,
    error: Option<ClientError>,
}

impl<S: Store> Batch<'_, S> {
    /// Sets record `logical` to `value` as JSON.
    pub fn put<T: Serialize + ?Sized>(&mut self, logical: &str, value: &T) -> &mut Self {
        match serde_json::to_vec(value) {
            Ok(json) => {
                let json = Zeroizing::new(json);
                self.put_bytes(logical, &json)
            }
            Err(e) => {
                self.error
                    .get_or_insert(ClientError::Storage(format!("record {logical}: {e}")));
                self
            }
        }
    }

    /// Sets record `logical` to raw bytes.
    pub fn put_bytes(&mut self, logical: &str, value: &[u8]) -> &mut Self {
        match self.store.seal(logical, value) {
            Ok(sealed) => self
                .ops
                .push(StoreOp::Put(self.store.record_name(logical), sealed)),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Removes record `logical`.
    pub fn delete(&mut self, logical: &str) -> &mut Self {
        self.ops
            .push(StoreOp::Delete(self.store.record_name(logical)));
        self
    }

    /// Whether the batch has no changes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.error.is_none()
    }

    /// Applies every change atomically.
    pub async fn commit(self) -> Result<()> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.ops.is_empty() {
            return Ok(());
        }
        self.store.raw.write(self.ops).await.map_err(storage)
    }
}

#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn values_and_names_are_sealed_and_bound() {
        let raw = MemoryStore::new();
        let store = SealedStore::create(raw.clone(), "pw one", KdfParams::INSECURE_FOR_TESTS)
            .await
            .unwrap();
        let mut b = store.batch();
        b.put("profile:alice.example", &"secret plaintext alice");
        b.put("other", &42u32);
        b.commit().await.unwrap();

        // Nothing readable at rest: neither the record name nor the value.
        for (k, v) in raw.snapshot() {
            assert!(!k.contains("alice"), "{k}");
            assert!(!String::from_utf8_lossy(&v).contains("alice"));
        }
        let got: String = store.get("profile:alice.example").await.unwrap().unwrap();
        assert_eq!(got, "secret plaintext alice");

        // A value moved under another record's name does not open.
        let snapshot = raw.snapshot();
        let a = store.record_name("profile:alice.example");
        let o = store.record_name("other");
        raw.write(vec![StoreOp::Put(o.clone(), snapshot[&a].clone())])
            .await
            .unwrap();
        let err = store.get::<u32>("other").await.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::StoreCorrupted);

        // Reopen: right password works, a wrong one is a typed error.
        let again = SealedStore::open(raw.clone(), "pw one").await.unwrap();
        let got: String = again.get("profile:alice.example").await.unwrap().unwrap();
        assert_eq!(got, "secret plaintext alice");
        let err = SealedStore::open(raw.clone(), "pw two").await.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::WrongPassword);

        // A password change re-wraps the same key.
        again
            .change_password("pw one", "pw two", KdfParams::INSECURE_FOR_TESTS)
            .await
            .unwrap();
        assert!(SealedStore::open(raw.clone(), "pw one").await.is_err());
        let third = SealedStore::open(raw.clone(), "pw two").await.unwrap();
        let got: String = third.get("profile:alice.example").await.unwrap().unwrap();
        assert_eq!(got, "secret plaintext alice");

        // A wrong platform key is refused, not used to read garbage.
        let err = SealedStore::open_with_key(raw.clone(), &StorageKey::from_bytes([9; 32]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::WrongPassword);
    }

    #[tokio::test]
    async fn a_tampered_keyring_is_a_typed_error() {
        let raw = MemoryStore::new();
        SealedStore::create(raw.clone(), "pw", KdfParams::INSECURE_FOR_TESTS)
            .await
            .unwrap();
        raw.write(vec![StoreOp::Put(KEYRING.into(), b"{not json".to_vec())])
            .await
            .unwrap();
        let err = SealedStore::open(raw, "pw").await.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::StoreCorrupted);
    }
}
