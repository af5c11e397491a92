//! Integration tests of safety numbers: symmetry, sensitivity, QR verification, vector.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use crypto_core::Error;
use crypto_core::safety_number::{DIGITS_LEN, QR_PAYLOAD_LEN, SafetyNumber};

// RFC 8032 section 7.1, TEST 1 and TEST 2 public keys.
const ALICE_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const BOB_KEY: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const ALICE_ID: &[u8] = b"0b6c7a52-5d3f-4f3e-9c1a-2f4e8d9b7a10";
const BOB_ID: &[u8] = b"7f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";

fn keys() -> (Vec<u8>, Vec<u8>) {
    (
        hex::decode(ALICE_KEY).unwrap(),
        hex::decode(BOB_KEY).unwrap(),
    )
}

fn both_sides() -> (SafetyNumber, SafetyNumber) {
    let (alice, bob) = keys();
    (
        SafetyNumber::new(&alice, ALICE_ID, &bob, BOB_ID),
        SafetyNumber::new(&bob, BOB_ID, &alice, ALICE_ID),
    )
}

#[test]
fn fixed_vector() {
    // The vector of docs/protocol.md section 15.
    let (at_alice, at_bob) = both_sides();
    let expected = "169317173656788241678012953006832276252457248292128111112872";
    assert_eq!(at_alice.digits(), expected);
    assert_eq!(at_bob.digits(), expected);
    let doc: String =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md"))
            .unwrap()
            .split_whitespace()
            .collect();
    assert!(
        doc.contains(expected),
        "docs/protocol.md shows another safety number"
    );
    for qr in [at_alice.qr_payload(), at_bob.qr_payload()] {
        assert!(
            doc.contains(&hex::encode(qr)),
            "docs/protocol.md shows another QR payload"
        );
    }
    assert_eq!(
        at_alice.display(),
        "16931 71736 56788 24167 80129 53006 83227 62524 57248 29212 81111 12872"
    );
    assert_eq!(
        hex::encode(at_alice.qr_payload()),
        "00\
         2e03ea503ba158c249bc20e606c6c0a3a07a271c25523df137fbb8bef228c24d\
         c36bb30483d2953467985acfd8ecf4dca094fe8721164d3801a9cdfe11ce6ce8"
    );
    assert_eq!(
        hex::encode(at_bob.qr_payload()),
        "00\
         c36bb30483d2953467985acfd8ecf4dca094fe8721164d3801a9cdfe11ce6ce8\
         2e03ea503ba158c249bc20e606c6c0a3a07a271c25523df137fbb8bef228c24d"
    );
}

#[test]
fn same_number_on_both_sides() {
    let (at_alice, at_bob) = both_sides();
    assert_eq!(at_alice.digits(), at_bob.digits());
    assert_eq!(at_alice.display(), at_bob.display());
    assert_eq!(at_alice.digits().len(), DIGITS_LEN);
    assert!(at_alice.digits().bytes().all(|b| b.is_ascii_digit()));
    // The QR payloads differ: each side shows its own identity first.
    assert_ne!(at_alice.qr_payload(), at_bob.qr_payload());
    assert_eq!(at_alice.qr_payload().len(), QR_PAYLOAD_LEN);
}

#[test]
fn any_change_of_key_or_identifier_changes_the_number() {
    let (alice, bob) = keys();
    let reference = SafetyNumber::new(&alice, ALICE_ID, &bob, BOB_ID);
    // Sampled byte positions of each input (every position would take long in debug builds).
    for index in [0, 1, 15, 31] {
        for bit in [0, 7] {
            let mut changed = alice.clone();
            changed[index] ^= 1 << bit;
            let other = SafetyNumber::new(&changed, ALICE_ID, &bob, BOB_ID);
            assert_ne!(other.digits(), reference.digits(), "alice key byte {index}");
            let mut changed = bob.clone();
            changed[index] ^= 1 << bit;
            let other = SafetyNumber::new(&alice, ALICE_ID, &changed, BOB_ID);
            assert_ne!(other.digits(), reference.digits(), "bob key byte {index}");
        }
    }
    for index in [0, ALICE_ID.len() - 1] {
        let mut id = ALICE_ID.to_vec();
        id[index] ^= 1;
        let other = SafetyNumber::new(&alice, &id, &bob, BOB_ID);
        assert_ne!(other.digits(), reference.digits());
        let other = SafetyNumber::new(&alice, ALICE_ID, &bob, &id);
        assert_ne!(other.digits(), reference.digits());
    }
    // A longer identifier, and swapping who holds which identifier.
    let other = SafetyNumber::new(&alice, &[ALICE_ID, b"x"].concat(), &bob, BOB_ID);
    assert_ne!(other.digits(), reference.digits());
    let other = SafetyNumber::new(&alice, BOB_ID, &bob, ALICE_ID);
    assert_ne!(other.digits(), reference.digits());
}

#[test]
fn qr_verifies_only_between_the_two_parties() {
    let (alice, bob) = keys();
    let (at_alice, at_bob) = both_sides();
    assert_eq!(at_bob.compare_qr(&at_alice.qr_payload()), Ok(true));
    assert_eq!(at_alice.compare_qr(&at_bob.qr_payload()), Ok(true));
    // Your own code is not the other side's.
    assert_eq!(at_alice.compare_qr(&at_alice.qr_payload()), Ok(false));

    // Mallory in the middle: Alice talks to Mallory's key believing it is Bob's.
    let mallory = [0x4du8; 32];
    let alice_with_mallory = SafetyNumber::new(&alice, ALICE_ID, &mallory, BOB_ID);
    let mallory_with_bob = SafetyNumber::new(&mallory, ALICE_ID, &bob, BOB_ID);
    assert_eq!(
        at_bob.compare_qr(&alice_with_mallory.qr_payload()),
        Ok(false)
    );
    assert_eq!(
        alice_with_mallory.compare_qr(&at_bob.qr_payload()),
        Ok(false)
    );
    assert_eq!(
        at_alice.compare_qr(&mallory_with_bob.qr_payload()),
        Ok(false)
    );
    assert_ne!(alice_with_mallory.digits(), at_bob.digits());

    // A single flipped bit anywhere in the fingerprints fails.
    let payload = at_alice.qr_payload();
    for byte in 1..payload.len() {
        let mut bad = payload.clone();
        bad[byte] ^= 0x10;
        assert_eq!(at_bob.compare_qr(&bad), Ok(false), "byte {byte}");
    }
}

#[test]
fn malformed_qr_payloads_are_typed_errors() {
    let (at_alice, at_bob) = both_sides();
    let payload = at_alice.qr_payload();

    let mut wrong_version = payload.clone();
    wrong_version[0] = 1;
    assert_eq!(
        at_bob.compare_qr(&wrong_version),
        Err(Error::UnsupportedVersion {
            expected: 0,
            got: 1
        })
    );
    assert_eq!(
        at_bob.compare_qr(&[7]),
        Err(Error::UnsupportedVersion {
            expected: 0,
            got: 7
        })
    );
    assert_eq!(
        at_bob.compare_qr(&[]),
        Err(Error::Truncated {
            needed: 1,
            remaining: 0
        })
    );
    for len in 1..payload.len() {
        assert!(
            matches!(
                at_bob.compare_qr(&payload[..len]),
                Err(Error::Truncated { .. })
            ),
            "length {len}"
        );
    }
    let mut longer = payload.clone();
    longer.push(0);
    assert_eq!(at_bob.compare_qr(&longer), Err(Error::TrailingBytes(1)));
}

#[test]
fn empty_and_odd_inputs_do_not_panic() {
    let number = SafetyNumber::new(&[], &[], &[], &[]);
    assert_eq!(number.digits().len(), DIGITS_LEN);
    assert_eq!(
        number.compare_qr(&number.qr_payload()),
        Ok(true),
        "same identity twice"
    );
    let long = vec![0xffu8; 1000];
    assert_eq!(
        SafetyNumber::new(&long, b"", &[1], b"").digits().len(),
        DIGITS_LEN
    );
}
