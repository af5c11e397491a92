//! Signed and one-time prekeys and the [`PrekeyBundle`] a peer fetches to start a session
//! (X3DH §3.2 "Publishing keys").
//!
//! The bundle format reserves flag bit 1 for a future ML-KEM-768 prekey (PQXDH); version 1
//! decoders refuse it with [`DecodeError::ReservedFlags`] rather than silently dropping it.

use crate::codec::{Reader, Writer};
use crate::context::SignatureContext;
use crate::error::{DecodeError, SignatureError};
use crate::identity::{PublicIdentity, check_version};
use crate::primitives::{Ed25519KeyPair, SIGNATURE_LEN, X25519PublicKey, X25519Secret};
use core::fmt;

/// Version byte of encoded bundles and prekeys.
pub const PREKEY_VERSION: u8 = 2;
/// Bundle flag: a one-time prekey follows the signed prekey.
pub const FLAG_ONE_TIME_PREKEY: u8 = 0b0000_0001;
/// Bundle flag reserved for an ML-KEM-768 prekey (post-quantum, not in v2).
pub const FLAG_PQ_KEM_PREKEY: u8 = 0b0000_0010;

/// The public half of a signed prekey: id, key, creation time (seconds, given by the caller)
/// and the identity's Ed25519 signature over all three.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedPrekey {
    id: u32,
    key: X25519PublicKey,
    created_at: u64,
    signature: [u8; SIGNATURE_LEN],
}

/// Encoded length of a [`SignedPrekey`] (with its version byte).
pub const SIGNED_PREKEY_LEN: usize = 1 + 4 + 32 + 8 + SIGNATURE_LEN;

impl SignedPrekey {
    pub(crate) fn sign(
        identity: &Ed25519KeyPair,
        id: u32,
        key: X25519PublicKey,
        created_at: u64,
    ) -> Self {
        let signature = identity.sign(&signed_prekey_bytes(id, &key, created_at));
        Self {
            id,
            key,
            created_at,
            signature,
        }
    }

    /// Builds a signed prekey from its parts (verify it with [`SignedPrekey::verify`]).
    #[must_use]
    pub fn from_parts(
        id: u32,
        key: X25519PublicKey,
        created_at: u64,
        signature: [u8; SIGNATURE_LEN],
    ) -> Self {
        Self {
            id,
            key,
            created_at,
            signature,
        }
    }

    /// Checks the signature against the identity that published the prekey (strict Ed25519).
    pub fn verify(&self, identity: &PublicIdentity) -> Result<(), SignatureError> {
        identity.signing_key().verify(
            &signed_prekey_bytes(self.id, &self.key, self.created_at),
            &self.signature,
        )
    }

    /// Prekey id, chosen by the owner.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }
    /// The X25519 public key.
    #[must_use]
    pub fn key(&self) -> &X25519PublicKey {
        &self.key
    }
    /// Creation time given when it was generated (Unix seconds by convention).
    #[must_use]
    pub fn created_at(&self) -> u64 {
        self.created_at
    }
    /// The Ed25519 signature.
    #[must_use]
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Encodes as `version || id || key || created_at || signature`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNED_PREKEY_LEN);
        out.put_u8(PREKEY_VERSION);
        self.write_body(&mut out);
        out
    }

    /// Decodes (without verifying: the signer is known only with the bundle).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        check_version(r.u8()?, PREKEY_VERSION)?;
        let spk = Self::read_body(&mut r)?;
        r.finish()?;
        Ok(spk)
    }

    fn write_body(&self, out: &mut impl Writer) {
        out.put_u32(self.id);
        out.put(self.key.as_bytes());
        out.put_u64(self.created_at);
        out.put(&self.signature);
    }

    fn read_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: r.u32()?,
            key: X25519PublicKey::from_bytes(r.array()?),
            created_at: r.u64()?,
            signature: r.array()?,
        })
    }
}

impl fmt::Debug for SignedPrekey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedPrekey")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// `"SecureChat v2 signed prekey" || id || key || created_at` (docs/protocol.md §6).
fn signed_prekey_bytes(id: u32, key: &X25519PublicKey, created_at: u64) -> Vec<u8> {
    SignatureContext::SignedPrekey.message(&[
        &id.to_be_bytes(),
        key.as_bytes(),
        &created_at.to_be_bytes(),
    ])
}

/// The public half of a one-time prekey.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OneTimePrekey {
    /// Prekey id, unique per account.
    pub id: u32,
    /// The X25519 public key.
    pub key: X25519PublicKey,
}

/// Encoded length of a [`OneTimePrekey`] (with its version byte).
pub const ONE_TIME_PREKEY_LEN: usize = 1 + 4 + 32;

impl OneTimePrekey {
    /// Encodes as `version || id || key`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ONE_TIME_PREKEY_LEN);
        out.put_u8(PREKEY_VERSION);
        out.put_u32(self.id);
        out.put(self.key.as_bytes());
        out
    }

    /// Decodes an encoded one-time prekey.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        check_version(r.u8()?, PREKEY_VERSION)?;
        let otpk = Self {
            id: r.u32()?,
            key: X25519PublicKey::from_bytes(r.array()?),
        };
        r.finish()?;
        Ok(otpk)
    }
}

/// A signed prekey kept by its owner, with its secret.
#[derive(Clone)]
pub(crate) struct SignedPrekeySecret {
    pub(crate) public: SignedPrekey,
    pub(crate) secret: X25519Secret,
}

impl SignedPrekeySecret {
    pub(crate) fn write(&self, out: &mut impl Writer) {
        self.public.write_body(out);
        out.put(self.secret.to_bytes().as_slice());
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let public = SignedPrekey::read_body(r)?;
        let secret = X25519Secret::from_bytes(&*r.secret32()?);
        if secret.public_key() != public.key {
            return Err(DecodeError::InvalidField);
        }
        Ok(Self { public, secret })
    }
}

/// Everything an initiator needs to start a session with a device (X3DH §3.2): the device's
/// identity, its current signed prekey and, while any remain, one one-time prekey.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PrekeyBundle {
    identity: PublicIdentity,
    signed_prekey: SignedPrekey,
    one_time_prekey: Option<OneTimePrekey>,
}

impl PrekeyBundle {
    /// Assembles a bundle (for example from the relay's JSON) and verifies it.
    pub fn new(
        identity: PublicIdentity,
        signed_prekey: SignedPrekey,
        one_time_prekey: Option<OneTimePrekey>,
    ) -> Result<Self, SignatureError> {
        let bundle = Self {
            identity,
            signed_prekey,
            one_time_prekey,
        };
        bundle.verify()?;
        Ok(bundle)
    }

    /// Re-checks the signed prekey signature (strict Ed25519). The identity's own binding
    /// signature was checked when it was built.
    pub fn verify(&self) -> Result<(), SignatureError> {
        self.signed_prekey.verify(&self.identity)
    }

    /// The device identity.
    #[must_use]
    pub fn identity(&self) -> &PublicIdentity {
        &self.identity
    }
    /// The signed prekey.
    #[must_use]
    pub fn signed_prekey(&self) -> &SignedPrekey {
        &self.signed_prekey
    }
    /// The one-time prekey, if the relay had one left.
    #[must_use]
    pub fn one_time_prekey(&self) -> Option<&OneTimePrekey> {
        self.one_time_prekey.as_ref()
    }

    /// Encodes as `version || flags || identity || signed prekey || [one-time prekey]`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 128 + SIGNED_PREKEY_LEN + ONE_TIME_PREKEY_LEN);
        out.put_u8(PREKEY_VERSION);
        out.put_u8(if self.one_time_prekey.is_some() {
            FLAG_ONE_TIME_PREKEY
        } else {
            0
        });
        self.identity.write_body(&mut out);
        self.signed_prekey.write_body(&mut out);
        if let Some(otpk) = &self.one_time_prekey {
            out.put_u32(otpk.id);
            out.put(otpk.key.as_bytes());
        }
        out
    }

    /// Decodes and verifies a bundle; refuses reserved flags, bad signatures and trailing data.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        check_version(r.u8()?, PREKEY_VERSION)?;
        let flags = r.u8()?;
        if flags & !FLAG_ONE_TIME_PREKEY != 0 {
            return Err(DecodeError::ReservedFlags(flags & !FLAG_ONE_TIME_PREKEY));
        }
        let identity = PublicIdentity::read_body(&mut r)?;
        let signed_prekey = SignedPrekey::read_body(&mut r)?;
        let one_time_prekey = if flags & FLAG_ONE_TIME_PREKEY != 0 {
            Some(OneTimePrekey {
                id: r.u32()?,
                key: X25519PublicKey::from_bytes(r.array()?),
            })
        } else {
            None
        };
        r.finish()?;
        Ok(Self::new(identity, signed_prekey, one_time_prekey)?)
    }
}
