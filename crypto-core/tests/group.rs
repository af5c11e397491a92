//! Group sender keys: fan-out, out-of-order, replay, forgery, rotation on removal, pickles.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crypto_core::group::{GroupMessage, GroupSession, SenderKeyDistribution};
use crypto_core::{Error, PickleKey};

fn room(names: &[&str]) -> Vec<GroupSession> {
    let mut sessions: Vec<GroupSession> =
        names.iter().map(|_| GroupSession::new().unwrap()).collect();
    let dists: Vec<SenderKeyDistribution> = sessions
        .iter()
        .map(|s| SenderKeyDistribution::decode(&s.distribution().encode()).unwrap())
        .collect();
    for (i, s) in sessions.iter_mut().enumerate() {
        for (j, d) in dists.iter().enumerate() {
            if i != j {
                s.add_member(names[j], d).unwrap();
            }
        }
    }
    sessions
}

#[test]
fn fan_out_out_of_order_and_replay() {
    let names = ["alice", "bob", "carol"];
    let mut r = room(&names);
    let msgs: Vec<GroupMessage> = (0..5)
        .map(|i| {
            GroupMessage::decode(&r[0].encrypt(format!("m{i}").as_bytes()).unwrap().encode())
                .unwrap()
        })
        .collect();
    for member in r.iter_mut().skip(1) {
        for i in [3usize, 0, 4, 2, 1] {
            assert_eq!(
                &member.decrypt("alice", &msgs[i]).unwrap()[..],
                format!("m{i}").as_bytes()
            );
            assert_eq!(
                member.decrypt("alice", &msgs[i]).unwrap_err(),
                Error::DuplicateMessage
            );
        }
    }
    // Wrong sender name: the chain is not bob's.
    assert!(matches!(
        r[2].decrypt("bob", &msgs[0]).unwrap_err(),
        Error::UnknownSenderChain(_)
    ));
}

#[test]
fn forged_or_corrupted_messages_are_refused_without_damage() {
    let names = ["alice", "bob"];
    let mut r = room(&names);
    let good = r[0].encrypt(b"authentic").unwrap();
    let bytes = good.encode();
    for bit in 0..bytes.len() * 8 {
        let mut t = bytes.clone();
        t[bit / 8] ^= 1 << (bit % 8);
        if let Ok(m) = GroupMessage::decode(&t) {
            assert!(r[1].decrypt("alice", &m).is_err(), "bit {bit} accepted");
        }
    }
    assert_eq!(&r[1].decrypt("alice", &good).unwrap()[..], b"authentic");
    // A member cannot forge another member's message: bob knows alice's chain key but not her
    // signing key.
    let mut impostor = crypto_core::group::OutboundGroupSession::new().unwrap();
    let forged = impostor.encrypt(b"from mallory").unwrap();
    assert!(r[1].decrypt("alice", &forged).is_err());
}

#[test]
fn removing_a_member_rotates_and_locks_it_out() {
    let names = ["alice", "bob", "carol"];
    let mut r = room(&names);
    let before = r[0].encrypt(b"before").unwrap();
    assert_eq!(&r[2].decrypt("alice", &before).unwrap()[..], b"before");
    // Carol is removed: alice and bob drop her and rotate, then exchange new distributions.
    let mut carol = r.pop().unwrap();
    let da = r[0].remove_member("carol").unwrap();
    let db = r[1].remove_member("carol").unwrap();
    r[0].add_member("bob", &db).unwrap();
    r[1].add_member("alice", &da).unwrap();
    let after = r[0].encrypt(b"after").unwrap();
    assert_eq!(&r[1].decrypt("alice", &after).unwrap()[..], b"after");
    assert!(matches!(
        carol.decrypt("alice", &after).unwrap_err(),
        Error::UnknownSenderChain(_)
    ));
    assert!(r[0].members().all(|m| m != "carol"));
    // A message carol sends now is refused by both.
    let from_carol = carol.encrypt(b"still here?").unwrap();
    assert!(r[0].decrypt("carol", &from_carol).is_err());
}

#[test]
fn late_joiner_cannot_read_earlier_messages() {
    let mut alice = GroupSession::new().unwrap();
    let early = alice.encrypt(b"early").unwrap();
    let mut dave = GroupSession::new().unwrap();
    dave.add_member("alice", &alice.distribution()).unwrap();
    assert_eq!(
        dave.decrypt("alice", &early).unwrap_err(),
        Error::MessageKeyEvicted
    );
    let now = alice.encrypt(b"now").unwrap();
    assert_eq!(&dave.decrypt("alice", &now).unwrap()[..], b"now");
}

#[test]
fn resent_distribution_does_not_rewind() {
    let mut alice = GroupSession::new().unwrap();
    let mut bob = GroupSession::new().unwrap();
    let d = alice.distribution();
    bob.add_member("alice", &d).unwrap();
    let m = alice.encrypt(b"x").unwrap();
    bob.decrypt("alice", &m).unwrap();
    bob.add_member("alice", &d).unwrap();
    assert_eq!(
        bob.decrypt("alice", &m).unwrap_err(),
        Error::DuplicateMessage
    );
}

#[test]
fn group_pickles() {
    let names = ["alice", "bob"];
    let mut r = room(&names);
    let key = PickleKey::new([3; 32]);
    let m1 = r[0].encrypt(b"1").unwrap();
    let m2 = r[0].encrypt(b"2").unwrap();
    r[1].decrypt("alice", &m2).unwrap();
    let sealed = r[1].pickle(&key).unwrap();
    let mut bob =
        GroupSession::from_pickle(sealed.as_bytes(), &key, &r[1].pickle_id(), sealed.counter())
            .unwrap();
    assert_eq!(&bob.decrypt("alice", &m1).unwrap()[..], b"1");
    assert_eq!(
        bob.decrypt("alice", &m2).unwrap_err(),
        Error::DuplicateMessage
    );
    let sealed = r[0].pickle(&key).unwrap();
    let mut alice =
        GroupSession::from_pickle(sealed.as_bytes(), &key, &r[0].pickle_id(), sealed.counter())
            .unwrap();
    let m3 = alice.encrypt(b"3").unwrap();
    assert_eq!(&bob.decrypt("alice", &m3).unwrap()[..], b"3");
    let sealed = r[0].pickle(&key).unwrap();
    assert_eq!(
        GroupSession::from_pickle(
            sealed.as_bytes(),
            &PickleKey::new([4; 32]),
            &r[0].pickle_id(),
            sealed.counter()
        )
        .unwrap_err(),
        Error::PickleDecryption
    );
    // Room states of two members are not interchangeable.
    assert_eq!(
        GroupSession::from_pickle(sealed.as_bytes(), &key, &r[1].pickle_id(), 0).unwrap_err(),
        Error::PickleIdMismatch {
            expected: r[1].pickle_id(),
            got: r[0].pickle_id()
        }
    );
}

#[test]
fn distribution_decoder_checks_lengths() {
    let d = GroupSession::new().unwrap().distribution().encode();
    for len in 0..d.len() {
        assert!(SenderKeyDistribution::decode(&d[..len]).is_err());
    }
    let mut long = d.to_vec();
    long.push(0);
    assert_eq!(
        SenderKeyDistribution::decode(&long).unwrap_err(),
        Error::TrailingBytes(1)
    );
}
