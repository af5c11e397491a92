//! Tampering with every encoding crypto-core reads: every single-bit flip, every truncation, an
//! appended byte, a wrong version and reserved flags.
//!
//! The rule checked everywhere: a modified input is refused by the decoder or by the
//! verification or decryption that follows — never accepted, never a panic, never a wrong
//! plaintext — and a refused input leaves the receiving state as it was.
#![cfg(not(target_family = "wasm"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Pair;
use crypto_core::SignatureError;
use crypto_core::group::{
    GroupMessage, GroupSession, InboundGroupSession, OutboundGroupSession, SenderKeyDistribution,
};
use crypto_core::identity::PUBLIC_IDENTITY_LEN;
use crypto_core::pickle::PICKLE_VERSION;
use crypto_core::prekeys::{ONE_TIME_PREKEY_LEN, SIGNED_PREKEY_LEN};
use crypto_core::{
    Account, Error, OneTimePrekey, PickleId, PickleKey, PrekeyBundle, PublicIdentity, SealedPickle,
    Session, SessionMessage, SignedPrekey,
};
use crypto_core::{DecodeError, GroupError, PickleError, SessionError};

const VERSION: u8 = 2;

fn flipped(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut t = bytes.to_vec();
    t[bit / 8] ^= 1 << (bit % 8);
    t
}

fn appended(bytes: &[u8]) -> Vec<u8> {
    let mut t = bytes.to_vec();
    t.push(0);
    t
}

fn with_byte(bytes: &[u8], at: usize, value: u8) -> Vec<u8> {
    let mut t = bytes.to_vec();
    t[at] = value;
    t
}

fn unsupported(got: u8) -> DecodeError {
    DecodeError::UnsupportedVersion {
        expected: VERSION,
        got,
    }
}

/// Bob with a signed prekey and exactly one one-time prekey (id 1), so that a changed
/// one-time prekey id is always an unknown one.
fn bob_account() -> Account {
    common::bob_account(1)
}

/// What Bob makes of an encoded first message: decoding, then X3DH and decryption (either
/// failure, as the umbrella error).
fn bob_accepts(bob: &mut Account, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    match SessionMessage::decode(bytes)? {
        SessionMessage::Prekey(p) => Ok(bob.create_inbound_session(&p)?.1.to_vec()),
        SessionMessage::Ratchet(_) => panic!("a prekey message decoded as a ratchet message"),
    }
}

/// What a session makes of an encoded message (a decoding or session failure).
fn session_accepts(session: &mut Session, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(session.decrypt(&SessionMessage::decode(bytes)?)?.to_vec())
}

/// The error Bob gives for the first message of a session Alice built from `bundle` (or the
/// error Alice gets setting the session up).
fn first_message_error(alice: &Account, bob: &mut Account, bundle: &PrekeyBundle) -> SessionError {
    let mut session = match alice.create_outbound_session(bundle) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let first = session.encrypt(b"hi").unwrap().encode();
    let SessionMessage::Prekey(first) = SessionMessage::decode(&first).unwrap() else {
        panic!("the first message is a prekey message");
    };
    bob.create_inbound_session(&first).map(|_| ()).unwrap_err()
}

fn establish() -> Pair {
    common::establish(1, b"hi")
}

// ---------------------------------------------------------------------------------------------
// Identities and prekeys

#[test]
fn public_identity_bit_flips() {
    let identity = Account::new().unwrap().identity().clone();
    let bytes = identity.encode();
    assert_eq!(bytes.len(), PUBLIC_IDENTITY_LEN);
    for bit in 0..bytes.len() * 8 {
        let t = flipped(&bytes, bit);
        let result = PublicIdentity::decode(&t);
        match bit / 8 {
            0 => assert_eq!(result.unwrap_err(), unsupported(t[0])),
            // The Ed25519 key: not a valid point, or a valid one that did not sign.
            1..33 => assert!(
                matches!(
                    result,
                    Err(DecodeError::InvalidSigningKey | DecodeError::BadSignature)
                ),
                "bit {bit}: {result:?}"
            ),
            // The X25519 key and the binding signature.
            _ => assert_eq!(result.unwrap_err(), DecodeError::BadSignature, "bit {bit}"),
        }
    }
}

#[test]
fn signed_prekey_bit_flips() {
    let mut account = Account::new().unwrap();
    let spk = account.generate_signed_prekey(1_700_000_000).unwrap();
    let bytes = spk.encode();
    assert_eq!(bytes.len(), SIGNED_PREKEY_LEN);
    SignedPrekey::decode(&bytes)
        .unwrap()
        .verify(account.identity())
        .unwrap();
    for bit in 0..bytes.len() * 8 {
        let t = flipped(&bytes, bit);
        if bit < 8 {
            assert_eq!(SignedPrekey::decode(&t).unwrap_err(), unsupported(t[0]));
        } else {
            // Decoding does not verify (the signer is not known yet); verification fails.
            let tampered = SignedPrekey::decode(&t).unwrap();
            assert_eq!(
                tampered.verify(account.identity()),
                Err(SignatureError::BadSignature),
                "bit {bit}"
            );
        }
    }
}

#[test]
fn one_time_prekey_bit_flips() {
    let mut account = Account::new().unwrap();
    let otpk = account.generate_one_time_prekeys(1).unwrap()[0];
    let bytes = otpk.encode();
    assert_eq!(bytes.len(), ONE_TIME_PREKEY_LEN);
    for bit in 0..bytes.len() * 8 {
        let t = flipped(&bytes, bit);
        if bit < 8 {
            assert_eq!(OneTimePrekey::decode(&t).unwrap_err(), unsupported(t[0]));
        } else {
            // One-time prekeys are unsigned (X3DH §3.2): any id and key decode. What protects
            // a session is that Bob's X3DH then fails (see the bundle tests).
            let tampered = OneTimePrekey::decode(&t).unwrap();
            assert_ne!(tampered, otpk);
            assert_eq!(tampered.encode(), t);
        }
    }
}

/// Bundle layout: version, flags, identity (128), signed prekey (108), [one-time prekey (36)].
const BUNDLE_IDENTITY_ED25519: core::ops::Range<usize> = 2..34;
const BUNDLE_SIGNED_END: usize = 2 + 128 + 108;
const BUNDLE_OTPK_KEY: usize = BUNDLE_SIGNED_END + 4;

#[test]
fn bundle_bit_flips_with_one_time_prekey() {
    let alice = Account::new().unwrap();
    let mut bob = bob_account();
    let bundle = bob.prekey_bundle(true).unwrap();
    let bytes = bundle.encode();
    assert_eq!(bytes.len(), BUNDLE_SIGNED_END + 36);
    for bit in 0..bytes.len() * 8 {
        let t = flipped(&bytes, bit);
        let result = PrekeyBundle::decode(&t);
        let byte = bit / 8;
        match byte {
            0 => assert_eq!(result.unwrap_err(), unsupported(t[0])),
            1 if bit % 8 == 0 => assert_eq!(result.unwrap_err(), DecodeError::TrailingBytes(36)),
            1 => assert_eq!(
                result.unwrap_err(),
                DecodeError::ReservedFlags(1 << (bit % 8))
            ),
            _ if BUNDLE_IDENTITY_ED25519.contains(&byte) => assert!(
                matches!(
                    result,
                    Err(DecodeError::InvalidSigningKey | DecodeError::BadSignature)
                ),
                "bit {bit}: {result:?}"
            ),
            _ if byte < BUNDLE_SIGNED_END => {
                assert_eq!(result.unwrap_err(), DecodeError::BadSignature, "bit {bit}");
            }
            _ => {
                // The one-time prekey is not signed (X3DH §3.2), so a relay can change it; the
                // bundle decodes, and the session Alice builds from it is refused by Bob.
                let tampered = result.unwrap();
                assert_ne!(tampered, bundle);
                if bit == bytes.len() * 8 - 1 {
                    // Bit 255 of an X25519 u-coordinate is ignored (RFC 7748 §5): this is Bob's
                    // own key under another encoding, so the session works; nothing is forged.
                    // Accepting would consume the prekey: check on a copy of Bob.
                    let id = bob.pickle_id();
                    let sealed = bob.pickle(&key()).unwrap();
                    let mut bob_copy =
                        Account::from_pickle(sealed.as_bytes(), &key(), &id, sealed.counter())
                            .unwrap();
                    let mut session = alice.create_outbound_session(&tampered).unwrap();
                    let first = session.encrypt(b"same key").unwrap();
                    assert_eq!(
                        bob_accepts(&mut bob_copy, &first.encode()).unwrap(),
                        b"same key"
                    );
                    continue;
                }
                let error = first_message_error(&alice, &mut bob, &tampered);
                if byte < BUNDLE_OTPK_KEY {
                    let id = tampered.one_time_prekey().unwrap().id;
                    assert_eq!(error, SessionError::UnknownOneTimePrekey(id), "bit {bit}");
                } else {
                    assert!(
                        matches!(
                            error,
                            SessionError::DecryptionFailed | SessionError::NonContributory
                        ),
                        "bit {bit}: {error:?}"
                    );
                }
            }
        }
    }
    // Every refusal left Bob's one-time prekey in place.
    let mut session = alice.create_outbound_session(&bundle).unwrap();
    let first = session.encrypt(b"still works").unwrap();
    assert_eq!(
        bob_accepts(&mut bob, &first.encode()).unwrap(),
        b"still works"
    );
}

#[test]
fn bundle_bit_flips_without_one_time_prekey() {
    let bob = bob_account();
    let bytes = bob.prekey_bundle(false).unwrap().encode();
    assert_eq!(bytes.len(), BUNDLE_SIGNED_END);
    for bit in 0..bytes.len() * 8 {
        let t = flipped(&bytes, bit);
        let result = PrekeyBundle::decode(&t);
        let byte = bit / 8;
        match byte {
            0 => assert_eq!(result.unwrap_err(), unsupported(t[0])),
            1 if bit % 8 == 0 => assert_eq!(
                result.unwrap_err(),
                DecodeError::Truncated {
                    needed: 4,
                    remaining: 0
                }
            ),
            1 => assert_eq!(
                result.unwrap_err(),
                DecodeError::ReservedFlags(1 << (bit % 8))
            ),
            _ if BUNDLE_IDENTITY_ED25519.contains(&byte) => assert!(
                matches!(
                    result,
                    Err(DecodeError::InvalidSigningKey | DecodeError::BadSignature)
                ),
                "bit {bit}: {result:?}"
            ),
            _ => assert_eq!(result.unwrap_err(), DecodeError::BadSignature, "bit {bit}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Session messages

/// Prekey message layout: version, type, flags, identity (128), base key (32), signed prekey id,
/// one-time prekey id, ratchet message.
const PREKEY_BASE_KEY: core::ops::Range<usize> = 131..163;
const PREKEY_FLAGS: usize = 2;
const PREKEY_RATCHET_START: usize = 171;

#[test]
fn prekey_message_bit_flips_to_a_new_session() {
    let alice = Account::new().unwrap();
    let mut bob = bob_account();
    let mut session = alice
        .create_outbound_session(&bob.prekey_bundle(true).unwrap())
        .unwrap();
    let bytes = session.encrypt(b"hi").unwrap().encode();
    for bit in 0..bytes.len() * 8 {
        let t = flipped(&bytes, bit);
        let result = bob_accepts(&mut bob, &t);
        assert!(result.is_err(), "bit {bit} accepted: {result:?}");
    }
    // Nothing was consumed by the refusals.
    assert_eq!(bob_accepts(&mut bob, &bytes).unwrap(), b"hi");
}

#[test]
fn prekey_message_bit_flips_to_the_existing_session() {
    let alice = Account::new().unwrap();
    let mut bob_account = bob_account();
    let mut alice_session = alice
        .create_outbound_session(&bob_account.prekey_bundle(true).unwrap())
        .unwrap();
    let SessionMessage::Prekey(first) = alice_session.encrypt(b"one").unwrap() else {
        panic!()
    };
    let (mut bob, _) = bob_account.create_inbound_session(&first).unwrap();
    // Alice has not heard back: her second message is a prekey message too.
    let bytes = alice_session.encrypt(b"two").unwrap().encode();
    for bit in 0..bytes.len() * 8 {
        let t = flipped(&bytes, bit);
        let Ok(SessionMessage::Prekey(p)) = SessionMessage::decode(&t) else {
            continue;
        };
        // Routed as an application would: to the session it matches, else to the account.
        let result = if bob.matches_prekey_message(&p) {
            bob.decrypt(&SessionMessage::Prekey(p)).map(|_| ())
        } else {
            assert_eq!(
                bob.decrypt(&SessionMessage::Prekey(p.clone())).unwrap_err(),
                SessionError::SessionMismatch
            );
            bob_account.create_inbound_session(&p).map(|_| ())
        };
        assert!(result.is_err(), "bit {bit} accepted");
    }
    assert_eq!(session_accepts(&mut bob, &bytes).unwrap(), b"two");
}

#[test]
fn ratchet_message_bit_flips() {
    let Pair { mut alice, mut bob } = establish();
    // Bob's first reply opens a new chain at Alice (DH ratchet step); Alice's answer opens one
    // at Bob, and her second message continues it (no DH step).
    let reply = bob.encrypt(b"yo").unwrap().encode();
    assert!(matches!(
        SessionMessage::decode(&reply).unwrap(),
        SessionMessage::Ratchet(_)
    ));
    for bit in 0..reply.len() * 8 {
        let t = flipped(&reply, bit);
        assert!(session_accepts(&mut alice, &t).is_err(), "bit {bit}");
    }
    assert_eq!(session_accepts(&mut alice, &reply).unwrap(), b"yo");

    let new_chain = alice.encrypt(b"a1").unwrap().encode();
    let same_chain = alice.encrypt(b"a2").unwrap().encode();
    for bit in 0..new_chain.len() * 8 {
        assert!(
            session_accepts(&mut bob, &flipped(&new_chain, bit)).is_err(),
            "bit {bit}"
        );
    }
    assert_eq!(session_accepts(&mut bob, &new_chain).unwrap(), b"a1");
    for bit in 0..same_chain.len() * 8 {
        assert!(
            session_accepts(&mut bob, &flipped(&same_chain, bit)).is_err(),
            "bit {bit}"
        );
    }
    assert_eq!(session_accepts(&mut bob, &same_chain).unwrap(), b"a2");
    assert_eq!(bob.skipped_message_keys(), 0);
}

// ---------------------------------------------------------------------------------------------
// Group messages and sender key distributions

const ROOM: &str = "room";

/// A sender's outbound chain in [`ROOM`] as device "alice", and a receiver's pairwise session
/// with that sender (what a distribution must arrive over).
fn group_sender() -> (OutboundGroupSession, Session) {
    let mut alice = Account::new().unwrap();
    alice.generate_signed_prekey(1_700_000_000).unwrap();
    let outbound = OutboundGroupSession::new(ROOM, "alice", alice.identity()).unwrap();
    let from_alice = bob_account()
        .create_outbound_session(&alice.prekey_bundle(false).unwrap())
        .unwrap();
    (outbound, from_alice)
}

/// A receiver's room holding alice's chain, and alice's room.
fn group_rooms() -> (GroupSession, GroupSession) {
    let mut alice_account = Account::new().unwrap();
    alice_account.generate_signed_prekey(1_700_000_000).unwrap();
    let alice = GroupSession::new(ROOM, "alice", alice_account.identity()).unwrap();
    let bob_account = bob_account();
    let mut bob = GroupSession::new(ROOM, "bob", bob_account.identity()).unwrap();
    let from_alice = bob_account
        .create_outbound_session(&alice_account.prekey_bundle(false).unwrap())
        .unwrap();
    bob.add_member("alice", &from_alice, &alice.distribution())
        .unwrap();
    (alice, bob)
}

#[test]
fn group_message_bit_flips() {
    let (mut alice, mut bob) = group_rooms();
    let bytes = alice.encrypt(b"hi all").unwrap().encode();
    for bit in 0..bytes.len() * 8 {
        let t = flipped(&bytes, bit);
        if let Ok(m) = GroupMessage::decode(&t) {
            let result = bob.decrypt("alice", &m);
            assert!(result.is_err(), "bit {bit} accepted");
        }
    }
    let m = GroupMessage::decode(&bytes).unwrap();
    assert_eq!(&bob.decrypt("alice", &m).unwrap()[..], b"hi all");
    assert_eq!(
        bob.decrypt("alice", &m).unwrap_err(),
        GroupError::DuplicateMessage
    );
}

/// Distribution layout: version, type, room id length (4) and room id, sender identity key
/// (32), device id length (4) and device id, chain id (4), iteration (4), chain key (32),
/// signing key (32), signature (64) over everything before it. The decoder verifies the
/// signature, so no single flipped bit gets through it.
#[test]
fn distribution_bit_flips() {
    let (mut outbound, from_alice) = group_sender();
    for _ in 0..3 {
        outbound.encrypt(b"before").unwrap();
    }
    let distribution = outbound.distribution();
    assert_eq!(distribution.iteration(), 3);
    let bytes = distribution.encode().to_vec();
    // Messages at iterations 3..=6: all readable with the genuine distribution.
    let messages: Vec<GroupMessage> = (0..4)
        .map(|i| outbound.encrypt(format!("m{i}").as_bytes()).unwrap())
        .collect();
    for (i, m) in messages.iter().enumerate() {
        let mut inbound =
            InboundGroupSession::new(ROOM, "alice", &from_alice, &distribution).unwrap();
        assert_eq!(&inbound.decrypt(m).unwrap()[..], format!("m{i}").as_bytes());
    }

    let room_end = 6 + ROOM.len();
    let identity_end = room_end + 32;
    let device_end = identity_end + 4 + "alice".len();
    let signing_key_at = device_end + 4 + 4 + 32;
    for bit in 0..bytes.len() * 8 {
        let t = flipped(&bytes, bit);
        let byte = bit / 8;
        let e = SenderKeyDistribution::decode(&t).unwrap_err();
        match byte {
            0 => assert_eq!(e, unsupported(t[0])),
            1 => assert_eq!(e, DecodeError::UnknownMessageType(t[1])),
            // A length: the fields after it shift, so anything but acceptance.
            2..6 => {}
            b if (identity_end..identity_end + 4).contains(&b) => {}
            // UTF-8 ids: a flipped bit may make them invalid UTF-8.
            b if (6..room_end).contains(&b) || (identity_end + 4..device_end).contains(&b) => {
                assert!(
                    matches!(e, DecodeError::InvalidField | DecodeError::BadSignature),
                    "bit {bit}: {e:?}"
                );
            }
            // Ed25519 keys: another valid key cannot verify the signature.
            b if (room_end..identity_end).contains(&b)
                || (signing_key_at..signing_key_at + 32).contains(&b) =>
            {
                assert!(
                    matches!(
                        e,
                        DecodeError::InvalidSigningKey | DecodeError::BadSignature
                    ),
                    "bit {bit}: {e:?}"
                );
            }
            _ => assert_eq!(e, DecodeError::BadSignature, "bit {bit}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Truncation, extension, versions, flags

/// Every proper prefix of an encoding and the encoding with one byte appended are refused by
/// `accept` (decoding plus whatever verification or decryption follows).
fn assert_prefixes_and_extension_refused(
    what: &str,
    bytes: &[u8],
    mut accept: impl FnMut(&[u8]) -> Result<(), Error>,
) {
    for len in 0..bytes.len() {
        let result = accept(&bytes[..len]);
        assert!(result.is_err(), "{what}: prefix of {len} bytes accepted");
    }
    assert!(
        accept(&appended(bytes)).is_err(),
        "{what}: appended byte accepted"
    );
    accept(bytes).unwrap_or_else(|e| panic!("{what}: the genuine encoding was refused: {e}"));
}

#[test]
fn truncated_and_extended_encodings_are_refused() {
    let mut bob = bob_account();
    let identity = bob.identity().clone();
    assert_prefixes_and_extension_refused("identity", &identity.encode(), |b| {
        Ok(PublicIdentity::decode(b).map(|_| ())?)
    });
    assert_eq!(
        PublicIdentity::decode(&appended(&identity.encode())).unwrap_err(),
        DecodeError::TrailingBytes(1)
    );
    let spk = bob.signed_prekey().unwrap().clone();
    assert_prefixes_and_extension_refused("signed prekey", &spk.encode(), |b| {
        Ok(SignedPrekey::decode(b)?.verify(&identity)?)
    });
    let otpk = bob.one_time_prekeys()[0];
    assert_prefixes_and_extension_refused("one-time prekey", &otpk.encode(), |b| {
        Ok(OneTimePrekey::decode(b).map(|_| ())?)
    });
    for with_otpk in [true, false] {
        let bundle = bob.prekey_bundle(with_otpk).unwrap().encode();
        assert_prefixes_and_extension_refused("bundle", &bundle, |b| {
            Ok(PrekeyBundle::decode(b).map(|_| ())?)
        });
        assert_eq!(
            PrekeyBundle::decode(&appended(&bundle)).unwrap_err(),
            DecodeError::TrailingBytes(1)
        );
    }

    // The prekey message: refusals consume nothing, so the genuine one is accepted last.
    let alice = Account::new().unwrap();
    let mut to_bob = alice
        .create_outbound_session(&bob.prekey_bundle(true).unwrap())
        .unwrap();
    let prekey = to_bob.encrypt(b"hi").unwrap().encode();
    assert_prefixes_and_extension_refused("prekey message", &prekey, |b| {
        bob_accepts(&mut bob, b).map(|_| ())
    });

    let Pair { mut alice, mut bob } = establish();
    let ratchet = bob.encrypt(b"yo").unwrap().encode();
    assert_prefixes_and_extension_refused("ratchet message", &ratchet, |b| {
        session_accepts(&mut alice, b).map(|_| ())
    });

    let (mut outbound, from_alice) = group_sender();
    let distribution = outbound.distribution().encode().to_vec();
    assert_prefixes_and_extension_refused("distribution", &distribution, |b| {
        Ok(SenderKeyDistribution::decode(b).map(|_| ())?)
    });
    assert_eq!(
        SenderKeyDistribution::decode(&appended(&distribution)).unwrap_err(),
        DecodeError::TrailingBytes(1)
    );
    let mut inbound = InboundGroupSession::new(
        ROOM,
        "alice",
        &from_alice,
        &SenderKeyDistribution::decode(&distribution).unwrap(),
    )
    .unwrap();
    let group = outbound.encrypt(b"hi all").unwrap().encode();
    assert_prefixes_and_extension_refused("group message", &group, |b| {
        Ok(inbound.decrypt(&GroupMessage::decode(b)?).map(|_| ())?)
    });
}

#[test]
fn wrong_versions_are_named() {
    let mut bob = bob_account();
    let alice = Account::new().unwrap();
    let mut to_bob = alice
        .create_outbound_session(&bob.prekey_bundle(true).unwrap())
        .unwrap();
    let prekey = to_bob.encrypt(b"hi").unwrap().encode();
    let (mut outbound, _) = group_sender();
    let distribution = outbound.distribution().encode().to_vec();
    let group = outbound.encrypt(b"hi all").unwrap().encode();
    let Pair {
        bob: mut bob_session,
        ..
    } = establish();
    let ratchet = bob_session.encrypt(b"yo").unwrap().encode();

    for got in [0, 1, 3, 0x80, 0xff] {
        let e = unsupported(got);
        let identity = with_byte(&bob.identity().encode(), 0, got);
        assert_eq!(PublicIdentity::decode(&identity).unwrap_err(), e);
        let spk = with_byte(&bob.signed_prekey().unwrap().encode(), 0, got);
        assert_eq!(SignedPrekey::decode(&spk).unwrap_err(), e);
        let otpk = with_byte(&bob.one_time_prekeys()[0].encode(), 0, got);
        assert_eq!(OneTimePrekey::decode(&otpk).unwrap_err(), e);
        let bundle = with_byte(&bob.prekey_bundle(true).unwrap().encode(), 0, got);
        assert_eq!(PrekeyBundle::decode(&bundle).unwrap_err(), e);
        assert_eq!(
            SessionMessage::decode(&with_byte(&prekey, 0, got)).unwrap_err(),
            e
        );
        // The ratchet message inside a prekey message has its own version byte.
        assert_eq!(
            SessionMessage::decode(&with_byte(&prekey, PREKEY_RATCHET_START, got)).unwrap_err(),
            e
        );
        assert_eq!(
            SessionMessage::decode(&with_byte(&ratchet, 0, got)).unwrap_err(),
            e
        );
        assert_eq!(
            GroupMessage::decode(&with_byte(&group, 0, got)).unwrap_err(),
            e
        );
        assert_eq!(
            SenderKeyDistribution::decode(&with_byte(&distribution, 0, got)).unwrap_err(),
            e
        );
    }
    // The genuine prekey message is still good (nothing above reached Bob's account).
    assert_eq!(bob_accepts(&mut bob, &prekey).unwrap(), b"hi");
}

#[test]
fn reserved_flags_are_refused() {
    let mut bob = bob_account();
    for with_otpk in [true, false] {
        let bytes = bob.prekey_bundle(with_otpk).unwrap().encode();
        // 0x02 is the slot reserved for a post-quantum (ML-KEM) prekey.
        assert_eq!(crypto_core::prekeys::FLAG_PQ_KEM_PREKEY, 0x02);
        let t = with_byte(&bytes, 1, bytes[1] | 0x02);
        assert_eq!(
            PrekeyBundle::decode(&t).unwrap_err(),
            DecodeError::ReservedFlags(0x02)
        );
        let t = with_byte(&bytes, 1, bytes[1] | 0x80);
        assert_eq!(
            PrekeyBundle::decode(&t).unwrap_err(),
            DecodeError::ReservedFlags(0x80)
        );
    }
    let alice = Account::new().unwrap();
    let mut to_bob = alice
        .create_outbound_session(&bob.prekey_bundle(true).unwrap())
        .unwrap();
    let prekey = to_bob.encrypt(b"hi").unwrap().encode();
    let t = with_byte(&prekey, PREKEY_FLAGS, prekey[PREKEY_FLAGS] | 0x02);
    assert_eq!(
        SessionMessage::decode(&t).unwrap_err(),
        DecodeError::ReservedFlags(0x02)
    );
    assert_eq!(bob_accepts(&mut bob, &prekey).unwrap(), b"hi");
}

// ---------------------------------------------------------------------------------------------
// Pickles

fn key() -> PickleKey {
    PickleKey::new([0x42; 32])
}

/// Pickle kinds, as written in byte 1 of a sealed pickle.
const KIND_ACCOUNT: u8 = 1;
const KIND_SESSION: u8 = 2;
const KIND_OUTBOUND_GROUP: u8 = 3;
const KIND_INBOUND_GROUP: u8 = 4;
const KIND_GROUP: u8 = 5;

/// Every flipped bit, truncation and extension of a sealed pickle is refused with the precise
/// error; a wrong version, kind, id and an older counter are named, a newer counter fails
/// authentication. `open` opens as the genuine object at the genuine counter.
fn assert_pickle_tamper_proof(
    what: &str,
    sealed: &SealedPickle,
    kind: u8,
    open: impl Fn(&[u8], &PickleKey) -> Result<(), PickleError>,
) {
    let (id, counter) = (sealed.pickle_id(), sealed.counter());
    let sealed = sealed.as_bytes();
    assert_eq!(&sealed[2..18], id.as_bytes(), "{what}: id in clear");
    assert_eq!(
        sealed[18..26],
        counter.to_be_bytes(),
        "{what}: counter in clear"
    );
    open(sealed, &key()).unwrap_or_else(|e| panic!("{what}: genuine pickle refused: {e}"));
    for bit in 0..sealed.len() * 8 {
        let t = flipped(sealed, bit);
        let expected = match bit / 8 {
            0 => PickleError::PickleVersion {
                expected: PICKLE_VERSION,
                got: t[0],
            },
            1 => PickleError::PickleKind {
                expected: kind,
                got: t[1],
            },
            2..18 => PickleError::PickleIdMismatch {
                expected: id,
                got: PickleId::from_bytes(t[2..18].try_into().unwrap()),
            },
            18..26 => {
                let got = u64::from_be_bytes(t[18..26].try_into().unwrap());
                if got < counter {
                    PickleError::PickleRolledBack {
                        counter: got,
                        latest: counter,
                    }
                } else {
                    // Claims to be newer: only the tag over the header can tell.
                    PickleError::PickleDecryption
                }
            }
            _ => PickleError::PickleDecryption,
        };
        assert_eq!(open(&t, &key()), Err(expected), "{what}: bit {bit}");
    }
    for len in 0..sealed.len() {
        let expected = match len {
            0 | 1 => PickleError::Decode(DecodeError::Truncated {
                needed: 1,
                remaining: 0,
            }),
            2..18 => PickleError::Decode(DecodeError::Truncated {
                needed: 16,
                remaining: len - 2,
            }),
            18..26 => PickleError::Decode(DecodeError::Truncated {
                needed: 8,
                remaining: len - 18,
            }),
            // Nonce (24) and tag (16).
            _ if len < 26 + 40 => PickleError::Decode(DecodeError::Truncated {
                needed: 40,
                remaining: len - 26,
            }),
            _ => PickleError::PickleDecryption,
        };
        assert_eq!(
            open(&sealed[..len], &key()),
            Err(expected),
            "{what}: {len} bytes"
        );
    }
    assert_eq!(
        open(&appended(sealed), &key()),
        Err(PickleError::PickleDecryption),
        "{what}: appended byte"
    );
    assert_eq!(
        open(&with_byte(sealed, 0, 1), &key()),
        Err(PickleError::PickleVersion {
            expected: PICKLE_VERSION,
            got: 1
        }),
        "{what}: a version 1 pickle (no id, no counter)"
    );
    assert_eq!(
        open(sealed, &PickleKey::new([0x43; 32])),
        Err(PickleError::PickleDecryption),
        "{what}: wrong key"
    );
}

#[test]
fn pickle_bit_flips() {
    // An account with signed and one-time prekeys and a remembered base key.
    let mut bob = bob_account();
    bob.generate_one_time_prekeys(1).unwrap();
    let alice = Account::new().unwrap();
    let mut to_bob = alice
        .create_outbound_session(&bob.prekey_bundle(true).unwrap())
        .unwrap();
    let first = to_bob.encrypt(b"hi").unwrap().encode();
    assert_eq!(bob_accepts(&mut bob, &first).unwrap(), b"hi");
    // Pickled a few times, so that a flipped counter bit can also go down.
    for _ in 0..6 {
        bob.pickle(&key()).unwrap();
    }
    let account = bob.pickle(&key()).unwrap();
    assert_eq!(account.counter(), 7);
    let (id, latest) = (account.pickle_id(), account.counter());
    assert_pickle_tamper_proof("account", &account, KIND_ACCOUNT, |b, k| {
        Account::from_pickle(b, k, &id, latest).map(|_| ())
    });

    // A session holding skipped keys and a closed chain.
    let Pair { mut alice, mut bob } = establish();
    let _lost = bob.encrypt(b"lost").unwrap();
    let late = bob.encrypt(b"late").unwrap();
    alice.decrypt(&late).unwrap();
    alice.encrypt(b"turn").unwrap();
    assert_eq!(alice.skipped_message_keys(), 1);
    alice.pickle(&key()).unwrap();
    let session = alice.pickle(&key()).unwrap();
    let (id, latest) = (session.pickle_id(), session.counter());
    assert_pickle_tamper_proof("session", &session, KIND_SESSION, |b, k| {
        Session::from_pickle(b, k, &id, latest).map(|_| ())
    });

    let (mut other, from_alice) = group_sender();
    let mut room = GroupSession::new(ROOM, "bob", bob_account().identity()).unwrap();
    room.add_member("alice", &from_alice, &other.distribution())
        .unwrap();
    let _skipped = other.encrypt(b"1").unwrap();
    room.decrypt("alice", &other.encrypt(b"2").unwrap())
        .unwrap();
    let group = room.pickle(&key()).unwrap();
    let (id, latest) = (group.pickle_id(), group.counter());
    assert_pickle_tamper_proof("group session", &group, KIND_GROUP, |b, k| {
        GroupSession::from_pickle(b, k, &id, latest).map(|_| ())
    });

    let outbound = other.pickle(&key()).unwrap();
    let (id, latest) = (outbound.pickle_id(), outbound.counter());
    assert_pickle_tamper_proof(
        "outbound group session",
        &outbound,
        KIND_OUTBOUND_GROUP,
        |b, k| OutboundGroupSession::from_pickle(b, k, &id, latest).map(|_| ()),
    );

    let mut inbound =
        InboundGroupSession::new(ROOM, "alice", &from_alice, &other.distribution()).unwrap();
    let _skipped = other.encrypt(b"3").unwrap();
    inbound.decrypt(&other.encrypt(b"4").unwrap()).unwrap();
    let sealed = inbound.pickle(&key()).unwrap();
    let (id, latest) = (sealed.pickle_id(), sealed.counter());
    assert_pickle_tamper_proof(
        "inbound group session",
        &sealed,
        KIND_INBOUND_GROUP,
        |b, k| InboundGroupSession::from_pickle(b, k, &id, latest).map(|_| ()),
    );

    // A pickle of one kind is not accepted as another, even under its own id.
    assert_eq!(
        Account::from_pickle(session.as_bytes(), &key(), &session.pickle_id(), 0).unwrap_err(),
        PickleError::PickleKind {
            expected: KIND_ACCOUNT,
            got: KIND_SESSION
        }
    );
    assert_eq!(
        InboundGroupSession::from_pickle(outbound.as_bytes(), &key(), &outbound.pickle_id(), 0)
            .unwrap_err(),
        PickleError::PickleKind {
            expected: KIND_INBOUND_GROUP,
            got: KIND_OUTBOUND_GROUP
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Regression

/// Regression test. X25519 ignores bit 255 of a u-coordinate (RFC 7748 §5) and the X3DH base
/// key enters the key derivation only through Diffie-Hellman, so a first message whose base key
/// had its top bit flipped decrypted exactly like the original. Not being byte-equal to the
/// remembered base key, it passed the replay check: a replayed first message of a session
/// without a one-time prekey opened a second session and delivered its plaintext again.
/// Decoders now refuse non-canonical base keys.
#[test]
fn replayed_first_message_with_non_canonical_base_key_is_refused() {
    let alice = Account::new().unwrap();
    let mut bob = bob_account();
    let mut to_bob = alice
        .create_outbound_session(&bob.prekey_bundle(false).unwrap())
        .unwrap();
    let first = to_bob.encrypt(b"pay 10 EUR").unwrap().encode();
    assert_eq!(bob_accepts(&mut bob, &first).unwrap(), b"pay 10 EUR");
    assert_eq!(
        bob_accepts(&mut bob, &first).unwrap_err(),
        Error::from(SessionError::DuplicateMessage)
    );

    let top = PREKEY_BASE_KEY.end - 1;
    let replay = with_byte(&first, top, first[top] | 0x80);
    assert_eq!(
        bob_accepts(&mut bob, &replay).unwrap_err(),
        Error::from(DecodeError::InvalidField)
    );

    // The other non-canonical encodings: u-coordinates from p = 2^255 - 19 up to 2^255 - 1.
    for low in [0xed, 0xee, 0xff] {
        let mut p = [0xff_u8; 32];
        p[0] = low;
        p[31] = 0x7f;
        let mut t = first.clone();
        t[PREKEY_BASE_KEY].copy_from_slice(&p);
        assert_eq!(
            SessionMessage::decode(&t).unwrap_err(),
            DecodeError::InvalidField
        );
    }
    // The largest canonical one, p - 1, decodes (and is then refused by X3DH's decryption).
    let mut t = first.clone();
    let mut p_minus_1 = [0xff_u8; 32];
    p_minus_1[0] = 0xec;
    p_minus_1[31] = 0x7f;
    t[PREKEY_BASE_KEY].copy_from_slice(&p_minus_1);
    assert!(SessionMessage::decode(&t).is_ok());
    assert!(bob_accepts(&mut bob, &t).is_err());
}
