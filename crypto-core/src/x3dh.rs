//! X3DH key agreement (Marlinspike & Perrin, "The X3DH Key Agreement Protocol", 2016), §3.3
//! (initiator) and §3.4 (responder), with X25519 and HKDF-SHA256:
//!
//! ```text
//! DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   DH4 = DH(EK_A, OPK_B)
//! SK  = HKDF-SHA256(salt = 32 × 0x00, ikm = 32 × 0xFF || DH1 || DH2 || DH3 [|| DH4],
//!                   info = "SecureChat v2 X3DH", 32 bytes)
//! AD  = SHA-256("SecureChat v2 X3DH AD" || Encode(IK_A) || Encode(IK_B))
//! ```
//! DH4 exists only when a one-time prekey was used. DH3 is also returned: it is the output of
//! the first DH-ratchet step, because the initiator's ephemeral key EK_A is its first ratchet
//! key (docs/protocol.md §9.2). `Encode(IK)` is the 64 bytes Ed25519 key ||
//! X25519 key; AD is hashed once so every message authenticates a fixed 32 bytes. Every DH
//! output must be contributory (RFC 7748 §6.1): a low-order key is an error.

use crate::error::AgreementError;
use crate::identity::{IdentityKeys, PublicIdentity};
use crate::primitives::{X25519PublicKey, X25519Secret, hkdf_sha256_array, x25519_many};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// HKDF info string of the X3DH shared secret.
pub const X3DH_INFO: &[u8] = b"SecureChat v2 X3DH";
/// Domain prefix of the associated-data digest.
pub const X3DH_AD_CONTEXT: &[u8] = b"SecureChat v2 X3DH AD";

/// What X3DH hands to the Double Ratchet: the shared secret SK and DH3 = DH(EK_A, SPK_B), the
/// first DH-ratchet output (the initiator's first ratchet key is EK_A, the responder's is SPK_B).
pub(crate) struct X3dhOutput {
    pub(crate) shared_secret: Zeroizing<[u8; 32]>,
    pub(crate) dh3: Zeroizing<[u8; 32]>,
}

/// The initiator's computation (§3.3), after the bundle's signatures were verified.
pub(crate) fn initiator_secret(
    identity: &IdentityKeys,
    ephemeral: &X25519Secret,
    their_identity: &PublicIdentity,
    their_signed_prekey: &X25519PublicKey,
    their_one_time_prekey: Option<&X25519PublicKey>,
) -> Result<X3dhOutput, AgreementError> {
    // One call per case so the agreements share work (SPK_B is decoded once for DH1 and DH3).
    let dh1 = (identity.agreement(), their_signed_prekey);
    let dh2 = (ephemeral, their_identity.agreement_key());
    let dh3 = (ephemeral, their_signed_prekey);
    let (dh1, dh2, dh3, dh4) = match their_one_time_prekey {
        Some(key) => {
            let [dh1, dh2, dh3, dh4] = x25519_many([dh1, dh2, dh3, (ephemeral, key)])?;
            (dh1, dh2, dh3, Some(dh4))
        }
        None => {
            let [dh1, dh2, dh3] = x25519_many([dh1, dh2, dh3])?;
            (dh1, dh2, dh3, None)
        }
    };
    let shared_secret = derive(&dh1, &dh2, &dh3, dh4.as_deref());
    Ok(X3dhOutput { shared_secret, dh3 })
}

/// The responder's computation (§3.4).
pub(crate) fn responder_secret(
    identity: &IdentityKeys,
    signed_prekey: &X25519Secret,
    one_time_prekey: Option<&X25519Secret>,
    their_identity: &PublicIdentity,
    their_base_key: &X25519PublicKey,
) -> Result<X3dhOutput, AgreementError> {
    // One call per case so the agreements share work (EK_A is decoded once for DH2, DH3, DH4).
    let dh1 = (signed_prekey, their_identity.agreement_key());
    let dh2 = (identity.agreement(), their_base_key);
    let dh3 = (signed_prekey, their_base_key);
    let (dh1, dh2, dh3, dh4) = match one_time_prekey {
        Some(key) => {
            let [dh1, dh2, dh3, dh4] = x25519_many([dh1, dh2, dh3, (key, their_base_key)])?;
            (dh1, dh2, dh3, Some(dh4))
        }
        None => {
            let [dh1, dh2, dh3] = x25519_many([dh1, dh2, dh3])?;
            (dh1, dh2, dh3, None)
        }
    };
    let shared_secret = derive(&dh1, &dh2, &dh3, dh4.as_deref());
    Ok(X3dhOutput { shared_secret, dh3 })
}

fn derive(
    dh1: &[u8; 32],
    dh2: &[u8; 32],
    dh3: &[u8; 32],
    dh4: Option<&[u8; 32]>,
) -> Zeroizing<[u8; 32]> {
    // §2.2: F = 32 0xFF bytes for X25519, prepended to the key material.
    let mut ikm = Zeroizing::new(Vec::with_capacity(160));
    ikm.extend_from_slice(&[0xFF; 32]);
    ikm.extend_from_slice(dh1);
    ikm.extend_from_slice(dh2);
    ikm.extend_from_slice(dh3);
    if let Some(dh4) = dh4 {
        ikm.extend_from_slice(dh4);
    }
    hkdf_sha256_array(&[0u8; 32], &ikm, X3DH_INFO)
}

/// The associated data both sides bind every message to (§3.3).
#[must_use]
pub fn associated_data(initiator: &PublicIdentity, responder: &PublicIdentity) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(X3DH_AD_CONTEXT);
    h.update(initiator.key_bytes());
    h.update(responder.key_bytes());
    h.finalize().into()
}
