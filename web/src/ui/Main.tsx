// The signed-in app: the conversation list beside the open conversation, friends or settings.
// On a narrow screen one of the two shows at a time.

import type { ConnectionState } from "securechat-client";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { convKey, conversationRows, type ChatSnapshot, type ChatState, type ConversationRow } from "../chat-state";
import { badge, clockTime, fileSize, listTime, preview, tick, timeline } from "../format";
import { AttachmentView } from "./Attachment";
import { Avatar, ErrorText, Icon, Logo, useAction, useChat } from "./common";
import { Friends } from "./Friends";
import { RoomMembers } from "./Rooms";
import { Settings } from "./Settings";

const CONNECTION: Record<ConnectionState, string> = {
  connecting: "Connecting…",
  syncing: "Syncing…",
  online: "Online",
  offline: "Offline, retrying…",
  stopped: "Disconnected",
};

function ConnectionPill({ state }: { state: ConnectionState }) {
  return (
    <span class={`pill conn-${state}`} role="status" aria-live="polite" data-testid="connection">
      <span class="pill-dot" aria-hidden="true" />
      {CONNECTION[state]}
    </span>
  );
}

function Sidebar({ state, chat, onLogOut }: { state: ChatState; chat: ChatSnapshot; onLogOut: () => void }) {
  const rows = conversationRows(chat.conversations, chat.friends, chat.rooms);
  const incoming = chat.requests.incoming.length;
  return (
    <aside class="sidebar" aria-label="Conversations">
      <header class="side-head">
        <div class="me">
          <Logo />
          <div class="me-text">
            <strong>{chat.me.display_name}</strong>
            <span class="muted">@{chat.me.ms_id}</span>
          </div>
        </div>
        <ConnectionPill state={chat.connection} />
      </header>
      <nav class="side-nav" aria-label="Sections">
        <button type="button" class={chat.panel === "chats" && !chat.open ? "nav active" : "nav"} onClick={() => {
          state.setPanel("chats");
          void state.openConversation(null);
        }}>
          <Icon name="chat" />
          <span>Chats</span>
        </button>
        <button type="button" class={chat.panel === "friends" ? "nav active" : "nav"} onClick={() => state.setPanel("friends")}>
          <Icon name="people" />
          <span>Friends</span>
          {incoming ? (
            <span class="badge">
              {badge(incoming)}
              <span class="sr-only"> new request{incoming === 1 ? "" : "s"}</span>
            </span>
          ) : null}
        </button>
        <button type="button" class={chat.panel === "settings" ? "nav active" : "nav"} onClick={() => state.setPanel("settings")}>
          <Icon name="gear" />
          <span>Settings</span>
        </button>
        <button type="button" class="nav" onClick={onLogOut}>
          <Icon name="logout" />
          <span>Log out</span>
        </button>
      </nav>
      {rows.length === 0 ? (
        <div class="empty-list">
          <p>No conversations yet.</p>
          <button type="button" class="primary" onClick={() => state.setPanel("friends")}>
            Add a friend
          </button>
        </div>
      ) : (
        <ul class="conv-list" aria-label="Conversations">
          {rows.map((row) => (
            <ConversationItem key={row.key} row={row} chat={chat} state={state} />
          ))}
        </ul>
      )}
    </aside>
  );
}

function ConversationItem({ row, chat, state }: { row: ConversationRow; chat: ChatSnapshot; state: ChatState }) {
  const online = row.isRoom ? undefined : chat.presence.get(row.id) === true;
  const last = row.summary.last;
  const unread = row.summary.unread;
  const active = chat.open === row.key && chat.panel === "chats";
  const typing = !row.isRoom && chat.typing.has(row.id);
  return (
    <li>
      <button
        type="button"
        class={active ? "conv active" : "conv"}
        aria-current={active ? "true" : undefined}
        onClick={() => void state.openConversation(row.conversation)}
        data-testid={row.isRoom ? `conv-room-${row.id}` : `conv-${row.subtitle.replace(/^@/u, "")}`}
      >
        <Avatar id={row.id} name={row.title} online={online} />
        <span class="conv-main">
          <span class="conv-top">
            <span class="conv-title">
              {row.title}
              {online ? <span class="sr-only">, online</span> : null}
            </span>
            {last ? <time class="conv-time">{listTime(last.sent_at)}</time> : null}
          </span>
          <span class="conv-bottom">
            <span class={typing ? "conv-preview typing" : "conv-preview"}>{typing ? "typing…" : preview(last)}</span>
            {unread ? (
              <span class="badge" data-testid="unread">
                {badge(unread)}
                <span class="sr-only"> unread</span>
              </span>
            ) : null}
          </span>
        </span>
      </button>
    </li>
  );
}

function ChatView({ state, chat }: { state: ChatState; chat: ChatSnapshot }) {
  const conversation = chat.openConversation;
  const rows = conversationRows(chat.conversations, chat.friends, chat.rooms);
  const row = rows.find((r) => r.key === chat.open);
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const [showMembers, setShowMembers] = useState(false);
  const [dropped, setDropped] = useState<File | null>(null);
  const items = timeline(chat.messages);

  // Follow new messages only while the reader is at the bottom: reading history never jumps.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [chat.messages, chat.open]);
  useEffect(() => {
    stick.current = true;
  }, [chat.open]);

  if (!conversation || !row) return null;
  const online = row.isRoom ? undefined : chat.presence.get(row.id) === true;
  const typing = !row.isRoom && chat.typing.has(row.id);

  return (
    <section
      class="chat"
      aria-label={`Conversation with ${row.title}`}
      onDragOver={(e) => {
        if (e.dataTransfer?.types.includes("Files")) e.preventDefault();
      }}
      onDrop={(e) => {
        const file = e.dataTransfer?.files[0];
        if (!file) return;
        e.preventDefault();
        setDropped(file);
      }}
    >
      <header class="chat-head">
        <button type="button" class="icon-button back" aria-label="Back to conversations" onClick={() => void state.openConversation(null)}>
          <Icon name="back" />
        </button>
        <Avatar id={row.id} name={row.title} online={online} />
        <div class="chat-title">
          <h2>{row.title}</h2>
          <span class="muted">
            {typing ? "typing…" : row.isRoom ? membersLabel(chat.members.filter((m) => m.state === "joined").length) : `${row.subtitle}${online ? " · online" : ""}`}
          </span>
        </div>
        {"room" in conversation ? (
          <button type="button" class="secondary small head-action" aria-expanded={showMembers} onClick={() => setShowMembers(!showMembers)}>
            <Icon name="people" />
            Members
          </button>
        ) : null}
      </header>
      {"room" in conversation && showMembers ? <RoomMembers state={state} chat={chat} room={conversation.room} /> : null}
      <div
        class="messages"
        ref={scroller}
        role="log"
        aria-live="polite"
        aria-label="Messages"
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
        }}
      >
        {chat.moreHistory ? (
          <button type="button" class="secondary load-older" onClick={() => void state.loadOlder()}>
            Show earlier messages
          </button>
        ) : null}
        {items.length === 0 ? (
          <p class="empty-chat muted">
            {row.isRoom ? "No messages yet. Only the room's members can read what is written here." : "No messages yet. Say hello — only the two of you can read it."}
          </p>
        ) : null}
        {items.map((item) =>
          item.kind === "day" ? (
            <div key={item.key} class="day" role="separator">
              <span>{item.label}</span>
            </div>
          ) : (
            <MessageBubble key={item.key} item={item} state={state} sender={row.isRoom && !item.message.outgoing && item.firstOfGroup ? senderName(chat, item.message.from_user) : null} />
          ),
        )}
      </div>
      <Composer state={state} chat={chat} key={chat.open} dropped={dropped} onDroppedTaken={() => setDropped(null)} />
    </section>
  );
}

function membersLabel(joined: number): string {
  return `Room · ${joined} member${joined === 1 ? "" : "s"}`;
}

function senderName(chat: ChatSnapshot, user: number): string {
  return (
    chat.members.find((m) => m.user_id === user)?.display_name ??
    chat.friends.find((f) => f.user_id === user)?.display_name ??
    `User ${user}`
  );
}

function MessageBubble({ item, sender, state }: { item: Extract<ReturnType<typeof timeline>[number], { kind: "message" }>; sender: string | null; state: ChatState }) {
  const { message } = item;
  const t = tick(message.status);
  return (
    <div class={`msg ${message.outgoing ? "out" : "in"}${item.firstOfGroup ? " first" : ""}`} data-testid="message" data-status={message.status}>
      <div class="bubble">
        {sender ? <span class="sender">{sender}</span> : null}
        {message.attachment ? <AttachmentView client={state.client} attachment={message.attachment} /> : null}
        {message.text ? <p class="text">{message.text}</p> : null}
        <span class="meta">
          {message.unverified_key ? <span class="warn" title="Sent from a new, unverified device">unverified · </span> : null}
          <time dateTime={new Date(message.sent_at).toISOString()}>{clockTime(message.sent_at)}</time>
          {message.outgoing ? (
            <span class={`tick tick-${message.status}`} role="img" aria-label={t.label} title={t.label} data-testid="tick">
              {t.symbol}
            </span>
          ) : null}
        </span>
      </div>
    </div>
  );
}

function Composer({ state, chat, dropped, onDroppedTaken }: { state: ChatState; chat: ChatSnapshot; dropped: File | null; onDroppedTaken: () => void }) {
  const [text, setText] = useState("");
  const { error, setError, run } = useAction();
  const picker = useRef<HTMLInputElement>(null);

  const sendFile = (file: File) => {
    const caption = text.trim();
    setText("");
    void run(async () => {
      try {
        await state.sendFile(file, caption);
      } catch (e) {
        setText(caption);
        if (e instanceof Error && !("code" in e)) {
          setError({ field: "form", text: e.message });
          return;
        }
        throw e;
      }
    });
  };

  useEffect(() => {
    if (dropped) {
      onDroppedTaken();
      sendFile(dropped);
    }
  }, [dropped]);
  const lastTyping = useRef(0);
  const area = useRef<HTMLTextAreaElement>(null);
  const conversation = chat.openConversation;

  useEffect(() => area.current?.focus(), []);

  const typing = (value: string) => {
    if (!conversation || !("user" in conversation)) return;
    const now = Date.now();
    if (value && now - lastTyping.current > 3000) {
      lastTyping.current = now;
      void state.client.sendTyping(conversation.user, true).catch(() => undefined);
    }
  };

  const send = () => {
    const body = text.trim();
    if (!body) return;
    setText("");
    lastTyping.current = 0;
    void run(async () => {
      try {
        await state.send(body);
      } catch (e) {
        setText(body);
        throw e;
      }
    });
  };

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      <ErrorText error={error} field="form" />
      <ErrorText error={error} field="ms_id" />
      {chat.uploading ? (
        <div class="uploading" role="status">
          <span>
            Encrypting and sending {chat.uploading.name} ({fileSize(chat.uploading.size)})
            {chat.uploading.total > 0
              ? ` — ${Math.floor((100 * chat.uploading.sent) / chat.uploading.total)}%`
              : "…"}
          </span>
          {chat.uploading.total > 0 ? (
            <progress
              aria-label={`Sending ${chat.uploading.name}`}
              value={chat.uploading.sent}
              max={chat.uploading.total}
            />
          ) : (
            <progress aria-label={`Sending ${chat.uploading.name}`} />
          )}
        </div>
      ) : null}
      <div class="composer-row">
        <input
          ref={picker}
          type="file"
          class="sr-only"
          tabIndex={-1}
          aria-hidden="true"
          data-testid="file-input"
          onChange={(e) => {
            const file = e.currentTarget.files?.[0];
            e.currentTarget.value = "";
            if (file) sendFile(file);
          }}
        />
        <button type="button" class="icon-button attach" aria-label="Attach a file" disabled={chat.uploading !== null} onClick={() => picker.current?.click()}>
          <Icon name="clip" />
        </button>
        <textarea
          ref={area}
          rows={1}
          aria-label="Message"
          placeholder="Write a message"
          value={text}
          onInput={(e) => {
            setText(e.currentTarget.value);
            typing(e.currentTarget.value);
          }}
          onPaste={(e) => {
            const file = e.clipboardData?.files[0];
            if (file) {
              e.preventDefault();
              sendFile(file);
            }
          }}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              send();
            }
          }}
        />
        <button type="submit" class="send" aria-label="Send" disabled={!text.trim()}>
          <Icon name="send" />
        </button>
      </div>
      <p class="composer-hint muted">Enter sends · Shift+Enter for a new line · paste or drop a file to send it</p>
    </form>
  );
}

function Placeholder() {
  return (
    <div class="placeholder">
      <Icon name="lock" />
      <h2>Pick a conversation</h2>
      <p class="muted">Messages are end-to-end encrypted: only you and the people you write to can read them.</p>
    </div>
  );
}

function Notices({ state, chat }: { state: ChatState; chat: ChatSnapshot }) {
  if (chat.notices.length === 0) return null;
  return (
    <div class="notices" role="alert">
      {chat.notices.slice(-3).map((n) => (
        <div class="toast" key={n.id}>
          <span>{n.text}</span>
          <button type="button" class="icon-button" aria-label="Dismiss" onClick={() => state.dismissNotice(n.id)}>
            <Icon name="x" />
          </button>
        </div>
      ))}
    </div>
  );
}

export function Main({ state, onLogOut }: { state: ChatState; onLogOut: () => void }) {
  const chat = useChat(state);
  const paneOpen = chat.panel !== "chats" || chat.open !== null;

  useEffect(() => {
    const unread = chat.conversations.reduce((n, [, s]) => n + s.unread, 0);
    document.title = unread ? `(${unread}) SecureChat` : "SecureChat";
  }, [chat.conversations]);

  return (
    <div class={paneOpen ? "app pane-open" : "app"}>
      <Sidebar state={state} chat={chat} onLogOut={onLogOut} />
      <main class="pane">
        {chat.panel === "friends" ? (
          <Friends state={state} chat={chat} />
        ) : chat.panel === "settings" ? (
          <Settings state={state} chat={chat} />
        ) : chat.open ? (
          <ChatView state={state} chat={chat} key={convKey(chat.openConversation ?? { user: 0 })} />
        ) : (
          <Placeholder />
        )}
      </main>
      <Notices state={state} chat={chat} />
    </div>
  );
}
