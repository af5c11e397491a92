//! Safety numbers: a numeric fingerprint of two identities that both users can compare.
//!
//! Two people read the same 60 digits on their screens (or scan each other's QR code) to check
//! that no one sits between them. The construction follows the idea of Signal's numeric
//! fingerprints: an iterated hash per party makes each digit group expensive to target, and the
//! two halves are sorted so that both sides compute the same number.
//!
//! # Construction (version 1, docs/protocol.md §15)
//!
//! For each party, with `key` the 64 key bytes of its public identity (Ed25519 key followed by
//! the X25519 identity key, [`PublicIdentity::key_bytes`]) and `id` its stable user identifier:
//!
//! ```text
//! h_0    = version (u16 big-endian, 0x0001) || key || id
//! h_i    = SHA-512(h_{i-1} || key)           for i = 1 ..= 5200
//! digits = for each of the six 5-byte big-endian integers in h_5200[0..30]:
//!          (integer mod 100000) as 5 decimal digits        -> 30 digits
//! fingerprint = h_5200[0..32]                              (for the QR code)
//! ```
//!
//! The safety number is the two 30-digit strings concatenated, the lexicographically smaller
//! first (60 digits), shown as 12 groups of 5. The QR payload is
//! `version (1 byte, 0x00) || local fingerprint (32) || remote fingerprint (32)`; the scanning
//! side accepts it when the scanned local half is its remote fingerprint and vice versa.
//!
//! # Inputs
//! - `key` covers the whole public identity: both keys, so that substituting the X25519
//!   identity key (which X3DH uses) changes the number as surely as substituting the Ed25519
//!   key. Version 0 hashed the Ed25519 key alone (issue #10). It always has 64 bytes
//!   ([`KEY_BYTES_LEN`]), so `key || id` needs no length prefix; [`SafetyNumber::from_key_bytes`]
//!   refuses any other length.
//! - `id` must be stable for the account: the relay's internal user id, not the editable
//!   `ms_id`, or the number would change when a user renames themselves.
//!
//! ```
//! use crypto_core::Account;
//! use crypto_core::safety_number::SafetyNumber;
//!
//! # fn main() -> Result<(), crypto_core::Error> {
//! let (alice, bob) = (Account::new()?, Account::new()?);
//! let at_alice = SafetyNumber::new(alice.identity(), b"user:1", bob.identity(), b"user:2");
//! let at_bob = SafetyNumber::new(bob.identity(), b"user:2", alice.identity(), b"user:1");
//! assert_eq!(at_alice.digits(), at_bob.digits());
//! assert_eq!(at_bob.compare_qr(&at_alice.qr_payload()), Ok(true));
//! # Ok(())
//! # }
//! ```

use crate::codec::Reader;
use crate::error::{DecodeError, SafetyNumberError};
use crate::identity::PublicIdentity;
use crate::primitives::ct_eq;
use core::fmt;
use sha2::{Digest, Sha512};

/// Version of the fingerprint construction and of the QR payload (1: both identity keys).
pub const VERSION: u8 = 1;
/// Length of the key bytes hashed per party: Ed25519 key (32) || X25519 identity key (32).
pub const KEY_BYTES_LEN: usize = 64;
/// Number of SHA-512 iterations per fingerprint.
pub const ITERATIONS: usize = 5200;
/// Length of the QR payload: version, local fingerprint, remote fingerprint.
pub const QR_PAYLOAD_LEN: usize = 1 + 2 * FINGERPRINT_LEN;
/// Number of digits in a safety number.
pub const DIGITS_LEN: usize = 60;

const FINGERPRINT_LEN: usize = 32;
const GROUP_LEN: usize = 5;

/// The safety number of a conversation between a local and a remote identity.
#[derive(Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    digits: String,
    local_fingerprint: [u8; FINGERPRINT_LEN],
    remote_fingerprint: [u8; FINGERPRINT_LEN],
}

impl SafetyNumber {
    /// Computes the safety number between the local and the remote identity, each with its
    /// stable user identifier (public data only).
    #[must_use]
    pub fn new(
        local_identity: &PublicIdentity,
        local_id: &[u8],
        remote_identity: &PublicIdentity,
        remote_id: &[u8],
    ) -> Self {
        Self::from_keys(
            &local_identity.key_bytes(),
            local_id,
            &remote_identity.key_bytes(),
            remote_id,
        )
    }

    /// [`SafetyNumber::new`] from the 64 key bytes of each identity
    /// ([`PublicIdentity::key_bytes`]: Ed25519 key || X25519 key), for callers that pinned
    /// those bytes. Any other length is [`SafetyNumberError::InvalidKeyLength`].
    pub fn from_key_bytes(
        local_key_bytes: &[u8],
        local_id: &[u8],
        remote_key_bytes: &[u8],
        remote_id: &[u8],
    ) -> Result<Self, SafetyNumberError> {
        Ok(Self::from_keys(
            &key_bytes(local_key_bytes)?,
            local_id,
            &key_bytes(remote_key_bytes)?,
            remote_id,
        ))
    }

    pub(crate) fn from_keys(
        local_key: &[u8; KEY_BYTES_LEN],
        local_id: &[u8],
        remote_key: &[u8; KEY_BYTES_LEN],
        remote_id: &[u8],
    ) -> Self {
        let local = iterated_digest(local_key, local_id);
        let remote = iterated_digest(remote_key, remote_id);
        let (local_digits, remote_digits) = (digits_of(&local), digits_of(&remote));
        let digits = if local_digits <= remote_digits {
            local_digits + &remote_digits
        } else {
            remote_digits + &local_digits
        };
        Self {
            digits,
            local_fingerprint: fingerprint_of(&local),
            remote_fingerprint: fingerprint_of(&remote),
        }
    }

    /// The 60 digits, without separators.
    #[must_use]
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The digits as 12 groups of 5 separated by single spaces.
    #[must_use]
    pub fn display(&self) -> String {
        let mut text = String::with_capacity(DIGITS_LEN + DIGITS_LEN / GROUP_LEN);
        for (i, digit) in self.digits.chars().enumerate() {
            if i > 0 && i % GROUP_LEN == 0 {
                text.push(' ');
            }
            text.push(digit);
        }
        text
    }

    /// The payload to show as a QR code: version || local fingerprint || remote fingerprint.
    #[must_use]
    pub fn qr_payload(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(QR_PAYLOAD_LEN);
        payload.push(VERSION);
        payload.extend_from_slice(&self.local_fingerprint);
        payload.extend_from_slice(&self.remote_fingerprint);
        payload
    }

    /// Checks a QR payload scanned from the other party's screen.
    ///
    /// Returns `Ok(true)` when it shows the same two identities (its local half is our remote
    /// identity and its remote half is ours), `Ok(false)` when it shows other identities, and
    /// an error when it is not a version-1 payload of [`QR_PAYLOAD_LEN`] bytes (a version-0
    /// payload, which covered the Ed25519 key only, is [`DecodeError::UnsupportedVersion`], in
    /// [`SafetyNumberError::Decode`]).
    pub fn compare_qr(&self, scanned: &[u8]) -> Result<bool, SafetyNumberError> {
        let mut reader = Reader::new(scanned);
        let version = reader.u8()?;
        if version != VERSION {
            return Err(SafetyNumberError::Decode(DecodeError::UnsupportedVersion {
                expected: VERSION,
                got: version,
            }));
        }
        let their_local: [u8; FINGERPRINT_LEN] = reader.array()?;
        let their_remote: [u8; FINGERPRINT_LEN] = reader.array()?;
        reader.finish()?;
        // Both halves are always compared: no early exit reveals which one differed.
        let same = ct_eq(&their_local, &self.remote_fingerprint)
            & ct_eq(&their_remote, &self.local_fingerprint);
        Ok(same)
    }
}

impl fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SafetyNumber")
            .field(&self.display())
            .finish()
    }
}

fn key_bytes(bytes: &[u8]) -> Result<[u8; KEY_BYTES_LEN], SafetyNumberError> {
    bytes
        .try_into()
        .map_err(|_| SafetyNumberError::InvalidKeyLength {
            expected: KEY_BYTES_LEN,
            got: bytes.len(),
        })
}

/// h_5200 for one party (see the module documentation).
fn iterated_digest(key: &[u8; KEY_BYTES_LEN], id: &[u8]) -> [u8; 64] {
    let mut hasher = Sha512::new();
    hasher.update(u16::from(VERSION).to_be_bytes());
    hasher.update(key);
    hasher.update(id);
    hasher.update(key);
    let mut digest: [u8; 64] = hasher.finalize().into();
    for _ in 1..ITERATIONS {
        let mut hasher = Sha512::new();
        hasher.update(digest);
        hasher.update(key);
        digest = hasher.finalize().into();
    }
    digest
}

/// Six groups of five digits from the first 30 bytes.
fn digits_of(digest: &[u8; 64]) -> String {
    let mut digits = String::with_capacity(DIGITS_LEN / 2);
    for chunk in digest.chunks_exact(GROUP_LEN).take(6) {
        let value = chunk
            .iter()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
        digits.push_str(&format!("{:05}", value % 100_000));
    }
    digits
}

fn fingerprint_of(digest: &[u8; 64]) -> [u8; FINGERPRINT_LEN] {
    digest.first_chunk().copied().unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn digit_groups_are_zero_padded() {
        let mut digest = [0u8; 64];
        // 0x00_0000_0001 = 1 and 0x01_0000_0000 = 4294967296 -> 67296.
        digest[4] = 1;
        digest[5] = 1;
        assert_eq!(digits_of(&digest), "000016729600000000000000000000");
    }

    #[test]
    fn matches_naive_reference() {
        // The definition written out with explicit buffers: h_0 is not hashed by itself.
        let (key, id) = ([7u8; KEY_BYTES_LEN], b"some-user");
        let mut h: Vec<u8> = [&[0u8, 1][..], &key, id].concat();
        for _ in 0..ITERATIONS {
            h = Sha512::digest([&h[..], &key].concat()).to_vec();
        }
        assert_eq!(iterated_digest(&key, id).to_vec(), h);
    }

    #[test]
    fn display_groups() {
        let number = SafetyNumber::from_keys(&[1; KEY_BYTES_LEN], b"a", &[2; KEY_BYTES_LEN], b"b");
        let shown = number.display();
        assert_eq!(shown.len(), 71);
        assert_eq!(shown.split(' ').count(), 12);
        assert!(shown.split(' ').all(|g| g.len() == 5));
        assert_eq!(shown.replace(' ', ""), number.digits());
        assert_eq!(number.to_string(), shown);
    }
}
