//! State at rest: every stateful object serializes to a versioned binary form sealed under a
//! caller's 32-byte storage key, bound to the object's identity and to a counter.
//!
//! Sealed layout (docs/protocol.md §13.1):
//!
//! ```text
//! header = version (1) || kind (1) || pickle id (16) || counter (u64, big-endian)
//! sealed = header || nonce (24) || XChaCha20-Poly1305(subkey, nonce, ad = header, state) || tag (16)
//! subkey = HKDF-Expand(storage key, "SecureChat v2 pickle", 32)
//! ```
//!
//! The whole header is associated data: a pickle cannot be passed off as another object's
//! (its [`PickleId`]) or as a newer one (its counter) without failing authentication.
//!
//! # Security notes: rollback and the caller's duties
//!
//! Every picklable object ([`crate::Account`], [`crate::Session`],
//! [`crate::group::OutboundGroupSession`], [`crate::group::InboundGroupSession`],
//! [`crate::group::GroupSession`]) holds a random [`PickleId`], drawn when it is created, and a
//! counter that every `pickle` call increments and returns in the [`SealedPickle`]. Restoring
//! an old pickle would bring back used message keys (the next `encrypt` would reuse a key and
//! nonce: ciphertext xor ciphertext = plaintext xor plaintext), consumed one-time prekeys or
//! forgotten replay records. To make that impossible, the store must:
//!
//! 1. persist every pickle together with its [`SealedPickle::counter`], and keep the object's
//!    id and the latest counter somewhere the attacker cannot roll back (the wasm-client keeps
//!    them in a separately sealed manifest), then pass both to `from_pickle`, which refuses
//!    another object's pickle ([`PickleError::PickleIdMismatch`]) and an older one
//!    ([`PickleError::PickleRolledBack`]). Write the pickle before raising the recorded counter, so
//!    that a crash in between leaves a pickle newer than the record, not the reverse;
//! 2. pickle and persist an object after every operation that changes it (`encrypt`,
//!    `decrypt`, creating a session …) and **before** its output leaves the device: a crash
//!    between an `encrypt` and its pickle would otherwise restore the state that encrypted it;
//! 3. keep one live copy of each object: two in-memory copies (two tabs, two workers) that
//!    both encrypt reuse keys no matter what the store does, and the counter cannot see it.
//!    Hold an exclusive lock on the object (for example a Web Lock named by its id) from
//!    `from_pickle` until the last pickle is persisted.

use crate::codec::Reader;
use crate::error::{DecodeError, PickleError, RandomError};
use crate::primitives::{
    TAG_LEN, fill_random, hkdf_sha256_expand_array, xchacha20poly1305_open, xchacha20poly1305_seal,
};
use core::fmt;
use rand_core::TryCryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Pickle format version written and read by this build.
pub const PICKLE_VERSION: u8 = 2;
/// Length of a [`PickleId`].
pub const PICKLE_ID_LEN: usize = 16;
/// Length of the clear header that is also the associated data: version, kind, id, counter.
pub const PICKLE_HEADER_LEN: usize = 2 + PICKLE_ID_LEN + 8;
pub(crate) const PICKLE_KDF_INFO: &[u8] = b"SecureChat v2 pickle";
const NONCE_LEN: usize = 24;
const PREFIX_LEN: usize = PICKLE_HEADER_LEN + NONCE_LEN;

/// What a pickle holds; checked on unpickling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PickleKind {
    Account = 1,
    Session = 2,
    OutboundGroup = 3,
    InboundGroup = 4,
    Group = 5,
}

/// The identity of one picklable object: 16 random bytes drawn when the object is created.
///
/// Not secret and not derived from protocol values (both ends of a session share its session
/// id; no two objects share a pickle id). Store it with the object's latest pickle counter and
/// pass both to `from_pickle`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PickleId([u8; PICKLE_ID_LEN]);

impl PickleId {
    /// Wraps 16 bytes (for example read back from the caller's manifest).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; PICKLE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; PICKLE_ID_LEN] {
        self.0
    }

    /// The 16 bytes, borrowed.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; PICKLE_ID_LEN] {
        &self.0
    }

    fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, RandomError> {
        let mut id = [0u8; PICKLE_ID_LEN];
        fill_random(rng, &mut id)?;
        Ok(Self(id))
    }
}

impl From<[u8; PICKLE_ID_LEN]> for PickleId {
    fn from(bytes: [u8; PICKLE_ID_LEN]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for PickleId {
    /// Lower-case hex, 32 digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for PickleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PickleId({self})")
    }
}

/// A sealed pickle and the counter it carries, which the store must persist (with the
/// object's [`PickleId`]) and pass back to `from_pickle` as the latest counter.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPickle {
    bytes: Vec<u8>,
    pickle_id: PickleId,
    counter: u64,
}

impl SealedPickle {
    /// The sealed bytes to store.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The sealed bytes to store.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The id of the object it holds.
    #[must_use]
    pub fn pickle_id(&self) -> PickleId {
        self.pickle_id
    }

    /// Its counter: greater than that of every earlier pickle of the same object.
    #[must_use]
    pub fn counter(&self) -> u64 {
        self.counter
    }
}

impl AsRef<[u8]> for SealedPickle {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for SealedPickle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedPickle")
            .field("pickle_id", &self.pickle_id)
            .field("counter", &self.counter)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// An object's pickle identity and the counter of its latest pickle (0: never pickled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PickleState {
    id: PickleId,
    counter: u64,
}

impl PickleState {
    /// A new object's state: a random id, counter 0.
    pub(crate) fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, RandomError> {
        Ok(Self {
            id: PickleId::generate(rng)?,
            counter: 0,
        })
    }

    pub(crate) fn id(&self) -> PickleId {
        self.id
    }

    pub(crate) fn counter(&self) -> u64 {
        self.counter
    }
}

/// The caller's 32-byte storage key. Wiped on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PickleKey([u8; 32]);

impl PickleKey {
    /// Wraps a 32-byte key (for example one derived from the user's passphrase or kept in a
    /// platform key store).
    #[must_use]
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    fn subkey(&self) -> Zeroizing<[u8; 32]> {
        hkdf_sha256_expand_array(&self.0, PICKLE_KDF_INFO)
    }
}

impl From<[u8; 32]> for PickleKey {
    fn from(key: [u8; 32]) -> Self {
        Self::new(key)
    }
}

impl fmt::Debug for PickleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PickleKey").finish_non_exhaustive()
    }
}

fn header(kind: PickleKind, id: &PickleId, counter: u64) -> [u8; PICKLE_HEADER_LEN] {
    let mut h = [0u8; PICKLE_HEADER_LEN];
    let fields = [PICKLE_VERSION, kind as u8]
        .into_iter()
        .chain(id.0)
        .chain(counter.to_be_bytes());
    for (slot, byte) in h.iter_mut().zip(fields) {
        *slot = byte;
    }
    h
}

/// Seals `plaintext` (an object's binary form) under `key` with the next counter of `state`,
/// which is advanced only if sealing succeeds.
pub(crate) fn seal<R: TryCryptoRng + ?Sized>(
    kind: PickleKind,
    state: &mut PickleState,
    plaintext: &[u8],
    key: &PickleKey,
    rng: &mut R,
) -> Result<SealedPickle, PickleError> {
    let counter = state
        .counter
        .checked_add(1)
        .ok_or(PickleError::ChainExhausted)?;
    let bytes = seal_raw(kind, &state.id, counter, plaintext, key, rng)?;
    state.counter = counter;
    Ok(SealedPickle {
        bytes,
        pickle_id: state.id,
        counter,
    })
}

/// Seals with an explicit id and counter (also used by the fuzz checks).
pub(crate) fn seal_raw<R: TryCryptoRng + ?Sized>(
    kind: PickleKind,
    id: &PickleId,
    counter: u64,
    plaintext: &[u8],
    key: &PickleKey,
    rng: &mut R,
) -> Result<Vec<u8>, PickleError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(rng, &mut nonce)?;
    let ad = header(kind, id, counter);
    let mut out = Vec::with_capacity(PREFIX_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&ad);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let subkey = key.subkey();
    let body = out
        .get_mut(PREFIX_LEN..)
        .ok_or(PickleError::Decode(DecodeError::InvalidField))?;
    let tag = xchacha20poly1305_seal(&subkey, &nonce, &ad, body)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// The clear header of a sealed pickle of `kind`, checked: version, kind, length.
pub(crate) fn read_header(kind: PickleKind, sealed: &[u8]) -> Result<(PickleId, u64), PickleError> {
    let mut r = Reader::new(sealed);
    let version = r.u8()?;
    if version != PICKLE_VERSION {
        return Err(PickleError::PickleVersion {
            expected: PICKLE_VERSION,
            got: version,
        });
    }
    let got_kind = r.u8()?;
    if got_kind != kind as u8 {
        return Err(PickleError::PickleKind {
            expected: kind as u8,
            got: got_kind,
        });
    }
    let id = PickleId(r.array()?);
    let counter = r.u64()?;
    if r.remaining() < NONCE_LEN + TAG_LEN {
        return Err(PickleError::Decode(DecodeError::Truncated {
            needed: NONCE_LEN + TAG_LEN,
            remaining: r.remaining(),
        }));
    }
    Ok((id, counter))
}

/// Opens a sealed pickle of `kind`, whatever its id and counter; the result is wiped on drop.
pub(crate) fn open_unchecked(
    kind: PickleKind,
    sealed: &[u8],
    key: &PickleKey,
) -> Result<(PickleState, Zeroizing<Vec<u8>>), PickleError> {
    let (id, counter) = read_header(kind, sealed)?;
    let (ad, rest) = sealed
        .split_at_checked(PICKLE_HEADER_LEN)
        .ok_or(DecodeError::InvalidField)?;
    let (nonce, rest) = rest
        .split_at_checked(NONCE_LEN)
        .ok_or(DecodeError::InvalidField)?;
    let split = rest
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(DecodeError::InvalidField)?;
    let (body, tag) = rest.split_at(split);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| DecodeError::InvalidField)?;
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| DecodeError::InvalidField)?;
    let mut plaintext = Zeroizing::new(body.to_vec());
    let subkey = key.subkey();
    xchacha20poly1305_open(&subkey, &nonce, ad, &mut plaintext, &tag)
        .map_err(|_| PickleError::PickleDecryption)?;
    Ok((PickleState { id, counter }, plaintext))
}

/// Opens a sealed pickle of `kind` made by the object `expected_id` at a counter of at least
/// `latest_counter`; the result is wiped on drop. Id and counter are checked before
/// decryption for precise errors, and authenticated by it.
pub(crate) fn open(
    kind: PickleKind,
    sealed: &[u8],
    key: &PickleKey,
    expected_id: &PickleId,
    latest_counter: u64,
) -> Result<(PickleState, Zeroizing<Vec<u8>>), PickleError> {
    let (id, counter) = read_header(kind, sealed)?;
    if id != *expected_id {
        return Err(PickleError::PickleIdMismatch {
            expected: *expected_id,
            got: id,
        });
    }
    if counter < latest_counter {
        return Err(PickleError::PickleRolledBack {
            counter,
            latest: latest_counter,
        });
    }
    open_unchecked(kind, sealed, key)
}

/// [`open`], then parses all of the state with `read` (given the pickle state the object
/// resumes with); trailing bytes are an error.
pub(crate) fn open_with<T>(
    kind: PickleKind,
    sealed: &[u8],
    key: &PickleKey,
    expected_id: &PickleId,
    latest_counter: u64,
    read: impl FnOnce(&mut Reader<'_>, PickleState) -> Result<T, DecodeError>,
) -> Result<T, PickleError> {
    let (state, plain) = open(kind, sealed, key, expected_id, latest_counter)?;
    let mut r = Reader::new(&plain);
    let value = read(&mut r, state)?;
    r.finish()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::OsRng;

    #[test]
    fn seal_open_and_typed_errors() {
        let key = PickleKey::new([9; 32]);
        let mut state = PickleState::generate(&mut OsRng).unwrap();
        let id = state.id();
        let sealed = seal(PickleKind::Session, &mut state, b"state", &key, &mut OsRng).unwrap();
        assert_eq!((sealed.counter(), state.counter()), (1, 1));
        let sealed = sealed.into_bytes();
        let (opened, plain) = open(PickleKind::Session, &sealed, &key, &id, 1).unwrap();
        assert_eq!((&plain[..], opened), (&b"state"[..], state));
        assert_eq!(
            open(PickleKind::Account, &sealed, &key, &id, 0).unwrap_err(),
            PickleError::PickleKind {
                expected: 1,
                got: 2
            }
        );
        assert_eq!(
            open(
                PickleKind::Session,
                &sealed,
                &PickleKey::new([8; 32]),
                &id,
                0
            )
            .unwrap_err(),
            PickleError::PickleDecryption
        );
        let other = PickleId::from_bytes([0; 16]);
        assert_eq!(
            open(PickleKind::Session, &sealed, &key, &other, 0).unwrap_err(),
            PickleError::PickleIdMismatch {
                expected: other,
                got: id
            }
        );
        assert_eq!(
            open(PickleKind::Session, &sealed, &key, &id, 2).unwrap_err(),
            PickleError::PickleRolledBack {
                counter: 1,
                latest: 2
            }
        );
        let mut wrong_version = sealed.clone();
        wrong_version[0] = 7;
        assert_eq!(
            open(PickleKind::Session, &wrong_version, &key, &id, 0).unwrap_err(),
            PickleError::PickleVersion {
                expected: PICKLE_VERSION,
                got: 7
            }
        );
        // Every bit is authenticated, the clear id and counter included (opened without the
        // id and counter checks, so only the tag can refuse).
        for i in 0..sealed.len() * 8 {
            let mut t = sealed.clone();
            t[i / 8] ^= 1 << (i % 8);
            assert!(open_unchecked(PickleKind::Session, &t, &key).is_err());
        }
        for len in 0..sealed.len() {
            assert!(open_unchecked(PickleKind::Session, &sealed[..len], &key).is_err());
        }
    }

    #[test]
    fn pickle_id_prints_as_hex() {
        let id = PickleId::from_bytes(core::array::from_fn(|i| i as u8 * 17));
        assert_eq!(id.to_string(), "00112233445566778899aabbccddeeff");
        assert_eq!(
            format!("{id:?}"),
            "PickleId(00112233445566778899aabbccddeeff)"
        );
    }
}
