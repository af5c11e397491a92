import { describe, expect, it } from "vitest";
import type { Message } from "securechat-client";
import { avatarTone, badge, clockTime, dayLabel, fromSeconds, initials, laterStatus, listTime, preview, tick, timeline } from "./format";

function msg(id: string, sentAt: Date, patch: Partial<Message> = {}): Message {
  return {
    id,
    conversation: { user: 2 },
    from_user: 2,
    from_device: 1,
    outgoing: false,
    sent_at: sentAt.getTime(),
    stored_at: sentAt.getTime(),
    text: `text ${id}`,
    attachment: null,
    reply_to: null,
    status: "received",
    unverified_key: false,
    ...patch,
  };
}

const NOW = new Date(2026, 11, 8, 15, 30).getTime(); // Tuesday 8 December 2026, 15:30 local

describe("dayLabel", () => {
  it("names today, yesterday, the last week by weekday, older days by date", () => {
    const at = (d: number, h = 10) => new Date(2026, 11, d, h).getTime();
    expect(dayLabel(at(8, 0), NOW, "en-GB")).toBe("Today");
    expect(dayLabel(at(7, 23), NOW, "en-GB")).toBe("Yesterday");
    expect(dayLabel(at(3), NOW, "en-GB")).toBe("Thursday");
    expect(dayLabel(at(1), NOW, "en-GB")).toBe("1 December");
    expect(dayLabel(new Date(2025, 5, 2).getTime(), NOW, "en-GB")).toBe("2 June 2025");
  });
});

describe("listTime", () => {
  it("shows the clock today and a date otherwise", () => {
    expect(listTime(new Date(2026, 11, 8, 9, 5).getTime(), NOW, "en-GB")).toBe("09:05");
    expect(listTime(new Date(2026, 11, 7, 9, 5).getTime(), NOW, "en-GB")).toBe("Yesterday");
    expect(listTime(new Date(2026, 10, 2).getTime(), NOW, "en-GB")).toBe("2 Nov");
  });
});

describe("message times are milliseconds", () => {
  it("puts a message sent now on today, at the current clock time", () => {
    const now = Date.now();
    expect(dayLabel(now, now)).toBe("Today");
    expect(clockTime(now, "en-GB")).toBe(new Date(now).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }));
    expect(fromSeconds(1_700_000_000)).toBe(1_700_000_000_000);
  });
});

describe("timeline", () => {
  it("puts a day separator before each day's first message and groups by sender and time", () => {
    const items = timeline(
      [
        msg("a", new Date(2026, 11, 7, 22, 0)),
        msg("b", new Date(2026, 11, 7, 22, 1)),
        msg("c", new Date(2026, 11, 7, 22, 2), { outgoing: true, from_user: 1, status: "sent" }),
        msg("d", new Date(2026, 11, 8, 0, 5)),
        msg("e", new Date(2026, 11, 8, 0, 20)),
      ],
      NOW,
      "en-GB",
    );
    expect(items.map((i) => (i.kind === "day" ? `[${i.label}]` : `${i.message.id}${i.firstOfGroup ? "*" : ""}`))).toEqual([
      "[Yesterday]",
      "a*",
      "b",
      "c*",
      "[Today]",
      "d*",
      "e*",
    ]);
  });

  it("is empty for no messages", () => {
    expect(timeline([], NOW)).toEqual([]);
  });
});

describe("ticks and status", () => {
  it("labels every outgoing status for screen readers", () => {
    expect(tick("pending")).toEqual({ symbol: "◷", label: "Sending" });
    expect(tick("sent")).toEqual({ symbol: "✓", label: "Sent" });
    expect(tick("delivered")).toEqual({ symbol: "✓✓", label: "Delivered" });
  });

  it("never moves a status back", () => {
    expect(laterStatus("delivered", "sent")).toBe("delivered");
    expect(laterStatus("pending", "sent")).toBe("sent");
    expect(laterStatus("sent", "delivered")).toBe("delivered");
  });
});

describe("small labels", () => {
  it("makes initials from one or more words", () => {
    expect(initials("Ada Lovelace")).toBe("AL");
    expect(initials("ada")).toBe("AD");
    expect(initials("  Grace Brewster Hopper ")).toBe("GH");
    expect(initials("")).toBe("?");
    expect(initials("Élodie")).toBe("ÉL");
  });

  it("caps badges at 99+", () => {
    expect(badge(1)).toBe("1");
    expect(badge(99)).toBe("99");
    expect(badge(100)).toBe("99+");
  });

  it("keeps avatar tones stable and in range", () => {
    expect(avatarTone(7)).toBe(7);
    expect(avatarTone(8)).toBe(0);
    expect(avatarTone(-3)).toBe(3);
  });

  it("previews the last message on one line", () => {
    expect(preview(null)).toBe("No messages yet");
    expect(preview(msg("x", new Date(NOW), { text: "hello\n\nthere" }))).toBe("hello there");
    expect(preview(msg("x", new Date(NOW), { text: "hi", outgoing: true }))).toBe("You: hi");
    expect(preview(msg("x", new Date(NOW), { text: "a".repeat(100) }), 10)).toBe(`${"a".repeat(9)}…`);
  });
});
