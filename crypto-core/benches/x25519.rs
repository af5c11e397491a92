//! X25519: x25519-dalek's Montgomery ladder against crypto-core's X25519 (on x86_64 with AVX2,
//! Edwards arithmetic; see `primitives::x25519_many`), interleaved in one process.
//!
//! - `1 DH`: one agreement with an on-curve public key, ladder vs `X25519Secret::diffie_hellman`.
//! - `X3DH initiator` / `X3DH responder`: the four agreements of an X3DH with a one-time prekey
//!   (x3dh.rs), four ladders vs one `x25519_many` call.
//!
//! Each round times the ladder version and ours alternately, [`ROUNDS`] rounds, medians: on the
//! shared 2-vCPU VM only ratios measured this way mean anything. Not a criterion bench: it
//! ignores its arguments; it prints its table and writes it to `target/bench-x25519.txt`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    missing_docs
)]

mod common;

use crypto_core::primitives::{X25519PublicKey, X25519Secret, x25519_many};
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: usize = 2000;

fn ladder(secret: &[u8; 32], public: &X25519PublicKey) -> [u8; 32] {
    x25519_dalek::x25519(*secret, *public.as_bytes())
}

/// Medians (µs) of `a` and `b`, timed alternately.
fn interleaved(mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    for _ in 0..50 {
        a();
        b();
    }
    let (mut ta, mut tb) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for _ in 0..ROUNDS {
        let started = Instant::now();
        a();
        ta.push(started.elapsed().as_secs_f64() * 1e6);
        let started = Instant::now();
        b();
        tb.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut ta), median(&mut tb))
}

fn report(out: &mut String, name: &str, (ladder, ours): (f64, f64)) {
    let line = format!(
        "{name:<16} ladder {ladder:7.1} µs   ours {ours:7.1} µs   ladder/ours {:.2}\n",
        ladder / ours
    );
    print!("{line}");
    out.push_str(&line);
}

fn key(byte: u8) -> ([u8; 32], X25519Secret) {
    let bytes = [byte; 32];
    (bytes, X25519Secret::from_bytes(&bytes))
}

fn main() {
    let mut out = String::from(
        "X25519, x25519-dalek ladder vs crypto-core, interleaved medians (benches/x25519.rs)\n",
    );
    let (a_bytes, a) = key(1);
    let (_, b) = key(2);
    let b_pub = b.public_key();
    report(
        &mut out,
        "1 DH",
        interleaved(
            || {
                black_box(ladder(black_box(&a_bytes), black_box(&b_pub)));
            },
            || {
                black_box(black_box(&a).diffie_hellman(black_box(&b_pub)).unwrap());
            },
        ),
    );

    // X3DH: Alice's identity IK_A and base key EK_A, Bob's IK_B, SPK_B, OPK_B.
    let (ik_a_bytes, ik_a) = key(3);
    let (ek_a_bytes, ek_a) = key(4);
    let (ik_b_bytes, ik_b) = key(5);
    let (spk_b_bytes, spk_b) = key(6);
    let (opk_b_bytes, opk_b) = key(7);
    let (ik_a_pub, ek_a_pub) = (ik_a.public_key(), ek_a.public_key());
    let (ik_b_pub, spk_b_pub, opk_b_pub) =
        (ik_b.public_key(), spk_b.public_key(), opk_b.public_key());
    report(
        &mut out,
        "X3DH initiator",
        interleaved(
            || {
                black_box(ladder(&ik_a_bytes, black_box(&spk_b_pub)));
                black_box(ladder(&ek_a_bytes, black_box(&ik_b_pub)));
                black_box(ladder(&ek_a_bytes, black_box(&spk_b_pub)));
                black_box(ladder(&ek_a_bytes, black_box(&opk_b_pub)));
            },
            || {
                black_box(
                    x25519_many([
                        (&ik_a, black_box(&spk_b_pub)),
                        (&ek_a, black_box(&ik_b_pub)),
                        (&ek_a, black_box(&spk_b_pub)),
                        (&ek_a, black_box(&opk_b_pub)),
                    ])
                    .unwrap(),
                );
            },
        ),
    );
    report(
        &mut out,
        "X3DH responder",
        interleaved(
            || {
                black_box(ladder(&spk_b_bytes, black_box(&ik_a_pub)));
                black_box(ladder(&ik_b_bytes, black_box(&ek_a_pub)));
                black_box(ladder(&spk_b_bytes, black_box(&ek_a_pub)));
                black_box(ladder(&opk_b_bytes, black_box(&ek_a_pub)));
            },
            || {
                black_box(
                    x25519_many([
                        (&spk_b, black_box(&ik_a_pub)),
                        (&ik_b, black_box(&ek_a_pub)),
                        (&spk_b, black_box(&ek_a_pub)),
                        (&opk_b, black_box(&ek_a_pub)),
                    ])
                    .unwrap(),
                );
            },
        ),
    );
    let path = common::target_dir().join("bench-x25519.txt");
    if let Err(err) = std::fs::write(&path, out) {
        eprintln!("cannot write {}: {err}", path.display());
    }
}
