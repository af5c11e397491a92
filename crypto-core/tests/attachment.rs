//! Integration tests of encrypted attachments: round trips, streaming, tampering, vectors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use common::SplitMix64;
use core::convert::Infallible;
use crypto_core::AttachmentError;
use crypto_core::attachment::{
    AttachmentDecryptor, AttachmentEncryptor, AttachmentInfo, AttachmentKey, CHUNK_SIZE,
    COMMITMENT_LEN, ENCRYPTED_CHUNK_LEN, HEADER_LEN, ciphertext_len_for, decrypt_attachment,
    encrypt_attachment, encrypt_attachment_with_rng, plaintext_len_for,
};
use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};

const TAG: usize = 16;
/// The header fields of docs/protocol.md section 14, written out here rather than taken from
/// the library.
const DOC_VERSION: u8 = 0x02;
const DOC_PREFIX_LEN: usize = 19;
const DOC_COMMITMENT_AT: usize = 2 + DOC_PREFIX_LEN;

/// HKDF-Expand(key, info, 32) (RFC 5869 section 2.3), as section 14 derives the chunk key and
/// the key commitment.
fn doc_expand(key: &[u8; 32], info: &[u8]) -> [u8; 32] {
    let mut okm = [0u8; 32];
    hkdf::Hkdf::<Sha256>::from_prk(key)
        .unwrap()
        .expand(info, &mut okm)
        .unwrap();
    okm
}

fn doc_chunk_key(key: &[u8; 32]) -> [u8; 32] {
    doc_expand(key, b"SecureChat v2 attachment chunk key")
}

fn doc_commitment(key: &[u8; 32]) -> [u8; 32] {
    doc_expand(key, b"SecureChat v2 attachment key commitment")
}

/// A blob built by hand following section 14: `header` as given (its commitment need not match
/// `chunk_key`), then `plaintext` in chunks sealed under `chunk_key` with the header as AD.
fn seal_by_hand(chunk_key: &[u8; 32], header: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let aead = XChaCha20Poly1305::new(chunk_key.into());
    let mut blob = header.to_vec();
    let pieces: Vec<&[u8]> = if plaintext.is_empty() {
        vec![&[][..]]
    } else {
        plaintext.chunks(CHUNK_SIZE).collect()
    };
    for (i, piece) in pieces.iter().enumerate() {
        let mut nonce = [0u8; 24];
        nonce[..DOC_PREFIX_LEN].copy_from_slice(&header[2..2 + DOC_PREFIX_LEN]);
        nonce[19..23].copy_from_slice(&(i as u32).to_be_bytes());
        nonce[23] = u8::from(i + 1 == pieces.len());
        let mut chunk = piece.to_vec();
        let tag = aead
            .encrypt_inout_detached(&nonce.into(), header, chunk.as_mut_slice().into())
            .unwrap();
        blob.extend_from_slice(&chunk);
        blob.extend_from_slice(&tag);
    }
    blob
}

/// A section 14 header: version, chunk size, `prefix`, `commitment`.
fn doc_header(prefix: &[u8; DOC_PREFIX_LEN], commitment: &[u8; 32]) -> Vec<u8> {
    let mut header = vec![DOC_VERSION, 0x10];
    header.extend_from_slice(prefix);
    header.extend_from_slice(commitment);
    header
}

/// The info a recipient holding `key` would get for `blob` (matching digest and lengths).
fn info_for(blob: &[u8], key: &AttachmentKey) -> AttachmentInfo {
    AttachmentInfo {
        key: key.clone(),
        digest: Sha256::digest(blob).into(),
        ciphertext_len: blob.len() as u64,
        plaintext_len: plaintext_len_for(blob.len() as u64).unwrap(),
    }
}

/// Yields the bytes 0x00, 0x01, 0x02, ... (wrapping): the generator of the fixed vectors.
struct CountingRng(u8);

impl TryRng for CountingRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for b in dst {
            *b = self.0;
            self.0 = self.0.wrapping_add(1);
        }
        Ok(())
    }
}

impl TryCryptoRng for CountingRng {}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Splits `data` into pieces of pseudo-random sizes (including empty and multi-chunk pieces).
fn pieces(data: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut rng = SplitMix64(seed);
    let mut rest = data;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let max = match rng.below(4) {
            0 => 16,
            1 => 1000,
            2 => CHUNK_SIZE + 40,
            _ => 3 * CHUNK_SIZE,
        };
        let take = rng.below(max + 1).min(rest.len());
        let (head, tail) = rest.split_at(take);
        out.push(head);
        rest = tail;
    }
    out
}

fn stream_encrypt(seed: u8, plaintext: &[u8], split_seed: u64) -> (Vec<u8>, AttachmentInfo) {
    let mut enc = AttachmentEncryptor::new_with_rng(&mut CountingRng(seed)).unwrap();
    let mut out = Vec::new();
    for piece in pieces(plaintext, split_seed) {
        enc.update(piece, &mut out).unwrap();
    }
    let info = enc.finish(&mut out).unwrap();
    (out, info)
}

/// Streams `ciphertext` through a decryptor; returns the result and whatever was released.
fn stream_decrypt(
    ciphertext: &[u8],
    key: &AttachmentKey,
    digest: &[u8; 32],
    split_seed: u64,
) -> (Result<(), AttachmentError>, Vec<u8>) {
    let mut dec = AttachmentDecryptor::new(key, digest);
    let mut out = Vec::new();
    for piece in pieces(ciphertext, split_seed) {
        if let Err(e) = dec.update(piece, &mut out) {
            return (Err(e), out);
        }
    }
    let result = dec.finish(&mut out);
    (result, out)
}

/// Decrypts a modified blob with a digest that matches it, so that only the chunk
/// authentication can catch the modification.
fn decrypt_modified(
    ciphertext: &[u8],
    key: &AttachmentKey,
) -> (Result<(), AttachmentError>, Vec<u8>) {
    let digest: [u8; 32] = Sha256::digest(ciphertext).into();
    stream_decrypt(ciphertext, key, &digest, 0)
}

fn chunk_range(i: usize, ciphertext_len: usize) -> core::ops::Range<usize> {
    let start = HEADER_LEN + i * ENCRYPTED_CHUNK_LEN;
    start..(start + ENCRYPTED_CHUNK_LEN).min(ciphertext_len)
}

const SIZES: [usize; 6] = [
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    3 * CHUNK_SIZE,
];

#[test]
fn one_shot_round_trips() {
    for len in SIZES {
        let plaintext = pattern(len);
        let (ciphertext, info) = encrypt_attachment(&plaintext).unwrap();
        assert_eq!(info.plaintext_len, len as u64);
        assert_eq!(info.ciphertext_len, ciphertext.len() as u64);
        assert_eq!(
            ciphertext_len_for(len as u64),
            Some(ciphertext.len() as u64)
        );
        assert_eq!(plaintext_len_for(ciphertext.len() as u64), Some(len as u64));
        assert_eq!(info.digest, <[u8; 32]>::from(Sha256::digest(&ciphertext)));
        let chunks = len.div_ceil(CHUNK_SIZE).max(1);
        assert_eq!(
            ciphertext.len(),
            HEADER_LEN + len + chunks * TAG,
            "size {len}"
        );
        assert_eq!(
            &decrypt_attachment(&ciphertext, &info).unwrap()[..],
            &plaintext[..]
        );
    }
}

#[test]
fn empty_attachment_is_header_and_one_tag() {
    let (ciphertext, info) = encrypt_attachment(b"").unwrap();
    assert_eq!(ciphertext.len(), HEADER_LEN + TAG);
    assert!(decrypt_attachment(&ciphertext, &info).unwrap().is_empty());
}

#[test]
fn streaming_matches_one_shot_for_every_split() {
    for (n, len) in SIZES.into_iter().chain([5 * CHUNK_SIZE + 77]).enumerate() {
        let plaintext = pattern(len);
        let (expected, expected_info) =
            encrypt_attachment_with_rng(&mut CountingRng(n as u8), &plaintext).unwrap();
        for split_seed in 0..3 {
            let (ciphertext, info) = stream_encrypt(n as u8, &plaintext, split_seed);
            assert_eq!(ciphertext, expected, "size {len} split {split_seed}");
            assert_eq!(info, expected_info);
            let (result, out) =
                stream_decrypt(&ciphertext, &info.key, &info.digest, split_seed + 7);
            result.unwrap();
            assert_eq!(out, plaintext);
        }
    }
}

#[test]
fn streaming_with_random_sizes_and_pieces() {
    let mut rng = SplitMix64(42);
    for round in 0..8 {
        let len = rng.below(4 * CHUNK_SIZE + 100);
        let plaintext = pattern(len);
        let (ciphertext, info) = stream_encrypt(round, &plaintext, rng.next_u64());
        let mut dec = AttachmentDecryptor::for_attachment(&info).unwrap();
        let mut out = zeroize::Zeroizing::new(Vec::new());
        for piece in pieces(&ciphertext, rng.next_u64()) {
            dec.update(piece, &mut out).unwrap();
        }
        dec.finish(&mut out).unwrap();
        assert_eq!(&out[..], &plaintext[..], "length {len}");
    }
}

#[test]
fn decryptor_appends_to_existing_output() {
    let (ciphertext, info) = encrypt_attachment(b"abc").unwrap();
    let mut dec = AttachmentDecryptor::new(&info.key, &info.digest);
    let mut out = b"prefix:".to_vec();
    dec.update(&ciphertext, &mut out).unwrap();
    dec.update(&[], &mut out).unwrap();
    dec.finish(&mut out).unwrap();
    assert_eq!(out, b"prefix:abc");
}

// The vectors of docs/protocol.md section 14 (key and nonce prefix: the bytes 0x00, 0x01, ...).
const VECTOR_CHUNK_KEY: &str = "ee5f39a0bec82b78ee158d1a19f4804485e5194996ad06c4a6d0dbfee4568bb0";
const VECTOR_COMMITMENT: &str = "8694b562bbd7d4e8f4f8c010f084a6a61abb7ff023599c347d563343f898daa6";
const VECTOR_BLOB: &str = "0210202122232425262728292a2b2c2d2e2f3031328694b562bbd7d4e8f4f8c010f084a6a61abb7ff023599c347d563343f898daa6f03ae42edccc2d07fcb36305d6dc53290ab1932a230402e9c2dc002648b5c1cbff4f614ae5a6df5d8e7a2cced3695d63cd65463e5309e6ec816b36";
const VECTOR_DIGEST: &str = "6c5c48b1b9eb7cd78b313480310df885c9fb9ff9f9b42be123a2948f4f8e3329";
const VECTOR_EMPTY_BLOB: &str = "0210202122232425262728292a2b2c2d2e2f3031328694b562bbd7d4e8f4f8c010f084a6a61abb7ff023599c347d563343f898daa622f02d01e80dffc5759971ffffdc773c";
const VECTOR_EMPTY_DIGEST: &str =
    "85deae176b34f427dfd591c0cc04119c52742d00815cc939010b3fdf961d58ae";
const VECTOR_TWO_CHUNKS_DIGEST: &str =
    "2c5ce8849db28878b68d735485d245f9112046753f608d9c2ca4a70f10ef7bef";

#[test]
fn fixed_vector() {
    // The vector of docs/protocol.md section 14.
    let plaintext = b"The quick brown fox jumps over the lazy dog";
    let (ciphertext, info) = encrypt_attachment_with_rng(&mut CountingRng(0), plaintext).unwrap();
    assert_eq!(
        hex::encode(info.key.as_bytes()),
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    );
    assert_eq!(hex::encode(&ciphertext), VECTOR_BLOB);
    assert_eq!(hex::encode(info.digest), VECTOR_DIGEST);
    assert_eq!((info.ciphertext_len, info.plaintext_len), (112, 43));
    let doc = protocol_doc_compact();
    assert!(
        doc.contains(&hex::encode(&ciphertext)),
        "docs/protocol.md shows another blob"
    );
    assert!(
        doc.contains(&hex::encode(info.digest)),
        "docs/protocol.md shows another digest"
    );

    // The same bytes from the primitives themselves, following the documented format.
    let key = info.key.as_bytes();
    assert_eq!(hex::encode(doc_chunk_key(key)), VECTOR_CHUNK_KEY);
    assert_eq!(hex::encode(doc_commitment(key)), VECTOR_COMMITMENT);
    for value in [VECTOR_CHUNK_KEY, VECTOR_COMMITMENT] {
        assert!(
            doc.contains(value),
            "docs/protocol.md does not show {value}"
        );
    }
    let prefix: [u8; DOC_PREFIX_LEN] = core::array::from_fn(|i| 32 + i as u8);
    let header = doc_header(&prefix, &doc_commitment(key));
    assert_eq!(header.len(), HEADER_LEN);
    assert_eq!(&ciphertext[..HEADER_LEN], &header[..]);
    assert_eq!(
        seal_by_hand(&doc_chunk_key(key), &header, plaintext),
        ciphertext
    );

    // Its negative twin: one flipped tag bit.
    let mut bad = ciphertext.clone();
    *bad.last_mut().unwrap() ^= 0x80;
    assert_eq!(
        decrypt_modified(&bad, &info.key).0,
        Err(AttachmentError::DecryptionFailed)
    );
    // And under another key (the last key byte flipped): the commitment refuses it.
    let mut other = *info.key.as_bytes();
    other[31] ^= 1;
    let wrong_key = AttachmentInfo {
        key: AttachmentKey::from_bytes(&other),
        ..info.clone()
    };
    assert_eq!(
        decrypt_attachment(&ciphertext, &wrong_key).unwrap_err(),
        AttachmentError::AttachmentKeyMismatch
    );
}

#[test]
fn fixed_vector_empty_and_multi_chunk() {
    let doc = protocol_doc_compact();
    let (ciphertext, info) = encrypt_attachment_with_rng(&mut CountingRng(0), b"").unwrap();
    let (two_chunks, two_info) =
        encrypt_attachment_with_rng(&mut CountingRng(0), &pattern(CHUNK_SIZE + 1)).unwrap();
    assert_eq!(hex::encode(&ciphertext), VECTOR_EMPTY_BLOB);
    assert_eq!(hex::encode(info.digest), VECTOR_EMPTY_DIGEST);
    assert_eq!(hex::encode(two_info.digest), VECTOR_TWO_CHUNKS_DIGEST);
    for value in [
        VECTOR_EMPTY_BLOB,
        VECTOR_EMPTY_DIGEST,
        VECTOR_TWO_CHUNKS_DIGEST,
    ] {
        assert!(
            doc.contains(value),
            "docs/protocol.md does not show {value}"
        );
    }

    // Both rebuilt from the primitives, following the document.
    let key = info.key.as_bytes();
    let header = &ciphertext[..HEADER_LEN];
    assert_eq!(seal_by_hand(&doc_chunk_key(key), header, b""), ciphertext);
    assert_eq!(two_chunks.len(), 65_622);
    assert_eq!(
        seal_by_hand(&doc_chunk_key(key), header, &pattern(CHUNK_SIZE + 1)),
        two_chunks
    );
}

#[test]
fn truncation_is_detected_everywhere() {
    let plaintext = pattern(3 * CHUNK_SIZE + 100);
    let (ciphertext, info) = encrypt_attachment(&plaintext).unwrap();
    let mut cuts = vec![
        0,
        1,
        HEADER_LEN - 1,
        HEADER_LEN,
        HEADER_LEN + 1,
        HEADER_LEN + TAG,
    ];
    for i in 1..=3 {
        let boundary = HEADER_LEN + i * ENCRYPTED_CHUNK_LEN;
        cuts.extend([
            boundary - 1,
            boundary,
            boundary + 1,
            boundary - ENCRYPTED_CHUNK_LEN / 2,
        ]);
    }
    cuts.push(ciphertext.len() - 1);
    for cut in cuts {
        let truncated = &ciphertext[..cut];
        let (result, out) = decrypt_modified(truncated, &info.key);
        assert!(result.is_err(), "cut at {cut}");
        assert!(plaintext.starts_with(&out));
        assert_eq!(
            decrypt_attachment(truncated, &info).unwrap_err(),
            AttachmentError::AttachmentTruncated
        );
    }
    // Cut exactly after a non-final chunk: the precise error.
    for i in 1..=3 {
        let cut = HEADER_LEN + i * ENCRYPTED_CHUNK_LEN;
        let (result, out) = decrypt_modified(&ciphertext[..cut], &info.key);
        assert_eq!(
            result,
            Err(AttachmentError::AttachmentTruncated),
            "after chunk {i}"
        );
        // The chunk that turned out not to be final is not released.
        assert_eq!(out, plaintext[..(i - 1) * CHUNK_SIZE]);
    }
}

#[test]
fn reordered_dropped_and_duplicated_chunks_are_detected() {
    let plaintext = pattern(4 * CHUNK_SIZE + 10);
    let (ciphertext, info) = encrypt_attachment(&plaintext).unwrap();
    let chunks: Vec<&[u8]> = (0..5)
        .map(|i| &ciphertext[chunk_range(i, ciphertext.len())])
        .collect();
    let header = &ciphertext[..HEADER_LEN];
    let assemble = |order: &[usize]| -> Vec<u8> {
        let mut blob = header.to_vec();
        for &i in order {
            blob.extend_from_slice(chunks[i]);
        }
        blob
    };
    assert_eq!(assemble(&[0, 1, 2, 3, 4]), ciphertext);
    let cases: [&[usize]; 8] = [
        &[0, 2, 3, 4],       // dropped a middle chunk
        &[1, 2, 3, 4],       // dropped the first chunk
        &[0, 1, 2, 3],       // dropped the final chunk
        &[0, 2, 1, 3, 4],    // swapped two chunks
        &[1, 0, 2, 3, 4],    // swapped the first two
        &[0, 1, 1, 2, 3, 4], // duplicated a chunk
        &[0, 1, 2, 3, 4, 4], // duplicated the final chunk
        &[0, 1, 2, 3, 4, 0], // appended an old chunk
    ];
    for order in cases {
        let blob = assemble(order);
        let (result, _) = decrypt_modified(&blob, &info.key);
        assert!(result.is_err(), "order {order:?}");
        assert!(decrypt_attachment(&blob, &info).is_err());
        let forged = AttachmentInfo {
            digest: Sha256::digest(&blob).into(),
            ciphertext_len: blob.len() as u64,
            plaintext_len: plaintext_len_for(blob.len() as u64).unwrap_or(0),
            ..info.clone()
        };
        assert!(
            decrypt_attachment(&blob, &forged).is_err(),
            "order {order:?}"
        );
    }
}

#[test]
fn data_after_the_final_chunk_is_detected() {
    // Final chunk full-size, then an extra whole chunk: a precise error.
    let plaintext = pattern(2 * CHUNK_SIZE);
    let (ciphertext, info) = encrypt_attachment(&plaintext).unwrap();
    let mut extended = ciphertext.clone();
    extended.extend_from_slice(&ciphertext[chunk_range(0, ciphertext.len())]);
    let (result, out) = decrypt_modified(&extended, &info.key);
    assert_eq!(result, Err(AttachmentError::AttachmentTrailingData));
    assert_eq!(
        out,
        plaintext[..CHUNK_SIZE],
        "the final chunk is not released"
    );

    for extra in [1usize, TAG, ENCRYPTED_CHUNK_LEN + 3] {
        for len in [10, 2 * CHUNK_SIZE] {
            let (ciphertext, info) = encrypt_attachment(&pattern(len)).unwrap();
            let mut extended = ciphertext.clone();
            extended.extend(std::iter::repeat_n(0xaa, extra));
            assert!(
                decrypt_modified(&extended, &info.key).0.is_err(),
                "{len}+{extra}"
            );
            assert_eq!(
                decrypt_attachment(&extended, &info).unwrap_err(),
                AttachmentError::AttachmentTrailingData
            );
            // With the expected length known, the decryptor refuses the surplus on arrival.
            let mut dec = AttachmentDecryptor::for_attachment(&info).unwrap();
            let mut out = Vec::new();
            assert_eq!(
                dec.update(&extended, &mut out),
                Err(AttachmentError::AttachmentTrailingData)
            );
            assert!(out.is_empty());
        }
    }
}

#[test]
fn every_bit_of_a_small_ciphertext_matters() {
    let plaintext = pattern(63);
    let (ciphertext, info) = encrypt_attachment(&plaintext).unwrap();
    assert_eq!(ciphertext.len(), 132);
    for bit in 0..ciphertext.len() * 8 {
        let mut bad = ciphertext.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            decrypt_attachment(&bad, &info).unwrap_err(),
            AttachmentError::AttachmentDigestMismatch
        );
        let (result, out) = decrypt_modified(&bad, &info.key);
        let expected = match bit / 8 {
            0 => AttachmentError::UnsupportedVersion {
                expected: 2,
                got: 2 ^ (1 << (bit % 8)),
            },
            1 => AttachmentError::InvalidField,
            // The key commitment is checked before any chunk is opened.
            DOC_COMMITMENT_AT.. if bit / 8 < HEADER_LEN => AttachmentError::AttachmentKeyMismatch,
            _ => AttachmentError::DecryptionFailed,
        };
        assert_eq!(result, Err(expected), "bit {bit}");
        assert!(out.is_empty(), "bit {bit} released plaintext");
    }
}

#[test]
fn sampled_bits_of_a_multi_chunk_ciphertext_matter() {
    let plaintext = pattern(2 * CHUNK_SIZE + CHUNK_SIZE / 2);
    let (ciphertext, info) = encrypt_attachment(&plaintext).unwrap();
    let mut rng = SplitMix64(7);
    let mut positions: Vec<usize> = (0..40).map(|_| rng.below(ciphertext.len())).collect();
    // Always include the first and last byte of every chunk (ciphertext start, tag end).
    for i in 0..3 {
        let range = chunk_range(i, ciphertext.len());
        positions.extend([range.start, range.end - 1]);
    }
    for pos in positions {
        let mut bad = ciphertext.clone();
        bad[pos] ^= 1 << (pos % 8);
        assert!(decrypt_attachment(&bad, &info).is_err());
        let (result, out) = decrypt_modified(&bad, &info.key);
        assert!(result.is_err(), "byte {pos}");
        // Exactly the chunks before the damaged one are released.
        let damaged = pos.saturating_sub(HEADER_LEN) / ENCRYPTED_CHUNK_LEN;
        let released = if pos < HEADER_LEN {
            0
        } else {
            damaged * CHUNK_SIZE
        };
        assert_eq!(out.len(), released, "byte {pos}");
        assert_eq!(out, plaintext[..released]);
    }
}

#[test]
fn corrupted_middle_chunk_releases_only_the_first() {
    let plaintext = pattern(3 * CHUNK_SIZE);
    let (mut ciphertext, info) = encrypt_attachment(&plaintext).unwrap();
    let second = chunk_range(1, ciphertext.len());
    ciphertext[second.start + 1000] ^= 0x04;
    let digest: [u8; 32] = Sha256::digest(&ciphertext).into();
    let mut dec = AttachmentDecryptor::new(&info.key, &digest);
    let mut out = Vec::new();
    assert_eq!(
        dec.update(&ciphertext, &mut out),
        Err(AttachmentError::DecryptionFailed)
    );
    assert_eq!(out, plaintext[..CHUNK_SIZE]);
    // The failed decryptor refuses further use.
    assert_eq!(
        dec.update(b"", &mut out),
        Err(AttachmentError::AttachmentStreamClosed)
    );
    assert_eq!(
        dec.finish(&mut out),
        Err(AttachmentError::AttachmentStreamClosed)
    );
    assert_eq!(out.len(), CHUNK_SIZE);
}

#[test]
fn wrong_key_and_wrong_digest() {
    let plaintext = pattern(CHUNK_SIZE + 5);
    let (ciphertext, info) = encrypt_attachment(&plaintext).unwrap();

    let mut key_bytes = *info.key.as_bytes();
    key_bytes[31] ^= 1;
    let wrong_key = AttachmentInfo {
        key: AttachmentKey::from_bytes(&key_bytes),
        ..info.clone()
    };
    // Refused by the key commitment, before the AEAD is reached.
    assert_eq!(
        decrypt_attachment(&ciphertext, &wrong_key).unwrap_err(),
        AttachmentError::AttachmentKeyMismatch
    );
    let (result, out) = stream_decrypt(&ciphertext, &wrong_key.key, &info.digest, 1);
    assert_eq!(result, Err(AttachmentError::AttachmentKeyMismatch));
    assert!(out.is_empty());

    let mut digest = info.digest;
    digest[0] ^= 1;
    let wrong_digest = AttachmentInfo {
        digest,
        ..info.clone()
    };
    assert_eq!(
        decrypt_attachment(&ciphertext, &wrong_digest).unwrap_err(),
        AttachmentError::AttachmentDigestMismatch
    );
    let (result, out) = stream_decrypt(&ciphertext, &info.key, &digest, 2);
    assert_eq!(result, Err(AttachmentError::AttachmentDigestMismatch));
    // Only the non-final chunk was released before the digest could be checked.
    assert_eq!(out, plaintext[..CHUNK_SIZE]);
}

#[test]
fn inconsistent_info_is_refused() {
    let (ciphertext, info) = encrypt_attachment(b"hello").unwrap();
    let lying = AttachmentInfo {
        plaintext_len: 6,
        ..info.clone()
    };
    assert_eq!(
        decrypt_attachment(&ciphertext, &lying).unwrap_err(),
        AttachmentError::InvalidField
    );
    assert_eq!(
        AttachmentDecryptor::for_attachment(&lying).unwrap_err(),
        AttachmentError::InvalidField
    );
    let impossible = AttachmentInfo {
        ciphertext_len: (HEADER_LEN + 3) as u64,
        plaintext_len: 0,
        ..info
    };
    assert_eq!(
        decrypt_attachment(&ciphertext, &impossible).unwrap_err(),
        AttachmentError::InvalidField
    );
}

#[test]
fn header_is_validated() {
    let (ciphertext, info) = encrypt_attachment(b"hello").unwrap();
    for (index, value, expected) in [
        (
            0,
            1u8,
            AttachmentError::UnsupportedVersion {
                expected: 2,
                got: 1,
            },
        ),
        (
            0,
            0,
            AttachmentError::UnsupportedVersion {
                expected: 2,
                got: 0,
            },
        ),
        (1, 12, AttachmentError::InvalidField),
        (1, 20, AttachmentError::InvalidField),
        (DOC_COMMITMENT_AT, 0, AttachmentError::AttachmentKeyMismatch),
        (HEADER_LEN - 1, 0, AttachmentError::AttachmentKeyMismatch),
    ] {
        let mut bad = ciphertext.clone();
        bad[index] = if ciphertext[index] == value {
            value ^ 1
        } else {
            value
        };
        let digest: [u8; 32] = Sha256::digest(&bad).into();
        let forged = AttachmentInfo {
            digest,
            ..info.clone()
        };
        assert_eq!(decrypt_attachment(&bad, &forged).unwrap_err(), expected);
        assert_eq!(decrypt_modified(&bad, &info.key).0, Err(expected));
    }
}

#[test]
fn key_bytes_round_trip() {
    let (_, info) = encrypt_attachment(b"x").unwrap();
    let copy = AttachmentKey::from_bytes(info.key.as_bytes());
    assert_eq!(copy, info.key);
    assert_eq!(format!("{copy:?}"), "AttachmentKey { .. }");
}

#[test]
fn fresh_keys_and_prefixes() {
    let (a, info_a) = encrypt_attachment(b"same").unwrap();
    let (b, info_b) = encrypt_attachment(b"same").unwrap();
    assert_ne!(info_a.key, info_b.key);
    assert_ne!(a[2..HEADER_LEN], b[2..HEADER_LEN]);
    assert_ne!(a, b);
}

#[cfg(not(target_family = "wasm"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        #[test]
        fn round_trip_any_size_any_split(
            len in 0usize..(3 * CHUNK_SIZE + 200),
            seed in any::<u8>(),
            enc_split in any::<u64>(),
            dec_split in any::<u64>(),
        ) {
            let plaintext = pattern(len);
            let (ciphertext, info) = stream_encrypt(seed, &plaintext, enc_split);
            let (one_shot, _) =
                encrypt_attachment_with_rng(&mut CountingRng(seed), &plaintext).unwrap();
            prop_assert_eq!(&ciphertext, &one_shot);
            let (result, out) = stream_decrypt(&ciphertext, &info.key, &info.digest, dec_split);
            prop_assert_eq!(result, Ok(()));
            prop_assert_eq!(&out, &plaintext);
            prop_assert_eq!(&decrypt_attachment(&ciphertext, &info).unwrap()[..], &plaintext[..]);
        }
    }
}

/// The document's text with all white space removed, to check that the vectors it shows are
/// the ones asserted here.
fn protocol_doc_compact() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .collect()
}

/// Large pieces (many chunks per call, as a file reader or the one-shot API gives them): the
/// output must be the same as chunk by chunk, and every check must still hold.
#[test]
fn large_pieces_hash_in_parallel_with_the_same_result() {
    let plaintext = pattern(9 * CHUNK_SIZE + 5);
    let (blob, info) = encrypt_attachment_with_rng(&mut CountingRng(42), &plaintext).unwrap();
    let digest: [u8; 32] = Sha256::digest(&blob).into();
    assert_eq!(info.digest, digest);
    // Fed one chunk at a time (each call below the parallel threshold): the same blob.
    let mut enc = AttachmentEncryptor::new_with_rng(&mut CountingRng(42)).unwrap();
    let mut small = Vec::new();
    for piece in plaintext.chunks(CHUNK_SIZE) {
        enc.update(piece, &mut small).unwrap();
    }
    assert_eq!(enc.finish(&mut small).unwrap(), info);
    assert_eq!(small, blob);
    // Large pieces, one-shot and streaming, both directions.
    for piece_len in [4 * CHUNK_SIZE, 5 * CHUNK_SIZE + 3, blob.len()] {
        let mut enc = AttachmentEncryptor::new_with_rng(&mut CountingRng(42)).unwrap();
        let mut out = Vec::new();
        for piece in plaintext.chunks(piece_len) {
            enc.update(piece, &mut out).unwrap();
        }
        assert_eq!(enc.finish(&mut out).unwrap(), info);
        assert_eq!(out, blob);
        let mut dec = AttachmentDecryptor::for_attachment(&info).unwrap();
        let mut out = Vec::new();
        for piece in blob.chunks(piece_len) {
            dec.update(piece, &mut out).unwrap();
        }
        dec.finish(&mut out).unwrap();
        assert_eq!(out, plaintext);
    }
    assert_eq!(
        &decrypt_attachment(&blob, &info).unwrap()[..],
        &plaintext[..]
    );

    // A wrong digest: nothing is released by the one-shot API, finish fails when streaming.
    let mut wrong = info.clone();
    wrong.digest[0] ^= 1;
    assert_eq!(
        decrypt_attachment(&blob, &wrong).unwrap_err(),
        AttachmentError::AttachmentDigestMismatch
    );
    let mut dec = AttachmentDecryptor::for_attachment(&wrong).unwrap();
    let mut out = Vec::new();
    dec.update(&blob, &mut out).unwrap();
    assert_eq!(
        dec.finish(&mut out),
        Err(AttachmentError::AttachmentDigestMismatch)
    );
    // A modified middle chunk: the digest check comes first in the one-shot API; with a
    // matching digest the chunk's tag catches it, and only earlier chunks are released.
    let mut damaged = blob.clone();
    damaged[HEADER_LEN + 4 * ENCRYPTED_CHUNK_LEN + 9] ^= 0x20;
    assert_eq!(
        decrypt_attachment(&damaged, &info).unwrap_err(),
        AttachmentError::AttachmentDigestMismatch
    );
    let (result, out) = decrypt_modified(&damaged, &info.key);
    assert_eq!(result, Err(AttachmentError::DecryptionFailed));
    assert_eq!(out, plaintext[..4 * CHUNK_SIZE]);
    let mut matching = info.clone();
    matching.digest = Sha256::digest(&damaged).into();
    assert_eq!(
        decrypt_attachment(&damaged, &matching).unwrap_err(),
        AttachmentError::DecryptionFailed
    );
}

/// Pieces of 4 chunks and more take the two-thread paths on native targets (sealing split
/// between two threads, hashing on a second thread while opening): the same bytes and digest
/// as the one-thread path, and a flipped bit in a chunk the second thread sealed or opened is
/// refused like any other, with nothing of that chunk released.
#[test]
fn large_pieces_match_small_pieces() {
    let len = 17 * CHUNK_SIZE + 5;
    let plaintext = pattern(len);
    let encrypt_in = |piece_len: usize| {
        let mut enc = AttachmentEncryptor::new_with_rng(&mut CountingRng(9)).unwrap();
        let mut out = Vec::new();
        for piece in plaintext.chunks(piece_len) {
            enc.update(piece, &mut out).unwrap();
        }
        let info = enc.finish(&mut out).unwrap();
        (out, info)
    };
    let (small, small_info) = encrypt_in(1000);
    for piece_len in [4 * CHUNK_SIZE, 8 * CHUNK_SIZE + 3, len] {
        let (out, info) = encrypt_in(piece_len);
        assert!(out == small, "pieces of {piece_len}");
        assert_eq!(info.digest, small_info.digest);
    }
    let key = &small_info.key;
    for piece_len in [4 * CHUNK_SIZE, 8 * ENCRYPTED_CHUNK_LEN + 7, small.len()] {
        let mut dec = AttachmentDecryptor::new(key, &small_info.digest);
        let mut out = Vec::new();
        for piece in small.chunks(piece_len) {
            dec.update(piece, &mut out).unwrap();
        }
        dec.finish(&mut out).unwrap();
        assert!(out == plaintext, "pieces of {piece_len}");
    }
    // Chunk 15 of 18: sealed by the second thread when encrypting in one piece.
    let mut tampered = small.clone();
    let at = chunk_range(15, tampered.len()).start + 100;
    tampered[at] ^= 0x01;
    let digest: [u8; 32] = Sha256::digest(&tampered).into();
    let mut dec = AttachmentDecryptor::new(key, &digest);
    let mut out = Vec::new();
    assert!(dec.update(&tampered, &mut out).is_err());
    assert!(
        out.len() <= 15 * CHUNK_SIZE,
        "released past the forged chunk"
    );
    // The true digest with the tampered blob: refused as well.
    let mut dec = AttachmentDecryptor::new(key, &small_info.digest);
    let mut out = Vec::new();
    let result = dec
        .update(&tampered, &mut out)
        .and_then(|()| dec.finish(&mut out));
    assert!(result.is_err());
}

/// Feeds `blob` to a decryptor for `info` one byte at a time; returns the first error and
/// everything released up to it.
fn stream_bytewise(blob: &[u8], info: &AttachmentInfo) -> (Result<(), AttachmentError>, Vec<u8>) {
    let mut dec = AttachmentDecryptor::for_attachment(info).unwrap();
    let mut out = Vec::new();
    for (at, byte) in blob.iter().enumerate() {
        if let Err(e) = dec.update(core::slice::from_ref(byte), &mut out) {
            // The commitment is the last header field: nothing is read past it.
            assert!(at < HEADER_LEN || e != AttachmentError::AttachmentKeyMismatch);
            return (Err(e), out);
        }
    }
    let result = dec.finish(&mut out);
    (result, out)
}

/// Finding 5 of issue #10: the reviewer's attack is one blob that two recipients, given two
/// different keys, open to two different plaintexts (XChaCha20-Poly1305 is not key-committing).
/// The header now carries a commitment to one key, checked before any chunk is opened. A blob
/// whose chunks are sealed under K2's chunk key but whose header commits to K1 (the only way to
/// make one blob that both could try) is refused by K2 with `AttachmentKeyMismatch` before any
/// byte is released, and by K1 at the AEAD; the same chunks under a header committing to K2
/// open, so the commitment alone stops K2.
#[test]
fn a_blob_opens_under_the_committed_key_only() {
    let k1 = AttachmentKey::from_bytes(&[0x11; 32]);
    let k2 = AttachmentKey::from_bytes(&[0x22; 32]);
    let prefix = [0x5a; DOC_PREFIX_LEN];
    let c1 = doc_commitment(k1.as_bytes());
    let c2 = doc_commitment(k2.as_bytes());
    assert_eq!(k1.commitment(), c1);
    assert_ne!(c1, c2);
    for len in [0, 43, CHUNK_SIZE, 5 * CHUNK_SIZE + 9] {
        let plaintext = pattern(len);
        let spliced = seal_by_hand(
            &doc_chunk_key(k2.as_bytes()),
            &doc_header(&prefix, &c1),
            &plaintext,
        );
        let honest = seal_by_hand(
            &doc_chunk_key(k2.as_bytes()),
            &doc_header(&prefix, &c2),
            &plaintext,
        );
        assert_eq!(
            &decrypt_attachment(&honest, &info_for(&honest, &k2)).unwrap()[..],
            &plaintext[..],
            "{len}"
        );

        let as_k2 = info_for(&spliced, &k2);
        assert_eq!(
            decrypt_attachment(&spliced, &as_k2).unwrap_err(),
            AttachmentError::AttachmentKeyMismatch,
            "{len}"
        );
        let (result, out) = stream_bytewise(&spliced, &as_k2);
        assert_eq!(result, Err(AttachmentError::AttachmentKeyMismatch), "{len}");
        assert!(out.is_empty());
        // In one piece: the first update fails and releases nothing.
        let mut dec = AttachmentDecryptor::new(&k2, &as_k2.digest);
        let mut out = Vec::new();
        assert_eq!(
            dec.update(&spliced, &mut out),
            Err(AttachmentError::AttachmentKeyMismatch)
        );
        assert!(out.is_empty());

        let as_k1 = info_for(&spliced, &k1);
        assert_eq!(
            decrypt_attachment(&spliced, &as_k1).unwrap_err(),
            AttachmentError::DecryptionFailed,
            "{len}"
        );
        let (result, out) = stream_bytewise(&spliced, &as_k1);
        assert_eq!(result, Err(AttachmentError::DecryptionFailed), "{len}");
        assert!(out.is_empty());
    }
}

/// A header whose commitment was replaced (by the relay, or a sender lying about the key) is
/// refused under the true key with `AttachmentKeyMismatch`, even with a matching digest, and
/// even when every chunk is re-sealed with the forged header as associated data.
#[test]
fn a_forged_commitment_is_refused() {
    let plaintext = pattern(2 * CHUNK_SIZE + 3);
    let (blob, info) = encrypt_attachment(&plaintext).unwrap();
    let key = info.key.as_bytes();
    assert_eq!(
        &blob[DOC_COMMITMENT_AT..HEADER_LEN],
        &doc_commitment(key)[..]
    );
    let prefix: [u8; DOC_PREFIX_LEN] = blob[2..DOC_COMMITMENT_AT].try_into().unwrap();
    let forged_commitments: [[u8; COMMITMENT_LEN]; 3] = [
        [0; COMMITMENT_LEN],
        doc_chunk_key(key),
        doc_commitment(&[0x33; 32]),
    ];
    for forged in forged_commitments {
        let mut patched = blob.clone();
        patched[DOC_COMMITMENT_AT..HEADER_LEN].copy_from_slice(&forged);
        let resealed = seal_by_hand(
            &doc_chunk_key(key),
            &doc_header(&prefix, &forged),
            &plaintext,
        );
        for candidate in [patched, resealed] {
            let matching = info_for(&candidate, &info.key);
            assert_eq!(
                decrypt_attachment(&candidate, &matching).unwrap_err(),
                AttachmentError::AttachmentKeyMismatch
            );
            let (result, out) = stream_bytewise(&candidate, &matching);
            assert_eq!(result, Err(AttachmentError::AttachmentKeyMismatch));
            assert!(out.is_empty());
        }
    }
}

/// One chunk (32 bytes of ciphertext and a tag) that authenticates under two keys, for the
/// version-1 format (AD = the 21-byte header `01 10 || prefix`, sealed under the attachment keys
/// themselves). Keys `11…11` and `22…22`, nonce prefix `5a…5a`, counter 0, final chunk.
///
/// How it was made (`tests/vectors/attachment_vectors.py`, written from RFC 8439, not this crate): Poly1305's tag is
/// `(Σ m_i·r^(n-i+1) mod 2^130-5) + s mod 2^128` with `(r, s)` from each key's first keystream
/// block; with two ciphertext blocks left free, "the tag is T under both keys" is two linear
/// equations over GF(2^130 - 5), solved for T = 0, 1, … until both solutions fit in 16 bytes.
/// This is the key multi-collision of the reviewer's finding: XChaCha20-Poly1305 alone does
/// not tie a ciphertext to one key.
const TWO_KEY_CHUNK_V1: &str = "f098ca6a22a61b0bcb9c66ea1421d56d19024b197b0cadf91e43e8082dc6ece6\
                                04000000000000000000000000000000";
/// The same construction against this format: AD = the version-2 header committing to the key
/// `11…11`, solved for the two chunk keys derived from `11…11` and `22…22`.
const TWO_KEY_CHUNK_V2: &str = "ed475c676e16b2b2b92f66e2b55de6f6f288bde72cd0fea48d53d68bb2e5f16f\
                                24000000000000000000000000000000";

/// Finding 5 of issue #10, the attack itself: a blob that two keys open to two different
/// plaintexts. Under the old format the two-key chunk below is such a blob (the old decryptor
/// checked the digest, which both recipients share, and then only the AEAD). Under the new
/// format the same kind of chunk still passes the AEAD under both chunk keys, but the header
/// commits to one key: that key opens the blob, the other is refused with
/// `AttachmentKeyMismatch` before anything is released.
#[test]
fn a_chunk_that_opens_under_two_keys_opens_only_under_the_committed_one() {
    let (k1, k2) = ([0x11u8; 32], [0x22u8; 32]);
    let prefix = [0x5au8; DOC_PREFIX_LEN];
    let mut nonce = [0u8; 24];
    nonce[..DOC_PREFIX_LEN].copy_from_slice(&prefix);
    nonce[23] = 1; // counter 0, final chunk
    let open = |key: &[u8; 32], ad: &[u8], chunk: &[u8]| -> Option<Vec<u8>> {
        let (ciphertext, tag) = chunk.split_at(chunk.len() - TAG);
        let tag: [u8; TAG] = tag.try_into().unwrap();
        let mut buf = ciphertext.to_vec();
        XChaCha20Poly1305::new(key.into())
            .decrypt_inout_detached(&nonce.into(), ad, buf.as_mut_slice().into(), &tag.into())
            .ok()
            .map(|()| buf)
    };

    // Version 1: one blob, one digest, two keys, two plaintexts.
    let v1_header = [&[0x01, 0x10][..], &prefix].concat();
    let chunk = hex::decode(TWO_KEY_CHUNK_V1).unwrap();
    let p1 = open(&k1, &v1_header, &chunk).unwrap();
    let p2 = open(&k2, &v1_header, &chunk).unwrap();
    assert_ne!(p1, p2);
    // Such a blob is now refused by its version byte.
    let v1_blob = [v1_header, chunk].concat();
    let key1 = AttachmentKey::from_bytes(&k1);
    let key2 = AttachmentKey::from_bytes(&k2);
    for key in [&key1, &key2] {
        assert_eq!(
            decrypt_attachment(&v1_blob, &info_for(&v1_blob, key)).unwrap_err(),
            AttachmentError::UnsupportedVersion {
                expected: 2,
                got: 1
            }
        );
    }

    // Version 2: the chunk still authenticates under both chunk keys...
    let header = doc_header(&prefix, &doc_commitment(&k1));
    let chunk = hex::decode(TWO_KEY_CHUNK_V2).unwrap();
    let p1 = open(&doc_chunk_key(&k1), &header, &chunk).unwrap();
    let p2 = open(&doc_chunk_key(&k2), &header, &chunk).unwrap();
    assert_ne!(p1, p2);
    // ...but only the key the header commits to gets a plaintext.
    let blob = [header, chunk].concat();
    assert_eq!(
        &decrypt_attachment(&blob, &info_for(&blob, &key1)).unwrap()[..],
        &p1[..]
    );
    let as_k2 = info_for(&blob, &key2);
    assert_eq!(
        decrypt_attachment(&blob, &as_k2).unwrap_err(),
        AttachmentError::AttachmentKeyMismatch
    );
    let (result, out) = stream_bytewise(&blob, &as_k2);
    assert_eq!(result, Err(AttachmentError::AttachmentKeyMismatch));
    assert!(out.is_empty());
    let (result, out) = stream_bytewise(&blob, &info_for(&blob, &key1));
    assert_eq!(result, Ok(()));
    assert_eq!(out, p1);
}
