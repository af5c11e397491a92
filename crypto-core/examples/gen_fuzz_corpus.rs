//! Writes the seed corpus of the fuzz targets, `crypto-core/fuzz/corpus/<target>/`: a few valid
//! encodings of every format and a few invalid ones (empty, truncated, wrong version, ...).
//!
//! ```text
//! cargo run -p crypto-core --example gen_fuzz_corpus
//! ```
//!
//! Every key comes from a fixed seed, so a rerun rewrites the same bytes. Files this program
//! does not name (inputs a fuzzer found and someone checked in) are left alone.

use crypto_core::fuzzing::{self, FUZZ_PICKLE_KEY, FuzzRng};
use crypto_core::group::GroupSession;
use crypto_core::{Account, PickleKey, Session, SessionMessage};
use std::error::Error;
use std::path::Path;

type Seeds = Vec<(&'static str, Vec<u8>)>;

fn main() -> Result<(), Box<dyn Error>> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut written = 0;
    for (target, seeds) in seeds()? {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes)?;
            written += 1;
        }
    }
    println!("wrote {written} seeds under {}", corpus.display());
    Ok(())
}

fn seeds() -> Result<Vec<(&'static str, Seeds)>, Box<dyn Error>> {
    let rng = &mut FuzzRng::new(b"fuzz corpus");
    let key = PickleKey::new(FUZZ_PICKLE_KEY);

    let alice = Account::new_with_rng(rng)?;
    let mut bob = Account::new_with_rng(rng)?;
    let spk = bob.generate_signed_prekey_with_rng(1_700_000_000, rng)?;
    let otpks = bob.generate_one_time_prekeys_with_rng(3, rng)?;
    let bundle = bob.prekey_bundle(true)?;
    let bundle_without_otpk = bob.prekey_bundle(false)?;
    let identity = alice.identity().encode();

    // A session with a reply, and a second one started without a one-time prekey.
    let mut to_bob = alice.create_outbound_session_with_rng(&bundle, rng)?;
    let first = to_bob.encrypt_with_rng(b"hello Bob", rng)?;
    let SessionMessage::Prekey(first_prekey) = &first else {
        return Err("the first message must be a prekey message".into());
    };
    let (mut to_alice, _) = bob.create_inbound_session_with_rng(first_prekey, rng)?;
    let reply = to_alice.encrypt_with_rng(b"hi Alice", rng)?;
    to_bob.decrypt(&reply)?;
    let empty_reply = to_alice.encrypt_with_rng(b"", rng)?;
    let mut second = alice.create_outbound_session_with_rng(&bundle_without_otpk, rng)?;
    let no_otpk = second.encrypt_with_rng(b"no one-time prekey", rng)?;
    let mut fresh: Session = alice.create_outbound_session_with_rng(&bundle, rng)?;

    // A room of three: alice's view, with bob's and carol's chains.
    // Each distribution reaches alice over her pairwise session with its sender.
    let mut carol = Account::new_with_rng(rng)?;
    carol.generate_signed_prekey_with_rng(1_700_000_000, rng)?;
    let to_carol = alice.create_outbound_session_with_rng(&carol.prekey_bundle(false)?, rng)?;
    let mut room = GroupSession::new_with_rng("room", "alice", alice.identity(), rng)?;
    let bob_room = GroupSession::new_with_rng("room", "bob", bob.identity(), rng)?;
    let carol_room = GroupSession::new_with_rng("room", "carol", carol.identity(), rng)?;
    room.add_member("bob", &to_bob, &bob_room.distribution())?;
    room.add_member("carol", &to_carol, &carol_room.distribution())?;
    let group_message = room.encrypt(b"hello room")?.encode();
    let group_empty = room.encrypt(b"")?.encode();
    let distribution = room.distribution().encode().to_vec();
    let rotated = room.rotate_with_rng(rng)?.encode().to_vec();
    let mut empty_room = GroupSession::new_with_rng("", "", alice.identity(), rng)?;

    let account_pickle = bob.pickle_with_rng(&key, rng)?.into_bytes();
    let fresh_account_pickle = Account::new_with_rng(rng)?
        .pickle_with_rng(&key, rng)?
        .into_bytes();
    let initiator_pickle = to_bob.pickle_with_rng(&key, rng)?.into_bytes();
    let responder_pickle = to_alice.pickle_with_rng(&key, rng)?.into_bytes();
    let fresh_session_pickle = fresh.pickle_with_rng(&key, rng)?.into_bytes();
    let room_pickle = room.pickle_with_rng(&key, rng)?.into_bytes();
    let empty_room_pickle = empty_room.pickle_with_rng(&key, rng)?.into_bytes();

    let mut session_decrypt: Seeds = Vec::new();
    let names = [
        "genuine-m0-replay",
        "genuine-m2-replay",
        "bobs-own-reply",
        "genuine-m3-replay",
        "genuine-held-back",
        "genuine-next",
    ];
    for (name, seed) in names.into_iter().zip(fuzzing::session_decrypt_seeds()?) {
        session_decrypt.push((name, seed));
    }
    session_decrypt.push(("empty", Vec::new()));
    if let Some(m) = session_decrypt.get(4).map(|(_, m)| m.clone()) {
        session_decrypt.push(("held-back-tampered", flip_last(&m)));
    }

    Ok(vec![
        (
            "public_identity",
            invalid_variants(&identity, vec![("valid", identity.clone())]),
        ),
        (
            "signed_prekey",
            invalid_variants(&spk.encode(), vec![("valid", spk.encode())]),
        ),
        (
            "one_time_prekey",
            invalid_variants(
                &otpks.first().ok_or("no one-time prekey")?.encode(),
                otpks
                    .iter()
                    .zip(["valid-1", "valid-2", "valid-3"])
                    .map(|(k, name)| (name, k.encode()))
                    .collect(),
            ),
        ),
        (
            "prekey_bundle",
            invalid_variants(
                &bundle.encode(),
                vec![
                    ("valid-with-otpk", bundle.encode()),
                    ("valid-without-otpk", bundle_without_otpk.encode()),
                    ("reserved-pq-flag", with_byte(&bundle.encode(), 1, 0b11)),
                ],
            ),
        ),
        (
            "session_message",
            invalid_variants(
                &first.encode(),
                vec![
                    ("valid-prekey", first.encode()),
                    ("valid-prekey-without-otpk", no_otpk.encode()),
                    ("valid-ratchet", reply.encode()),
                    ("valid-ratchet-empty", empty_reply.encode()),
                    ("unknown-type", with_byte(&reply.encode(), 1, 9)),
                ],
            ),
        ),
        (
            "ratchet_message",
            invalid_variants(
                &reply.encode(),
                vec![
                    ("valid", reply.encode()),
                    ("valid-empty-plaintext", empty_reply.encode()),
                    ("prekey-type", first.encode()),
                ],
            ),
        ),
        (
            "prekey_message",
            invalid_variants(
                &first.encode(),
                vec![
                    ("valid", first.encode()),
                    ("valid-without-otpk", no_otpk.encode()),
                    ("reserved-flag", with_byte(&first.encode(), 2, 0b11)),
                    ("ratchet-type", reply.encode()),
                ],
            ),
        ),
        (
            "group_message",
            invalid_variants(
                &group_message,
                vec![
                    ("valid", group_message.clone()),
                    ("valid-empty-plaintext", group_empty),
                ],
            ),
        ),
        (
            "sender_key_distribution",
            invalid_variants(
                &distribution,
                vec![
                    ("valid", distribution.clone()),
                    ("valid-rotated", rotated),
                    ("group-message-type", with_byte(&distribution, 1, 3)),
                ],
            ),
        ),
        (
            "account_pickle",
            pickle_variants(&[
                (
                    "sealed-with-prekeys",
                    "plaintext-with-prekeys",
                    account_pickle,
                ),
                ("sealed-fresh", "plaintext-fresh", fresh_account_pickle),
            ])?,
        ),
        (
            "session_pickle",
            pickle_variants(&[
                ("sealed-initiator", "plaintext-initiator", initiator_pickle),
                ("sealed-responder", "plaintext-responder", responder_pickle),
                ("sealed-fresh", "plaintext-fresh", fresh_session_pickle),
            ])?,
        ),
        (
            "group_session_pickle",
            pickle_variants(&[
                ("sealed-room", "plaintext-room", room_pickle),
                (
                    "sealed-empty-room",
                    "plaintext-empty-room",
                    empty_room_pickle,
                ),
            ])?,
        ),
        ("session_decrypt", session_decrypt),
        ("attachment_decrypt", fuzzing::attachment_decrypt_seeds()?),
        ("safety_number_qr", fuzzing::safety_number_qr_seeds()),
    ])
}

/// `valid` plus the empty input, a truncation, a wrong version and a trailing byte.
fn invalid_variants(valid: &[u8], mut seeds: Seeds) -> Seeds {
    seeds.push(("empty", Vec::new()));
    seeds.push((
        "truncated",
        valid.iter().take(valid.len() / 2).copied().collect(),
    ));
    seeds.push(("wrong-version", with_byte(valid, 0, 2)));
    let mut trailing = valid.to_vec();
    trailing.push(0);
    seeds.push(("trailing-byte", trailing));
    seeds
}

/// Each sealed pickle, its plaintext state (the checks also seal inputs themselves), and for
/// the first one a truncation, a wrong version and a flipped tag bit.
fn pickle_variants(
    pickles: &[(&'static str, &'static str, Vec<u8>)],
) -> Result<Seeds, Box<dyn Error>> {
    let mut seeds = Seeds::new();
    for (sealed_name, plain_name, sealed) in pickles {
        seeds.push((sealed_name, sealed.clone()));
        seeds.push((plain_name, fuzzing::open_fuzz_pickle(sealed)?));
    }
    if let Some((_, _, sealed)) = pickles.first() {
        seeds.push((
            "sealed-truncated",
            sealed.iter().take(54).copied().collect(),
        ));
        // A version 1 pickle (no id, no counter) is refused by its version byte.
        seeds.push(("sealed-wrong-version", with_byte(sealed, 0, 1)));
        seeds.push(("sealed-tampered", flip_last(sealed)));
    }
    seeds.push(("empty", Vec::new()));
    Ok(seeds)
}

fn with_byte(bytes: &[u8], index: usize, value: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if let Some(b) = out.get_mut(index) {
        *b = value;
    }
    out
}

fn flip_last(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if let Some(b) = out.last_mut() {
        *b ^= 1;
    }
    out
}
