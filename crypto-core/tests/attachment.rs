//! Integration tests of encrypted attachments: round trips, streaming, tampering, vectors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use core::convert::Infallible;
use crypto_core::Error;
use crypto_core::attachment::{
    AttachmentDecryptor, AttachmentEncryptor, AttachmentInfo, AttachmentKey, CHUNK_SIZE,
    ENCRYPTED_CHUNK_LEN, HEADER_LEN, ciphertext_len_for, decrypt_attachment, encrypt_attachment,
    encrypt_attachment_with_rng, plaintext_len_for,
};
use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};

const TAG: usize = 16;

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

/// SplitMix64: reproducible sizes and split points for the tests (not for keys).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Splits `data` into pieces of pseudo-random sizes (including empty and multi-chunk pieces).
fn pieces(data: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut rng = SplitMix(seed);
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
) -> (Result<(), Error>, Vec<u8>) {
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
fn decrypt_modified(ciphertext: &[u8], key: &AttachmentKey) -> (Result<(), Error>, Vec<u8>) {
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
    let mut rng = SplitMix(42);
    for round in 0..8 {
        let len = rng.below(4 * CHUNK_SIZE + 100);
        let plaintext = pattern(len);
        let (ciphertext, info) = stream_encrypt(round, &plaintext, rng.next());
        let mut dec = AttachmentDecryptor::for_attachment(&info).unwrap();
        let mut out = zeroize::Zeroizing::new(Vec::new());
        for piece in pieces(&ciphertext, rng.next()) {
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

#[test]
fn fixed_vector() {
    // The vector of docs/protocol.md section 14.
    let plaintext = b"The quick brown fox jumps over the lazy dog";
    let (ciphertext, info) = encrypt_attachment_with_rng(&mut CountingRng(0), plaintext).unwrap();
    assert_eq!(
        hex::encode(info.key.as_bytes()),
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    );
    assert_eq!(
        hex::encode(&ciphertext),
        "0110202122232425262728292a2b2c2d2e2f303132d3dc5f315f94f2bfe8b1e8b71c439d2212ffa67ffd27\
         2758ee3e3e49d777df0a45754ed5751f389c0da02f9025de9ee2b152108b513e797b626210"
    );
    assert_eq!(
        hex::encode(info.digest),
        "9aa6d53d32b7795e36b081bcf24f21a52070902a3a63f97bc91606151be82934"
    );
    assert_eq!((info.ciphertext_len, info.plaintext_len), (80, 43));
    let doc = protocol_doc_compact();
    assert!(
        doc.contains(&hex::encode(&ciphertext)),
        "docs/protocol.md shows another blob"
    );
    assert!(
        doc.contains(&hex::encode(info.digest)),
        "docs/protocol.md shows another digest"
    );

    // The same bytes from the primitive itself, following the documented format.
    let header = &ciphertext[..HEADER_LEN];
    assert_eq!(&header[..2], &[0x01, 0x10]);
    let mut nonce = [0u8; 24];
    nonce[..19].copy_from_slice(&header[2..]);
    nonce[23] = 1; // counter 0, final chunk
    let aead = XChaCha20Poly1305::new(info.key.as_bytes().into());
    let mut chunk = plaintext.to_vec();
    let tag = aead
        .encrypt_inout_detached(&nonce.into(), header, chunk.as_mut_slice().into())
        .unwrap();
    chunk.extend_from_slice(&tag);
    assert_eq!(&ciphertext[HEADER_LEN..], &chunk[..]);

    // Its negative twin: one flipped tag bit.
    let mut bad = ciphertext.clone();
    *bad.last_mut().unwrap() ^= 0x80;
    assert_eq!(
        decrypt_modified(&bad, &info.key).0,
        Err(Error::DecryptionFailed)
    );
}

#[test]
fn fixed_vector_empty_and_multi_chunk() {
    let (ciphertext, info) = encrypt_attachment_with_rng(&mut CountingRng(0), b"").unwrap();
    assert_eq!(
        hex::encode(&ciphertext),
        "0110202122232425262728292a2b2c2d2e2f303132757c3101f811dd1494fd07c2a31f12f6"
    );
    assert_eq!(
        hex::encode(info.digest),
        "463bedd872e6e8ecc0903037c1dbb79142b69e542bf6344c6f658325c5a5860d"
    );

    let plaintext = pattern(CHUNK_SIZE + 1);
    let (ciphertext, info) = encrypt_attachment_with_rng(&mut CountingRng(0), &plaintext).unwrap();
    assert_eq!(ciphertext.len(), 65_590);
    assert_eq!(
        hex::encode(info.digest),
        "8aee77cf6a1d0bebcf5e2204b080fc0e66c836925a12906a9d0159bb4a556b9b"
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
            Error::AttachmentTruncated
        );
    }
    // Cut exactly after a non-final chunk: the precise error.
    for i in 1..=3 {
        let cut = HEADER_LEN + i * ENCRYPTED_CHUNK_LEN;
        let (result, out) = decrypt_modified(&ciphertext[..cut], &info.key);
        assert_eq!(result, Err(Error::AttachmentTruncated), "after chunk {i}");
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
    assert_eq!(result, Err(Error::AttachmentTrailingData));
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
                Error::AttachmentTrailingData
            );
            // With the expected length known, the decryptor refuses the surplus on arrival.
            let mut dec = AttachmentDecryptor::for_attachment(&info).unwrap();
            let mut out = Vec::new();
            assert_eq!(
                dec.update(&extended, &mut out),
                Err(Error::AttachmentTrailingData)
            );
            assert!(out.is_empty());
        }
    }
}

#[test]
fn every_bit_of_a_small_ciphertext_matters() {
    let plaintext = pattern(63);
    let (ciphertext, info) = encrypt_attachment(&plaintext).unwrap();
    assert_eq!(ciphertext.len(), 100);
    for bit in 0..ciphertext.len() * 8 {
        let mut bad = ciphertext.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            decrypt_attachment(&bad, &info).unwrap_err(),
            Error::AttachmentDigestMismatch
        );
        let (result, out) = decrypt_modified(&bad, &info.key);
        let expected = match bit / 8 {
            0 => Error::UnsupportedVersion {
                expected: 1,
                got: 1 ^ (1 << (bit % 8)),
            },
            1 => Error::InvalidField,
            _ => Error::DecryptionFailed,
        };
        assert_eq!(result, Err(expected), "bit {bit}");
        assert!(out.is_empty(), "bit {bit} released plaintext");
    }
}

#[test]
fn sampled_bits_of_a_multi_chunk_ciphertext_matter() {
    let plaintext = pattern(2 * CHUNK_SIZE + CHUNK_SIZE / 2);
    let (ciphertext, info) = encrypt_attachment(&plaintext).unwrap();
    let mut rng = SplitMix(7);
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
        Err(Error::DecryptionFailed)
    );
    assert_eq!(out, plaintext[..CHUNK_SIZE]);
    // The failed decryptor refuses further use.
    assert_eq!(
        dec.update(b"", &mut out),
        Err(Error::AttachmentStreamClosed)
    );
    assert_eq!(dec.finish(&mut out), Err(Error::AttachmentStreamClosed));
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
    assert_eq!(
        decrypt_attachment(&ciphertext, &wrong_key).unwrap_err(),
        Error::DecryptionFailed
    );
    let (result, out) = stream_decrypt(&ciphertext, &wrong_key.key, &info.digest, 1);
    assert_eq!(result, Err(Error::DecryptionFailed));
    assert!(out.is_empty());

    let mut digest = info.digest;
    digest[0] ^= 1;
    let wrong_digest = AttachmentInfo {
        digest,
        ..info.clone()
    };
    assert_eq!(
        decrypt_attachment(&ciphertext, &wrong_digest).unwrap_err(),
        Error::AttachmentDigestMismatch
    );
    let (result, out) = stream_decrypt(&ciphertext, &info.key, &digest, 2);
    assert_eq!(result, Err(Error::AttachmentDigestMismatch));
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
        Error::InvalidField
    );
    assert_eq!(
        AttachmentDecryptor::for_attachment(&lying).unwrap_err(),
        Error::InvalidField
    );
    let impossible = AttachmentInfo {
        ciphertext_len: (HEADER_LEN + 3) as u64,
        plaintext_len: 0,
        ..info
    };
    assert_eq!(
        decrypt_attachment(&ciphertext, &impossible).unwrap_err(),
        Error::InvalidField
    );
}

#[test]
fn header_is_validated() {
    let (ciphertext, info) = encrypt_attachment(b"hello").unwrap();
    for (index, value, expected) in [
        (
            0,
            2u8,
            Error::UnsupportedVersion {
                expected: 1,
                got: 2,
            },
        ),
        (
            0,
            0,
            Error::UnsupportedVersion {
                expected: 1,
                got: 0,
            },
        ),
        (1, 12, Error::InvalidField),
        (1, 20, Error::InvalidField),
    ] {
        let mut bad = ciphertext.clone();
        bad[index] = value;
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
        Error::AttachmentDigestMismatch
    );
    let mut dec = AttachmentDecryptor::for_attachment(&wrong).unwrap();
    let mut out = Vec::new();
    dec.update(&blob, &mut out).unwrap();
    assert_eq!(dec.finish(&mut out), Err(Error::AttachmentDigestMismatch));
    // A modified middle chunk: the digest check comes first in the one-shot API; with a
    // matching digest the chunk's tag catches it, and only earlier chunks are released.
    let mut damaged = blob.clone();
    damaged[HEADER_LEN + 4 * ENCRYPTED_CHUNK_LEN + 9] ^= 0x20;
    assert_eq!(
        decrypt_attachment(&damaged, &info).unwrap_err(),
        Error::AttachmentDigestMismatch
    );
    let (result, out) = decrypt_modified(&damaged, &info.key);
    assert_eq!(result, Err(Error::DecryptionFailed));
    assert_eq!(out, plaintext[..4 * CHUNK_SIZE]);
    let mut matching = info.clone();
    matching.digest = Sha256::digest(&damaged).into();
    assert_eq!(
        decrypt_attachment(&damaged, &matching).unwrap_err(),
        Error::DecryptionFailed
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
