//! Known-answer tests from the specifications, run through crypto-core's own wrappers in
//! [`crypto_core::primitives`] (not the underlying crates), so that the code paths the protocol
//! uses are the ones checked.
//!
//! Every vector is a `const` citing the section it was copied from. Every positive check has a
//! negative twin: a flipped bit in the ciphertext, tag, associated data, signature or message
//! must make the wrapper return an error, and for the keyless functions (X25519, HKDF, HMAC,
//! SHA-256), where no error is possible, a flipped input bit must change the output.
//!
//! Only `hex` is used besides crypto-core, so these tests also run on wasm32.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crypto_core::primitives::{
    Ed25519KeyPair, Ed25519PublicKey, X25519PublicKey, X25519Secret, chacha20poly1305_open,
    chacha20poly1305_seal, hkdf_sha256, hkdf_sha256_expand, hmac_sha256, sha256,
    xchacha20poly1305_open, xchacha20poly1305_seal,
};
use crypto_core::{AgreementError, KdfError, OpenError, SignatureError, SigningKeyError};

// ---------------------------------------------------------------------------------------------
// Helpers

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("valid hex in a test vector")
}

fn h32(s: &str) -> [u8; 32] {
    h(s).try_into().expect("32-byte test vector")
}

fn h64(s: &str) -> [u8; 64] {
    h(s).try_into().expect("64-byte test vector")
}

fn h12(s: &str) -> [u8; 12] {
    h(s).try_into().expect("12-byte test vector")
}

fn h16(s: &str) -> [u8; 16] {
    h(s).try_into().expect("16-byte test vector")
}

fn h24(s: &str) -> [u8; 24] {
    h(s).try_into().expect("24-byte test vector")
}

/// `bytes` with bit `bit` of byte `index` flipped.
fn flipped(bytes: &[u8], index: usize, bit: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[index] ^= 1 << bit;
    out
}

fn flipped32(bytes: &[u8; 32], index: usize, bit: u8) -> [u8; 32] {
    let mut out = *bytes;
    out[index] ^= 1 << bit;
    out
}

fn x25519(scalar: &[u8; 32], u: &[u8; 32]) -> [u8; 32] {
    let secret = X25519Secret::from_bytes(scalar);
    *secret
        .diffie_hellman(&X25519PublicKey::from_bytes(*u))
        .expect("contributory agreement")
}

// ---------------------------------------------------------------------------------------------
// X25519 — RFC 7748

/// RFC 7748 §5.2, first scalar-multiplication test vector.
const RFC7748_5_2_1_SCALAR: &str =
    "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4";
const RFC7748_5_2_1_U: &str = "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c";
const RFC7748_5_2_1_OUT: &str = "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552";

/// RFC 7748 §5.2, second scalar-multiplication test vector (the u-coordinate has its top bit
/// set, which X25519 must mask).
const RFC7748_5_2_2_SCALAR: &str =
    "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d";
const RFC7748_5_2_2_U: &str = "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493";
const RFC7748_5_2_2_OUT: &str = "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957";

/// RFC 7748 §5.2, iterated test: k = u = 9, then `k, u = X25519(k, u), k`.
const RFC7748_5_2_ITER_1: &str = "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079";
const RFC7748_5_2_ITER_1000: &str =
    "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51";

/// RFC 7748 §6.1, Diffie-Hellman example.
const RFC7748_6_1_ALICE_PRIVATE: &str =
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const RFC7748_6_1_ALICE_PUBLIC: &str =
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const RFC7748_6_1_BOB_PRIVATE: &str =
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const RFC7748_6_1_BOB_PUBLIC: &str =
    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const RFC7748_6_1_SHARED: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

#[test]
fn rfc7748_5_2_scalar_mult() {
    for (scalar, u, out) in [
        (RFC7748_5_2_1_SCALAR, RFC7748_5_2_1_U, RFC7748_5_2_1_OUT),
        (RFC7748_5_2_2_SCALAR, RFC7748_5_2_2_U, RFC7748_5_2_2_OUT),
    ] {
        let (scalar, u, out) = (h32(scalar), h32(u), h32(out));
        assert_eq!(x25519(&scalar, &u), out);
        // Negative twins: a flipped bit of the u-coordinate (below the masked top bit) or of a
        // scalar bit that survives clamping gives a different result.
        assert_ne!(x25519(&scalar, &flipped32(&u, 0, 0)), out);
        assert_ne!(x25519(&flipped32(&scalar, 1, 0), &u), out);
    }
}

#[test]
fn rfc7748_5_2_top_bit_of_u_is_masked() {
    // §5: "implementations of X25519 MUST mask the most significant bit in the final byte".
    // Vector 2 has it set; clearing it must not change the result.
    let scalar = h32(RFC7748_5_2_2_SCALAR);
    let u = h32(RFC7748_5_2_2_U);
    assert_eq!(u[31] & 0x80, 0x80);
    assert_eq!(
        x25519(&scalar, &flipped32(&u, 31, 7)),
        h32(RFC7748_5_2_2_OUT)
    );
}

#[test]
fn rfc7748_5_2_iterated_1_and_1000() {
    // The 1,000,000-iteration value is skipped: too slow for a debug test run.
    let mut k = [0u8; 32];
    k[0] = 9;
    let mut u = k;
    for i in 1..=1000u32 {
        let result = x25519(&k, &u);
        u = k;
        k = result;
        if i == 1 {
            assert_eq!(k, h32(RFC7748_5_2_ITER_1), "after 1 iteration");
        }
    }
    assert_eq!(k, h32(RFC7748_5_2_ITER_1000), "after 1000 iterations");
    // Negative twin: an unrelated u-coordinate must not give the same value.
    assert_ne!(x25519(&h32(RFC7748_5_2_ITER_1), &[9; 32]), k);
}

#[test]
fn rfc7748_6_1_diffie_hellman() {
    let alice = X25519Secret::from_bytes(&h32(RFC7748_6_1_ALICE_PRIVATE));
    let bob = X25519Secret::from_bytes(&h32(RFC7748_6_1_BOB_PRIVATE));
    assert_eq!(
        alice.public_key().as_bytes(),
        &h32(RFC7748_6_1_ALICE_PUBLIC)
    );
    assert_eq!(bob.public_key().as_bytes(), &h32(RFC7748_6_1_BOB_PUBLIC));

    let shared = h32(RFC7748_6_1_SHARED);
    let alice_pub = X25519PublicKey::from_bytes(h32(RFC7748_6_1_ALICE_PUBLIC));
    let bob_pub = X25519PublicKey::from_bytes(h32(RFC7748_6_1_BOB_PUBLIC));
    assert_eq!(*alice.diffie_hellman(&bob_pub).unwrap(), shared);
    assert_eq!(*bob.diffie_hellman(&alice_pub).unwrap(), shared);

    // Negative twins: a tampered public key gives another secret...
    let tampered = X25519PublicKey::from_bytes(flipped32(bob_pub.as_bytes(), 5, 3));
    assert_ne!(*alice.diffie_hellman(&tampered).unwrap(), shared);
    // ...and a low-order public key (here u = 0 and u = 1, RFC 7748 §6.1 "all-zero value")
    // is refused with NonContributory instead of yielding the all-zero secret.
    let mut one = [0u8; 32];
    one[0] = 1;
    for low in [[0u8; 32], one] {
        assert_eq!(
            alice.diffie_hellman(&X25519PublicKey::from_bytes(low)),
            Err(AgreementError::NonContributory)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Ed25519 — RFC 8032 §7.1

struct Ed25519Vector {
    name: &'static str,
    secret: &'static str,
    public: &'static str,
    message: &'static str,
    signature: &'static str,
}

/// RFC 8032 §7.1, TEST 1 (empty message).
const RFC8032_7_1_TEST1: Ed25519Vector = Ed25519Vector {
    name: "TEST 1",
    secret: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    public: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    message: "",
    signature: concat!(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
};

/// RFC 8032 §7.1, TEST 2 (one-byte message).
const RFC8032_7_1_TEST2: Ed25519Vector = Ed25519Vector {
    name: "TEST 2",
    secret: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    public: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    message: "72",
    signature: concat!(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da",
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
};

/// RFC 8032 §7.1, TEST 3 (two-byte message).
const RFC8032_7_1_TEST3: Ed25519Vector = Ed25519Vector {
    name: "TEST 3",
    secret: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
    public: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
    message: "af82",
    signature: concat!(
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac",
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
};

/// RFC 8032 §7.1, TEST 1024 (1023-byte message). A transcription error anywhere in the message
/// would change the deterministic signature, so the byte-exact signature match below also
/// checks the message.
const RFC8032_7_1_TEST1024: Ed25519Vector = Ed25519Vector {
    name: "TEST 1024",
    secret: "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
    public: "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
    message: concat!(
        "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98",
        "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8",
        "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d",
        "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc",
        "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe",
        "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e",
        "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef",
        "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7",
        "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1",
        "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2",
        "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24",
        "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270",
        "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc",
        "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07",
        "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba",
        "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a",
        "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e",
        "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7",
        "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c",
        "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8",
        "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df",
        "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08",
        "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649",
        "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4",
        "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3",
        "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e",
        "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f",
        "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5",
        "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1",
        "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d",
        "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c",
        "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
    ),
    signature: concat!(
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350",
        "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
};

fn check_ed25519(v: &Ed25519Vector) {
    let name = v.name;
    let pair = Ed25519KeyPair::from_seed(&h32(v.secret));
    let public = h32(v.public);
    let message = h(v.message);
    let signature = h64(v.signature);

    assert_eq!(pair.public_key().as_bytes(), &public, "{name}: public key");
    assert_eq!(pair.sign(&message), signature, "{name}: signature");
    let key = Ed25519PublicKey::from_bytes(&public).unwrap();
    assert_eq!(key.verify(&message, &signature), Ok(()), "{name}: verify");

    // Negative twins.
    for (i, bit) in [(0, 0), (31, 2), (32, 0), (63, 4)] {
        let mut bad = signature;
        bad[i] ^= 1 << bit;
        assert_eq!(
            key.verify(&message, &bad),
            Err(SignatureError::BadSignature),
            "{name}: signature bit {i}/{bit}"
        );
    }
    if message.is_empty() {
        assert_eq!(
            key.verify(&[0], &signature),
            Err(SignatureError::BadSignature),
            "{name}: extended message"
        );
    } else {
        let last = message.len() - 1;
        assert_eq!(
            key.verify(&flipped(&message, last, 7), &signature),
            Err(SignatureError::BadSignature),
            "{name}: tampered message"
        );
        assert_eq!(
            key.verify(&message[..last], &signature),
            Err(SignatureError::BadSignature),
            "{name}: truncated message"
        );
    }
    // A different (valid) key must not accept the signature either.
    let other = Ed25519KeyPair::from_seed(&flipped32(&h32(v.secret), 0, 0)).public_key();
    assert_eq!(
        other.verify(&message, &signature),
        Err(SignatureError::BadSignature),
        "{name}: other key"
    );
}

#[test]
fn rfc8032_7_1_test1() {
    check_ed25519(&RFC8032_7_1_TEST1);
}

#[test]
fn rfc8032_7_1_test2() {
    check_ed25519(&RFC8032_7_1_TEST2);
}

#[test]
fn rfc8032_7_1_test3() {
    check_ed25519(&RFC8032_7_1_TEST3);
}

#[test]
fn rfc8032_7_1_test1024() {
    assert_eq!(h(RFC8032_7_1_TEST1024.message).len(), 1023);
    check_ed25519(&RFC8032_7_1_TEST1024);
}

#[test]
fn ed25519_small_order_public_key_is_refused() {
    // The identity point (y = 1) has order 1: a "weak" key that would accept forged signatures
    // under cofactored or lax verification. Our wrapper refuses it at decoding time.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        Ed25519PublicKey::from_bytes(&identity),
        Err(SigningKeyError::InvalidSigningKey)
    );
}

// ---------------------------------------------------------------------------------------------
// ChaCha20-Poly1305 — RFC 8439

/// RFC 8439 §2.8.2, AEAD_CHACHA20_POLY1305 example ("sunscreen"). The key, AAD and plaintext
/// are shared with the XChaCha draft's §A.3.1 vector below.
const SUNSCREEN_KEY: &str = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
const SUNSCREEN_AAD: &str = "50515253c0c1c2c3c4c5c6c7";
const SUNSCREEN_PLAINTEXT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer \
    you only one tip for the future, sunscreen would be it.";
/// RFC 8439 §2.8.2: the 32-bit constant 07000000 followed by IV 4041424344454647.
const RFC8439_2_8_2_NONCE: &str = "070000004041424344454647";
const RFC8439_2_8_2_CIPHERTEXT: &str = concat!(
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6",
    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36",
    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc",
    "3ff4def08e4b7a9de576d26586cec64b6116",
);
const RFC8439_2_8_2_TAG: &str = "1ae10b594f09e26a7e902ecbd0600691";

/// RFC 8439 Appendix A.5, ChaCha20-Poly1305 AEAD decryption test.
const RFC8439_A5_KEY: &str = "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0";
const RFC8439_A5_NONCE: &str = "000000000102030405060708";
const RFC8439_A5_AAD: &str = "f33388860000000000004e91";
const RFC8439_A5_CIPHERTEXT: &str = concat!(
    "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2",
    "4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf",
    "332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855",
    "9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4",
    "b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e",
    "af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a",
    "0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10",
    "49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29",
    "a6ad5cb4022b02709b",
);
const RFC8439_A5_TAG: &str = "eead9d67890cbb22392336fea1851f38";
/// The A.5 plaintext, as the RFC prints it (its "quotes" are the UTF-8 bytes shown there).
const RFC8439_A5_PLAINTEXT: &str = concat!(
    "496e7465726e65742d4472616674732061726520647261667420646f63756d65",
    "6e74732076616c696420666f722061206d6178696d756d206f6620736978206d",
    "6f6e74687320616e64206d617920626520757064617465642c207265706c6163",
    "65642c206f72206f62736f6c65746564206279206f7468657220646f63756d65",
    "6e747320617420616e792074696d652e20497420697320696e617070726f7072",
    "6961746520746f2075736520496e7465726e65742d4472616674732061732072",
    "65666572656e6365206d6174657269616c206f7220746f206369746520746865",
    "6d206f74686572207468616e206173202fe2809c776f726b20696e2070726f67",
    "726573732e2fe2809d",
);

/// Which AEAD a vector is for; both take a 32-byte key and a 16-byte tag.
#[derive(Clone, Copy)]
enum Aead {
    ChaCha,
    XChaCha,
}

fn seal(aead: Aead, key: &[u8; 32], nonce: &[u8], ad: &[u8], buf: &mut [u8]) -> [u8; 16] {
    match aead {
        Aead::ChaCha => chacha20poly1305_seal(key, &nonce.try_into().unwrap(), ad, buf).unwrap(),
        Aead::XChaCha => xchacha20poly1305_seal(key, &nonce.try_into().unwrap(), ad, buf).unwrap(),
    }
}

fn open(
    aead: Aead,
    key: &[u8; 32],
    nonce: &[u8],
    ad: &[u8],
    buf: &mut [u8],
    tag: &[u8; 16],
) -> Result<(), OpenError> {
    match aead {
        Aead::ChaCha => chacha20poly1305_open(key, &nonce.try_into().unwrap(), ad, buf, tag),
        Aead::XChaCha => xchacha20poly1305_open(key, &nonce.try_into().unwrap(), ad, buf, tag),
    }
}

/// Seal must give exactly (`ciphertext`, `tag`); open must give back `plaintext`; and every
/// tampering (ciphertext, tag, AD, nonce, key) must make open fail without releasing anything.
fn check_aead(
    aead: Aead,
    key: &[u8; 32],
    nonce: &[u8],
    ad: &[u8],
    plaintext: &[u8],
    ciphertext: &[u8],
    tag: &[u8; 16],
) {
    let mut buf = plaintext.to_vec();
    assert_eq!(seal(aead, key, nonce, ad, &mut buf), *tag, "tag");
    assert_eq!(buf, ciphertext, "ciphertext");

    let mut buf = ciphertext.to_vec();
    open(aead, key, nonce, ad, &mut buf, tag).unwrap();
    assert_eq!(buf, plaintext, "decrypted plaintext");

    let refused = |key: &[u8; 32], nonce: &[u8], ad: &[u8], ct: &[u8], tag: &[u8; 16]| {
        let mut buf = ct.to_vec();
        assert_eq!(
            open(aead, key, nonce, ad, &mut buf, tag),
            Err(OpenError::DecryptionFailed)
        );
        // On failure the buffer is left as given, never partially decrypted.
        assert_eq!(buf, ct);
    };
    let last = ciphertext.len() - 1;
    refused(key, nonce, ad, &flipped(ciphertext, 0, 0), tag);
    refused(key, nonce, ad, &flipped(ciphertext, last, 7), tag);
    refused(key, nonce, ad, &ciphertext[..last], tag);
    let mut bad_tag = *tag;
    bad_tag[15] ^= 0x80;
    refused(key, nonce, ad, ciphertext, &bad_tag);
    refused(key, nonce, &flipped(ad, 0, 0), ciphertext, tag);
    refused(key, nonce, &[], ciphertext, tag);
    refused(
        key,
        &flipped(nonce, nonce.len() - 1, 1),
        ad,
        ciphertext,
        tag,
    );
    refused(&flipped32(key, 0, 0), nonce, ad, ciphertext, tag);
}

#[test]
fn rfc8439_2_8_2_aead_example() {
    check_aead(
        Aead::ChaCha,
        &h32(SUNSCREEN_KEY),
        &h12(RFC8439_2_8_2_NONCE),
        &h(SUNSCREEN_AAD),
        SUNSCREEN_PLAINTEXT,
        &h(RFC8439_2_8_2_CIPHERTEXT),
        &h16(RFC8439_2_8_2_TAG),
    );
}

#[test]
fn rfc8439_a5_aead_decryption() {
    let plaintext = h(RFC8439_A5_PLAINTEXT);
    assert!(plaintext.starts_with(b"Internet-Drafts are draft documents"));
    check_aead(
        Aead::ChaCha,
        &h32(RFC8439_A5_KEY),
        &h12(RFC8439_A5_NONCE),
        &h(RFC8439_A5_AAD),
        &plaintext,
        &h(RFC8439_A5_CIPHERTEXT),
        &h16(RFC8439_A5_TAG),
    );
}

// ---------------------------------------------------------------------------------------------
// XChaCha20-Poly1305 — draft-irtf-cfrg-xchacha-03

/// draft-irtf-cfrg-xchacha-03 §A.3.1, AEAD_XChaCha20_Poly1305 example (same key, AAD and
/// plaintext as RFC 8439 §2.8.2).
const XCHACHA_A3_1_NONCE: &str = "404142434445464748494a4b4c4d4e4f5051525354555657";
const XCHACHA_A3_1_CIPHERTEXT: &str = concat!(
    "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb",
    "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452",
    "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9",
    "21f9664c97637da9768812f615c68b13b52e",
);
const XCHACHA_A3_1_TAG: &str = "c0875924c1c7987947deafd8780acf49";

#[test]
fn xchacha_a3_1_aead_example() {
    check_aead(
        Aead::XChaCha,
        &h32(SUNSCREEN_KEY),
        &h24(XCHACHA_A3_1_NONCE),
        &h(SUNSCREEN_AAD),
        SUNSCREEN_PLAINTEXT,
        &h(XCHACHA_A3_1_CIPHERTEXT),
        &h16(XCHACHA_A3_1_TAG),
    );
}

// ---------------------------------------------------------------------------------------------
// HKDF-SHA256 — RFC 5869 Appendix A

struct HkdfVector {
    name: &'static str,
    ikm: &'static str,
    salt: &'static str,
    info: &'static str,
    prk: &'static str,
    okm: &'static str,
}

/// RFC 5869 A.1, basic test case with SHA-256.
const RFC5869_A1: HkdfVector = HkdfVector {
    name: "A.1",
    ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
    salt: "000102030405060708090a0b0c",
    info: "f0f1f2f3f4f5f6f7f8f9",
    prk: "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
    okm: concat!(
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf",
        "34007208d5b887185865",
    ),
};

/// RFC 5869 A.2, SHA-256 with longer inputs and outputs.
const RFC5869_A2: HkdfVector = HkdfVector {
    name: "A.2",
    ikm: concat!(
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
        "404142434445464748494a4b4c4d4e4f",
    ),
    salt: concat!(
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f",
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
    ),
    info: concat!(
        "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
        "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef",
        "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
    ),
    prk: "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
    okm: concat!(
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c",
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71",
        "cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ),
};

/// RFC 5869 A.3, SHA-256 with zero-length salt and info. "Not provided" salt means HashLen
/// zero bytes, which as an HMAC key is the same as the empty key our wrapper is given here.
const RFC5869_A3: HkdfVector = HkdfVector {
    name: "A.3",
    ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
    salt: "",
    info: "",
    prk: "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
    okm: concat!(
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d",
        "9d201395faa4b61a96c8",
    ),
};

fn check_hkdf(v: &HkdfVector) {
    let name = v.name;
    let (ikm, salt, info, prk, okm) = (h(v.ikm), h(v.salt), h(v.info), h32(v.prk), h(v.okm));

    // Extract (RFC 5869 §2.2) is HMAC-Hash(salt, IKM).
    assert_eq!(*hmac_sha256(&salt, &ikm), prk, "{name}: PRK");

    let mut out = vec![0u8; okm.len()];
    hkdf_sha256(&salt, &ikm, &info, &mut out).unwrap();
    assert_eq!(out, okm, "{name}: OKM (extract and expand)");

    let mut out = vec![0u8; okm.len()];
    hkdf_sha256_expand(&prk, &info, &mut out).unwrap();
    assert_eq!(out, okm, "{name}: OKM (expand from PRK)");

    // Negative twins: any changed input changes the output.
    let mut out = vec![0u8; okm.len()];
    hkdf_sha256(&salt, &flipped(&ikm, 0, 0), &info, &mut out).unwrap();
    assert_ne!(out, okm, "{name}: tampered IKM");
    hkdf_sha256(&salt, &ikm, &[info.as_slice(), &[0]].concat(), &mut out).unwrap();
    assert_ne!(out, okm, "{name}: tampered info");
    hkdf_sha256_expand(&flipped32(&prk, 31, 0), &info, &mut out).unwrap();
    assert_ne!(out, okm, "{name}: tampered PRK");
    if !salt.is_empty() {
        hkdf_sha256(&flipped(&salt, 0, 0), &ikm, &info, &mut out).unwrap();
        assert_ne!(out, okm, "{name}: tampered salt");
    }
    // Beyond 255 * HashLen bytes the wrapper must refuse (RFC 5869 §2.3).
    let mut too_long = vec![0u8; 255 * 32 + 1];
    assert_eq!(
        hkdf_sha256(&salt, &ikm, &info, &mut too_long),
        Err(KdfError::KdfLength)
    );
    assert_eq!(
        hkdf_sha256_expand(&prk, &info, &mut too_long),
        Err(KdfError::KdfLength)
    );
}

#[test]
fn rfc5869_a1() {
    check_hkdf(&RFC5869_A1);
}

#[test]
fn rfc5869_a2() {
    check_hkdf(&RFC5869_A2);
}

#[test]
fn rfc5869_a3() {
    check_hkdf(&RFC5869_A3);
}

// ---------------------------------------------------------------------------------------------
// HMAC-SHA256 — RFC 4231, SHA-256 — FIPS 180-2

/// RFC 4231 §4.3, test case 2 (key shorter than the block: "Jefe").
const RFC4231_TC2_KEY: &[u8] = b"Jefe";
const RFC4231_TC2_DATA: &[u8] = b"what do ya want for nothing?";
const RFC4231_TC2_HMAC_SHA256: &str =
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

/// FIPS 180-2 Appendix B.1, SHA-256 of the one-block message "abc".
const FIPS180_2_B1_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

#[test]
fn rfc4231_test_case_2() {
    let expected = h32(RFC4231_TC2_HMAC_SHA256);
    assert_eq!(*hmac_sha256(RFC4231_TC2_KEY, RFC4231_TC2_DATA), expected);
    // Negative twins.
    assert_ne!(
        *hmac_sha256(&flipped(RFC4231_TC2_KEY, 0, 5), RFC4231_TC2_DATA),
        expected
    );
    assert_ne!(
        *hmac_sha256(RFC4231_TC2_KEY, &flipped(RFC4231_TC2_DATA, 27, 0)),
        expected
    );
}

#[test]
fn fips180_2_sha256_abc() {
    let expected = h32(FIPS180_2_B1_ABC);
    assert_eq!(sha256(b"abc"), expected);
    assert_ne!(sha256(b"abd"), expected);
    assert_ne!(sha256(b"abc\0"), expected);
}
