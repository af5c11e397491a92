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
//!   output buffer that is reused from one iteration to the next (no page faults).
//! - `stream_64KiB`: the same fed 64 KiB pieces (for information: the effect of the piece
//!   size; a second-thread hashing experiment used 1 MiB pieces vs these, docs/benchmarks.md).
//!
//! - interleaved: after criterion, [`ROUNDS`] rounds in which raw seal, raw open and the
//!   streaming encryptor and decryptor (1 MiB and 64 KiB pieces) run once each, one after the
//!   other; ratios of the medians are appended to the report. Criterion measures each function
//!   for seconds in turn, and on the shared VM the load changes in between (a raw open slower
//!   than the whole decryptor was seen); interleaving gives every variant the same load.
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
    AttachmentDecryptor, AttachmentEncryptor, CHUNK_SIZE, HEADER_LEN, decrypt_attachment,
    encrypt_attachment,
};
use crypto_core::primitives::{TAG_LEN, xchacha20poly1305_open, xchacha20poly1305_seal};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

const TOTAL: usize = 64 << 20;
/// Piece size fed to the streaming API (a typical file read).
const PIECE: usize = 1 << 20;
/// One chunk per call.
const SMALL_PIECE: usize = CHUNK_SIZE;
/// Rounds of the interleaved measurement.
const ROUNDS: usize = 7;

fn benches(c: &mut Criterion) {
    let plaintext = vec![0xa5u8; TOTAL];
    let key = [3u8; 32];
    let nonce = [4u8; 24];
    let ad = [5u8; HEADER_LEN]; // as long as the attachment header

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
    // The goal applies like for like: the streaming APIs (bounded memory, output buffer
    // reused) against the raw AEAD in place, the one-shot APIs (which return a freshly
    // allocated 64 MiB buffer, paying its page faults) against the raw AEAD writing into a
    // freshly allocated buffer. The one-shot ÷ in-place row is shown for information.
    let rows = [
        (
            "encrypt",
            "stream",
            "raw",
            "AttachmentEncryptor / raw",
            Goal::AtLeast(0.8),
        ),
        (
            "decrypt",
            "stream",
            "raw",
            "AttachmentDecryptor / raw",
            Goal::AtLeast(0.8),
        ),
        (
            "encrypt",
            "oneshot",
            "raw_alloc",
            "encrypt_attachment / raw_alloc (both allocate)",
            Goal::AtLeast(0.8),
        ),
        (
            "decrypt",
            "oneshot",
            "raw_alloc",
            "decrypt_attachment / raw_alloc (both allocate)",
            Goal::AtLeast(0.8),
        ),
        (
            "encrypt",
            "oneshot",
            "raw",
            "encrypt_attachment / raw (in place)",
            Goal::None,
        ),
        (
            "decrypt",
            "oneshot",
            "raw",
            "decrypt_attachment / raw (in place)",
            Goal::None,
        ),
    ]
    .map(|(op, api, base, label, goal)| {
        Ratio::speedup(
            label,
            &format!("attachment_{op}_64MiB/{api}"),
            &format!("attachment_{op}_64MiB/{base}"),
            goal,
        )
    });
    let one_thread = [
        ("encrypt", "AttachmentEncryptor"),
        ("decrypt", "AttachmentDecryptor"),
    ]
    .map(|(op, name)| {
        Ratio::speedup(
            format!("{name}, 64 KiB pieces / raw"),
            &format!("attachment_{op}_64MiB/stream_64KiB"),
            &format!("attachment_{op}_64MiB/raw"),
            Goal::None,
        )
    });
    let rows: Vec<Ratio> = rows.into_iter().chain(one_thread).collect();
    let interleaved = interleaved();
    write_report(
        "attachment",
        "attachments, 64 MiB: throughput ÷ raw XChaCha20-Poly1305 over 64 KiB chunks in place \
         (crypto-core/benches/attachment.rs)",
        since,
        &rows,
    );
    let path = common::target_dir().join("bench-attachment.txt");
    if let Ok(mut report) = std::fs::read_to_string(&path) {
        report.push_str(&interleaved);
        let _ = std::fs::write(&path, report);
    }
    print!("{interleaved}");
}

/// Raw seal, raw open and the streaming APIs, once each per round, medians; the report lines.
fn interleaved() -> String {
    let plaintext = vec![0xa5u8; TOTAL];
    let (key, nonce, ad) = ([3u8; 32], [4u8; 24], [5u8; 21]);
    let mut raw_sealed = Vec::with_capacity(TOTAL + TOTAL / CHUNK_SIZE * TAG_LEN);
    for chunk in plaintext.chunks(CHUNK_SIZE) {
        let start = raw_sealed.len();
        raw_sealed.extend_from_slice(chunk);
        let tag = xchacha20poly1305_seal(&key, &nonce, &ad, &mut raw_sealed[start..]).unwrap();
        raw_sealed.extend_from_slice(&tag);
    }
    let (blob, info) = encrypt_attachment(&plaintext).unwrap();
    let mut work = plaintext.clone();
    let mut opened = raw_sealed.clone();
    let mut out = Vec::with_capacity(blob.len());
    let mut times = [(); 6].map(|()| Vec::new());
    for _ in 0..ROUNDS {
        for (variant, samples) in times.iter_mut().enumerate() {
            opened.copy_from_slice(&raw_sealed);
            out.clear();
            let started = Instant::now();
            match variant {
                0 => {
                    for chunk in work.chunks_mut(CHUNK_SIZE) {
                        black_box(xchacha20poly1305_seal(&key, &nonce, &ad, chunk).unwrap());
                    }
                }
                1 => {
                    for chunk in opened.chunks_mut(CHUNK_SIZE + TAG_LEN) {
                        let (body, tag) = chunk.split_at_mut(CHUNK_SIZE);
                        let tag: &[u8; TAG_LEN] = (&*tag).try_into().unwrap();
                        xchacha20poly1305_open(&key, &nonce, &ad, body, tag).unwrap();
                    }
                }
                2 | 3 => {
                    let piece = if variant == 2 { PIECE } else { SMALL_PIECE };
                    let mut enc = AttachmentEncryptor::new().unwrap();
                    for p in plaintext.chunks(piece) {
                        enc.update(p, &mut out).unwrap();
                    }
                    black_box(enc.finish(&mut out).unwrap());
                }
                _ => {
                    let piece = if variant == 4 { PIECE } else { SMALL_PIECE };
                    let mut dec = AttachmentDecryptor::for_attachment(&info).unwrap();
                    for p in blob.chunks(piece) {
                        dec.update(p, &mut out).unwrap();
                    }
                    dec.finish(&mut out).unwrap();
                }
            }
            samples.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    let [raw_seal, raw_open, enc, enc_small, dec, dec_small] = times.map(|mut v| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    });
    let verdict = |ratio: f64| if ratio >= 0.8 { "met" } else { "MISSED" };
    let mut text = format!(
        "interleaved, {ROUNDS} rounds (medians): raw seal {raw_seal:.1} ms, raw open \
         {raw_open:.1} ms\n"
    );
    for (name, raw, two, one) in [
        ("AttachmentEncryptor", raw_seal, enc, enc_small),
        ("AttachmentDecryptor", raw_open, dec, dec_small),
    ] {
        text.push_str(&format!(
            "  {name}: 1 MiB pieces {two:.1} ms = {:.2} of raw (goal >= 0.8: {}); 64 KiB \
             pieces {one:.1} ms = {:.2}\n",
            raw / two,
            verdict(raw / two),
            raw / one,
        ));
    }
    text
}
