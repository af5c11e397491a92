//! Decryption: the one-shot [`decrypt_attachment`] and the streaming [`AttachmentDecryptor`].

use super::parallel::{PARALLEL_HASH_MIN_LEN, hash_while, lock};
use super::stream::{check_commitment, check_header, open_chunk};
use super::{
    AttachmentInfo, AttachmentKey, COMMITMENT_LEN, ENCRYPTED_CHUNK_LEN, HEADER_LEN, check_info,
    discard_tail, len_u64, next_counter, split, too_large,
};
use crate::codec::Reader;
use crate::error::AttachmentError;
use crate::primitives::{ct_eq, sha256};
use core::fmt;
use sha2::{Digest, Sha256};
use std::sync::{Mutex, PoisonError};
use zeroize::Zeroizing;

/// Decrypts a whole attachment after checking its length and digest against `info`.
///
/// Nothing is returned unless every chunk authenticated; the plaintext is wiped on drop.
pub fn decrypt_attachment(
    ciphertext: &[u8],
    info: &AttachmentInfo,
) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
    let plaintext_len = check_info(info)?;
    let len = len_u64(ciphertext.len());
    if len < info.ciphertext_len {
        return Err(AttachmentError::AttachmentTruncated);
    }
    if len > info.ciphertext_len {
        return Err(AttachmentError::AttachmentTrailingData);
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
        _ => Err(AttachmentError::AttachmentDigestMismatch),
    }
}

/// Opens every chunk of a blob whose length was checked against `info`.
fn open_all(
    ciphertext: &[u8],
    info: &AttachmentInfo,
    plaintext_len: u64,
) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
    let mut reader = Reader::new(ciphertext);
    let header: [u8; HEADER_LEN] = reader
        .array()
        .map_err(|_| AttachmentError::AttachmentTruncated)?;
    check_header(&header)?;
    check_commitment(&header, &info.key.commitment())?;
    let chunk_key = info.key.chunk_key();
    let body = reader.rest();
    if body.is_empty() {
        return Err(AttachmentError::AttachmentTruncated);
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

/// Decrypts an attachment incrementally, holding at most one encrypted chunk.
///
/// A full-size chunk might be the final one, so the decryptor keeps it until it sees whether
/// more data follows; plaintext is appended to `out` only for chunks that authenticated. After
/// any error every further call returns [`AttachmentError::AttachmentStreamClosed`].
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
    pub fn for_attachment(info: &AttachmentInfo) -> Result<Self, AttachmentError> {
        check_info(info)?;
        let mut decryptor = Self::new(&info.key, &info.digest);
        decryptor.expected_len = Some(info.ciphertext_len);
        Ok(decryptor)
    }

    /// Consumes the next piece of ciphertext and appends the plaintext of every chunk that is
    /// now known not to be the final one and that authenticated.
    pub fn update(&mut self, ciphertext: &[u8], out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        if self.failed {
            return Err(AttachmentError::AttachmentStreamClosed);
        }
        let result = self.update_inner(ciphertext, out);
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn update_inner(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        self.received = self.received.saturating_add(len_u64(data.len()));
        if self.expected_len.is_some_and(|max| self.received > max) {
            return Err(AttachmentError::AttachmentTrailingData);
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
        hashed.ok_or(AttachmentError::AttachmentDigestMismatch)
    }

    fn open_chunks(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), AttachmentError> {
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
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        if self.failed {
            return Err(AttachmentError::AttachmentStreamClosed);
        }
        // `self` is consumed, so a failure here cannot be followed by further use.
        self.finish_inner(out)
    }

    fn finish_inner(&mut self, out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        if self.header_len < HEADER_LEN || self.expected_len.is_some_and(|len| self.received < len)
        {
            return Err(AttachmentError::AttachmentTruncated);
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
            return Err(AttachmentError::AttachmentDigestMismatch);
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::attachment::{CHUNK_SIZE, CHUNK_SIZE_LOG2, NONCE_PREFIX_LEN, VERSION};

    #[test]
    fn buffer_stays_within_one_encrypted_chunk() {
        let plaintext = vec![5u8; 4 * CHUNK_SIZE + 3];
        let (ciphertext, info) = crate::attachment::encrypt_attachment(&plaintext).unwrap();
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
        assert!(matches!(err, AttachmentError::TooLarge { .. }), "{err:?}");
        assert!(out.is_empty());
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
            Err(AttachmentError::AttachmentKeyMismatch)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn partial_header_is_checked_early() {
        let key = AttachmentKey::from_bytes(&[0; 32]);
        let mut dec = AttachmentDecryptor::new(&key, &[0; 32]);
        let mut out = Vec::new();
        assert_eq!(
            dec.update(&[1], &mut out),
            Err(AttachmentError::UnsupportedVersion {
                expected: 2,
                got: 1
            })
        );
        let mut dec = AttachmentDecryptor::new(&key, &[0; 32]);
        assert_eq!(
            dec.update(&[2, 17], &mut out),
            Err(AttachmentError::InvalidField)
        );
        let dec = AttachmentDecryptor::new(&key, &[0; 32]);
        assert_eq!(
            dec.finish(&mut out),
            Err(AttachmentError::AttachmentTruncated)
        );
    }
}
