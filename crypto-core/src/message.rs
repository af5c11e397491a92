//! Wire formats of pairwise session messages.
//!
//! ```text
//! RatchetMessage  = version (0x01) || type (0x01) || ratchet key (32)
//!                   || previous chain length (u32) || index (u32) || ciphertext || tag (16)
//! PrekeyMessage   = version (0x01) || type (0x02) || flags (1) || sender identity (128)
//!                   || base key (32) || signed prekey id (u32) || [one-time prekey id (u32)]
//!                   || RatchetMessage
//! ```
//! The first 42 bytes of a [`RatchetMessage`] are its header, authenticated as associated
//! data. Every field of a [`PrekeyMessage`] is either checked on decoding (version, type, flags,
//! the identity's signature) or feeds the X3DH key derivation or its associated data, so
//! changing one makes the message fail to decode or to decrypt. The base key must also be
//! canonically encoded, since X25519 gives the same result for its non-canonical aliases.

use crate::codec::{Reader, Writer};
use crate::error::DecodeError;
use crate::identity::{PublicIdentity, check_version};
use crate::prekeys::FLAG_ONE_TIME_PREKEY;
use crate::primitives::{TAG_LEN, X25519PublicKey};

/// Version byte of session messages.
pub const MESSAGE_VERSION: u8 = 2;
/// Type byte of a [`RatchetMessage`].
pub const TYPE_RATCHET: u8 = 1;
/// Type byte of a [`PrekeyMessage`].
pub const TYPE_PREKEY: u8 = 2;
/// Length of a ratchet message header.
pub const RATCHET_HEADER_LEN: usize = 2 + 32 + 4 + 4;
/// Largest plaintext a session message may carry (1 MiB); larger data goes as an attachment.
pub const MAX_PLAINTEXT_LEN: usize = 1 << 20;

/// A Double Ratchet message: header and AEAD ciphertext.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RatchetMessage {
    ratchet_key: X25519PublicKey,
    previous_chain_length: u32,
    index: u32,
    /// The whole encoding: header, ciphertext, tag.
    raw: Vec<u8>,
}

impl RatchetMessage {
    /// Starts an encoding: writes the header into a buffer that the caller appends the
    /// plaintext to, then seals in place.
    pub(crate) fn header_into(
        out: &mut Vec<u8>,
        ratchet_key: &X25519PublicKey,
        previous_chain_length: u32,
        index: u32,
    ) {
        out.put_u8(MESSAGE_VERSION);
        out.put_u8(TYPE_RATCHET);
        out.put(ratchet_key.as_bytes());
        out.put_u32(previous_chain_length);
        out.put_u32(index);
    }

    pub(crate) fn from_sealed(
        raw: Vec<u8>,
        ratchet_key: X25519PublicKey,
        previous_chain_length: u32,
        index: u32,
    ) -> Self {
        Self {
            ratchet_key,
            previous_chain_length,
            index,
            raw,
        }
    }

    /// The sender's current ratchet public key.
    #[must_use]
    pub fn ratchet_key(&self) -> &X25519PublicKey {
        &self.ratchet_key
    }
    /// Number of messages in the sender's previous sending chain.
    #[must_use]
    pub fn previous_chain_length(&self) -> u32 {
        self.previous_chain_length
    }
    /// Index of this message in its chain.
    #[must_use]
    pub fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn header(&self) -> &[u8] {
        self.raw.get(..RATCHET_HEADER_LEN).unwrap_or(&[])
    }

    /// Ciphertext followed by the tag.
    pub(crate) fn sealed_body(&self) -> &[u8] {
        self.raw.get(RATCHET_HEADER_LEN..).unwrap_or(&[])
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

    /// Decodes a ratchet message, checking version, type and lengths.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        check_version(r.u8()?, MESSAGE_VERSION)?;
        let kind = r.u8()?;
        if kind != TYPE_RATCHET {
            return Err(DecodeError::UnknownMessageType(kind));
        }
        let ratchet_key = X25519PublicKey::from_bytes(r.array()?);
        let previous_chain_length = r.u32()?;
        let index = r.u32()?;
        let body = r.remaining();
        if body < TAG_LEN {
            return Err(DecodeError::Truncated {
                needed: TAG_LEN,
                remaining: body,
            });
        }
        if body > MAX_PLAINTEXT_LEN + TAG_LEN {
            return Err(DecodeError::LengthOutOfRange {
                len: body,
                max: MAX_PLAINTEXT_LEN + TAG_LEN,
            });
        }
        Ok(Self {
            ratchet_key,
            previous_chain_length,
            index,
            raw: bytes.to_vec(),
        })
    }
}

/// The first messages of a session, sent until the initiator hears back: they carry what the
/// responder needs to run X3DH (X3DH §3.3).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PrekeyMessage {
    pub(crate) sender: PublicIdentity,
    pub(crate) base_key: X25519PublicKey,
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
    pub(crate) message: RatchetMessage,
}

impl PrekeyMessage {
    /// The initiator's identity.
    #[must_use]
    pub fn sender(&self) -> &PublicIdentity {
        &self.sender
    }
    /// The initiator's X3DH ephemeral ("base") key.
    #[must_use]
    pub fn base_key(&self) -> &X25519PublicKey {
        &self.base_key
    }
    /// The responder's signed prekey that was used.
    #[must_use]
    pub fn signed_prekey_id(&self) -> u32 {
        self.signed_prekey_id
    }
    /// The responder's one-time prekey that was used, if any.
    #[must_use]
    pub fn one_time_prekey_id(&self) -> Option<u32> {
        self.one_time_prekey_id
    }
    /// The embedded ratchet message.
    #[must_use]
    pub fn message(&self) -> &RatchetMessage {
        &self.message
    }

    /// Encodes the message.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + 128 + 40 + self.message.raw.len());
        out.put_u8(MESSAGE_VERSION);
        out.put_u8(TYPE_PREKEY);
        out.put_u8(if self.one_time_prekey_id.is_some() {
            FLAG_ONE_TIME_PREKEY
        } else {
            0
        });
        self.sender.write_body(&mut out);
        out.put(self.base_key.as_bytes());
        out.put_u32(self.signed_prekey_id);
        if let Some(id) = self.one_time_prekey_id {
            out.put_u32(id);
        }
        out.put(&self.message.raw);
        out
    }

    /// Decodes a prekey message, checking every length, the sender's identity signature and
    /// that the base key is canonically encoded.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        check_version(r.u8()?, MESSAGE_VERSION)?;
        let kind = r.u8()?;
        if kind != TYPE_PREKEY {
            return Err(DecodeError::UnknownMessageType(kind));
        }
        Self::decode_body(&mut r)
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        let reserved = flags & !FLAG_ONE_TIME_PREKEY;
        if reserved != 0 {
            // Includes FLAG_PQ_KEM_PREKEY: reserved for PQXDH, refused by v2.
            return Err(DecodeError::ReservedFlags(reserved));
        }
        let sender = PublicIdentity::read_body(r)?;
        let base_key = X25519PublicKey::from_bytes(r.array()?);
        if !base_key.is_canonical() {
            // The base key is not authenticated by the AEAD, only used in X3DH, which ignores
            // the encoding: an alias would slip past the responder's replay check.
            return Err(DecodeError::InvalidField);
        }
        let signed_prekey_id = r.u32()?;
        let one_time_prekey_id = if flags & FLAG_ONE_TIME_PREKEY != 0 {
            Some(r.u32()?)
        } else {
            None
        };
        let message = RatchetMessage::decode(r.rest())?;
        Ok(Self {
            sender,
            base_key,
            signed_prekey_id,
            one_time_prekey_id,
            message,
        })
    }
}

/// Any pairwise session message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SessionMessage {
    /// A session-establishing message (X3DH parameters + first ratchet message).
    Prekey(Box<PrekeyMessage>),
    /// An ordinary Double Ratchet message.
    Ratchet(RatchetMessage),
}

impl SessionMessage {
    /// Encodes the message; the type byte tells the two kinds apart.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Prekey(m) => m.encode(),
            Self::Ratchet(m) => m.encode(),
        }
    }

    /// Decodes either kind.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        check_version(r.u8()?, MESSAGE_VERSION)?;
        match r.u8()? {
            TYPE_RATCHET => Ok(Self::Ratchet(RatchetMessage::decode(bytes)?)),
            TYPE_PREKEY => Ok(Self::Prekey(Box::new(PrekeyMessage::decode_body(&mut r)?))),
            other => Err(DecodeError::UnknownMessageType(other)),
        }
    }

    /// The ratchet message inside.
    #[must_use]
    pub fn ratchet_message(&self) -> &RatchetMessage {
        match self {
            Self::Prekey(m) => &m.message,
            Self::Ratchet(m) => m,
        }
    }
}
