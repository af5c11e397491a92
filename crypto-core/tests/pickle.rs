//! Pickles are bound to their object and ordered (issue #10, finding 3): a pickle of another
//! object, of another kind, or older than the latest one the store recorded is refused, so an
//! old session state can no longer be restored to encrypt again with used message keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use crypto_core::group::{GroupSession, InboundGroupSession, OutboundGroupSession};
use crypto_core::message::RATCHET_HEADER_LEN;
use crypto_core::{PickleError, SessionError};
/// Poly1305 tag length (docs/protocol.md §3).
const TAG_LEN: usize = 16;
use crypto_core::{Account, PickleId, PickleKey, Session, SessionMessage};

fn key() -> PickleKey {
    PickleKey::new([7; 32])
}

/// Alice's outbound session to a fresh Bob, and Bob's account to answer it.
fn outbound() -> (Session, Account) {
    let alice = Account::new().unwrap();
    let bob = common::bob_account(1);
    let session = alice
        .create_outbound_session(&bob.prekey_bundle(true).unwrap())
        .unwrap();
    (session, bob)
}

/// The AEAD ciphertext of a session message (between its header and its tag).
fn ciphertext(m: &SessionMessage) -> Vec<u8> {
    let b = m.ratchet_message().as_bytes();
    b[RATCHET_HEADER_LEN..b.len() - TAG_LEN].to_vec()
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// (a) The reviewer's attack: restore an old session pickle and encrypt again. Before the fix
/// the restored session reused the message key (ct1 xor ct2 = pt1 xor pt2); now the old pickle
/// is refused once the store passes the latest counter, and the latest one carries on.
#[test]
fn a_rolled_back_session_pickle_is_refused() {
    let (mut alice, mut bob_account) = outbound();
    let id = alice.pickle_id();
    let old = alice.pickle(&key()).unwrap();
    let n = old.counter();
    let pt1 = b"attack at dawn!!";
    let pt2 = b"retreat at noon!";
    let m1 = alice.encrypt(pt1).unwrap();
    let latest = alice.pickle(&key()).unwrap();
    assert_eq!(latest.counter(), n + 1);

    assert_eq!(
        Session::from_pickle(old.as_bytes(), &key(), &id, latest.counter()).unwrap_err(),
        PickleError::PickleRolledBack {
            counter: n,
            latest: n + 1
        }
    );

    // What the refused restore would have done (a store that passes no counter): the same
    // message key twice. The check above is what stands between a store and this.
    let mut rolled_back = Session::from_pickle(old.as_bytes(), &key(), &id, 0).unwrap();
    let reused = rolled_back.encrypt(pt2).unwrap();
    assert_eq!(
        xor(&ciphertext(&m1), &ciphertext(&reused)),
        xor(pt1, pt2),
        "a pickle older than the latest counter reuses a message key"
    );

    // The latest pickle restores and continues: a new key, and Bob reads both messages.
    let mut alice = Session::from_pickle(latest.as_bytes(), &key(), &id, latest.counter()).unwrap();
    let m2 = alice.encrypt(pt2).unwrap();
    assert_ne!(xor(&ciphertext(&m1), &ciphertext(&m2)), xor(pt1, pt2));
    let SessionMessage::Prekey(first) = &m1 else {
        panic!("the first message carries the X3DH parameters")
    };
    let (mut bob, p1) = bob_account.create_inbound_session(first).unwrap();
    assert_eq!(&p1[..], pt1);
    assert_eq!(&bob.decrypt(&m2).unwrap()[..], pt2);
    assert_eq!(
        &alice.decrypt(&bob.encrypt(b"reply").unwrap()).unwrap()[..],
        b"reply"
    );
}

/// (a) The same for an account: an old account pickle would bring back a consumed one-time
/// prekey and forget the base key of an accepted first message (a replay would be accepted).
#[test]
fn a_rolled_back_account_pickle_is_refused() {
    let (mut alice, mut bob) = outbound();
    let id = bob.pickle_id();
    let old = bob.pickle(&key()).unwrap();
    let SessionMessage::Prekey(first) = alice.encrypt(b"hi").unwrap() else {
        panic!()
    };
    bob.create_inbound_session(&first).unwrap();
    let latest = bob.pickle(&key()).unwrap();
    assert_eq!(
        Account::from_pickle(old.as_bytes(), &key(), &id, latest.counter()).unwrap_err(),
        PickleError::PickleRolledBack {
            counter: old.counter(),
            latest: latest.counter()
        }
    );
    let mut bob = Account::from_pickle(latest.as_bytes(), &key(), &id, latest.counter()).unwrap();
    assert_eq!(
        bob.create_inbound_session(&first).unwrap_err(),
        SessionError::DuplicateMessage
    );
}

/// (b) Swaps: a pickle restores only as the object that made it, and only as its own kind.
#[test]
fn swapped_pickles_are_refused() {
    let (mut alice, mut bob_account) = outbound();
    let SessionMessage::Prekey(first) = alice.encrypt(b"hi").unwrap() else {
        panic!()
    };
    let (bob, _) = bob_account.create_inbound_session(&first).unwrap();
    // Both ends share the session id, never the pickle id.
    assert_eq!(alice.session_id(), bob.session_id());
    assert_ne!(alice.pickle_id(), bob.pickle_id());

    let (alice_id, bob_id) = (alice.pickle_id(), bob.pickle_id());
    let sealed = alice.pickle(&key()).unwrap();
    assert_eq!(sealed.pickle_id(), alice_id);
    assert_eq!(
        Session::from_pickle(sealed.as_bytes(), &key(), &bob_id, 0).unwrap_err(),
        PickleError::PickleIdMismatch {
            expected: bob_id,
            got: alice_id
        }
    );
    // Another session of the same account pair, too.
    let (mut other, _) = outbound();
    let other_sealed = other.pickle(&key()).unwrap();
    assert!(matches!(
        Session::from_pickle(other_sealed.as_bytes(), &key(), &alice_id, 0),
        Err(PickleError::PickleIdMismatch { .. })
    ));
    Session::from_pickle(sealed.as_bytes(), &key(), &alice_id, 0).unwrap();

    // One kind is never restored as another, even under its own id.
    let account = bob_account.pickle(&key()).unwrap();
    let account_id = bob_account.pickle_id();
    assert_eq!(
        Session::from_pickle(account.as_bytes(), &key(), &account_id, 0).unwrap_err(),
        PickleError::PickleKind {
            expected: 2,
            got: 1
        }
    );
    assert_eq!(
        Account::from_pickle(sealed.as_bytes(), &key(), &alice_id, 0).unwrap_err(),
        PickleError::PickleKind {
            expected: 1,
            got: 2
        }
    );
    let mut room = GroupSession::new("room", "bob/1", bob_account.identity()).unwrap();
    let room_sealed = room.pickle(&key()).unwrap();
    assert_eq!(
        OutboundGroupSession::from_pickle(room_sealed.as_bytes(), &key(), &room.pickle_id(), 0)
            .unwrap_err(),
        PickleError::PickleKind {
            expected: 3,
            got: 5
        }
    );
}

/// (c) The id and counter travel in clear but are authenticated: changed to what the caller
/// expects, they fail the tag.
#[test]
fn clear_id_and_counter_are_authenticated() {
    let (mut alice, _) = outbound();
    let (mut other, _) = outbound();
    alice.pickle(&key()).unwrap();
    let old = alice.pickle(&key()).unwrap();
    let latest = alice.pickle(&key()).unwrap();
    let id = alice.pickle_id();
    let counter_at = 2 + 16;

    // The rolled-back pickle relabelled with the latest counter.
    let mut forged = old.as_bytes().to_vec();
    forged[counter_at..counter_at + 8].copy_from_slice(&latest.counter().to_be_bytes());
    assert_eq!(
        Session::from_pickle(&forged, &key(), &id, latest.counter()).unwrap_err(),
        PickleError::PickleDecryption
    );
    // Every counter above the real one.
    for counter in [old.counter() + 1, u64::MAX] {
        forged[counter_at..counter_at + 8].copy_from_slice(&counter.to_be_bytes());
        assert_eq!(
            Session::from_pickle(&forged, &key(), &id, 0).unwrap_err(),
            PickleError::PickleDecryption
        );
    }
    // Another session's pickle relabelled with this session's id.
    let foreign = other.pickle(&key()).unwrap();
    let mut forged = foreign.as_bytes().to_vec();
    forged[2..counter_at].copy_from_slice(id.as_bytes());
    assert_eq!(
        Session::from_pickle(&forged, &key(), &id, 0).unwrap_err(),
        PickleError::PickleDecryption
    );
}

/// (d) The counter survives a restore and keeps increasing, for every picklable object.
#[test]
fn the_counter_survives_restore_and_keeps_increasing() {
    let (mut session, mut account) = outbound();
    // Bob's sender chain, received over Alice's session with Bob.
    let mut room = GroupSession::new("room", "bob/1", account.identity()).unwrap();
    let mut outbound = OutboundGroupSession::new("room", "bob/1", account.identity()).unwrap();
    let mut inbound =
        InboundGroupSession::new("room", "bob/1", &session, &outbound.distribution()).unwrap();
    let ids = [
        session.pickle_id(),
        account.pickle_id(),
        room.pickle_id(),
        outbound.pickle_id(),
        inbound.pickle_id(),
    ];
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(session.pickle_counter(), 0);

    for expected in 1..=3u64 {
        let sealed = session.pickle(&key()).unwrap();
        assert_eq!((sealed.counter(), sealed.pickle_id()), (expected, ids[0]));
        session = Session::from_pickle(sealed.as_bytes(), &key(), &ids[0], expected).unwrap();
        assert_eq!(
            (session.pickle_counter(), session.pickle_id()),
            (expected, ids[0])
        );

        let sealed = account.pickle(&key()).unwrap();
        assert_eq!(sealed.counter(), expected);
        account = Account::from_pickle(sealed.as_bytes(), &key(), &ids[1], expected).unwrap();
        assert_eq!(account.pickle_counter(), expected);

        let sealed = room.pickle(&key()).unwrap();
        assert_eq!(sealed.counter(), expected);
        room = GroupSession::from_pickle(sealed.as_bytes(), &key(), &ids[2], expected).unwrap();
        assert_eq!(room.pickle_counter(), expected);

        let sealed = outbound.pickle(&key()).unwrap();
        assert_eq!(sealed.counter(), expected);
        outbound = OutboundGroupSession::from_pickle(sealed.as_bytes(), &key(), &ids[3], expected)
            .unwrap();
        assert_eq!(outbound.pickle_counter(), expected);

        let sealed = inbound.pickle(&key()).unwrap();
        assert_eq!(sealed.counter(), expected);
        inbound =
            InboundGroupSession::from_pickle(sealed.as_bytes(), &key(), &ids[4], expected).unwrap();
        assert_eq!(inbound.pickle_counter(), expected);
    }
    // A restored group session still works, and its old pickles stay refused.
    let m = outbound.encrypt(b"still here").unwrap();
    assert_eq!(&inbound.decrypt(&m).unwrap()[..], b"still here");
    let sealed = inbound.pickle(&key()).unwrap();
    assert_eq!(sealed.counter(), 4);
    assert!(matches!(
        InboundGroupSession::from_pickle(sealed.as_bytes(), &key(), &ids[4], 5),
        Err(PickleError::PickleRolledBack {
            counter: 4,
            latest: 5
        })
    ));
}

#[test]
fn pickle_ids_print_as_hex_and_debug_shows_no_secret() {
    let id = PickleId::from_bytes([0xab; 16]);
    assert_eq!(id.to_string(), "ab".repeat(16));
    assert_eq!(PickleId::from(id.to_bytes()), id);
    let (mut session, _) = outbound();
    let sealed = session.pickle(&key()).unwrap();
    let debug = format!("{sealed:?}");
    assert!(debug.contains(&session.pickle_id().to_string()), "{debug}");
    assert!(debug.contains("counter: 1"), "{debug}");
}
