//! `Debug` never shows a secret (issue #10): one value of every type that holds secret key
//! material is built from a recording deterministic RNG or from fixed secret bytes, formatted
//! with `{:?}` and `{:#?}`, and every 8-byte window of every secret it was built from is looked
//! for in the output as lowercase or uppercase hex and as a Rust decimal array (`[1, 2, 3`).
//! Secrets derived inside the library (root, chain and message keys) are not visible to a test;
//! the generated ones they come from are, and a `Debug` that printed any key field would print
//! one of those.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::SplitMix64;
use core::convert::Infallible;
use core::fmt::Debug;
use crypto_core::attachment::{AttachmentDecryptor, AttachmentEncryptor, AttachmentKey};
use crypto_core::group::{GroupSession, InboundGroupSession, OutboundGroupSession};
use crypto_core::identity::IdentityKeys;
use crypto_core::{Account, PickleKey, SessionMessage};
use rand_core::{TryCryptoRng, TryRng};

/// SplitMix64 bytes that remembers everything it handed out: every secret the library
/// generated with it is somewhere in `seen`.
struct RecordingRng {
    mix: SplitMix64,
    seen: Vec<u8>,
}

impl RecordingRng {
    fn new(seed: u64) -> Self {
        Self {
            mix: SplitMix64(seed),
            seen: Vec::new(),
        }
    }
}

impl TryRng for RecordingRng {
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
        for b in dst.iter_mut() {
            *b = self.mix.next_u64().to_le_bytes()[0];
        }
        self.seen.extend_from_slice(dst);
        Ok(())
    }
}

impl TryCryptoRng for RecordingRng {}

const WINDOW: usize = 8;

/// The decimal byte sequences of `output`: every run of `n, n, n` (whitespace ignored, so the
/// one-per-line `{:#?}` form is read too) as bytes; numbers above 255 end a run.
fn decimal_runs(output: &str) -> Vec<Vec<u8>> {
    let compact: String = output.chars().filter(|c| !c.is_whitespace()).collect();
    let mut runs = Vec::new();
    let mut run = Vec::new();
    let mut number = String::new();
    for c in compact.chars().chain(core::iter::once(';')) {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        if !number.is_empty() {
            match number.parse::<u8>() {
                Ok(b) => run.push(b),
                Err(_) => runs.push(core::mem::take(&mut run)),
            }
            number.clear();
        }
        if c != ',' {
            runs.push(core::mem::take(&mut run));
        }
    }
    runs.retain(|r| r.len() >= WINDOW);
    runs
}

/// Panics if any `WINDOW`-byte window of `secret` appears in `output` as hex (either case) or
/// as a decimal array.
fn assert_no_window(what: &str, output: &str, secret: &[u8]) {
    assert!(
        secret.len() >= WINDOW,
        "{what}: secret shorter than a window"
    );
    let lower = output.to_ascii_lowercase();
    let runs = decimal_runs(output);
    for window in secret.windows(WINDOW) {
        let hex = hex::encode(window);
        assert!(
            !lower.contains(&hex),
            "{what}: Debug shows secret bytes {hex} as hex:\n{output}"
        );
        assert!(
            !runs.iter().any(|r| r.windows(WINDOW).any(|w| w == window)),
            "{what}: Debug shows secret bytes {window:?} as a decimal array:\n{output}"
        );
    }
}

/// `stream` with every occurrence of `public` cut out: the pieces before, between and after.
fn split_out(stream: &[u8], public: &[u8]) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + public.len() <= stream.len() {
        if &stream[i..i + public.len()] == public {
            pieces.push(stream[start..i].to_vec());
            i += public.len();
            start = i;
        } else {
            i += 1;
        }
    }
    pieces.push(stream[start..].to_vec());
    pieces
}

/// Formats `value` both ways and checks neither shows any of `secrets`.
fn check<T: Debug>(what: &str, value: &T, secrets: &[&[u8]]) {
    for output in [format!("{value:?}"), format!("{value:#?}")] {
        assert!(!output.is_empty(), "{what}: empty Debug");
        for secret in secrets {
            assert_no_window(what, &output, secret);
        }
    }
}

#[test]
fn the_checker_finds_hex_and_decimal_arrays() {
    let secret: Vec<u8> = (200..232).collect();
    for shown in [
        format!("{:?}", secret),
        format!("{:#?}", secret),
        hex::encode(&secret),
        hex::encode_upper(&secret),
    ] {
        let caught = std::panic::catch_unwind(|| assert_no_window("probe", &shown, &secret));
        assert!(caught.is_err(), "not caught: {shown}");
    }
    assert_no_window("probe", "Key { .. } [1, 2, 3]", &secret);
}

#[test]
fn no_secret_type_shows_its_secret_in_debug() {
    let mut rng = RecordingRng::new(0x5eed);
    let mut alice = Account::new_with_rng(&mut rng).unwrap();
    let mut bob = Account::new_with_rng(&mut rng).unwrap();
    bob.generate_signed_prekey_with_rng(1_700_000_000, &mut rng)
        .unwrap();
    bob.generate_one_time_prekeys_with_rng(2, &mut rng).unwrap();
    alice
        .generate_signed_prekey_with_rng(1_700_000_000, &mut rng)
        .unwrap();

    // A pairwise session, after a turn of the ratchet on both sides.
    let bundle = bob.prekey_bundle(true).unwrap();
    let mut alice_session = alice
        .create_outbound_session_with_rng(&bundle, &mut rng)
        .unwrap();
    let first = alice_session.encrypt_with_rng(b"first", &mut rng).unwrap();
    let SessionMessage::Prekey(prekey) = &first else {
        panic!("first message must be a prekey message");
    };
    let (mut bob_session, _) = bob
        .create_inbound_session_with_rng(prekey, &mut rng)
        .unwrap();
    let reply = bob_session.encrypt_with_rng(b"reply", &mut rng).unwrap();
    alice_session.decrypt(&reply).unwrap();

    // Bob's session whose remote identity is Alice's, to receive her distribution.
    let bob_to_alice = bob
        .create_outbound_session_with_rng(&alice.prekey_bundle(false).unwrap(), &mut rng)
        .unwrap();

    let mut outbound =
        OutboundGroupSession::new_with_rng("room", "alice-phone", alice.identity(), &mut rng)
            .unwrap();
    outbound.encrypt(b"group").unwrap();
    let distribution = outbound.distribution();
    let inbound = InboundGroupSession::new_with_rng(
        "room",
        "alice-phone",
        &bob_to_alice,
        &distribution,
        &mut rng,
    )
    .unwrap();
    let mut group =
        GroupSession::new_with_rng("room", "bob-laptop", bob.identity(), &mut rng).unwrap();
    group
        .add_member("alice-phone", &bob_to_alice, &distribution)
        .unwrap();
    let identity_keys = IdentityKeys::generate(&mut rng).unwrap();

    let pickle_secret: [u8; 32] = core::array::from_fn(|i| 0xa0 ^ (i as u8 * 7));
    let pickle_key = PickleKey::new(pickle_secret);
    let sealed = alice_session
        .pickle_with_rng(&pickle_key, &mut rng)
        .unwrap();

    let mut encryptor = AttachmentEncryptor::new_with_rng(&mut rng).unwrap();
    let mut blob = Vec::new();
    encryptor.update(b"an attachment", &mut blob).unwrap();
    let encryptor_debug = (format!("{encryptor:?}"), format!("{encryptor:#?}"));
    let info = encryptor.finish(&mut blob).unwrap();
    let attachment_key = info.key.clone();
    let decryptor = AttachmentDecryptor::for_attachment(&info).unwrap();
    let fixed_attachment_key = AttachmentKey::from_bytes(&[0x5a; 32]);

    // Pickle ids come from the same RNG but are public, and `Debug` shows them: the secrets
    // are the stretches of the stream between them.
    let public_ids = [
        alice.pickle_id(),
        bob.pickle_id(),
        alice_session.pickle_id(),
        bob_session.pickle_id(),
        bob_to_alice.pickle_id(),
        outbound.pickle_id(),
        inbound.pickle_id(),
        group.pickle_id(),
    ];
    let mut generated = vec![rng.seen.clone()];
    for id in &public_ids {
        generated = generated
            .iter()
            .flat_map(|stream| split_out(stream, id.as_bytes()))
            .collect();
    }
    let mut all: Vec<&[u8]> = generated
        .iter()
        .map(Vec::as_slice)
        .filter(|s| s.len() >= WINDOW)
        .collect();
    all.push(&pickle_secret);
    all.push(attachment_key.as_bytes());
    let all = all.as_slice();
    // Two accounts, prekeys, ratchet keys, two sender chains, identity keys, an attachment:
    // hundreds of secret bytes, not just what is left after cutting out the ids.
    assert!(all.iter().map(|s| s.len()).sum::<usize>() >= 400);
    check("Account (initiator)", &alice, all);
    check("Account (responder)", &bob, all);
    check("Session (initiator)", &alice_session, all);
    check("Session (responder)", &bob_session, all);
    check("OutboundGroupSession", &outbound, all);
    check("SenderKeyDistribution", &distribution, all);
    check("InboundGroupSession", &inbound, all);
    check("GroupSession", &group, all);
    check("IdentityKeys", &identity_keys, all);
    check("PickleKey", &pickle_key, all);
    check("SealedPickle", &sealed, all);
    check("AttachmentKey", &attachment_key, all);
    check(
        "AttachmentKey (fixed)",
        &fixed_attachment_key,
        &[&[0x5a; 32]],
    );
    check("AttachmentInfo", &info, all);
    check("AttachmentDecryptor", &decryptor, all);
    for output in [encryptor_debug.0, encryptor_debug.1] {
        for secret in all.iter() {
            assert_no_window("AttachmentEncryptor", &output, secret);
        }
    }
}

#[cfg(feature = "hazmat")]
#[test]
fn hazmat_key_types_do_not_show_their_secret_in_debug() {
    use crypto_core::primitives::{Ed25519KeyPair, X25519Secret};
    let x_secret: [u8; 32] = core::array::from_fn(|i| 0x40 + i as u8);
    let ed_seed: [u8; 32] = core::array::from_fn(|i| 0xc0 ^ i as u8);
    check(
        "X25519Secret",
        &X25519Secret::from_bytes(&x_secret),
        &[&x_secret],
    );
    check(
        "Ed25519KeyPair",
        &Ed25519KeyPair::from_seed(&ed_seed),
        &[&ed_seed],
    );
}
