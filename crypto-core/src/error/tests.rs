//! Every per-operation error converts into the umbrella [`Error`] variant for variant: the
//! same message, and the umbrella variant of the same name and fields (a nested `Decode`
//! converts to the umbrella variant of the inner [`DecodeError`]).
//!
//! The variant lists are written by hand. Each enum also has an `index_…` function, an
//! exhaustive `match` without a wildcard (possible only inside the crate: the enums are
//! `#[non_exhaustive]`, which is why these tests are unit tests): a new variant does not build
//! until it gets a position, and `each_list_holds_every_variant` then fails until the list has
//! it.

use super::*;

/// The name of a variant as `Debug` prints it (`Truncated { .. }` gives `Truncated`).
fn variant_name(debug: &str) -> &str {
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
}

/// One variant: the same message through the umbrella, and the umbrella variant with its name
/// and fields (for `Decode(inner)`, the inner error's).
fn check<E>(variant: E)
where
    E: Clone + core::fmt::Debug + core::fmt::Display + PartialEq,
    Error: From<E>,
{
    let umbrella = Error::from(variant.clone());
    assert_eq!(umbrella.to_string(), variant.to_string(), "{variant:?}");
    let debug = format!("{variant:?}");
    let expected = debug
        .strip_prefix("Decode(")
        .and_then(|inner| inner.strip_suffix(')'))
        .unwrap_or(&debug);
    assert_eq!(format!("{umbrella:?}"), expected, "{variant:?}");
    assert_eq!(
        variant_name(&format!("{umbrella:?}")),
        variant_name(expected)
    );
}

/// The positions a list covers, sorted, without repeats.
fn positions<E>(all: &[E], index: fn(&E) -> usize) -> Vec<usize> {
    let mut seen: Vec<usize> = all.iter().map(index).collect();
    seen.sort_unstable();
    seen.dedup();
    seen
}

/// Every variant of [`SigningKeyError`].
fn all_signing_key_error() -> Vec<SigningKeyError> {
    vec![SigningKeyError::InvalidSigningKey]
}

/// The position of each variant of [`SigningKeyError`] (exhaustive).
fn index_signing_key_error(v: &SigningKeyError) -> usize {
    match v {
        SigningKeyError::InvalidSigningKey => 0,
    }
}

const SIGNING_KEY_ERROR_VARIANTS: usize = 1;

/// Every variant of [`SignatureError`].
fn all_signature_error() -> Vec<SignatureError> {
    vec![SignatureError::BadSignature]
}

/// The position of each variant of [`SignatureError`] (exhaustive).
fn index_signature_error(v: &SignatureError) -> usize {
    match v {
        SignatureError::BadSignature => 0,
    }
}

const SIGNATURE_ERROR_VARIANTS: usize = 1;

/// Every variant of [`RandomError`].
fn all_random_error() -> Vec<RandomError> {
    vec![RandomError::RandomFailure]
}

/// The position of each variant of [`RandomError`] (exhaustive).
fn index_random_error(v: &RandomError) -> usize {
    match v {
        RandomError::RandomFailure => 0,
    }
}

const RANDOM_ERROR_VARIANTS: usize = 1;

/// Every variant of [`AgreementError`].
fn all_agreement_error() -> Vec<AgreementError> {
    vec![AgreementError::NonContributory]
}

/// The position of each variant of [`AgreementError`] (exhaustive).
fn index_agreement_error(v: &AgreementError) -> usize {
    match v {
        AgreementError::NonContributory => 0,
    }
}

const AGREEMENT_ERROR_VARIANTS: usize = 1;

/// Every variant of [`SealError`].
fn all_seal_error() -> Vec<SealError> {
    vec![SealError::TooLarge { len: 2, max: 1 }]
}

/// The position of each variant of [`SealError`] (exhaustive).
fn index_seal_error(v: &SealError) -> usize {
    match v {
        SealError::TooLarge { .. } => 0,
    }
}

const SEAL_ERROR_VARIANTS: usize = 1;

/// Every variant of [`SealToError`].
fn all_seal_to_error() -> Vec<SealToError> {
    vec![
        SealToError::LengthOutOfRange { len: 2, max: 1 },
        SealToError::TooLarge { len: 2, max: 1 },
    ]
}

/// The position of each variant of [`SealToError`] (exhaustive).
fn index_seal_to_error(v: &SealToError) -> usize {
    match v {
        SealToError::LengthOutOfRange { .. } => 0,
        SealToError::TooLarge { .. } => 1,
    }
}

const SEAL_TO_ERROR_VARIANTS: usize = 2;

/// Every variant of [`OpenError`].
fn all_open_error() -> Vec<OpenError> {
    vec![OpenError::DecryptionFailed]
}

/// The position of each variant of [`OpenError`] (exhaustive).
fn index_open_error(v: &OpenError) -> usize {
    match v {
        OpenError::DecryptionFailed => 0,
    }
}

const OPEN_ERROR_VARIANTS: usize = 1;

/// Every variant of [`KdfError`].
fn all_kdf_error() -> Vec<KdfError> {
    vec![KdfError::KdfLength]
}

/// The position of each variant of [`KdfError`] (exhaustive).
fn index_kdf_error(v: &KdfError) -> usize {
    match v {
        KdfError::KdfLength => 0,
    }
}

const KDF_ERROR_VARIANTS: usize = 1;

/// Every variant of [`DecodeError`].
fn all_decode_error() -> Vec<DecodeError> {
    vec![
        DecodeError::Truncated {
            needed: 2,
            remaining: 1,
        },
        DecodeError::TrailingBytes(3),
        DecodeError::UnsupportedVersion {
            expected: 2,
            got: 1,
        },
        DecodeError::UnknownMessageType(9),
        DecodeError::LengthOutOfRange { len: 2, max: 1 },
        DecodeError::ReservedFlags(0x02),
        DecodeError::InvalidField,
        DecodeError::InvalidSigningKey,
        DecodeError::BadSignature,
    ]
}

/// The position of each variant of [`DecodeError`] (exhaustive).
fn index_decode_error(v: &DecodeError) -> usize {
    match v {
        DecodeError::Truncated { .. } => 0,
        DecodeError::TrailingBytes(_) => 1,
        DecodeError::UnsupportedVersion { .. } => 2,
        DecodeError::UnknownMessageType(_) => 3,
        DecodeError::LengthOutOfRange { .. } => 4,
        DecodeError::ReservedFlags(_) => 5,
        DecodeError::InvalidField => 6,
        DecodeError::InvalidSigningKey => 7,
        DecodeError::BadSignature => 8,
    }
}

const DECODE_ERROR_VARIANTS: usize = 9;

/// Every variant of [`SessionError`].
fn all_session_error() -> Vec<SessionError> {
    vec![
        SessionError::NonContributory,
        SessionError::DecryptionFailed,
        SessionError::DuplicateMessage,
        SessionError::TooFarAhead {
            jump: 1001,
            max: 1000,
        },
        SessionError::ChainExhausted,
        SessionError::CannotEncrypt,
        SessionError::UnknownSignedPrekey(7),
        SessionError::UnknownOneTimePrekey(8),
        SessionError::SessionMismatch,
        SessionError::TooLarge { len: 2, max: 1 },
        SessionError::RandomFailure,
        SessionError::InvalidField,
    ]
}

/// The position of each variant of [`SessionError`] (exhaustive).
fn index_session_error(v: &SessionError) -> usize {
    match v {
        SessionError::NonContributory => 0,
        SessionError::DecryptionFailed => 1,
        SessionError::DuplicateMessage => 2,
        SessionError::TooFarAhead { .. } => 3,
        SessionError::ChainExhausted => 4,
        SessionError::CannotEncrypt => 5,
        SessionError::UnknownSignedPrekey(_) => 6,
        SessionError::UnknownOneTimePrekey(_) => 7,
        SessionError::SessionMismatch => 8,
        SessionError::TooLarge { .. } => 9,
        SessionError::RandomFailure => 10,
        SessionError::InvalidField => 11,
    }
}

const SESSION_ERROR_VARIANTS: usize = 12;

/// Every variant of [`GroupError`].
fn all_group_error() -> Vec<GroupError> {
    vec![
        GroupError::DistributionRoomMismatch,
        GroupError::DistributionDeviceMismatch,
        GroupError::DistributionIdentityMismatch,
        GroupError::SigningKeyClaimed,
        GroupError::SenderChainRetired,
        GroupError::SenderChainConflict(0x0102_0304),
        GroupError::UnknownSenderChain(0x0a0b_0c0d),
        GroupError::MessageKeyEvicted,
        GroupError::DuplicateMessage,
        GroupError::DecryptionFailed,
        GroupError::BadSignature,
        GroupError::TooFarAhead {
            jump: 1001,
            max: 1000,
        },
        GroupError::ChainExhausted,
        GroupError::TooLarge { len: 2, max: 1 },
        GroupError::RandomFailure,
    ]
}

/// The position of each variant of [`GroupError`] (exhaustive).
fn index_group_error(v: &GroupError) -> usize {
    match v {
        GroupError::DistributionRoomMismatch => 0,
        GroupError::DistributionDeviceMismatch => 1,
        GroupError::DistributionIdentityMismatch => 2,
        GroupError::SigningKeyClaimed => 3,
        GroupError::SenderChainRetired => 4,
        GroupError::SenderChainConflict(_) => 5,
        GroupError::UnknownSenderChain(_) => 6,
        GroupError::MessageKeyEvicted => 7,
        GroupError::DuplicateMessage => 8,
        GroupError::DecryptionFailed => 9,
        GroupError::BadSignature => 10,
        GroupError::TooFarAhead { .. } => 11,
        GroupError::ChainExhausted => 12,
        GroupError::TooLarge { .. } => 13,
        GroupError::RandomFailure => 14,
    }
}

const GROUP_ERROR_VARIANTS: usize = 15;

/// Every variant of [`PickleError`].
fn all_pickle_error() -> Vec<PickleError> {
    vec![
        PickleError::PickleVersion {
            expected: 2,
            got: 1,
        },
        PickleError::PickleKind {
            expected: 1,
            got: 2,
        },
        PickleError::PickleIdMismatch {
            expected: PickleId::from_bytes([1; 16]),
            got: PickleId::from_bytes([2; 16]),
        },
        PickleError::PickleRolledBack {
            counter: 3,
            latest: 4,
        },
        PickleError::PickleDecryption,
        PickleError::ChainExhausted,
        PickleError::TooLarge { len: 2, max: 1 },
        PickleError::RandomFailure,
        PickleError::Decode(DecodeError::Truncated {
            needed: 2,
            remaining: 1,
        }),
        PickleError::Decode(DecodeError::TrailingBytes(3)),
        PickleError::Decode(DecodeError::UnsupportedVersion {
            expected: 2,
            got: 1,
        }),
        PickleError::Decode(DecodeError::UnknownMessageType(9)),
        PickleError::Decode(DecodeError::LengthOutOfRange { len: 2, max: 1 }),
        PickleError::Decode(DecodeError::ReservedFlags(0x02)),
        PickleError::Decode(DecodeError::InvalidField),
        PickleError::Decode(DecodeError::InvalidSigningKey),
        PickleError::Decode(DecodeError::BadSignature),
    ]
}

/// The position of each variant of [`PickleError`] (exhaustive).
fn index_pickle_error(v: &PickleError) -> usize {
    match v {
        PickleError::PickleVersion { .. } => 0,
        PickleError::PickleKind { .. } => 1,
        PickleError::PickleIdMismatch { .. } => 2,
        PickleError::PickleRolledBack { .. } => 3,
        PickleError::PickleDecryption => 4,
        PickleError::ChainExhausted => 5,
        PickleError::TooLarge { .. } => 6,
        PickleError::RandomFailure => 7,
        PickleError::Decode(_) => 8,
    }
}

const PICKLE_ERROR_VARIANTS: usize = 9;

/// Every variant of [`AttachmentError`].
fn all_attachment_error() -> Vec<AttachmentError> {
    vec![
        AttachmentError::AttachmentTruncated,
        AttachmentError::AttachmentTrailingData,
        AttachmentError::AttachmentDigestMismatch,
        AttachmentError::AttachmentKeyMismatch,
        AttachmentError::AttachmentStreamClosed,
        AttachmentError::DecryptionFailed,
        AttachmentError::UnsupportedVersion {
            expected: 2,
            got: 1,
        },
        AttachmentError::InvalidField,
        AttachmentError::TooLarge { len: 2, max: 1 },
        AttachmentError::LengthOutOfRange { len: 2, max: 1 },
        AttachmentError::RandomFailure,
    ]
}

/// The position of each variant of [`AttachmentError`] (exhaustive).
fn index_attachment_error(v: &AttachmentError) -> usize {
    match v {
        AttachmentError::AttachmentTruncated => 0,
        AttachmentError::AttachmentTrailingData => 1,
        AttachmentError::AttachmentDigestMismatch => 2,
        AttachmentError::AttachmentKeyMismatch => 3,
        AttachmentError::AttachmentStreamClosed => 4,
        AttachmentError::DecryptionFailed => 5,
        AttachmentError::UnsupportedVersion { .. } => 6,
        AttachmentError::InvalidField => 7,
        AttachmentError::TooLarge { .. } => 8,
        AttachmentError::LengthOutOfRange { .. } => 9,
        AttachmentError::RandomFailure => 10,
    }
}

const ATTACHMENT_ERROR_VARIANTS: usize = 11;

/// Every variant of [`SafetyNumberError`].
fn all_safety_number_error() -> Vec<SafetyNumberError> {
    vec![
        SafetyNumberError::InvalidKeyLength {
            expected: 64,
            got: 63,
        },
        SafetyNumberError::Decode(DecodeError::Truncated {
            needed: 2,
            remaining: 1,
        }),
        SafetyNumberError::Decode(DecodeError::TrailingBytes(3)),
        SafetyNumberError::Decode(DecodeError::UnsupportedVersion {
            expected: 2,
            got: 1,
        }),
        SafetyNumberError::Decode(DecodeError::UnknownMessageType(9)),
        SafetyNumberError::Decode(DecodeError::LengthOutOfRange { len: 2, max: 1 }),
        SafetyNumberError::Decode(DecodeError::ReservedFlags(0x02)),
        SafetyNumberError::Decode(DecodeError::InvalidField),
        SafetyNumberError::Decode(DecodeError::InvalidSigningKey),
        SafetyNumberError::Decode(DecodeError::BadSignature),
    ]
}

/// The position of each variant of [`SafetyNumberError`] (exhaustive).
fn index_safety_number_error(v: &SafetyNumberError) -> usize {
    match v {
        SafetyNumberError::InvalidKeyLength { .. } => 0,
        SafetyNumberError::Decode(_) => 1,
    }
}

const SAFETY_NUMBER_ERROR_VARIANTS: usize = 2;

/// Every variant of [`RelayChallengeError`].
fn all_relay_challenge_error() -> Vec<RelayChallengeError> {
    vec![
        RelayChallengeError::InvalidRelayOrigin,
        RelayChallengeError::BadSignature,
    ]
}

/// The position of each variant of [`RelayChallengeError`] (exhaustive).
fn index_relay_challenge_error(v: &RelayChallengeError) -> usize {
    match v {
        RelayChallengeError::InvalidRelayOrigin => 0,
        RelayChallengeError::BadSignature => 1,
    }
}

const RELAY_CHALLENGE_ERROR_VARIANTS: usize = 2;

/// Every variant of [`AccountError`].
fn all_account_error() -> Vec<AccountError> {
    vec![
        AccountError::RandomFailure,
        AccountError::ChainExhausted,
        AccountError::TooLarge { len: 2, max: 1 },
        AccountError::NoSignedPrekey,
        AccountError::BadSignature,
    ]
}

/// The position of each variant of [`AccountError`] (exhaustive).
fn index_account_error(v: &AccountError) -> usize {
    match v {
        AccountError::RandomFailure => 0,
        AccountError::ChainExhausted => 1,
        AccountError::TooLarge { .. } => 2,
        AccountError::NoSignedPrekey => 3,
        AccountError::BadSignature => 4,
    }
}

const ACCOUNT_ERROR_VARIANTS: usize = 5;

#[test]
fn every_variant_converts_with_the_same_message_and_name() {
    all_signing_key_error().into_iter().for_each(check);
    all_signature_error().into_iter().for_each(check);
    all_random_error().into_iter().for_each(check);
    all_agreement_error().into_iter().for_each(check);
    all_seal_error().into_iter().for_each(check);
    all_seal_to_error().into_iter().for_each(check);
    all_open_error().into_iter().for_each(check);
    all_kdf_error().into_iter().for_each(check);
    all_decode_error().into_iter().for_each(check);
    all_session_error().into_iter().for_each(check);
    all_group_error().into_iter().for_each(check);
    all_pickle_error().into_iter().for_each(check);
    all_attachment_error().into_iter().for_each(check);
    all_safety_number_error().into_iter().for_each(check);
    all_relay_challenge_error().into_iter().for_each(check);
    all_account_error().into_iter().for_each(check);
}

#[test]
fn each_list_holds_every_variant() {
    assert_eq!(
        positions(&all_signing_key_error(), index_signing_key_error),
        (0..SIGNING_KEY_ERROR_VARIANTS).collect::<Vec<_>>(),
        "SigningKeyError"
    );
    assert_eq!(
        positions(&all_signature_error(), index_signature_error),
        (0..SIGNATURE_ERROR_VARIANTS).collect::<Vec<_>>(),
        "SignatureError"
    );
    assert_eq!(
        positions(&all_random_error(), index_random_error),
        (0..RANDOM_ERROR_VARIANTS).collect::<Vec<_>>(),
        "RandomError"
    );
    assert_eq!(
        positions(&all_agreement_error(), index_agreement_error),
        (0..AGREEMENT_ERROR_VARIANTS).collect::<Vec<_>>(),
        "AgreementError"
    );
    assert_eq!(
        positions(&all_seal_error(), index_seal_error),
        (0..SEAL_ERROR_VARIANTS).collect::<Vec<_>>(),
        "SealError"
    );
    assert_eq!(
        positions(&all_seal_to_error(), index_seal_to_error),
        (0..SEAL_TO_ERROR_VARIANTS).collect::<Vec<_>>(),
        "SealToError"
    );
    assert_eq!(
        positions(&all_open_error(), index_open_error),
        (0..OPEN_ERROR_VARIANTS).collect::<Vec<_>>(),
        "OpenError"
    );
    assert_eq!(
        positions(&all_kdf_error(), index_kdf_error),
        (0..KDF_ERROR_VARIANTS).collect::<Vec<_>>(),
        "KdfError"
    );
    assert_eq!(
        positions(&all_decode_error(), index_decode_error),
        (0..DECODE_ERROR_VARIANTS).collect::<Vec<_>>(),
        "DecodeError"
    );
    assert_eq!(
        positions(&all_session_error(), index_session_error),
        (0..SESSION_ERROR_VARIANTS).collect::<Vec<_>>(),
        "SessionError"
    );
    assert_eq!(
        positions(&all_group_error(), index_group_error),
        (0..GROUP_ERROR_VARIANTS).collect::<Vec<_>>(),
        "GroupError"
    );
    assert_eq!(
        positions(&all_pickle_error(), index_pickle_error),
        (0..PICKLE_ERROR_VARIANTS).collect::<Vec<_>>(),
        "PickleError"
    );
    assert_eq!(
        positions(&all_attachment_error(), index_attachment_error),
        (0..ATTACHMENT_ERROR_VARIANTS).collect::<Vec<_>>(),
        "AttachmentError"
    );
    assert_eq!(
        positions(&all_safety_number_error(), index_safety_number_error),
        (0..SAFETY_NUMBER_ERROR_VARIANTS).collect::<Vec<_>>(),
        "SafetyNumberError"
    );
    assert_eq!(
        positions(&all_relay_challenge_error(), index_relay_challenge_error),
        (0..RELAY_CHALLENGE_ERROR_VARIANTS).collect::<Vec<_>>(),
        "RelayChallengeError"
    );
    assert_eq!(
        positions(&all_account_error(), index_account_error),
        (0..ACCOUNT_ERROR_VARIANTS).collect::<Vec<_>>(),
        "AccountError"
    );
}
