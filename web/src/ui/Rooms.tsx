// Rooms: create one, answer invitations (in the Friends panel), and the member list with
// invitations inside a room's conversation.

import { useState } from "preact/hooks";
import type { ChatSnapshot, ChatState } from "../chat-state";
import { Avatar, ErrorText, Icon, useAction } from "./common";

export function RoomsCard({ state, chat }: { state: ChatState; chat: ChatSnapshot }) {
  const [name, setName] = useState("");
  const create = useAction();
  const answer = useAction();
  const invited = chat.rooms.filter((r) => r.state === "invited");

  const submit = (event: Event) => {
    event.preventDefault();
    const trimmed = name.trim();
    if ([...trimmed].length > 64) return create.setError({ field: "form", text: "A room name has at most 64 characters." });
    void create.run(async () => {
      await state.createRoom(trimmed);
      setName("");
    });
  };

  const act = (action: () => Promise<void>) =>
    answer.run(async () => {
      await action();
      await state.refreshRooms();
    });

  return (
    <div class="card">
      <h3>Rooms</h3>
      <p class="muted">A room is a group conversation with friends you invite. Its name is visible to the server; messages are not.</p>
      <form class="inline-form" onSubmit={submit} noValidate aria-busy={create.busy}>
        <label class="sr-only" for="room-name">
          Room name
        </label>
        <input id="room-name" type="text" placeholder="Room name, e.g. Book club" maxLength={64} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={create.busy}>
          <Icon name="plus" />
          Create room
        </button>
      </form>
      <ErrorText error={create.error} field="form" />
      {invited.length > 0 ? (
        <>
          <h3 class="subhead">Invitations</h3>
          <ul class="people" aria-label="Room invitations">
            {invited.map((r) => (
              <li class="person" key={r.id}>
                <Avatar id={r.id} name={r.name ?? "Room"} />
                <span class="person-text">
                  <strong>{r.name ?? `Room ${r.id}`}</strong>
                  <span class="muted">You are invited</span>
                </span>
                <span class="person-actions">
                  <button type="button" class="primary small" aria-label={`Join ${r.name ?? `room ${r.id}`}`} disabled={answer.busy} onClick={() => void act(async () => {
                    await state.client.joinRoom(r.id);
                    await state.refreshRooms();
                    await state.openConversation({ room: r.id });
                  })}>
                    Join
                  </button>
                  <button type="button" class="secondary small" aria-label={`Decline ${r.name ?? `room ${r.id}`}`} disabled={answer.busy} onClick={() => void act(() => state.client.declineRoom(r.id))}>
                    Decline
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <ErrorText error={answer.error} field="form" />
    </div>
  );
}

/** The members of the open room, inviting a friend, leaving. */
export function RoomMembers({ state, chat, room }: { state: ChatState; chat: ChatSnapshot; room: number }) {
  const [msId, setMsId] = useState("");
  const invite = useAction();
  const leave = useAction();
  const memberIds = new Set(chat.members.map((m) => m.user_id));
  const candidates = chat.friends.filter((f) => !memberIds.has(f.user_id));

  const submit = (event: Event) => {
    event.preventDefault();
    if (!msId) return invite.setError({ field: "ms_id", text: "Choose a friend to invite." });
    void invite.run(async () => {
      await state.client.inviteToRoom(room, msId);
      setMsId("");
      await state.refreshMembers();
    });
  };

  return (
    <div class="members" role="region" aria-label="Room members">
      <ul class="people">
        {chat.members.map((m) => (
          <li class="person" key={m.user_id}>
            <Avatar id={m.user_id} name={m.display_name} size="sm" />
            <span class="person-text">
              <strong>{m.user_id === chat.me.user_id ? `${m.display_name} (you)` : m.display_name}</strong>
              <span class="muted">
                @{m.ms_id}
                {m.state === "invited" ? " · invited" : ""}
              </span>
            </span>
          </li>
        ))}
      </ul>
      <form class="inline-form" onSubmit={submit} noValidate aria-busy={invite.busy}>
        <label class="sr-only" for="invite-ms-id">
          Friend to invite
        </label>
        <select id="invite-ms-id" value={msId} onChange={(e) => setMsId(e.currentTarget.value)}>
          <option value="">{candidates.length ? "Invite a friend…" : "All your friends are here"}</option>
          {candidates.map((f) => (
            <option key={f.user_id} value={f.ms_id}>
              {f.display_name} (@{f.ms_id})
            </option>
          ))}
        </select>
        <button type="submit" class="primary small" disabled={invite.busy || candidates.length === 0}>
          Invite
        </button>
      </form>
      <ErrorText error={invite.error} field="ms_id" />
      <ErrorText error={invite.error} field="form" />
      <button
        type="button"
        class="secondary small leave"
        disabled={leave.busy}
        onClick={() => {
          if (!confirm("Leave this room? You will not receive its new messages.")) return;
          void leave.run(async () => {
            await state.client.leaveRoom(room);
            await state.refreshRooms();
            await state.openConversation(null);
          });
        }}
      >
        Leave room
      </button>
      <ErrorText error={leave.error} field="form" />
    </div>
  );
}
