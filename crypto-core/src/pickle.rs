//! State at rest: every stateful object serializes to a versioned binary form sealed under a
//! caller's 32-byte storage key.
//!
//! Sealed layout: `version (1) || kind (1) || nonce (24) || ciphertext || tag (16)`, where the
//! ciphertext is XChaCha20-Poly1305 under `HKDF-Expand(storage key, "SecureChat v1 pickle")`
//! with `version || kind` as associated data. The version and kind are checked before
//! decryption so their errors are precise; a wrong key or any modification is
//! [`Error::PickleDecryption`].

use crate::codec::Reader;
use crate::error::{Error, Result};
use crate::primitives::{
    TAG_LEN, fill_random, hkdf_sha256_expand, xchacha20poly1305_open, xchacha20poly1305_seal,
};
use core::fmt;
use rand_core::TryCryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Pickle format version written and read by this build.
pub const PICKLE_VERSION: u8 = 1;
const PICKLE_KDF_INFO: &[u8] = b"SecureChat v1 pickle";
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 2 + NONCE_LEN;

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

    fn subkey(&self) -> Result<Zeroizing<[u8; 32]>> {
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf_sha256_expand(&self.0, PICKLE_KDF_INFO, key.as_mut_slice())?;
        Ok(key)
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

/// Seals `plaintext` (an object's binary form) under `key`.
pub(crate) fn seal<R: TryCryptoRng + ?Sized>(
    kind: PickleKind,
    plaintext: &[u8],
    key: &PickleKey,
    rng: &mut R,
) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(rng, &mut nonce)?;
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.push(PICKLE_VERSION);
    out.push(kind as u8);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let ad = [PICKLE_VERSION, kind as u8];
    let subkey = key.subkey()?;
    let body = out.get_mut(HEADER_LEN..).ok_or(Error::InvalidField)?;
    let tag = xchacha20poly1305_seal(&subkey, &nonce, &ad, body)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens a sealed pickle of `kind`; the result is wiped on drop.
pub(crate) fn open(kind: PickleKind, sealed: &[u8], key: &PickleKey) -> Result<Zeroizing<Vec<u8>>> {
    let (&version, rest) = sealed.split_first().ok_or(Error::Truncated {
        needed: 1,
        remaining: 0,
    })?;
    if version != PICKLE_VERSION {
        return Err(Error::PickleVersion {
            expected: PICKLE_VERSION,
            got: version,
        });
    }
    let (&got_kind, rest) = rest.split_first().ok_or(Error::Truncated {
        needed: 1,
        remaining: 0,
    })?;
    if got_kind != kind as u8 {
        return Err(Error::PickleKind {
            expected: kind as u8,
            got: got_kind,
        });
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::Truncated {
            needed: NONCE_LEN + TAG_LEN,
            remaining: rest.len(),
        });
    }
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::InvalidField)?;
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::InvalidField)?;
    let mut plaintext = Zeroizing::new(body.to_vec());
    let subkey = key.subkey()?;
    xchacha20poly1305_open(&subkey, &nonce, &[version, got_kind], &mut plaintext, &tag)
        .map_err(|_| Error::PickleDecryption)?;
    Ok(plaintext)
}

/// Opens a sealed pickle of `kind` and parses all of it with `read`; trailing bytes are an
/// error.
pub(crate) fn open_with<T>(
    kind: PickleKind,
    sealed: &[u8],
    key: &PickleKey,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T>,
) -> Result<T> {
    let plain = open(kind, sealed, key)?;
    let mut r = Reader::new(&plain);
    let value = read(&mut r)?;
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
        let sealed = seal(PickleKind::Session, b"state", &key, &mut OsRng).unwrap();
        assert_eq!(
            &open(PickleKind::Session, &sealed, &key).unwrap()[..],
            b"state"
        );
        assert_eq!(
            open(PickleKind::Account, &sealed, &key),
            Err(Error::PickleKind {
                expected: 1,
                got: 2
            })
        );
        assert_eq!(
            open(PickleKind::Session, &sealed, &PickleKey::new([8; 32])),
            Err(Error::PickleDecryption)
        );
        let mut wrong_version = sealed.clone();
        wrong_version[0] = 7;
        assert_eq!(
            open(PickleKind::Session, &wrong_version, &key),
            Err(Error::PickleVersion {
                expected: 1,
                got: 7
            })
        );
        for i in 0..sealed.len() * 8 {
            let mut t = sealed.clone();
            t[i / 8] ^= 1 << (i % 8);
            assert!(open(PickleKind::Session, &t, &key).is_err());
        }
        for len in 0..sealed.len() {
            assert!(open(PickleKind::Session, &sealed[..len], &key).is_err());
        }
    }
}
