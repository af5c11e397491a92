//! Sending and receiving: pairwise sessions per device, the two-stage outbox, ack-after-store,
//! dedup, trust on first use and key-change detection.
//!
//! Outgoing messages go through two durable queues:
//! 1. `compose`: the message as written (sealed at rest), until it is encrypted for every
//!    recipient device: composing works offline.
//! 2. `outbox`: one ciphertext per recipient device, until the relay answers `accepted` for
//!    it; resent after every reconnect with the same id (the relay stores it once). The ratchet
//!    state that produced a ciphertext is committed in the same write as the ciphertext, so a
//!    crash can neither reuse a message key nor lose the message.
//!
//! Incoming envelopes are decrypted, then the message, the ratchet state and a `seen` marker
//! for `(from_device, id)` are committed in one write, and only then is the envelope
//! acknowledged: a tab that dies in between gets the envelope again and drops it as seen.

use super::events::{ConnectionState, Conversation, Event, FailureReason, Message, MessageStatus};
use super::history::MessageLocation;
use super::{Client, StoredPickle, Trust, b64_decode, pickle_id_from_hex};
use crate::api::{self, segment};
use crate::error::{ClientError, ErrorCode, Result};
use crate::frames::{ClientFrame, Envelope, RelayFrame, room_frame, send_frame};
use crate::payload::{Body, KIND_GROUP, KIND_PAIRWISE, Payload};
use crate::platform::now_ms;
use crate::store::Store;
use crate::store::sealed::Batch;
use crate::transport::{Method, Outgoing, SocketEvent, Transport};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_core::safety_number::SafetyNumber;
use crypto_core::{PrekeyBundle, PublicIdentity, Session, SessionError, SessionMessage};
use serde::{Deserialize, Serialize};

/// Sessions kept per remote device (the newest is used to send).
const SESSIONS_PER_DEVICE: usize = 4;

/// A message waiting to be encrypted (no `Debug`: it holds the plaintext).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Composed {
    pub(crate) id: String,
    pub(crate) conversation: Conversation,
    /// The payload as JSON (sealed at rest by the store).
    pub(crate) payload: String,
}

/// One ciphertext waiting for `accepted`: to one device, or (`to_device` 0) to a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Wire {
    pub(crate) id: String,
    pub(crate) to_device: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) room: Option<i64>,
    pub(crate) kind: u16,
    pub(crate) ciphertext: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SessionsRecord {
    pickles: Vec<StoredPickle>,
}

/// A recipient device and the user it belongs to.
#[derive(Clone, Debug)]
pub(crate) struct Recipient {
    pub(crate) user_id: i64,
    pub(crate) device: api::Device,
}

impl<T: Transport, S: Store> Client<T, S> {
    // ----- sending -----

    /// Sends a text to a friend: encrypted for each of their devices and each of this
    /// account's other devices. Returns the stored message (status `pending`); progress comes
    /// as [`Event::Status`]. Works offline: the message waits in the outbox.
    pub async fn send_text(&mut self, to_user: i64, text: &str) -> Result<(Message, Vec<Event>)> {
        if Some(to_user) == self.state.user_id {
            return Err(ClientError::InvalidArgument(
                "messages go to another user".into(),
            ));
        }
        self.compose(Conversation::User(to_user), Some(to_user), text)
            .await
    }

    /// Encrypts what waits in `compose` (as far as the network allows) and sends the
    /// ciphertexts of the outbox not yet written to the open socket, if one is open.
    pub async fn flush_outbox(&mut self) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        loop {
            let compose: Vec<Composed> = self.store.get("compose").await?.unwrap_or_default();
            let Some(next) = compose.first().cloned() else {
                break;
            };
            match self.encrypt_composed(&next, &mut events).await {
                Ok(()) => {}
                // Offline: try again after the next connect.
                Err(e) if is_transient(&e) => break,
                Err(e) => {
                    // A refusal (no longer friends, no devices …): the message cannot go out.
                    let mut rest = compose;
                    rest.retain(|c| c.id != next.id);
                    let mut b = self.store.batch();
                    b.put("compose", &rest);
                    b.commit().await?;
                    events.push(Event::SendFailed {
                        id: next.id.clone(),
                        device_id: 0,
                        code: e.code(),
                    });
                }
            }
        }
        if let Some(socket) = &self.socket {
            let outbox: Vec<Wire> = self.store.get("outbox").await?.unwrap_or_default();
            for w in &outbox {
                if !self.on_socket.insert((w.id.clone(), w.to_device)) {
                    continue;
                }
                let ciphertext = b64_decode("outbox ciphertext", &w.ciphertext)?;
                let frame = match w.room {
                    Some(room) => room_frame(&w.id, room, w.kind, &ciphertext),
                    None => send_frame(&w.id, w.to_device, w.kind, &ciphertext),
                };
                let _ = socket.unbounded_send(Outgoing::Text(frame));
            }
        }
        Ok(events)
    }

    async fn encrypt_composed(&mut self, c: &Composed, events: &mut Vec<Event>) -> Result<()> {
        let to_user = match c.conversation {
            Conversation::User(to_user) => to_user,
            Conversation::Room(room) => return self.encrypt_room(c, room, events).await,
        };
        let mut recipients: Vec<Recipient> = self
            .devices_of(to_user)
            .await?
            .into_iter()
            .map(|device| Recipient {
                user_id: to_user,
                device,
            })
            .collect();
        if recipients.is_empty() {
            return Err(ClientError::Relay {
                code: ErrorCode::UnknownDevice,
                status: 0,
                message: "the recipient has no devices".into(),
                retry_after: None,
            });
        }
        recipients.extend(self.own_other_devices().await?);
        self.check_recipients(&recipients, events).await?;
        let mut updated = Vec::new();
        let wires = self
            .pairwise_wires(&recipients, &c.id, c.payload.as_bytes(), &mut updated)
            .await?;
        let pending = wires.iter().map(|w| w.to_device).collect();
        self.commit_encrypted(self.store.batch(), c, wires, &mut updated, pending)
            .await
    }

    /// This account's devices other than this one.
    pub(crate) async fn own_other_devices(&mut self) -> Result<Vec<Recipient>> {
        let me = self.signed_in_user()?;
        let my_device = self.state.device_id.ok_or(ClientError::NoDevice)?;
        Ok(self
            .devices_of(me)
            .await?
            .into_iter()
            .filter(|d| d.device_id != my_device)
            .map(|device| Recipient {
                user_id: me,
                device,
            })
            .collect())
    }

    /// Trust on first use for every recipient user's listed devices.
    pub(crate) async fn check_recipients(
        &mut self,
        recipients: &[Recipient],
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let mut users: Vec<i64> = recipients.iter().map(|r| r.user_id).collect();
        users.sort_unstable();
        users.dedup();
        for user in users {
            let devices: Vec<api::Device> = recipients
                .iter()
                .filter(|r| r.user_id == user)
                .map(|r| r.device.clone())
                .collect();
            self.check_identities(user, &devices, events).await?;
        }
        Ok(())
    }

    /// Encrypts `plaintext` once per recipient device with its newest session (created from a
    /// fetched bundle when there is none). The sessions end up in `updated`, to be committed
    /// with the ciphertexts.
    pub(crate) async fn pairwise_wires(
        &mut self,
        recipients: &[Recipient],
        id: &str,
        plaintext: &[u8],
        updated: &mut Vec<(i64, Vec<Session>)>,
    ) -> Result<Vec<Wire>> {
        let mut wires = Vec::new();
        for r in recipients {
            let device_id = r.device.device_id;
            let position = updated.iter().position(|(d, _)| *d == device_id);
            let mut sessions = match position {
                Some(i) => updated.swap_remove(i).1,
                None => self.load_sessions(device_id).await?,
            };
            if sessions.is_empty() {
                sessions.push(self.outbound_session(r).await?);
            }
            let Some(session) = sessions.first_mut() else {
                continue;
            };
            let ciphertext = session.encrypt(plaintext)?.encode();
            wires.push(Wire {
                id: id.to_owned(),
                to_device: device_id,
                room: None,
                kind: KIND_PAIRWISE,
                ciphertext: BASE64.encode(ciphertext),
            });
            updated.push((device_id, sessions));
        }
        Ok(wires)
    }

    /// Moves a composed message to the outbox: ciphertexts and the sessions that made them,
    /// with whatever `batch` already holds (a room's group session), in one write.
    pub(crate) async fn commit_encrypted(
        &self,
        mut batch: Batch<'_, S>,
        c: &Composed,
        wires: Vec<Wire>,
        updated: &mut [(i64, Vec<Session>)],
        pending: Vec<i64>,
    ) -> Result<()> {
        for (device_id, sessions) in updated.iter_mut() {
            self.stage_sessions(&mut batch, *device_id, sessions)?;
        }
        let mut outbox: Vec<Wire> = self.store.get("outbox").await?.unwrap_or_default();
        outbox.extend(wires);
        batch.put("outbox", &outbox);
        let mut compose: Vec<Composed> = self.store.get("compose").await?.unwrap_or_default();
        compose.retain(|x| x.id != c.id);
        batch.put("compose", &compose);
        let location_name = format!("msgid:{}", c.id);
        if let Some(mut location) = self.store.get::<MessageLocation>(&location_name).await? {
            location.pending = pending;
            batch.put(&location_name, &location);
        }
        batch.commit().await
    }

    async fn outbound_session(&mut self, r: &Recipient) -> Result<Session> {
        let ms_id = self.ms_id_of(r.user_id).await?;
        let path = format!(
            "/api/v1/users/{}/devices/{}/bundle",
            segment(&ms_id),
            r.device.device_id
        );
        let answer: api::Bundle = self.relay.call(Method::Post, &path, None::<&()>).await?;
        let bytes = BASE64
            .decode(&answer.bundle)
            .map_err(|_| ClientError::bad_response("bundle is not base64"))?;
        let bundle = PrekeyBundle::decode(&bytes)?;
        if BASE64.encode(bundle.identity().encode()) != r.device.identity_key {
            return Err(ClientError::IdentityMismatch {
                user_id: r.user_id,
                device_id: r.device.device_id,
            });
        }
        let account = self.account.as_ref().ok_or(ClientError::NoDevice)?;
        Ok(account.create_outbound_session(&bundle)?)
    }

    pub(crate) async fn ms_id_of(&mut self, user_id: i64) -> Result<String> {
        if let Some(ms_id) = self.ms_ids.get(&user_id) {
            return Ok(ms_id.clone());
        }
        if Some(user_id) == self.state.user_id {
            let me = self.me().await?;
            self.ms_ids.insert(user_id, me.ms_id.clone());
            return Ok(me.ms_id);
        }
        self.friends().await?;
        self.ms_ids
            .get(&user_id)
            .cloned()
            .ok_or(ClientError::Relay {
                code: ErrorCode::NotFriends,
                status: 0,
                message: format!("user {user_id} is not a friend"),
                retry_after: None,
            })
    }

    /// A user's devices (this account's own with its user id), cached per connection.
    pub(crate) async fn devices_of(&mut self, user_id: i64) -> Result<Vec<api::Device>> {
        if let Some(devices) = self.devices.get(&user_id) {
            return Ok(devices.clone());
        }
        let devices: Vec<api::Device> = if Some(user_id) == self.state.user_id {
            self.own_devices()
                .await?
                .into_iter()
                .map(|d| api::Device {
                    device_id: d.device_id,
                    identity_key: d.identity_key,
                    name: d.name,
                })
                .collect()
        } else {
            let ms_id = self.ms_id_of(user_id).await?;
            self.relay
                .call(
                    Method::Get,
                    &format!("/api/v1/users/{}/devices", segment(&ms_id)),
                    None::<&()>,
                )
                .await?
        };
        self.devices.insert(user_id, devices.clone());
        Ok(devices)
    }

    /// Trust on first use per device: the devices of a user's first listing are recorded
    /// silently; a device that appears later is a key change, reported, and flagged until
    /// [`Client::accept_identity`] if the user had been verified. Returns the flagged devices.
    async fn check_identities(
        &mut self,
        user_id: i64,
        devices: &[api::Device],
        events: &mut Vec<Event>,
    ) -> Result<Vec<i64>> {
        let name = format!("trust:{user_id}");
        let mut trust: Trust = self.store.get(&name).await?.unwrap_or_default();
        let first_contact = trust.devices.is_empty();
        let mut changed = false;
        for device in devices {
            match trust.devices.get(&device.device_id) {
                Some(known) if *known == device.identity_key => continue,
                // Device ids are never reused by the relay: a different key under a known id is
                // a relay that lies.
                Some(_) => {
                    return Err(ClientError::IdentityMismatch {
                        user_id,
                        device_id: device.device_id,
                    });
                }
                None => {}
            }
            changed = true;
            trust
                .devices
                .insert(device.device_id, device.identity_key.clone());
            if !first_contact && Some(user_id) != self.state.user_id {
                if trust.verified {
                    trust.unverified_devices.push(device.device_id);
                }
                events.push(Event::KeyChanged {
                    user_id,
                    device_id: device.device_id,
                    was_verified: trust.verified,
                });
            }
        }
        if changed {
            let mut b = self.store.batch();
            b.put(&name, &trust);
            b.commit().await?;
        }
        Ok(trust.unverified_devices)
    }

    /// The safety number between this device and device `device_id` of `user_id`, from the
    /// identity key recorded for that device (compare it out of band, then
    /// [`Client::mark_verified`]). The users' stable ids (not their editable ms_ids) go into
    /// it, so it is the same on both sides and survives ms_id changes.
    pub async fn safety_number(&self, user_id: i64, device_id: i64) -> Result<SafetyNumber> {
        let me = self.signed_in_user()?;
        let own = self
            .account
            .as_ref()
            .ok_or(ClientError::NoDevice)?
            .identity();
        let trust: Trust = self
            .store
            .get(&format!("trust:{user_id}"))
            .await?
            .unwrap_or_default();
        let key = trust.devices.get(&device_id).ok_or_else(|| {
            ClientError::InvalidArgument(format!(
                "no identity recorded for device {device_id} of user {user_id}"
            ))
        })?;
        let remote = PublicIdentity::decode(&b64_decode("identity", key)?)?;
        Ok(SafetyNumber::new(
            own,
            me.to_string().as_bytes(),
            &remote,
            user_id.to_string().as_bytes(),
        ))
    }

    /// Marks a user verified (after comparing safety numbers).
    pub async fn mark_verified(&self, user_id: i64, verified: bool) -> Result<()> {
        let name = format!("trust:{user_id}");
        let mut trust: Trust = self.store.get(&name).await?.unwrap_or_default();
        trust.verified = verified;
        trust.unverified_devices.clear();
        let mut b = self.store.batch();
        b.put(&name, &trust);
        b.commit().await
    }

    /// Accepts the new keys of a verified user: their messages are no longer flagged (the
    /// user stays verified only by comparing safety numbers again).
    pub async fn accept_identity(&self, user_id: i64) -> Result<()> {
        let name = format!("trust:{user_id}");
        let mut trust: Trust = self.store.get(&name).await?.unwrap_or_default();
        trust.unverified_devices.clear();
        trust.verified = false;
        let mut b = self.store.batch();
        b.put(&name, &trust);
        b.commit().await
    }

    pub(crate) async fn load_sessions(&self, device_id: i64) -> Result<Vec<Session>> {
        let record: SessionsRecord = self
            .store
            .get(&format!("sessions:{device_id}"))
            .await?
            .unwrap_or_default();
        let mut out = Vec::with_capacity(record.pickles.len());
        for p in record.pickles {
            let id = pickle_id_from_hex(&p.id)?;
            let sealed = b64_decode("session", &p.sealed)?;
            out.push(Session::from_pickle(
                &sealed,
                &self.pickle_key,
                &id,
                p.counter,
            )?);
        }
        Ok(out)
    }

    pub(crate) fn stage_sessions(
        &self,
        batch: &mut Batch<'_, S>,
        device_id: i64,
        sessions: &mut [Session],
    ) -> Result<()> {
        let mut record = SessionsRecord::default();
        for s in sessions.iter_mut().take(SESSIONS_PER_DEVICE) {
            let sealed = s.pickle(&self.pickle_key)?;
            record.pickles.push(StoredPickle {
                id: s.pickle_id().to_string(),
                counter: sealed.counter(),
                sealed: BASE64.encode(sealed.as_bytes()),
            });
        }
        batch.put(&format!("sessions:{device_id}"), &record);
        Ok(())
    }

    /// Tells the friend `to_user` that this user is typing (or stopped).
    pub fn send_typing(&self, to_user: i64, typing: bool) -> Result<()> {
        let socket = self
            .socket
            .as_ref()
            .ok_or_else(|| ClientError::Network("not connected".into()))?;
        let frame = ClientFrame::Typing {
            v: 1,
            to_user,
            state: if typing { "typing" } else { "idle" },
        }
        .to_json();
        socket
            .unbounded_send(Outgoing::Text(frame))
            .map_err(|_| ClientError::Network("not connected".into()))
    }

    // ----- receiving -----

    /// Handles one event of the socket and returns what the app should hear about.
    pub async fn handle(&mut self, event: SocketEvent) -> Result<Vec<Event>> {
        let text = match event {
            SocketEvent::Text(text) => text,
            SocketEvent::Closed(code) => {
                self.socket = None;
                self.on_socket.clear();
                self.synced = false;
                let state = if Self::should_reconnect(code) {
                    ConnectionState::Offline
                } else {
                    ConnectionState::Stopped
                };
                return Ok(vec![Event::Connection { state }]);
            }
        };
        // A frame that does not follow the protocol is skipped: there is nothing to answer.
        let Ok(frame) = RelayFrame::parse(&text) else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        match frame {
            RelayFrame::Envelope(env) => self.receive(env, &mut events).await?,
            RelayFrame::Accepted {
                id,
                to_device: Some(device),
                ..
            } => self.accepted(&id, device, &mut events).await?,
            // A room send is accepted once for every member device (`to_device` 0 in the outbox).
            RelayFrame::Accepted {
                id, room: Some(_), ..
            } => self.accepted(&id, 0, &mut events).await?,
            RelayFrame::Accepted { .. } | RelayFrame::Unknown(_) => {}
            RelayFrame::QueueEmpty => {
                self.synced = true;
                events.push(Event::Connection {
                    state: ConnectionState::Online,
                });
                // Top up prekeys now that the backlog consumed some; a failure waits for the
                // next connection.
                let _ = self.maintain_prekeys().await;
            }
            RelayFrame::Delivered { id, to_device } => {
                self.delivered(&id, to_device, &mut events).await?;
            }
            RelayFrame::Typing { from_user, typing } => events.push(Event::Typing {
                user_id: from_user,
                typing,
            }),
            RelayFrame::Presence { user, online } => events.push(Event::Presence {
                user_id: user,
                online,
            }),
            RelayFrame::FriendsChanged => {
                self.ms_ids.clear();
                events.push(Event::FriendsChanged);
            }
            RelayFrame::RoomsChanged {
                room,
                change,
                user,
                by,
            } => events.push(Event::RoomsChanged {
                room_id: room,
                change,
                user_id: user,
                by,
            }),
            RelayFrame::DevicesChanged { user } => {
                self.devices.remove(&user);
                events.push(Event::DevicesChanged { user_id: user });
            }
            RelayFrame::Error {
                code,
                id,
                to_device,
                room,
                ..
            } => {
                let code = ErrorCode::from_relay(&code).unwrap_or(ErrorCode::UnknownRelayCode);
                let device = to_device.or(room.map(|_| 0));
                let retryable = matches!(
                    code,
                    ErrorCode::QueueFull
                        | ErrorCode::RateLimited
                        | ErrorCode::Unavailable
                        | ErrorCode::Internal
                );
                if let (Some(id), Some(device)) = (id, device) {
                    if retryable {
                        // Stays in the outbox; the next flush writes it again.
                        self.on_socket.remove(&(id, device));
                    } else if self.remove_from_outbox(&id, device, &mut events).await? {
                        // Not retryable: the ciphertext leaves the outbox (an error about
                        // something this client never sent is ignored).
                        events.push(Event::SendFailed {
                            id,
                            device_id: device,
                            code,
                        });
                    }
                }
            }
        }
        Ok(events)
    }

    async fn accepted(&mut self, id: &str, device: i64, events: &mut Vec<Event>) -> Result<()> {
        self.remove_from_outbox(id, device, events).await.map(drop)
    }

    pub(crate) async fn remove_from_outbox(
        &mut self,
        id: &str,
        device: i64,
        events: &mut Vec<Event>,
    ) -> Result<bool> {
        let mut outbox: Vec<Wire> = self.store.get("outbox").await?.unwrap_or_default();
        let before = outbox.len();
        outbox.retain(|w| !(w.id == id && w.to_device == device));
        self.on_socket.remove(&(id.to_owned(), device));
        if outbox.len() == before {
            return Ok(false);
        }
        let mut batch = self.store.batch();
        batch.put("outbox", &outbox);
        let name = format!("msgid:{id}");
        if let Some(mut location) = self.store.get::<MessageLocation>(&name).await? {
            location.pending.retain(|d| *d != device);
            if location.pending.is_empty() {
                self.stage_status(&mut batch, &location, MessageStatus::Sent)
                    .await?;
                events.push(Event::Status {
                    id: id.to_owned(),
                    conversation: location.conversation,
                    status: MessageStatus::Sent,
                });
            }
            batch.put(&name, &location);
        }
        batch.commit().await?;
        Ok(true)
    }

    async fn delivered(&mut self, id: &str, device: i64, events: &mut Vec<Event>) -> Result<()> {
        let Some(location) = self
            .store
            .get::<MessageLocation>(&format!("msgid:{id}"))
            .await?
        else {
            return Ok(());
        };
        let Conversation::User(peer) = location.conversation else {
            return Ok(());
        };
        // A receipt from one of the peer's devices (not from this account's own).
        let peer_devices = self.devices.get(&peer);
        if peer_devices.is_some_and(|d| !d.iter().any(|d| d.device_id == device)) {
            return Ok(());
        }
        let name = format!("msg:{}:{}", location.conversation.key(), location.index);
        let Some(message) = self.store.get::<Message>(&name).await? else {
            return Ok(());
        };
        if !message.outgoing || message.status == MessageStatus::Delivered {
            return Ok(());
        }
        let mut batch = self.store.batch();
        self.stage_status(&mut batch, &location, MessageStatus::Delivered)
            .await?;
        batch.commit().await?;
        events.push(Event::Status {
            id: id.to_owned(),
            conversation: location.conversation,
            status: MessageStatus::Delivered,
        });
        Ok(())
    }

    fn ack(&self, eid: i64) {
        if let Some(socket) = &self.socket {
            let frame = ClientFrame::Ack { v: 1, ids: &[eid] }.to_json();
            let _ = socket.unbounded_send(Outgoing::Text(frame));
        }
    }

    async fn receive(&mut self, env: Envelope, events: &mut Vec<Event>) -> Result<()> {
        let seen = format!("seen:{}:{}", env.from_device, env.id);
        if self.store.get::<u8>(&seen).await?.is_some() {
            self.ack(env.eid);
            return Ok(());
        }
        let outcome = if env.kind == KIND_GROUP {
            self.receive_group(&env, &seen, events).await?
        } else {
            match self.open_pairwise(&env, events).await {
                Ok(opened) => self.store_pairwise(&env, &seen, opened, events).await?,
                Err(reason) => Err(reason),
            }
        };
        if let Err(reason) = outcome {
            let mut batch = self.store.batch();
            batch.put(&seen, &1u8);
            batch.commit().await?;
            events.push(Event::DecryptionFailed {
                from_user: env.from_user,
                from_device: env.from_device,
                id: env.id.clone(),
                reason,
            });
        }
        self.ack(env.eid);
        Ok(())
    }

    /// The message a payload describes, for the conversation it belongs to.
    pub(crate) fn message_from(
        &self,
        env: &Envelope,
        body: Body,
        flagged: bool,
    ) -> std::result::Result<Message, FailureReason> {
        let me = self.state.user_id.ok_or(FailureReason::UnknownSession)?;
        let Body::Message {
            id,
            to_user,
            sent_at,
            text,
            attachment,
            reply_to,
        } = body
        else {
            return Err(FailureReason::Unsupported);
        };
        if id != env.id {
            return Err(FailureReason::Corrupted);
        }
        let outgoing = env.from_user == me;
        let conversation = match env.room {
            Some(room) => Conversation::Room(room),
            None if outgoing => Conversation::User(to_user.ok_or(FailureReason::Corrupted)?),
            None => Conversation::User(env.from_user),
        };
        Ok(Message {
            id,
            conversation,
            from_user: env.from_user,
            from_device: env.from_device,
            outgoing,
            sent_at,
            stored_at: now_ms(),
            text,
            attachment,
            reply_to,
            status: if outgoing {
                MessageStatus::Sent
            } else {
                MessageStatus::Received
            },
            unverified_key: flagged,
        })
    }

    /// Stores what a pairwise envelope carried, with the session state, in one write.
    async fn store_pairwise(
        &mut self,
        env: &Envelope,
        seen: &str,
        mut opened: Opened,
        events: &mut Vec<Event>,
    ) -> Result<std::result::Result<(), FailureReason>> {
        let account = if opened.account_changed {
            self.account_pickle()?
        } else {
            None
        };
        if let Some((r, _)) = &account {
            self.state.account = Some(r.clone());
        }
        let mut message = None;
        let mut released = Vec::new();
        let mut group = None;
        match opened.body {
            Body::SenderKey { room, distribution } => {
                let Some(session) = opened.sessions.first() else {
                    return Ok(Err(FailureReason::UnknownSession));
                };
                match self.accept_distribution(env, room, &distribution, session) {
                    Ok(inbound) => group = Some((room, inbound)),
                    Err(reason) => return Ok(Err(reason)),
                }
            }
            body => match self.message_from(env, body, opened.flagged) {
                Ok(m) => message = Some(m),
                Err(reason) => return Ok(Err(reason)),
            },
        }
        let mut batch = self.store.batch();
        if let Some((room, inbound)) = group {
            released = self
                .stage_inbound_group(&mut batch, room, env.from_device, inbound)
                .await?;
        }
        let fresh = match &message {
            Some(m) => self.stage_message(&mut batch, m, Vec::new()).await?,
            None => false,
        };
        self.stage_sessions(&mut batch, env.from_device, &mut opened.sessions)?;
        if let Some((_, stored)) = &account {
            batch.put("account", stored);
            batch.put("state", &self.state);
        }
        batch.put(seen, &1u8);
        batch.commit().await?;
        if let (true, Some(m)) = (fresh, message) {
            events.push(Event::Message {
                message: Box::new(m),
            });
        }
        for held in released {
            self.receive_group(
                &held,
                &format!("seen:{}:{}", held.from_device, held.id),
                events,
            )
            .await?
            .ok();
        }
        Ok(Ok(()))
    }

    /// Decrypts a pairwise envelope; `Err` is the reason it cannot be read.
    async fn open_pairwise(
        &mut self,
        env: &Envelope,
        events: &mut Vec<Event>,
    ) -> std::result::Result<Opened, FailureReason> {
        if env.kind != KIND_PAIRWISE || env.room.is_some() {
            return Err(FailureReason::Unsupported);
        }
        let message =
            SessionMessage::decode(&env.ciphertext).map_err(|_| FailureReason::Corrupted)?;
        let mut sessions = self
            .load_sessions(env.from_device)
            .await
            .map_err(|_| FailureReason::UnknownSession)?;
        let mut account_changed = false;
        let (plaintext, flagged) = match &message {
            SessionMessage::Prekey(prekey) => {
                let flagged = self.verify_sender(env, prekey.sender(), events).await?;
                if let Some(pos) = sessions
                    .iter()
                    .position(|s| s.matches_prekey_message(prekey))
                {
                    let session = sessions.get_mut(pos).ok_or(FailureReason::UnknownSession)?;
                    let plaintext = session.decrypt(&message).map_err(failure_reason)?;
                    let s = sessions.remove(pos);
                    sessions.insert(0, s);
                    (plaintext, flagged)
                } else {
                    let account = self.account.as_mut().ok_or(FailureReason::UnknownSession)?;
                    let (session, plaintext) = account
                        .create_inbound_session(prekey)
                        .map_err(failure_reason)?;
                    account_changed = true;
                    sessions.insert(0, session);
                    (plaintext, flagged)
                }
            }
            SessionMessage::Ratchet(_) => {
                let mut last = FailureReason::UnknownSession;
                let mut opened = None;
                for (i, session) in sessions.iter_mut().enumerate() {
                    match session.decrypt(&message) {
                        Ok(p) => {
                            opened = Some((i, p));
                            break;
                        }
                        Err(e) => last = failure_reason(e),
                    }
                }
                let Some((i, plaintext)) = opened else {
                    return Err(last);
                };
                let s = sessions.remove(i);
                let identity = s.remote_identity().clone();
                sessions.insert(0, s);
                let flagged = self.verify_sender(env, &identity, events).await?;
                (plaintext, flagged)
            }
        };
        let payload = Payload::decode(&plaintext).map_err(|_| FailureReason::Unsupported)?;
        Ok(Opened {
            body: payload.body,
            sessions,
            account_changed,
            flagged,
        })
    }

    /// Checks that `identity` is the key the relay lists for the sending device (trust on
    /// first use, then fixed). Returns whether messages from it are flagged.
    pub(crate) async fn verify_sender(
        &mut self,
        env: &Envelope,
        identity: &PublicIdentity,
        events: &mut Vec<Event>,
    ) -> std::result::Result<bool, FailureReason> {
        let key = BASE64.encode(identity.encode());
        let listed: Vec<api::Device> = self.devices_of(env.from_user).await.unwrap_or_default();
        let device = match listed.iter().find(|d| d.device_id == env.from_device) {
            Some(d) => d.clone(),
            // The device list is unavailable (offline, or no longer friends): check against
            // what was recorded before, or record it.
            None => api::Device {
                device_id: env.from_device,
                identity_key: key.clone(),
                name: String::new(),
            },
        };
        if device.identity_key != key {
            return Err(FailureReason::KeyChanged);
        }
        let known = if listed.iter().any(|d| d.device_id == env.from_device) {
            listed
        } else {
            vec![device]
        };
        match self.check_identities(env.from_user, &known, events).await {
            Ok(flagged) => Ok(flagged.contains(&env.from_device)),
            Err(_) => Err(FailureReason::KeyChanged),
        }
    }
}

struct Opened {
    body: Body,
    sessions: Vec<Session>,
    account_changed: bool,
    flagged: bool,
}

fn failure_reason(e: SessionError) -> FailureReason {
    match e {
        SessionError::DuplicateMessage => FailureReason::Duplicate,
        SessionError::UnknownOneTimePrekey(_)
        | SessionError::UnknownSignedPrekey(_)
        | SessionError::SessionMismatch
        | SessionError::CannotEncrypt => FailureReason::UnknownSession,
        SessionError::TooFarAhead { .. } => FailureReason::TooOld,
        _ => FailureReason::Corrupted,
    }
}

/// Whether an error means "try again later" rather than "this cannot work".
fn is_transient(e: &ClientError) -> bool {
    matches!(
        e.code(),
        ErrorCode::Network
            | ErrorCode::RateLimited
            | ErrorCode::Unavailable
            | ErrorCode::Internal
            | ErrorCode::Unauthorized
            | ErrorCode::RequestTimeout
    )
}
