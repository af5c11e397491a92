//! Attachment encryption throughput against raw XChaCha20-Poly1305, side by side in one run.
//!
//! 64 MiB of plaintext, in the same criterion groups:
//! - `raw`: `primitives::xchacha20poly1305_seal` / `_open` in place over 64 KiB chunks of a
//!   preallocated 64 MiB buffer (the AEAD alone: no header, no digest, no allocation).
//! - `oneshot`: `attachment::encrypt_attachment` / `decrypt_attachment` (allocates the output
//!   blob, computes and checks the SHA-256 digest of the ciphertext).
//! - `raw_alloc`: the same AEAD calls writing into a freshly allocated 64 MiB buffer, as the
//!   one-shot API must (for information: on this VM the first touch of 64 MiB of fresh memory
//!   costs about as much as the AEAD itself).
//! - `stream`: `AttachmentEncryptor` / `AttachmentDecryptor` fed 1 MiB pieces, writing into an
//!   output buffer that is reused from one iteration to the next (no page faults). Pieces of
//!   at least 4 chunks hash the ciphertext on a second thread while the chunks are sealed or
//!   opened (native targets).
//! - `stream_64KiB`: the same fed 64 KiB pieces, below that threshold: everything on the calling
//!   thread (for information: what one thread achieves, in the same run).
//!
//! Goal (docs/benchmarks.md): attachment throughput ÷ raw ≥ 0.8, encrypt and decrypt.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    missing_docs
)]

mod common;

use common::{Goal, Ratio, write_report};
use criterion::{Criterion, SamplingMode, Throughput};
use crypto_core::attachment::{
    AttachmentDecryptor, AttachmentEncryptor, CHUNK_SIZE, decrypt_attachment, encrypt_attachment,
};
use crypto_core::primitives::{TAG_LEN, xchacha20poly1305_open, xchacha20poly1305_seal};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

const TOTAL: usize = 64 << 20;
/// Piece size fed to the streaming API (a typical file read).
const PIECE: usize = 1 << 20;
/// Piece size below the library's parallel-hashing threshold (one chunk).
const SMALL_PIECE: usize = CHUNK_SIZE;

fn benches(c: &mut Criterion) {
    let plaintext = vec![0xa5u8; TOTAL];
    let key = [3u8; 32];
    let nonce = [4u8; 24];
    let ad = [5u8; 21]; // as long as the attachment header

    // Raw sealed chunks for the raw decryption (ciphertext || tag per 64 KiB chunk).
    let mut raw_sealed = Vec::with_capacity(TOTAL + TOTAL / CHUNK_SIZE * TAG_LEN);
    for chunk in plaintext.chunks(CHUNK_SIZE) {
        let start = raw_sealed.len();
        raw_sealed.extend_from_slice(chunk);
        let tag = xchacha20poly1305_seal(&key, &nonce, &ad, &mut raw_sealed[start..]).unwrap();
        raw_sealed.extend_from_slice(&tag);
    }
    let (blob, info) = encrypt_attachment(&plaintext).unwrap();

    let mut group = c.benchmark_group("attachment_encrypt_64MiB");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    let mut buf = plaintext.clone();
    group.bench_function("raw", |b| {
        b.iter(|| {
            for chunk in buf.chunks_mut(CHUNK_SIZE) {
                black_box(xchacha20poly1305_seal(&key, &nonce, &ad, chunk).unwrap());
            }
        });
    });
    group.bench_function("raw_alloc", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(raw_sealed.len());
            for chunk in plaintext.chunks(CHUNK_SIZE) {
                let start = out.len();
                out.extend_from_slice(chunk);
                let tag = xchacha20poly1305_seal(&key, &nonce, &ad, &mut out[start..]).unwrap();
                out.extend_from_slice(&tag);
            }
            out
        });
    });
    group.bench_function("oneshot", |b| {
        b.iter(|| encrypt_attachment(black_box(&plaintext)).unwrap());
    });
    let mut out = Vec::with_capacity(blob.len());
    group.bench_function("stream", |b| {
        b.iter(|| {
            out.clear();
            let mut enc = AttachmentEncryptor::new().unwrap();
            for piece in plaintext.chunks(PIECE) {
                enc.update(piece, &mut out).unwrap();
            }
            black_box(enc.finish(&mut out).unwrap())
        });
    });
    group.bench_function("stream_64KiB", |b| {
        b.iter(|| {
            out.clear();
            let mut enc = AttachmentEncryptor::new().unwrap();
            for piece in plaintext.chunks(SMALL_PIECE) {
                enc.update(piece, &mut out).unwrap();
            }
            black_box(enc.finish(&mut out).unwrap())
        });
    });
    group.finish();

    let mut group = c.benchmark_group("attachment_decrypt_64MiB");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    let mut work = raw_sealed.clone();
    group.bench_function("raw", |b| {
        // Opening is in place: the ciphertext is restored before each run, outside the timing.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                work.copy_from_slice(&raw_sealed);
                let started = Instant::now();
                for chunk in work.chunks_mut(CHUNK_SIZE + TAG_LEN) {
                    let (body, tag) = chunk.split_at_mut(CHUNK_SIZE);
                    let tag: &[u8; TAG_LEN] = (&*tag).try_into().unwrap();
                    xchacha20poly1305_open(&key, &nonce, &ad, body, tag).unwrap();
                }
                total += started.elapsed();
            }
            total
        });
    });
    group.bench_function("raw_alloc", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(TOTAL);
            for chunk in raw_sealed.chunks(CHUNK_SIZE + TAG_LEN) {
                let (body, tag) = chunk.split_at(CHUNK_SIZE);
                let tag: &[u8; TAG_LEN] = tag.try_into().unwrap();
                let start = out.len();
                out.extend_from_slice(body);
                xchacha20poly1305_open(&key, &nonce, &ad, &mut out[start..], tag).unwrap();
            }
            out
        });
    });
    group.bench_function("oneshot", |b| {
        b.iter(|| decrypt_attachment(black_box(&blob), &info).unwrap());
    });
    let mut out = Vec::with_capacity(TOTAL);
    group.bench_function("stream", |b| {
        b.iter(|| {
            out.clear();
            let mut dec = AttachmentDecryptor::for_attachment(&info).unwrap();
            for piece in blob.chunks(PIECE) {
                dec.update(piece, &mut out).unwrap();
            }
            dec.finish(&mut out).unwrap();
        });
    });
    group.bench_function("stream_64KiB", |b| {
        b.iter(|| {
            out.clear();
            let mut dec = AttachmentDecryptor::for_attachment(&info).unwrap();
            for piece in blob.chunks(SMALL_PIECE) {
                dec.update(piece, &mut out).unwrap();
            }
            dec.finish(&mut out).unwrap();
        });
    });
    group.finish();
}

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion().configure_from_args();
    benches(&mut c);
    c.final_summary();

    // Time ratios inverted: raw time ÷ attachment time = attachment throughput ÷ raw.
    let rows = [
        (
            "encrypt",
            "oneshot",
            "encrypt_attachment",
            Goal::AtLeast(0.8),
        ),
        (
            "encrypt",
            "stream",
            "AttachmentEncryptor",
            Goal::AtLeast(0.8),
        ),
        (
            "decrypt",
            "oneshot",
            "decrypt_attachment",
            Goal::AtLeast(0.8),
        ),
        (
            "decrypt",
            "stream",
            "AttachmentDecryptor",
            Goal::AtLeast(0.8),
        ),
    ]
    .map(|(op, api, name, goal)| {
        Ratio::speedup(
            format!("{name} / raw"),
            &format!("attachment_{op}_64MiB/{api}"),
            &format!("attachment_{op}_64MiB/raw"),
            goal,
        )
    });
    let extra = ["encrypt", "decrypt"].map(|op| {
        Ratio::speedup(
            format!("oneshot {op} / raw_alloc (both allocate)"),
            &format!("attachment_{op}_64MiB/oneshot"),
            &format!("attachment_{op}_64MiB/raw_alloc"),
            Goal::None,
        )
    });
    let one_thread = [
        ("encrypt", "AttachmentEncryptor"),
        ("decrypt", "AttachmentDecryptor"),
    ]
    .map(|(op, name)| {
        Ratio::speedup(
            format!("{name}, 64 KiB pieces (1 thread) / raw"),
            &format!("attachment_{op}_64MiB/stream_64KiB"),
            &format!("attachment_{op}_64MiB/raw"),
            Goal::None,
        )
    });
    let rows: Vec<Ratio> = rows.into_iter().chain(extra).chain(one_thread).collect();
    write_report(
        "attachment",
        "attachments, 64 MiB: throughput ÷ raw XChaCha20-Poly1305 over 64 KiB chunks in place \
         (crypto-core/benches/attachment.rs)",
        since,
        &rows,
    );
}
