//! Attachments: encrypted on the device (crypto-core §14), uploaded as an opaque blob, and
//! referenced inside an end-to-end encrypted message by `{id, key, digest, size, mime, name}`
//! (protocol.md §21). The relay never has the key.

use super::Client;
use super::events::{Conversation, Event, Message};
use crate::api;
use crate::error::{ClientError, Result};
use crate::payload::AttachmentRef;
use crate::store::Store;
use crate::transport::Transport;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_core::AttachmentError;
use crypto_core::attachment::{
    AttachmentDecryptor, AttachmentEncryptor, AttachmentInfo, AttachmentKey, ciphertext_len_for,
};
use serde::Deserialize;
use std::future::Future;
use zeroize::Zeroizing;

/// The largest attachment (the relay's limit applies to the ciphertext, a little larger).
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024 - 64 * 1024;

/// Plaintext bytes read and encrypted per step of an upload.
pub const UPLOAD_PIECE: usize = 1024 * 1024;

/// Bytes fetched per range request when downloading.
pub const DOWNLOAD_PIECE: u64 = 1024 * 1024;

fn mismatch(e: AttachmentError) -> ClientError {
    match e {
        AttachmentError::AttachmentDigestMismatch
        | AttachmentError::AttachmentTruncated
        | AttachmentError::AttachmentTrailingData
        | AttachmentError::AttachmentKeyMismatch
        | AttachmentError::DecryptionFailed => ClientError::AttachmentMismatch(e.to_string()),
        other => other.into(),
    }
}

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

/// Uploads and downloads attachments without holding the [`Client`]: a handle on the relay
/// (its transport and the session token at the time it was taken), so that a long transfer
/// does not hold up messaging. Taken with [`Client::attachments`].
#[derive(Debug, Clone)]
pub struct Attachments<T> {
    relay: api::Relay<T>,
}

impl<T: Transport> Attachments<T> {
    /// Encrypts `data` with a fresh key and uploads the ciphertext; returns the reference to
    /// send in a message ([`Client::send_attachment`]).
    pub async fn upload(&self, data: &[u8], mime: &str, name: &str) -> Result<AttachmentRef> {
        self.upload_with_progress(data, mime, name, &mut |_, _| {})
            .await
    }

    /// [`Attachments::upload`] with `progress(sent, total)` as the ciphertext leaves.
    pub async fn upload_with_progress(
        &self,
        data: &[u8],
        mime: &str,
        name: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<AttachmentRef> {
        let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
        self.upload_from(
            size,
            mime,
            name,
            |offset, len| {
                let piece = usize::try_from(offset)
                    .ok()
                    .and_then(|start| data.get(start..start.saturating_add(len)))
                    .map(|p| Zeroizing::new(p.to_vec()))
                    .ok_or_else(|| ClientError::InvalidArgument("read past the end".into()));
                std::future::ready(piece)
            },
            progress,
        )
        .await
    }

    /// Encrypts an attachment of `size` bytes read piece by piece through `read(offset, len)`
    /// (pieces of [`UPLOAD_PIECE`] bytes, in order; a browser `Blob` is read by slices, so
    /// the plaintext is never whole in memory), uploads the ciphertext, and calls
    /// `progress(sent, total)` with the ciphertext bytes sent so far. Returns the reference
    /// to send in a message.
    pub async fn upload_from<F, Fut>(
        &self,
        size: u64,
        mime: &str,
        name: &str,
        mut read: F,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<AttachmentRef>
    where
        F: FnMut(u64, usize) -> Fut,
        Fut: Future<Output = Result<Zeroizing<Vec<u8>>>>,
    {
        if size > MAX_ATTACHMENT_BYTES {
            return Err(ClientError::InvalidArgument(format!(
                "attachments are at most {MAX_ATTACHMENT_BYTES} bytes"
            )));
        }
        if mime.len() > 255 || name.len() > 255 {
            return Err(ClientError::InvalidArgument(
                "mime type and file name are at most 255 bytes".into(),
            ));
        }
        let mut encryptor = AttachmentEncryptor::new()?;
        let mut pieces = Vec::new();
        let mut offset = 0u64;
        while offset < size {
            let len =
                usize::try_from((size - offset).min(UPLOAD_PIECE as u64)).unwrap_or(UPLOAD_PIECE);
            let plain = read(offset, len).await?;
            if plain.len() != len {
                return Err(ClientError::InvalidArgument(format!(
                    "the file gave {} bytes where {len} were expected (did it change?)",
                    plain.len()
                )));
            }
            let mut out = Vec::with_capacity(len.saturating_add(len / 64).saturating_add(64));
            encryptor.update(&plain, &mut out)?;
            pieces.push(out);
            offset = offset.saturating_add(len as u64);
        }
        let mut last = Vec::new();
        let info = encryptor.finish(&mut last)?;
        pieces.push(last);
        let answer = self
            .relay
            .upload("/api/v1/attachments", pieces, progress)
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
    /// decrypts it (nothing is returned unless every chunk authenticates and the digest
    /// matches). Holds the plaintext and one downloaded piece, never the whole ciphertext.
    pub async fn download(&self, r: &AttachmentRef) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::new());
        self.download_with(r, |piece| {
            out.extend_from_slice(piece);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Streams an attachment: fetches it in pieces of [`DOWNLOAD_PIECE`] bytes (HTTP ranges)
    /// and hands `sink` the plaintext of every chunk as soon as it authenticates, so memory
    /// stays bounded whatever the size. Each chunk is authenticated on its own; the digest of
    /// the whole blob is checked at the end, and a mismatch is an error **after** some
    /// plaintext went to `sink`: discard what it received when this returns an error.
    pub async fn download_with(
        &self,
        r: &AttachmentRef,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        if !valid_attachment_id(&r.id) {
            return Err(ClientError::AttachmentMismatch("attachment id".into()));
        }
        let (key, digest) = key_and_digest(r)?;
        let ciphertext_len = ciphertext_len_for(r.size)
            .ok_or_else(|| ClientError::AttachmentMismatch("size".into()))?;
        let info = AttachmentInfo {
            key,
            digest,
            ciphertext_len,
            plaintext_len: r.size,
        };
        let mut decryptor = AttachmentDecryptor::for_attachment(&info).map_err(mismatch)?;
        let path = format!("/api/v1/attachments/{}", r.id);
        let mut plain = Zeroizing::new(Vec::new());
        let mut offset = 0u64;
        while offset < ciphertext_len {
            let end = offset
                .saturating_add(DOWNLOAD_PIECE)
                .min(ciphertext_len)
                .saturating_sub(1);
            let answer = self.relay.get_range(&path, offset, end).await?;
            let piece = api::judge_bytes(answer)?;
            let expected = end - offset + 1;
            if piece.len() as u64 != expected {
                return Err(ClientError::AttachmentMismatch(format!(
                    "the relay sent {} bytes for a range of {expected}",
                    piece.len()
                )));
            }
            decryptor.update(&piece, &mut plain).map_err(mismatch)?;
            sink(&plain)?;
            plain.clear();
            offset = end + 1;
        }
        decryptor.finish(&mut plain).map_err(mismatch)?;
        sink(&plain)
    }
}

impl<T: Transport + Clone, S: Store> Client<T, S> {
    /// A handle for attachment transfers that does not borrow the client.
    #[must_use]
    pub fn attachments(&self) -> Attachments<T> {
        Attachments {
            relay: self.relay.clone(),
        }
    }

    /// Encrypts `data` and uploads it ([`Attachments::upload`]).
    pub async fn upload_attachment(
        &self,
        data: &[u8],
        mime: &str,
        name: &str,
    ) -> Result<AttachmentRef> {
        self.attachments().upload(data, mime, name).await
    }

    /// Downloads, checks and decrypts an attachment ([`Attachments::download`]).
    pub async fn download_attachment(&self, r: &AttachmentRef) -> Result<Zeroizing<Vec<u8>>> {
        self.attachments().download(r).await
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
