//! Ratchet encryption against the raw AEAD it is built on, side by side in one run.
//!
//! For each size (64 B, 256 B, 1 KiB, 64 KiB), in the same criterion group:
//! - `raw_seal`: `primitives::chacha20poly1305_seal` in place over a buffer of that size, with
//!   associated data as long as a ratchet message's (74 bytes): the floor any message
//!   encryption pays.
//! - `session_encrypt`: `Session::encrypt` on an established session, steady state on one
//!   sending chain (`KDF_CK` step, HKDF-Expand of the AEAD key and nonce, header, seal, and
//!   the message buffer it returns).
//! - `session_decrypt`: `Session::decrypt` of a fresh message of that size, for information
//!   (the message is encrypted outside the timed part).
//!
//! Goals (docs/benchmarks.md): session_encrypt ÷ raw_seal ≤ 2.5 at 256 B, ≤ 1.2 at 64 KiB.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    missing_docs
)]

mod common;

use common::{Goal, Ratio, established_pair, write_report};
use criterion::{BatchSize, Criterion, Throughput};
use crypto_core::primitives::chacha20poly1305_seal;
use std::hint::black_box;
use std::time::SystemTime;

const SIZES: [(usize, &str); 4] = [(64, "64B"), (256, "256B"), (1024, "1KiB"), (65536, "64KiB")];
/// Associated data as long as a ratchet message's: X3DH AD digest (32) + header (42).
const AD_LEN: usize = 74;

fn benches(c: &mut Criterion) {
    let (mut alice, _) = established_pair();
    let key = [7u8; 32];
    let nonce = [9u8; 12];
    let ad = [1u8; AD_LEN];
    for (size, name) in SIZES {
        let mut group = c.benchmark_group(format!("ratchet_{name}"));
        group.throughput(Throughput::Bytes(size as u64));
        let plaintext = vec![0x5au8; size];
        let mut buf = vec![0x5au8; size];
        group.bench_function("raw_seal", |b| {
            b.iter(|| chacha20poly1305_seal(&key, &nonce, &ad, black_box(&mut buf)).unwrap());
        });
        group.bench_function("session_encrypt", |b| {
            b.iter(|| alice.encrypt(black_box(&plaintext)).unwrap());
        });
        // A pair of its own: Alice's messages above were never delivered to this Bob.
        let (mut sender, mut bob) = established_pair();
        group.bench_function("session_decrypt", |b| {
            b.iter_batched(
                || sender.encrypt(&plaintext).unwrap(),
                |m| bob.decrypt(black_box(&m)).unwrap(),
                BatchSize::SmallInput,
            );
        });
        group.finish();
    }
}

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion().sample_size(50).configure_from_args();
    benches(&mut c);
    c.final_summary();

    let mut rows = Vec::new();
    for (_, name) in SIZES {
        let goal = match name {
            "256B" => Goal::AtMost(2.5),
            "64KiB" => Goal::AtMost(1.2),
            _ => Goal::None,
        };
        rows.push(Ratio::new(
            format!("Session::encrypt / raw seal, {name}"),
            &format!("ratchet_{name}/session_encrypt"),
            &format!("ratchet_{name}/raw_seal"),
            goal,
        ));
    }
    for (_, name) in SIZES {
        rows.push(Ratio::new(
            format!("Session::decrypt / raw seal, {name}"),
            &format!("ratchet_{name}/session_decrypt"),
            &format!("ratchet_{name}/raw_seal"),
            Goal::None,
        ));
    }
    write_report(
        "ratchet",
        "ratchet message vs raw ChaCha20-Poly1305 (crypto-core/benches/ratchet.rs)",
        since,
        &rows,
    );
}
