//! Change notices over the WebSocket: `friends_changed`, `rooms_changed`, `devices_changed`
//! (frames in `docs/api.md` §2.2).
//!
//! They tell a client which list to refetch over HTTP, right after the change committed. Like
//! presence they are best effort and never stored: only devices connected to this relay
//! process at that moment get them (several relays on one PostgreSQL database do not forward
//! them to each other), so a client refetches its lists whenever it (re)connects and treats a
//! notice as a hint, never as the only source of truth.
//!
//! Who is told:
//! - `friends_changed`: every user whose friend list, pending requests or block list changed
//!   ([`crate::services::friends`] decides; a declined request's sender is not told).
//! - `rooms_changed`: the joined members of the room and the user who was invited, declined or
//!   left ([`crate::services::rooms`]).
//! - `devices_changed`: the user and every user in contact with them
//!   ([`crate::services::contacts::contacts_of`]).

use crate::api::frames::{RoomChange, ServerFrame};
use crate::services::contacts;
use crate::services::hub::Push;
use crate::state::AppState;
use std::collections::BTreeSet;

/// Queues `frame` for every connected device of each of `users` (each user once).
fn push(state: &AppState, users: impl IntoIterator<Item = i64>, frame: &ServerFrame<'_>) {
    let users: BTreeSet<i64> = users.into_iter().collect();
    if users.is_empty() {
        return;
    }
    let push = Push {
        eid: None,
        text: frame.to_text().into(),
        committed: None,
    };
    for user in users {
        state.hub.push_to_user(user, &push);
    }
}

/// `friends_changed` to `users`.
pub fn friends_changed(state: &AppState, users: impl IntoIterator<Item = i64>) {
    push(state, users, &ServerFrame::FriendsChanged {});
}

/// `rooms_changed` for `room` to `users`; `what` is the change, the member it is about and
/// who made it (`None` for an account deletion, which has no author to name).
pub fn rooms_changed(
    state: &AppState,
    room: i64,
    what: Option<(RoomChange, Option<i64>, i64)>,
    users: impl IntoIterator<Item = i64>,
) {
    push(
        state,
        users,
        &ServerFrame::RoomsChanged {
            room,
            change: what.map(|w| w.0),
            user: what.and_then(|w| w.1),
            by: what.map(|w| w.2),
        },
    );
}

/// `devices_changed` for `user` to `user` and to `contacts` (their contacts, as they were
/// when the devices changed).
pub fn devices_changed(state: &AppState, user: i64, contacts: impl IntoIterator<Item = i64>) {
    push(
        state,
        std::iter::once(user).chain(contacts),
        &ServerFrame::DevicesChanged { user },
    );
}

/// `devices_changed` for `user`, whose devices just changed, to them and to their contacts
/// as they are now. A failed lookup tells only the user's own devices (best effort).
pub async fn devices_changed_now(state: &AppState, user: i64) {
    let contacts = state
        .db
        .run(move |conn| contacts::contacts_of(conn, user))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "devices_changed: contacts lookup failed");
            Vec::new()
        });
    devices_changed(state, user, contacts);
}
