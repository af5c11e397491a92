// The signed-in app's state: one object the views read, updated from the client's events.
// Views subscribe with `useChat()` (ui/hooks.ts) and re-render on every change.

import type {
  ClientEvent,
  ConnectionState,
  Conversation,
  ConversationSummary,
  Friend,
  RoomMember,
  FriendRequests,
  Me,
  Message,
  Room,
  SecureChatClient,
} from "securechat-client";
import { explain } from "./errors";
import { laterStatus } from "./format";

/** "u7" for a friend, "r5" for a room: a conversation as a map key. */
export function convKey(conversation: Conversation): string {
  return "user" in conversation ? `u${conversation.user}` : `r${conversation.room}`;
}

/** One row of the conversation list. */
export interface ConversationRow {
  key: string;
  conversation: Conversation;
  title: string;
  subtitle: string;
  /** The friend's user id (presence, avatar colour), or the room id. */
  id: number;
  isRoom: boolean;
  summary: ConversationSummary;
}

/** The conversation list: conversations with messages (newest first), then friends without any. */
export function conversationRows(
  conversations: readonly [Conversation, ConversationSummary][],
  friends: readonly Friend[],
  rooms: readonly Room[],
): ConversationRow[] {
  const byUser = new Map(friends.map((f) => [f.user_id, f]));
  const byRoom = new Map(rooms.map((r) => [r.id, r]));
  const rows: ConversationRow[] = [];
  const seen = new Set<string>();
  const sorted = [...conversations].sort((a, b) => (b[1].last?.sent_at ?? 0) - (a[1].last?.sent_at ?? 0));
  for (const [conversation, summary] of sorted) {
    const key = convKey(conversation);
    seen.add(key);
    if ("user" in conversation) {
      const friend = byUser.get(conversation.user);
      rows.push({
        key,
        conversation,
        title: friend?.display_name ?? `User ${conversation.user}`,
        subtitle: friend ? `@${friend.ms_id}` : "no longer a friend",
        id: conversation.user,
        isRoom: false,
        summary,
      });
    } else {
      const room = byRoom.get(conversation.room);
      rows.push({
        key,
        conversation,
        title: room?.name ?? `Room ${conversation.room}`,
        subtitle: "room",
        id: conversation.room,
        isRoom: true,
        summary,
      });
    }
  }
  for (const room of rooms) {
    const key = `r${room.id}`;
    if (seen.has(key) || room.state !== "joined") continue;
    seen.add(key);
    rows.push({
      key,
      conversation: { room: room.id },
      title: room.name ?? `Room ${room.id}`,
      subtitle: "room",
      id: room.id,
      isRoom: true,
      summary: { count: 0, unread: 0, last: null },
    });
  }
  for (const friend of friends) {
    const key = `u${friend.user_id}`;
    if (seen.has(key)) continue;
    rows.push({
      key,
      conversation: { user: friend.user_id },
      title: friend.display_name,
      subtitle: `@${friend.ms_id}`,
      id: friend.user_id,
      isRoom: false,
      summary: { count: 0, unread: 0, last: null },
    });
  }
  return rows;
}

/** Adds or updates a message in a list kept in order of sending (a status never goes back). */
export function mergeMessage(list: readonly Message[], message: Message): Message[] {
  const index = list.findIndex((m) => m.id === message.id);
  if (index >= 0) {
    const old = list[index] as Message;
    const next = [...list];
    next[index] = { ...message, status: laterStatus(old.status, message.status) };
    return next;
  }
  const next = [...list, message];
  // Usually the newest: insertion from the end keeps this cheap.
  let i = next.length - 1;
  while (i > 0 && (next[i - 1] as Message).sent_at > message.sent_at) {
    next[i] = next[i - 1] as Message;
    i -= 1;
  }
  next[i] = message;
  return next;
}

export type Panel = "chats" | "friends" | "settings";

export interface ChatSnapshot {
  me: Me;
  connection: ConnectionState;
  friends: Friend[];
  requests: FriendRequests;
  rooms: Room[];
  presence: ReadonlyMap<number, boolean>;
  typing: ReadonlySet<number>;
  conversations: [Conversation, ConversationSummary][];
  /** The open conversation's key, or null. */
  open: string | null;
  openConversation: Conversation | null;
  messages: Message[];
  /** The open room's members (names of senders), empty for a friend. */
  members: RoomMember[];
  /** More history exists before the first loaded message. */
  moreHistory: boolean;
  panel: Panel;
  /** A file being encrypted and uploaded to the open conversation. */
  /** The file being sent; `sent` of `total` ciphertext bytes have left (0 of 0 at first). */
  uploading: { name: string; size: number; sent: number; total: number } | null;
  /** Problems not tied to a form (sending, receiving). */
  notices: { id: number; text: string }[];
}

const PAGE = 50;
/** The relay takes 25 MiB per blob; encryption adds a little per 64 KiB chunk. */
export const MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024 - 64 * 1024;

export class ChatState {
  readonly client: SecureChatClient;
  private snapshot: ChatSnapshot;
  private readonly listeners = new Set<() => void>();
  private noticeId = 0;
  private typingTimers = new Map<number, ReturnType<typeof setTimeout>>();

  constructor(client: SecureChatClient, me: Me) {
    this.client = client;
    this.snapshot = {
      me,
      connection: "connecting",
      friends: [],
      requests: { incoming: [], outgoing: [] },
      rooms: [],
      presence: new Map(),
      typing: new Set(),
      conversations: [],
      open: null,
      openConversation: null,
      messages: [],
      members: [],
      moreHistory: false,
      panel: "chats",
      uploading: null,
      notices: [],
    };
    client.onEvent((event) => this.onEvent(event));
  }

  get(): ChatSnapshot {
    return this.snapshot;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private set(patch: Partial<ChatSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const listener of this.listeners) listener();
  }

  /** Loads everything the screens show, then connects. */
  async start(): Promise<void> {
    await Promise.all([this.refreshFriends(), this.refreshConversations(), this.refreshRooms()]);
    await this.client.connect().catch((error: unknown) => {
      this.set({ connection: "offline" });
      this.notice(error);
    });
  }

  notice(error: unknown, text?: string): void {
    this.noticeId += 1;
    this.set({ notices: [...this.snapshot.notices, { id: this.noticeId, text: text ?? explain(error) }] });
  }

  dismissNotice(id: number): void {
    this.set({ notices: this.snapshot.notices.filter((n) => n.id !== id) });
  }

  setPanel(panel: Panel): void {
    this.set({ panel });
  }

  setMe(me: Me): void {
    this.set({ me });
  }

  async refreshFriends(): Promise<void> {
    const [friends, requests] = await Promise.all([this.client.friends(), this.client.friendRequests()]);
    this.set({ friends, requests });
  }

  async refreshRooms(): Promise<void> {
    this.set({ rooms: await this.client.rooms() });
  }

  async refreshConversations(): Promise<void> {
    this.set({ conversations: await this.client.conversations() });
  }

  /** The open room's member list again (after an invitation, a join or a leave). */
  async refreshMembers(): Promise<void> {
    const conversation = this.snapshot.openConversation;
    if (!conversation || !("room" in conversation)) return;
    const members = await this.client.roomMembers(conversation.room);
    if (this.snapshot.open === convKey(conversation)) this.set({ members });
  }

  /** Creates a room and opens it. */
  async createRoom(name: string): Promise<void> {
    const room = await this.client.createRoom(name || undefined);
    await this.refreshRooms();
    await this.openConversation({ room: room.id });
  }

  /** Opens a conversation: its latest messages, marked read. */
  async openConversation(conversation: Conversation | null): Promise<void> {
    if (conversation === null) {
      this.set({ open: null, openConversation: null, messages: [], members: [], moreHistory: false });
      return;
    }
    const key = convKey(conversation);
    this.set({ open: key, openConversation: conversation, messages: [], members: [], moreHistory: false, panel: "chats" });
    const [messages, members] = await Promise.all([
      this.client.history(conversation, PAGE),
      "room" in conversation ? this.client.roomMembers(conversation.room) : Promise.resolve([]),
    ]);
    if (this.snapshot.open !== key) return;
    this.set({ messages, members, moreHistory: messages.length === PAGE });
    await this.markRead(conversation);
  }

  /** The page of history before the first loaded message. */
  async loadOlder(): Promise<void> {
    const conversation = this.snapshot.openConversation;
    if (!conversation || !this.snapshot.moreHistory) return;
    const key = convKey(conversation);
    const summary = this.snapshot.conversations.find(([c]) => convKey(c) === key)?.[1];
    const loaded = this.snapshot.messages.length;
    const before = (summary?.count ?? loaded) - loaded;
    if (before <= 0) {
      this.set({ moreHistory: false });
      return;
    }
    const older = await this.client.history(conversation, PAGE, before);
    if (this.snapshot.open !== key) return;
    let messages = this.snapshot.messages;
    for (const m of older) messages = mergeMessage(messages, m);
    this.set({ messages, moreHistory: older.length === PAGE });
  }

  private async markRead(conversation: Conversation): Promise<void> {
    const key = convKey(conversation);
    const row = this.snapshot.conversations.find(([c]) => convKey(c) === key);
    if (row && row[1].unread === 0) return;
    await this.client.markRead(conversation);
    await this.refreshConversations();
  }

  /** Sends a text to the open conversation. */
  async send(text: string): Promise<void> {
    const conversation = this.snapshot.openConversation;
    if (!conversation) return;
    const message =
      "user" in conversation
        ? await this.client.sendText(conversation.user, text)
        : await this.client.sendRoomText(conversation.room, text);
    if (this.snapshot.open === convKey(conversation)) {
      this.set({ messages: mergeMessage(this.snapshot.messages, message) });
    }
    await this.refreshConversations();
  }

  /** Encrypts, uploads and sends a file (with `caption`) to the open conversation. */
  async sendFile(file: File, caption: string): Promise<void> {
    const conversation = this.snapshot.openConversation;
    if (!conversation) return;
    if (file.size > MAX_ATTACHMENT_BYTES) {
      throw new Error(`${file.name} is larger than 25 MB, the most one message can carry.`);
    }
    this.set({ uploading: { name: file.name, size: file.size, sent: 0, total: 0 } });
    try {
      // Read by slices and encrypted piece by piece: the file is never whole in memory.
      const reference = await this.client.uploadFile(
        file,
        file.type || "application/octet-stream",
        file.name,
        (sent, total) => this.set({ uploading: { name: file.name, size: file.size, sent, total } }),
      );
      const message = await this.client.sendAttachment(conversation, reference, caption);
      if (this.snapshot.open === convKey(conversation)) {
        this.set({ messages: mergeMessage(this.snapshot.messages, message) });
      }
    } finally {
      this.set({ uploading: null });
    }
    await this.refreshConversations();
  }

  private onEvent(event: ClientEvent): void {
    switch (event.type) {
      case "message": {
        const { message } = event;
        const key = convKey(message.conversation);
        if (this.snapshot.open === key) {
          this.set({ messages: mergeMessage(this.snapshot.messages, message) });
          if (!message.outgoing && document.visibilityState === "visible") {
            // Not `markRead`: its summary was read before this message counted.
            void this.client
              .markRead(message.conversation)
              .then(() => this.refreshConversations())
              .catch(() => undefined);
          }
        }
        if (!message.outgoing) this.stopTyping(message.from_user);
        void this.refreshConversations().catch(() => undefined);
        break;
      }
      case "status": {
        if (this.snapshot.open === convKey(event.conversation)) {
          this.set({
            messages: this.snapshot.messages.map((m) =>
              m.id === event.id ? { ...m, status: laterStatus(m.status, event.status) } : m,
            ),
          });
        }
        void this.refreshConversations().catch(() => undefined);
        break;
      }
      case "send_failed":
        this.notice(undefined, `A message could not be delivered to one of the devices (${event.code.replace(/_/gu, " ")}).`);
        break;
      case "typing":
        if (event.typing) this.startTyping(event.user_id);
        else this.stopTyping(event.user_id);
        break;
      case "presence": {
        const presence = new Map(this.snapshot.presence);
        presence.set(event.user_id, event.online);
        this.set({ presence });
        break;
      }
      case "friends_changed":
        void this.refreshFriends().catch(() => undefined);
        break;
      case "rooms_changed":
        void this.refreshRooms().catch(() => undefined);
        if (this.snapshot.open === `r${event.room_id}`) void this.refreshMembers().catch(() => undefined);
        break;
      case "key_changed":
        this.notice(
          undefined,
          event.was_verified
            ? "The security key of a verified contact changed (a new device?). Compare safety numbers again before trusting new messages."
            : "A contact added a new device.",
        );
        break;
      case "decryption_failed":
        this.notice(undefined, `A message could not be decrypted (${event.reason.replace(/_/gu, " ")}).`);
        break;
      case "connection": {
        const patch: Partial<ChatSnapshot> = { connection: event.state };
        // Presence is only known while connected.
        if (event.state !== "online" && event.state !== "syncing") patch.presence = new Map();
        this.set(patch);
        break;
      }
      case "devices_changed":
        break;
    }
  }

  private startTyping(user: number): void {
    const typing = new Set(this.snapshot.typing);
    typing.add(user);
    this.set({ typing });
    clearTimeout(this.typingTimers.get(user));
    // A "stopped typing" can be lost: forget it after a while.
    this.typingTimers.set(user, setTimeout(() => this.stopTyping(user), 8000));
  }

  private stopTyping(user: number): void {
    clearTimeout(this.typingTimers.get(user));
    this.typingTimers.delete(user);
    if (!this.snapshot.typing.has(user)) return;
    const typing = new Set(this.snapshot.typing);
    typing.delete(user);
    this.set({ typing });
  }
}
