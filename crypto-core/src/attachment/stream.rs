//! The STREAM layer (section 7 of Hoang, Reyhanitabar, Rogaway and Vizár): chunk nonces,
//! sealing and opening single chunks, and the header checks that come before any chunk.

use super::{
    CHUNK_SIZE, CHUNK_SIZE_LOG2, COMMITMENT_LEN, COMMITMENT_OFFSET, ENCRYPTED_CHUNK_LEN,
    HEADER_LEN, NONCE_PREFIX_LEN, VERSION, discard_tail, reserve_wiping, tail_mut,
};
use crate::codec::Reader;
use crate::error::AttachmentError;
use crate::primitives::{TAG_LEN, ct_eq, xchacha20poly1305_open, xchacha20poly1305_seal_to};

/// nonce = prefix (19 bytes) || counter (u32 big-endian) || last flag (0x00 / 0x01).
pub(super) fn chunk_nonce(header: &[u8; HEADER_LEN], counter: u32, last: bool) -> [u8; 24] {
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

/// Seals consecutive full (non-final) chunks of `plaintext` into `out` (same number of
/// chunks, `ENCRYPTED_CHUNK_LEN` each), counters from `first`.
pub(super) fn seal_chunks(
    key: &[u8; 32],
    header: &[u8; HEADER_LEN],
    first: u32,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<(), AttachmentError> {
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

/// Authenticates and decrypts one chunk (ciphertext || tag), appending its plaintext to `out`.
///
/// On failure `out` is left as it was. A chunk that fails with the expected flag but
/// authenticates with the other one shows a truncated stream (a non-final chunk where the final
/// one was expected) or trailing data (the final chunk followed by more); that plaintext is
/// wiped, not released.
pub(super) fn open_chunk(
    key: &[u8; 32],
    header: &[u8; HEADER_LEN],
    counter: u32,
    last: bool,
    chunk: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), AttachmentError> {
    let Some((ciphertext, tag)) = chunk.split_last_chunk::<TAG_LEN>() else {
        return Err(AttachmentError::AttachmentTruncated);
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
        (true, true) => AttachmentError::AttachmentTruncated,
        (true, false) => AttachmentError::AttachmentTrailingData,
        (false, _) => AttachmentError::DecryptionFailed,
    })
}

/// Refuses a header (or the part of it received so far) with another version or chunk size.
pub(super) fn check_header(header: &[u8]) -> Result<(), AttachmentError> {
    let mut reader = Reader::new(header);
    if let Ok(version) = reader.u8()
        && version != VERSION
    {
        return Err(AttachmentError::UnsupportedVersion {
            expected: VERSION,
            got: version,
        });
    }
    if let Ok(log2) = reader.u8()
        && log2 != CHUNK_SIZE_LOG2
    {
        return Err(AttachmentError::InvalidField);
    }
    Ok(())
}

/// Refuses a header whose key commitment is not `expected` (compared in constant time).
pub(super) fn check_commitment(
    header: &[u8; HEADER_LEN],
    expected: &[u8; COMMITMENT_LEN],
) -> Result<(), AttachmentError> {
    let found = header.get(COMMITMENT_OFFSET..).unwrap_or_default();
    if ct_eq(found, expected) {
        Ok(())
    } else {
        Err(AttachmentError::AttachmentKeyMismatch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

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
}
