//! Device identity: an Ed25519 signing key and an X25519 key-agreement key whose public half
//! is signed by the Ed25519 key (DESIGN "Device identity"; X3DH §2.2 and §2.4 use one identity
//! key for both roles through XEdDSA, we keep two keys and bind them by a signature instead).

use crate::codec::{Reader, Writer};
use crate::context::SignatureContext;
use crate::error::{DecodeError, RandomError, SignatureError};
use crate::primitives::{
    Ed25519KeyPair, Ed25519PublicKey, SIGNATURE_LEN, X25519PublicKey, X25519Secret,
};
use core::fmt;
use rand_core::TryCryptoRng;

/// Version byte of an encoded [`PublicIdentity`].
pub const IDENTITY_VERSION: u8 = 2;
/// Length of an encoded [`PublicIdentity`]: version, Ed25519 key, X25519 key, signature.
pub const PUBLIC_IDENTITY_LEN: usize = 1 + 32 + 32 + SIGNATURE_LEN;

/// The public identity of a device: what peers pin and what safety numbers are computed from.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    signing_key: Ed25519PublicKey,
    agreement_key: X25519PublicKey,
    signature: [u8; SIGNATURE_LEN],
}

impl PublicIdentity {
    /// Builds an identity from its parts, verifying the binding signature strictly.
    pub fn new(
        signing_key: Ed25519PublicKey,
        agreement_key: X25519PublicKey,
        signature: [u8; SIGNATURE_LEN],
    ) -> Result<Self, SignatureError> {
        signing_key.verify(&identity_signed_bytes(&agreement_key), &signature)?;
        Ok(Self {
            signing_key,
            agreement_key,
            signature,
        })
    }

    /// The Ed25519 key that signs prekeys and group messages; the device's long-term name.
    #[must_use]
    pub fn signing_key(&self) -> &Ed25519PublicKey {
        &self.signing_key
    }

    /// The X25519 identity key used in X3DH.
    #[must_use]
    pub fn agreement_key(&self) -> &X25519PublicKey {
        &self.agreement_key
    }

    /// The Ed25519 signature over the X25519 identity key.
    #[must_use]
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The 64 bytes that identify the device in X3DH's associated data and in safety numbers
    /// (both keys: docs/protocol.md §15): Ed25519 key followed by X25519 key.
    #[must_use]
    pub fn key_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        let (ed, x) = out.split_at_mut(32);
        ed.copy_from_slice(self.signing_key.as_bytes());
        x.copy_from_slice(self.agreement_key.as_bytes());
        out
    }

    /// Encodes as `version || ed25519 (32) || x25519 (32) || signature (64)`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PUBLIC_IDENTITY_LEN);
        out.put_u8(IDENTITY_VERSION);
        self.write_body(&mut out);
        out
    }

    /// Decodes and verifies an encoded identity.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        check_version(r.u8()?, IDENTITY_VERSION)?;
        let id = Self::read_body(&mut r)?;
        r.finish()?;
        Ok(id)
    }

    pub(crate) fn write_body(&self, out: &mut impl Writer) {
        out.put(self.signing_key.as_bytes());
        out.put(self.agreement_key.as_bytes());
        out.put(&self.signature);
    }

    pub(crate) fn read_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let signing_key = Ed25519PublicKey::from_bytes(&r.array()?)?;
        let agreement_key = X25519PublicKey::from_bytes(r.array()?);
        let signature = r.array()?;
        Ok(Self::new(signing_key, agreement_key, signature)?)
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicIdentity")
            .field("signing_key", &self.signing_key)
            .field("agreement_key", &self.agreement_key)
            .finish_non_exhaustive()
    }
}

/// The private identity keys of a device. Wiped on drop; Debug shows only public keys.
#[derive(Clone)]
pub struct IdentityKeys {
    signing: Ed25519KeyPair,
    agreement: X25519Secret,
    public: PublicIdentity,
}

impl IdentityKeys {
    /// Generates fresh identity keys.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, RandomError> {
        let signing = Ed25519KeyPair::generate(rng)?;
        let agreement = X25519Secret::generate(rng)?;
        Ok(Self::from_keys(signing, agreement))
    }

    pub(crate) fn from_keys(signing: Ed25519KeyPair, agreement: X25519Secret) -> Self {
        let agreement_key = agreement.public_key();
        let signature = signing.sign(&identity_signed_bytes(&agreement_key));
        let public = PublicIdentity {
            signing_key: signing.public_key(),
            agreement_key,
            signature,
        };
        Self {
            signing,
            agreement,
            public,
        }
    }

    /// The public identity.
    #[must_use]
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    pub(crate) fn signing(&self) -> &Ed25519KeyPair {
        &self.signing
    }

    pub(crate) fn agreement(&self) -> &X25519Secret {
        &self.agreement
    }

    pub(crate) fn write_secret(&self, out: &mut impl Writer) {
        out.put(self.signing.to_seed().as_slice());
        out.put(self.agreement.to_bytes().as_slice());
    }

    pub(crate) fn read_secret(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let seed = r.secret32()?;
        let agreement = r.secret32()?;
        Ok(Self::from_keys(
            Ed25519KeyPair::from_seed(&seed),
            X25519Secret::from_bytes(&agreement),
        ))
    }
}

impl fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeys")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// `"SecureChat v2 identity key" || X25519 identity key` (docs/protocol.md §5).
fn identity_signed_bytes(agreement_key: &X25519PublicKey) -> Vec<u8> {
    SignatureContext::IdentityKey.message(&[agreement_key.as_bytes()])
}

pub(crate) fn check_version(got: u8, expected: u8) -> Result<(), DecodeError> {
    if got == expected {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedVersion { expected, got })
    }
}
