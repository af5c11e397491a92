//! Group messaging with sender keys (the Signal "Sender Keys" / Megolm idea).
//!
//! Every member device owns an [`OutboundGroupSession`]: a symmetric hash ratchet (the same
//! `KDF_CK` as the Double Ratchet) plus an Ed25519 group signing key. Its
//! [`SenderKeyDistribution`] is sent to every other member over the pairwise sessions; they
//! build an [`InboundGroupSession`] from it. A message is encrypted once, signed, and fanned out
//! by the relay. Receivers verify the signature first (strict Ed25519), then decrypt with the
//! same out-of-order and replay rules as pairwise sessions
//! ([`crate::ratchet::MAX_SKIP_PER_CHAIN`], [`crate::ratchet::MAX_SKIPPED_KEYS`]).
//!
//! A distribution names its **origin**: the room id, the sender's Ed25519 identity key and the
//! sender's device id, and is signed by the group signing key over every field, so nobody but
//! its sender can relabel it. A receiver accepts it only for that room and device, and only
//! from the pairwise [`Session`] whose peer has that identity key; a group signing key already
//! registered to another member, or one that was retired, is refused. Every group message
//! signature covers the origin too, so a relay that relabels a message's sender or room makes
//! it fail verification.
//!
//! [`GroupSession`] keeps one room's state: our sender chain and the members' chains. Removing
//! a member drops its chains and rotates ours ([`GroupSession::remove_member`]); every other
//! member does the same, so the removed device can read nothing sent afterwards.
//!
//! ```text
//! origin                = u32 len || room id || sender identity key (32) || u32 len || device id
//! GroupMessage          = version (0x01) || type (0x03) || chain id (u32) || iteration (u32)
//!                         || ciphertext || tag (16) || signature (64)
//! SenderKeyDistribution = version (0x01) || type (0x04) || origin || chain id (u32)
//!                         || iteration (u32) || chain key (32) || signing key (32)
//!                         || signature (64)
//! ```
//! Per-message AEAD: ChaCha20-Poly1305 with key and nonce = HKDF-Expand(message key,
//! `"SecureChat v2 group message keys"`, 44); associated data = the 10-byte header. The message
//! signature covers `"SecureChat v2 group message" || origin || header || ciphertext || tag`;
//! the distribution signature covers `"SecureChat v2 sender key distribution" ||` every byte of
//! the distribution before the signature. Both are made with the group signing key.

use crate::codec::{Reader, Writer};
use crate::context::SignatureContext;
use crate::error::{DecodeError, GroupError, PickleError, RandomError};
use crate::identity::{PublicIdentity, check_version};
use crate::message::{MAX_PLAINTEXT_LEN, MESSAGE_VERSION};
use crate::pickle::{self, PickleId, PickleKey, PickleKind, PickleState, SealedPickle};
use crate::primitives::{
    Ed25519KeyPair, Ed25519PublicKey, OsRng, SIGNATURE_LEN, TAG_LEN, chacha20poly1305_open,
    chacha20poly1305_seal, fill_random, random_key,
};
use crate::ratchet::{ChainKey, MAX_SKIPPED_KEYS, MessageKey, RatchetSecret};
use crate::session::Session;
use core::fmt;
use rand_core::TryCryptoRng;
use std::collections::{BTreeMap, VecDeque};
use zeroize::Zeroizing;

/// Type byte of a [`GroupMessage`].
pub const TYPE_GROUP_MESSAGE: u8 = 3;
/// Type byte of a [`SenderKeyDistribution`].
pub const TYPE_SENDER_KEY_DISTRIBUTION: u8 = 4;
/// Length of a group message header.
pub const GROUP_HEADER_LEN: usize = 2 + 4 + 4;
/// Longest room id (bytes of UTF-8).
pub const MAX_ROOM_ID_LEN: usize = 256;
/// Longest device id (bytes of UTF-8); a [`GroupSession`] names its members by device id.
pub const MAX_DEVICE_ID_LEN: usize = 256;
/// Encoded length of a [`SenderKeyDistribution`] with an empty room id and device id; add the
/// lengths of the two ids.
pub const DISTRIBUTION_MIN_LEN: usize = 2 + 4 + 32 + 4 + 4 + 4 + 32 + 32 + SIGNATURE_LEN;
/// Longest encoded [`SenderKeyDistribution`].
pub const DISTRIBUTION_MAX_LEN: usize = DISTRIBUTION_MIN_LEN + MAX_ROOM_ID_LEN + MAX_DEVICE_ID_LEN;
/// Most member devices a [`GroupSession`] tracks.
pub const MAX_GROUP_MEMBERS: usize = 10_000;
/// Sender chains kept per member: the current one and the one before a rotation, for
/// messages still in flight.
pub const MAX_CHAINS_PER_MEMBER: usize = 2;
/// Group signing keys of dropped chains (evicted, or of removed members) a [`GroupSession`]
/// remembers, so their distributions cannot be added again; the oldest is forgotten first.
pub const MAX_RETIRED_CHAINS: usize = 2 * MAX_GROUP_MEMBERS;

pub(crate) const GROUP_KDF_INFO: &[u8] = b"SecureChat v2 group message keys";

/// Who sends on a chain, and in which room: bound into distributions and message signatures.
#[derive(Clone, PartialEq, Eq)]
struct Origin {
    room_id: String,
    identity: Ed25519PublicKey,
    device_id: String,
}

impl Origin {
    fn new(room_id: &str, device_id: &str, identity: &PublicIdentity) -> Result<Self, GroupError> {
        check_len(room_id, MAX_ROOM_ID_LEN)?;
        check_len(device_id, MAX_DEVICE_ID_LEN)?;
        Ok(Self {
            room_id: room_id.to_owned(),
            identity: *identity.signing_key(),
            device_id: device_id.to_owned(),
        })
    }

    fn write(&self, out: &mut impl Writer) {
        out.put_var_bytes(self.room_id.as_bytes());
        out.put(self.identity.as_bytes());
        out.put_var_bytes(self.device_id.as_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let room_id = read_str(r, MAX_ROOM_ID_LEN)?;
        let identity = Ed25519PublicKey::from_bytes(&r.array()?)?;
        let device_id = read_str(r, MAX_DEVICE_ID_LEN)?;
        Ok(Self {
            room_id,
            identity,
            device_id,
        })
    }

    /// The receiver's checks: right room, the device the caller expects, and the identity of
    /// the pairwise session the distribution arrived over.
    fn check(
        &self,
        room_id: &str,
        sender_device_id: &str,
        from: &Session,
    ) -> Result<(), GroupError> {
        if self.room_id != room_id {
            return Err(GroupError::DistributionRoomMismatch);
        }
        if self.device_id != sender_device_id {
            return Err(GroupError::DistributionDeviceMismatch);
        }
        if self.identity != *from.remote_identity().signing_key() {
            return Err(GroupError::DistributionIdentityMismatch);
        }
        Ok(())
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Origin")
            .field("room_id", &self.room_id)
            .field("identity", &self.identity)
            .field("device_id", &self.device_id)
            .finish()
    }
}

fn check_len(id: &str, max: usize) -> Result<(), GroupError> {
    if id.len() > max {
        return Err(GroupError::TooLarge { len: id.len(), max });
    }
    Ok(())
}

fn read_str(r: &mut Reader<'_>, max: usize) -> Result<String, DecodeError> {
    core::str::from_utf8(r.var_bytes(max)?)
        .map(str::to_owned)
        .map_err(|_| DecodeError::InvalidField)
}

/// An encrypted, signed group message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupMessage {
    chain_id: u32,
    iteration: u32,
    raw: Vec<u8>,
    /// The last [`SIGNATURE_LEN`] bytes of `raw`, split off once when the message is made.
    signature: [u8; SIGNATURE_LEN],
}

impl GroupMessage {
    /// The sender chain that encrypted it.
    #[must_use]
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }
    /// Its index in the sender chain.
    #[must_use]
    pub fn iteration(&self) -> u32 {
        self.iteration
    }
    /// The encoded message.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }
    /// Encodes the message.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        self.raw.clone()
    }

    /// Decodes a group message, checking version, type and every length.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        check_version(r.u8()?, MESSAGE_VERSION)?;
        let kind = r.u8()?;
        if kind != TYPE_GROUP_MESSAGE {
            return Err(DecodeError::UnknownMessageType(kind));
        }
        let chain_id = r.u32()?;
        let iteration = r.u32()?;
        let body = r.remaining();
        let min = TAG_LEN + SIGNATURE_LEN;
        if body < min {
            return Err(DecodeError::Truncated {
                needed: min,
                remaining: body,
            });
        }
        if body > MAX_PLAINTEXT_LEN + min {
            return Err(DecodeError::LengthOutOfRange {
                len: body,
                max: MAX_PLAINTEXT_LEN + min,
            });
        }
        Ok(Self {
            chain_id,
            iteration,
            signature: signature_of(bytes)?,
            raw: bytes.to_vec(),
        })
    }

    fn signed_part(&self) -> &[u8] {
        self.raw
            .get(..self.raw.len().saturating_sub(SIGNATURE_LEN))
            .unwrap_or(&[])
    }
}

/// The signature at the end of an encoded group message (already checked to be long enough).
fn signature_of(raw: &[u8]) -> Result<[u8; SIGNATURE_LEN], DecodeError> {
    let start = raw.len().saturating_sub(SIGNATURE_LEN);
    raw.get(start..)
        .and_then(|s| s.try_into().ok())
        .ok_or(DecodeError::Truncated {
            needed: SIGNATURE_LEN,
            remaining: raw.len(),
        })
}

/// What a group message signature covers: the context, the sender's origin (not on the wire:
/// the receiver knows it from the distribution), then the message up to the signature.
fn message_signed_bytes(origin: &Origin, signed_part: &[u8]) -> Vec<u8> {
    let mut origin_bytes =
        Vec::with_capacity(4 + origin.room_id.len() + 32 + 4 + origin.device_id.len());
    origin.write(&mut origin_bytes);
    SignatureContext::GroupMessage.message(&[&origin_bytes, signed_part])
}

/// The secret a member shares (over pairwise sessions) so others can read its group messages.
///
/// Signed by its group signing key over every field; [`SenderKeyDistribution::decode`]
/// verifies the signature, so every value of this type is as its sender made it.
pub struct SenderKeyDistribution {
    origin: Origin,
    chain_id: u32,
    iteration: u32,
    chain_key: Zeroizing<[u8; 32]>,
    signing_key: Ed25519PublicKey,
    signature: [u8; SIGNATURE_LEN],
}

impl SenderKeyDistribution {
    /// The room it belongs to.
    #[must_use]
    pub fn room_id(&self) -> &str {
        &self.origin.room_id
    }
    /// The sender's Ed25519 identity key.
    #[must_use]
    pub fn sender_identity(&self) -> &Ed25519PublicKey {
        &self.origin.identity
    }
    /// The sender's device id.
    #[must_use]
    pub fn device_id(&self) -> &str {
        &self.origin.device_id
    }
    /// The sender chain it describes.
    #[must_use]
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }
    /// The first iteration it can decrypt.
    #[must_use]
    pub fn iteration(&self) -> u32 {
        self.iteration
    }
    /// The sender's group signing key.
    #[must_use]
    pub fn signing_key(&self) -> &Ed25519PublicKey {
        &self.signing_key
    }

    /// Everything before the signature (secret: holds the chain key).
    fn body(
        origin: &Origin,
        chain_id: u32,
        iteration: u32,
        chain_key: &[u8; 32],
        signing_key: &Ed25519PublicKey,
    ) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            DISTRIBUTION_MIN_LEN + origin.room_id.len() + origin.device_id.len(),
        ));
        out.put_u8(MESSAGE_VERSION);
        out.put_u8(TYPE_SENDER_KEY_DISTRIBUTION);
        origin.write(&mut out);
        out.put_u32(chain_id);
        out.put_u32(iteration);
        out.put(chain_key);
        out.put(signing_key.as_bytes());
        out
    }

    /// `"SecureChat v2 sender key distribution" || body` (secret: the body holds the chain key;
    /// the buffer is allocated at its final size, so no unwiped copy is left behind).
    fn signed_bytes(body: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(SignatureContext::SenderKeyDistribution.message(&[body]))
    }

    /// Encodes the distribution (secret: send it only inside a pairwise session).
    #[must_use]
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Self::body(
            &self.origin,
            self.chain_id,
            self.iteration,
            &self.chain_key,
            &self.signing_key,
        );
        out.put(&self.signature);
        out
    }

    /// Decodes a distribution and verifies its signature (strict; [`DecodeError::BadSignature`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        check_version(r.u8()?, MESSAGE_VERSION)?;
        let kind = r.u8()?;
        if kind != TYPE_SENDER_KEY_DISTRIBUTION {
            return Err(DecodeError::UnknownMessageType(kind));
        }
        let origin = Origin::read(&mut r)?;
        let chain_id = r.u32()?;
        let iteration = r.u32()?;
        let chain_key = r.secret32()?;
        let signing_key = Ed25519PublicKey::from_bytes(&r.array()?)?;
        let signature = r.array()?;
        r.finish()?;
        let body_len = bytes.len().saturating_sub(SIGNATURE_LEN);
        let body = bytes.get(..body_len).ok_or(DecodeError::Truncated {
            needed: SIGNATURE_LEN,
            remaining: bytes.len(),
        })?;
        signing_key.verify(&Self::signed_bytes(body), &signature)?;
        Ok(Self {
            origin,
            chain_id,
            iteration,
            chain_key,
            signing_key,
            signature,
        })
    }
}

impl fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyDistribution")
            .field("origin", &self.origin)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.iteration)
            .field("signing_key", &self.signing_key)
            .finish_non_exhaustive()
    }
}

/// Our sending chain in a group (without pickle identity: also embedded in a [`GroupSession`]).
struct SenderChain {
    origin: Origin,
    chain_id: u32,
    chain: ChainKey,
    signing: Ed25519KeyPair,
}

impl SenderChain {
    fn with_origin<R: TryCryptoRng + ?Sized>(
        origin: Origin,
        rng: &mut R,
    ) -> Result<Self, RandomError> {
        let mut id = [0u8; 4];
        fill_random(rng, &mut id)?;
        Ok(Self {
            origin,
            chain_id: u32::from_be_bytes(id),
            chain: ChainKey::new(random_key(rng)?),
            signing: Ed25519KeyPair::generate(rng)?,
        })
    }

    /// The room id.
    #[must_use]
    fn room_id(&self) -> &str {
        &self.origin.room_id
    }

    /// Our device id.
    #[must_use]
    fn device_id(&self) -> &str {
        &self.origin.device_id
    }

    /// The chain id.
    #[must_use]
    fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The next message's iteration.
    #[must_use]
    fn iteration(&self) -> u32 {
        self.chain.index()
    }

    /// The signed distribution at the current iteration: its receivers can read messages from
    /// now on, not earlier ones.
    #[must_use]
    fn distribution(&self) -> SenderKeyDistribution {
        let signing_key = self.signing.public_key();
        let body = SenderKeyDistribution::body(
            &self.origin,
            self.chain_id,
            self.chain.index(),
            self.chain.key(),
            &signing_key,
        );
        let signature = self
            .signing
            .sign(&SenderKeyDistribution::signed_bytes(&body));
        SenderKeyDistribution {
            origin: self.origin.clone(),
            chain_id: self.chain_id,
            iteration: self.chain.index(),
            chain_key: Zeroizing::new(*self.chain.key()),
            signing_key,
            signature,
        }
    }

    /// Encrypts once for every member and signs.
    fn encrypt(&mut self, plaintext: &[u8]) -> Result<GroupMessage, GroupError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(GroupError::TooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        let (message_key, next) = self.chain.step()?;
        let (key, nonce) = message_key.aead_key_nonce(GROUP_KDF_INFO);
        let mut raw =
            Vec::with_capacity(GROUP_HEADER_LEN + plaintext.len() + TAG_LEN + SIGNATURE_LEN);
        raw.put_u8(MESSAGE_VERSION);
        raw.put_u8(TYPE_GROUP_MESSAGE);
        raw.put_u32(self.chain_id);
        raw.put_u32(message_key.index());
        raw.extend_from_slice(plaintext);
        let (header, body) = raw.split_at_mut(GROUP_HEADER_LEN);
        let tag = chacha20poly1305_seal(&key, &nonce, header, body)?;
        raw.extend_from_slice(&tag);
        let signature = self.signing.sign(&message_signed_bytes(&self.origin, &raw));
        raw.extend_from_slice(&signature);
        self.chain.commit(next);
        Ok(GroupMessage {
            chain_id: self.chain_id,
            iteration: message_key.index(),
            raw,
            signature,
        })
    }

    fn write(&self, out: &mut impl Writer) {
        self.origin.write(out);
        out.put_u32(self.chain_id);
        out.put(self.chain.key());
        out.put_u32(self.chain.index());
        out.put(self.signing.to_seed().as_slice());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let origin = Origin::read(r)?;
        let chain_id = r.u32()?;
        let key = r.secret32()?;
        let index = r.u32()?;
        let signing = Ed25519KeyPair::from_seed(&*r.secret32()?);
        Ok(Self {
            origin,
            chain_id,
            chain: ChainKey::at(key, index),
            signing,
        })
    }
}

impl fmt::Debug for SenderChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderChain")
            .field("origin", &self.origin)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain.index())
            .finish_non_exhaustive()
    }
}

/// Our sending chain in a group, as a picklable object of its own.
pub struct OutboundGroupSession {
    chain: SenderChain,
    pickle: PickleState,
}

impl OutboundGroupSession {
    /// A fresh sender chain (random chain id, chain key and signing key) of device `device_id`
    /// with identity `identity` in room `room_id` (ids of at most [`MAX_ROOM_ID_LEN`] and
    /// [`MAX_DEVICE_ID_LEN`] bytes, else [`GroupError::TooLarge`]).
    pub fn new(
        room_id: &str,
        device_id: &str,
        identity: &PublicIdentity,
    ) -> Result<Self, GroupError> {
        Self::new_with_rng(room_id, device_id, identity, &mut OsRng)
    }

    /// [`OutboundGroupSession::new`] with the caller's randomness (chain, then pickle id).
    pub fn new_with_rng<R: TryCryptoRng + ?Sized>(
        room_id: &str,
        device_id: &str,
        identity: &PublicIdentity,
        rng: &mut R,
    ) -> Result<Self, GroupError> {
        let chain = SenderChain::with_origin(Origin::new(room_id, device_id, identity)?, rng)?;
        Ok(Self {
            chain,
            pickle: PickleState::generate(rng)?,
        })
    }

    /// The room id.
    #[must_use]
    pub fn room_id(&self) -> &str {
        self.chain.room_id()
    }

    /// Our device id.
    #[must_use]
    pub fn device_id(&self) -> &str {
        self.chain.device_id()
    }

    /// The chain id.
    #[must_use]
    pub fn chain_id(&self) -> u32 {
        self.chain.chain_id()
    }

    /// The next message's iteration.
    #[must_use]
    pub fn iteration(&self) -> u32 {
        self.chain.iteration()
    }

    /// The signed distribution at the current iteration: its receivers can read messages from
    /// now on, not earlier ones.
    #[must_use]
    pub fn distribution(&self) -> SenderKeyDistribution {
        self.chain.distribution()
    }

    /// Encrypts once for every member and signs.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<GroupMessage, GroupError> {
        self.chain.encrypt(plaintext)
    }

    /// This session's pickle identity: store it with the latest pickle counter and pass both
    /// to [`OutboundGroupSession::from_pickle`].
    #[must_use]
    pub fn pickle_id(&self) -> PickleId {
        self.pickle.id()
    }

    /// The counter of the latest pickle (0 if never pickled).
    #[must_use]
    pub fn pickle_counter(&self) -> u64 {
        self.pickle.counter()
    }

    /// Seals the session under `key` with the next pickle counter; persist it before a message
    /// it encrypted leaves the device (see [`crate::pickle`], "Security notes").
    pub fn pickle(&mut self, key: &PickleKey) -> Result<SealedPickle, PickleError> {
        self.pickle_with_rng(key, &mut OsRng)
    }

    /// [`OutboundGroupSession::pickle`] with the caller's randomness for the sealing nonce.
    pub fn pickle_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        key: &PickleKey,
        rng: &mut R,
    ) -> Result<SealedPickle, PickleError> {
        let mut out = Zeroizing::new(Vec::with_capacity(128));
        self.chain.write(&mut out);
        pickle::seal(PickleKind::OutboundGroup, &mut self.pickle, &out, key, rng)
    }

    /// Opens a sealed outbound group session of the object `expected_id` with a counter of at
    /// least `latest_counter` ([`PickleError::PickleIdMismatch`],
    /// [`PickleError::PickleRolledBack`]).
    pub fn from_pickle(
        sealed: &[u8],
        key: &PickleKey,
        expected_id: &PickleId,
        latest_counter: u64,
    ) -> Result<Self, PickleError> {
        pickle::open_with(
            PickleKind::OutboundGroup,
            sealed,
            key,
            expected_id,
            latest_counter,
            |r, pickle| {
                Ok(Self {
                    chain: SenderChain::read(r)?,
                    pickle,
                })
            },
        )
    }
}

impl fmt::Debug for OutboundGroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundGroupSession")
            .field("chain", &self.chain)
            .field("pickle_id", &self.pickle.id())
            .field("pickle_counter", &self.pickle.counter())
            .finish_non_exhaustive()
    }
}

/// Another member's sender chain, as received in its distribution (without pickle identity:
/// also embedded in a [`GroupSession`]).
struct ReceiverChain {
    origin: Origin,
    chain_id: u32,
    first_iteration: u32,
    signing_key: Ed25519PublicKey,
    chain: ChainKey,
    skipped: VecDeque<(u32, RatchetSecret)>,
}

impl ReceiverChain {
    fn from_checked(distribution: &SenderKeyDistribution) -> Self {
        Self {
            origin: distribution.origin.clone(),
            chain_id: distribution.chain_id,
            first_iteration: distribution.iteration,
            signing_key: distribution.signing_key,
            chain: ChainKey::at(distribution.chain_key.clone(), distribution.iteration),
            skipped: VecDeque::new(),
        }
    }

    /// The room id.
    #[must_use]
    fn room_id(&self) -> &str {
        &self.origin.room_id
    }

    /// The sender's device id.
    #[must_use]
    fn sender_device_id(&self) -> &str {
        &self.origin.device_id
    }

    /// The sender's Ed25519 identity key.
    #[must_use]
    fn sender_identity(&self) -> &Ed25519PublicKey {
        &self.origin.identity
    }

    /// The chain id.
    #[must_use]
    fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The sender's group signing key.
    #[must_use]
    fn signing_key(&self) -> &Ed25519PublicKey {
        &self.signing_key
    }

    /// Verifies and decrypts. Order of checks: chain id, signature, then keys; nothing changes
    /// unless the message authenticates.
    fn decrypt(&mut self, message: &GroupMessage) -> Result<Zeroizing<Vec<u8>>, GroupError> {
        if message.chain_id != self.chain_id {
            return Err(GroupError::UnknownSenderChain(message.chain_id));
        }
        self.signing_key.verify(
            &message_signed_bytes(&self.origin, message.signed_part()),
            &message.signature,
        )?;
        let iteration = message.iteration;
        if iteration < self.first_iteration {
            return Err(GroupError::MessageKeyEvicted);
        }
        if iteration < self.chain.index() {
            let position = self
                .skipped
                .iter()
                .position(|(i, _)| *i == iteration)
                .ok_or(GroupError::DuplicateMessage)?;
            let (index, key) = self
                .skipped
                .get(position)
                .ok_or(GroupError::DuplicateMessage)?;
            let key = MessageKey::from_stored(key, *index);
            let plaintext = open(message, &key)?;
            self.skipped.remove(position);
            return Ok(plaintext);
        }
        let (skipped, key, next) = self.chain.advance_to(iteration)?;
        let plaintext = open(message, &key)?;
        self.chain.commit(next);
        for k in skipped {
            self.skipped.push_back(k.into_parts());
        }
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            self.skipped.pop_front();
        }
        Ok(plaintext)
    }

    fn write(&self, out: &mut impl Writer) {
        self.origin.write(out);
        out.put_u32(self.chain_id);
        out.put_u32(self.first_iteration);
        out.put(self.signing_key.as_bytes());
        out.put(self.chain.key());
        out.put_u32(self.chain.index());
        out.put_count(self.skipped.len());
        for (index, key) in &self.skipped {
            out.put_u32(*index);
            out.put(key.as_bytes());
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let origin = Origin::read(r)?;
        let chain_id = r.u32()?;
        let first_iteration = r.u32()?;
        let signing_key = Ed25519PublicKey::from_bytes(&r.array()?)?;
        let key = r.secret32()?;
        let index = r.u32()?;
        let n = r.count(MAX_SKIPPED_KEYS)?;
        let mut skipped = VecDeque::with_capacity(n);
        for _ in 0..n {
            skipped.push_back((r.u32()?, RatchetSecret::new(&r.secret32()?)));
        }
        Ok(Self {
            origin,
            chain_id,
            first_iteration,
            signing_key,
            chain: ChainKey::at(key, index),
            skipped,
        })
    }
}

impl fmt::Debug for ReceiverChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverChain")
            .field("origin", &self.origin)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain.index())
            .field("skipped_keys", &self.skipped.len())
            .finish_non_exhaustive()
    }
}

/// Another member's sender chain, as a picklable object of its own.
pub struct InboundGroupSession {
    chain: ReceiverChain,
    pickle: PickleState,
}

impl InboundGroupSession {
    /// Builds the receiving side from a distribution that arrived over the pairwise session
    /// `from`. Refused unless the distribution is for `room_id`
    /// ([`GroupError::DistributionRoomMismatch`]), names `sender_device_id`
    /// ([`GroupError::DistributionDeviceMismatch`]) and names the identity key of `from`'s peer
    /// ([`GroupError::DistributionIdentityMismatch`]). `sender_device_id` must be what the
    /// application knows of `from`'s peer, never read from the distribution itself.
    pub fn new(
        room_id: &str,
        sender_device_id: &str,
        from: &Session,
        distribution: &SenderKeyDistribution,
    ) -> Result<Self, GroupError> {
        Self::new_with_rng(room_id, sender_device_id, from, distribution, &mut OsRng)
    }

    /// [`InboundGroupSession::new`] with the caller's randomness (the pickle id).
    pub fn new_with_rng<R: TryCryptoRng + ?Sized>(
        room_id: &str,
        sender_device_id: &str,
        from: &Session,
        distribution: &SenderKeyDistribution,
        rng: &mut R,
    ) -> Result<Self, GroupError> {
        distribution.origin.check(room_id, sender_device_id, from)?;
        Ok(Self {
            chain: ReceiverChain::from_checked(distribution),
            pickle: PickleState::generate(rng)?,
        })
    }

    /// The room id.
    #[must_use]
    pub fn room_id(&self) -> &str {
        self.chain.room_id()
    }

    /// The sender's device id.
    #[must_use]
    pub fn sender_device_id(&self) -> &str {
        self.chain.sender_device_id()
    }

    /// The sender's Ed25519 identity key.
    #[must_use]
    pub fn sender_identity(&self) -> &Ed25519PublicKey {
        self.chain.sender_identity()
    }

    /// The chain id.
    #[must_use]
    pub fn chain_id(&self) -> u32 {
        self.chain.chain_id()
    }

    /// The sender's group signing key.
    #[must_use]
    pub fn signing_key(&self) -> &Ed25519PublicKey {
        self.chain.signing_key()
    }

    /// Verifies and decrypts. Order of checks: chain id, signature, then keys; nothing changes
    /// unless the message authenticates.
    pub fn decrypt(&mut self, message: &GroupMessage) -> Result<Zeroizing<Vec<u8>>, GroupError> {
        self.chain.decrypt(message)
    }

    /// This session's pickle identity: store it with the latest pickle counter and pass both
    /// to [`InboundGroupSession::from_pickle`].
    #[must_use]
    pub fn pickle_id(&self) -> PickleId {
        self.pickle.id()
    }

    /// The counter of the latest pickle (0 if never pickled).
    #[must_use]
    pub fn pickle_counter(&self) -> u64 {
        self.pickle.counter()
    }

    /// Seals the session under `key` with the next pickle counter (see [`crate::pickle`],
    /// "Security notes": a rolled-back inbound session would accept replays again).
    pub fn pickle(&mut self, key: &PickleKey) -> Result<SealedPickle, PickleError> {
        self.pickle_with_rng(key, &mut OsRng)
    }

    /// [`InboundGroupSession::pickle`] with the caller's randomness for the sealing nonce.
    pub fn pickle_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        key: &PickleKey,
        rng: &mut R,
    ) -> Result<SealedPickle, PickleError> {
        let mut out = Zeroizing::new(Vec::with_capacity(192));
        self.chain.write(&mut out);
        pickle::seal(PickleKind::InboundGroup, &mut self.pickle, &out, key, rng)
    }

    /// Opens a sealed inbound group session of the object `expected_id` with a counter of at
    /// least `latest_counter` ([`PickleError::PickleIdMismatch`],
    /// [`PickleError::PickleRolledBack`]).
    pub fn from_pickle(
        sealed: &[u8],
        key: &PickleKey,
        expected_id: &PickleId,
        latest_counter: u64,
    ) -> Result<Self, PickleError> {
        pickle::open_with(
            PickleKind::InboundGroup,
            sealed,
            key,
            expected_id,
            latest_counter,
            |r, pickle| {
                Ok(Self {
                    chain: ReceiverChain::read(r)?,
                    pickle,
                })
            },
        )
    }
}

impl fmt::Debug for InboundGroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundGroupSession")
            .field("chain", &self.chain)
            .field("pickle_id", &self.pickle.id())
            .field("pickle_counter", &self.pickle.counter())
            .finish_non_exhaustive()
    }
}

fn open(message: &GroupMessage, key: &MessageKey) -> Result<Zeroizing<Vec<u8>>, GroupError> {
    let (aead_key, nonce) = key.aead_key_nonce(GROUP_KDF_INFO);
    let signed = message.signed_part();
    let (header, body) = signed
        .split_at_checked(GROUP_HEADER_LEN)
        .ok_or(GroupError::DecryptionFailed)?;
    let split = body
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(GroupError::DecryptionFailed)?;
    let (ciphertext, tag) = body.split_at(split);
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| GroupError::DecryptionFailed)?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    chacha20poly1305_open(&aead_key, &nonce, header, &mut plaintext, &tag)?;
    Ok(plaintext)
}

/// One room's sender-key state on one device: our chain and every other member device's.
///
/// Members are named by device id: the id the application knows for the pairwise session a
/// distribution arrived over, which the distribution must name too.
pub struct GroupSession {
    outbound: SenderChain,
    members: BTreeMap<String, Vec<ReceiverChain>>,
    /// Signing keys of dropped chains, oldest first, at most [`MAX_RETIRED_CHAINS`].
    retired: VecDeque<Ed25519PublicKey>,
    pickle: PickleState,
}

impl GroupSession {
    /// Starts our side of room `room_id` as device `device_id` with identity `identity`, with a
    /// fresh sender chain.
    pub fn new(
        room_id: &str,
        device_id: &str,
        identity: &PublicIdentity,
    ) -> Result<Self, GroupError> {
        Self::new_with_rng(room_id, device_id, identity, &mut OsRng)
    }

    /// [`GroupSession::new`] with the caller's randomness.
    pub fn new_with_rng<R: TryCryptoRng + ?Sized>(
        room_id: &str,
        device_id: &str,
        identity: &PublicIdentity,
        rng: &mut R,
    ) -> Result<Self, GroupError> {
        let outbound = SenderChain::with_origin(Origin::new(room_id, device_id, identity)?, rng)?;
        Ok(Self {
            outbound,
            members: BTreeMap::new(),
            retired: VecDeque::new(),
            pickle: PickleState::generate(rng)?,
        })
    }

    /// The room id.
    #[must_use]
    pub fn room_id(&self) -> &str {
        self.outbound.room_id()
    }

    /// Our distribution, to send to every member over the pairwise sessions.
    #[must_use]
    pub fn distribution(&self) -> SenderKeyDistribution {
        self.outbound.distribution()
    }

    /// Records the distribution of member device `member` (a new member, or a member's rotated
    /// chain) that arrived over the pairwise session `from`. The previous chain is kept for
    /// messages still in flight, up to [`MAX_CHAINS_PER_MEMBER`]; older ones are retired.
    ///
    /// `member` must be the device id the application knows for `from`'s peer, never read from
    /// the distribution. Checks, in order: the origin as in [`InboundGroupSession::new`]; a
    /// retired signing key ([`GroupError::SenderChainRetired`]); a signing key registered to
    /// another member ([`GroupError::SigningKeyClaimed`]); a member already known with another
    /// identity key ([`GroupError::DistributionIdentityMismatch`]); another chain of this member
    /// with the same chain id ([`GroupError::SenderChainConflict`]); the member limit
    /// ([`GroupError::TooLarge`]). A distribution already recorded is ignored, so a replayed one
    /// cannot rewind a chain.
    pub fn add_member(
        &mut self,
        member: &str,
        from: &Session,
        distribution: &SenderKeyDistribution,
    ) -> Result<(), GroupError> {
        distribution.origin.check(self.room_id(), member, from)?;
        let key = distribution.signing_key;
        if self.retired.contains(&key) {
            return Err(GroupError::SenderChainRetired);
        }
        for (other, chains) in &self.members {
            if other != member && chains.iter().any(|c| c.signing_key == key) {
                return Err(GroupError::SigningKeyClaimed);
            }
        }
        if !self.members.contains_key(member) && self.members.len() >= MAX_GROUP_MEMBERS {
            return Err(GroupError::TooLarge {
                len: self.members.len() + 1,
                max: MAX_GROUP_MEMBERS,
            });
        }
        let chains = self.members.entry(member.to_owned()).or_default();
        if chains
            .iter()
            .any(|c| c.origin.identity != distribution.origin.identity)
        {
            return Err(GroupError::DistributionIdentityMismatch);
        }
        if let Some(known) = chains.iter().find(|c| c.chain_id == distribution.chain_id) {
            if known.signing_key == key {
                // Already known; a re-sent distribution must not rewind the chain (replays).
                return Ok(());
            }
            return Err(GroupError::SenderChainConflict(distribution.chain_id));
        }
        if chains.iter().any(|c| c.signing_key == key) {
            // The signature binds the chain id, so only the sender could have made this.
            return Err(GroupError::SigningKeyClaimed);
        }
        chains.push(ReceiverChain::from_checked(distribution));
        let mut dropped = Vec::new();
        while chains.len() > MAX_CHAINS_PER_MEMBER {
            dropped.push(chains.remove(0).signing_key);
        }
        for key in dropped {
            self.retire(key);
        }
        Ok(())
    }

    fn retire(&mut self, key: Ed25519PublicKey) {
        self.retired.push_back(key);
        while self.retired.len() > MAX_RETIRED_CHAINS {
            self.retired.pop_front();
        }
    }

    /// Removes a member and rotates our chain; returns the new distribution to send to every
    /// remaining member. Each remaining member must rotate too. The removed member's chains
    /// are retired: their distributions are refused if sent again.
    pub fn remove_member(&mut self, member: &str) -> Result<SenderKeyDistribution, GroupError> {
        self.remove_member_with_rng(member, &mut OsRng)
    }

    /// [`GroupSession::remove_member`] with the caller's randomness.
    pub fn remove_member_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        member: &str,
        rng: &mut R,
    ) -> Result<SenderKeyDistribution, GroupError> {
        if let Some(chains) = self.members.remove(member) {
            for chain in chains {
                self.retire(chain.signing_key);
            }
        }
        self.rotate_with_rng(rng)
    }

    /// Replaces our sender chain with a fresh one and returns its distribution.
    pub fn rotate_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<SenderKeyDistribution, GroupError> {
        self.outbound = SenderChain::with_origin(self.outbound.origin.clone(), rng)?;
        Ok(self.outbound.distribution())
    }

    /// The member device ids we hold chains for.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// The identity key of a member device, if we hold a chain of it.
    #[must_use]
    pub fn member_identity(&self, member: &str) -> Option<&Ed25519PublicKey> {
        self.members
            .get(member)
            .and_then(|chains| chains.first())
            .map(|c| &c.origin.identity)
    }

    /// Encrypts once for the whole room.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<GroupMessage, GroupError> {
        self.outbound.encrypt(plaintext)
    }

    /// Decrypts a message from member device `member`.
    pub fn decrypt(
        &mut self,
        member: &str,
        message: &GroupMessage,
    ) -> Result<Zeroizing<Vec<u8>>, GroupError> {
        let chains = self
            .members
            .get_mut(member)
            .ok_or(GroupError::UnknownSenderChain(message.chain_id))?;
        let chain = chains
            .iter_mut()
            .find(|c| c.chain_id == message.chain_id)
            .ok_or(GroupError::UnknownSenderChain(message.chain_id))?;
        chain.decrypt(message)
    }

    /// This room state's pickle identity: store it with the latest pickle counter and pass
    /// both to [`GroupSession::from_pickle`].
    #[must_use]
    pub fn pickle_id(&self) -> PickleId {
        self.pickle.id()
    }

    /// The counter of the latest pickle (0 if never pickled).
    #[must_use]
    pub fn pickle_counter(&self) -> u64 {
        self.pickle.counter()
    }

    /// Seals the room state under `key` with the next pickle counter; persist it before a
    /// message it encrypted leaves the device (see [`crate::pickle`], "Security notes").
    pub fn pickle(&mut self, key: &PickleKey) -> Result<SealedPickle, PickleError> {
        self.pickle_with_rng(key, &mut OsRng)
    }

    /// [`GroupSession::pickle`] with the caller's randomness for the sealing nonce.
    pub fn pickle_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        key: &PickleKey,
        rng: &mut R,
    ) -> Result<SealedPickle, PickleError> {
        let mut out = Zeroizing::new(Vec::with_capacity(256));
        self.outbound.write(&mut out);
        out.put_count(self.members.len());
        for (member, chains) in &self.members {
            out.put_var_bytes(member.as_bytes());
            out.put_count(chains.len());
            for chain in chains {
                chain.write(&mut out);
            }
        }
        out.put_count(self.retired.len());
        for key in &self.retired {
            out.put(key.as_bytes());
        }
        pickle::seal(PickleKind::Group, &mut self.pickle, &out, key, rng)
    }

    /// Opens a sealed room state of the object `expected_id` with a counter of at least
    /// `latest_counter` ([`PickleError::PickleIdMismatch`], [`PickleError::PickleRolledBack`]).
    pub fn from_pickle(
        sealed: &[u8],
        key: &PickleKey,
        expected_id: &PickleId,
        latest_counter: u64,
    ) -> Result<Self, PickleError> {
        let open = |r: &mut Reader<'_>, pickle: PickleState| {
            let outbound = SenderChain::read(r)?;
            let n = r.count(MAX_GROUP_MEMBERS)?;
            let mut members = BTreeMap::new();
            for _ in 0..n {
                let member = read_str(r, MAX_DEVICE_ID_LEN)?;
                let c = r.count(MAX_CHAINS_PER_MEMBER)?;
                let mut chains = Vec::with_capacity(c);
                for _ in 0..c {
                    let chain = ReceiverChain::read(r)?;
                    // Every chain belongs to this room and to the member it is filed under.
                    if chain.origin.room_id != outbound.origin.room_id
                        || chain.origin.device_id != member
                    {
                        return Err(DecodeError::InvalidField);
                    }
                    chains.push(chain);
                }
                members.insert(member, chains);
            }
            let n = r.count(MAX_RETIRED_CHAINS)?;
            let mut retired = VecDeque::with_capacity(n);
            for _ in 0..n {
                retired.push_back(Ed25519PublicKey::from_bytes(&r.array()?)?);
            }
            Ok(Self {
                outbound,
                members,
                retired,
                pickle,
            })
        };
        pickle::open_with(
            PickleKind::Group,
            sealed,
            key,
            expected_id,
            latest_counter,
            open,
        )
    }
}

impl fmt::Debug for GroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupSession")
            .field("outbound", &self.outbound)
            .field("members", &self.members.len())
            .field("retired_chains", &self.retired.len())
            .field("pickle_id", &self.pickle.id())
            .field("pickle_counter", &self.pickle.counter())
            .finish_non_exhaustive()
    }
}
