//! The API's error codes and their HTTP statuses. Every error body is
//! `{ "error": "<code>", "message": "…" }`; internal causes are logged, never sent.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;
use utoipa::ToSchema;

/// Every error code the API can return (serialized in snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON or has wrong types or fields.
    InvalidJson,
    /// The body is larger than the endpoint accepts.
    PayloadTooLarge,
    /// A field is syntactically invalid (the message says which).
    InvalidInput,
    /// The e-mail address is not valid.
    InvalidEmail,
    /// The ms_id breaks the rules (3–32 of `a-z0-9._-`).
    InvalidMsId,
    /// The password is shorter than 8 or longer than 128 characters.
    PasswordLength,
    /// The password is too common or too easy to guess.
    WeakPassword,
    /// The new address of an e-mail change got an account before the change was confirmed.
    EmailTaken,
    /// ms_id taken, or held back after its release.
    MsIdUnavailable,
    /// No valid session token.
    Unauthorized,
    /// Wrong e-mail or password.
    InvalidCredentials,
    /// Cookie-authenticated write without a matching CSRF token.
    CsrfFailed,
    /// A second factor is needed: the body carries a challenge.
    TwoFactorRequired,
    /// The login challenge is unknown or expired.
    InvalidChallenge,
    /// Wrong two-factor code.
    InvalidCode,
    /// The code expired.
    CodeExpired,
    /// The code was already used.
    CodeReplayed,
    /// Too many wrong codes for this challenge or account.
    TooManyAttempts,
    /// The action needs 2FA to be in a state it is not in.
    TwoFactorState,
    /// The resource does not exist (or is hidden from the caller).
    NotFound,
    /// A friend request to (or block of) oneself.
    SelfRequest,
    /// A pending request already exists.
    DuplicateRequest,
    /// Already friends.
    AlreadyFriends,
    /// A block between the two users forbids it.
    Blocked,
    /// Too many requests (or open connections): retry after the `Retry-After` seconds.
    RateLimited,
    /// The request body stopped arriving for longer than the relay waits.
    RequestTimeout,
    /// The request conflicts with the current state (the message says how).
    Conflict,
    /// A browser `Origin` that may not open the WebSocket.
    ForbiddenOrigin,
    /// The device does not exist or is not the caller's.
    UnknownDevice,
    /// The upload would take the account over its attachment quota.
    QuotaExceeded,
    /// Something failed inside the relay; details are in its log.
    Internal,
    /// The database is unavailable, or the relay is too busy (with `Retry-After`).
    Unavailable,
    /// A key or prekey is not the base64 of a valid crypto-core encoding (length, version or
    /// point).
    InvalidKey,
    /// A signature over an identity or signed prekey does not verify (strict Ed25519).
    BadSignature,
    /// This device identity key is already registered.
    IdentityTaken,
    /// The account already has the maximum number of devices.
    TooManyDevices,
    /// The device would hold more one-time prekeys than allowed.
    TooManyPrekeys,
    /// A one-time prekey id is repeated in the upload or already stored for the device.
    DuplicatePrekey,
    /// The new signed prekey's id is not greater than the current one's.
    StalePrekey,
    /// Only an admin of the room may do this (rename, remove a member, change a role, delete).
    NotRoomAdmin,
    /// The action needs a recent sign-in: send the password (and a second-factor code when
    /// 2FA is on) with the request, or sign in again.
    ReauthRequired,
}

impl ErrorCode {
    /// The HTTP status of the code.
    #[must_use]
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidJson | InvalidInput | InvalidEmail | InvalidMsId | PasswordLength
            | WeakPassword | SelfRequest | InvalidKey | BadSignature => StatusCode::BAD_REQUEST,
            PayloadTooLarge | QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            Unauthorized | InvalidCredentials | InvalidChallenge | InvalidCode | CodeExpired
            | CodeReplayed => StatusCode::UNAUTHORIZED,
            TwoFactorRequired => StatusCode::UNAUTHORIZED,
            CsrfFailed | Blocked | ForbiddenOrigin | ReauthRequired | NotRoomAdmin => {
                StatusCode::FORBIDDEN
            }
            NotFound | UnknownDevice => StatusCode::NOT_FOUND,
            EmailTaken | MsIdUnavailable | DuplicateRequest | AlreadyFriends | TwoFactorState
            | Conflict | IdentityTaken | TooManyDevices | TooManyPrekeys | DuplicatePrekey
            | StalePrekey => StatusCode::CONFLICT,
            TooManyAttempts | RateLimited => StatusCode::TOO_MANY_REQUESTS,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Every code, for the test that each one is documented and reachable.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidJson,
        ErrorCode::PayloadTooLarge,
        ErrorCode::InvalidInput,
        ErrorCode::InvalidEmail,
        ErrorCode::InvalidMsId,
        ErrorCode::PasswordLength,
        ErrorCode::WeakPassword,
        ErrorCode::EmailTaken,
        ErrorCode::MsIdUnavailable,
        ErrorCode::Unauthorized,
        ErrorCode::InvalidCredentials,
        ErrorCode::CsrfFailed,
        ErrorCode::TwoFactorRequired,
        ErrorCode::InvalidChallenge,
        ErrorCode::InvalidCode,
        ErrorCode::CodeExpired,
        ErrorCode::CodeReplayed,
        ErrorCode::TooManyAttempts,
        ErrorCode::TwoFactorState,
        ErrorCode::NotFound,
        ErrorCode::SelfRequest,
        ErrorCode::DuplicateRequest,
        ErrorCode::AlreadyFriends,
        ErrorCode::Blocked,
        ErrorCode::RateLimited,
        ErrorCode::RequestTimeout,
        ErrorCode::Conflict,
        ErrorCode::ForbiddenOrigin,
        ErrorCode::UnknownDevice,
        ErrorCode::QuotaExceeded,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::InvalidKey,
        ErrorCode::BadSignature,
        ErrorCode::IdentityTaken,
        ErrorCode::TooManyDevices,
        ErrorCode::TooManyPrekeys,
        ErrorCode::DuplicatePrekey,
        ErrorCode::StalePrekey,
        ErrorCode::ReauthRequired,
        ErrorCode::NotRoomAdmin,
    ];
}

/// The JSON error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub error: ErrorCode,
    /// Human-readable explanation (never an internal cause).
    pub message: String,
}

/// An API error: a code, a client-safe message and, for 429, a retry delay.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// The message sent to the client.
    pub message: String,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`.
    #[must_use]
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            code: ErrorCode::RateLimited,
            message: "too many requests; retry later".into(),
            retry_after: Some(retry_after.max(1)),
        }
    }

    /// 503 `unavailable` with `Retry-After`: the relay is too busy for this request right now.
    pub fn unavailable(retry_after: u64, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Unavailable,
            message: message.into(),
            retry_after: Some(retry_after.max(1)),
        }
    }

    /// A failure inside the relay: the cause is logged here and replaced by a generic message.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.insert_header((RETRY_AFTER, value));
        }
        response.json(ErrorBody {
            error: self.code,
            message: self.message.clone(),
        })
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::Connection(_) => {
                tracing::error!(error = %e, "database unavailable");
                Self::new(ErrorCode::Unavailable, "service temporarily unavailable")
            }
            other => Self::internal(other),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        Self::internal(e)
    }
}
