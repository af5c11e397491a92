//! Rooms: sender keys (crypto-core §12) distributed over the pairwise sessions.
//!
//! - Each device has one outbound group session per room (`group_out:<room>`, with the set of
//!   member devices that hold its current chain). A room message is encrypted once and sent
//!   once (`send` with `room`, kind 2); the relay fans it out.
//! - Before a room message goes out, every joined member device that does not hold the chain
//!   yet gets the distribution in a pairwise message (payload `sender_key`): new members and
//!   new devices are re-shared to. When a device that held the chain is no longer a joined
//!   member's (a member left or removed a device), the chain is replaced first: who left cannot
//!   read what follows.
//! - Received chains are kept per (room, sender device) (`group_in:<room>:<device>`, the
//!   newest 4). A room message whose chain is not known yet (its distribution is still on its
//!   way) is held (`held:<room>:<device>`, at most [`MAX_HELD`]) and decrypted when the
//!   distribution arrives.

use super::events::{Conversation, Event, Message, MessageStatus};
use super::messaging::{Composed, Recipient, Wire};
use super::{Client, StoredPickle, Trust, b64_decode, pickle_id_from_hex};
use crate::FailureReason;
use crate::api;
use crate::error::{ClientError, Result};
use crate::frames::Envelope;
use crate::payload::{Body, KIND_GROUP, Payload};
use crate::platform::{now_ms, random_id};
use crate::store::Store;
use crate::store::sealed::Batch;
use crate::transport::{Method, Transport};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_core::group::{
    GroupMessage, InboundGroupSession, OutboundGroupSession, SenderKeyDistribution,
};
use crypto_core::{GroupError, Session};
use serde::{Deserialize, Serialize};

/// Room messages held per sender device while their chain's distribution is on its way.
pub const MAX_HELD: usize = 200;
/// Chains kept per (room, sender device).
const CHAINS_PER_DEVICE: usize = 4;

#[derive(Default, Serialize, Deserialize)]
struct OutboundRecord {
    pickle: Option<StoredPickle>,
    /// Devices that hold the current chain.
    shared: Vec<i64>,
}

#[derive(Default, Serialize, Deserialize)]
struct InboundRecord {
    pickles: Vec<StoredPickle>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Held {
    eid: i64,
    from_user: i64,
    from_device: i64,
    id: String,
    ciphertext: String,
    sent_at: i64,
    room: i64,
}

#[derive(Serialize)]
struct RoleBody {
    role: &'static str,
}

#[derive(Serialize)]
struct CreateRoomBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Deserialize)]
struct RoomsAnswer {
    rooms: Vec<api::Room>,
}

#[derive(Deserialize)]
struct MembersAnswer {
    members: Vec<api::Member>,
}

fn pickle_record(id: crypto_core::PickleId, sealed: &crypto_core::SealedPickle) -> StoredPickle {
    StoredPickle {
        id: id.to_string(),
        counter: sealed.counter(),
        sealed: BASE64.encode(sealed.as_bytes()),
    }
}

impl<T: Transport, S: Store> Client<T, S> {
    /// Creates a room (the name, if any, is readable by the relay).
    pub async fn create_room(&self, name: Option<&str>) -> Result<api::Room> {
        self.relay
            .call(
                Method::Post,
                "/api/v1/rooms",
                Some(&CreateRoomBody { name }),
            )
            .await
    }

    /// The rooms this user joined or is invited to.
    pub async fn rooms(&self) -> Result<Vec<api::Room>> {
        let answer: RoomsAnswer = self
            .relay
            .call(Method::Get, "/api/v1/rooms", None::<&()>)
            .await?;
        Ok(answer.rooms)
    }

    /// Invites a friend (by ms_id) to a room this user joined.
    pub async fn invite_to_room(&self, room: i64, ms_id: &str) -> Result<()> {
        self.relay
            .call_empty(
                Method::Post,
                &format!("/api/v1/rooms/{room}/invites"),
                Some(&api::MsIdBody { ms_id }),
            )
            .await
    }

    /// Accepts an invitation.
    pub async fn join_room(&self, room: i64) -> Result<()> {
        self.relay
            .call_empty(
                Method::Post,
                &format!("/api/v1/rooms/{room}/join"),
                None::<&()>,
            )
            .await
    }

    /// Declines an invitation.
    pub async fn decline_room(&self, room: i64) -> Result<()> {
        self.relay
            .call_empty(
                Method::Post,
                &format!("/api/v1/rooms/{room}/decline"),
                None::<&()>,
            )
            .await
    }

    /// Leaves a room and forgets this device's sending chain for it.
    pub async fn leave_room(&self, room: i64) -> Result<()> {
        self.relay
            .call_empty(
                Method::Post,
                &format!("/api/v1/rooms/{room}/leave"),
                None::<&()>,
            )
            .await?;
        let mut batch = self.store.batch();
        batch.delete(&format!("group_out:{room}"));
        batch.commit().await
    }

    /// Renames a room (admins only; `None` removes the name, which the relay can read).
    pub async fn rename_room(&self, room: i64, name: Option<&str>) -> Result<api::Room> {
        self.relay
            .call(
                Method::Patch,
                &format!("/api/v1/rooms/{room}"),
                Some(&CreateRoomBody { name }),
            )
            .await
    }

    /// Removes a member from a room (admins only). The next room message replaces the
    /// sender key, so the removed member cannot read what follows.
    pub async fn remove_room_member(&self, room: i64, user_id: i64) -> Result<()> {
        self.relay
            .call_empty(
                Method::Delete,
                &format!("/api/v1/rooms/{room}/members/{user_id}"),
                None::<&()>,
            )
            .await
    }

    /// Makes a joined member admin, or an admin a member again (admins only).
    pub async fn set_room_admin(&self, room: i64, user_id: i64, admin: bool) -> Result<()> {
        self.relay
            .call_empty(
                Method::Put,
                &format!("/api/v1/rooms/{room}/members/{user_id}/role"),
                Some(&RoleBody {
                    role: if admin { "admin" } else { "member" },
                }),
            )
            .await
    }

    /// Deletes a room for everyone (admins only).
    pub async fn delete_room(&self, room: i64) -> Result<()> {
        self.relay
            .call_empty(
                Method::Delete,
                &format!("/api/v1/rooms/{room}"),
                None::<&()>,
            )
            .await?;
        let mut batch = self.store.batch();
        batch.delete(&format!("group_out:{room}"));
        batch.commit().await
    }

    /// The members of a room this user joined (also teaches the client their ms_ids).
    pub async fn room_members(&mut self, room: i64) -> Result<Vec<api::Member>> {
        let answer: MembersAnswer = self
            .relay
            .call(
                Method::Get,
                &format!("/api/v1/rooms/{room}/members"),
                None::<&()>,
            )
            .await?;
        for m in &answer.members {
            self.ms_ids.insert(m.user_id, m.ms_id.clone());
        }
        Ok(answer.members)
    }

    /// Sends a text to a room: encrypted once with this device's sender key. Returns the stored
    /// message (status `pending`); works offline like [`Client::send_text`].
    pub async fn send_room_text(&mut self, room: i64, text: &str) -> Result<(Message, Vec<Event>)> {
        self.compose(Conversation::Room(room), None, text).await
    }

    /// Encrypts a composed room message (and the sender-key distributions it needs).
    pub(crate) async fn encrypt_room(
        &mut self,
        c: &Composed,
        room: i64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let me = self.signed_in_user()?;
        let my_device = self.state.device_id.ok_or(ClientError::NoDevice)?;
        let members = self.room_members(room).await?;
        let mut recipients = Vec::new();
        for member in members.iter().filter(|m| m.state == "joined") {
            let listed = self.devices_of(member.user_id).await?;
            for device in listed {
                if member.devices.contains(&device.device_id)
                    && !(member.user_id == me && device.device_id == my_device)
                {
                    recipients.push(Recipient {
                        user_id: member.user_id,
                        device,
                    });
                }
            }
        }
        self.check_recipients(&recipients, events).await?;
        let current: Vec<i64> = recipients.iter().map(|r| r.device.device_id).collect();

        let name = format!("group_out:{room}");
        let mut record: OutboundRecord = self.store.get(&name).await?.unwrap_or_default();
        // A device that held the chain and is no longer a member's: start a new chain.
        let rotate = record.pickle.is_none() || record.shared.iter().any(|d| !current.contains(d));
        let mut outbound = match (&record.pickle, rotate) {
            (Some(p), false) => OutboundGroupSession::from_pickle(
                &b64_decode("group session", &p.sealed)?,
                &self.pickle_key,
                &pickle_id_from_hex(&p.id)?,
                p.counter,
            )?,
            _ => {
                record.shared.clear();
                let identity = self
                    .account
                    .as_ref()
                    .ok_or(ClientError::NoDevice)?
                    .identity();
                OutboundGroupSession::new(&room.to_string(), &my_device.to_string(), identity)?
            }
        };
        let missing: Vec<Recipient> = recipients
            .iter()
            .filter(|r| !record.shared.contains(&r.device.device_id))
            .cloned()
            .collect();
        let mut updated = Vec::new();
        let mut wires = Vec::new();
        if !missing.is_empty() {
            let distribution = outbound.distribution().encode();
            let payload = Payload::new(Body::SenderKey {
                room,
                distribution: BASE64.encode(distribution.as_slice()),
            });
            let json = payload.encode();
            wires = self
                .pairwise_wires(&missing, &random_id()?, &json, &mut updated)
                .await?;
        }
        let message = outbound.encrypt(c.payload.as_bytes())?;
        wires.push(Wire {
            id: c.id.clone(),
            to_device: 0,
            room: Some(room),
            kind: KIND_GROUP,
            ciphertext: BASE64.encode(message.encode()),
        });
        let sealed = outbound.pickle(&self.pickle_key)?;
        record.pickle = Some(pickle_record(outbound.pickle_id(), &sealed));
        record.shared = current;
        let mut batch = self.store.batch();
        batch.put(&name, &record);
        self.commit_encrypted(batch, c, wires, &mut updated, vec![0])
            .await
    }

    /// Checks a distribution that arrived over `session` from `env`'s device.
    pub(crate) fn accept_distribution(
        &self,
        env: &Envelope,
        room: i64,
        distribution: &str,
        session: &Session,
    ) -> std::result::Result<InboundGroupSession, FailureReason> {
        let bytes = zeroize::Zeroizing::new(
            BASE64
                .decode(distribution)
                .map_err(|_| FailureReason::Corrupted)?,
        );
        let distribution =
            SenderKeyDistribution::decode(&bytes).map_err(|_| FailureReason::Corrupted)?;
        InboundGroupSession::new(
            &room.to_string(),
            &env.from_device.to_string(),
            session,
            &distribution,
        )
        .map_err(|e| match e {
            GroupError::DistributionIdentityMismatch => FailureReason::KeyChanged,
            _ => FailureReason::Corrupted,
        })
    }

    /// Stores a received chain; returns the room messages held for it, to decrypt now.
    pub(crate) async fn stage_inbound_group(
        &self,
        batch: &mut Batch<'_, S>,
        room: i64,
        device: i64,
        mut inbound: InboundGroupSession,
    ) -> Result<Vec<Envelope>> {
        let name = format!("group_in:{room}:{device}");
        let mut record: InboundRecord = self.store.get(&name).await?.unwrap_or_default();
        let sealed = inbound.pickle(&self.pickle_key)?;
        record
            .pickles
            .insert(0, pickle_record(inbound.pickle_id(), &sealed));
        record.pickles.truncate(CHAINS_PER_DEVICE);
        batch.put(&name, &record);
        let held_name = format!("held:{room}:{device}");
        let held: Vec<Held> = self.store.get(&held_name).await?.unwrap_or_default();
        if !held.is_empty() {
            batch.delete(&held_name);
        }
        Ok(held
            .into_iter()
            .filter_map(|h| {
                Some(Envelope {
                    eid: h.eid,
                    from_user: h.from_user,
                    from_device: h.from_device,
                    id: h.id,
                    kind: KIND_GROUP,
                    ciphertext: BASE64.decode(h.ciphertext).ok()?,
                    sent_at: h.sent_at,
                    room: Some(h.room),
                })
            })
            .collect())
    }

    /// Decrypts a room envelope and stores its message, or holds it until its chain arrives.
    pub(crate) async fn receive_group(
        &mut self,
        env: &Envelope,
        seen: &str,
        events: &mut Vec<Event>,
    ) -> Result<std::result::Result<(), FailureReason>> {
        let Some(room) = env.room else {
            return Ok(Err(FailureReason::Unsupported));
        };
        let Ok(message) = GroupMessage::decode(&env.ciphertext) else {
            return Ok(Err(FailureReason::Corrupted));
        };
        let name = format!("group_in:{room}:{}", env.from_device);
        let record: InboundRecord = self.store.get(&name).await?.unwrap_or_default();
        let mut sessions = Vec::with_capacity(record.pickles.len());
        for p in &record.pickles {
            sessions.push(InboundGroupSession::from_pickle(
                &b64_decode("group session", &p.sealed)?,
                &self.pickle_key,
                &pickle_id_from_hex(&p.id)?,
                p.counter,
            )?);
        }
        let Some(session) = sessions
            .iter_mut()
            .find(|s| s.chain_id() == message.chain_id())
        else {
            return self.hold(env, room, seen).await;
        };
        let plaintext = match session.decrypt(&message) {
            Ok(p) => p,
            Err(GroupError::DuplicateMessage) => return Ok(Err(FailureReason::Duplicate)),
            Err(GroupError::MessageKeyEvicted | GroupError::TooFarAhead { .. }) => {
                return Ok(Err(FailureReason::TooOld));
            }
            Err(_) => return Ok(Err(FailureReason::Corrupted)),
        };
        let Ok(payload) = Payload::decode(&plaintext) else {
            return Ok(Err(FailureReason::Unsupported));
        };
        let trust: Trust = self
            .store
            .get(&format!("trust:{}", env.from_user))
            .await?
            .unwrap_or_default();
        let flagged = trust.unverified_devices.contains(&env.from_device);
        let message = match self.message_from(env, payload.body, flagged) {
            Ok(m) => m,
            Err(reason) => return Ok(Err(reason)),
        };
        let mut batch = self.store.batch();
        let mut updated = InboundRecord::default();
        for s in &mut sessions {
            let sealed = s.pickle(&self.pickle_key)?;
            updated.pickles.push(pickle_record(s.pickle_id(), &sealed));
        }
        batch.put(&name, &updated);
        let fresh = self.stage_message(&mut batch, &message, Vec::new()).await?;
        batch.put(seen, &1u8);
        batch.commit().await?;
        if fresh {
            events.push(Event::Message {
                message: Box::new(message),
            });
        }
        Ok(Ok(()))
    }

    async fn hold(
        &self,
        env: &Envelope,
        room: i64,
        seen: &str,
    ) -> Result<std::result::Result<(), FailureReason>> {
        let held_name = format!("held:{room}:{}", env.from_device);
        let mut held: Vec<Held> = self.store.get(&held_name).await?.unwrap_or_default();
        if held.len() >= MAX_HELD {
            return Ok(Err(FailureReason::UnknownSession));
        }
        held.push(Held {
            eid: env.eid,
            from_user: env.from_user,
            from_device: env.from_device,
            id: env.id.clone(),
            ciphertext: BASE64.encode(&env.ciphertext),
            sent_at: env.sent_at,
            room,
        });
        let mut batch = self.store.batch();
        batch.put(&held_name, &held);
        batch.put(seen, &1u8);
        batch.commit().await?;
        Ok(Ok(()))
    }

    /// Stores a new outgoing message and queues it for encryption.
    pub(crate) async fn compose(
        &mut self,
        conversation: Conversation,
        to_user: Option<i64>,
        text: &str,
    ) -> Result<(Message, Vec<Event>)> {
        self.compose_with(conversation, to_user, text, None).await
    }

    /// [`Client::compose`] with an attachment.
    pub(crate) async fn compose_with(
        &mut self,
        conversation: Conversation,
        to_user: Option<i64>,
        text: &str,
        attachment: Option<crate::payload::AttachmentRef>,
    ) -> Result<(Message, Vec<Event>)> {
        let me = self.signed_in_user()?;
        let device_id = self.state.device_id.ok_or(ClientError::NoDevice)?;
        if text.len() > crate::payload::MAX_TEXT_BYTES {
            return Err(ClientError::InvalidArgument(format!(
                "text of {} bytes; the limit is {}",
                text.len(),
                crate::payload::MAX_TEXT_BYTES
            )));
        }
        let id = random_id()?;
        let sent_at = now_ms();
        let payload = Payload::new(Body::Message {
            id: id.clone(),
            to_user,
            sent_at,
            text: text.to_owned(),
            attachment: attachment.clone(),
            reply_to: None,
        });
        let json = String::from_utf8(payload.encode().to_vec())
            .map_err(|_| ClientError::InvalidArgument("payload".into()))?;
        let message = Message {
            id: id.clone(),
            conversation,
            from_user: me,
            from_device: device_id,
            outgoing: true,
            sent_at,
            stored_at: sent_at,
            text: text.to_owned(),
            attachment,
            reply_to: None,
            status: MessageStatus::Pending,
            unverified_key: false,
        };
        let mut compose: Vec<Composed> = self.store.get("compose").await?.unwrap_or_default();
        compose.push(Composed {
            id,
            conversation,
            payload: json,
        });
        let mut batch = self.store.batch();
        self.stage_message(&mut batch, &message, Vec::new()).await?;
        batch.put("compose", &compose);
        batch.commit().await?;
        let events = self.flush_outbox().await?;
        Ok((message, events))
    }
}
