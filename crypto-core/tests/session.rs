//! Pairwise session behaviour: X3DH setup, ratchet round trips, out-of-order delivery,
//! replays, forgeries and pickles.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crypto_core::message::MAX_PLAINTEXT_LEN;
use crypto_core::ratchet::MAX_SKIP_PER_CHAIN;
use crypto_core::{PickleError, SessionError};
mod common;

use common::Pair;
use crypto_core::{Account, PickleKey, Session, SessionMessage};

/// Bob with five one-time prekeys.
fn bob_account() -> Account {
    common::bob_account(5)
}

fn establish() -> Pair {
    common::establish(5, b"first")
}

fn wire(m: &SessionMessage) -> SessionMessage {
    SessionMessage::decode(&m.encode()).unwrap()
}

#[test]
fn round_trip_both_directions_with_ratchet_turns() {
    let Pair { mut alice, mut bob } = establish();
    assert_eq!(alice.session_id(), bob.session_id());
    for turn in 0..5 {
        for i in 0..3 {
            let text = format!("a{turn}-{i}");
            let m = wire(&alice.encrypt(text.as_bytes()).unwrap());
            assert_eq!(&bob.decrypt(&m).unwrap()[..], text.as_bytes());
        }
        let text = format!("b{turn}");
        let m = wire(&bob.encrypt(text.as_bytes()).unwrap());
        assert!(matches!(m, SessionMessage::Ratchet(_)));
        assert_eq!(&alice.decrypt(&m).unwrap()[..], text.as_bytes());
    }
    // After a reply Alice no longer sends prekey messages.
    assert!(matches!(
        alice.encrypt(b"x").unwrap(),
        SessionMessage::Ratchet(_)
    ));
}

#[test]
fn later_prekey_messages_go_to_the_existing_session() {
    let alice_account = Account::new().unwrap();
    let mut bob_account = bob_account();
    let bundle = bob_account.prekey_bundle(true).unwrap();
    let mut alice = alice_account.create_outbound_session(&bundle).unwrap();
    let m1 = alice.encrypt(b"one").unwrap();
    let m2 = alice.encrypt(b"two").unwrap();
    let SessionMessage::Prekey(p2) = &m2 else {
        panic!()
    };
    // The second arrives first.
    let (mut bob, pt) = bob_account.create_inbound_session(p2).unwrap();
    assert_eq!(&pt[..], b"two");
    let SessionMessage::Prekey(p1) = &m1 else {
        panic!()
    };
    assert!(bob.matches_prekey_message(p1));
    assert_eq!(&bob.decrypt(&m1).unwrap()[..], b"one");
    // A replayed first message neither builds a new session nor decrypts twice.
    assert_eq!(
        bob_account.create_inbound_session(p2).unwrap_err(),
        SessionError::DuplicateMessage
    );
    assert_eq!(
        bob.decrypt(&m2).unwrap_err(),
        SessionError::DuplicateMessage
    );
}

#[test]
fn consumed_one_time_prekey_cannot_be_used_again() {
    let mut bob_account = bob_account();
    let bundle = bob_account.prekey_bundle(true).unwrap();
    let otpk = bundle.one_time_prekey().unwrap().id;
    let mut first = Account::new()
        .unwrap()
        .create_outbound_session(&bundle)
        .unwrap();
    let SessionMessage::Prekey(p) = first.encrypt(b"hi").unwrap() else {
        panic!()
    };
    bob_account.create_inbound_session(&p).unwrap();
    // Another initiator (fresh base key) that got the same bundle.
    let mut second = Account::new()
        .unwrap()
        .create_outbound_session(&bundle)
        .unwrap();
    let SessionMessage::Prekey(p) = second.encrypt(b"hi").unwrap() else {
        panic!()
    };
    assert_eq!(
        bob_account.create_inbound_session(&p).unwrap_err(),
        SessionError::UnknownOneTimePrekey(otpk)
    );
    assert!(!bob_account.one_time_prekeys().iter().any(|k| k.id == otpk));
}

#[test]
fn session_without_one_time_prekey() {
    let mut bob_account = bob_account();
    let bundle = bob_account.prekey_bundle(false).unwrap();
    let mut alice = Account::new()
        .unwrap()
        .create_outbound_session(&bundle)
        .unwrap();
    let SessionMessage::Prekey(p) = alice.encrypt(b"no otpk").unwrap() else {
        panic!()
    };
    assert_eq!(p.one_time_prekey_id(), None);
    let (_bob, pt) = bob_account.create_inbound_session(&p).unwrap();
    assert_eq!(&pt[..], b"no otpk");
    assert_eq!(bob_account.one_time_prekeys().len(), 5);
}

#[test]
fn forged_first_message_keeps_the_one_time_prekey() {
    let mut bob_account = bob_account();
    let bundle = bob_account.prekey_bundle(true).unwrap();
    let mut alice = Account::new()
        .unwrap()
        .create_outbound_session(&bundle)
        .unwrap();
    let mut bytes = alice.encrypt(b"hello").unwrap().encode();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let SessionMessage::Prekey(p) = SessionMessage::decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(
        bob_account.create_inbound_session(&p).unwrap_err(),
        SessionError::DecryptionFailed
    );
    assert_eq!(bob_account.one_time_prekeys().len(), 5);
}

/// Protocol §9.2: the initiator's first ratchet key is its X3DH base key; a prekey message
/// whose ratchet key differs is refused before any DH, and consumes nothing.
#[test]
fn prekey_message_ratchet_key_must_equal_base_key() {
    let mut bob_account = bob_account();
    let bundle = bob_account.prekey_bundle(true).unwrap();
    let mut alice = Account::new()
        .unwrap()
        .create_outbound_session(&bundle)
        .unwrap();
    let first = alice.encrypt(b"hello").unwrap();
    let SessionMessage::Prekey(p) = &first else {
        panic!()
    };
    assert_eq!(p.message().ratchet_key(), p.base_key());
    // With a one-time prekey the inner RatchetMessage starts at 171; its ratchet key at 173.
    let mut bytes = first.encode();
    let other = bob_account.identity().agreement_key().as_bytes().to_vec();
    bytes[173..205].copy_from_slice(&other);
    let SessionMessage::Prekey(p) = SessionMessage::decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(
        bob_account.create_inbound_session(&p).unwrap_err(),
        SessionError::SessionMismatch
    );
    assert_eq!(bob_account.one_time_prekeys().len(), 5);
    // The genuine message still sets the session up.
    let SessionMessage::Prekey(p) = first else {
        panic!()
    };
    let (_, plaintext) = bob_account.create_inbound_session(&p).unwrap();
    assert_eq!(&plaintext[..], b"hello");
}

#[test]
fn out_of_order_across_ratchet_turns() {
    let Pair { mut alice, mut bob } = establish();
    let reply = bob.encrypt(b"ack").unwrap();
    alice.decrypt(&reply).unwrap();
    let a: Vec<_> = (0..5)
        .map(|i| alice.encrypt(format!("a{i}").as_bytes()).unwrap())
        .collect();
    // Bob gets a4 first (skipping a0..a3), answers, Alice answers back on a new chain.
    assert_eq!(&bob.decrypt(&a[4]).unwrap()[..], b"a4");
    assert_eq!(bob.skipped_message_keys(), 4);
    alice.decrypt(&bob.encrypt(b"b").unwrap()).unwrap();
    let c = alice.encrypt(b"c").unwrap();
    assert_eq!(&bob.decrypt(&c).unwrap()[..], b"c");
    for i in [2usize, 0, 3, 1] {
        assert_eq!(&bob.decrypt(&a[i]).unwrap()[..], format!("a{i}").as_bytes());
        assert_eq!(
            bob.decrypt(&a[i]).unwrap_err(),
            SessionError::DuplicateMessage
        );
    }
    assert_eq!(bob.skipped_message_keys(), 0);
}

#[test]
fn messages_skipped_before_a_chain_closes_are_kept() {
    // Alice sends 3 on her chain; Bob sees only the last, replies; Alice's next chain
    // announces PN=3. Bob must keep keys for 0 and 1.
    let Pair { mut alice, mut bob } = establish();
    alice.decrypt(&bob.encrypt(b"ack").unwrap()).unwrap();
    let a: Vec<_> = (0..3).map(|i| alice.encrypt(&[i]).unwrap()).collect();
    bob.decrypt(&a[2]).unwrap();
    alice.decrypt(&bob.encrypt(b"r").unwrap()).unwrap();
    let next = alice.encrypt(b"next").unwrap();
    bob.decrypt(&next).unwrap();
    assert_eq!(&bob.decrypt(&a[0]).unwrap()[..], &[0]);
    assert_eq!(&bob.decrypt(&a[1]).unwrap()[..], &[1]);
}

#[test]
fn closing_chain_keys_via_previous_chain_length() {
    // Bob never sees Alice's last two messages of a chain before her new chain starts.
    let Pair { mut alice, mut bob } = establish();
    alice.decrypt(&bob.encrypt(b"ack").unwrap()).unwrap();
    let a: Vec<_> = (0..3).map(|i| alice.encrypt(&[i]).unwrap()).collect();
    bob.decrypt(&a[0]).unwrap();
    alice.decrypt(&bob.encrypt(b"r").unwrap()).unwrap();
    bob.decrypt(&alice.encrypt(b"new chain").unwrap()).unwrap();
    assert_eq!(bob.skipped_message_keys(), 2);
    assert_eq!(&bob.decrypt(&a[2]).unwrap()[..], &[2]);
    assert_eq!(&bob.decrypt(&a[1]).unwrap()[..], &[1]);
}

#[test]
fn too_far_ahead_is_refused_and_harmless() {
    let Pair { mut alice, mut bob } = establish();
    let mut last = None;
    for _ in 0..=MAX_SKIP_PER_CHAIN + 1 {
        last = Some(alice.encrypt(b"x").unwrap());
    }
    let err = bob.decrypt(&last.unwrap()).unwrap_err();
    assert!(matches!(err, SessionError::TooFarAhead { .. }), "{err:?}");
    assert_eq!(bob.skipped_message_keys(), 0);
}

#[test]
fn replay_and_forgery_leave_the_session_intact() {
    let Pair { mut alice, mut bob } = establish();
    let m = alice.encrypt(b"once").unwrap();
    assert_eq!(&bob.decrypt(&m).unwrap()[..], b"once");
    assert_eq!(bob.decrypt(&m).unwrap_err(), SessionError::DuplicateMessage);
    let good = alice.encrypt(b"good").unwrap();
    let bytes = good.encode();
    for bit in 0..bytes.len() * 8 {
        let mut t = bytes.clone();
        t[bit / 8] ^= 1 << (bit % 8);
        if let Ok(forged) = SessionMessage::decode(&t) {
            assert!(bob.decrypt(&forged).is_err(), "bit {bit} accepted");
        }
    }
    assert_eq!(&bob.decrypt(&good).unwrap()[..], b"good");
    // A reply to a forged new ratchet key would have broken the chain; it did not.
    let back = bob.encrypt(b"still fine").unwrap();
    assert_eq!(&alice.decrypt(&back).unwrap()[..], b"still fine");
}

#[test]
fn replay_on_an_old_chain_is_a_duplicate() {
    let Pair { mut alice, mut bob } = establish();
    let old = alice.encrypt(b"old").unwrap();
    bob.decrypt(&old).unwrap();
    alice.decrypt(&bob.encrypt(b"r").unwrap()).unwrap();
    bob.decrypt(&alice.encrypt(b"new").unwrap()).unwrap();
    assert_eq!(
        bob.decrypt(&old).unwrap_err(),
        SessionError::DuplicateMessage
    );
}

#[test]
fn pickles_round_trip_and_refuse_wrong_keys() {
    let Pair { mut alice, mut bob } = establish();
    let key = PickleKey::new([7; 32]);
    let skipped = alice.encrypt(b"late").unwrap();
    bob.decrypt(&alice.encrypt(b"now").unwrap()).unwrap();
    let bob_id = bob.pickle_id();
    let sealed = bob.pickle(&key).unwrap();
    assert_eq!(
        Session::from_pickle(sealed.as_bytes(), &PickleKey::new([8; 32]), &bob_id, 0).unwrap_err(),
        PickleError::PickleDecryption
    );
    let mut bob = Session::from_pickle(sealed.as_bytes(), &key, &bob_id, 1).unwrap();
    assert_eq!(&bob.decrypt(&skipped).unwrap()[..], b"late");
    let alice_id = alice.pickle_id();
    let a = alice.pickle(&key).unwrap();
    let mut alice = Session::from_pickle(a.as_bytes(), &key, &alice_id, a.counter()).unwrap();
    assert_eq!(
        &alice.decrypt(&bob.encrypt(b"r").unwrap()).unwrap()[..],
        b"r"
    );
    assert_eq!(
        Account::from_pickle(sealed.as_bytes(), &key, &bob_id, 0).unwrap_err(),
        PickleError::PickleKind {
            expected: 1,
            got: 2
        }
    );
}

#[test]
fn account_pickle_keeps_prekeys() {
    let mut bob = bob_account();
    let key = PickleKey::new([1; 32]);
    let bundle = bob.prekey_bundle(true).unwrap();
    let id = bob.pickle_id();
    let sealed = bob.pickle(&key).unwrap();
    let mut restored = Account::from_pickle(sealed.as_bytes(), &key, &id, 1).unwrap();
    assert_eq!(restored.identity(), bob.identity());
    assert_eq!(restored.one_time_prekeys(), bob.one_time_prekeys());
    let mut alice = Account::new()
        .unwrap()
        .create_outbound_session(&bundle)
        .unwrap();
    let SessionMessage::Prekey(p) = alice.encrypt(b"hi").unwrap() else {
        panic!()
    };
    assert_eq!(&restored.create_inbound_session(&p).unwrap().1[..], b"hi");
    bob = restored;
    assert_eq!(bob.one_time_prekeys().len(), 4);
}

#[test]
fn plaintext_size_limit() {
    let Pair { mut alice, .. } = establish();
    let big = vec![0u8; MAX_PLAINTEXT_LEN + 1];
    assert!(matches!(
        alice.encrypt(&big).unwrap_err(),
        SessionError::TooLarge { .. }
    ));
    assert!(alice.encrypt(&big[..MAX_PLAINTEXT_LEN]).is_ok());
}

#[test]
fn responder_cannot_encrypt_before_setup_and_mismatched_prekey_is_refused() {
    let Pair { alice: _, mut bob } = establish();
    let mut bob_account2 = bob_account();
    let mut other = Account::new()
        .unwrap()
        .create_outbound_session(&bob_account2.prekey_bundle(true).unwrap())
        .unwrap();
    let m = other.encrypt(b"x").unwrap();
    assert_eq!(bob.decrypt(&m).unwrap_err(), SessionError::SessionMismatch);
    let SessionMessage::Prekey(p) = m else {
        panic!()
    };
    bob_account2.create_inbound_session(&p).unwrap();
}

#[test]
fn closing_a_chain_obeys_the_skip_limit() {
    for (undelivered, ok) in [(MAX_SKIP_PER_CHAIN, true), (MAX_SKIP_PER_CHAIN + 1, false)] {
        let Pair { mut alice, mut bob } = establish();
        alice.decrypt(&bob.encrypt(b"ack").unwrap()).unwrap();
        bob.decrypt(&alice.encrypt(b"seen").unwrap()).unwrap();
        for _ in 0..undelivered {
            alice.encrypt(b"lost").unwrap();
        }
        alice.decrypt(&bob.encrypt(b"turn").unwrap()).unwrap();
        let next = alice.encrypt(b"new chain").unwrap();
        match bob.decrypt(&next) {
            Ok(pt) => {
                assert!(ok);
                assert_eq!(&pt[..], b"new chain");
                assert_eq!(bob.skipped_message_keys(), MAX_SKIP_PER_CHAIN as usize);
            }
            Err(e) => {
                assert!(!ok);
                assert!(matches!(e, SessionError::TooFarAhead { .. }), "{e:?}");
                assert_eq!(bob.skipped_message_keys(), 0);
            }
        }
    }
}
