//! The client's errors: one [`ClientError`] with a stable [`ErrorCode`] for every case, so that
//! apps (and the JavaScript bindings) switch on a code, never on a message.

use std::fmt;

/// Every error code the client reports. The relay's codes (docs/api.md, "Error codes" and the
/// WebSocket codes) keep their names; the client adds its own below them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    // --- the relay's HTTP codes ---
    /// The relay could not parse the request body.
    InvalidJson,
    /// The request body was too large.
    PayloadTooLarge,
    /// A field is syntactically invalid.
    InvalidInput,
    /// The e-mail address is not valid.
    InvalidEmail,
    /// The ms_id breaks the rules (3–32 of `a-z0-9._-`).
    InvalidMsId,
    /// The password is shorter than 8 or longer than 128 characters.
    PasswordLength,
    /// The password is too common or too easy to guess.
    WeakPassword,
    /// The e-mail address is already registered.
    EmailTaken,
    /// The ms_id is taken or held back.
    MsIdUnavailable,
    /// No valid session: sign in again.
    Unauthorized,
    /// Wrong e-mail or password.
    InvalidCredentials,
    /// A cookie-authenticated write without its CSRF token.
    CsrfFailed,
    /// A second factor is needed (the login API returns it as an outcome, not an error).
    TwoFactorRequired,
    /// The login challenge is unknown or expired.
    InvalidChallenge,
    /// Wrong two-factor code.
    InvalidCode,
    /// The code expired.
    CodeExpired,
    /// The code was already used.
    CodeReplayed,
    /// Too many wrong codes.
    TooManyAttempts,
    /// The action needs 2FA in another state.
    TwoFactorState,
    /// The resource does not exist or is hidden.
    NotFound,
    /// A friend request to (or block of) oneself.
    SelfRequest,
    /// A pending request already exists.
    DuplicateRequest,
    /// Already friends.
    AlreadyFriends,
    /// A block forbids it.
    Blocked,
    /// Too many requests: wait `retry_after` seconds.
    RateLimited,
    /// The request conflicts with the current state.
    Conflict,
    /// The relay failed internally.
    Internal,
    /// The relay's database is unavailable.
    Unavailable,
    /// A key is not a valid crypto-core encoding.
    InvalidKey,
    /// A signature does not verify.
    BadSignature,
    /// The device identity is already registered.
    IdentityTaken,
    /// The account has the maximum number of devices.
    TooManyDevices,
    /// The device would hold too many one-time prekeys.
    TooManyPrekeys,
    /// A one-time prekey id is repeated.
    DuplicatePrekey,
    /// The new signed prekey is not newer than the current one.
    StalePrekey,
    /// A browser origin the relay does not allow.
    ForbiddenOrigin,
    /// The attachment quota would be exceeded.
    QuotaExceeded,
    /// The device does not exist or is not the caller's.
    UnknownDevice,
    /// The action needs a recent sign-in: the password (and second factor) again.
    ReauthRequired,
    /// Only an admin of the room may do this.
    NotRoomAdmin,
    /// The request body stopped arriving; the relay closed the connection.
    RequestTimeout,
    // --- the relay's WebSocket codes ---
    /// The recipient is neither a friend nor one's own device.
    NotFriends,
    /// The recipient device's queue is full.
    QueueFull,
    /// A send to a room the sender has not joined.
    NotAMember,
    /// The relay refused a frame as malformed (a client bug).
    InvalidFrame,
    /// The ciphertext is over the relay's limit.
    TooLarge,
    /// A frame without `v: 1` (a client bug).
    UnsupportedVersion,
    /// A frame of an unknown type (a client bug).
    UnknownType,
    /// A binary WebSocket frame (a client bug).
    BinaryNotSupported,
    // --- the client's own ---
    /// The network or the relay connection failed; retry later.
    Network,
    /// The relay answered something that does not follow docs/api.md.
    BadResponse,
    /// A relay code this client does not know.
    UnknownRelayCode,
    /// Not signed in.
    NotSignedIn,
    /// This device is not registered with the relay yet.
    NoDevice,
    /// The local store's password (or remember-me key) is wrong.
    WrongPassword,
    /// The local store is damaged or was written by an unknown version.
    StoreCorrupted,
    /// The local store failed (quota, I/O).
    Storage,
    /// A cryptographic operation failed (see the message).
    Crypto,
    /// A friend's device presented a different identity key than the one recorded.
    IdentityMismatch,
    /// An argument is out of its allowed range (see the message).
    InvalidArgument,
    /// The attachment's digest or size does not match what the message promised.
    AttachmentMismatch,
}

macro_rules! relay_codes {
    ($($code:literal => $variant:ident,)*) => {
        impl ErrorCode {
            /// The relay's code string for a relay code, or the client's own snake_case name.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                    Self::Network => "network",
                    Self::BadResponse => "bad_response",
                    Self::UnknownRelayCode => "unknown_relay_code",
                    Self::NotSignedIn => "not_signed_in",
                    Self::NoDevice => "no_device",
                    Self::WrongPassword => "wrong_password",
                    Self::StoreCorrupted => "store_corrupted",
                    Self::Storage => "storage",
                    Self::Crypto => "crypto",
                    Self::IdentityMismatch => "identity_mismatch",
                    Self::InvalidArgument => "invalid_argument",
                    Self::AttachmentMismatch => "attachment_mismatch",
                }
            }

            /// The code for a relay code string (HTTP or WebSocket); `None` when unknown.
            #[must_use]
            pub fn from_relay(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

relay_codes! {
    "invalid_json" => InvalidJson,
    "payload_too_large" => PayloadTooLarge,
    "invalid_input" => InvalidInput,
    "invalid_email" => InvalidEmail,
    "invalid_ms_id" => InvalidMsId,
    "password_length" => PasswordLength,
    "weak_password" => WeakPassword,
    "email_taken" => EmailTaken,
    "ms_id_unavailable" => MsIdUnavailable,
    "unauthorized" => Unauthorized,
    "invalid_credentials" => InvalidCredentials,
    "csrf_failed" => CsrfFailed,
    "two_factor_required" => TwoFactorRequired,
    "invalid_challenge" => InvalidChallenge,
    "invalid_code" => InvalidCode,
    "code_expired" => CodeExpired,
    "code_replayed" => CodeReplayed,
    "too_many_attempts" => TooManyAttempts,
    "two_factor_state" => TwoFactorState,
    "not_found" => NotFound,
    "self_request" => SelfRequest,
    "duplicate_request" => DuplicateRequest,
    "already_friends" => AlreadyFriends,
    "blocked" => Blocked,
    "rate_limited" => RateLimited,
    "conflict" => Conflict,
    "internal" => Internal,
    "unavailable" => Unavailable,
    "invalid_key" => InvalidKey,
    "bad_signature" => BadSignature,
    "identity_taken" => IdentityTaken,
    "too_many_devices" => TooManyDevices,
    "too_many_prekeys" => TooManyPrekeys,
    "duplicate_prekey" => DuplicatePrekey,
    "stale_prekey" => StalePrekey,
    "forbidden_origin" => ForbiddenOrigin,
    "quota_exceeded" => QuotaExceeded,
    "unknown_device" => UnknownDevice,
    "reauth_required" => ReauthRequired,
    "not_room_admin" => NotRoomAdmin,
    "request_timeout" => RequestTimeout,
    "not_friends" => NotFriends,
    "queue_full" => QueueFull,
    "not_a_member" => NotAMember,
    "invalid_frame" => InvalidFrame,
    "too_large" => TooLarge,
    "unsupported_version" => UnsupportedVersion,
    "unknown_type" => UnknownType,
    "binary_not_supported" => BinaryNotSupported,
}

impl ErrorCode {
    const CLIENT_CODES: [Self; 12] = [
        Self::Network,
        Self::BadResponse,
        Self::UnknownRelayCode,
        Self::NotSignedIn,
        Self::NoDevice,
        Self::WrongPassword,
        Self::StoreCorrupted,
        Self::Storage,
        Self::Crypto,
        Self::IdentityMismatch,
        Self::InvalidArgument,
        Self::AttachmentMismatch,
    ];

    /// The code named `s` (a relay code or one of the client's own).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_relay(s).or_else(|| Self::CLIENT_CODES.into_iter().find(|c| c.as_str() == s))
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s).unwrap_or(Self::UnknownRelayCode))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the client. `code()` is what apps switch on; the message is for humans.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The relay refused the request with one of its codes.
    #[error("the relay refused the request ({code}): {message}")]
    Relay {
        /// The relay's code, or [`ErrorCode::UnknownRelayCode`].
        code: ErrorCode,
        /// The HTTP status (0 for a WebSocket error frame).
        status: u16,
        /// The relay's message for humans.
        message: String,
        /// Seconds to wait before retrying (429 answers).
        retry_after: Option<u64>,
    },
    /// The network failed or the relay could not be reached.
    #[error("network: {0}")]
    Network(String),
    /// The relay answered something that does not follow its documented API.
    #[error("unexpected answer from the relay: {0}")]
    BadResponse(String),
    /// Not signed in.
    #[error("not signed in")]
    NotSignedIn,
    /// The device is not registered.
    #[error("this device is not registered with the relay")]
    NoDevice,
    /// The local store's password or key is wrong.
    #[error("wrong password for the local store")]
    WrongPassword,
    /// The local store's content cannot be read.
    #[error("the local store is damaged: {0}")]
    StoreCorrupted(String),
    /// The local store failed.
    #[error("storage failed: {0}")]
    Storage(String),
    /// A protocol operation of crypto-core failed.
    #[error("crypto: {0}")]
    Crypto(#[from] crypto_core::Error),
    /// A device presented an identity key other than the recorded one.
    #[error("device {device_id} of user {user_id} presented a different identity key")]
    IdentityMismatch {
        /// The user.
        user_id: i64,
        /// The device.
        device_id: i64,
    },
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An attachment does not match its reference.
    #[error("the attachment does not match its reference: {0}")]
    AttachmentMismatch(String),
}

impl ClientError {
    /// The stable code of this error.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Relay { code, .. } => *code,
            Self::Network(_) => ErrorCode::Network,
            Self::BadResponse(_) => ErrorCode::BadResponse,
            Self::NotSignedIn => ErrorCode::NotSignedIn,
            Self::NoDevice => ErrorCode::NoDevice,
            Self::WrongPassword => ErrorCode::WrongPassword,
            Self::StoreCorrupted(_) => ErrorCode::StoreCorrupted,
            Self::Storage(_) => ErrorCode::Storage,
            Self::Crypto(_) => ErrorCode::Crypto,
            Self::IdentityMismatch { .. } => ErrorCode::IdentityMismatch,
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::AttachmentMismatch(_) => ErrorCode::AttachmentMismatch,
        }
    }

    /// Seconds to wait before retrying, for rate limits.
    #[must_use]
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Relay { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn bad_response(what: impl fmt::Display) -> Self {
        Self::BadResponse(what.to_string())
    }
}

macro_rules! crypto_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ClientError {
            fn from(e: $t) -> Self {
                Self::Crypto(e.into())
            }
        }
    )*};
}

crypto_from!(
    crypto_core::DecodeError,
    crypto_core::SessionError,
    crypto_core::GroupError,
    crypto_core::PickleError,
    crypto_core::AccountError,
    crypto_core::AttachmentError,
    crypto_core::SignatureError,
    crypto_core::SafetyNumberError
);

/// The client's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error code docs/api.md documents (HTTP and WebSocket tables) is known here, so a
    /// code the relay adds cannot reach apps as `unknown_relay_code` unnoticed.
    #[test]
    fn knows_every_documented_relay_code() {
        let doc = include_str!("../../docs/api.md");
        let mut seen = 0;
        for line in doc.lines() {
            let Some(rest) = line.strip_prefix("| `") else {
                continue;
            };
            let Some((code, tail)) = rest.split_once('`') else {
                continue;
            };
            // Rows of the two error-code tables: `code` | status or meaning | ...
            let is_code = code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            let http_row =
                tail.trim_start().starts_with("| 4") || tail.trim_start().starts_with("| 5");
            let ws_row = tail.trim_end().ends_with("| no |")
                || tail.trim_end().ends_with("| yes |")
                || tail.trim_end().ends_with("| later |")
                || tail.contains("| after `retry_after` |");
            if is_code && (http_row || ws_row) {
                seen += 1;
                assert!(
                    ErrorCode::from_relay(code).is_some(),
                    "docs/api.md documents `{code}`, which ErrorCode does not know"
                );
            }
        }
        assert!(seen > 45, "the tables were found ({seen} rows)");
    }

    /// The TypeScript `ErrorCode` union of the bindings lists exactly the codes of this enum.
    #[test]
    fn the_typescript_union_lists_every_code() {
        let bindings = include_str!("bindings.rs");
        let start = bindings.find("export type ErrorCode =").unwrap();
        let end = start + bindings[start..].find(';').unwrap();
        let union: Vec<&str> = bindings[start..end].split('"').skip(1).step_by(2).collect();
        let relay_codes = include_str!("error.rs")
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split_once("\" => "))
            .map(|(code, _)| code)
            .collect::<Vec<_>>();
        assert!(relay_codes.len() > 40);
        for code in &relay_codes {
            let parsed = ErrorCode::parse(code).unwrap();
            assert!(
                union.contains(&parsed.as_str()),
                "{code} missing from the TS union"
            );
        }
        for code in ErrorCode::CLIENT_CODES {
            assert!(
                union.contains(&code.as_str()),
                "{code} missing from the TS union"
            );
        }
        for name in &union {
            assert!(ErrorCode::parse(name).is_some(), "{name} is not a code");
        }
        assert_eq!(
            union.len(),
            relay_codes.len() + ErrorCode::CLIENT_CODES.len()
        );
    }

    #[test]
    fn relay_codes_round_trip() {
        for code in [
            "invalid_credentials",
            "two_factor_required",
            "ms_id_unavailable",
            "not_friends",
            "queue_full",
            "unknown_device",
        ] {
            let parsed = ErrorCode::from_relay(code).unwrap();
            assert_eq!(parsed.as_str(), code);
        }
        assert_eq!(ErrorCode::from_relay("no_such_code"), None);
        // The client's own codes are never mistaken for relay codes.
        assert_eq!(ErrorCode::from_relay(ErrorCode::Network.as_str()), None);
    }
}
