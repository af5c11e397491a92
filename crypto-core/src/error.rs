//! The errors of crypto-core: one enum per operation, and the umbrella
//! [`Error`](enum@Error).
//!
//! Every public operation returns an enum that lists only the failures it can produce, so a
//! caller can match on them exhaustively (docs/protocol.md §17 has one table per enum):
//!
//! | Enum | Returned by |
//! |---|---|
//! | [`DecodeError`] | every `decode` of a wire format or public key encoding |
//! | [`SessionError`] | X3DH session set-up and [`crate::Session::encrypt`] / `decrypt` |
//! | [`GroupError`] | the group sessions of [`crate::group`] |
//! | [`PickleError`] | every `pickle` and `from_pickle` |
//! | [`AttachmentError`] | [`crate::attachment`] |
//! | [`SafetyNumberError`] | [`crate::safety_number`] |
//! | [`RelayChallengeError`] | relay challenges ([`crate::verify_relay_challenge`]) |
//! | [`AccountError`] | [`crate::Account`] key generation and its prekey bundle |
//! | [`SigningKeyError`] | [`crate::Ed25519PublicKey::from_bytes`] |
//! | [`SignatureError`] | identity, signed prekey and bundle signature checks |
//! | [`RandomError`], [`AgreementError`] | raw key generation and X25519 (feature `hazmat`) |
//! | [`SealError`], [`SealToError`], [`OpenError`] | raw AEAD (feature `hazmat`) |
//! | [`KdfError`] | raw HKDF (feature `hazmat`) |
//!
//! Each converts into the umbrella [`Error`](enum@Error) variant for variant, with the same
//! message, so `?` into `crypto_core::Error` keeps working. A failure that carries a nested
//! [`DecodeError`] (`Decode`) converts to the umbrella variant of the inner error.

use crate::pickle::PickleId;
use thiserror::Error;

#[cfg(test)]
mod tests;

/// Result alias for crypto-core (the umbrella [`Error`](enum@Error) unless another is named).
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Every way a crypto-core operation can fail: the union of the per-operation enums.
///
/// Each per-operation error converts into it variant for variant, with the same message, so
/// `?` into `crypto_core::Error` works where an application does not need to tell operations
/// apart. None of the messages contain secret material.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before a field that was expected.
    #[error("input too short: {needed} more bytes needed, {remaining} left")]
    Truncated {
        /// Bytes the next field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// The encoding has bytes after its last field.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// The version byte is not one this build understands.
    #[error("unsupported version: expected {expected}, got {got}")]
    UnsupportedVersion {
        /// The version this build writes and reads.
        expected: u8,
        /// The version found in the input.
        got: u8,
    },
    /// The type byte of a message is unknown.
    #[error("unknown message type {0}")]
    UnknownMessageType(u8),
    /// A length or count field exceeds its documented limit.
    #[error("length {len} exceeds the limit of {max}")]
    LengthOutOfRange {
        /// The length found.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// Flags that this version reserves (for example the post-quantum prekey slot) are set.
    #[error("reserved flag bits set: {0:#04x}")]
    ReservedFlags(u8),
    /// A boolean or enum field has a value outside its domain, or a key that must be
    /// canonically encoded (the X3DH base key) is not.
    #[error("invalid field value")]
    InvalidField,
    /// An Ed25519 public key is not a valid point or is of small order.
    #[error("invalid Ed25519 public key")]
    InvalidSigningKey,
    /// An Ed25519 signature did not verify (strict verification).
    #[error("signature verification failed")]
    BadSignature,
    /// An X25519 agreement produced the all-zero output: the peer key has low order.
    #[error("non-contributory X25519 key agreement (low-order public key)")]
    NonContributory,
    /// Authenticated decryption failed: wrong key, or the data was modified.
    #[error("authenticated decryption failed")]
    DecryptionFailed,
    /// The operating system or browser random number generator failed.
    #[error("the system random number generator failed")]
    RandomFailure,
    /// A key derivation was asked for an impossible output length.
    #[error("key derivation output length out of range")]
    KdfLength,
    /// The account has no signed prekey yet.
    #[error("no signed prekey has been generated")]
    NoSignedPrekey,
    /// The prekey message names a signed prekey this account does not hold.
    #[error("unknown signed prekey {0}")]
    UnknownSignedPrekey(u32),
    /// The one-time prekey is unknown or was already used.
    #[error("unknown or already used one-time prekey {0}")]
    UnknownOneTimePrekey(u32),
    /// The prekey message does not belong to this session.
    #[error("the prekey message belongs to another session")]
    SessionMismatch,
    /// The message key was already used (a duplicated or replayed message), or, for a pairwise
    /// message older than the skipped keys kept, it was evicted; the two cannot be told apart
    /// without keeping every key.
    #[error("duplicate or replayed message")]
    DuplicateMessage,
    /// A group message older than the sender-key distribution this member received (a late
    /// joiner cannot read what was sent before it joined).
    #[error("message precedes the keys this session was given")]
    MessageKeyEvicted,
    /// The message would need more skipped keys than the per-chain limit.
    #[error("message index jumps {jump} ahead; the limit is {max}")]
    TooFarAhead {
        /// How many keys would have to be skipped.
        jump: u64,
        /// The limit.
        max: u64,
    },
    /// A chain counter (or an object's pickle counter) reached its maximum.
    #[error("chain counter exhausted")]
    ChainExhausted,
    /// The session cannot send yet (responder before the first message arrived).
    #[error("session cannot encrypt yet")]
    CannotEncrypt,
    /// A group message comes from a sender chain this session does not know.
    #[error("unknown sender chain {0:#010x}")]
    UnknownSenderChain(u32),
    /// A sender-key distribution is for another room than the one it was given to.
    #[error("the sender-key distribution is for another room")]
    DistributionRoomMismatch,
    /// A sender-key distribution names another device than the member it was given for.
    #[error("the sender-key distribution names another sender device")]
    DistributionDeviceMismatch,
    /// A sender-key distribution names another identity key than the peer of the pairwise
    /// session it arrived over, or than the member's earlier chains.
    #[error("the sender-key distribution names another identity than its sender")]
    DistributionIdentityMismatch,
    /// A group signing key is already registered to another member (or another chain).
    #[error("the group signing key is already registered to another member")]
    SigningKeyClaimed,
    /// A sender chain that was dropped (rotated out, or its member removed) was offered again.
    #[error("the sender chain was retired and cannot be added again")]
    SenderChainRetired,
    /// A member offered a second sender chain with the id of one already registered for it.
    #[error("sender chain {0:#010x} is already registered with another signing key")]
    SenderChainConflict(u32),
    /// A pickle has a version this build cannot read.
    #[error("pickle version {got} is not supported (expected {expected})")]
    PickleVersion {
        /// The version this build reads.
        expected: u8,
        /// The version found.
        got: u8,
    },
    /// A pickle holds another kind of object than the one requested.
    #[error("pickle holds object kind {got}, expected {expected}")]
    PickleKind {
        /// Kind requested.
        expected: u8,
        /// Kind found.
        got: u8,
    },
    /// A pickle belongs to another object than the one the caller expects (a swapped pickle).
    #[error("pickle belongs to object {got}, expected {expected}")]
    PickleIdMismatch {
        /// The id the caller expects.
        expected: crate::pickle::PickleId,
        /// The id in the pickle.
        got: crate::pickle::PickleId,
    },
    /// A pickle is older than the latest one the caller recorded for the object (a rollback).
    #[error("pickle counter {counter} is older than the latest recorded counter {latest}")]
    PickleRolledBack {
        /// The pickle's counter.
        counter: u64,
        /// The latest counter the caller recorded.
        latest: u64,
    },
    /// A pickle could not be opened: wrong storage key, or the data was modified.
    #[error("pickle could not be decrypted: wrong key or corrupted data")]
    PickleDecryption,
    /// An attachment ended before its final chunk.
    #[error("attachment truncated")]
    AttachmentTruncated,
    /// An attachment has data after its final chunk.
    #[error("attachment has data after its final chunk")]
    AttachmentTrailingData,
    /// An attachment's ciphertext digest does not match the expected SHA-256.
    #[error("attachment digest mismatch")]
    AttachmentDigestMismatch,
    /// An attachment's header commits to another key than the one given: the key does not
    /// belong to this blob (a wrong key, or a blob built for two keys). Checked before any chunk
    /// is opened.
    #[error("attachment key does not match the header's key commitment")]
    AttachmentKeyMismatch,
    /// An attachment stream was used after it finished or failed.
    #[error("attachment stream already finished or failed")]
    AttachmentStreamClosed,
    /// A relay origin is empty or not a canonical `scheme://host[:port]` origin (lowercase
    /// `http` or `https`, lowercase host, no default port, no userinfo, path or trailing slash;
    /// `relay_challenge::check_relay_origin` lists the rules).
    #[error("the relay origin is not a canonical scheme://host[:port] origin")]
    InvalidRelayOrigin,
    /// A public key given as raw bytes has the wrong length.
    #[error("key of {got} bytes, expected {expected}")]
    InvalidKeyLength {
        /// The length the key must have.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// An input is larger than the protocol allows.
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The size given.
        len: usize,
        /// The limit.
        max: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Primitives: Ed25519 keys and signatures (public API), randomness, X25519, AEAD, HKDF

/// An Ed25519 public key could not be decoded ([`crate::Ed25519PublicKey::from_bytes`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigningKeyError {
    /// The bytes are not a valid point, or the point is of small order.
    #[error("invalid Ed25519 public key")]
    InvalidSigningKey,
}

/// An Ed25519 signature did not verify: [`crate::Ed25519PublicKey::verify`],
/// [`crate::PublicIdentity::new`], [`crate::SignedPrekey::verify`], [`crate::PrekeyBundle::new`]
/// and [`crate::PrekeyBundle::verify`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// Strict RFC 8032 verification failed.
    #[error("signature verification failed")]
    BadSignature,
}

/// The random number generator failed (key generation in the raw primitives).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RandomError {
    /// The operating system or browser random number generator failed.
    #[error("the system random number generator failed")]
    RandomFailure,
}

/// An X25519 agreement was refused (raw primitives).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgreementError {
    /// The agreement produced the all-zero output: the peer key has low order.
    #[error("non-contributory X25519 key agreement (low-order public key)")]
    NonContributory,
}

/// An in-place AEAD seal failed (raw primitives).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The input exceeds what the AEAD may encrypt under one nonce.
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The size given.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// A buffer-to-buffer AEAD seal failed (raw primitives, `xchacha20poly1305_seal_to`).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealToError {
    /// The output buffer is not as long as the input.
    #[error("length {len} exceeds the limit of {max}")]
    LengthOutOfRange {
        /// The output buffer's length.
        len: usize,
        /// The input's length.
        max: usize,
    },
    /// The input exceeds what the AEAD may encrypt under one nonce.
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The size given.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// An AEAD open failed (raw primitives).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// Wrong key, or the data was modified.
    #[error("authenticated decryption failed")]
    DecryptionFailed,
}

/// HKDF was asked for an impossible output (raw primitives `hkdf_sha256`,
/// `hkdf_sha256_expand`; the protocol's own derivations have fixed lengths and cannot fail).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdfError {
    /// The output is longer than 255 × 32 bytes.
    #[error("key derivation output length out of range")]
    KdfLength,
}

// ---------------------------------------------------------------------------------------------
// Operations

/// A wire format or key encoding was refused: returned by every `decode` (identities, prekeys,
/// bundles, session and group messages, sender-key distributions). Decoders verify the
/// signatures they carry strictly.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before a field that was expected.
    #[error("input too short: {needed} more bytes needed, {remaining} left")]
    Truncated {
        /// Bytes the next field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// The encoding has bytes after its last field.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// The version byte is not one this build understands.
    #[error("unsupported version: expected {expected}, got {got}")]
    UnsupportedVersion {
        /// The version this build writes and reads.
        expected: u8,
        /// The version found in the input.
        got: u8,
    },
    /// The type byte of a message is unknown.
    #[error("unknown message type {0}")]
    UnknownMessageType(u8),
    /// A length or count field exceeds its documented limit.
    #[error("length {len} exceeds the limit of {max}")]
    LengthOutOfRange {
        /// The length found.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// Flags that this version reserves (for example the post-quantum prekey slot) are set.
    #[error("reserved flag bits set: {0:#04x}")]
    ReservedFlags(u8),
    /// A boolean, enum or string field has a value outside its domain, a key that must be
    /// canonically encoded (the X3DH base key) is not, or parts of a pickled state disagree.
    #[error("invalid field value")]
    InvalidField,
    /// An Ed25519 public key is not a valid point or is of small order.
    #[error("invalid Ed25519 public key")]
    InvalidSigningKey,
    /// A signature carried by the encoding did not verify (strict Ed25519).
    #[error("signature verification failed")]
    BadSignature,
}

/// A pairwise session could not be set up (X3DH: [`crate::Account::create_outbound_session`],
/// [`crate::Account::create_inbound_session`]) or could not encrypt or decrypt
/// ([`crate::Session::encrypt`], [`crate::Session::decrypt`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// An X25519 agreement produced the all-zero output: a peer key has low order.
    #[error("non-contributory X25519 key agreement (low-order public key)")]
    NonContributory,
    /// Authenticated decryption failed: wrong key, or the message was modified.
    #[error("authenticated decryption failed")]
    DecryptionFailed,
    /// The message key was already used (a duplicated or replayed message), or it was evicted
    /// from the skipped keys kept; the two cannot be told apart without keeping every key. Also
    /// a replayed first message of a session already accepted.
    #[error("duplicate or replayed message")]
    DuplicateMessage,
    /// The message would need more skipped keys than the per-chain limit.
    #[error("message index jumps {jump} ahead; the limit is {max}")]
    TooFarAhead {
        /// How many keys would have to be skipped.
        jump: u64,
        /// The limit.
        max: u64,
    },
    /// A chain counter reached its maximum.
    #[error("chain counter exhausted")]
    ChainExhausted,
    /// The session cannot send yet (responder before the first message arrived).
    #[error("session cannot encrypt yet")]
    CannotEncrypt,
    /// The prekey message names a signed prekey this account does not hold.
    #[error("unknown signed prekey {0}")]
    UnknownSignedPrekey(u32),
    /// The one-time prekey is unknown or was already used.
    #[error("unknown or already used one-time prekey {0}")]
    UnknownOneTimePrekey(u32),
    /// The prekey message does not belong to this session (or its ratchet key is not its base
    /// key).
    #[error("the prekey message belongs to another session")]
    SessionMismatch,
    /// The plaintext is larger than [`crate::message::MAX_PLAINTEXT_LEN`].
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The size given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The operating system or browser random number generator failed.
    #[error("the system random number generator failed")]
    RandomFailure,
    /// An internal layout check failed (a header of the wrong length); not expected to occur.
    #[error("invalid field value")]
    InvalidField,
}

/// A group operation failed: [`crate::group::OutboundGroupSession`],
/// [`crate::group::InboundGroupSession`] and [`crate::group::GroupSession`] (creation,
/// distributions, encryption, decryption).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupError {
    /// A sender-key distribution is for another room than the one it was given to.
    #[error("the sender-key distribution is for another room")]
    DistributionRoomMismatch,
    /// A sender-key distribution names another device than the member it was given for.
    #[error("the sender-key distribution names another sender device")]
    DistributionDeviceMismatch,
    /// A sender-key distribution names another identity key than the peer of the pairwise
    /// session it arrived over, or than the member's earlier chains.
    #[error("the sender-key distribution names another identity than its sender")]
    DistributionIdentityMismatch,
    /// A group signing key is already registered to another member (or another chain).
    #[error("the group signing key is already registered to another member")]
    SigningKeyClaimed,
    /// A sender chain that was dropped (rotated out, or its member removed) was offered again.
    #[error("the sender chain was retired and cannot be added again")]
    SenderChainRetired,
    /// A member offered a second sender chain with the id of one already registered for it.
    #[error("sender chain {0:#010x} is already registered with another signing key")]
    SenderChainConflict(u32),
    /// A group message comes from a sender chain this session does not know.
    #[error("unknown sender chain {0:#010x}")]
    UnknownSenderChain(u32),
    /// A group message older than the sender-key distribution this member received (a late
    /// joiner cannot read what was sent before it joined).
    #[error("message precedes the keys this session was given")]
    MessageKeyEvicted,
    /// The message key was already used (a duplicated or replayed message), or it was evicted
    /// from the skipped keys kept.
    #[error("duplicate or replayed message")]
    DuplicateMessage,
    /// Authenticated decryption failed: wrong key, or the message was modified.
    #[error("authenticated decryption failed")]
    DecryptionFailed,
    /// The group message signature did not verify (strict Ed25519).
    #[error("signature verification failed")]
    BadSignature,
    /// The message would need more skipped keys than the per-chain limit.
    #[error("message index jumps {jump} ahead; the limit is {max}")]
    TooFarAhead {
        /// How many keys would have to be skipped.
        jump: u64,
        /// The limit.
        max: u64,
    },
    /// The sender chain's counter reached its maximum.
    #[error("chain counter exhausted")]
    ChainExhausted,
    /// A plaintext, room id or device id is too long, or the member limit is reached.
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The size given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The operating system or browser random number generator failed.
    #[error("the system random number generator failed")]
    RandomFailure,
}

/// A pickle could not be sealed (`pickle`) or opened (`from_pickle`), for every picklable type.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PickleError {
    /// A pickle has a version this build cannot read.
    #[error("pickle version {got} is not supported (expected {expected})")]
    PickleVersion {
        /// The version this build reads.
        expected: u8,
        /// The version found.
        got: u8,
    },
    /// A pickle holds another kind of object than the one requested.
    #[error("pickle holds object kind {got}, expected {expected}")]
    PickleKind {
        /// Kind requested.
        expected: u8,
        /// Kind found.
        got: u8,
    },
    /// A pickle belongs to another object than the one the caller expects (a swapped pickle).
    #[error("pickle belongs to object {got}, expected {expected}")]
    PickleIdMismatch {
        /// The id the caller expects.
        expected: PickleId,
        /// The id in the pickle.
        got: PickleId,
    },
    /// A pickle is older than the latest one the caller recorded for the object (a rollback).
    #[error("pickle counter {counter} is older than the latest recorded counter {latest}")]
    PickleRolledBack {
        /// The pickle's counter.
        counter: u64,
        /// The latest counter the caller recorded.
        latest: u64,
    },
    /// A pickle could not be opened: wrong storage key, or the data was modified.
    #[error("pickle could not be decrypted: wrong key or corrupted data")]
    PickleDecryption,
    /// The object's pickle counter reached its maximum.
    #[error("chain counter exhausted")]
    ChainExhausted,
    /// The state is too large to seal.
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The size given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The operating system or browser random number generator failed (the sealing nonce).
    #[error("the system random number generator failed")]
    RandomFailure,
    /// The envelope is too short, or the opened state does not parse (truncated, trailing
    /// bytes, a count over its limit, an invalid field, key or signature).
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// An attachment could not be encrypted or decrypted ([`crate::attachment`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttachmentError {
    /// An attachment ended before its final chunk.
    #[error("attachment truncated")]
    AttachmentTruncated,
    /// An attachment has data after its final chunk.
    #[error("attachment has data after its final chunk")]
    AttachmentTrailingData,
    /// An attachment's ciphertext digest does not match the expected SHA-256.
    #[error("attachment digest mismatch")]
    AttachmentDigestMismatch,
    /// An attachment's header commits to another key than the one given: the key does not
    /// belong to this blob (a wrong key, or a blob built for two keys). Checked before any chunk
    /// is opened.
    #[error("attachment key does not match the header's key commitment")]
    AttachmentKeyMismatch,
    /// An attachment stream was used after it finished or failed.
    #[error("attachment stream already finished or failed")]
    AttachmentStreamClosed,
    /// A chunk failed authentication: wrong key, or the data was modified.
    #[error("authenticated decryption failed")]
    DecryptionFailed,
    /// The header's version byte is not one this build understands.
    #[error("unsupported version: expected {expected}, got {got}")]
    UnsupportedVersion {
        /// The version this build writes and reads.
        expected: u8,
        /// The version found in the header.
        got: u8,
    },
    /// The header has a reserved value, or the [`crate::attachment::AttachmentInfo`] lengths do
    /// not describe a well-formed blob.
    #[error("invalid field value")]
    InvalidField,
    /// The attachment is larger than [`crate::attachment`] allows.
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The size given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An internal buffer had the wrong length; not expected to occur.
    #[error("length {len} exceeds the limit of {max}")]
    LengthOutOfRange {
        /// The length found.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// The operating system or browser random number generator failed.
    #[error("the system random number generator failed")]
    RandomFailure,
}

/// A safety number could not be computed or a scanned QR payload compared
/// ([`crate::safety_number`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SafetyNumberError {
    /// A public key given as raw bytes has the wrong length.
    #[error("key of {got} bytes, expected {expected}")]
    InvalidKeyLength {
        /// The length the key must have.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The scanned QR payload does not decode (truncated, trailing bytes, another version).
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A relay challenge could not be answered or its answer did not verify
/// ([`crate::Account::sign_relay_challenge`], [`crate::verify_relay_challenge`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayChallengeError {
    /// The relay origin is empty or not a canonical `scheme://host[:port]` origin
    /// (`relay_challenge::check_relay_origin` lists the rules).
    #[error("the relay origin is not a canonical scheme://host[:port] origin")]
    InvalidRelayOrigin,
    /// The answer's signature did not verify (strict Ed25519).
    #[error("signature verification failed")]
    BadSignature,
}

/// Account key generation failed: [`crate::Account::new`],
/// [`crate::Account::generate_signed_prekey`], [`crate::Account::generate_one_time_prekeys`]
/// and [`crate::Account::prekey_bundle`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountError {
    /// The operating system or browser random number generator failed.
    #[error("the system random number generator failed")]
    RandomFailure,
    /// The account has used every prekey id.
    #[error("chain counter exhausted")]
    ChainExhausted,
    /// More one-time prekeys were asked for than one batch may hold.
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The count asked for.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The account has no signed prekey yet (for a bundle).
    #[error("no signed prekey has been generated")]
    NoSignedPrekey,
    /// The bundle's signed prekey signature did not verify; not expected for our own keys.
    #[error("signature verification failed")]
    BadSignature,
}

// ---------------------------------------------------------------------------------------------
// Conversions: every variant maps to the variant of the same name (and message).

impl From<SigningKeyError> for DecodeError {
    fn from(e: SigningKeyError) -> Self {
        match e {
            SigningKeyError::InvalidSigningKey => Self::InvalidSigningKey,
        }
    }
}

impl From<SignatureError> for DecodeError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::BadSignature => Self::BadSignature,
        }
    }
}

impl From<SignatureError> for GroupError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::BadSignature => Self::BadSignature,
        }
    }
}

impl From<SignatureError> for RelayChallengeError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::BadSignature => Self::BadSignature,
        }
    }
}

impl From<SignatureError> for AccountError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::BadSignature => Self::BadSignature,
        }
    }
}

impl From<RandomError> for SessionError {
    fn from(e: RandomError) -> Self {
        match e {
            RandomError::RandomFailure => Self::RandomFailure,
        }
    }
}

impl From<RandomError> for GroupError {
    fn from(e: RandomError) -> Self {
        match e {
            RandomError::RandomFailure => Self::RandomFailure,
        }
    }
}

impl From<RandomError> for PickleError {
    fn from(e: RandomError) -> Self {
        match e {
            RandomError::RandomFailure => Self::RandomFailure,
        }
    }
}

impl From<RandomError> for AttachmentError {
    fn from(e: RandomError) -> Self {
        match e {
            RandomError::RandomFailure => Self::RandomFailure,
        }
    }
}

impl From<RandomError> for AccountError {
    fn from(e: RandomError) -> Self {
        match e {
            RandomError::RandomFailure => Self::RandomFailure,
        }
    }
}

impl From<AgreementError> for SessionError {
    fn from(e: AgreementError) -> Self {
        match e {
            AgreementError::NonContributory => Self::NonContributory,
        }
    }
}

impl From<SealError> for SessionError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::TooLarge { len, max } => Self::TooLarge { len, max },
        }
    }
}

impl From<SealError> for GroupError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::TooLarge { len, max } => Self::TooLarge { len, max },
        }
    }
}

impl From<SealError> for PickleError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::TooLarge { len, max } => Self::TooLarge { len, max },
        }
    }
}

impl From<SealError> for AttachmentError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::TooLarge { len, max } => Self::TooLarge { len, max },
        }
    }
}

impl From<SealToError> for AttachmentError {
    fn from(e: SealToError) -> Self {
        match e {
            SealToError::LengthOutOfRange { len, max } => Self::LengthOutOfRange { len, max },
            SealToError::TooLarge { len, max } => Self::TooLarge { len, max },
        }
    }
}

impl From<OpenError> for SessionError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::DecryptionFailed => Self::DecryptionFailed,
        }
    }
}

impl From<OpenError> for GroupError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::DecryptionFailed => Self::DecryptionFailed,
        }
    }
}

impl From<OpenError> for AttachmentError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::DecryptionFailed => Self::DecryptionFailed,
        }
    }
}

impl From<SigningKeyError> for Error {
    fn from(e: SigningKeyError) -> Self {
        match e {
            SigningKeyError::InvalidSigningKey => Self::InvalidSigningKey,
        }
    }
}

impl From<SignatureError> for Error {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::BadSignature => Self::BadSignature,
        }
    }
}

impl From<RandomError> for Error {
    fn from(e: RandomError) -> Self {
        match e {
            RandomError::RandomFailure => Self::RandomFailure,
        }
    }
}

impl From<AgreementError> for Error {
    fn from(e: AgreementError) -> Self {
        match e {
            AgreementError::NonContributory => Self::NonContributory,
        }
    }
}

impl From<SealError> for Error {
    fn from(e: SealError) -> Self {
        match e {
            SealError::TooLarge { len, max } => Self::TooLarge { len, max },
        }
    }
}

impl From<SealToError> for Error {
    fn from(e: SealToError) -> Self {
        match e {
            SealToError::LengthOutOfRange { len, max } => Self::LengthOutOfRange { len, max },
            SealToError::TooLarge { len, max } => Self::TooLarge { len, max },
        }
    }
}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::DecryptionFailed => Self::DecryptionFailed,
        }
    }
}

impl From<KdfError> for Error {
    fn from(e: KdfError) -> Self {
        match e {
            KdfError::KdfLength => Self::KdfLength,
        }
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Truncated { needed, remaining } => Self::Truncated { needed, remaining },
            DecodeError::TrailingBytes(n) => Self::TrailingBytes(n),
            DecodeError::UnsupportedVersion { expected, got } => {
                Self::UnsupportedVersion { expected, got }
            }
            DecodeError::UnknownMessageType(t) => Self::UnknownMessageType(t),
            DecodeError::LengthOutOfRange { len, max } => Self::LengthOutOfRange { len, max },
            DecodeError::ReservedFlags(f) => Self::ReservedFlags(f),
            DecodeError::InvalidField => Self::InvalidField,
            DecodeError::InvalidSigningKey => Self::InvalidSigningKey,
            DecodeError::BadSignature => Self::BadSignature,
        }
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NonContributory => Self::NonContributory,
            SessionError::DecryptionFailed => Self::DecryptionFailed,
            SessionError::DuplicateMessage => Self::DuplicateMessage,
            SessionError::TooFarAhead { jump, max } => Self::TooFarAhead { jump, max },
            SessionError::ChainExhausted => Self::ChainExhausted,
            SessionError::CannotEncrypt => Self::CannotEncrypt,
            SessionError::UnknownSignedPrekey(id) => Self::UnknownSignedPrekey(id),
            SessionError::UnknownOneTimePrekey(id) => Self::UnknownOneTimePrekey(id),
            SessionError::SessionMismatch => Self::SessionMismatch,
            SessionError::TooLarge { len, max } => Self::TooLarge { len, max },
            SessionError::RandomFailure => Self::RandomFailure,
            SessionError::InvalidField => Self::InvalidField,
        }
    }
}

impl From<GroupError> for Error {
    fn from(e: GroupError) -> Self {
        match e {
            GroupError::DistributionRoomMismatch => Self::DistributionRoomMismatch,
            GroupError::DistributionDeviceMismatch => Self::DistributionDeviceMismatch,
            GroupError::DistributionIdentityMismatch => Self::DistributionIdentityMismatch,
            GroupError::SigningKeyClaimed => Self::SigningKeyClaimed,
            GroupError::SenderChainRetired => Self::SenderChainRetired,
            GroupError::SenderChainConflict(id) => Self::SenderChainConflict(id),
            GroupError::UnknownSenderChain(id) => Self::UnknownSenderChain(id),
            GroupError::MessageKeyEvicted => Self::MessageKeyEvicted,
            GroupError::DuplicateMessage => Self::DuplicateMessage,
            GroupError::DecryptionFailed => Self::DecryptionFailed,
            GroupError::BadSignature => Self::BadSignature,
            GroupError::TooFarAhead { jump, max } => Self::TooFarAhead { jump, max },
            GroupError::ChainExhausted => Self::ChainExhausted,
            GroupError::TooLarge { len, max } => Self::TooLarge { len, max },
            GroupError::RandomFailure => Self::RandomFailure,
        }
    }
}

impl From<PickleError> for Error {
    fn from(e: PickleError) -> Self {
        match e {
            PickleError::PickleVersion { expected, got } => Self::PickleVersion { expected, got },
            PickleError::PickleKind { expected, got } => Self::PickleKind { expected, got },
            PickleError::PickleIdMismatch { expected, got } => {
                Self::PickleIdMismatch { expected, got }
            }
            PickleError::PickleRolledBack { counter, latest } => {
                Self::PickleRolledBack { counter, latest }
            }
            PickleError::PickleDecryption => Self::PickleDecryption,
            PickleError::ChainExhausted => Self::ChainExhausted,
            PickleError::TooLarge { len, max } => Self::TooLarge { len, max },
            PickleError::RandomFailure => Self::RandomFailure,
            PickleError::Decode(inner) => Self::from(inner),
        }
    }
}

impl From<AttachmentError> for Error {
    fn from(e: AttachmentError) -> Self {
        match e {
            AttachmentError::AttachmentTruncated => Self::AttachmentTruncated,
            AttachmentError::AttachmentTrailingData => Self::AttachmentTrailingData,
            AttachmentError::AttachmentDigestMismatch => Self::AttachmentDigestMismatch,
            AttachmentError::AttachmentKeyMismatch => Self::AttachmentKeyMismatch,
            AttachmentError::AttachmentStreamClosed => Self::AttachmentStreamClosed,
            AttachmentError::DecryptionFailed => Self::DecryptionFailed,
            AttachmentError::UnsupportedVersion { expected, got } => {
                Self::UnsupportedVersion { expected, got }
            }
            AttachmentError::InvalidField => Self::InvalidField,
            AttachmentError::TooLarge { len, max } => Self::TooLarge { len, max },
            AttachmentError::LengthOutOfRange { len, max } => Self::LengthOutOfRange { len, max },
            AttachmentError::RandomFailure => Self::RandomFailure,
        }
    }
}

impl From<SafetyNumberError> for Error {
    fn from(e: SafetyNumberError) -> Self {
        match e {
            SafetyNumberError::InvalidKeyLength { expected, got } => {
                Self::InvalidKeyLength { expected, got }
            }
            SafetyNumberError::Decode(inner) => Self::from(inner),
        }
    }
}

impl From<RelayChallengeError> for Error {
    fn from(e: RelayChallengeError) -> Self {
        match e {
            RelayChallengeError::InvalidRelayOrigin => Self::InvalidRelayOrigin,
            RelayChallengeError::BadSignature => Self::BadSignature,
        }
    }
}

impl From<AccountError> for Error {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::RandomFailure => Self::RandomFailure,
            AccountError::ChainExhausted => Self::ChainExhausted,
            AccountError::TooLarge { len, max } => Self::TooLarge { len, max },
            AccountError::NoSignedPrekey => Self::NoSignedPrekey,
            AccountError::BadSignature => Self::BadSignature,
        }
    }
}
