//! Issue #10, finding 1: the identity key signs only purpose-specific, prefix-free contexts.
//!
//! Before the fix, `Account::sign(bytes)` signed anything with the identity key. A hostile
//! relay asked for a "registration challenge" whose bytes were
//! `"SecureChat v2 identity key" || X_evil` and received a valid identity binding of its own
//! X25519 key to the victim's Ed25519 key. The only identity-key signing left to callers is
//! the relay challenge answer, whose own context starts every signed input.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use crypto_core::primitives::X25519Secret;
use crypto_core::relay_challenge::RELAY_CHALLENGE_LEN;
use crypto_core::{
    Account, PublicIdentity, SignedPrekey, signature_contexts, verify_relay_challenge,
};
use crypto_core::{DecodeError, RelayChallengeError, SignatureError};

const ORIGIN: &str = "https://relay.example";
const IDENTITY_SIGNATURE_CONTEXT: &[u8] = b"SecureChat v2 identity key";
const RELAY_CHALLENGE_CONTEXT: &[u8] = b"SecureChat v2 relay challenge";

fn account() -> Account {
    Account::new().unwrap()
}

#[test]
fn a_challenge_answer_is_never_an_identity_binding() {
    let victim = account();
    let evil = X25519Secret::from_bytes(&[0x42; 32]).public_key();
    let signing_key = *victim.identity().signing_key();
    // The relay picks the challenge: the attacker's key itself, or the binding's own input
    // cut to 32 bytes; and any origin it likes.
    let mut binding_input = IDENTITY_SIGNATURE_CONTEXT.to_vec();
    binding_input.extend_from_slice(evil.as_bytes());
    let binding_head: [u8; RELAY_CHALLENGE_LEN] = binding_input[..32].try_into().unwrap();
    let binding_tail: [u8; RELAY_CHALLENGE_LEN] = binding_input[binding_input.len() - 32..]
        .try_into()
        .unwrap();
    for origin in [ORIGIN, "http://localhost:8080", "https://[::1]"] {
        for challenge in [*evil.as_bytes(), binding_head, binding_tail] {
            let signature = victim.sign_relay_challenge(origin, &challenge).unwrap();
            // A valid answer to the relay...
            verify_relay_challenge(victim.identity(), origin, &challenge, &signature).unwrap();
            // ...but no binding of X_evil to the victim's identity, built or decoded...
            assert_eq!(
                PublicIdentity::new(signing_key, evil, signature),
                Err(SignatureError::BadSignature)
            );
            let mut encoded = vec![crypto_core::identity::IDENTITY_VERSION];
            encoded.extend_from_slice(signing_key.as_bytes());
            encoded.extend_from_slice(evil.as_bytes());
            encoded.extend_from_slice(&signature);
            assert_eq!(
                PublicIdentity::decode(&encoded),
                Err(DecodeError::BadSignature)
            );
            // ...and no signed prekey either.
            let spk = SignedPrekey::from_parts(1, evil, 0, signature);
            assert_eq!(
                spk.verify(victim.identity()),
                Err(SignatureError::BadSignature)
            );
        }
    }
    // The origin cannot carry another context or arbitrary bytes: it must be an origin.
    for origin in [
        "SecureChat v2 identity key",
        "",
        "https://relay.example/SecureChat v2 identity key",
    ] {
        assert_eq!(
            victim.sign_relay_challenge(origin, &[0; 32]),
            Err(RelayChallengeError::InvalidRelayOrigin)
        );
    }
    // The other way round: the identity binding is no answer to a challenge.
    let own_binding = *victim.identity().signature();
    let x = *victim.identity().agreement_key().as_bytes();
    assert_eq!(
        verify_relay_challenge(victim.identity(), ORIGIN, &x, &own_binding),
        Err(RelayChallengeError::BadSignature)
    );
}

#[test]
fn a_challenge_answer_is_bound_to_identity_origin_and_challenge() {
    let device = account();
    let other = account();
    let challenge = [0x5au8; RELAY_CHALLENGE_LEN];
    let signature = device.sign_relay_challenge(ORIGIN, &challenge).unwrap();
    assert_eq!(
        verify_relay_challenge(device.identity(), ORIGIN, &challenge, &signature),
        Ok(())
    );

    // It is the documented construction (docs/protocol.md §5.1): Ed25519 over
    // context || u32 length || origin || challenge.
    let mut signed = RELAY_CHALLENGE_CONTEXT.to_vec();
    signed.extend_from_slice(&u32::try_from(ORIGIN.len()).unwrap().to_be_bytes());
    signed.extend_from_slice(ORIGIN.as_bytes());
    signed.extend_from_slice(&challenge);
    device
        .identity()
        .signing_key()
        .verify(&signed, &signature)
        .unwrap();

    let bad = Err(RelayChallengeError::BadSignature);
    assert_eq!(
        verify_relay_challenge(other.identity(), ORIGIN, &challenge, &signature),
        bad
    );
    assert_eq!(
        verify_relay_challenge(
            device.identity(),
            "https://evil.example",
            &challenge,
            &signature
        ),
        bad
    );
    assert_eq!(
        verify_relay_challenge(
            device.identity(),
            "https://relay.example:8443",
            &challenge,
            &signature
        ),
        bad
    );
    let mut other_challenge = challenge;
    other_challenge[31] ^= 1;
    assert_eq!(
        verify_relay_challenge(device.identity(), ORIGIN, &other_challenge, &signature),
        bad
    );
    let mut tampered = signature;
    tampered[0] ^= 1;
    assert_eq!(
        verify_relay_challenge(device.identity(), ORIGIN, &challenge, &tampered),
        bad
    );
    // A non-canonical origin is an error on both sides, not a mismatch.
    for origin in ["", "https://relay.example/", "HTTPS://relay.example"] {
        assert_eq!(
            device.sign_relay_challenge(origin, &challenge),
            Err(RelayChallengeError::InvalidRelayOrigin)
        );
        assert_eq!(
            verify_relay_challenge(device.identity(), origin, &challenge, &signature),
            Err(RelayChallengeError::InvalidRelayOrigin)
        );
    }
    // Answers survive a pickle round trip of the account (same identity key).
    let key = crypto_core::PickleKey::new([9; 32]);
    let mut device = device;
    let sealed = device.pickle(&key).unwrap();
    let restored = Account::from_pickle(
        sealed.as_bytes(),
        &key,
        &sealed.pickle_id(),
        sealed.counter(),
    )
    .unwrap();
    assert_eq!(
        restored.sign_relay_challenge(ORIGIN, &challenge).unwrap(),
        signature
    );
}

#[test]
fn signature_contexts_are_prefix_free_and_documented() {
    let contexts = signature_contexts();
    let names: Vec<&str> = contexts
        .iter()
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "SecureChat v2 identity key",
            "SecureChat v2 signed prekey",
            "SecureChat v2 group message",
            "SecureChat v2 sender key distribution",
            "SecureChat v2 relay challenge",
        ]
    );
    for (i, a) in contexts.iter().enumerate() {
        for (j, b) in contexts.iter().enumerate() {
            assert!(
                i == j || !b.starts_with(a),
                "{:?} is a prefix of {:?}",
                names[i],
                names[j]
            );
        }
    }
    // docs/protocol.md §4 lists exactly these as signature contexts.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md"))
        .unwrap();
    let documented: Vec<&str> = doc
        .lines()
        .filter(|l| l.contains("| Ed25519 signature context |"))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    assert_eq!(documented, names);
}
