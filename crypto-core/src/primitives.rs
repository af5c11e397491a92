//! Thin wrappers over the audited primitives the protocol is built from.
//!
//! X25519 (RFC 7748, x25519-dalek; on x86_64 with AVX2 through curve25519-dalek's Edwards
//! arithmetic, see [`x25519_many`]), Ed25519 (RFC 8032, ed25519-dalek, strict verification),
//! ChaCha20-Poly1305 (RFC 8439) and XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha), HKDF-SHA256
//! (RFC 5869), HMAC-SHA256 and SHA-256. They are public so that the known-answer and Wycheproof
//! tests exercise exactly the code paths the protocol uses; applications should use the
//! higher-level types instead.
//!
//! # Security notes
//! - [`X25519Secret::diffie_hellman`] refuses the all-zero output that a low-order public key
//!   produces ([`AgreementError::NonContributory`]), as X3DH and the Double Ratchet require
//!   contributory agreements.
//! - On x86_64 X25519 is composed from curve25519-dalek's public API (Montgomery-to-Edwards
//!   map, clamped Edwards multiplication, Edwards-to-Montgomery map) rather than taken whole
//!   from x25519-dalek: `tests/x25519.rs` checks it against x25519-dalek byte for byte.
//! - [`Ed25519PublicKey::verify`] uses `verify_strict`: non-canonical and small-order keys and
//!   signatures are refused.

use crate::error::{
    AgreementError, KdfError, OpenError, RandomError, SealError, SealToError, SignatureError,
    SigningKeyError,
};
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use core::fmt;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use rand_core::TryCryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Length of X25519 keys and of every symmetric key in the protocol.
pub const KEY_LEN: usize = 32;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The operating system's (or, on wasm32, the browser's) CSPRNG.
pub use getrandom::SysRng as OsRng;

/// Fills `buf` from `rng`, mapping a generator failure to [`RandomError::RandomFailure`].
pub fn fill_random<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    buf: &mut [u8],
) -> Result<(), RandomError> {
    rng.try_fill_bytes(buf)
        .map_err(|_| RandomError::RandomFailure)
}

/// Returns 32 fresh random bytes in a buffer that is wiped on drop.
pub(crate) fn random_key<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
) -> Result<Zeroizing<[u8; 32]>, RandomError> {
    let mut key = Zeroizing::new([0u8; 32]);
    fill_random(rng, key.as_mut_slice())?;
    Ok(key)
}

/// Constant-time equality of two byte strings (lengths are not secret).
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

// ---------------------------------------------------------------------------------------------
// X25519

/// An X25519 public key (32 bytes, RFC 7748 encoding).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct X25519PublicKey([u8; 32]);

impl X25519PublicKey {
    /// Wraps 32 bytes. Every 32-byte string is a valid RFC 7748 input; low-order points are
    /// caught when an agreement with them yields zero.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// The encoded key.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether this is the canonical encoding of its u-coordinate: below p = 2^255 - 19, so
    /// bit 255 is clear. X25519 maps each non-canonical encoding to the same point as a
    /// canonical one (RFC 7748 §5), so where key *bytes* serve as an identifier (replay
    /// detection) only canonical encodings may be accepted.
    #[must_use]
    pub(crate) fn is_canonical(&self) -> bool {
        // p in little-endian; compare from the most significant byte down.
        const P: [u8; 32] = [
            0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ];
        for (byte, p) in self.0.iter().rev().zip(P.iter().rev()) {
            if byte != p {
                return byte < p;
            }
        }
        false
    }
}

impl fmt::Debug for X25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519PublicKey({})", hex_short(&self.0))
    }
}

/// An X25519 private key; wiped on drop, never printed. Its public key is computed once, at
/// creation (a base-point multiplication is the most expensive step of key handling).
pub struct X25519Secret {
    secret: x25519_dalek::StaticSecret,
    public: X25519PublicKey,
}

impl X25519Secret {
    /// Builds a key from its 32 secret bytes (clamping happens inside the scalar multiplication).
    #[must_use]
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let secret = x25519_dalek::StaticSecret::from(*bytes);
        let public = X25519PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Self { secret, public }
    }

    /// Generates a fresh key from `rng`.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, RandomError> {
        let bytes = random_key(rng)?;
        Ok(Self::from_bytes(&bytes))
    }

    /// The matching public key.
    #[must_use]
    pub fn public_key(&self) -> X25519PublicKey {
        self.public
    }

    /// The secret bytes, for pickling.
    #[must_use]
    pub(crate) fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// RFC 7748 X25519; a non-contributory (all-zero) result is refused.
    pub fn diffie_hellman(
        &self,
        their: &X25519PublicKey,
    ) -> Result<Zeroizing<[u8; 32]>, AgreementError> {
        let [shared] = x25519_many([(self, their)])?;
        Ok(shared)
    }

    /// X25519 with x25519-dalek's Montgomery ladder (RFC 7748 §5), without the zero check.
    fn ladder(&self, their: &X25519PublicKey) -> Zeroizing<[u8; 32]> {
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(their.0));
        Zeroizing::new(shared.to_bytes())
    }
}

/// Several X25519 agreements at once: the same outputs as [`X25519Secret::diffie_hellman`] on
/// each `(secret, public key)` pair, in order, and [`AgreementError::NonContributory`] if any of
/// them is all-zero. Work the pairs share is done once: each distinct public key is decoded once,
/// and on x86_64 the final conversions share one field inversion.
///
/// On x86_64 with AVX2 the multiplications run on the Edwards form of the curve, whose
/// variable-base multiplication (curve25519-dalek's AVX2 backend, constant time) is faster than
/// the Montgomery ladder: the public u-coordinate is mapped to an Edwards point by the
/// birational map (which point of the pair ±P does not matter, both have the same u after
/// multiplication), multiplied by the clamped scalar (RFC 7748 §5 clamping, unreduced, so
/// points outside the prime-order subgroup give exactly what the ladder gives) and mapped
/// back. A u that is not on the curve (a point on the twist, u = -1 included) has no Edwards
/// point and takes the ladder. The choice depends only on the public key and the CPU.
pub fn x25519_many<const N: usize>(
    pairs: [(&X25519Secret, &X25519PublicKey); N],
) -> Result<[Zeroizing<[u8; 32]>; N], AgreementError> {
    let mut shared: [Zeroizing<[u8; 32]>; N] = core::array::from_fn(|_| Zeroizing::new([0; 32]));
    agree_into(&pairs, &mut shared);
    if shared.iter().any(|out| bool::from(out.ct_eq(&[0u8; 32]))) {
        return Err(AgreementError::NonContributory);
    }
    Ok(shared)
}

#[cfg(not(target_arch = "x86_64"))]
fn agree_into(pairs: &[(&X25519Secret, &X25519PublicKey)], out: &mut [Zeroizing<[u8; 32]>]) {
    for ((secret, public), slot) in pairs.iter().zip(out.iter_mut()) {
        *slot = secret.ladder(public);
    }
}

#[cfg(target_arch = "x86_64")]
fn agree_into(pairs: &[(&X25519Secret, &X25519PublicKey)], out: &mut [Zeroizing<[u8; 32]>]) {
    use curve25519_dalek::{EdwardsPoint, MontgomeryPoint};

    if !std::arch::is_x86_feature_detected!("avx2") {
        // curve25519-dalek's Edwards code is then serial, like the ladder, and this path was
        // not measured on such a CPU: keep the ladder.
        for ((secret, public), slot) in pairs.iter().zip(out.iter_mut()) {
            *slot = secret.ladder(public);
        }
        return;
    }
    // Public keys, decoded once each (None: not on the curve).
    let mut decoded: Vec<(&[u8; 32], Option<EdwardsPoint>)> = Vec::with_capacity(pairs.len());
    // [k]P for the pairs whose key is on the curve, in order.
    let mut products: Zeroizing<Vec<EdwardsPoint>> =
        Zeroizing::new(Vec::with_capacity(pairs.len()));
    let mut on_curve = Vec::with_capacity(pairs.len());
    for ((secret, public), slot) in pairs.iter().zip(out.iter_mut()) {
        let point = match decoded
            .iter()
            .find(|(bytes, _)| *bytes == public.as_bytes())
        {
            Some((_, point)) => *point,
            None => {
                let point = MontgomeryPoint(public.0).to_edwards(0);
                decoded.push((public.as_bytes(), point));
                point
            }
        };
        match point {
            Some(point) => {
                // Clamped inside, not reduced mod the group order. The scalar bytes live in
                // `Zeroizing` buffers on our side; `mul_clamped` takes them by value, and the
                // copy it clamps is curve25519-dalek's, as in x25519-dalek's own ladder.
                let scalar = secret.to_bytes();
                products.push(point.mul_clamped(*scalar));
                on_curve.push(true);
            }
            None => {
                *slot = secret.ladder(public);
                on_curve.push(false);
            }
        }
    }
    let montgomery = Zeroizing::new(EdwardsPoint::to_montgomery_batch(&products));
    let mut montgomery = montgomery.iter();
    for (slot, on_curve) in out.iter_mut().zip(on_curve) {
        if on_curve && let Some(u) = montgomery.next() {
            slot.copy_from_slice(u.as_bytes());
        }
    }
}

impl Clone for X25519Secret {
    fn clone(&self) -> Self {
        Self {
            secret: self.secret.clone(),
            public: self.public,
        }
    }
}

impl fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X25519Secret")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Ed25519

/// An Ed25519 public key, checked to be a valid, non-small-order point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519PublicKey(VerifyingKey);

impl Ed25519PublicKey {
    /// Decodes and validates a key ([`SigningKeyError::InvalidSigningKey`] for an invalid or
    /// weak point).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SigningKeyError> {
        let key =
            VerifyingKey::from_bytes(bytes).map_err(|_| SigningKeyError::InvalidSigningKey)?;
        if key.is_weak() {
            return Err(SigningKeyError::InvalidSigningKey);
        }
        Ok(Self(key))
    }

    /// The encoded key.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Strict RFC 8032 verification ([`SignatureError::BadSignature`] on failure).
    pub fn verify(
        &self,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), SignatureError> {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| SignatureError::BadSignature)
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519PublicKey({})", hex_short(self.as_bytes()))
    }
}

/// An Ed25519 signing key; wiped on drop, never printed.
#[derive(Clone)]
pub struct Ed25519KeyPair(SigningKey);

impl Ed25519KeyPair {
    /// Builds the key pair from its 32-byte RFC 8032 seed.
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// Generates a fresh key pair from `rng`.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, RandomError> {
        let seed = random_key(rng)?;
        Ok(Self::from_seed(&seed))
    }

    /// The 32-byte seed, for pickling.
    #[must_use]
    pub(crate) fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key.
    #[must_use]
    pub fn public_key(&self) -> Ed25519PublicKey {
        Ed25519PublicKey(self.0.verifying_key())
    }

    /// Deterministic RFC 8032 signature.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for Ed25519KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519KeyPair")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// AEAD

/// ChaCha20-Poly1305 (RFC 8439) in place: encrypts `buf` and returns the tag.
pub fn chacha20poly1305_seal(
    key: &[u8; 32],
    nonce: &[u8; 12],
    ad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; TAG_LEN], SealError> {
    let len = buf.len();
    let cipher = ChaCha20Poly1305::new(key.into());
    let tag = cipher
        .encrypt_inout_detached(nonce.into(), ad, buf.into())
        .map_err(|_| SealError::TooLarge {
            len,
            max: AEAD_MAX_LEN,
        })?;
    Ok(tag.into())
}

/// ChaCha20-Poly1305 (RFC 8439) in place: checks `tag`, then decrypts `buf`.
///
/// On failure `buf` is left as it was given (ciphertext), never partially decrypted.
pub fn chacha20poly1305_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    ad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), OpenError> {
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_inout_detached(nonce.into(), ad, buf.into(), tag.into())
        .map_err(|_| OpenError::DecryptionFailed)
}

/// XChaCha20-Poly1305 in place: encrypts `buf` and returns the tag.
pub fn xchacha20poly1305_seal(
    key: &[u8; 32],
    nonce: &[u8; 24],
    ad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; TAG_LEN], SealError> {
    let len = buf.len();
    let cipher = XChaCha20Poly1305::new(key.into());
    let tag = cipher
        .encrypt_inout_detached(nonce.into(), ad, buf.into())
        .map_err(|_| SealError::TooLarge {
            len,
            max: AEAD_MAX_LEN,
        })?;
    Ok(tag.into())
}

/// XChaCha20-Poly1305 from one buffer to another: encrypts `input` into `output` (which must
/// have the same length) and returns the tag. Saves the copy an in-place seal needs when the
/// plaintext must stay intact.
pub fn xchacha20poly1305_seal_to(
    key: &[u8; 32],
    nonce: &[u8; 24],
    ad: &[u8],
    input: &[u8],
    output: &mut [u8],
) -> Result<[u8; TAG_LEN], SealToError> {
    let len = input.len();
    let out_len = output.len();
    let buf = chacha20poly1305::aead::inout::InOutBuf::new(input, output).map_err(|_| {
        SealToError::LengthOutOfRange {
            len: out_len,
            max: len,
        }
    })?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let tag = cipher
        .encrypt_inout_detached(nonce.into(), ad, buf)
        .map_err(|_| SealToError::TooLarge {
            len,
            max: AEAD_MAX_LEN,
        })?;
    Ok(tag.into())
}

/// XChaCha20-Poly1305 in place: checks `tag`, then decrypts `buf`.
pub fn xchacha20poly1305_open(
    key: &[u8; 32],
    nonce: &[u8; 24],
    ad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), OpenError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_inout_detached(nonce.into(), ad, buf.into(), tag.into())
        .map_err(|_| OpenError::DecryptionFailed)
}

/// Reported as the limit when sealing fails; the AEAD crate enforces RFC 8439 section 2.8's
/// per-nonce bound (2^38 - 64 bytes) itself, which no caller here comes near.
const AEAD_MAX_LEN: usize = usize::MAX;

// ---------------------------------------------------------------------------------------------
// Hashes and KDFs

type HmacSha256 = Hmac<Sha256>;
/// HMAC-SHA256 that keeps its keyed inner state so that `finalize_reset` can start over
/// under the same key: several outputs from one state, one state to wipe.
type HmacSha256Reset = hmac::HmacReset<Sha256>;

fn keyed_hmac_reset(key: &[u8]) -> HmacSha256Reset {
    // HMAC accepts keys of any length (RFC 2104 section 2), so this cannot fail.
    match <HmacSha256Reset as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => <HmacSha256Reset as KeyInit>::new(&Default::default()),
    }
}

/// SHA-256.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// HMAC-SHA256 (RFC 2104) of `data` under `key`.
#[must_use]
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = keyed_hmac(key);
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// An HMAC-SHA256 instance keyed with `key`.
fn keyed_hmac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (RFC 2104 section 2), so this cannot fail.
    match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => <HmacSha256 as KeyInit>::new(&Default::default()),
    }
}

/// HKDF-SHA256 extract-and-expand (RFC 5869) into `okm` (at most 255 × 32 bytes).
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], okm: &mut [u8]) -> Result<(), KdfError> {
    hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, okm)
        .map_err(|_| KdfError::KdfLength)
}

/// HKDF-Expand (RFC 5869 section 2.3) from a pseudorandom key that is already uniform.
pub fn hkdf_sha256_expand(prk: &[u8; 32], info: &[u8], okm: &mut [u8]) -> Result<(), KdfError> {
    hkdf::Hkdf::<Sha256>::from_prk(prk)
        .map_err(|_| KdfError::KdfLength)?
        .expand(info, okm)
        .map_err(|_| KdfError::KdfLength)
}

/// The most bytes HKDF-SHA256 can expand to (RFC 5869 section 2.3: 255 × HashLen).
const HKDF_MAX_LEN: usize = 255 * 32;

/// [`hkdf_sha256`] into a fixed-size array, for the protocol's own derivations: `N` is checked
/// against the RFC 5869 limit at compile time, so the expansion cannot fail and the callers'
/// errors need no variant for it.
pub(crate) fn hkdf_sha256_array<const N: usize>(
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
) -> Zeroizing<[u8; N]> {
    const { assert!(N <= HKDF_MAX_LEN) };
    let mut okm = Zeroizing::new([0u8; N]);
    // Only an output over HKDF_MAX_LEN fails, which the assertion above rules out.
    let _cannot_fail = hkdf::Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, okm.as_mut_slice());
    okm
}

/// [`hkdf_sha256_expand`] into a fixed-size array (see [`hkdf_sha256_array`]): a 32-byte PRK
/// is always long enough and `N` is checked at compile time, so it cannot fail.
///
/// RFC 5869 section 2.3 over one keyed HMAC state, reset between blocks (`T(i) =
/// HMAC(PRK, T(i-1) || info || i)`), rather than the `hkdf` crate's keyed state plus a copy:
/// this runs for every message, and every HMAC state dropped is wiped byte by byte (the
/// `zeroize` feature). The unit test below checks it against the `hkdf` crate.
pub(crate) fn hkdf_sha256_expand_array<const N: usize>(
    prk: &[u8; 32],
    info: &[u8],
) -> Zeroizing<[u8; N]> {
    const { assert!(N <= HKDF_MAX_LEN) };
    let mut okm = Zeroizing::new([0u8; N]);
    let mut mac = keyed_hmac_reset(prk);
    let mut previous = Zeroizing::new([0u8; 32]);
    for (counter, chunk) in (1..=u8::MAX).zip(okm.chunks_mut(32)) {
        if counter > 1 {
            mac.update(previous.as_slice());
        }
        mac.update(info);
        mac.update(&[counter]);
        previous.copy_from_slice(&mac.finalize_reset().into_bytes());
        for (out, byte) in chunk.iter_mut().zip(previous.iter()) {
            *out = *byte;
        }
    }
    okm
}

/// Two HMAC-SHA256 outputs under one key, `(HMAC(key, first), HMAC(key, second))`, from one
/// keyed state (reset in between, no copy to wipe): the Double Ratchet's `KDF_CK`.
pub(crate) fn hmac_sha256_pair(
    key: &[u8],
    first: &[u8],
    second: &[u8],
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut mac = keyed_hmac_reset(key);
    mac.update(first);
    let a = Zeroizing::new(mac.finalize_reset().into_bytes().into());
    mac.update(second);
    let b = Zeroizing::new(mac.finalize().into_bytes().into());
    (a, b)
}

/// First bytes of a public value in hex, for Debug output.
pub(crate) fn hex_short(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        + "…"
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn expand_matches_the_hkdf_crate<const N: usize>(prk: &[u8; 32], info: &[u8]) {
        let ours = hkdf_sha256_expand_array::<N>(prk, info);
        let mut theirs = vec![0u8; N];
        hkdf::Hkdf::<Sha256>::from_prk(prk)
            .unwrap()
            .expand(info, &mut theirs)
            .unwrap();
        assert_eq!(ours.as_slice(), theirs.as_slice(), "N = {N}");
    }

    #[test]
    fn one_state_hkdf_expand_matches_the_hkdf_crate() {
        for (prk, info) in [
            ([0u8; 32], &b""[..]),
            ([0xa5; 32], b"SecureChat v2 message keys"),
        ] {
            expand_matches_the_hkdf_crate::<1>(&prk, info);
            expand_matches_the_hkdf_crate::<31>(&prk, info);
            expand_matches_the_hkdf_crate::<32>(&prk, info);
            expand_matches_the_hkdf_crate::<33>(&prk, info);
            expand_matches_the_hkdf_crate::<44>(&prk, info);
            expand_matches_the_hkdf_crate::<64>(&prk, info);
            expand_matches_the_hkdf_crate::<100>(&prk, info);
            expand_matches_the_hkdf_crate::<HKDF_MAX_LEN>(&prk, info);
        }
    }

    #[test]
    fn hmac_pair_is_two_hmacs() {
        let key = [0x42u8; 32];
        let (a, b) = hmac_sha256_pair(&key, &[1], &[2]);
        assert_eq!(*a, *hmac_sha256(&key, &[1]));
        assert_eq!(*b, *hmac_sha256(&key, &[2]));
    }

    #[test]
    fn low_order_point_is_refused() {
        let secret = X25519Secret::from_bytes(&[7u8; 32]);
        let zero = X25519PublicKey::from_bytes([0u8; 32]);
        assert_eq!(
            secret.diffie_hellman(&zero),
            Err(AgreementError::NonContributory)
        );
    }

    #[test]
    fn aead_open_leaves_buffer_on_failure() {
        let key = [1u8; 32];
        let nonce = [2u8; 12];
        let mut buf = *b"hello world";
        let tag = chacha20poly1305_seal(&key, &nonce, b"ad", &mut buf).unwrap();
        let ct = buf;
        let mut bad = tag;
        bad[0] ^= 1;
        assert_eq!(
            chacha20poly1305_open(&key, &nonce, b"ad", &mut buf, &bad),
            Err(OpenError::DecryptionFailed)
        );
        assert_eq!(buf, ct);
        chacha20poly1305_open(&key, &nonce, b"ad", &mut buf, &tag).unwrap();
        assert_eq!(&buf, b"hello world");
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let secret = X25519Secret::from_bytes(&[0x42; 32]);
        let text = format!("{secret:?}");
        assert!(!text.contains("4242424242"));
        let pair = Ed25519KeyPair::from_seed(&[0x42; 32]);
        assert!(!format!("{pair:?}").contains("4242424242"));
    }
}
