//! The relay's HTTP API (docs/api.md, `/api/v1/openapi.json`): request and answer shapes, and
//! [`Relay`], which sends them through a [`Transport`] and maps error bodies to
//! [`ClientError::Relay`].

use crate::error::{ClientError, ErrorCode, Result};
use crate::transport::{Method, Request, Transport};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `POST /accounts`.
#[derive(Serialize)]
pub(crate) struct RegisterBody<'a> {
    pub(crate) email: &'a str,
    pub(crate) password: &'a str,
    pub(crate) ms_id: &'a str,
    pub(crate) display_name: &'a str,
}

/// A new account.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct AccountCreated {
    /// The account's user id.
    pub user_id: i64,
    /// Its e-mail address.
    pub email: String,
    /// Its ms_id.
    pub ms_id: String,
    /// Its display name.
    pub display_name: String,
}

#[derive(Serialize)]
pub(crate) struct LoginBody<'a> {
    pub(crate) email: &'a str,
    pub(crate) password: &'a str,
}

#[derive(Deserialize)]
pub(crate) struct LoginAnswer {
    pub(crate) token: String,
    pub(crate) user_id: i64,
    pub(crate) expires_at: i64,
}

/// A second-factor method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    /// A code from an authenticator app.
    Totp,
    /// A code mailed to the account's address.
    Email,
    /// A single-use recovery code.
    Recovery,
}

#[derive(Deserialize)]
pub(crate) struct TwoFactorRequiredBody {
    pub(crate) challenge: String,
    pub(crate) methods: Vec<SecondFactor>,
    pub(crate) expires_at: i64,
}

#[derive(Serialize)]
pub(crate) struct ChallengeBody<'a> {
    pub(crate) challenge: &'a str,
    pub(crate) method: SecondFactor,
    pub(crate) code: &'a str,
}

/// The password and, with 2FA on, a current code: what sensitive changes need.
#[derive(Clone, Serialize, Deserialize)]
pub struct Reauth {
    /// The account password.
    pub password: String,
    /// The second factor, when 2FA is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<SecondFactor>,
    /// Its code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The signed-in account (`GET /me`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Me {
    /// User id.
    pub user_id: i64,
    /// E-mail address.
    pub email: String,
    /// Whether the address is confirmed.
    pub email_verified: bool,
    /// ms_id.
    pub ms_id: String,
    /// Display name.
    pub display_name: String,
    /// Whether TOTP is on.
    pub totp_enabled: bool,
}

// The password, the code and the TOTP secret never reach a Debug print.
impl std::fmt::Debug for Reauth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reauth")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpSetup").finish_non_exhaustive()
    }
}

/// TOTP setup: the secret for manual entry, its URI and QR code.
#[derive(Clone, Deserialize, Serialize)]
pub struct TotpSetup {
    /// Base32 secret.
    pub secret: String,
    /// `otpauth://` URI.
    pub otpauth_uri: String,
    /// PNG of the QR code, base64.
    pub qr_png_base64: String,
}

#[derive(Serialize)]
pub(crate) struct CodeBody<'a> {
    pub(crate) code: &'a str,
}

#[derive(Deserialize)]
pub(crate) struct RecoveryCodes {
    pub(crate) recovery_codes: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct Activated {
    pub(crate) recovery_codes: Option<Vec<String>>,
}

/// A friend (`GET /friends`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Friend {
    /// Their user id.
    pub user_id: i64,
    /// Their current ms_id.
    pub ms_id: String,
    /// Their display name.
    pub display_name: String,
    /// Friends since (Unix seconds).
    pub since: i64,
}

/// A pending friend request.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FriendRequest {
    /// Request id.
    pub id: i64,
    /// The other user's id.
    pub user_id: i64,
    /// The other user's ms_id.
    pub ms_id: String,
    /// The other user's display name.
    pub display_name: String,
    /// The sender's note.
    pub note: Option<String>,
    /// Sent at (Unix seconds).
    pub created_at: i64,
}

/// Incoming and outgoing requests.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FriendRequests {
    /// Sent to this user.
    pub incoming: Vec<FriendRequest>,
    /// Sent by this user.
    pub outgoing: Vec<FriendRequest>,
}

#[derive(Serialize)]
pub(crate) struct SendRequestBody<'a> {
    pub(crate) ms_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct MsIdBody<'a> {
    pub(crate) ms_id: &'a str,
}

/// Whether an ms_id can be taken.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct MsIdAvailability {
    /// The ms_id, normalized (lowercase).
    pub ms_id: String,
    /// Whether it is free.
    pub available: bool,
}

/// A public profile.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Profile {
    /// User id.
    pub user_id: i64,
    /// ms_id.
    pub ms_id: String,
    /// Display name.
    pub display_name: String,
}

/// An entry of the account's security log.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct SecurityEvent {
    /// Id.
    pub id: i64,
    /// `totp_enabled`, `password_changed`, `email_changed`, … (docs/api.md).
    pub kind: String,
    /// When (Unix seconds).
    pub created_at: i64,
}

/// A blocked user.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Blocked {
    /// Their user id.
    pub user_id: i64,
    /// Their ms_id.
    pub ms_id: String,
    /// Their display name.
    pub display_name: String,
    /// Blocked at (Unix seconds).
    pub blocked_at: i64,
}

/// A room as this user sees it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Room {
    /// Room id.
    pub id: i64,
    /// Optional name (readable by the relay).
    pub name: Option<String>,
    /// This user's state: `invited` or `joined`.
    pub state: String,
    /// Created at (Unix seconds).
    pub created_at: i64,
}

/// A member of a room.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Member {
    /// User id.
    pub user_id: i64,
    /// ms_id.
    pub ms_id: String,
    /// Display name.
    pub display_name: String,
    /// `invited` or `joined`.
    pub state: String,
    /// `admin` or `member`.
    #[serde(default)]
    pub role: String,
    /// Device ids of a joined member.
    pub devices: Vec<i64>,
}

/// A signed-in session of the account.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct SessionInfo {
    /// Id (for revocation).
    pub id: i64,
    /// Created at.
    pub created_at: i64,
    /// Last used at.
    pub last_used_at: i64,
    /// Expires at.
    pub expires_at: i64,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// Whether this is the session of this client.
    pub current: bool,
}

#[derive(Serialize)]
pub(crate) struct RegisterDeviceBody<'a> {
    pub(crate) identity_key: String,
    pub(crate) name: &'a str,
    pub(crate) signed_prekey: String,
    pub(crate) one_time_prekeys: Vec<String>,
    /// For a session that signed in more than 10 minutes ago.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) method: Option<SecondFactor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<&'a str>,
}

#[derive(Deserialize)]
pub(crate) struct DeviceCreated {
    pub(crate) device_id: i64,
}

/// One of this account's devices.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct OwnDevice {
    /// Device id.
    pub device_id: i64,
    /// Base64 `PublicIdentity`.
    pub identity_key: String,
    /// Name.
    pub name: String,
    /// Registered at.
    pub created_at: i64,
    /// One-time prekeys left on the relay.
    pub one_time_prekeys: i64,
}

/// Another user's device.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Device {
    /// Device id.
    pub device_id: i64,
    /// Base64 `PublicIdentity`.
    pub identity_key: String,
    /// Name.
    pub name: String,
}

#[derive(Deserialize)]
pub(crate) struct Bundle {
    pub(crate) bundle: String,
}

#[derive(Serialize)]
pub(crate) struct PrekeysBody {
    pub(crate) prekeys: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct SignedPrekeyBody {
    pub(crate) signed_prekey: String,
}

#[derive(Deserialize)]
pub(crate) struct PrekeyCount {
    pub(crate) remaining: i64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    message: String,
}

/// The relay's HTTP API over a transport.
#[derive(Debug, Clone)]
pub struct Relay<T> {
    transport: T,
    token: Option<String>,
}

impl<T: Transport> Relay<T> {
    pub(crate) fn new(transport: T) -> Self {
        Self {
            transport,
            token: None,
        }
    }

    pub(crate) fn transport(&self) -> &T {
        &self.transport
    }

    pub(crate) fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    /// Sends a request and returns the raw answer (status, body) without judging the status.
    pub(crate) async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<crate::transport::Response> {
        self.transport
            .request(Request {
                method,
                path: path.to_owned(),
                token: self.token.clone(),
                body: body.map(|b| ("application/json", b)),
                range: None,
            })
            .await
            .map_err(ClientError::Network)
    }

    /// POSTs `pieces`, in order, as one `application/octet-stream` body (attachments), with
    /// `progress(sent, total)` as the bytes leave.
    pub(crate) async fn upload(
        &self,
        path: &str,
        pieces: Vec<Vec<u8>>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<crate::transport::Response> {
        self.transport
            .upload(path, self.token.as_deref(), pieces, progress)
            .await
            .map_err(ClientError::Network)
    }

    /// A GET of the bytes `start..=end` of a resource.
    pub(crate) async fn get_range(
        &self,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<crate::transport::Response> {
        self.transport
            .request(Request {
                method: Method::Get,
                path: path.to_owned(),
                token: self.token.clone(),
                body: None,
                range: Some((start, end)),
            })
            .await
            .map_err(ClientError::Network)
    }

    /// A JSON call; a non-2xx answer becomes [`ClientError::Relay`].
    pub(crate) async fn call<R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<R> {
        let answer = self.send(method, path, body).await?;
        serde_json::from_slice(&answer)
            .map_err(|e| ClientError::bad_response(format!("{} {path}: {e}", method.as_str())))
    }

    /// A call whose answer body is ignored (204 and friends).
    pub(crate) async fn call_empty(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<()> {
        self.send(method, path, body).await.map(drop)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Vec<u8>> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        let answer = self.raw(method, path, body).await?;
        if (200..300).contains(&answer.status) {
            Ok(answer.body)
        } else {
            Err(relay_error(answer.status, answer.retry_after, &answer.body))
        }
    }
}

/// A 2xx answer's JSON body, or the relay's error.
pub(crate) fn judge<R: DeserializeOwned>(answer: crate::transport::Response) -> Result<R> {
    let body = judge_bytes(answer)?;
    serde_json::from_slice(&body).map_err(|e| ClientError::bad_response(e.to_string()))
}

/// A 2xx answer's body, or the relay's error.
pub(crate) fn judge_bytes(answer: crate::transport::Response) -> Result<Vec<u8>> {
    if (200..300).contains(&answer.status) {
        Ok(answer.body)
    } else {
        Err(relay_error(answer.status, answer.retry_after, &answer.body))
    }
}

/// Maps an error answer to [`ClientError::Relay`].
pub(crate) fn relay_error(status: u16, retry_after: Option<u64>, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => ClientError::Relay {
            code: ErrorCode::from_relay(&e.error).unwrap_or(ErrorCode::UnknownRelayCode),
            status,
            message: e.message,
            retry_after,
        },
        Err(_) => ClientError::bad_response(format!("HTTP {status} without an error body")),
    }
}

/// Percent-encodes a path segment (ms_ids are `a-z0-9._-`, but input comes from users).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_leave_out_secrets() {
        let reauth = Reauth {
            password: "hunter2 secret".into(),
            method: Some(SecondFactor::Totp),
            code: Some("123456".into()),
        };
        let setup = TotpSetup {
            secret: "JBSWY3DPEHPK3PXP".into(),
            otpauth_uri: "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP".into(),
            qr_png_base64: "iVBOR".into(),
        };
        let printed = format!("{reauth:?} {setup:?}");
        for secret in ["hunter2", "123456", "JBSWY3DPEHPK3PXP", "iVBOR"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
}
