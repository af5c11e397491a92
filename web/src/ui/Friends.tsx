// Friends: add by ms_id, answer requests, see who is online, open a conversation.

import { useState } from "preact/hooks";
import type { ChatSnapshot, ChatState } from "../chat-state";
import { fromSeconds, listTime } from "../format";
import { msIdProblem } from "../rules";
import { Avatar, ErrorText, Icon, useAction } from "./common";
import { RoomsCard } from "./Rooms";

function PaneHead({ title, state }: { title: string; state: ChatState }) {
  return (
    <header class="pane-head">
      <button type="button" class="icon-button back" aria-label="Back to conversations" onClick={() => state.setPanel("chats")}>
        <Icon name="back" />
      </button>
      <h2>{title}</h2>
    </header>
  );
}

export { PaneHead };

function RequestRow({ children, id, name, msId, when }: { children: preact.ComponentChildren; id: number; name: string; msId: string; when: number }) {
  return (
    <li class="person">
      <Avatar id={id} name={name} />
      <span class="person-text">
        <strong>{name}</strong>
        <span class="muted">
          @{msId} · {listTime(fromSeconds(when))}
        </span>
      </span>
      <span class="person-actions">{children}</span>
    </li>
  );
}

export function Friends({ state, chat }: { state: ChatState; chat: ChatSnapshot }) {
  const [msId, setMsId] = useState("");
  const [sent, setSent] = useState<string | null>(null);
  const add = useAction();
  const answer = useAction();

  const submit = (event: Event) => {
    event.preventDefault();
    const wanted = msId.trim().replace(/^@/u, "");
    setSent(null);
    if (!wanted) return add.setError({ field: "ms_id", text: "Enter your friend's ms_id." });
    const problem = msIdProblem(wanted);
    if (problem && !/^[a-z0-9._-]{3,32}$/iu.test(wanted)) return add.setError({ field: "ms_id", text: problem });
    void add.run(async () => {
      await state.client.sendFriendRequest(wanted);
      setSent(`Request sent to @${wanted.toLowerCase()}. You can write once they accept.`);
      setMsId("");
      await state.refreshFriends();
    });
  };

  const act = (action: () => Promise<void>) =>
    answer.run(async () => {
      await action();
      await state.refreshFriends();
    });

  const { incoming, outgoing } = chat.requests;
  return (
    <section class="panel" aria-label="Friends">
      <PaneHead title="Friends" state={state} />
      <div class="panel-body">
        <form class="card" onSubmit={submit} noValidate aria-busy={add.busy}>
          <h3>Add a friend</h3>
          <p class="muted">Ask your friend for their ms_id. They will see your request and can accept it.</p>
          <div class="inline-form">
            <label class="sr-only" for="add-ms-id">
              Friend's ms_id
            </label>
            <input
              id="add-ms-id"
              type="text"
              placeholder="ms_id, e.g. ada"
              autocapitalize="none"
              spellcheck={false}
              value={msId}
              aria-invalid={add.error ? "true" : undefined}
              aria-describedby={add.error ? "add-error" : undefined}
              onInput={(e) => setMsId(e.currentTarget.value)}
            />
            <button type="submit" class="primary" disabled={add.busy}>
              <Icon name="plus" />
              Send request
            </button>
          </div>
          <ErrorText error={add.error} field="ms_id" id="add-error" />
          <ErrorText error={add.error} field="form" />
          {sent ? (
            <p class="success" role="status">
              {sent}
            </p>
          ) : null}
        </form>

        <ErrorText error={answer.error} field="form" />
        <ErrorText error={answer.error} field="ms_id" />

        {incoming.length > 0 ? (
          <div class="card">
            <h3>Requests for you</h3>
            <ul class="people" aria-label="Incoming friend requests">
              {incoming.map((r) => (
                <RequestRow key={r.id} id={r.user_id} name={r.display_name} msId={r.ms_id} when={r.created_at}>
                  <button type="button" class="primary small" aria-label={`Accept ${r.ms_id}`} onClick={() => void act(() => state.client.acceptFriendRequest(r.id))} disabled={answer.busy}>
                    <Icon name="check" />
                    Accept
                  </button>
                  <button type="button" class="secondary small" aria-label={`Decline ${r.ms_id}`} onClick={() => void act(() => state.client.declineFriendRequest(r.id))} disabled={answer.busy}>
                    Decline
                  </button>
                </RequestRow>
              ))}
            </ul>
          </div>
        ) : null}

        {outgoing.length > 0 ? (
          <div class="card">
            <h3>Waiting for an answer</h3>
            <ul class="people" aria-label="Outgoing friend requests">
              {outgoing.map((r) => (
                <RequestRow key={r.id} id={r.user_id} name={r.display_name} msId={r.ms_id} when={r.created_at}>
                  <button type="button" class="secondary small" aria-label={`Cancel request to ${r.ms_id}`} onClick={() => void act(() => state.client.cancelFriendRequest(r.id))} disabled={answer.busy}>
                    Cancel
                  </button>
                </RequestRow>
              ))}
            </ul>
          </div>
        ) : null}

        <div class="card">
          <h3>Your friends</h3>
          {chat.friends.length === 0 ? (
            <p class="muted">No friends yet. Add one above.</p>
          ) : (
            <ul class="people" aria-label="Friends">
              {chat.friends.map((f) => {
                const online = chat.presence.get(f.user_id) === true;
                return (
                  <li class="person" key={f.user_id}>
                    <Avatar id={f.user_id} name={f.display_name} online={online} />
                    <span class="person-text">
                      <strong>{f.display_name}</strong>
                      <span class="muted">
                        @{f.ms_id} · {online ? "online" : "offline"}
                      </span>
                    </span>
                    <span class="person-actions">
                      <button type="button" class="primary small" aria-label={`Message ${f.ms_id}`} onClick={() => void state.openConversation({ user: f.user_id })}>
                        Message
                      </button>
                      <button
                        type="button"
                        class="secondary small"
                        aria-label={`Remove ${f.ms_id}`}
                        onClick={() => {
                          if (confirm(`Remove ${f.display_name} (@${f.ms_id}) from your friends?`)) void act(() => state.client.removeFriend(f.ms_id));
                        }}
                        disabled={answer.busy}
                      >
                        Remove
                      </button>
                    </span>
                  </li>
                );
              })}
            </ul>
          )}
        </div>

        <RoomsCard state={state} chat={chat} />
      </div>
    </section>
  );
}
