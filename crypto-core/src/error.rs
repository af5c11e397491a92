//! The one error type of crypto-core.

use thiserror::Error;

/// Every way a crypto-core operation can fail.
///
/// Decoders, decryption and unpickling return these instead of panicking; none of the
/// messages contain secret material.
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

/// Result alias for crypto-core.
pub type Result<T, E = Error> = core::result::Result<T, E>;
