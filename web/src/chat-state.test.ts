import { describe, expect, it } from "vitest";
import type { Friend, Message } from "securechat-client";
import { conversationRows, convKey, mergeMessage } from "./chat-state";

function msg(id: string, sentAt: number, patch: Partial<Message> = {}): Message {
  return {
    id,
    conversation: { user: 2 },
    from_user: 1,
    from_device: 1,
    outgoing: true,
    sent_at: sentAt,
    stored_at: sentAt,
    text: id,
    attachment: null,
    reply_to: null,
    status: "pending",
    unverified_key: false,
    ...patch,
  };
}

const friend = (user_id: number, ms_id: string): Friend => ({ user_id, ms_id, display_name: ms_id.toUpperCase(), since: 0 });

describe("conversation list", () => {
  it("lists conversations newest first, then friends without messages", () => {
    const rows = conversationRows(
      [
        [{ user: 2 }, { count: 1, unread: 0, last: msg("old", 100) }],
        [{ room: 5 }, { count: 3, unread: 2, last: msg("new", 200, { conversation: { room: 5 } }) }],
      ],
      [friend(2, "bob"), friend(3, "cy")],
      [{ id: 5, name: "Book club", state: "joined", created_at: 0 }],
    );
    expect(rows.map((r) => [r.key, r.title, r.subtitle, r.summary.unread])).toEqual([
      ["r5", "Book club", "room", 2],
      ["u2", "BOB", "@bob", 0],
      ["u3", "CY", "@cy", 0],
    ]);
  });

  it("lists joined rooms without messages, not invitations", () => {
    const rows = conversationRows(
      [],
      [],
      [
        { id: 1, name: "Joined", state: "joined", created_at: 0 },
        { id: 2, name: "Invited", state: "invited", created_at: 0 },
        { id: 3, name: null, state: "joined", created_at: 0 },
      ],
    );
    expect(rows.map((r) => [r.key, r.title])).toEqual([
      ["r1", "Joined"],
      ["r3", "Room 3"],
    ]);
  });

  it("keeps a conversation with someone who is no longer a friend", () => {
    const rows = conversationRows([[{ user: 9 }, { count: 1, unread: 1, last: msg("x", 1) }]], [], []);
    expect(rows[0]).toMatchObject({ key: "u9", title: "User 9", subtitle: "no longer a friend" });
  });

  it("keys conversations by kind and id", () => {
    expect(convKey({ user: 7 })).toBe("u7");
    expect(convKey({ room: 7 })).toBe("r7");
  });
});

describe("mergeMessage", () => {
  it("inserts in sending order and updates in place", () => {
    let list = [msg("a", 10), msg("c", 30)];
    list = mergeMessage(list, msg("b", 20));
    expect(list.map((m) => m.id)).toEqual(["a", "b", "c"]);
    list = mergeMessage(list, msg("d", 40));
    expect(list.map((m) => m.id)).toEqual(["a", "b", "c", "d"]);
    list = mergeMessage(list, msg("b", 20, { status: "sent" }));
    expect(list.map((m) => `${m.id}:${m.status}`)).toEqual(["a:pending", "b:sent", "c:pending", "d:pending"]);
  });

  it("never takes a status back (a late 'sent' after 'delivered')", () => {
    const list = mergeMessage([msg("a", 10, { status: "delivered" })], msg("a", 10, { status: "sent" }));
    expect(list[0]?.status).toBe("delivered");
  });
});
