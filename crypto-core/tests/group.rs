//! Group sender keys: fan-out, out-of-order, replay, forgery, rotation on removal, pickles, and
//! the binding of distributions to their room, sender device and sender identity.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crypto_core::fuzzing::FuzzRng;
use crypto_core::group::{
    GroupMessage, GroupSession, InboundGroupSession, OutboundGroupSession, SenderKeyDistribution,
};
use crypto_core::primitives::Ed25519KeyPair;
use crypto_core::{Account, PickleKey, Session, SessionMessage};
use crypto_core::{DecodeError, GroupError, PickleError};

const ROOM: &str = "room-1";

fn account() -> Account {
    let mut a = Account::new().unwrap();
    a.generate_signed_prekey(1_700_000_000).unwrap();
    a
}

/// `me`'s pairwise session with `peer` (its remote identity is `peer`'s).
fn session(me: &Account, peer: &Account) -> Session {
    me.create_outbound_session(&peer.prekey_bundle(false).unwrap())
        .unwrap()
}

struct Member {
    name: &'static str,
    account: Account,
    room: GroupSession,
}

fn member(name: &'static str) -> Member {
    let account = account();
    let room = GroupSession::new(ROOM, name, account.identity()).unwrap();
    Member {
        name,
        account,
        room,
    }
}

/// `to` records `from`'s current distribution, as bytes, over its session with `from`.
fn share(from: &Member, to: &mut Member) {
    let d = SenderKeyDistribution::decode(&from.room.distribution().encode()).unwrap();
    let s = session(&to.account, &from.account);
    to.room.add_member(from.name, &s, &d).unwrap();
}

fn room(names: &[&'static str]) -> Vec<Member> {
    let mut members: Vec<Member> = names.iter().map(|n| member(n)).collect();
    for i in 0..members.len() {
        for j in 0..members.len() {
            if i != j {
                let (from, to) = if i < j {
                    let (a, b) = members.split_at_mut(j);
                    (&a[i], &mut b[0])
                } else {
                    let (a, b) = members.split_at_mut(i);
                    (&b[0], &mut a[j])
                };
                share(from, to);
            }
        }
    }
    members
}

#[test]
fn fan_out_out_of_order_and_replay() {
    let mut r = room(&["alice", "bob", "carol"]);
    let msgs: Vec<GroupMessage> = (0..5)
        .map(|i| {
            GroupMessage::decode(
                &r[0]
                    .room
                    .encrypt(format!("m{i}").as_bytes())
                    .unwrap()
                    .encode(),
            )
            .unwrap()
        })
        .collect();
    for member in r.iter_mut().skip(1) {
        for i in [3usize, 0, 4, 2, 1] {
            assert_eq!(
                &member.room.decrypt("alice", &msgs[i]).unwrap()[..],
                format!("m{i}").as_bytes()
            );
            assert_eq!(
                member.room.decrypt("alice", &msgs[i]).unwrap_err(),
                GroupError::DuplicateMessage
            );
        }
    }
    // Wrong sender name: the chain is not bob's.
    assert!(matches!(
        r[2].room.decrypt("bob", &msgs[0]).unwrap_err(),
        GroupError::UnknownSenderChain(_)
    ));
}

#[test]
fn forged_or_corrupted_messages_are_refused_without_damage() {
    let mut r = room(&["alice", "bob"]);
    let good = r[0].room.encrypt(b"authentic").unwrap();
    let bytes = good.encode();
    for bit in 0..bytes.len() * 8 {
        let mut t = bytes.clone();
        t[bit / 8] ^= 1 << (bit % 8);
        if let Ok(m) = GroupMessage::decode(&t) {
            assert!(
                r[1].room.decrypt("alice", &m).is_err(),
                "bit {bit} accepted"
            );
        }
    }
    assert_eq!(
        &r[1].room.decrypt("alice", &good).unwrap()[..],
        b"authentic"
    );
    // A member cannot forge another member's message: bob knows alice's chain key but not her
    // signing key.
    let mut impostor = OutboundGroupSession::new(ROOM, "alice", account().identity()).unwrap();
    let forged = impostor.encrypt(b"from mallory").unwrap();
    assert!(r[1].room.decrypt("alice", &forged).is_err());
}

#[test]
fn removing_a_member_rotates_and_locks_it_out() {
    let mut r = room(&["alice", "bob", "carol"]);
    let before = r[0].room.encrypt(b"before").unwrap();
    assert_eq!(&r[2].room.decrypt("alice", &before).unwrap()[..], b"before");
    // Carol is removed: alice and bob drop her and rotate, then exchange new distributions.
    let mut carol = r.pop().unwrap();
    r[0].room.remove_member("carol").unwrap();
    r[1].room.remove_member("carol").unwrap();
    let (a, b) = r.split_at_mut(1);
    share(&b[0], &mut a[0]);
    share(&a[0], &mut b[0]);
    let after = r[0].room.encrypt(b"after").unwrap();
    assert_eq!(&r[1].room.decrypt("alice", &after).unwrap()[..], b"after");
    assert!(matches!(
        carol.room.decrypt("alice", &after).unwrap_err(),
        GroupError::UnknownSenderChain(_)
    ));
    assert!(r[0].room.members().all(|m| m != "carol"));
    // A message carol sends now is refused by both.
    let from_carol = carol.room.encrypt(b"still here?").unwrap();
    assert!(r[0].room.decrypt("carol", &from_carol).is_err());
}

#[test]
fn late_joiner_cannot_read_earlier_messages() {
    let mut alice = member("alice");
    let early = alice.room.encrypt(b"early").unwrap();
    let mut dave = member("dave");
    share(&alice, &mut dave);
    assert_eq!(
        dave.room.decrypt("alice", &early).unwrap_err(),
        GroupError::MessageKeyEvicted
    );
    let now = alice.room.encrypt(b"now").unwrap();
    assert_eq!(&dave.room.decrypt("alice", &now).unwrap()[..], b"now");
}

#[test]
fn resent_distribution_does_not_rewind() {
    let mut alice = member("alice");
    let mut bob = member("bob");
    let d = alice.room.distribution();
    let s = session(&bob.account, &alice.account);
    bob.room.add_member("alice", &s, &d).unwrap();
    let m = alice.room.encrypt(b"x").unwrap();
    bob.room.decrypt("alice", &m).unwrap();
    bob.room.add_member("alice", &s, &d).unwrap();
    assert_eq!(
        bob.room.decrypt("alice", &m).unwrap_err(),
        GroupError::DuplicateMessage
    );
}

#[test]
fn group_pickles() {
    let mut r = room(&["alice", "bob"]);
    let key = PickleKey::new([3; 32]);
    let m1 = r[0].room.encrypt(b"1").unwrap();
    let m2 = r[0].room.encrypt(b"2").unwrap();
    r[1].room.decrypt("alice", &m2).unwrap();
    let sealed = r[1].room.pickle(&key).unwrap();
    let mut bob = GroupSession::from_pickle(
        sealed.as_bytes(),
        &key,
        &r[1].room.pickle_id(),
        sealed.counter(),
    )
    .unwrap();
    assert_eq!(bob.room_id(), ROOM);
    assert_eq!(
        bob.member_identity("alice"),
        Some(r[0].account.identity().signing_key())
    );
    assert_eq!(&bob.decrypt("alice", &m1).unwrap()[..], b"1");
    assert_eq!(
        bob.decrypt("alice", &m2).unwrap_err(),
        GroupError::DuplicateMessage
    );
    let sealed = r[0].room.pickle(&key).unwrap();
    let mut alice = GroupSession::from_pickle(
        sealed.as_bytes(),
        &key,
        &r[0].room.pickle_id(),
        sealed.counter(),
    )
    .unwrap();
    let m3 = alice.encrypt(b"3").unwrap();
    assert_eq!(&bob.decrypt("alice", &m3).unwrap()[..], b"3");
    let sealed = r[0].room.pickle(&key).unwrap();
    assert_eq!(
        GroupSession::from_pickle(
            sealed.as_bytes(),
            &PickleKey::new([4; 32]),
            &r[0].room.pickle_id(),
            sealed.counter()
        )
        .unwrap_err(),
        PickleError::PickleDecryption
    );
    // Room states of two members are not interchangeable.
    assert_eq!(
        GroupSession::from_pickle(sealed.as_bytes(), &key, &r[1].room.pickle_id(), 0).unwrap_err(),
        PickleError::PickleIdMismatch {
            expected: r[1].room.pickle_id(),
            got: r[0].room.pickle_id()
        }
    );
}

#[test]
fn distribution_decoder_checks_lengths() {
    let d = member("alice").room.distribution().encode();
    for len in 0..d.len() {
        assert!(SenderKeyDistribution::decode(&d[..len]).is_err());
    }
    let mut long = d.to_vec();
    long.push(0);
    assert_eq!(
        SenderKeyDistribution::decode(&long).unwrap_err(),
        DecodeError::TrailingBytes(1)
    );
}

// ---------------------------------------------------------------------------------------------
// Issue #10, finding 4: a member claiming another member's sender chain.

/// Builds a distribution the way the document lays it out, signed with `signing`: what a
/// malicious member can make with keys it holds.
#[allow(clippy::too_many_arguments)]
fn craft_distribution(
    room: &str,
    identity: &[u8; 32],
    device: &str,
    chain_id: u32,
    iteration: u32,
    chain_key: &[u8],
    signing_key: &[u8; 32],
    signer: &Ed25519KeyPair,
) -> Vec<u8> {
    let mut body = vec![0x02, 0x04];
    body.extend_from_slice(&(room.len() as u32).to_be_bytes());
    body.extend_from_slice(room.as_bytes());
    body.extend_from_slice(identity);
    body.extend_from_slice(&(device.len() as u32).to_be_bytes());
    body.extend_from_slice(device.as_bytes());
    body.extend_from_slice(&chain_id.to_be_bytes());
    body.extend_from_slice(&iteration.to_be_bytes());
    body.extend_from_slice(chain_key);
    body.extend_from_slice(signing_key);
    let mut signed = b"SecureChat v2 sender key distribution".to_vec();
    signed.extend_from_slice(&body);
    body.extend_from_slice(&signer.sign(&signed));
    body
}

/// The chain key inside an encoded distribution (its sender's, `device` long, in [`ROOM`]).
fn chain_key_of(encoded: &[u8], device: &str) -> Vec<u8> {
    let start = 2 + 4 + ROOM.len() + 32 + 4 + device.len() + 4 + 4;
    encoded[start..start + 32].to_vec()
}

/// Mallory, a member, received Alice's distribution and sends it to Bob over his own pairwise
/// session as his own. Before the fix Bob registered Alice's chain as Mallory's, and a relay
/// relabelling Alice's messages made Bob show them as Mallory's.
#[test]
fn mallory_cannot_claim_alices_distribution() {
    let mut alice = member("alice");
    let mallory = member("mallory");
    let mut bob = member("bob");
    share(&alice, &mut bob);
    share(&mallory, &mut bob);

    // Mallory's copy of Alice's distribution, delivered to him over the Alice–Mallory session.
    let mut alice_to_mallory = session(&alice.account, &mallory.account);
    let SessionMessage::Prekey(first) = alice_to_mallory
        .encrypt(&alice.room.distribution().encode())
        .unwrap()
    else {
        panic!("first message is a prekey message")
    };
    let mut mallory_account = mallory.account;
    let (_, stolen) = mallory_account.create_inbound_session(&first).unwrap();
    let stolen = stolen.to_vec();

    // Mallory → Bob over their pairwise session.
    let mut mallory_to_bob = session(&mallory_account, &bob.account);
    let SessionMessage::Prekey(first) = mallory_to_bob.encrypt(&stolen).unwrap() else {
        panic!("first message is a prekey message")
    };
    let (bob_from_mallory, received) = bob.account.create_inbound_session(&first).unwrap();
    let forwarded = SenderKeyDistribution::decode(&received).unwrap();
    // Filed under the device Bob knows the session belongs to: the device id does not match.
    assert_eq!(
        bob.room
            .add_member("mallory", &bob_from_mallory, &forwarded)
            .unwrap_err(),
        GroupError::DistributionDeviceMismatch
    );
    // Filed under the device id it names: the identity is not the session's peer.
    assert_eq!(
        bob.room
            .add_member("alice", &bob_from_mallory, &forwarded)
            .unwrap_err(),
        GroupError::DistributionIdentityMismatch
    );
    assert_eq!(
        InboundGroupSession::new(ROOM, "alice", &bob_from_mallory, &forwarded).unwrap_err(),
        GroupError::DistributionIdentityMismatch
    );

    // Mallory cannot relabel the distribution either: it is signed by Alice's group key.
    let mut relabelled = stolen.clone();
    let identity_at = 2 + 4 + ROOM.len();
    relabelled[identity_at..identity_at + 32]
        .copy_from_slice(mallory_account.identity().signing_key().as_bytes());
    assert_eq!(
        SenderKeyDistribution::decode(&relabelled).unwrap_err(),
        DecodeError::BadSignature
    );

    // Alice's messages relabelled as Mallory's by the relay are refused.
    let m = alice.room.encrypt(b"from alice").unwrap();
    assert!(matches!(
        bob.room.decrypt("mallory", &m).unwrap_err(),
        GroupError::UnknownSenderChain(_)
    ));
    assert_eq!(&bob.room.decrypt("alice", &m).unwrap()[..], b"from alice");
}

/// Mallory builds his own distribution around Alice's chain id and chain key (he holds both).
/// With his own signing key it is his chain and Alice's relabelled messages fail his
/// signature; with Alice's signing key he cannot sign it.
#[test]
fn alices_message_relabelled_as_mallorys_is_refused() {
    let mut alice = member("alice");
    let mallory = member("mallory");
    let mut bob = member("bob");
    share(&alice, &mut bob);
    let alice_d = alice.room.distribution();
    let chain_key = chain_key_of(&alice_d.encode(), "alice");
    let mallory_identity = *mallory.account.identity().signing_key().as_bytes();
    let bob_from_mallory = session(&bob.account, &mallory.account);

    let own = Ed25519KeyPair::from_seed(&[7; 32]);
    let with_own_key = craft_distribution(
        ROOM,
        &mallory_identity,
        "mallory",
        alice_d.chain_id(),
        alice_d.iteration(),
        &chain_key,
        own.public_key().as_bytes(),
        &own,
    );
    let d = SenderKeyDistribution::decode(&with_own_key).unwrap();
    bob.room
        .add_member("mallory", &bob_from_mallory, &d)
        .unwrap();
    let m = alice.room.encrypt(b"from alice").unwrap();
    assert_eq!(
        bob.room.decrypt("mallory", &m).unwrap_err(),
        GroupError::BadSignature
    );

    let with_alices_key = craft_distribution(
        ROOM,
        &mallory_identity,
        "mallory",
        alice_d.chain_id(),
        alice_d.iteration(),
        &chain_key,
        alice_d.signing_key().as_bytes(),
        &own,
    );
    assert_eq!(
        SenderKeyDistribution::decode(&with_alices_key).unwrap_err(),
        DecodeError::BadSignature
    );
    assert_eq!(&bob.room.decrypt("alice", &m).unwrap()[..], b"from alice");
}

#[test]
fn distribution_for_another_room_is_refused() {
    let alice = member("alice");
    let mut bob = member("bob");
    let other = OutboundGroupSession::new("room-2", "alice", alice.account.identity()).unwrap();
    let s = session(&bob.account, &alice.account);
    assert_eq!(
        bob.room
            .add_member("alice", &s, &other.distribution())
            .unwrap_err(),
        GroupError::DistributionRoomMismatch
    );
    assert_eq!(
        InboundGroupSession::new(ROOM, "alice", &s, &other.distribution()).unwrap_err(),
        GroupError::DistributionRoomMismatch
    );
    assert!(InboundGroupSession::new("room-2", "alice", &s, &other.distribution()).is_ok());
}

#[test]
fn signing_key_of_another_member_is_refused() {
    let alice = account();
    let mut bob = member("bob");
    let s = session(&bob.account, &alice);
    // The same generator twice gives the same group signing key to two device ids.
    let first = OutboundGroupSession::new_with_rng(
        ROOM,
        "alice",
        alice.identity(),
        &mut FuzzRng::new(b"k"),
    )
    .unwrap();
    let second = OutboundGroupSession::new_with_rng(
        ROOM,
        "alice2",
        alice.identity(),
        &mut FuzzRng::new(b"k"),
    )
    .unwrap();
    bob.room
        .add_member("alice", &s, &first.distribution())
        .unwrap();
    assert_eq!(
        bob.room
            .add_member("alice2", &s, &second.distribution())
            .unwrap_err(),
        GroupError::SigningKeyClaimed
    );
}

#[test]
fn member_identity_is_pinned() {
    let alice = member("alice");
    let impostor = account();
    let mut bob = member("bob");
    share(&alice, &mut bob);
    let fake = OutboundGroupSession::new(ROOM, "alice", impostor.identity()).unwrap();
    let s = session(&bob.account, &impostor);
    assert_eq!(
        bob.room
            .add_member("alice", &s, &fake.distribution())
            .unwrap_err(),
        GroupError::DistributionIdentityMismatch
    );
}

/// A rotated-out chain could be re-added, evicting the current one and rewinding the old one
/// to its distribution's iteration, so its messages were accepted a second time.
#[test]
fn retired_chains_cannot_be_added_again() {
    let mut alice = member("alice");
    let mut bob = member("bob");
    let s = session(&bob.account, &alice.account);
    let d0 = alice.room.distribution();
    bob.room.add_member("alice", &s, &d0).unwrap();
    let m0 = alice.room.encrypt(b"chain 0").unwrap();
    assert_eq!(&bob.room.decrypt("alice", &m0).unwrap()[..], b"chain 0");
    let d1 = alice.room.rotate_with_rng(&mut FuzzRng::new(b"1")).unwrap();
    bob.room.add_member("alice", &s, &d1).unwrap();
    let d2 = alice.room.rotate_with_rng(&mut FuzzRng::new(b"2")).unwrap();
    bob.room.add_member("alice", &s, &d2).unwrap();
    // Chain 0 was evicted by chain 2.
    assert_eq!(
        bob.room.add_member("alice", &s, &d0).unwrap_err(),
        GroupError::SenderChainRetired
    );
    assert!(matches!(
        bob.room.decrypt("alice", &m0).unwrap_err(),
        GroupError::UnknownSenderChain(_)
    ));
    // Removing a member retires its chains; so does a pickle round trip keep them retired.
    bob.room.remove_member("alice").unwrap();
    let key = PickleKey::new([5; 32]);
    let sealed = bob.room.pickle(&key).unwrap();
    let mut restored = GroupSession::from_pickle(
        sealed.as_bytes(),
        &key,
        &bob.room.pickle_id(),
        sealed.counter(),
    )
    .unwrap();
    for d in [&d0, &d1, &d2] {
        assert_eq!(
            restored.add_member("alice", &s, d).unwrap_err(),
            GroupError::SenderChainRetired
        );
    }
    let d3 = alice.room.rotate_with_rng(&mut FuzzRng::new(b"3")).unwrap();
    restored.add_member("alice", &s, &d3).unwrap();
}

#[test]
fn ids_are_bounded() {
    let alice = account();
    let long = "x".repeat(257);
    assert_eq!(
        GroupSession::new(&long, "alice", alice.identity()).unwrap_err(),
        GroupError::TooLarge { len: 257, max: 256 }
    );
    assert_eq!(
        OutboundGroupSession::new(ROOM, &long, alice.identity()).unwrap_err(),
        GroupError::TooLarge { len: 257, max: 256 }
    );
    let max = "y".repeat(256);
    let d = OutboundGroupSession::new(&max, &max, alice.identity())
        .unwrap()
        .distribution();
    let decoded = SenderKeyDistribution::decode(&d.encode()).unwrap();
    assert_eq!(decoded.room_id(), max);
    assert_eq!(decoded.device_id(), max);
    assert_eq!(decoded.sender_identity(), alice.identity().signing_key());
}

/// docs/protocol.md §12.2: a message whose skipped key was evicted (more than
/// `MAX_SKIPPED_KEYS` later messages arrived first) is `DuplicateMessage`, like a replay;
/// `MessageKeyEvicted` is only for messages before the distribution.
#[test]
fn an_evicted_skipped_key_is_reported_as_a_duplicate() {
    use crypto_core::ratchet::{MAX_SKIP_PER_CHAIN, MAX_SKIPPED_KEYS};
    let mut alice = member("alice");
    let mut bob = member("bob");
    share(&alice, &mut bob);
    let total = MAX_SKIPPED_KEYS + 10;
    let messages: Vec<_> = (0..total)
        .map(|_| alice.room.encrypt(b"m").unwrap())
        .collect();
    // Jump ahead in steps the skip limit allows, storing every key passed over.
    let step = MAX_SKIP_PER_CHAIN as usize;
    let mut at = step;
    while at < total {
        bob.room.decrypt("alice", &messages[at]).unwrap();
        at += step;
    }
    bob.room.decrypt("alice", &messages[total - 1]).unwrap();
    // Message 0's key was the oldest skipped key and has been evicted.
    assert_eq!(
        bob.room.decrypt("alice", &messages[0]).unwrap_err(),
        GroupError::DuplicateMessage
    );
    // A message still in the store opens.
    bob.room.decrypt("alice", &messages[total - 2]).unwrap();
}
