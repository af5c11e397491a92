//! The message history in the sealed store.
//!
//! Records (logical names; stored under MACs): `conversations` (the list, most recent first),
//! `conv:<u7|r5>` (count, unread, last message), `msg:<conv>:<n>` (the n-th message),
//! `msgid:<id>` (where a message is, and for outgoing ones which devices still wait).

use super::Client;
use super::events::{Conversation, Message, MessageStatus};
use crate::error::Result;
use crate::store::Store;
use crate::store::sealed::Batch;
use crate::transport::Transport;
use serde::{Deserialize, Serialize};

/// A conversation in the list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// Number of messages.
    pub count: u64,
    /// Incoming messages not marked read.
    pub unread: u64,
    /// The last message.
    pub last: Option<Message>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MessageLocation {
    pub(crate) conversation: Conversation,
    pub(crate) index: u64,
    /// Outgoing: devices the relay has not accepted it for yet.
    #[serde(default)]
    pub(crate) pending: Vec<i64>,
}

/// The largest page of history read at once.
pub const MAX_PAGE: u64 = 500;

impl<T: Transport, S: Store> Client<T, S> {
    /// Adds `message` to its conversation inside `batch` (committed by the caller together
    /// with the ratchet state that produced it). Returns false for a message id already stored.
    pub(crate) async fn stage_message(
        &self,
        batch: &mut Batch<'_, S>,
        message: &Message,
        pending: Vec<i64>,
    ) -> Result<bool> {
        if self
            .store
            .get::<MessageLocation>(&format!("msgid:{}", message.id))
            .await?
            .is_some()
        {
            return Ok(false);
        }
        let key = message.conversation.key();
        let mut summary: ConversationSummary = self
            .store
            .get(&format!("conv:{key}"))
            .await?
            .unwrap_or_default();
        let index = summary.count;
        summary.count += 1;
        if !message.outgoing {
            summary.unread += 1;
        }
        summary.last = Some(message.clone());
        let mut list: Vec<Conversation> =
            self.store.get("conversations").await?.unwrap_or_default();
        list.retain(|c| *c != message.conversation);
        list.insert(0, message.conversation);
        batch
            .put(&format!("msg:{key}:{index}"), message)
            .put(&format!("conv:{key}"), &summary)
            .put("conversations", &list)
            .put(
                &format!("msgid:{}", message.id),
                &MessageLocation {
                    conversation: message.conversation,
                    index,
                    pending,
                },
            );
        Ok(true)
    }

    /// Changes the status of a stored outgoing message (and the conversation's last message).
    pub(crate) async fn stage_status(
        &self,
        batch: &mut Batch<'_, S>,
        location: &MessageLocation,
        status: MessageStatus,
    ) -> Result<()> {
        let key = location.conversation.key();
        let name = format!("msg:{key}:{}", location.index);
        if let Some(mut message) = self.store.get::<Message>(&name).await? {
            message.status = status;
            batch.put(&name, &message);
            let mut summary: ConversationSummary = self
                .store
                .get(&format!("conv:{key}"))
                .await?
                .unwrap_or_default();
            if summary.last.as_ref().is_some_and(|m| m.id == message.id) {
                summary.last = Some(message);
                batch.put(&format!("conv:{key}"), &summary);
            }
        }
        Ok(())
    }

    /// The conversations, most recent first.
    pub async fn conversations(&self) -> Result<Vec<(Conversation, ConversationSummary)>> {
        let list: Vec<Conversation> = self.store.get("conversations").await?.unwrap_or_default();
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            let summary = self
                .store
                .get(&format!("conv:{}", c.key()))
                .await?
                .unwrap_or_default();
            out.push((c, summary));
        }
        Ok(out)
    }

    /// Up to `limit` (≤ [`MAX_PAGE`]) messages of a conversation that come before message
    /// number `before` (all the latest when `None`), oldest first.
    pub async fn history(
        &self,
        conversation: Conversation,
        limit: u64,
        before: Option<u64>,
    ) -> Result<Vec<Message>> {
        let key = conversation.key();
        let summary: ConversationSummary = self
            .store
            .get(&format!("conv:{key}"))
            .await?
            .unwrap_or_default();
        let end = before.map_or(summary.count, |b| b.min(summary.count));
        let start = end.saturating_sub(limit.min(MAX_PAGE));
        let names: Vec<String> = (start..end).map(|i| format!("msg:{key}:{i}")).collect();
        Ok(self
            .store
            .get_many::<Message>(&names)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Marks a conversation read.
    pub async fn mark_read(&self, conversation: Conversation) -> Result<()> {
        let name = format!("conv:{}", conversation.key());
        let Some(mut summary) = self.store.get::<ConversationSummary>(&name).await? else {
            return Ok(());
        };
        summary.unread = 0;
        let mut b = self.store.batch();
        b.put(&name, &summary);
        b.commit().await
    }
}
