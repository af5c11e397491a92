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
//! the commitment is refused with [`Error::AttachmentKeyMismatch`].
//!
//! # Format (version 2)
//!
//! ```text
//! chunk_key  = HKDF-Expand(key, "SecureChat v1 attachment chunk key", 32)
//! commitment = HKDF-Expand(key, "SecureChat v1 attachment key commitment", 32)
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

use crate::codec::Reader;
use crate::error::{Error, Result};
use crate::primitives::{
    OsRng, TAG_LEN, ct_eq, fill_random, hmac_finish, keyed_hmac, random_key, sha256,
    xchacha20poly1305_open, xchacha20poly1305_seal, xchacha20poly1305_seal_to,
};
use core::fmt;
use hmac::Mac;
use rand_core::TryCryptoRng;
use sha2::{Digest, Sha256};
use std::sync::{Mutex, MutexGuard, PoisonError};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

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

/// Below this many bytes per call everything runs on the calling thread; from here on (native
/// targets) a second, scoped thread shares the work (see the module's "Performance"). Starting
/// a thread costs tens of µs, four chunks take about a millisecond to seal.
const PARALLEL_HASH_MIN_LEN: usize = 4 * CHUNK_SIZE;

/// HKDF-Expand info of the key every chunk is sealed under.
const CHUNK_KEY_INFO: &[u8] = b"SecureChat v1 attachment chunk key";
/// HKDF-Expand info of the key commitment written in the header.
const COMMITMENT_INFO: &[u8] = b"SecureChat v1 attachment key commitment";
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
        *expand(self.as_bytes(), COMMITMENT_INFO)
    }

    fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self> {
        let bytes = random_key(rng)?;
        Ok(Self::from_bytes(&bytes))
    }

    /// The key the chunks are sealed under (never the attachment key itself).
    fn chunk_key(&self) -> Self {
        Self::from_bytes(&expand(self.as_bytes(), CHUNK_KEY_INFO))
    }
}

/// HKDF-Expand (RFC 5869 section 2.3) of a uniform 32-byte key to 32 bytes: T(1) =
/// HMAC-SHA256(key, info || 0x01), which cannot fail.
fn expand(key: &[u8; 32], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = keyed_hmac(key);
    mac.update(info);
    hmac_finish(mac, &[1])
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
// One-shot API

/// Encrypts a whole attachment under a fresh key from the OS random number generator.
///
/// Returns the ciphertext blob (for the relay) and the [`AttachmentInfo`] (for the message).
pub fn encrypt_attachment(plaintext: &[u8]) -> Result<(Vec<u8>, AttachmentInfo)> {
    encrypt_attachment_with_rng(&mut OsRng, plaintext)
}

/// Encrypts a whole attachment with key and nonce prefix drawn from `rng` (in that order).
pub fn encrypt_attachment_with_rng<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    plaintext: &[u8],
) -> Result<(Vec<u8>, AttachmentInfo)> {
    let len = len_u64(plaintext.len());
    let ciphertext_len = ciphertext_len_for(len).ok_or_else(|| too_large(len))?;
    let mut out = Vec::with_capacity(usize::try_from(ciphertext_len).unwrap_or(0));
    let mut encryptor = AttachmentEncryptor::new_with_rng(rng)?;
    encryptor.update(plaintext, &mut out)?;
    let info = encryptor.finish(&mut out)?;
    Ok((out, info))
}

/// Decrypts a whole attachment after checking its length and digest against `info`.
///
/// Nothing is returned unless every chunk authenticated; the plaintext is wiped on drop.
pub fn decrypt_attachment(ciphertext: &[u8], info: &AttachmentInfo) -> Result<Zeroizing<Vec<u8>>> {
    let plaintext_len = check_info(info)?;
    let len = len_u64(ciphertext.len());
    if len < info.ciphertext_len {
        return Err(Error::AttachmentTruncated);
    }
    if len > info.ciphertext_len {
        return Err(Error::AttachmentTrailingData);
    }
    // The digest is computed while the chunks are opened (on a second thread for large blobs);
    // nothing is returned unless both succeed, and a digest mismatch is reported first.
    let (digest, opened) = hash_while(
        ciphertext.len() >= PARALLEL_HASH_MIN_LEN,
        || sha256(ciphertext),
        || open_all(ciphertext, info, plaintext_len),
    );
    match digest {
        Some(digest) if ct_eq(&digest, &info.digest) => opened,
        // `opened` (plaintext, if any) is wiped on drop.
        _ => Err(Error::AttachmentDigestMismatch),
    }
}

/// Opens every chunk of a blob whose length was checked against `info`.
fn open_all(
    ciphertext: &[u8],
    info: &AttachmentInfo,
    plaintext_len: u64,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut reader = Reader::new(ciphertext);
    let header: [u8; HEADER_LEN] = reader.array().map_err(|_| Error::AttachmentTruncated)?;
    check_header(&header)?;
    check_commitment(&header, &info.key.commitment())?;
    let chunk_key = info.key.chunk_key();
    let body = reader.rest();
    if body.is_empty() {
        return Err(Error::AttachmentTruncated);
    }
    // Exact capacity: the plaintext is written in place and never reallocated.
    let mut out = Zeroizing::new(Vec::with_capacity(
        usize::try_from(plaintext_len).map_err(|_| too_large(plaintext_len))?,
    ));
    let mut counter = 0u32;
    let mut chunks = body.chunks(ENCRYPTED_CHUNK_LEN).peekable();
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let next = if last {
            counter
        } else {
            next_counter(counter)?
        };
        open_chunk(
            chunk_key.as_bytes(),
            &header,
            counter,
            last,
            chunk,
            &mut out,
        )?;
        counter = next;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Streaming encryption

/// Encrypts an attachment incrementally, holding at most one chunk of plaintext.
///
/// The header is written to `out` by the first [`update`](Self::update) or by
/// [`finish`](Self::finish), followed by each chunk as soon as it is known not to be the final one.
pub struct AttachmentEncryptor {
    key: AttachmentKey,
    /// Derived from `key`; what the chunks are sealed under.
    chunk_key: AttachmentKey,
    header: [u8; HEADER_LEN],
    counter: u32,
    /// Plaintext not yet sealed: at most one chunk, allocated once with that capacity.
    buffer: Zeroizing<Vec<u8>>,
    hasher: Sha256,
    header_written: bool,
    plaintext_len: u64,
    ciphertext_len: u64,
    failed: bool,
}

impl AttachmentEncryptor {
    /// Starts an attachment with a fresh key and nonce prefix from the OS random number generator.
    pub fn new() -> Result<Self> {
        Self::new_with_rng(&mut OsRng)
    }

    /// Starts an attachment with the key and then the nonce prefix drawn from `rng`.
    pub fn new_with_rng<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self> {
        let key = AttachmentKey::generate(rng)?;
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        fill_random(rng, &mut prefix)?;
        let commitment = key.commitment();
        let mut header = [0u8; HEADER_LEN];
        for (dst, src) in header.iter_mut().zip(
            [VERSION, CHUNK_SIZE_LOG2]
                .iter()
                .chain(prefix.iter())
                .chain(commitment.iter()),
        ) {
            *dst = *src;
        }
        Ok(Self {
            chunk_key: key.chunk_key(),
            key,
            header,
            counter: 0,
            buffer: Zeroizing::new(Vec::new()),
            hasher: Sha256::new(),
            header_written: false,
            plaintext_len: 0,
            ciphertext_len: 0,
            failed: false,
        })
    }

    /// Encrypts the next piece of plaintext, appending every completed chunk to `out`.
    ///
    /// Full chunks are encrypted straight from `data` into `out`; only the tail that may turn
    /// out to be the final chunk is buffered.
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if self.failed {
            return Err(Error::AttachmentStreamClosed);
        }
        let result = self.update_inner(data, out);
        if result.is_err() {
            self.failed = true;
            self.buffer.zeroize();
        }
        result
    }

    fn update_inner(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.write_header(out);
        let added = len_u64(data.len());
        self.plaintext_len = self
            .plaintext_len
            .checked_add(added)
            .filter(|len| *len <= MAX_PLAINTEXT_LEN)
            .ok_or_else(|| too_large(self.plaintext_len.saturating_add(added)))?;

        let mut data = data;
        if !self.buffer.is_empty() {
            let take = CHUNK_SIZE.saturating_sub(self.buffer.len()).min(data.len());
            let (head, rest) = split(data, take);
            self.buffer.extend_from_slice(head);
            data = rest;
            if data.is_empty() {
                // A full buffer may still be the final chunk: wait for more data or finish.
                return Ok(());
            }
            self.seal_buffer(false, out)?;
            self.buffer.zeroize();
        }
        // Every full chunk followed by more data is known not to be the final one.
        let full_chunks = data.len().saturating_sub(1) / CHUNK_SIZE;
        if full_chunks > 0 {
            let (chunks, rest) = split(data, full_chunks.saturating_mul(CHUNK_SIZE));
            self.seal_full_chunks(chunks, out)?;
            data = rest;
        }
        if !data.is_empty() {
            if self.buffer.capacity() < CHUNK_SIZE {
                // Allocated once at full size, so plaintext is never left behind by a realloc.
                self.buffer = Zeroizing::new(Vec::with_capacity(CHUNK_SIZE));
            }
            self.buffer.extend_from_slice(data);
        }
        Ok(())
    }

    /// Seals the final chunk (possibly empty) into `out` and returns the attachment's metadata.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<AttachmentInfo> {
        if self.failed {
            return Err(Error::AttachmentStreamClosed);
        }
        self.write_header(out);
        self.seal_buffer(true, out)?;
        self.buffer.zeroize();
        Ok(AttachmentInfo {
            digest: self.hasher.finalize().into(),
            key: self.key,
            ciphertext_len: self.ciphertext_len,
            plaintext_len: self.plaintext_len,
        })
    }

    fn write_header(&mut self, out: &mut Vec<u8>) {
        if !self.header_written {
            out.extend_from_slice(&self.header);
            self.hasher.update(self.header);
            self.ciphertext_len = HEADER_LEN_U64;
            self.header_written = true;
        }
    }

    /// Seals `plaintext` (whole chunks, none of them the final one) straight into `out`.
    ///
    /// Large calls (native targets) use two threads: a scoped second thread seals the last
    /// 3/5 of the chunks while this one seals the first 2/5 and hashes them, then hashes the
    /// rest in order once the second thread is done. With SHA-256 costing about half of the
    /// AEAD per byte, both threads finish their sealing at about the same time and the call
    /// takes about 0.9 of a one-thread AEAD pass, hash included (docs/benchmarks.md,
    /// "Attachments"). The two halves write disjoint parts of `out`; nothing else is shared.
    fn seal_full_chunks(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let count = plaintext.len() / CHUNK_SIZE;
        let end_counter = u32::try_from(count)
            .ok()
            .and_then(|n| self.counter.checked_add(n))
            .ok_or_else(|| too_large(MAX_PLAINTEXT_LEN.saturating_add(1)))?;
        let added = count
            .checked_mul(ENCRYPTED_CHUNK_LEN)
            .ok_or_else(|| too_large(len_u64(plaintext.len())))?;
        let start = out.len();
        // Ciphertext only ever lands in `out` (sealed from `plaintext`, no copy in place).
        out.resize(start.saturating_add(added), 0);
        let region = tail_mut(out, start);
        let (key, header, first) = (&self.chunk_key, &self.header, self.counter);
        let here = if plaintext.len() >= PARALLEL_HASH_MIN_LEN {
            count.saturating_mul(2) / 5
        } else {
            count
        };
        let (region_here, region_there) =
            region.split_at_mut(here.saturating_mul(ENCRYPTED_CHUNK_LEN).min(region.len()));
        let (plain_here, plain_there) =
            plaintext.split_at(here.saturating_mul(CHUNK_SIZE).min(plaintext.len()));
        // `here` < 2^32 because `count` is (checked above).
        let there_first = first.wrapping_add(u32::try_from(here).unwrap_or(u32::MAX));
        let hasher = &mut self.hasher;
        let (there, here_result) = join(
            !plain_there.is_empty(),
            || {
                seal_chunks(
                    key.as_bytes(),
                    header,
                    there_first,
                    plain_there,
                    region_there,
                )
            },
            || {
                seal_chunks(key.as_bytes(), header, first, plain_here, region_here)?;
                hasher.update(&*region_here);
                Ok(())
            },
        );
        let sealed = here_result.and(there.unwrap_or(Err(Error::AttachmentStreamClosed)));
        match sealed {
            Ok(()) => {
                self.hasher.update(&*region_there);
                self.counter = end_counter;
                self.ciphertext_len = self.ciphertext_len.saturating_add(len_u64(added));
                Ok(())
            }
            Err(e) => {
                // The hasher has seen part of this call: the stream cannot go on.
                self.failed = true;
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// Seals the buffered chunk into `out` (hashed on this thread: at most one chunk).
    fn seal_buffer(&mut self, last: bool, out: &mut Vec<u8>) -> Result<()> {
        let next = if last {
            self.counter
        } else {
            next_counter(self.counter)?
        };
        let plaintext = self.buffer.as_slice();
        // Encrypt in place in `out`: one copy of the plaintext, no per-chunk allocation.
        let start = out.len();
        out.extend_from_slice(plaintext);
        let nonce = chunk_nonce(&self.header, self.counter, last);
        let tag = xchacha20poly1305_seal(
            self.chunk_key.as_bytes(),
            &nonce,
            &self.header,
            tail_mut(out, start),
        )?;
        out.extend_from_slice(&tag);
        let chunk = tail_mut(out, start);
        self.hasher.update(&*chunk);
        self.ciphertext_len = self.ciphertext_len.saturating_add(len_u64(chunk.len()));
        self.counter = next;
        Ok(())
    }
}

impl fmt::Debug for AttachmentEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentEncryptor")
            .field("chunks_sealed", &self.counter)
            .field("plaintext_len", &self.plaintext_len)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming decryption

/// Decrypts an attachment incrementally, holding at most one encrypted chunk.
///
/// A full-size chunk might be the final one, so the decryptor keeps it until it sees whether
/// more data follows; plaintext is appended to `out` only for chunks that authenticated. After
/// any error every further call returns [`Error::AttachmentStreamClosed`].
pub struct AttachmentDecryptor {
    /// Derived from the attachment key; what the chunks are opened with.
    chunk_key: AttachmentKey,
    /// The key commitment the header must carry.
    commitment: [u8; COMMITMENT_LEN],
    expected_digest: [u8; 32],
    expected_len: Option<u64>,
    header: [u8; HEADER_LEN],
    header_len: usize,
    counter: u32,
    /// Ciphertext not yet opened: at most one encrypted chunk.
    buffer: Vec<u8>,
    hasher: Sha256,
    received: u64,
    failed: bool,
}

impl AttachmentDecryptor {
    /// Starts decrypting a blob that must hash to `expected_digest`.
    #[must_use]
    pub fn new(key: &AttachmentKey, expected_digest: &[u8; 32]) -> Self {
        Self {
            chunk_key: key.chunk_key(),
            commitment: key.commitment(),
            expected_digest: *expected_digest,
            expected_len: None,
            header: [0u8; HEADER_LEN],
            header_len: 0,
            counter: 0,
            buffer: Vec::new(),
            hasher: Sha256::new(),
            received: 0,
            failed: false,
        }
    }

    /// Starts decrypting the blob `info` describes; more data than
    /// [`AttachmentInfo::ciphertext_len`] is refused as soon as it arrives.
    pub fn for_attachment(info: &AttachmentInfo) -> Result<Self> {
        check_info(info)?;
        let mut decryptor = Self::new(&info.key, &info.digest);
        decryptor.expected_len = Some(info.ciphertext_len);
        Ok(decryptor)
    }

    /// Consumes the next piece of ciphertext and appends the plaintext of every chunk that is
    /// now known not to be the final one and that authenticated.
    pub fn update(&mut self, ciphertext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if self.failed {
            return Err(Error::AttachmentStreamClosed);
        }
        let result = self.update_inner(ciphertext, out);
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn update_inner(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.received = self.received.saturating_add(len_u64(data.len()));
        if self.expected_len.is_some_and(|max| self.received > max) {
            return Err(Error::AttachmentTrailingData);
        }
        // The digest of the ciphertext is computed while the chunks are opened (on a second
        // thread for large pieces); it is checked in `finish`.
        let hasher = Mutex::new(core::mem::take(&mut self.hasher));
        let (hashed, opened) = hash_while(
            data.len() >= PARALLEL_HASH_MIN_LEN,
            || lock(&hasher).update(data),
            || self.open_chunks(data, out),
        );
        self.hasher = hasher.into_inner().unwrap_or_else(PoisonError::into_inner);
        opened?;
        hashed.ok_or(Error::AttachmentDigestMismatch)
    }

    fn open_chunks(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mut data = data;
        if self.header_len < HEADER_LEN {
            let take = (HEADER_LEN - self.header_len).min(data.len());
            let (head, rest) = split(data, take);
            for (dst, src) in self.header.iter_mut().skip(self.header_len).zip(head) {
                *dst = *src;
            }
            self.header_len += take;
            check_header(self.header.get(..self.header_len).unwrap_or_default())?;
            if self.header_len == HEADER_LEN {
                // Before the first chunk is opened: a key the sender did not commit to is refused.
                check_commitment(&self.header, &self.commitment)?;
            }
            data = rest;
        }
        if data.is_empty() {
            return Ok(());
        }

        if !self.buffer.is_empty() {
            let take = ENCRYPTED_CHUNK_LEN
                .saturating_sub(self.buffer.len())
                .min(data.len());
            let (head, rest) = split(data, take);
            self.buffer.extend_from_slice(head);
            data = rest;
            if data.is_empty() {
                // A full buffer may be the final chunk: wait for more data or finish.
                return Ok(());
            }
            let next = next_counter(self.counter)?;
            open_chunk(
                self.chunk_key.as_bytes(),
                &self.header,
                self.counter,
                false,
                &self.buffer,
                out,
            )?;
            self.counter = next;
            self.buffer.clear();
        }
        while data.len() > ENCRYPTED_CHUNK_LEN {
            let (chunk, rest) = split(data, ENCRYPTED_CHUNK_LEN);
            let next = next_counter(self.counter)?;
            open_chunk(
                self.chunk_key.as_bytes(),
                &self.header,
                self.counter,
                false,
                chunk,
                out,
            )?;
            self.counter = next;
            data = rest;
        }
        if !data.is_empty() {
            if self.buffer.capacity() < ENCRYPTED_CHUNK_LEN {
                self.buffer = Vec::with_capacity(ENCRYPTED_CHUNK_LEN);
            }
            self.buffer.extend_from_slice(data);
        }
        Ok(())
    }

    /// Opens the final chunk and checks the digest of the whole blob.
    ///
    /// The final chunk's plaintext is appended to `out` only if both succeed.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.failed {
            return Err(Error::AttachmentStreamClosed);
        }
        // `self` is consumed, so a failure here cannot be followed by further use.
        self.finish_inner(out)
    }

    fn finish_inner(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.header_len < HEADER_LEN || self.expected_len.is_some_and(|len| self.received < len)
        {
            return Err(Error::AttachmentTruncated);
        }
        let start = out.len();
        open_chunk(
            self.chunk_key.as_bytes(),
            &self.header,
            self.counter,
            true,
            &self.buffer,
            out,
        )?;
        let digest: [u8; 32] = self.hasher.finalize_reset().into();
        if !ct_eq(&digest, &self.expected_digest) {
            discard_tail(out, start);
            return Err(Error::AttachmentDigestMismatch);
        }
        Ok(())
    }

    fn fail(&mut self) {
        self.failed = true;
        self.buffer = Vec::new();
    }
}

impl fmt::Debug for AttachmentDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentDecryptor")
            .field("chunks_opened", &self.counter)
            .field("received", &self.received)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Chunk-level helpers

/// nonce = prefix (19 bytes) || counter (u32 big-endian) || last flag (0x00 / 0x01).
fn chunk_nonce(header: &[u8; HEADER_LEN], counter: u32, last: bool) -> [u8; 24] {
    let mut nonce = [0u8; 24];
    let counter = counter.to_be_bytes();
    let flag = [u8::from(last)];
    let prefix = header.iter().skip(2).take(NONCE_PREFIX_LEN);
    for (dst, src) in nonce
        .iter_mut()
        .zip(prefix.chain(counter.iter()).chain(flag.iter()))
    {
        *dst = *src;
    }
    nonce
}

/// Authenticates and decrypts one chunk (ciphertext || tag), appending its plaintext to `out`.
///
/// On failure `out` is left as it was. A chunk that fails with the expected flag but
/// authenticates with the other one shows a truncated stream (a non-final chunk where the final
/// one was expected) or trailing data (the final chunk followed by more); that plaintext is
/// wiped, not released.
fn open_chunk(
    key: &[u8; 32],
    header: &[u8; HEADER_LEN],
    counter: u32,
    last: bool,
    chunk: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let Some((ciphertext, tag)) = chunk.split_last_chunk::<TAG_LEN>() else {
        return Err(Error::AttachmentTruncated);
    };
    reserve_wiping(out, ciphertext.len());
    let start = out.len();
    out.extend_from_slice(ciphertext);
    let nonce = chunk_nonce(header, counter, last);
    if xchacha20poly1305_open(key, &nonce, header, tail_mut(out, start), tag).is_ok() {
        return Ok(());
    }
    // Only a full-size chunk can be a non-final one; a failed open leaves the ciphertext as it was.
    let other_flag_fits = chunk.len() == ENCRYPTED_CHUNK_LEN && (!last || counter < u32::MAX);
    let other_nonce = chunk_nonce(header, counter, !last);
    let other_flag_opens = other_flag_fits
        && xchacha20poly1305_open(key, &other_nonce, header, tail_mut(out, start), tag).is_ok();
    discard_tail(out, start);
    Err(match (other_flag_opens, last) {
        (true, true) => Error::AttachmentTruncated,
        (true, false) => Error::AttachmentTrailingData,
        (false, _) => Error::DecryptionFailed,
    })
}

/// Runs `work` on the calling thread and `hash` at the same time on a scoped second thread
/// when `parallel` is set (native targets; on wasm32, or if no thread can be started, one after
/// the other: `work` first). Returns `hash`'s result (`None` only if its thread panicked, which
/// the SHA-256 code cannot do; callers fail closed) and `work`'s.
fn hash_while<H: Send, W>(
    parallel: bool,
    hash: impl Fn() -> H + Sync,
    work: impl FnOnce() -> W,
) -> (Option<H>, W) {
    #[cfg(not(target_arch = "wasm32"))]
    if parallel {
        return std::thread::scope(|scope| {
            match std::thread::Builder::new().spawn_scoped(scope, &hash) {
                Ok(handle) => {
                    let worked = work();
                    (handle.join().ok(), worked)
                }
                Err(_) => {
                    let worked = work();
                    (Some(hash()), worked)
                }
            }
        });
    }
    #[cfg(target_arch = "wasm32")]
    let _ = parallel;
    let worked = work();
    (Some(hash()), worked)
}

/// Seals consecutive full (non-final) chunks of `plaintext` into `out` (same number of
/// chunks, `ENCRYPTED_CHUNK_LEN` each), counters from `first`.
fn seal_chunks(
    key: &[u8; 32],
    header: &[u8; HEADER_LEN],
    first: u32,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let mut counter = first;
    for (dst, src) in out
        .chunks_mut(ENCRYPTED_CHUNK_LEN)
        .zip(plaintext.chunks(CHUNK_SIZE))
    {
        let (body, tag_dst) = dst.split_at_mut(CHUNK_SIZE.min(dst.len()));
        let nonce = chunk_nonce(header, counter, false);
        let tag = xchacha20poly1305_seal_to(key, &nonce, header, src, body)?;
        for (d, t) in tag_dst.iter_mut().zip(tag) {
            *d = t;
        }
        counter = counter.wrapping_add(1);
    }
    Ok(())
}

/// Runs `there` on a scoped second thread and `here` on the calling thread at the same time
/// when `parallel` is set (native targets); otherwise, on wasm32, or if no thread can be
/// started, one after the other (`there` first). `None` only if `there`'s thread panicked
/// (callers fail closed).
fn join<T: Send, H>(
    parallel: bool,
    there: impl FnOnce() -> T + Send,
    here: impl FnOnce() -> H,
) -> (Option<T>, H) {
    let job = Mutex::new(Some(there));
    let run = || lock(&job).take().map(|f| f());
    #[cfg(not(target_arch = "wasm32"))]
    if parallel {
        return std::thread::scope(|scope| {
            match std::thread::Builder::new().spawn_scoped(scope, run) {
                Ok(handle) => {
                    let done = here();
                    (handle.join().ok().flatten(), done)
                }
                Err(_) => {
                    let first = run();
                    (first, here())
                }
            }
        });
    }
    #[cfg(target_arch = "wasm32")]
    let _ = parallel;
    let first = run();
    (first, here())
}

/// Locks a mutex that only [`hash_while`] or [`join`] shares; a poisoned one (after a panic that cannot
/// happen) is used as it is, and the caller's result reports the failure.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Refuses a header (or the part of it received so far) with another version or chunk size.
fn check_header(header: &[u8]) -> Result<()> {
    let mut reader = Reader::new(header);
    if let Ok(version) = reader.u8()
        && version != VERSION
    {
        return Err(Error::UnsupportedVersion {
            expected: VERSION,
            got: version,
        });
    }
    if let Ok(log2) = reader.u8()
        && log2 != CHUNK_SIZE_LOG2
    {
        return Err(Error::InvalidField);
    }
    Ok(())
}

/// Refuses a header whose key commitment is not `expected` (compared in constant time).
fn check_commitment(header: &[u8; HEADER_LEN], expected: &[u8; COMMITMENT_LEN]) -> Result<()> {
    let found = header.get(COMMITMENT_OFFSET..).unwrap_or_default();
    if ct_eq(found, expected) {
        Ok(())
    } else {
        Err(Error::AttachmentKeyMismatch)
    }
}

/// Checks that the lengths in `info` describe a well-formed blob; returns the plaintext length.
fn check_info(info: &AttachmentInfo) -> Result<u64> {
    match plaintext_len_for(info.ciphertext_len) {
        Some(len) if len == info.plaintext_len => Ok(len),
        _ => Err(Error::InvalidField),
    }
}

fn next_counter(counter: u32) -> Result<u32> {
    counter
        .checked_add(1)
        .ok_or_else(|| too_large(MAX_PLAINTEXT_LEN.saturating_add(1)))
}

fn too_large(len: u64) -> Error {
    Error::TooLarge {
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
    fn nonce_layout() {
        let mut header = [0u8; HEADER_LEN];
        for (i, b) in header.iter_mut().enumerate() {
            *b = i as u8;
        }
        let nonce = chunk_nonce(&header, 0x0102_0304, true);
        assert_eq!(&nonce[..19], &header[2..21]);
        assert_eq!(&nonce[19..], &[1, 2, 3, 4, 1]);
        assert_eq!(chunk_nonce(&header, 7, false)[23], 0);
    }

    #[test]
    fn encryptor_refuses_counter_overflow() {
        let mut enc = AttachmentEncryptor::new().unwrap();
        enc.counter = u32::MAX;
        let mut out = Vec::new();
        // The chunk numbered u32::MAX can only be the final one.
        let err = enc
            .update(&vec![0u8; CHUNK_SIZE + 1], &mut out)
            .unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }));
        assert_eq!(out.len(), HEADER_LEN, "no chunk may be emitted");
        assert_eq!(
            enc.update(b"x", &mut out),
            Err(Error::AttachmentStreamClosed)
        );
        assert_eq!(
            enc.finish(&mut out).unwrap_err(),
            Error::AttachmentStreamClosed
        );

        // Up to that point the final chunk may carry the last counter value.
        let mut enc = AttachmentEncryptor::new().unwrap();
        enc.counter = u32::MAX;
        let mut out = Vec::new();
        enc.update(&vec![0u8; CHUNK_SIZE], &mut out).unwrap();
        enc.finish(&mut out).unwrap();
    }

    #[test]
    fn decryptor_refuses_counter_overflow() {
        let key = AttachmentKey::from_bytes(&[9; 32]);
        let mut dec = AttachmentDecryptor::new(&key, &[0; 32]);
        dec.counter = u32::MAX;
        let mut out = Vec::new();
        let mut data = vec![VERSION, CHUNK_SIZE_LOG2];
        data.extend_from_slice(&[0; NONCE_PREFIX_LEN]);
        data.extend_from_slice(&key.commitment());
        data.resize(HEADER_LEN + 2 * ENCRYPTED_CHUNK_LEN, 0);
        let err = dec.update(&data, &mut out).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
        assert!(out.is_empty());
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
    fn buffers_stay_within_one_chunk() {
        let plaintext = vec![5u8; 4 * CHUNK_SIZE + 3];
        let mut enc = AttachmentEncryptor::new().unwrap();
        let mut ciphertext = Vec::new();
        for piece in plaintext.chunks(1000) {
            enc.update(piece, &mut ciphertext).unwrap();
            assert!(enc.buffer.capacity() <= CHUNK_SIZE);
        }
        let info = enc.finish(&mut ciphertext).unwrap();
        let mut dec = AttachmentDecryptor::new(&info.key, &info.digest);
        let mut out = Vec::new();
        for piece in ciphertext.chunks(777) {
            dec.update(piece, &mut out).unwrap();
            assert!(dec.buffer.capacity() <= ENCRYPTED_CHUNK_LEN);
        }
        dec.finish(&mut out).unwrap();
        assert_eq!(out, plaintext);
    }

    #[test]
    fn derivation_strings_are_distinct_and_prefix_free() {
        let others: [&[u8]; 12] = [
            b"SecureChat v1 identity key",
            b"SecureChat v1 signed prekey",
            b"SecureChat v1 X3DH",
            b"SecureChat v1 X3DH AD",
            b"SecureChat v1 ratchet root",
            b"SecureChat v1 message keys",
            b"SecureChat v1 session id",
            b"SecureChat v1 group message keys",
            b"SecureChat v1 group message",
            b"SecureChat v1 pickle",
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
    fn commitment_is_checked_as_soon_as_the_header_is_complete() {
        let key = AttachmentKey::from_bytes(&[4; 32]);
        let mut header = vec![VERSION, CHUNK_SIZE_LOG2];
        header.extend_from_slice(&[0; NONCE_PREFIX_LEN]);
        header.extend_from_slice(&key.commitment());
        let mut dec = AttachmentDecryptor::new(&key, &[0; 32]);
        let mut out = Vec::new();
        dec.update(&header, &mut out).unwrap();
        let other = AttachmentKey::from_bytes(&[5; 32]);
        let mut dec = AttachmentDecryptor::new(&other, &[0; 32]);
        dec.update(&header[..HEADER_LEN - 1], &mut out).unwrap();
        assert_eq!(
            dec.update(&header[HEADER_LEN - 1..], &mut out),
            Err(Error::AttachmentKeyMismatch)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn reserve_wiping_keeps_contents() {
        let mut v = vec![1u8, 2, 3];
        reserve_wiping(&mut v, 100);
        assert_eq!(v, [1, 2, 3]);
        assert!(v.capacity() >= 103);
    }

    #[test]
    fn partial_header_is_checked_early() {
        let key = AttachmentKey::from_bytes(&[0; 32]);
        let mut dec = AttachmentDecryptor::new(&key, &[0; 32]);
        let mut out = Vec::new();
        assert_eq!(
            dec.update(&[1], &mut out),
            Err(Error::UnsupportedVersion {
                expected: 2,
                got: 1
            })
        );
        let mut dec = AttachmentDecryptor::new(&key, &[0; 32]);
        assert_eq!(dec.update(&[2, 17], &mut out), Err(Error::InvalidField));
        let dec = AttachmentDecryptor::new(&key, &[0; 32]);
        assert_eq!(dec.finish(&mut out), Err(Error::AttachmentTruncated));
    }
}
