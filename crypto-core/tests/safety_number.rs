//! Integration tests of safety numbers: symmetry, sensitivity to every key of the identity,
//! QR verification, vector.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use crypto_core::PublicIdentity;
use crypto_core::primitives::{Ed25519KeyPair, X25519Secret};
use crypto_core::safety_number::{DIGITS_LEN, KEY_BYTES_LEN, QR_PAYLOAD_LEN, SafetyNumber};
use crypto_core::{DecodeError, SafetyNumberError};

// RFC 8032 section 7.1, TEST 1 and TEST 2 secret and public keys.
const ALICE_ED_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const ALICE_ED_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const BOB_ED_SEED: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const BOB_ED_KEY: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
// RFC 7748 section 6.1, Alice's and Bob's X25519 private and public keys.
const ALICE_X_SECRET: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const ALICE_X_KEY: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const BOB_X_SECRET: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const BOB_X_KEY: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const ALICE_ID: &[u8] = b"0b6c7a52-5d3f-4f3e-9c1a-2f4e8d9b7a10";
const BOB_ID: &[u8] = b"7f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";

// Repeated on purpose (docs/protocol.md §5): the test builds identities from their parts.
const IDENTITY_SIGNATURE_CONTEXT: &[u8] = b"SecureChat v2 identity key";

fn bytes32(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

/// A valid identity of the Ed25519 seed and the X25519 secret, signed as §5 specifies.
fn identity(ed_seed: &[u8; 32], x_secret: &[u8; 32]) -> PublicIdentity {
    let signing = Ed25519KeyPair::from_seed(ed_seed);
    let agreement = X25519Secret::from_bytes(x_secret).public_key();
    let mut signed = IDENTITY_SIGNATURE_CONTEXT.to_vec();
    signed.extend_from_slice(agreement.as_bytes());
    PublicIdentity::new(signing.public_key(), agreement, signing.sign(&signed)).unwrap()
}

fn identities() -> (PublicIdentity, PublicIdentity) {
    let alice = identity(&bytes32(ALICE_ED_SEED), &bytes32(ALICE_X_SECRET));
    let bob = identity(&bytes32(BOB_ED_SEED), &bytes32(BOB_X_SECRET));
    assert_eq!(hex::encode(alice.signing_key().as_bytes()), ALICE_ED_KEY);
    assert_eq!(hex::encode(alice.agreement_key().as_bytes()), ALICE_X_KEY);
    assert_eq!(hex::encode(bob.signing_key().as_bytes()), BOB_ED_KEY);
    assert_eq!(hex::encode(bob.agreement_key().as_bytes()), BOB_X_KEY);
    (alice, bob)
}

fn both_sides() -> (SafetyNumber, SafetyNumber) {
    let (alice, bob) = identities();
    (
        SafetyNumber::new(&alice, ALICE_ID, &bob, BOB_ID),
        SafetyNumber::new(&bob, BOB_ID, &alice, ALICE_ID),
    )
}

#[test]
fn fixed_vector() {
    // The vector of docs/protocol.md section 15.1, computed by a separate script from the
    // document's description.
    let (at_alice, at_bob) = both_sides();
    let expected = "520670535478007912275805503795829769897288891840238782748691";
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
        "52067 05354 78007 91227 58055 03795 82976 98972 88891 84023 87827 48691"
    );
    assert_eq!(
        hex::encode(at_alice.qr_payload()),
        "01\
         b255009fe0e1ba078e5c03057d22db1eafa8a537e5d0667ad314dc7ee1734e52\
         57d5331f2318e215f6ca68ed150ad7771911965bac0d76b4077cbb5a53d3d598"
    );
    assert_eq!(
        hex::encode(at_bob.qr_payload()),
        "01\
         57d5331f2318e215f6ca68ed150ad7771911965bac0d76b4077cbb5a53d3d598\
         b255009fe0e1ba078e5c03057d22db1eafa8a537e5d0667ad314dc7ee1734e52"
    );
}

#[test]
fn raw_key_bytes_give_the_same_number() {
    let (alice, bob) = identities();
    let (at_alice, _) = both_sides();
    let raw = SafetyNumber::from_key_bytes(&alice.key_bytes(), ALICE_ID, &bob.key_bytes(), BOB_ID)
        .unwrap();
    assert_eq!(raw, at_alice);
}

#[test]
fn raw_keys_of_the_wrong_length_are_typed_errors() {
    let (alice, bob) = identities();
    let encoded = alice.encode(); // the 129-byte wire form is not the 64 key bytes
    let ed_only = alice.signing_key().as_bytes().to_vec(); // the version-0 input
    for bad in [&[][..], &ed_only, &alice.key_bytes()[..63], &encoded] {
        let expected = Err(SafetyNumberError::InvalidKeyLength {
            expected: KEY_BYTES_LEN,
            got: bad.len(),
        });
        assert_eq!(
            SafetyNumber::from_key_bytes(bad, ALICE_ID, &bob.key_bytes(), BOB_ID),
            expected
        );
        assert_eq!(
            SafetyNumber::from_key_bytes(&alice.key_bytes(), ALICE_ID, bad, BOB_ID),
            expected
        );
    }
    let mut longer = alice.key_bytes().to_vec();
    longer.push(0);
    assert_eq!(
        SafetyNumber::from_key_bytes(&longer, ALICE_ID, &bob.key_bytes(), BOB_ID),
        Err(SafetyNumberError::InvalidKeyLength {
            expected: KEY_BYTES_LEN,
            got: KEY_BYTES_LEN + 1
        })
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

/// Issue #10, finding 2: the number covered only the Ed25519 key, so a relay that replaced a
/// contact's X25519 identity key (with a binding signature it obtained) went unnoticed.
#[test]
fn a_substituted_agreement_key_changes_the_number() {
    let (alice, bob) = identities();
    let bob_ed_seed = bytes32(BOB_ED_SEED);
    let mallory_x = [0x4du8; 32];
    // Same Ed25519 key as Bob, Mallory's X25519 key: a valid identity, since the binding is
    // signed by Bob's key (in the attack, through the old `Account::sign`).
    let fake_bob = identity(&bob_ed_seed, &mallory_x);
    assert_eq!(fake_bob.signing_key(), bob.signing_key());
    assert_ne!(fake_bob.agreement_key(), bob.agreement_key());

    let at_alice_real = SafetyNumber::new(&alice, ALICE_ID, &bob, BOB_ID);
    let at_alice_fake = SafetyNumber::new(&alice, ALICE_ID, &fake_bob, BOB_ID);
    let at_bob = SafetyNumber::new(&bob, BOB_ID, &alice, ALICE_ID);
    assert_ne!(at_alice_fake.digits(), at_alice_real.digits());
    assert_ne!(at_alice_fake.digits(), at_bob.digits());
    // Scanning fails in both directions.
    assert_eq!(at_bob.compare_qr(&at_alice_fake.qr_payload()), Ok(false));
    assert_eq!(at_alice_fake.compare_qr(&at_bob.qr_payload()), Ok(false));
    // And the real pair still verifies.
    assert_eq!(at_bob.compare_qr(&at_alice_real.qr_payload()), Ok(true));
    assert_eq!(at_alice_real.compare_qr(&at_bob.qr_payload()), Ok(true));
}

#[test]
fn any_change_of_key_or_identifier_changes_the_number() {
    let (alice, bob) = identities();
    let (alice, bob) = (alice.key_bytes(), bob.key_bytes());
    let number = |a: &[u8], a_id: &[u8], b: &[u8], b_id: &[u8]| {
        SafetyNumber::from_key_bytes(a, a_id, b, b_id).unwrap()
    };
    let reference = number(&alice, ALICE_ID, &bob, BOB_ID);
    // Sampled byte positions of both keys (every position would take long in debug builds):
    // Ed25519 key 0..32, X25519 key 32..64.
    for index in [0, 31, 32, 33, 63] {
        for bit in [0, 7] {
            let mut changed = alice;
            changed[index] ^= 1 << bit;
            let other = number(&changed, ALICE_ID, &bob, BOB_ID);
            assert_ne!(other.digits(), reference.digits(), "alice key byte {index}");
            let mut changed = bob;
            changed[index] ^= 1 << bit;
            let other = number(&alice, ALICE_ID, &changed, BOB_ID);
            assert_ne!(other.digits(), reference.digits(), "bob key byte {index}");
        }
    }
    for index in [0, ALICE_ID.len() - 1] {
        let mut id = ALICE_ID.to_vec();
        id[index] ^= 1;
        let other = number(&alice, &id, &bob, BOB_ID);
        assert_ne!(other.digits(), reference.digits());
        let other = number(&alice, ALICE_ID, &bob, &id);
        assert_ne!(other.digits(), reference.digits());
    }
    // A longer identifier, and swapping who holds which identifier.
    let other = number(&alice, &[ALICE_ID, b"x"].concat(), &bob, BOB_ID);
    assert_ne!(other.digits(), reference.digits());
    let other = number(&alice, BOB_ID, &bob, ALICE_ID);
    assert_ne!(other.digits(), reference.digits());
}

#[test]
fn qr_verifies_only_between_the_two_parties() {
    let (alice, bob) = identities();
    let (at_alice, at_bob) = both_sides();
    assert_eq!(at_bob.compare_qr(&at_alice.qr_payload()), Ok(true));
    assert_eq!(at_alice.compare_qr(&at_bob.qr_payload()), Ok(true));
    // Your own code is not the other side's.
    assert_eq!(at_alice.compare_qr(&at_alice.qr_payload()), Ok(false));

    // Mallory in the middle: Alice talks to Mallory's identity believing it is Bob's.
    let mallory = identity(&[0x4d; 32], &[0x4e; 32]);
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

    // A version-0 payload (Ed25519 key only) is refused, not compared: its fingerprints
    // cannot match, and a mismatch would look like an attack.
    let mut old_version = payload.clone();
    old_version[0] = 0;
    assert_eq!(
        at_bob.compare_qr(&old_version),
        Err(SafetyNumberError::Decode(DecodeError::UnsupportedVersion {
            expected: 1,
            got: 0
        }))
    );
    assert_eq!(
        at_bob.compare_qr(&[7]),
        Err(SafetyNumberError::Decode(DecodeError::UnsupportedVersion {
            expected: 1,
            got: 7
        }))
    );
    assert_eq!(
        at_bob.compare_qr(&[]),
        Err(SafetyNumberError::Decode(DecodeError::Truncated {
            needed: 1,
            remaining: 0
        }))
    );
    for len in 1..payload.len() {
        assert!(
            matches!(
                at_bob.compare_qr(&payload[..len]),
                Err(SafetyNumberError::Decode(DecodeError::Truncated { .. }))
            ),
            "length {len}"
        );
    }
    let mut longer = payload.clone();
    longer.push(0);
    assert_eq!(
        at_bob.compare_qr(&longer),
        Err(SafetyNumberError::Decode(DecodeError::TrailingBytes(1)))
    );
}

#[test]
fn empty_and_odd_identifiers_do_not_panic() {
    let (alice, _) = identities();
    let number = SafetyNumber::new(&alice, &[], &alice, &[]);
    assert_eq!(number.digits().len(), DIGITS_LEN);
    assert_eq!(
        number.compare_qr(&number.qr_payload()),
        Ok(true),
        "same identity twice"
    );
    let long = vec![0xffu8; 1000];
    assert_eq!(
        SafetyNumber::new(&alice, &long, &alice, b"").digits().len(),
        DIGITS_LEN
    );
}
