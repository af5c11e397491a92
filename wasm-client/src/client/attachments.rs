//! Attachments: encrypted on the device (crypto-core §14), uploaded as an opaque blob, and
//! referenced inside an end-to-end encrypted message by `{id, key, digest, size, mime, name}`
//! (protocol.md §21). The relay never has the key.

use super::Client;
use super::events::{Conversation, Event, Message};
use crate::api;
use crate::error::{ClientError, Result};
use crate::payload::AttachmentRef;
use crate::store::Store;
use crate::transport::{Method, Transport};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_core::AttachmentError;
use crypto_core::attachment::{
    self, AttachmentInfo, AttachmentKey, ciphertext_len_for, decrypt_attachment,
};
use serde::Deserialize;
use zeroize::Zeroizing;

/// The largest attachment (the relay's limit applies to the ciphertext, a little larger).
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024 - 64 * 1024;

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// A relay attachment id: 32 lowercase hex characters.
pub(crate) fn valid_attachment_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn key_and_digest(r: &AttachmentRef) -> Result<(AttachmentKey, [u8; 32])> {
    let bad = |what: &str| {
        ClientError::AttachmentMismatch(format!("the reference's {what} is malformed"))
    };
    let key = Zeroizing::new(BASE64.decode(&r.key).map_err(|_| bad("key"))?);
    let key: &[u8; 32] = key.as_slice().try_into().map_err(|_| bad("key"))?;
    let digest: [u8; 32] = BASE64
        .decode(&r.digest)
        .map_err(|_| bad("digest"))?
        .try_into()
        .map_err(|_| bad("digest"))?;
    Ok((AttachmentKey::from_bytes(key), digest))
}

impl<T: Transport, S: Store> Client<T, S> {
    /// Encrypts `data` with a fresh key and uploads the ciphertext; returns the reference to
    /// send in a message ([`Client::send_attachment`]).
    pub async fn upload_attachment(
        &self,
        data: &[u8],
        mime: &str,
        name: &str,
    ) -> Result<AttachmentRef> {
        if u64::try_from(data.len()).unwrap_or(u64::MAX) > MAX_ATTACHMENT_BYTES {
            return Err(ClientError::InvalidArgument(format!(
                "attachments are at most {MAX_ATTACHMENT_BYTES} bytes"
            )));
        }
        if mime.len() > 255 || name.len() > 255 {
            return Err(ClientError::InvalidArgument(
                "mime type and file name are at most 255 bytes".into(),
            ));
        }
        let (ciphertext, info) = attachment::encrypt_attachment(data)?;
        let answer = self
            .relay
            .raw_body(
                Method::Post,
                "/api/v1/attachments",
                "application/octet-stream",
                ciphertext,
            )
            .await?;
        let created: Created = api::judge(answer)?;
        if !valid_attachment_id(&created.id) {
            return Err(ClientError::bad_response("attachment id"));
        }
        Ok(AttachmentRef {
            id: created.id,
            key: BASE64.encode(info.key.as_bytes()),
            digest: BASE64.encode(info.digest),
            size: info.plaintext_len,
            mime: mime.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Downloads an attachment, checks its digest and length against the reference, and
    /// decrypts it (nothing is returned unless every chunk authenticates).
    pub async fn download_attachment(&self, r: &AttachmentRef) -> Result<Zeroizing<Vec<u8>>> {
        if !valid_attachment_id(&r.id) {
            return Err(ClientError::AttachmentMismatch("attachment id".into()));
        }
        let (key, digest) = key_and_digest(r)?;
        let ciphertext_len = ciphertext_len_for(r.size)
            .ok_or_else(|| ClientError::AttachmentMismatch("size".into()))?;
        let answer = self
            .relay
            .raw(Method::Get, &format!("/api/v1/attachments/{}", r.id), None)
            .await?;
        let ciphertext = api::judge_bytes(answer)?;
        let info = AttachmentInfo {
            key,
            digest,
            ciphertext_len,
            plaintext_len: r.size,
        };
        decrypt_attachment(&ciphertext, &info).map_err(|e| match e {
            AttachmentError::AttachmentDigestMismatch
            | AttachmentError::AttachmentTruncated
            | AttachmentError::AttachmentTrailingData
            | AttachmentError::AttachmentKeyMismatch => {
                ClientError::AttachmentMismatch(e.to_string())
            }
            other => other.into(),
        })
    }

    /// Sends an uploaded attachment (with an optional caption) to a user or a room.
    pub async fn send_attachment(
        &mut self,
        conversation: Conversation,
        attachment: AttachmentRef,
        caption: &str,
    ) -> Result<(Message, Vec<Event>)> {
        let to_user = match conversation {
            Conversation::User(u) => Some(u),
            Conversation::Room(_) => None,
        };
        self.compose_with(conversation, to_user, caption, Some(attachment))
            .await
    }
}
