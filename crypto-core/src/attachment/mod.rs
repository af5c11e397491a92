//! Encrypted attachments: XChaCha20-Poly1305 in the STREAM construction.
//!
//! Every attachment gets a fresh random 32-byte key. The plaintext is cut into chunks of
//! [`CHUNK_SIZE`] bytes, each sealed with XChaCha20-Poly1305 under a nonce built from a random
//! per-attachment prefix, the chunk counter and a last-chunk flag. This is the nonce-based
//! online AE scheme STREAM of Hoang, Reyhanitabar, Rogaway and Vizár ("Online
//! Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015, section 7):
//! because the counter and the flag are part of every nonce, reordering, dropping, duplicating,
//! truncating or extending the chunk sequence makes decryption fail. The SHA-256 of the whole
//! ciphertext is computed while encrypting; key, digest and lengths travel inside the
//! end-to-end encrypted message ([`AttachmentInfo`]) and the relay only holds the opaque blob.
//!
//! XChaCha20-Poly1305 does not commit to its key: a sender could craft one blob that two keys
//! open to two different plaintexts, and give each recipient another key. So the chunks are not
//! sealed under the attachment key itself but under a chunk key derived from it, and the header
//! carries a second output of the same key, a key commitment, which the decryptor recomputes
//! and compares (in constant time) before it opens the first chunk. A key that does not match
//! the commitment is refused with [`AttachmentError::AttachmentKeyMismatch`].
//!
//! # Format (version 2)
//!
//! ```text
//! chunk_key  = HKDF-Expand(key, "SecureChat v2 attachment chunk key", 32)
//! commitment = HKDF-Expand(key, "SecureChat v2 attachment key commitment", 32)
//! header  = version (1 byte, 0x02)
//!        || log2(chunk size) (1 byte, 0x10: 64 KiB chunks; any other value is refused)
//!        || nonce prefix (19 random bytes)
//!        || commitment (32 bytes)
//! chunk_i = XChaCha20-Poly1305(chunk_key, nonce_i, ad = header, plaintext_i)
//!           (ciphertext || 16-byte tag)
//! nonce_i = nonce prefix (19) || i as u32 big-endian (4) || last flag (1: 0x01 on the final
//!           chunk, 0x00 on every other)
//! blob    = header || chunk_0 || chunk_1 || ... || chunk_n
//! digest  = SHA-256(blob)
//! ```
//!
//! Every chunk but the final one holds exactly [`CHUNK_SIZE`] plaintext bytes; the final chunk
//! holds 0 to [`CHUNK_SIZE`] bytes and is always present, so an empty attachment is the header
//! and one 16-byte tag, and a plaintext whose length is a multiple of [`CHUNK_SIZE`] ends with a
//! full final chunk (not an empty extra one). At most 2^32 chunks can be numbered
//! ([`MAX_PLAINTEXT_LEN`]); the counter never wraps.
//!
//! # Example
//!
//! ```
//! use crypto_core::attachment::{decrypt_attachment, encrypt_attachment};
//!
//! # fn main() -> Result<(), crypto_core::Error> {
//! let (blob, info) = encrypt_attachment(b"holiday.jpg bytes")?; // blob goes to the relay
//! let plaintext = decrypt_attachment(&blob, &info)?; // info went inside the E2EE message
//! assert_eq!(&plaintext[..], b"holiday.jpg bytes");
//! # Ok(())
//! # }
//! ```
//!
//! # Performance
//! On native targets a call that seals or opens at least four chunks uses a second, scoped
//! thread (no extra buffers; the thread ends before the call returns): when encrypting it
//! seals part of the chunks while the calling thread seals the rest and computes the SHA-256
//! of the ciphertext in order; when decrypting it computes the SHA-256 while the calling
//! thread opens the chunks. Smaller calls, wasm32, and any target where no thread can be
//! started run on the calling thread, with the same output. Feed the streaming API pieces of
//! 256 KiB or more to get the parallel path (docs/benchmarks.md, "Goal 2").
//!
//! # Security notes
//! - [`AttachmentDecryptor::update`] releases a chunk's plaintext only after that chunk
//!   authenticated, but the ciphertext digest can only be checked in
//!   [`AttachmentDecryptor::finish`]. Treat the streamed plaintext as provisional (for example
//!   write it to a temporary file) until `finish` returns `Ok`.
//! - The header's key commitment makes the format key-committing: HKDF-Expand of one key is
//!   HMAC-SHA256 under that key, so a second key with the same commitment is a SHA-256
//!   collision. The SHA-256 digest, delivered over the authenticated session, binds the message
//!   to one exact blob, commitment included.
//! - The streaming decryptor grows `out` without leaving freed copies of plaintext behind; the
//!   caller owns `out` and should wipe it (for example by passing a `Zeroizing<Vec<u8>>`).

// Private submodules; everything public is re-exported here, so the paths stay
// `crypto_core::attachment::*`. `stream`: the STREAM layer (nonces, one chunk sealed or
// opened, header checks); `encrypt` and `decrypt`: the one-shot functions and the streaming
// types; `parallel`: the two-thread paths of large calls. This file: keys, metadata, lengths.
mod decrypt;
mod encrypt;
mod parallel;
mod stream;

pub use decrypt::{AttachmentDecryptor, decrypt_attachment};
pub use encrypt::{AttachmentEncryptor, encrypt_attachment, encrypt_attachment_with_rng};

use crate::error::AttachmentError;
use crate::primitives::{TAG_LEN, ct_eq, hkdf_sha256_expand_array, random_key};
use core::fmt;
use rand_core::TryCryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The format version this build writes and reads (first header byte). Version 1 had no key
/// commitment; its blobs are refused.
pub const VERSION: u8 = 2;
/// Base-2 logarithm of [`CHUNK_SIZE`], as stored in the second header byte.
pub const CHUNK_SIZE_LOG2: u8 = 16;
/// Plaintext bytes in every chunk but the final one (64 KiB).
pub const CHUNK_SIZE: usize = 1 << CHUNK_SIZE_LOG2;
/// Length of the random nonce prefix stored in the header.
pub const NONCE_PREFIX_LEN: usize = 19;
/// Length of the key commitment stored at the end of the header.
pub const COMMITMENT_LEN: usize = 32;
/// Length of the header: version, chunk size, nonce prefix, key commitment.
pub const HEADER_LEN: usize = 2 + NONCE_PREFIX_LEN + COMMITMENT_LEN;
/// Length of one full chunk on the wire: [`CHUNK_SIZE`] bytes of ciphertext and a tag.
pub const ENCRYPTED_CHUNK_LEN: usize = CHUNK_SIZE + TAG_LEN;
/// The largest plaintext that can be encrypted: 2^32 chunks of [`CHUNK_SIZE`] bytes.
pub const MAX_PLAINTEXT_LEN: u64 = (1u64 << 32) * CHUNK_SIZE as u64;

const CHUNK_LEN_U64: u64 = CHUNK_SIZE as u64;
const ENCRYPTED_CHUNK_LEN_U64: u64 = ENCRYPTED_CHUNK_LEN as u64;
const HEADER_LEN_U64: u64 = HEADER_LEN as u64;
const TAG_LEN_U64: u64 = TAG_LEN as u64;

/// HKDF-Expand info of the key every chunk is sealed under.
pub(crate) const CHUNK_KEY_INFO: &[u8] = b"SecureChat v2 attachment chunk key";
/// HKDF-Expand info of the key commitment written in the header.
pub(crate) const COMMITMENT_INFO: &[u8] = b"SecureChat v2 attachment key commitment";
/// Where the key commitment starts in the header.
const COMMITMENT_OFFSET: usize = 2 + NONCE_PREFIX_LEN;

// ---------------------------------------------------------------------------------------------
// Keys and metadata

/// The 32-byte symmetric key of one attachment; wiped on drop, never printed.
#[derive(Clone)]
pub struct AttachmentKey(Box<[u8; 32]>);

impl AttachmentKey {
    /// Wraps 32 key bytes received in a message.
    #[must_use]
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Box::new(*bytes))
    }

    /// The key bytes, for putting into the end-to-end encrypted message.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key commitment this key gives, as written in the attachment header (public).
    #[must_use]
    pub fn commitment(&self) -> [u8; COMMITMENT_LEN] {
        *hkdf_sha256_expand_array::<32>(self.as_bytes(), COMMITMENT_INFO)
    }

    fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, AttachmentError> {
        let bytes = random_key(rng)?;
        Ok(Self::from_bytes(&bytes))
    }

    /// The key the chunks are sealed under (never the attachment key itself).
    fn chunk_key(&self) -> Self {
        Self::from_bytes(&hkdf_sha256_expand_array::<32>(
            self.as_bytes(),
            CHUNK_KEY_INFO,
        ))
    }
}

impl Zeroize for AttachmentKey {
    fn zeroize(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

impl Drop for AttachmentKey {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for AttachmentKey {}

/// Constant-time comparison.
impl PartialEq for AttachmentKey {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(self.as_bytes(), other.as_bytes())
    }
}

impl Eq for AttachmentKey {}

impl fmt::Debug for AttachmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentKey").finish_non_exhaustive()
    }
}

/// What the recipient needs to fetch and decrypt an attachment; it travels inside the
/// end-to-end encrypted message, never in the clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// The attachment key.
    pub key: AttachmentKey,
    /// SHA-256 of the complete ciphertext blob, header included.
    pub digest: [u8; 32],
    /// Length of the ciphertext blob in bytes.
    pub ciphertext_len: u64,
    /// Length of the plaintext in bytes.
    pub plaintext_len: u64,
}

/// The ciphertext length for a plaintext of `plaintext_len` bytes, or `None` above
/// [`MAX_PLAINTEXT_LEN`].
#[must_use]
pub fn ciphertext_len_for(plaintext_len: u64) -> Option<u64> {
    if plaintext_len > MAX_PLAINTEXT_LEN {
        return None;
    }
    let chunks = plaintext_len.div_ceil(CHUNK_LEN_U64).max(1);
    HEADER_LEN_U64
        .checked_add(plaintext_len)?
        .checked_add(chunks.checked_mul(TAG_LEN_U64)?)
}

/// The plaintext length inside a ciphertext of `ciphertext_len` bytes, or `None` if no
/// well-formed ciphertext has that length.
#[must_use]
pub fn plaintext_len_for(ciphertext_len: u64) -> Option<u64> {
    let body = ciphertext_len.checked_sub(HEADER_LEN_U64)?;
    let chunks = body.div_ceil(ENCRYPTED_CHUNK_LEN_U64);
    let last = body.checked_sub(
        chunks
            .checked_sub(1)?
            .checked_mul(ENCRYPTED_CHUNK_LEN_U64)?,
    )?;
    if last < TAG_LEN_U64 || chunks > 1u64 << 32 {
        return None;
    }
    body.checked_sub(chunks.checked_mul(TAG_LEN_U64)?)
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the submodules

/// Checks that the lengths in `info` describe a well-formed blob; returns the plaintext length.
fn check_info(info: &AttachmentInfo) -> Result<u64, AttachmentError> {
    match plaintext_len_for(info.ciphertext_len) {
        Some(len) if len == info.plaintext_len => Ok(len),
        _ => Err(AttachmentError::InvalidField),
    }
}

fn next_counter(counter: u32) -> Result<u32, AttachmentError> {
    counter
        .checked_add(1)
        .ok_or_else(|| too_large(MAX_PLAINTEXT_LEN.saturating_add(1)))
}

fn too_large(len: u64) -> AttachmentError {
    AttachmentError::TooLarge {
        len: usize::try_from(len).unwrap_or(usize::MAX),
        max: usize::try_from(MAX_PLAINTEXT_LEN).unwrap_or(usize::MAX),
    }
}

fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// `data.split_at(mid)` that cannot panic (callers pass `mid <= data.len()`).
fn split(data: &[u8], mid: usize) -> (&[u8], &[u8]) {
    data.split_at_checked(mid).unwrap_or((data, &[]))
}

/// `&mut v[start..]` that cannot panic (callers pass `start <= v.len()`).
fn tail_mut(v: &mut [u8], start: usize) -> &mut [u8] {
    v.get_mut(start..).unwrap_or_default()
}

/// Wipes and removes everything in `out` after `start`.
fn discard_tail(out: &mut Vec<u8>, start: usize) {
    tail_mut(out, start).zeroize();
    out.truncate(start);
}

/// Makes room for `additional` bytes, wiping the old allocation if `out` has to move.
fn reserve_wiping(out: &mut Vec<u8>, additional: usize) {
    let needed = out.len().saturating_add(additional);
    if needed > out.capacity() {
        let mut bigger = Vec::with_capacity(needed.max(out.capacity().saturating_mul(2)));
        bigger.extend_from_slice(out);
        out.zeroize();
        *out = bigger;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn length_helpers_agree() {
        for len in [
            0,
            1,
            CHUNK_LEN_U64 - 1,
            CHUNK_LEN_U64,
            CHUNK_LEN_U64 + 1,
            3 * CHUNK_LEN_U64,
            MAX_PLAINTEXT_LEN,
        ] {
            let ct = ciphertext_len_for(len).unwrap();
            assert_eq!(plaintext_len_for(ct), Some(len), "plaintext {len}");
        }
        assert_eq!(ciphertext_len_for(0), Some(HEADER_LEN_U64 + TAG_LEN_U64));
        assert_eq!(ciphertext_len_for(MAX_PLAINTEXT_LEN + 1), None);
        // Too short for a header and a tag, or a final chunk shorter than a tag.
        assert_eq!(plaintext_len_for(HEADER_LEN_U64 + TAG_LEN_U64 - 1), None);
        assert_eq!(
            plaintext_len_for(HEADER_LEN_U64 + ENCRYPTED_CHUNK_LEN_U64 + 5),
            None
        );
    }

    #[test]
    fn key_debug_hides_bytes() {
        let key = AttachmentKey::from_bytes(&[0xab; 32]);
        let text = format!("{key:?}");
        assert!(!text.contains("ab"), "{text}");
        let info = AttachmentInfo {
            key,
            digest: [0; 32],
            ciphertext_len: 0,
            plaintext_len: 0,
        };
        assert!(!format!("{info:?}").contains("171"));
    }

    #[test]
    fn derivation_strings_are_distinct_and_prefix_free() {
        let others: [&[u8]; 12] = [
            b"SecureChat v2 identity key",
            b"SecureChat v2 signed prekey",
            b"SecureChat v2 X3DH",
            b"SecureChat v2 X3DH AD",
            b"SecureChat v2 ratchet root",
            b"SecureChat v2 message keys",
            b"SecureChat v2 session id",
            b"SecureChat v2 group message keys",
            b"SecureChat v2 group message",
            b"SecureChat v2 pickle",
            CHUNK_KEY_INFO,
            COMMITMENT_INFO,
        ];
        for ours in [CHUNK_KEY_INFO, COMMITMENT_INFO] {
            for other in others {
                if ours != other {
                    assert!(!ours.starts_with(other) && !other.starts_with(ours));
                }
            }
        }
        let key = AttachmentKey::from_bytes(&[3; 32]);
        assert_ne!(key.commitment(), *key.chunk_key().as_bytes());
        assert_ne!(&key.commitment(), key.as_bytes());
    }

    #[test]
    fn reserve_wiping_keeps_contents() {
        let mut v = vec![1u8, 2, 3];
        reserve_wiping(&mut v, 100);
        assert_eq!(v, [1, 2, 3]);
        assert!(v.capacity() >= 103);
    }
}
