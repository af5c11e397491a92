//! Secrets the relay must be able to read back, encrypted at rest (issue #12 item 16): the
//! TOTP secrets, which checking a code needs in the clear. They are sealed with
//! XChaCha20-Poly1305 under the relay's own 256-bit key, with the user id in the associated
//! data (a sealed secret copied to another account does not open), and stored as
//! `enc1:` + base64(nonce ‖ ciphertext ‖ tag). A database dump alone no longer gives anyone
//! the codes of every account.
//!
//! The key lives in a file (`--secret-key-file`, default `./securechat.key`), created with
//! fresh random bytes and owner-only permissions at the first start. Relays sharing one
//! PostgreSQL database must share the file; back it up with the database. Secrets written
//! before this existed (plain base32, no prefix) are still read.

use crate::api::error::ApiError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::io::Write as _;
use std::path::Path;
use zeroize::Zeroizing;

/// Prefix of a sealed value (version 1 of the format).
const SEALED_PREFIX: &str = "enc1:";

/// The relay's at-rest key.
pub struct AtRestKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for AtRestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtRestKey(..)")
    }
}

fn ad(purpose: &str, user_id: i64) -> Vec<u8> {
    let mut ad = format!("SecureChat at rest v1\0{purpose}\0").into_bytes();
    ad.extend_from_slice(&user_id.to_be_bytes());
    ad
}

impl AtRestKey {
    /// Reads the 32-byte key at `path`, or creates it (owner-only permissions) when the file
    /// does not exist. A file of another length is an error, never replaced.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => Self::from_file_bytes(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new([0u8; 32]);
                getrandom::fill(key.as_mut_slice()).map_err(std::io::Error::other)?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                match options.open(path) {
                    Ok(mut file) => {
                        file.write_all(key.as_slice())?;
                        file.sync_all()?;
                        Ok(Self(key))
                    }
                    // Another relay created it meanwhile: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::from_file_bytes(path, &std::fs::read(path)?)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn from_file_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<Self> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: a secret key file holds exactly 32 bytes, this one {}",
                    path.display(),
                    bytes.len()
                ),
            )
        })?;
        Ok(Self(Zeroizing::new(key)))
    }

    /// Seals `secret` (a TOTP secret) for `user_id`.
    pub fn seal_totp(&self, user_id: i64, secret: &str) -> Result<String, ApiError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(ApiError::internal)?;
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &ad("totp", user_id),
                },
            )
            .map_err(|_| ApiError::internal("sealing a TOTP secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", BASE64.encode(out)))
    }

    /// Opens a stored TOTP secret of `user_id` (a value without the prefix is a secret stored
    /// before encryption at rest, returned as it is).
    pub fn open_totp(&self, user_id: i64, stored: &str) -> Result<Zeroizing<String>, ApiError> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(Zeroizing::new(stored.to_owned()));
        };
        let broken = || {
            ApiError::internal("a stored TOTP secret does not open with this relay's secret key")
        };
        let raw = BASE64.decode(encoded).map_err(|_| broken())?;
        let (nonce, sealed) = raw.split_at_checked(24).ok_or_else(broken)?;
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| broken())?;
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: sealed,
                        aad: &ad("totp", user_id),
                    },
                )
                .map_err(|_| broken())?,
        );
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| broken())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_user_and_key() {
        let dir = std::env::temp_dir().join(format!("sc_key_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        let _ = std::fs::remove_file(&path);
        let key = AtRestKey::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = key.seal_totp(7, "JBSWY3DPEHPK3PXP").unwrap();
        assert!(sealed.starts_with("enc1:") && !sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(
            key.open_totp(7, &sealed).unwrap().as_str(),
            "JBSWY3DPEHPK3PXP"
        );
        assert!(key.open_totp(8, &sealed).is_err(), "bound to the user");
        // The same file gives the same key; a legacy plain value reads as it is.
        let again = AtRestKey::load_or_create(&path).unwrap();
        assert_eq!(
            again.open_totp(7, &sealed).unwrap().as_str(),
            "JBSWY3DPEHPK3PXP"
        );
        assert_eq!(again.open_totp(7, "ABCDEF").unwrap().as_str(), "ABCDEF");
        std::fs::write(&path, b"short").unwrap();
        assert!(AtRestKey::load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
