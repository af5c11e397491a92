//! Group messaging with sender keys (the Signal "Sender Keys" / Megolm idea).
//!
//! Every member device owns an [`OutboundGroupSession`]: a symmetric hash ratchet (the same
//! `KDF_CK` as the Double Ratchet) plus an Ed25519 signing key. Its
//! [`SenderKeyDistribution`] is sent to every other member over the pairwise sessions; they
//! build an [`InboundGroupSession`] from it. A message is encrypted once, signed, and fanned out
//! by the relay. Receivers verify the signature first (strict Ed25519), then decrypt with the
//! same out-of-order and replay rules as pairwise sessions
//! ([`crate::ratchet::MAX_SKIP_PER_CHAIN`], [`crate::ratchet::MAX_SKIPPED_KEYS`]).
//!
//! [`GroupSession`] keeps one room's state: our sender chain and the members' chains. Removing
//! a member drops its chains and rotates ours ([`GroupSession::remove_member`]); every other
//! member does the same, so the removed device can read nothing sent afterwards.
//!
//! ```text
//! GroupMessage          = version (0x01) || type (0x03) || chain id (u32) || iteration (u32)
//!                         || ciphertext || tag (16) || signature (64)
//! SenderKeyDistribution = version (0x01) || type (0x04) || chain id (u32) || iteration (u32)
//!                         || chain key (32) || signing key (32)
//! ```
//! Per-message AEAD: ChaCha20-Poly1305 with key and nonce = HKDF-Expand(message key,
//! `"SecureChat v1 group message keys"`, 44); associated data = the 10-byte header. The
//! signature covers `"SecureChat v1 group message" || header || ciphertext || tag`.

use crate::codec::{Reader, Writer};
use crate::context::SignatureContext;
use crate::error::{Error, Result};
use crate::identity::check_version;
use crate::message::{MAX_PLAINTEXT_LEN, MESSAGE_VERSION};
use crate::pickle::{self, PickleId, PickleKey, PickleKind, PickleState, SealedPickle};
use crate::primitives::{
    Ed25519KeyPair, Ed25519PublicKey, OsRng, SIGNATURE_LEN, TAG_LEN, chacha20poly1305_open,
    chacha20poly1305_seal, fill_random, random_key,
};
use crate::ratchet::{ChainKey, MAX_SKIPPED_KEYS, MessageKey};
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
/// Encoded length of a [`SenderKeyDistribution`].
pub const DISTRIBUTION_LEN: usize = 2 + 4 + 4 + 32 + 32;
/// Most member devices a [`GroupSession`] tracks.
pub const MAX_GROUP_MEMBERS: usize = 10_000;
/// Sender chains kept per member: the current one and the one before a rotation, for
/// messages still in flight.
pub const MAX_CHAINS_PER_MEMBER: usize = 2;
/// Longest member id (bytes) a [`GroupSession`] accepts.
pub const MAX_MEMBER_ID_LEN: usize = 256;

const GROUP_KDF_INFO: &[u8] = b"SecureChat v1 group message keys";

/// An encrypted, signed group message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupMessage {
    chain_id: u32,
    iteration: u32,
    raw: Vec<u8>,
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
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        check_version(r.u8()?, MESSAGE_VERSION)?;
        let kind = r.u8()?;
        if kind != TYPE_GROUP_MESSAGE {
            return Err(Error::UnknownMessageType(kind));
        }
        let chain_id = r.u32()?;
        let iteration = r.u32()?;
        let body = r.remaining();
        let min = TAG_LEN + SIGNATURE_LEN;
        if body < min {
            return Err(Error::Truncated {
                needed: min,
                remaining: body,
            });
        }
        if body > MAX_PLAINTEXT_LEN + min {
            return Err(Error::LengthOutOfRange {
                len: body,
                max: MAX_PLAINTEXT_LEN + min,
            });
        }
        Ok(Self {
            chain_id,
            iteration,
            raw: bytes.to_vec(),
        })
    }

    fn signed_part(&self) -> &[u8] {
        self.raw
            .get(..self.raw.len().saturating_sub(SIGNATURE_LEN))
            .unwrap_or(&[])
    }

    fn signature(&self) -> Result<[u8; SIGNATURE_LEN]> {
        let start = self.raw.len().saturating_sub(SIGNATURE_LEN);
        self.raw
            .get(start..)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::Truncated {
                needed: SIGNATURE_LEN,
                remaining: self.raw.len(),
            })
    }
}

/// `"SecureChat v1 group message" || header || ciphertext || tag` (docs/protocol.md §12.2).
fn signed_bytes(signed_part: &[u8]) -> Vec<u8> {
    SignatureContext::GroupMessage.message(&[signed_part])
}

/// The secret a member shares (over pairwise sessions) so others can read its group messages.
pub struct SenderKeyDistribution {
    chain_id: u32,
    iteration: u32,
    chain_key: Zeroizing<[u8; 32]>,
    signing_key: Ed25519PublicKey,
}

impl SenderKeyDistribution {
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

    /// Encodes the distribution (secret: send it only inside a pairwise session).
    #[must_use]
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(DISTRIBUTION_LEN));
        out.put_u8(MESSAGE_VERSION);
        out.put_u8(TYPE_SENDER_KEY_DISTRIBUTION);
        out.put_u32(self.chain_id);
        out.put_u32(self.iteration);
        out.put(self.chain_key.as_slice());
        out.put(self.signing_key.as_bytes());
        out
    }

    /// Decodes a distribution.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        check_version(r.u8()?, MESSAGE_VERSION)?;
        let kind = r.u8()?;
        if kind != TYPE_SENDER_KEY_DISTRIBUTION {
            return Err(Error::UnknownMessageType(kind));
        }
        let dist = Self {
            chain_id: r.u32()?,
            iteration: r.u32()?,
            chain_key: r.secret32()?,
            signing_key: Ed25519PublicKey::from_bytes(&r.array()?)?,
        };
        r.finish()?;
        Ok(dist)
    }
}

impl fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyDistribution")
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.iteration)
            .field("signing_key", &self.signing_key)
            .finish_non_exhaustive()
    }
}

/// Our sending chain in a group (without pickle identity: also embedded in a [`GroupSession`]).
struct SenderChain {
    chain_id: u32,
    chain: ChainKey,
    signing: Ed25519KeyPair,
}

impl SenderChain {
    /// A fresh sender chain (random chain id, chain key and signing key).
    fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self> {
        let mut id = [0u8; 4];
        fill_random(rng, &mut id)?;
        Ok(Self {
            chain_id: u32::from_be_bytes(id),
            chain: ChainKey::new(random_key(rng)?),
            signing: Ed25519KeyPair::generate(rng)?,
        })
    }

    /// The chain id.
    #[must_use]
    fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The next message's iteration.
    #[must_use]
    fn iteration(&self) -> u32 {
        self.chain.index
    }

    /// The distribution at the current iteration: its receivers can read messages from now on,
    /// not earlier ones.
    #[must_use]
    fn distribution(&self) -> SenderKeyDistribution {
        SenderKeyDistribution {
            chain_id: self.chain_id,
            iteration: self.chain.index,
            chain_key: self.chain.key.clone(),
            signing_key: self.signing.public_key(),
        }
    }

    /// Encrypts once for every member and signs.
    fn encrypt(&mut self, plaintext: &[u8]) -> Result<GroupMessage> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(Error::TooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        let (message_key, next) = self.chain.step()?;
        let (key, nonce) = message_key.aead_key_nonce(GROUP_KDF_INFO)?;
        let mut raw =
            Vec::with_capacity(GROUP_HEADER_LEN + plaintext.len() + TAG_LEN + SIGNATURE_LEN);
        raw.put_u8(MESSAGE_VERSION);
        raw.put_u8(TYPE_GROUP_MESSAGE);
        raw.put_u32(self.chain_id);
        raw.put_u32(message_key.index);
        raw.extend_from_slice(plaintext);
        let (header, body) = raw.split_at_mut(GROUP_HEADER_LEN);
        let tag = chacha20poly1305_seal(&key, &nonce, header, body)?;
        raw.extend_from_slice(&tag);
        let signature = self.signing.sign(&signed_bytes(&raw));
        raw.extend_from_slice(&signature);
        self.chain = next;
        Ok(GroupMessage {
            chain_id: self.chain_id,
            iteration: message_key.index,
            raw,
        })
    }

    fn write(&self, out: &mut impl Writer) {
        out.put_u32(self.chain_id);
        out.put(self.chain.key.as_slice());
        out.put_u32(self.chain.index);
        out.put(self.signing.to_seed().as_slice());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let chain_id = r.u32()?;
        let key = r.secret32()?;
        let index = r.u32()?;
        let signing = Ed25519KeyPair::from_seed(&*r.secret32()?);
        Ok(Self {
            chain_id,
            chain: ChainKey { key, index },
            signing,
        })
    }
}

impl fmt::Debug for SenderChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderChain")
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain.index)
            .finish_non_exhaustive()
    }
}

/// Our sending chain in a group, as a picklable object of its own.
pub struct OutboundGroupSession {
    chain: SenderChain,
    pickle: PickleState,
}

impl OutboundGroupSession {
    /// A fresh sender chain (random chain id, chain key and signing key).
    pub fn new() -> Result<Self> {
        Self::new_with_rng(&mut OsRng)
    }

    /// [`OutboundGroupSession::new`] with the caller's randomness (chain, then pickle id).
    pub fn new_with_rng<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self> {
        let chain = SenderChain::generate(rng)?;
        Ok(Self {
            chain,
            pickle: PickleState::generate(rng)?,
        })
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

    /// The distribution at the current iteration: its receivers can read messages from now on,
    /// not earlier ones.
    #[must_use]
    pub fn distribution(&self) -> SenderKeyDistribution {
        self.chain.distribution()
    }

    /// Encrypts once for every member and signs.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<GroupMessage> {
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
    pub fn pickle(&mut self, key: &PickleKey) -> Result<SealedPickle> {
        self.pickle_with_rng(key, &mut OsRng)
    }

    /// [`OutboundGroupSession::pickle`] with the caller's randomness for the sealing nonce.
    pub fn pickle_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        key: &PickleKey,
        rng: &mut R,
    ) -> Result<SealedPickle> {
        let mut out = Zeroizing::new(Vec::with_capacity(80));
        self.chain.write(&mut out);
        pickle::seal(PickleKind::OutboundGroup, &mut self.pickle, &out, key, rng)
    }

    /// Opens a sealed outbound group session of the object `expected_id` with a counter of at
    /// least `latest_counter` ([`Error::PickleIdMismatch`], [`Error::PickleRolledBack`]).
    pub fn from_pickle(
        sealed: &[u8],
        key: &PickleKey,
        expected_id: &PickleId,
        latest_counter: u64,
    ) -> Result<Self> {
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
            .field("chain_id", &self.chain.chain_id)
            .field("iteration", &self.chain.chain.index)
            .field("pickle_id", &self.pickle.id())
            .field("pickle_counter", &self.pickle.counter())
            .finish_non_exhaustive()
    }
}

/// Another member's sender chain, as received in its distribution (without pickle identity:
/// also embedded in a [`GroupSession`]).
struct ReceiverChain {
    chain_id: u32,
    first_iteration: u32,
    signing_key: Ed25519PublicKey,
    chain: ChainKey,
    skipped: VecDeque<(u32, Zeroizing<[u8; 32]>)>,
}

impl ReceiverChain {
    /// Builds the receiving side from a distribution.
    fn new(distribution: &SenderKeyDistribution) -> Self {
        Self {
            chain_id: distribution.chain_id,
            first_iteration: distribution.iteration,
            signing_key: distribution.signing_key,
            chain: ChainKey {
                key: distribution.chain_key.clone(),
                index: distribution.iteration,
            },
            skipped: VecDeque::new(),
        }
    }

    /// The chain id.
    #[must_use]
    fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// Verifies and decrypts. Order of checks: chain id, signature, then keys; nothing changes
    /// unless the message authenticates.
    fn decrypt(&mut self, message: &GroupMessage) -> Result<Zeroizing<Vec<u8>>> {
        if message.chain_id != self.chain_id {
            return Err(Error::UnknownSenderChain(message.chain_id));
        }
        self.signing_key
            .verify(&signed_bytes(message.signed_part()), &message.signature()?)?;
        let iteration = message.iteration;
        if iteration < self.first_iteration {
            return Err(Error::MessageKeyEvicted);
        }
        if iteration < self.chain.index {
            let position = self
                .skipped
                .iter()
                .position(|(i, _)| *i == iteration)
                .ok_or(Error::DuplicateMessage)?;
            let (index, key) = self.skipped.get(position).ok_or(Error::DuplicateMessage)?;
            let key = MessageKey {
                key: key.clone(),
                index: *index,
            };
            let plaintext = open(message, &key)?;
            self.skipped.remove(position);
            return Ok(plaintext);
        }
        let (skipped, key, next) = self.chain.advance_to(iteration)?;
        let plaintext = open(message, &key)?;
        self.chain = next;
        for k in skipped {
            self.skipped.push_back((k.index, k.key));
        }
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            self.skipped.pop_front();
        }
        Ok(plaintext)
    }

    fn write(&self, out: &mut impl Writer) {
        out.put_u32(self.chain_id);
        out.put_u32(self.first_iteration);
        out.put(self.signing_key.as_bytes());
        out.put(self.chain.key.as_slice());
        out.put_u32(self.chain.index);
        out.put_count(self.skipped.len());
        for (index, key) in &self.skipped {
            out.put_u32(*index);
            out.put(key.as_slice());
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let chain_id = r.u32()?;
        let first_iteration = r.u32()?;
        let signing_key = Ed25519PublicKey::from_bytes(&r.array()?)?;
        let key = r.secret32()?;
        let index = r.u32()?;
        let n = r.count(MAX_SKIPPED_KEYS)?;
        let mut skipped = VecDeque::with_capacity(n);
        for _ in 0..n {
            skipped.push_back((r.u32()?, r.secret32()?));
        }
        Ok(Self {
            chain_id,
            first_iteration,
            signing_key,
            chain: ChainKey { key, index },
            skipped,
        })
    }
}

impl fmt::Debug for ReceiverChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverChain")
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain.index)
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
    /// Builds the receiving side from a distribution.
    pub fn new(distribution: &SenderKeyDistribution) -> Result<Self> {
        Self::new_with_rng(distribution, &mut OsRng)
    }

    /// [`InboundGroupSession::new`] with the caller's randomness (the pickle id).
    pub fn new_with_rng<R: TryCryptoRng + ?Sized>(
        distribution: &SenderKeyDistribution,
        rng: &mut R,
    ) -> Result<Self> {
        Ok(Self {
            chain: ReceiverChain::new(distribution),
            pickle: PickleState::generate(rng)?,
        })
    }

    /// The chain id.
    #[must_use]
    pub fn chain_id(&self) -> u32 {
        self.chain.chain_id()
    }

    /// Verifies and decrypts. Order of checks: chain id, signature, then keys; nothing changes
    /// unless the message authenticates.
    pub fn decrypt(&mut self, message: &GroupMessage) -> Result<Zeroizing<Vec<u8>>> {
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
    pub fn pickle(&mut self, key: &PickleKey) -> Result<SealedPickle> {
        self.pickle_with_rng(key, &mut OsRng)
    }

    /// [`InboundGroupSession::pickle`] with the caller's randomness for the sealing nonce.
    pub fn pickle_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        key: &PickleKey,
        rng: &mut R,
    ) -> Result<SealedPickle> {
        let mut out = Zeroizing::new(Vec::with_capacity(128));
        self.chain.write(&mut out);
        pickle::seal(PickleKind::InboundGroup, &mut self.pickle, &out, key, rng)
    }

    /// Opens a sealed inbound group session of the object `expected_id` with a counter of at
    /// least `latest_counter` ([`Error::PickleIdMismatch`], [`Error::PickleRolledBack`]).
    pub fn from_pickle(
        sealed: &[u8],
        key: &PickleKey,
        expected_id: &PickleId,
        latest_counter: u64,
    ) -> Result<Self> {
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
            .field("chain_id", &self.chain.chain_id)
            .field("iteration", &self.chain.chain.index)
            .field("skipped_keys", &self.chain.skipped.len())
            .field("pickle_id", &self.pickle.id())
            .field("pickle_counter", &self.pickle.counter())
            .finish_non_exhaustive()
    }
}

fn open(message: &GroupMessage, key: &MessageKey) -> Result<Zeroizing<Vec<u8>>> {
    let (aead_key, nonce) = key.aead_key_nonce(GROUP_KDF_INFO)?;
    let signed = message.signed_part();
    let (header, body) = signed
        .split_at_checked(GROUP_HEADER_LEN)
        .ok_or(Error::DecryptionFailed)?;
    let split = body
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(Error::DecryptionFailed)?;
    let (ciphertext, tag) = body.split_at(split);
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::DecryptionFailed)?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    chacha20poly1305_open(&aead_key, &nonce, header, &mut plaintext, &tag)?;
    Ok(plaintext)
}

/// One room's sender-key state on one device: our chain and every other member device's.
///
/// Member ids are opaque to crypto-core (for example `"<user id>/<device id>"`).
pub struct GroupSession {
    outbound: SenderChain,
    members: BTreeMap<String, Vec<ReceiverChain>>,
    pickle: PickleState,
}

impl GroupSession {
    /// Starts our side of a room with a fresh sender chain.
    pub fn new() -> Result<Self> {
        Self::new_with_rng(&mut OsRng)
    }

    /// [`GroupSession::new`] with the caller's randomness (our chain, then the pickle id).
    pub fn new_with_rng<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self> {
        let outbound = SenderChain::generate(rng)?;
        Ok(Self {
            outbound,
            members: BTreeMap::new(),
            pickle: PickleState::generate(rng)?,
        })
    }

    /// Our distribution, to send to every member over the pairwise sessions.
    #[must_use]
    pub fn distribution(&self) -> SenderKeyDistribution {
        self.outbound.distribution()
    }

    /// Records a member's distribution (a new member, or a member's rotated chain). The
    /// previous chain is kept for messages still in flight, up to [`MAX_CHAINS_PER_MEMBER`].
    pub fn add_member(&mut self, member: &str, distribution: &SenderKeyDistribution) -> Result<()> {
        if member.len() > MAX_MEMBER_ID_LEN {
            return Err(Error::TooLarge {
                len: member.len(),
                max: MAX_MEMBER_ID_LEN,
            });
        }
        if !self.members.contains_key(member) && self.members.len() >= MAX_GROUP_MEMBERS {
            return Err(Error::TooLarge {
                len: self.members.len() + 1,
                max: MAX_GROUP_MEMBERS,
            });
        }
        let chains = self.members.entry(member.to_owned()).or_default();
        if chains.iter().any(|c| c.chain_id == distribution.chain_id) {
            // Already known; a re-sent distribution must not rewind the chain (replays).
            return Ok(());
        }
        chains.push(ReceiverChain::new(distribution));
        while chains.len() > MAX_CHAINS_PER_MEMBER {
            chains.remove(0);
        }
        Ok(())
    }

    /// Removes a member and rotates our chain; returns the new distribution to send to every
    /// remaining member. Each remaining member must rotate too.
    pub fn remove_member(&mut self, member: &str) -> Result<SenderKeyDistribution> {
        self.remove_member_with_rng(member, &mut OsRng)
    }

    /// [`GroupSession::remove_member`] with the caller's randomness.
    pub fn remove_member_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        member: &str,
        rng: &mut R,
    ) -> Result<SenderKeyDistribution> {
        self.members.remove(member);
        self.rotate_with_rng(rng)
    }

    /// Replaces our sender chain with a fresh one and returns its distribution.
    pub fn rotate_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<SenderKeyDistribution> {
        self.outbound = SenderChain::generate(rng)?;
        Ok(self.outbound.distribution())
    }

    /// The member ids we hold chains for.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// Encrypts once for the whole room.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<GroupMessage> {
        self.outbound.encrypt(plaintext)
    }

    /// Decrypts a message from `member`.
    pub fn decrypt(&mut self, member: &str, message: &GroupMessage) -> Result<Zeroizing<Vec<u8>>> {
        let chains = self
            .members
            .get_mut(member)
            .ok_or(Error::UnknownSenderChain(message.chain_id))?;
        let chain = chains
            .iter_mut()
            .find(|c| c.chain_id == message.chain_id)
            .ok_or(Error::UnknownSenderChain(message.chain_id))?;
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
    pub fn pickle(&mut self, key: &PickleKey) -> Result<SealedPickle> {
        self.pickle_with_rng(key, &mut OsRng)
    }

    /// [`GroupSession::pickle`] with the caller's randomness for the sealing nonce.
    pub fn pickle_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        key: &PickleKey,
        rng: &mut R,
    ) -> Result<SealedPickle> {
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
        pickle::seal(PickleKind::Group, &mut self.pickle, &out, key, rng)
    }

    /// Opens a sealed room state of the object `expected_id` with a counter of at least
    /// `latest_counter` ([`Error::PickleIdMismatch`], [`Error::PickleRolledBack`]).
    pub fn from_pickle(
        sealed: &[u8],
        key: &PickleKey,
        expected_id: &PickleId,
        latest_counter: u64,
    ) -> Result<Self> {
        let read = |r: &mut Reader<'_>, pickle| {
            let outbound = SenderChain::read(r)?;
            let n = r.count(MAX_GROUP_MEMBERS)?;
            let mut members = BTreeMap::new();
            for _ in 0..n {
                let member = core::str::from_utf8(r.var_bytes(MAX_MEMBER_ID_LEN)?)
                    .map_err(|_| Error::InvalidField)?
                    .to_owned();
                let c = r.count(MAX_CHAINS_PER_MEMBER)?;
                let mut chains = Vec::with_capacity(c);
                for _ in 0..c {
                    chains.push(ReceiverChain::read(r)?);
                }
                members.insert(member, chains);
            }
            Ok(Self {
                outbound,
                members,
                pickle,
            })
        };
        pickle::open_with(
            PickleKind::Group,
            sealed,
            key,
            expected_id,
            latest_counter,
            read,
        )
    }
}

impl fmt::Debug for GroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupSession")
            .field("outbound", &self.outbound)
            .field("members", &self.members.len())
            .field("pickle_id", &self.pickle.id())
            .field("pickle_counter", &self.pickle.counter())
            .finish_non_exhaustive()
    }
}
