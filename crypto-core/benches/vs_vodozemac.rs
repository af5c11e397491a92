//! Our pairwise sessions against vodozemac 0.11's Olm (v1) sessions, side by side in one run.
//!
//! - `roundtrip_1KiB`: one 1 KiB message encrypted by Alice and decrypted by Bob, in steady
//!   state on one chain (both sessions established with one reply beforehand, so neither side
//!   sends prekey messages and every message is a symmetric-ratchet step). Messages stay in
//!   memory on both sides (no wire encoding).
//! - `setup`: everything from nothing to Bob holding the first plaintext, the same steps on
//!   both sides (see docs/benchmarks.md for the list): 2 accounts, 3 Ed25519 signatures, 1
//!   (ours) or 2 (vodozemac) verifications of the published keys, the outbound session, the
//!   first message, the inbound session that decrypts it.
//!
//! - `setup`, interleaved: after criterion, [`INTERLEAVED_PAIRS`] setups of each library
//!   alternating one by one (medians), appended to the report. Criterion measures one library
//!   for seconds, then the other, so a change of machine load in between moves its ratio
//!   (0.65–1.17 in five runs on the shared VM); alternating makes both see the same load.
//!
//! Goals (docs/benchmarks.md): round trip ≥ 4× faster than vodozemac; setup no slower.

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
use criterion::Criterion;
use std::hint::black_box;
use std::time::{Instant, SystemTime};
use vodozemac::olm::{Account as OlmAccount, OlmMessage, Session as OlmSession, SessionConfig};

const MESSAGE: usize = 1024;
/// Alternating setups of each library in the interleaved measurement.
const INTERLEAVED_PAIRS: usize = 300;

/// vodozemac: two established Olm v1 sessions (Alice → Bob, one reply, Alice's next message
/// decrypted), mirroring `established_pair`.
fn olm_pair() -> (OlmSession, OlmSession) {
    let alice = OlmAccount::new();
    let mut bob = OlmAccount::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    let mut to_bob = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(first) = to_bob.encrypt(b"hello").unwrap() else {
        unreachable!("the first message is a pre-key message")
    };
    let mut to_alice = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &first)
        .unwrap()
        .session;
    let reply = to_alice.encrypt(b"hi").unwrap();
    to_bob.decrypt(&reply).unwrap();
    let m = to_bob.encrypt(b"warm").unwrap();
    to_alice.decrypt(&m).unwrap();
    (to_bob, to_alice)
}

/// Ours: the whole setup, as the applications run it.
fn our_setup() -> usize {
    use crypto_core::{Account, SessionMessage};
    // 2 accounts: Ed25519 + X25519 keys and the identity binding signature each (2 signs).
    let alice = Account::new().unwrap();
    let mut bob = Account::new().unwrap();
    // Bob's published keys: signed prekey (1 sign) and one one-time prekey; the bundle
    // constructor verifies the signed prekey (1 verify).
    bob.generate_signed_prekey(1_700_000_000).unwrap();
    bob.generate_one_time_prekeys(1).unwrap();
    let bundle = bob.prekey_bundle(true).unwrap();
    // Alice: X3DH (the bundle was verified when it was built), first message.
    let mut to_bob = alice.create_outbound_session(&bundle).unwrap();
    let SessionMessage::Prekey(first) = to_bob.encrypt(b"hello Bob").unwrap() else {
        unreachable!("the first message is a prekey message")
    };
    // Bob: X3DH and decryption of the first message.
    let (_to_alice, plaintext) = bob.create_inbound_session(&first).unwrap();
    plaintext.len()
}

/// vodozemac: the same steps with Olm. Olm has no signed prekey; Matrix clients sign their
/// identity keys and each one-time key with the account's Ed25519 key, and the sender checks
/// those signatures before `create_outbound_session`. Those signatures are done here so that
/// both sides do 3 signs; vodozemac verifies twice, ours once (bundles are verified when built).
fn olm_setup() -> usize {
    // 2 accounts; each signs its identity keys (like our identity binding signature).
    let alice = OlmAccount::new();
    let mut bob = OlmAccount::new();
    let _alice_device_sig = alice.sign(alice.curve25519_key().as_bytes());
    let bob_device_sig = bob.sign(bob.curve25519_key().as_bytes());
    // Bob publishes a signed one-time key (like our signed prekey).
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    let otk_sig = bob.sign(otk.as_bytes());
    bob.mark_keys_as_published();
    // Alice checks Bob's device and one-time key signatures (2 verifies), then 3DH.
    bob.ed25519_key()
        .verify(bob.curve25519_key().as_bytes(), &bob_device_sig)
        .unwrap();
    bob.ed25519_key().verify(otk.as_bytes(), &otk_sig).unwrap();
    let mut to_bob = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(first) = to_bob.encrypt(b"hello Bob").unwrap() else {
        unreachable!("the first message is a pre-key message")
    };
    // Bob: 3DH and decryption of the first message.
    let result = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &first)
        .unwrap();
    result.plaintext.len()
}

fn benches(c: &mut Criterion) {
    let plaintext = vec![0x42u8; MESSAGE];
    let mut group = c.benchmark_group("roundtrip_1KiB");
    let (mut alice, mut bob) = established_pair();
    group.bench_function("ours", |b| {
        b.iter(|| {
            let m = alice.encrypt(black_box(&plaintext)).unwrap();
            bob.decrypt(&m).unwrap()
        });
    });
    let (mut olm_alice, mut olm_bob) = olm_pair();
    group.bench_function("vodozemac", |b| {
        b.iter(|| {
            let m = olm_alice.encrypt(black_box(&plaintext)).unwrap();
            olm_bob.decrypt(&m).unwrap()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("setup");
    group.bench_function("ours", |b| b.iter(our_setup));
    group.bench_function("vodozemac", |b| b.iter(olm_setup));
    group.finish();
}

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion().sample_size(30).configure_from_args();
    benches(&mut c);
    c.final_summary();
    let rows = [
        Ratio::speedup(
            "1 KiB round trip: vodozemac time / ours",
            "roundtrip_1KiB/ours",
            "roundtrip_1KiB/vodozemac",
            Goal::AtLeast(4.0),
        ),
        Ratio::speedup(
            "session setup: vodozemac time / ours",
            "setup/ours",
            "setup/vodozemac",
            Goal::AtLeast(1.0),
        ),
    ];
    write_report(
        "vs-vodozemac",
        "crypto-core vs vodozemac 0.11 Olm v1 (crypto-core/benches/vs_vodozemac.rs)",
        since,
        &rows,
    );
    interleaved_setup();
}

/// Setup timed alternately (ours, vodozemac, ours, ...), medians; appended to the report.
fn interleaved_setup() {
    for _ in 0..20 {
        black_box(our_setup());
        black_box(olm_setup());
    }
    let (mut ours, mut olm) = (Vec::new(), Vec::new());
    for _ in 0..INTERLEAVED_PAIRS {
        let started = Instant::now();
        black_box(our_setup());
        ours.push(started.elapsed().as_secs_f64() * 1e6);
        let started = Instant::now();
        black_box(olm_setup());
        olm.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ours, olm) = (median(&mut ours), median(&mut olm));
    let ratio = olm / ours;
    let verdict = if ratio >= 1.0 { "met" } else { "MISSED" };
    let line = format!(
        "session setup, {INTERLEAVED_PAIRS} interleaved pairs: vodozemac {olm:.1} µs / ours \
         {ours:.1} µs = {ratio:.2}   goal >= 1: {verdict}\n"
    );
    print!("{line}");
    let path = common::target_dir().join("bench-vs-vodozemac.txt");
    if let Ok(mut report) = std::fs::read_to_string(&path) {
        report.push_str(&line);
        let _ = std::fs::write(&path, report);
    }
}
