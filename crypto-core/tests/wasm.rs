//! crypto-core on `wasm32-unknown-unknown`, run under Node by `wasm-bindgen-test-runner`:
//!
//! ```text
//! cargo test -p crypto-core --target wasm32-unknown-unknown --test wasm
//! ```
//!
//! (`cargo xtask test` does this; `.cargo/config.toml` sets the runner.) The tests run in Node
//! by default; `WASM_BINDGEN_USE_BROWSER=1` runs the same tests in a headless browser.
//!
//! These tests check that the code paths the protocol relies on work in a JavaScript host:
//! randomness through getrandom's `wasm_js` backend (`crypto.getRandomValues`), the curve
//! arithmetic and the AEAD. The exhaustive known-answer, Wycheproof and property tests are
//! native-only (their dev-dependencies do not build for wasm) and live in the other files of
//! this folder, each marked `#![cfg(not(target_family = "wasm"))]`.
//!
//! The protocol round trips below cover X3DH + Double Ratchet (with a ratchet turn and
//! out-of-order delivery), group sender keys, pickles of account and session state, streamed
//! attachments and safety numbers.

#![cfg(all(target_family = "wasm", target_os = "unknown"))]

use crypto_core::group::{GroupMessage, GroupSession, SenderKeyDistribution};
use crypto_core::primitives::{
    Ed25519KeyPair, OsRng, X25519Secret, chacha20poly1305_open, chacha20poly1305_seal, fill_random,
};
use crypto_core::{
    Account, Error, GroupError, OpenError, PickleError, PickleKey, PrekeyBundle,
    RelayChallengeError, Session, SessionError, SessionMessage, SignatureError,
};
use wasm_bindgen_test::wasm_bindgen_test;

/// The OS (here: the JavaScript host's) CSPRNG.
fn rng() -> OsRng {
    OsRng
}

#[wasm_bindgen_test]
fn os_rng_yields_fresh_bytes() -> Result<(), Error> {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    fill_random(&mut rng(), &mut a)?;
    fill_random(&mut rng(), &mut b)?;
    assert_ne!(a, [0u8; 32]);
    assert_ne!(a, b);
    Ok(())
}

#[wasm_bindgen_test]
fn x25519_agreement_matches_on_both_sides() -> Result<(), Error> {
    let alice = X25519Secret::generate(&mut rng())?;
    let bob = X25519Secret::generate(&mut rng())?;
    assert_ne!(alice.public_key(), bob.public_key());

    let ab = alice.diffie_hellman(&bob.public_key())?;
    let ba = bob.diffie_hellman(&alice.public_key())?;
    assert_eq!(*ab, *ba);
    assert_ne!(*ab, [0u8; 32]);
    Ok(())
}

#[wasm_bindgen_test]
fn ed25519_signature_verifies_and_rejects_tampering() -> Result<(), Error> {
    let pair = Ed25519KeyPair::generate(&mut rng())?;
    let public = pair.public_key();
    let message = b"SecureChat wasm test";
    let signature = pair.sign(message);

    public.verify(message, &signature)?;
    assert_eq!(
        public.verify(b"SecureChat wasm tesT", &signature),
        Err(SignatureError::BadSignature)
    );
    let mut bad = signature;
    bad[0] ^= 1;
    assert_eq!(
        public.verify(message, &bad),
        Err(SignatureError::BadSignature)
    );
    Ok(())
}

#[wasm_bindgen_test]
fn chacha20poly1305_round_trip() -> Result<(), Error> {
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    fill_random(&mut rng(), &mut key)?;
    fill_random(&mut rng(), &mut nonce)?;
    let plaintext = b"attack at dawn".to_vec();

    let mut buf = plaintext.clone();
    let tag = chacha20poly1305_seal(&key, &nonce, b"header", &mut buf)?;
    assert_ne!(buf, plaintext);
    let ciphertext = buf.clone();

    // Wrong associated data: refused, buffer untouched.
    assert_eq!(
        chacha20poly1305_open(&key, &nonce, b"HEADER", &mut buf, &tag),
        Err(OpenError::DecryptionFailed)
    );
    assert_eq!(buf, ciphertext);

    chacha20poly1305_open(&key, &nonce, b"header", &mut buf, &tag)?;
    assert_eq!(buf, plaintext);
    Ok(())
}

/// Encodes and decodes, as if the message went through the relay.
fn wire(message: &SessionMessage) -> Result<SessionMessage, Error> {
    Ok(SessionMessage::decode(&message.encode())?)
}

/// Bob publishes a bundle; Alice's first message sets up his session.
fn establish() -> Result<(Session, Session), Error> {
    let alice_account = Account::new()?;
    let mut bob_account = Account::new()?;
    bob_account.generate_signed_prekey(1_700_000_000)?;
    bob_account.generate_one_time_prekeys(1)?;
    let bundle = PrekeyBundle::decode(&bob_account.prekey_bundle(true)?.encode())?;
    let mut alice = alice_account.create_outbound_session(&bundle)?;
    let SessionMessage::Prekey(first) = wire(&alice.encrypt(b"hello Bob")?)? else {
        unreachable!("the first message carries the X3DH parameters")
    };
    let (bob, plaintext) = bob_account.create_inbound_session(&first)?;
    assert_eq!(&plaintext[..], b"hello Bob");
    // The one-time prekey is spent: the same first message cannot open a second session.
    assert_eq!(
        bob_account.create_inbound_session(&first).err(),
        Some(SessionError::DuplicateMessage)
    );
    Ok((alice, bob))
}

#[wasm_bindgen_test]
fn x3dh_and_double_ratchet_with_a_turn_and_a_late_message() -> Result<(), Error> {
    let (mut alice, mut bob) = establish()?;
    assert_eq!(alice.session_id(), bob.session_id());

    // Bob's reply turns the DH ratchet; afterwards Alice sends plain ratchet messages.
    let reply = wire(&bob.encrypt(b"hi Alice")?)?;
    assert!(matches!(reply, SessionMessage::Ratchet(_)));
    assert_eq!(&alice.decrypt(&reply)?[..], b"hi Alice");

    // Three messages on Alice's new chain arrive as 3, 1, 2.
    let [m1, m2, m3] =
        [b"one", b"two", b"six"].map(|p| -> Result<_, Error> { wire(&alice.encrypt(p)?) });
    let (m1, m2, m3) = (m1?, m2?, m3?);
    assert!(matches!(m1, SessionMessage::Ratchet(_)));
    assert_eq!(&bob.decrypt(&m3)?[..], b"six");
    assert_eq!(bob.skipped_message_keys(), 2);
    assert_eq!(&bob.decrypt(&m1)?[..], b"one");
    assert_eq!(&bob.decrypt(&m2)?[..], b"two");
    assert_eq!(bob.skipped_message_keys(), 0);
    assert_eq!(bob.decrypt(&m1).err(), Some(SessionError::DuplicateMessage));

    // A modified message is refused and changes nothing.
    let next = wire(&bob.encrypt(b"and back")?)?;
    let mut forged = next.encode();
    if let Some(last) = forged.last_mut() {
        *last ^= 1;
    }
    assert_eq!(
        alice.decrypt(&SessionMessage::decode(&forged)?).err(),
        Some(SessionError::DecryptionFailed)
    );
    assert_eq!(&alice.decrypt(&next)?[..], b"and back");
    Ok(())
}

#[wasm_bindgen_test]
fn group_of_two_encrypts_decrypts_and_refuses_duplicates() -> Result<(), Error> {
    let mut alice_account = Account::new()?;
    alice_account.generate_signed_prekey(1_700_000_000)?;
    let mut bob_account = Account::new()?;
    bob_account.generate_signed_prekey(1_700_000_000)?;
    let mut alice = GroupSession::new("room", "alice", alice_account.identity())?;
    let mut bob = GroupSession::new("room", "bob", bob_account.identity())?;
    // Distributions travel inside pairwise sessions, as bytes.
    let alice_from_bob =
        alice_account.create_outbound_session(&bob_account.prekey_bundle(false)?)?;
    let bob_from_alice =
        bob_account.create_outbound_session(&alice_account.prekey_bundle(false)?)?;
    alice.add_member(
        "bob",
        &alice_from_bob,
        &SenderKeyDistribution::decode(&bob.distribution().encode())?,
    )?;
    bob.add_member(
        "alice",
        &bob_from_alice,
        &SenderKeyDistribution::decode(&alice.distribution().encode())?,
    )?;

    let first = GroupMessage::decode(&alice.encrypt(b"first")?.encode())?;
    let second = GroupMessage::decode(&alice.encrypt(b"second")?.encode())?;
    assert_eq!(&bob.decrypt("alice", &second)?[..], b"second");
    assert_eq!(&bob.decrypt("alice", &first)?[..], b"first");
    assert_eq!(
        bob.decrypt("alice", &first).err(),
        Some(GroupError::DuplicateMessage)
    );

    let answer = GroupMessage::decode(&bob.encrypt(b"answer")?.encode())?;
    assert_eq!(&alice.decrypt("bob", &answer)?[..], b"answer");
    // A message is bound to its sender's chain.
    assert!(matches!(
        alice.decrypt("carol", &answer).err(),
        Some(GroupError::UnknownSenderChain(_))
    ));
    Ok(())
}

#[wasm_bindgen_test]
fn account_and_session_pickles_round_trip() -> Result<(), Error> {
    let key = PickleKey::new([7; 32]);

    let mut bob_account = Account::new()?;
    bob_account.generate_signed_prekey(1_700_000_000)?;
    bob_account.generate_one_time_prekeys(2)?;
    let bundle = bob_account.prekey_bundle(true)?;
    let id = bob_account.pickle_id();
    let sealed = bob_account.pickle(&key)?;
    let mut bob_account = Account::from_pickle(sealed.as_bytes(), &key, &id, sealed.counter())?;
    assert_eq!(bob_account.prekey_bundle(true)?, bundle);
    let newer = bob_account.pickle(&key)?;
    assert_eq!(
        Account::from_pickle(newer.as_bytes(), &PickleKey::new([8; 32]), &id, 0).err(),
        Some(PickleError::PickleDecryption)
    );
    assert_eq!(
        Account::from_pickle(sealed.as_bytes(), &key, &id, newer.counter()).err(),
        Some(PickleError::PickleRolledBack {
            counter: sealed.counter(),
            latest: newer.counter()
        })
    );

    // The restored account answers a session started from the bundle published before.
    let alice_account = Account::new()?;
    let mut alice = alice_account.create_outbound_session(&bundle)?;
    let SessionMessage::Prekey(first) = wire(&alice.encrypt(b"hi")?)? else {
        unreachable!("the first message carries the X3DH parameters")
    };
    let (mut bob, _) = bob_account.create_inbound_session(&first)?;

    // Both sessions go through storage while a message is in flight.
    let in_flight = wire(&alice.encrypt(b"in flight")?)?;
    let (alice_id, bob_id) = (alice.pickle_id(), bob.pickle_id());
    let (a, b) = (alice.pickle(&key)?, bob.pickle(&key)?);
    let mut alice = Session::from_pickle(a.as_bytes(), &key, &alice_id, a.counter())?;
    let mut bob = Session::from_pickle(b.as_bytes(), &key, &bob_id, b.counter())?;
    assert_eq!(
        Session::from_pickle(a.as_bytes(), &key, &bob_id, a.counter()).err(),
        Some(PickleError::PickleIdMismatch {
            expected: bob_id,
            got: alice_id
        })
    );
    assert_eq!(alice.session_id(), bob.session_id());
    assert_eq!(&bob.decrypt(&in_flight)?[..], b"in flight");
    let reply = wire(&bob.encrypt(b"reply")?)?;
    assert_eq!(&alice.decrypt(&reply)?[..], b"reply");
    assert_eq!(
        bob.decrypt(&in_flight).err(),
        Some(SessionError::DuplicateMessage)
    );
    Ok(())
}

#[wasm_bindgen_test]
fn attachment_streams_and_detects_tampering() -> Result<(), Error> {
    use crypto_core::attachment::{
        AttachmentDecryptor, CHUNK_SIZE, decrypt_attachment, encrypt_attachment,
    };
    let plaintext: Vec<u8> = (0..CHUNK_SIZE * 2 + 17).map(|i| (i % 251) as u8).collect();
    let (ciphertext, info) = encrypt_attachment(&plaintext)?;
    assert_eq!(&decrypt_attachment(&ciphertext, &info)?[..], &plaintext[..]);
    // Streamed in odd pieces.
    let mut decryptor = AttachmentDecryptor::for_attachment(&info)?;
    let mut out = Vec::new();
    for piece in ciphertext.chunks(10_007) {
        decryptor.update(piece, &mut out)?;
    }
    decryptor.finish(&mut out)?;
    assert_eq!(out, plaintext);
    // Truncated by one byte: refused.
    let cut = ciphertext
        .get(..ciphertext.len() - 1)
        .ok_or(Error::InvalidField)?;
    assert!(decrypt_attachment(cut, &info).is_err());
    Ok(())
}

#[wasm_bindgen_test]
fn safety_numbers_agree() -> Result<(), Error> {
    use crypto_core::safety_number::SafetyNumber;
    let alice = Account::new()?;
    let bob = Account::new()?;
    let at_alice = SafetyNumber::new(alice.identity(), b"alice", bob.identity(), b"bob");
    let at_bob = SafetyNumber::new(bob.identity(), b"bob", alice.identity(), b"alice");
    assert_eq!(at_alice.digits(), at_bob.digits());
    assert!(at_bob.compare_qr(&at_alice.qr_payload())?);
    Ok(())
}

#[wasm_bindgen_test]
fn relay_challenge_answers_verify() -> Result<(), Error> {
    let device = Account::new()?;
    let challenge = [7u8; 32];
    let answer = device.sign_relay_challenge("https://relay.example", &challenge)?;
    crypto_core::verify_relay_challenge(
        device.identity(),
        "https://relay.example",
        &challenge,
        &answer,
    )?;
    assert_eq!(
        device.sign_relay_challenge("https://relay.example/", &challenge),
        Err(RelayChallengeError::InvalidRelayOrigin)
    );
    Ok(())
}
