//! Encryption: the one-shot functions and the streaming [`AttachmentEncryptor`].

use super::parallel::{PARALLEL_HASH_MIN_LEN, join};
use super::stream::{chunk_nonce, seal_chunks};
use super::{
    AttachmentInfo, AttachmentKey, CHUNK_SIZE, CHUNK_SIZE_LOG2, ENCRYPTED_CHUNK_LEN, HEADER_LEN,
    HEADER_LEN_U64, MAX_PLAINTEXT_LEN, NONCE_PREFIX_LEN, VERSION, ciphertext_len_for, len_u64,
    next_counter, split, tail_mut, too_large,
};
use crate::error::AttachmentError;
use crate::primitives::{OsRng, fill_random, xchacha20poly1305_seal};
use core::fmt;
use rand_core::TryCryptoRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// Encrypts a whole attachment under a fresh key from the OS random number generator.
///
/// Returns the ciphertext blob (for the relay) and the [`AttachmentInfo`] (for the message).
pub fn encrypt_attachment(plaintext: &[u8]) -> Result<(Vec<u8>, AttachmentInfo), AttachmentError> {
    encrypt_attachment_with_rng(&mut OsRng, plaintext)
}

/// Encrypts a whole attachment with key and nonce prefix drawn from `rng` (in that order).
pub fn encrypt_attachment_with_rng<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    plaintext: &[u8],
) -> Result<(Vec<u8>, AttachmentInfo), AttachmentError> {
    let len = len_u64(plaintext.len());
    let ciphertext_len = ciphertext_len_for(len).ok_or_else(|| too_large(len))?;
    let mut out = Vec::with_capacity(usize::try_from(ciphertext_len).unwrap_or(0));
    let mut encryptor = AttachmentEncryptor::new_with_rng(rng)?;
    encryptor.update(plaintext, &mut out)?;
    let info = encryptor.finish(&mut out)?;
    Ok((out, info))
}

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
    pub fn new() -> Result<Self, AttachmentError> {
        Self::new_with_rng(&mut OsRng)
    }

    /// Starts an attachment with the key and then the nonce prefix drawn from `rng`.
    pub fn new_with_rng<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, AttachmentError> {
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
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        if self.failed {
            return Err(AttachmentError::AttachmentStreamClosed);
        }
        let result = self.update_inner(data, out);
        if result.is_err() {
            self.failed = true;
            self.buffer.zeroize();
        }
        result
    }

    fn update_inner(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), AttachmentError> {
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
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<AttachmentInfo, AttachmentError> {
        if self.failed {
            return Err(AttachmentError::AttachmentStreamClosed);
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
    fn seal_full_chunks(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AttachmentError> {
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
        let sealed = here_result.and(there.unwrap_or(Err(AttachmentError::AttachmentStreamClosed)));
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
    fn seal_buffer(&mut self, last: bool, out: &mut Vec<u8>) -> Result<(), AttachmentError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn encryptor_refuses_counter_overflow() {
        let mut enc = AttachmentEncryptor::new().unwrap();
        enc.counter = u32::MAX;
        let mut out = Vec::new();
        // The chunk numbered u32::MAX can only be the final one.
        let err = enc
            .update(&vec![0u8; CHUNK_SIZE + 1], &mut out)
            .unwrap_err();
        assert!(matches!(err, AttachmentError::TooLarge { .. }));
        assert_eq!(out.len(), HEADER_LEN, "no chunk may be emitted");
        assert_eq!(
            enc.update(b"x", &mut out),
            Err(AttachmentError::AttachmentStreamClosed)
        );
        assert_eq!(
            enc.finish(&mut out).unwrap_err(),
            AttachmentError::AttachmentStreamClosed
        );

        // Up to that point the final chunk may carry the last counter value.
        let mut enc = AttachmentEncryptor::new().unwrap();
        enc.counter = u32::MAX;
        let mut out = Vec::new();
        enc.update(&vec![0u8; CHUNK_SIZE], &mut out).unwrap();
        enc.finish(&mut out).unwrap();
    }

    #[test]
    fn buffer_stays_within_one_chunk() {
        let plaintext = vec![5u8; 4 * CHUNK_SIZE + 3];
        let mut enc = AttachmentEncryptor::new().unwrap();
        let mut ciphertext = Vec::new();
        for piece in plaintext.chunks(1000) {
            enc.update(piece, &mut ciphertext).unwrap();
            assert!(enc.buffer.capacity() <= CHUNK_SIZE);
        }
        let info = enc.finish(&mut ciphertext).unwrap();
        let out = crate::attachment::decrypt_attachment(&ciphertext, &info).unwrap();
        assert_eq!(&out[..], &plaintext[..]);
    }
}
