//! A pairwise end-to-end encrypted session: X3DH-initialized Double Ratchet.
//!
//! Until the initiator has decrypted a reply, each of its messages is a [`PrekeyMessage`]
//! carrying the X3DH parameters, so the responder can set up the session from whichever of
//! them arrives first (X3DH §3.3).

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, PickleError, SessionError};
use crate::identity::PublicIdentity;
use crate::message::{PrekeyMessage, SessionMessage};
use crate::pickle::{self, PickleId, PickleKey, PickleKind, PickleState, SealedPickle};
use crate::primitives::{OsRng, X25519PublicKey};
use crate::ratchet::{DoubleRatchet, read_option, write_option};
use core::fmt;
use rand_core::TryCryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub(crate) const SESSION_ID_CONTEXT: &[u8] = b"SecureChat v2 session id";

/// The prekeys the session was set up with: repeated in the initiator's messages until the
/// responder is known to have them, and checked by the responder against later prekey messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PrekeyIds {
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
}

/// Which side of the X3DH exchange this session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Built the session from the peer's prekey bundle.
    Initiator,
    /// Built the session from the initiator's first message.
    Responder,
}

impl Role {
    /// The pickle byte: 1 for the initiator, 0 for the responder (the former boolean).
    fn write(self, out: &mut impl Writer) {
        out.put_bool(self == Self::Initiator);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(if r.bool()? {
            Self::Initiator
        } else {
            Self::Responder
        })
    }
}

/// What [`Session::encrypt`] produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outgoing {
    /// Prekey messages carrying the X3DH parameters: the initiator, until it has decrypted a
    /// reply.
    Prekey,
    /// Plain ratchet messages.
    Ratchet,
}

impl Outgoing {
    /// The pickle byte: 1 for prekey messages, 0 for ratchet messages (the former boolean).
    fn write(self, out: &mut impl Writer) {
        out.put_bool(self == Self::Prekey);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(if r.bool()? {
            Self::Prekey
        } else {
            Self::Ratchet
        })
    }
}

/// One side of a pairwise session.
pub struct Session {
    ratchet: DoubleRatchet,
    associated_data: [u8; 32],
    local_identity: PublicIdentity,
    remote_identity: PublicIdentity,
    /// The initiator's X3DH ephemeral key: names the session on both sides.
    base_key: X25519PublicKey,
    role: Role,
    prekey_ids: PrekeyIds,
    /// The initiator sends prekey messages until it has decrypted a reply.
    outgoing: Outgoing,
    pickle: PickleState,
}

impl Session {
    pub(crate) fn new(
        ratchet: DoubleRatchet,
        local_identity: PublicIdentity,
        remote_identity: PublicIdentity,
        base_key: X25519PublicKey,
        role: Role,
        prekey_ids: PrekeyIds,
        pickle: PickleState,
    ) -> Self {
        let (initiator, responder) = match role {
            Role::Initiator => (&local_identity, &remote_identity),
            Role::Responder => (&remote_identity, &local_identity),
        };
        let associated_data = crate::x3dh::associated_data(initiator, responder);
        Self {
            ratchet,
            associated_data,
            local_identity,
            remote_identity,
            base_key,
            role,
            prekey_ids,
            // The initiator sends prekey messages until it has decrypted a reply.
            outgoing: match role {
                Role::Initiator => Outgoing::Prekey,
                Role::Responder => Outgoing::Ratchet,
            },
            pickle,
        }
    }

    /// Encrypts `plaintext` (at most [`crate::message::MAX_PLAINTEXT_LEN`] bytes).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<SessionMessage, SessionError> {
        self.encrypt_with_rng(plaintext, &mut OsRng)
    }

    /// [`Session::encrypt`] with the caller's randomness (used for reproducible test vectors;
    /// randomness is needed only when the DH ratchet turns).
    pub fn encrypt_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<SessionMessage, SessionError> {
        let message = self
            .ratchet
            .encrypt(&self.associated_data, plaintext, rng)?;
        Ok(if self.outgoing == Outgoing::Prekey {
            SessionMessage::Prekey(Box::new(PrekeyMessage {
                sender: self.local_identity.clone(),
                base_key: self.base_key,
                signed_prekey_id: self.prekey_ids.signed_prekey_id,
                one_time_prekey_id: self.prekey_ids.one_time_prekey_id,
                message,
            }))
        } else {
            SessionMessage::Ratchet(message)
        })
    }

    /// Decrypts a message of this session. Duplicates and replays fail with
    /// [`SessionError::DuplicateMessage`]; forged or corrupted messages fail without changing the
    /// session.
    pub fn decrypt(
        &mut self,
        message: &SessionMessage,
    ) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        let inner = match message {
            SessionMessage::Prekey(prekey) => {
                if !self.matches_prekey_message(prekey) {
                    return Err(SessionError::SessionMismatch);
                }
                &prekey.message
            }
            SessionMessage::Ratchet(m) => m,
        };
        let plaintext = self.ratchet.decrypt(&self.associated_data, inner)?;
        // A reply proves the responder has the session: stop sending X3DH parameters.
        self.outgoing = Outgoing::Ratchet;
        Ok(plaintext)
    }

    /// Whether a prekey message was produced by the initiator of this very session (same
    /// sender, X3DH base key and prekey ids); such messages go to [`Session::decrypt`], not to
    /// a new session.
    #[must_use]
    pub fn matches_prekey_message(&self, message: &PrekeyMessage) -> bool {
        self.role == Role::Responder
            && message.base_key == self.base_key
            && message.signed_prekey_id == self.prekey_ids.signed_prekey_id
            && message.one_time_prekey_id == self.prekey_ids.one_time_prekey_id
            && message.sender.key_bytes() == self.remote_identity.key_bytes()
    }

    /// The peer device's identity.
    #[must_use]
    pub fn remote_identity(&self) -> &PublicIdentity {
        &self.remote_identity
    }

    /// A stable 32-byte name of the session, the same on both sides.
    #[must_use]
    pub fn session_id(&self) -> [u8; 32] {
        let (initiator, responder) = match self.role {
            Role::Initiator => (&self.local_identity, &self.remote_identity),
            Role::Responder => (&self.remote_identity, &self.local_identity),
        };
        let mut h = Sha256::new();
        h.update(SESSION_ID_CONTEXT);
        h.update(initiator.key_bytes());
        h.update(responder.key_bytes());
        h.update(self.base_key.as_bytes());
        h.finalize().into()
    }

    /// Whether this side has received at least one message.
    #[must_use]
    pub fn has_received_message(&self) -> bool {
        self.ratchet.has_received()
    }

    /// Number of skipped message keys held for late messages.
    #[must_use]
    pub fn skipped_message_keys(&self) -> usize {
        self.ratchet.skipped_len()
    }

    /// This session's pickle identity, drawn when it was created (not shared with the peer,
    /// unlike [`Session::session_id`]): store it with the latest pickle counter and pass both
    /// to [`Session::from_pickle`].
    #[must_use]
    pub fn pickle_id(&self) -> PickleId {
        self.pickle.id()
    }

    /// The counter of the latest pickle of this session (0 if it was never pickled).
    #[must_use]
    pub fn pickle_counter(&self) -> u64 {
        self.pickle.counter()
    }

    /// Serializes and seals the session under `key` with the next pickle counter.
    ///
    /// Pickle after every `encrypt` and `decrypt`, and persist the result and its counter
    /// before the ciphertext leaves the device: restoring any earlier state would encrypt
    /// again with message keys already used (see [`crate::pickle`], "Security notes").
    pub fn pickle(&mut self, key: &PickleKey) -> Result<SealedPickle, PickleError> {
        self.pickle_with_rng(key, &mut OsRng)
    }

    /// [`Session::pickle`] with the caller's randomness for the sealing nonce.
    pub fn pickle_with_rng<R: TryCryptoRng + ?Sized>(
        &mut self,
        key: &PickleKey,
        rng: &mut R,
    ) -> Result<SealedPickle, PickleError> {
        let mut out = Zeroizing::new(Vec::with_capacity(512));
        self.write(&mut out);
        pickle::seal(PickleKind::Session, &mut self.pickle, &out, key, rng)
    }

    /// Opens a sealed session made by the session `expected_id` with a counter of at least
    /// `latest_counter` (the latest one the store recorded): another object's pickle is
    /// [`PickleError::PickleIdMismatch`], an older one [`PickleError::PickleRolledBack`]; a wrong
    /// key, kind or version is a typed error too. The session resumes counting from the pickle's
    /// counter.
    pub fn from_pickle(
        sealed: &[u8],
        key: &PickleKey,
        expected_id: &PickleId,
        latest_counter: u64,
    ) -> Result<Self, PickleError> {
        pickle::open_with(
            PickleKind::Session,
            sealed,
            key,
            expected_id,
            latest_counter,
            Self::read,
        )
    }

    fn write(&self, out: &mut impl Writer) {
        self.local_identity.write_body(out);
        self.remote_identity.write_body(out);
        out.put(self.base_key.as_bytes());
        self.role.write(out);
        out.put_u32(self.prekey_ids.signed_prekey_id);
        write_option(
            out,
            self.prekey_ids.one_time_prekey_id.as_ref(),
            |out, id| out.put_u32(*id),
        );
        self.outgoing.write(out);
        self.ratchet.write(out);
    }

    fn read(r: &mut Reader<'_>, pickle: PickleState) -> Result<Self, DecodeError> {
        let local_identity = PublicIdentity::read_body(r)?;
        let remote_identity = PublicIdentity::read_body(r)?;
        let base_key = X25519PublicKey::from_bytes(r.array()?);
        let role = Role::read(r)?;
        let prekey_ids = PrekeyIds {
            signed_prekey_id: r.u32()?,
            one_time_prekey_id: read_option(r, |r| r.u32())?,
        };
        let outgoing = Outgoing::read(r)?;
        let ratchet = DoubleRatchet::read(r)?;
        let mut session = Self::new(
            ratchet,
            local_identity,
            remote_identity,
            base_key,
            role,
            prekey_ids,
            pickle,
        );
        session.outgoing = outgoing;
        Ok(session)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("remote_identity", &self.remote_identity)
            .field("role", &self.role)
            .field("ratchet", &self.ratchet)
            .field("pickle_id", &self.pickle.id())
            .field("pickle_counter", &self.pickle.counter())
            .finish_non_exhaustive()
    }
}
