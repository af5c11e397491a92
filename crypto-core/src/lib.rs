//! # crypto-core
//!
//! The SecureChat end-to-end encryption protocol: device identities, signed and one-time
//! prekeys, X3DH session setup, the Double Ratchet, group sender keys, encrypted attachments,
//! safety numbers and sealed state at rest.
//!
//! It does no I/O, keeps no clock (times are parameters) and no global state, and builds for
//! the host and for `wasm32-unknown-unknown`.
//!
//! ```
//! use crypto_core::{Account, SessionMessage};
//!
//! # fn main() -> Result<(), crypto_core::Error> {
//! let alice = Account::new()?;
//! let mut bob = Account::new()?;
//! bob.generate_signed_prekey(1_700_000_000)?;
//! bob.generate_one_time_prekeys(1)?;
//! let bundle = bob.prekey_bundle(true)?; // published through the relay
//!
//! let mut to_bob = alice.create_outbound_session(&bundle)?;
//! let first = to_bob.encrypt(b"hello Bob")?;
//!
//! let SessionMessage::Prekey(prekey) = SessionMessage::decode(&first.encode())? else {
//!     unreachable!("the first message carries the X3DH parameters")
//! };
//! let (mut to_alice, plaintext) = bob.create_inbound_session(&prekey)?;
//! assert_eq!(&plaintext[..], b"hello Bob");
//!
//! let reply = to_alice.encrypt(b"hi Alice")?;
//! assert_eq!(&to_bob.decrypt(&reply)?[..], b"hi Alice");
//! # Ok(())
//! # }
//! ```
//!
//! Each module cites the section of the public specification it implements.
//!
//! # Errors
//!
//! Every operation returns its own error enum listing only the failures it can produce
//! ([`DecodeError`] for decoders, [`SessionError`] for pairwise sessions, [`PickleError`] for
//! state at rest …; [`error`] has the list), and every one of them converts into the umbrella
//! [`Error`] with the same message, so `?` into `crypto_core::Error` works as in the example
//! above.
//!
//! # Performance: build with the portable Poly1305 on x86_64
//!
//! On x86/x86_64, `poly1305` 0.9.1 (under `chacha20poly1305` 0.11) selects an AVX2 backend at
//! run time whose per-message set-up runs its AVX2 intrinsics as out-of-line calls: a
//! ChaCha20-Poly1305 seal of 64–256 bytes then costs about four times as much as with the
//! portable backend, while long inputs (64 KiB attachment chunks) are about 1.7× faster with
//! AVX2. Chat messages are short, so applications and services that build this crate for
//! x86_64 should compile with
//!
//! ```text
//! --cfg poly1305_backend="soft"
//! ```
//!
//! for example in their `.cargo/config.toml`:
//!
//! ```toml
//! [target.'cfg(any(target_arch = "x86", target_arch = "x86_64"))']
//! rustflags = ["--cfg", 'poly1305_backend="soft"']
//! ```
//!
//! A library cannot set this for its users (the SecureChat workspace sets it in its own
//! `.cargo/config.toml`), and a `RUSTFLAGS` environment variable replaces, rather than extends,
//! the flags from `.cargo/config.toml`. Building with `-C target-cpu=native` (or
//! `-C target-feature=+avx2`, for machines known to have AVX2) is fast at every size too.
//! wasm32 always uses the portable backend. Figures: `docs/benchmarks.md` in the repository.

#![cfg_attr(not(test), warn(missing_docs))]
// Without the `hazmat` and `fuzzing` features (the default, what applications get), the raw
// primitives and the fuzz helpers with their predictable RNG are not reachable: these doc tests
// must fail to build. `cargo xtask test` runs the doc tests once without features for them.
#![cfg_attr(
    not(feature = "fuzzing"),
    doc = "```compile_fail\nlet _rng = crypto_core::fuzzing::FuzzRng::new(b\"seed\");\n```"
)]
#![cfg_attr(
    not(feature = "hazmat"),
    doc = "```compile_fail\nlet _ = crypto_core::primitives::sha256(b\"raw\");\n```"
)]
#![cfg_attr(
    not(feature = "hazmat"),
    doc = "```compile_fail\nlet _ = crypto_core::primitives::X25519Secret::from_bytes(&[7; 32]);\n```"
)]

mod codec;
mod context;
pub mod error;

// The raw primitives (AEAD seal/open, HKDF, HMAC, X25519 secrets, Ed25519 key pairs) are not part
// of the default public API: an application that calls them directly bypasses every protocol
// check. The `hazmat` feature exposes them for test vectors, known-answer tests and benchmarks.
// The public key types that appear in the protocol API are re-exported below either way.
#[cfg(feature = "hazmat")]
pub mod primitives;
#[cfg(not(feature = "hazmat"))]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod primitives;

pub mod account;
pub mod attachment;
// Round-trip checks for the cargo-fuzz targets and the corpus replay test, with a deterministic
// RNG: never for applications, so only with the `fuzzing` feature.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod group;
pub mod identity;
pub mod message;
pub mod pickle;
pub mod prekeys;
pub mod ratchet;
pub mod relay_challenge;
pub mod safety_number;
pub mod session;
pub mod x3dh;

pub use account::Account;
pub use error::{
    AccountError, AgreementError, AttachmentError, DecodeError, Error, GroupError, KdfError,
    OpenError, PickleError, RandomError, RelayChallengeError, Result, SafetyNumberError, SealError,
    SealToError, SessionError, SignatureError, SigningKeyError,
};
pub use identity::PublicIdentity;
pub use message::{PrekeyMessage, RatchetMessage, SessionMessage};
pub use pickle::{PickleId, PickleKey, SealedPickle};
pub use prekeys::{OneTimePrekey, PrekeyBundle, SignedPrekey};
pub use primitives::{Ed25519PublicKey, SIGNATURE_LEN, X25519PublicKey};
pub use relay_challenge::verify_relay_challenge;
pub use session::Session;

/// Every domain-separation string of the protocol (docs/protocol.md §4): the signature
/// contexts, then the HKDF infos and hash prefixes; for the test that compares them with the
/// document. Not part of the API.
#[doc(hidden)]
#[must_use]
pub fn domain_strings() -> Vec<&'static [u8]> {
    let mut all = context::all_bytes();
    all.extend_from_slice(&[
        x3dh::X3DH_INFO,
        x3dh::X3DH_AD_CONTEXT,
        ratchet::ROOT_KDF_INFO,
        ratchet::MESSAGE_KDF_INFO,
        session::SESSION_ID_CONTEXT,
        group::GROUP_KDF_INFO,
        pickle::PICKLE_KDF_INFO,
        attachment::CHUNK_KEY_INFO,
        attachment::COMMITMENT_INFO,
    ]);
    all
}

/// Every Ed25519 signature context string of the protocol (docs/protocol.md §4), from the one
/// crate-internal list the signing code uses; for the tests that check the list is prefix-free
/// and documented. Not part of the API.
#[doc(hidden)]
#[must_use]
pub fn signature_contexts() -> Vec<&'static [u8]> {
    context::all_bytes()
}

#[cfg(all(test, not(target_family = "wasm")))]
mod domain_string_tests {
    /// Every `b"SecureChat v…"` string a `const` or the context table of the source defines is
    /// in [`super::domain_strings`], so a new one cannot be left out of the document check
    /// (`tests/protocol_doc.rs`).
    #[test]
    fn every_defined_domain_string_is_listed() {
        fn sources(dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    sources(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let listed: Vec<&[u8]> = super::domain_strings();
        let mut defined = 0;
        for line in files.iter().flat_map(|f| f.lines()) {
            let defines = (line.contains("const ") && line.contains(": &[u8] = b\"SecureChat v"))
                || line.trim_start().contains("=> b\"SecureChat v");
            if !defines {
                continue;
            }
            let start = line.find("b\"SecureChat v").unwrap() + 2;
            let end = start + line[start..].find('"').unwrap();
            let string = &line.as_bytes()[start..end];
            assert!(
                listed.contains(&string),
                "{} is not in domain_strings()",
                &line[start..end]
            );
            defined += 1;
        }
        assert_eq!(defined, listed.len(), "every listed string is defined once");
    }
}
