//! The Double Ratchet (Perrin & Marlinspike, "The Double Ratchet Algorithm", 2016).
//!
//! - DH ratchet on X25519 (§3.5 `DHRatchet`); the sending half is done lazily at the next
//!   encryption, so decryption needs no randomness. The result is the same as the spec's.
//! - Root KDF (§5.2 `KDF_RK`): HKDF-SHA256 with the root key as salt, the DH output as input
//!   key material and `"SecureChat v2 ratchet root"` as info, 64 bytes → new root key, chain key.
//! - Chain KDF (§5.2 `KDF_CK`): message key = HMAC-SHA256(chain key, 0x01), next chain key =
//!   HMAC-SHA256(chain key, 0x02).
//! - Per-message AEAD (§5.2 `ENCRYPT`): HKDF-Expand(message key, `"SecureChat v2 message
//!   keys"`, 44) → ChaCha20-Poly1305 key (32) and nonce (12). Associated data = the session's
//!   32-byte X3DH AD digest || the 42-byte message header.
//! - Skipped message keys (§3.2, §3.5 `SkipMessageKeys`): at most [`MAX_SKIP_PER_CHAIN`] per
//!   message and per chain, at most [`MAX_SKIPPED_KEYS`] in total, oldest evicted first.
//!
//! Decryption is transactional: every change is computed on the side and applied only after
//! the AEAD tag verified, so a forged, corrupted or replayed message leaves the state intact.

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, GroupError, SessionError};
use crate::message::{MAX_PLAINTEXT_LEN, RATCHET_HEADER_LEN, RatchetMessage};
use crate::primitives::{
    TAG_LEN, X25519PublicKey, X25519Secret, chacha20poly1305_open, chacha20poly1305_seal,
    hkdf_sha256_array, hkdf_sha256_expand_array, hmac_sha256_pair,
};
use core::fmt;
use rand_core::TryCryptoRng;
use std::collections::VecDeque;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The most message keys one message may make a chain skip (the spec's `MAX_SKIP`). A message
/// further ahead is refused with [`SessionError::TooFarAhead`]; this bounds the work a single
/// (possibly forged) header can cause.
pub const MAX_SKIP_PER_CHAIN: u32 = 1000;
/// The most skipped message keys a session stores; when full, the oldest are evicted and their
/// messages can no longer be decrypted.
pub const MAX_SKIPPED_KEYS: usize = 2000;
/// How many earlier receiving ratchet keys are remembered, so that a replay on an old chain is
/// reported as [`SessionError::DuplicateMessage`] rather than a failed decryption.
pub const MAX_PREVIOUS_CHAINS: usize = 16;

pub(crate) const ROOT_KDF_INFO: &[u8] = b"SecureChat v2 ratchet root";
pub(crate) const MESSAGE_KDF_INFO: &[u8] = b"SecureChat v2 message keys";
const MESSAGE_KEY_SEED: &[u8] = &[0x01];
const CHAIN_KEY_SEED: &[u8] = &[0x02];
const AD_LEN: usize = 32 + RATCHET_HEADER_LEN;

/// A 32-byte ratchet secret (root, chain or message key), on the heap so that moving its
/// holder moves a pointer and leaves no copy of the key behind; wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct RatchetSecret(Box<[u8; 32]>);

impl RatchetSecret {
    /// Copies `key` into a zeroed heap buffer (no temporary copy on the stack: `Box::new(**key)`
    /// may build the array on the stack first); `key` itself is wiped when it drops.
    pub(crate) fn new(key: &Zeroizing<[u8; 32]>) -> Self {
        let mut heap = Box::new([0u8; 32]);
        heap.copy_from_slice(key.as_slice());
        Self(heap)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Overwrites the secret in place (the old value is gone; no new allocation).
    pub(crate) fn copy_from(&mut self, key: &[u8; 32]) {
        self.0.copy_from_slice(key);
    }
}

/// A symmetric-key ratchet chain (§2.2). Its key lives in one heap buffer for the chain's
/// whole life: steps are computed on the side ([`PendingChain`], on the stack) and
/// [`ChainKey::commit`] copies the result into that buffer, so the per-message path does not
/// allocate.
#[derive(Clone)]
pub(crate) struct ChainKey {
    key: RatchetSecret,
    index: u32,
}

/// A chain position computed on the side and not yet committed (transactional decryption
/// commits it only after the message authenticated). Wiped on drop.
pub(crate) struct PendingChain {
    key: Zeroizing<[u8; 32]>,
    index: u32,
}

/// Why a chain could not give the message key asked for; shared by pairwise and group
/// chains, which convert it into [`SessionError`] or [`GroupError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChainError {
    /// The chain counter reached its maximum.
    ChainExhausted,
    /// The index is behind the chain: its key was used or skipped already.
    DuplicateMessage,
    /// The index is more than [`MAX_SKIP_PER_CHAIN`] ahead.
    TooFarAhead { jump: u64, max: u64 },
}

impl From<ChainError> for SessionError {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::ChainExhausted => Self::ChainExhausted,
            ChainError::DuplicateMessage => Self::DuplicateMessage,
            ChainError::TooFarAhead { jump, max } => Self::TooFarAhead { jump, max },
        }
    }
}

impl From<ChainError> for GroupError {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::ChainExhausted => Self::ChainExhausted,
            ChainError::DuplicateMessage => Self::DuplicateMessage,
            ChainError::TooFarAhead { jump, max } => Self::TooFarAhead { jump, max },
        }
    }
}

/// `KDF_CK`: the message key at `index` and the chain position after it.
fn kdf_ck(chain_key: &[u8; 32], index: u32) -> Result<(MessageKey, PendingChain), ChainError> {
    let next_index = index.checked_add(1).ok_or(ChainError::ChainExhausted)?;
    let (message_key, next) = hmac_sha256_pair(chain_key, MESSAGE_KEY_SEED, CHAIN_KEY_SEED);
    Ok((
        MessageKey {
            key: message_key,
            index,
        },
        PendingChain {
            key: next,
            index: next_index,
        },
    ))
}

impl PendingChain {
    fn step(&self) -> Result<(MessageKey, PendingChain), ChainError> {
        kdf_ck(&self.key, self.index)
    }
}

impl ChainKey {
    pub(crate) fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self::at(key, 0)
    }

    /// The chain at `index` with chain key `key`.
    pub(crate) fn at(key: Zeroizing<[u8; 32]>, index: u32) -> Self {
        Self {
            key: RatchetSecret::new(&key),
            index,
        }
    }

    /// The chain key.
    pub(crate) fn key(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The index of the next message key.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// `KDF_CK`: the message key at `self.index` and the chain position after it (to
    /// [`ChainKey::commit`]).
    pub(crate) fn step(&self) -> Result<(MessageKey, PendingChain), ChainError> {
        kdf_ck(self.key.as_bytes(), self.index)
    }

    /// Moves the chain to `next` (computed from this chain by [`ChainKey::step`] or
    /// [`ChainKey::advance_to`]), in place.
    pub(crate) fn commit(&mut self, next: PendingChain) {
        self.key.copy_from(&next.key);
        self.index = next.index;
    }

    /// Advances to `target`: the keys skipped on the way, the key for `target` and the chain
    /// position after it. Refuses jumps beyond [`MAX_SKIP_PER_CHAIN`].
    pub(crate) fn advance_to(
        &self,
        target: u32,
    ) -> Result<(Vec<MessageKey>, MessageKey, PendingChain), ChainError> {
        let jump = target
            .checked_sub(self.index)
            .ok_or(ChainError::DuplicateMessage)?;
        if jump > MAX_SKIP_PER_CHAIN {
            return Err(ChainError::TooFarAhead {
                jump: u64::from(jump),
                max: u64::from(MAX_SKIP_PER_CHAIN),
            });
        }
        let mut skipped = Vec::new();
        let (mut key, mut chain) = self.step()?;
        while key.index() < target {
            skipped.push(key);
            (key, chain) = chain.step()?;
        }
        Ok((skipped, key, chain))
    }

    /// The keys from here up to (not including) `end`, for closing a chain (§3.5).
    fn keys_until(&self, end: u32) -> Result<Vec<MessageKey>, ChainError> {
        let Some(count) = end.checked_sub(self.index).filter(|&n| n > 0) else {
            return Ok(Vec::new());
        };
        if count > MAX_SKIP_PER_CHAIN {
            return Err(ChainError::TooFarAhead {
                jump: u64::from(count),
                max: u64::from(MAX_SKIP_PER_CHAIN),
            });
        }
        let (mut skipped, last, _) = self.advance_to(end - 1)?;
        skipped.push(last);
        Ok(skipped)
    }

    fn write(&self, out: &mut impl Writer) {
        out.put(self.key.as_bytes());
        out.put_u32(self.index);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = r.secret32()?;
        Ok(Self::at(key, r.u32()?))
    }
}

/// A single-use message key (§2.2). It lives for one encryption or decryption, on the stack
/// (wiped on drop); only a skipped key that is kept moves to the heap ([`MessageKey::into_parts`]).
pub(crate) struct MessageKey {
    key: Zeroizing<[u8; 32]>,
    index: u32,
}

impl MessageKey {
    /// A copy of a stored skipped key, to decrypt with.
    pub(crate) fn from_stored(key: &RatchetSecret, index: u32) -> Self {
        Self {
            key: Zeroizing::new(*key.as_bytes()),
            index,
        }
    }

    /// The index of the message this key is for.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// The index and the key, for storing a skipped key.
    pub(crate) fn into_parts(self) -> (u32, RatchetSecret) {
        (self.index, RatchetSecret::new(&self.key))
    }

    /// The AEAD key and nonce derived from the message key.
    pub(crate) fn aead_key_nonce(&self, info: &[u8]) -> (Zeroizing<[u8; 32]>, [u8; 12]) {
        let okm: Zeroizing<[u8; 44]> = hkdf_sha256_expand_array(&self.key, info);
        let mut key = Zeroizing::new([0u8; 32]);
        let mut nonce = [0u8; 12];
        let (k, n) = okm.split_at(32);
        key.copy_from_slice(k);
        nonce.copy_from_slice(n);
        (key, nonce)
    }
}

struct SkippedKey {
    ratchet_key: X25519PublicKey,
    index: u32,
    key: RatchetSecret,
}

#[derive(Clone)]
struct ReceivingChain {
    ratchet_key: X25519PublicKey,
    chain: ChainKey,
}

/// The Double Ratchet state of one side of a session.
pub(crate) struct DoubleRatchet {
    root_key: RatchetSecret,
    our_ratchet: X25519Secret,
    our_ratchet_public: X25519PublicKey,
    their_ratchet: Option<X25519PublicKey>,
    sending: Option<ChainKey>,
    previous_sending_length: u32,
    receiving: Option<ReceivingChain>,
    skipped: VecDeque<SkippedKey>,
    previous_receiving: VecDeque<X25519PublicKey>,
}

fn kdf_rk(root_key: &[u8; 32], dh_out: &[u8; 32]) -> (RatchetSecret, ChainKey) {
    let okm: Zeroizing<[u8; 64]> = hkdf_sha256_array(root_key, dh_out, ROOT_KDF_INFO);
    let mut root = Zeroizing::new([0u8; 32]);
    let mut chain = Zeroizing::new([0u8; 32]);
    let (r, c) = okm.split_at(32);
    root.copy_from_slice(r);
    chain.copy_from_slice(c);
    (RatchetSecret::new(&root), ChainKey::new(chain))
}

impl DoubleRatchet {
    /// `RatchetInitAlice` (§3.3, §7.1), with the initiator's X3DH ephemeral key EK_A as its first
    /// ratchet key pair: the first sending chain is `KDF_RK(SK, DH(EK_A, SPK_B))`, and that DH
    /// output is X3DH's DH3, already computed (`first_dh`). The security argument is in
    /// docs/protocol.md §9.2.
    pub(crate) fn initiator(
        shared_secret: &[u8; 32],
        their_signed_prekey: X25519PublicKey,
        ephemeral: X25519Secret,
        first_dh: &[u8; 32],
    ) -> Self {
        let (root_key, sending) = kdf_rk(shared_secret, first_dh);
        Self {
            root_key,
            our_ratchet_public: ephemeral.public_key(),
            our_ratchet: ephemeral,
            their_ratchet: Some(their_signed_prekey),
            sending: Some(sending),
            previous_sending_length: 0,
            receiving: None,
            skipped: VecDeque::new(),
            previous_receiving: VecDeque::new(),
        }
    }

    /// `RatchetInitBob` (§3.3) followed by the receiving half of the first DH-ratchet step:
    /// the responder's first ratchet key is its signed prekey and the initiator's is its X3DH
    /// base key, so the first receiving chain is `KDF_RK(SK, DH(SPK_B, EK_A))` with that DH
    /// output X3DH's DH3 (`first_dh`). The sending half happens at the first encryption.
    pub(crate) fn responder(
        shared_secret: &[u8; 32],
        signed_prekey: X25519Secret,
        their_base_key: X25519PublicKey,
        first_dh: &[u8; 32],
    ) -> Self {
        let (root_key, chain) = kdf_rk(shared_secret, first_dh);
        Self {
            root_key,
            our_ratchet_public: signed_prekey.public_key(),
            our_ratchet: signed_prekey,
            their_ratchet: Some(their_base_key),
            sending: None,
            previous_sending_length: 0,
            receiving: Some(ReceivingChain {
                ratchet_key: their_base_key,
                chain,
            }),
            skipped: VecDeque::new(),
            previous_receiving: VecDeque::new(),
        }
    }

    /// `RatchetEncrypt` (§3.4).
    pub(crate) fn encrypt<R: TryCryptoRng + ?Sized>(
        &mut self,
        session_ad: &[u8; 32],
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<RatchetMessage, SessionError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(SessionError::TooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        if self.sending.is_none() {
            // The sending half of the DH ratchet step (§3.5), deferred until now.
            let their = self.their_ratchet.ok_or(SessionError::CannotEncrypt)?;
            let fresh = X25519Secret::generate(rng)?;
            let dh = fresh.diffie_hellman(&their)?;
            let (root_key, chain) = kdf_rk(self.root_key.as_bytes(), &dh);
            self.root_key = root_key;
            self.our_ratchet_public = fresh.public_key();
            self.our_ratchet = fresh;
            self.sending = Some(chain);
        }
        let chain = self.sending.as_mut().ok_or(SessionError::CannotEncrypt)?;
        let (message_key, next) = chain.step()?;
        let (key, nonce) = message_key.aead_key_nonce(MESSAGE_KDF_INFO);

        let mut raw = Vec::with_capacity(RATCHET_HEADER_LEN + plaintext.len() + TAG_LEN);
        RatchetMessage::header_into(
            &mut raw,
            &self.our_ratchet_public,
            self.previous_sending_length,
            message_key.index(),
        );
        let ad = associated_data(session_ad, &raw)?;
        raw.extend_from_slice(plaintext);
        let body = raw
            .get_mut(RATCHET_HEADER_LEN..)
            .ok_or(SessionError::InvalidField)?;
        let tag = chacha20poly1305_seal(&key, &nonce, &ad, body)?;
        raw.extend_from_slice(&tag);
        chain.commit(next);
        Ok(RatchetMessage::from_sealed(
            raw,
            self.our_ratchet_public,
            self.previous_sending_length,
            message_key.index(),
        ))
    }

    /// `RatchetDecrypt` (§3.5), transactional.
    pub(crate) fn decrypt(
        &mut self,
        session_ad: &[u8; 32],
        message: &RatchetMessage,
    ) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        let ratchet_key = *message.ratchet_key();
        let index = message.index();

        // 1. The current receiving chain.
        if let Some(receiving) = &self.receiving
            && receiving.ratchet_key == ratchet_key
        {
            if index < receiving.chain.index() {
                return self.decrypt_skipped(session_ad, message);
            }
            let (skipped, key, next) = receiving.chain.advance_to(index)?;
            let plaintext = open(session_ad, message, &key)?;
            if let Some(receiving) = &mut self.receiving {
                receiving.chain.commit(next);
            }
            self.store_skipped(ratchet_key, skipped);
            return Ok(plaintext);
        }

        // 2. A key skipped earlier on an older chain, or a replay on one.
        if self.skipped.iter().any(|s| s.ratchet_key == ratchet_key) {
            return self.decrypt_skipped(session_ad, message);
        }
        if self.previous_receiving.contains(&ratchet_key) {
            return Err(SessionError::DuplicateMessage);
        }

        // 3. A new ratchet key: the receiving half of the DH ratchet step.
        let closing = match &self.receiving {
            Some(receiving) => receiving
                .chain
                .keys_until(message.previous_chain_length())?,
            None => Vec::new(),
        };
        let dh = self.our_ratchet.diffie_hellman(&ratchet_key)?;
        let (root_key, mut chain) = kdf_rk(self.root_key.as_bytes(), &dh);
        let (skipped, key, next) = chain.advance_to(index)?;
        let plaintext = open(session_ad, message, &key)?;

        // Authentic: commit.
        chain.commit(next);
        if let Some(old) = self.receiving.take() {
            self.store_skipped(old.ratchet_key, closing);
            self.previous_receiving.push_back(old.ratchet_key);
            while self.previous_receiving.len() > MAX_PREVIOUS_CHAINS {
                self.previous_receiving.pop_front();
            }
        }
        self.store_skipped(ratchet_key, skipped);
        self.root_key = root_key;
        self.receiving = Some(ReceivingChain { ratchet_key, chain });
        self.their_ratchet = Some(ratchet_key);
        if let Some(sending) = self.sending.take() {
            self.previous_sending_length = sending.index();
        }
        Ok(plaintext)
    }

    fn decrypt_skipped(
        &mut self,
        session_ad: &[u8; 32],
        message: &RatchetMessage,
    ) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        let position = self
            .skipped
            .iter()
            .position(|s| s.ratchet_key == *message.ratchet_key() && s.index == message.index())
            .ok_or(SessionError::DuplicateMessage)?;
        let entry = self
            .skipped
            .get(position)
            .ok_or(SessionError::DuplicateMessage)?;
        let key = MessageKey::from_stored(&entry.key, entry.index);
        let plaintext = open(session_ad, message, &key)?;
        self.skipped.remove(position);
        Ok(plaintext)
    }

    fn store_skipped(&mut self, ratchet_key: X25519PublicKey, keys: Vec<MessageKey>) {
        for key in keys {
            let (index, key) = key.into_parts();
            self.skipped.push_back(SkippedKey {
                ratchet_key,
                index,
                key,
            });
        }
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            self.skipped.pop_front();
        }
    }

    /// Whether the session has received anything yet.
    pub(crate) fn has_received(&self) -> bool {
        self.receiving.is_some()
    }

    pub(crate) fn skipped_len(&self) -> usize {
        self.skipped.len()
    }

    pub(crate) fn write(&self, out: &mut impl Writer) {
        out.put(self.root_key.as_bytes());
        out.put(self.our_ratchet.to_bytes().as_slice());
        write_option(out, self.their_ratchet.as_ref(), |out, k| {
            out.put(k.as_bytes())
        });
        write_option(out, self.sending.as_ref(), |out, c| c.write(out));
        out.put_u32(self.previous_sending_length);
        write_option(out, self.receiving.as_ref(), |out, r| {
            out.put(r.ratchet_key.as_bytes());
            r.chain.write(out);
        });
        out.put_count(self.skipped.len());
        for s in &self.skipped {
            out.put(s.ratchet_key.as_bytes());
            out.put_u32(s.index);
            out.put(s.key.as_bytes());
        }
        out.put_count(self.previous_receiving.len());
        for k in &self.previous_receiving {
            out.put(k.as_bytes());
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let root_key = RatchetSecret::new(&r.secret32()?);
        let our_ratchet = X25519Secret::from_bytes(&*r.secret32()?);
        let their_ratchet = read_option(r, |r| Ok(X25519PublicKey::from_bytes(r.array()?)))?;
        let sending = read_option(r, ChainKey::read)?;
        let previous_sending_length = r.u32()?;
        let receiving = read_option(r, |r| {
            Ok(ReceivingChain {
                ratchet_key: X25519PublicKey::from_bytes(r.array()?),
                chain: ChainKey::read(r)?,
            })
        })?;
        let n = r.count(MAX_SKIPPED_KEYS)?;
        let mut skipped = VecDeque::with_capacity(n);
        for _ in 0..n {
            skipped.push_back(SkippedKey {
                ratchet_key: X25519PublicKey::from_bytes(r.array()?),
                index: r.u32()?,
                key: RatchetSecret::new(&r.secret32()?),
            });
        }
        let n = r.count(MAX_PREVIOUS_CHAINS)?;
        let mut previous_receiving = VecDeque::with_capacity(n);
        for _ in 0..n {
            previous_receiving.push_back(X25519PublicKey::from_bytes(r.array()?));
        }
        Ok(Self {
            root_key,
            our_ratchet_public: our_ratchet.public_key(),
            our_ratchet,
            their_ratchet,
            sending,
            previous_sending_length,
            receiving,
            skipped,
            previous_receiving,
        })
    }
}

impl fmt::Debug for DoubleRatchet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoubleRatchet")
            .field("our_ratchet", &self.our_ratchet_public)
            .field("their_ratchet", &self.their_ratchet)
            .field("skipped_keys", &self.skipped.len())
            .finish_non_exhaustive()
    }
}

fn associated_data(session_ad: &[u8; 32], header: &[u8]) -> Result<[u8; AD_LEN], SessionError> {
    let mut ad = [0u8; AD_LEN];
    let (prefix, rest) = ad.split_at_mut(32);
    prefix.copy_from_slice(session_ad);
    if header.len() != rest.len() {
        return Err(SessionError::InvalidField);
    }
    rest.copy_from_slice(header);
    Ok(ad)
}

/// Authenticates and decrypts `message` with `key`; nothing is released on failure.
fn open(
    session_ad: &[u8; 32],
    message: &RatchetMessage,
    key: &MessageKey,
) -> Result<Zeroizing<Vec<u8>>, SessionError> {
    let (aead_key, nonce) = key.aead_key_nonce(MESSAGE_KDF_INFO);
    let ad = associated_data(session_ad, message.header())?;
    let body = message.sealed_body();
    let split = body
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(SessionError::DecryptionFailed)?;
    let (ciphertext, tag) = body.split_at(split);
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| SessionError::DecryptionFailed)?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    chacha20poly1305_open(&aead_key, &nonce, &ad, &mut plaintext, &tag)?;
    Ok(plaintext)
}

pub(crate) fn write_option<W: Writer, T>(
    out: &mut W,
    value: Option<&T>,
    f: impl FnOnce(&mut W, &T),
) {
    match value {
        Some(v) => {
            out.put_bool(true);
            f(out, v);
        }
        None => out.put_bool(false),
    }
}

pub(crate) fn read_option<'a, T>(
    r: &mut Reader<'a>,
    f: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    if r.bool()? { Ok(Some(f(r)?)) } else { Ok(None) }
}
