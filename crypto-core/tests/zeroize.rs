//! The RustCrypto states crypto-core keys with secrets wipe themselves on drop (issue #10,
//! finding 6): a keyed HMAC state is as sensitive as the chain key it was keyed with, and a
//! ChaCha20-Poly1305 instance holds the message key. These hold only when the crates'
//! `zeroize` features are on, which the workspace `Cargo.toml` turns on.

#![cfg(not(target_family = "wasm"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}

/// Compile-time: without `sha2/zeroize` and `chacha20poly1305/zeroize` these bounds do not
/// hold and the test does not build. An `Hmac<Sha256>` is two SHA-256 cores (keyed with
/// `key ^ ipad` and `key ^ opad`) and a block buffer: the cores wipe themselves when
/// `sha2/zeroize` is on, the buffer when `digest/zeroize` is (which `hmac/zeroize` and
/// `sha2/zeroize` both turn on); `Hmac` itself carries no marker trait.
#[test]
fn hash_mac_and_aead_states_are_wiped_on_drop() {
    wiped_on_drop::<sha2::Sha256>();
    wiped_on_drop::<sha2::Sha512>();
    wiped_on_drop::<chacha20poly1305::ChaCha20Poly1305>();
    wiped_on_drop::<chacha20poly1305::XChaCha20Poly1305>();
}

/// Poly1305 wipes its state in `Drop` under its own `zeroize` feature, which
/// `chacha20poly1305/zeroize` does not turn on and which no trait shows: ask cargo which
/// features the build resolves for it.
#[test]
fn poly1305_is_built_with_zeroize() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--offline",
            "-p",
            "crypto-core",
            "-e",
            "features,normal",
            "-i",
            "poly1305",
            "--prefix",
            "none",
        ])
        .output()
        .expect("cargo tree runs");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        tree.lines()
            .any(|l| l.starts_with("poly1305 feature \"zeroize\"")),
        "poly1305 is built without its zeroize feature:\n{tree}"
    );
}
