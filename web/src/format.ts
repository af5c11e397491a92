// Formatting and grouping for the views: pure functions, unit-tested (format.test.ts).
// Times are Unix milliseconds, as messages carry them (`sent_at`); the relay's other times
// (`created_at`, `since`, …) are Unix seconds: convert them with `fromSeconds`.

import type { Message, MessageStatus } from "securechat-client";

const DAY = 86_400_000;

/** Unix seconds (the relay's `created_at`, `last_used_at`, …) to milliseconds. */
export function fromSeconds(unixSeconds: number): number {
  return unixSeconds * 1000;
}

function startOfDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** "14:05" (the user's locale and clock). */
export function clockTime(ms: number, locale?: string): string {
  return new Date(ms).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
}

/** A day separator: "Today", "Yesterday", a weekday within the last week, else a date. */
export function dayLabel(ms: number, now: number = Date.now(), locale?: string): string {
  const day = startOfDay(ms);
  const today = startOfDay(now);
  const days = Math.round((today - day) / DAY);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  if (days > 1 && days < 7) return new Date(day).toLocaleDateString(locale, { weekday: "long" });
  const sameYear = new Date(day).getFullYear() === new Date(today).getFullYear();
  return new Date(day).toLocaleDateString(locale, {
    day: "numeric",
    month: "long",
    ...(sameYear ? {} : { year: "numeric" }),
  });
}

/** The time shown in the conversation list: the clock today, else a short date. */
export function listTime(ms: number, now: number = Date.now(), locale?: string): string {
  const day = startOfDay(ms);
  const today = startOfDay(now);
  if (day === today) return clockTime(ms, locale);
  if (today - day === DAY) return "Yesterday";
  if (today - day < 7 * DAY) return new Date(day).toLocaleDateString(locale, { weekday: "short" });
  return new Date(day).toLocaleDateString(locale, { day: "numeric", month: "short" });
}

export type TimelineItem =
  | { kind: "day"; key: string; label: string }
  | { kind: "message"; key: string; message: Message; firstOfGroup: boolean };

/**
 * Messages in order with a day separator before the first message of each day. A message is
 * the first of a group when the previous one is from someone else, another day, or more than
 * five minutes older.
 */
export function timeline(messages: readonly Message[], now: number = Date.now(), locale?: string): TimelineItem[] {
  const items: TimelineItem[] = [];
  let lastDay = -1;
  let prev: Message | undefined;
  for (const message of messages) {
    const day = startOfDay(message.sent_at);
    if (day !== lastDay) {
      items.push({ kind: "day", key: `day-${day}`, label: dayLabel(message.sent_at, now, locale) });
      lastDay = day;
      prev = undefined;
    }
    const firstOfGroup =
      prev === undefined ||
      prev.outgoing !== message.outgoing ||
      prev.from_user !== message.from_user ||
      message.sent_at - prev.sent_at > 300_000;
    items.push({ kind: "message", key: message.id, message, firstOfGroup });
    prev = message;
  }
  return items;
}

/** What the tick of an outgoing message says, for the eye and for screen readers. */
export function tick(status: MessageStatus): { symbol: string; label: string } {
  switch (status) {
    case "pending":
      return { symbol: "◷", label: "Sending" };
    case "sent":
      return { symbol: "✓", label: "Sent" };
    case "delivered":
      return { symbol: "✓✓", label: "Delivered" };
    case "received":
      return { symbol: "", label: "" };
  }
}

/** Status only moves forward: pending → sent → delivered (a late "sent" never undoes "delivered"). */
export function laterStatus(a: MessageStatus, b: MessageStatus): MessageStatus {
  const rank: Record<MessageStatus, number> = { pending: 0, sent: 1, delivered: 2, received: 3 };
  return rank[b] > rank[a] ? b : a;
}

/** One or two letters for an avatar. */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/u).filter(Boolean);
  const first = words[0] ?? "";
  const second = words.length > 1 ? (words[words.length - 1] ?? "") : "";
  const letters = [...first].slice(0, 1).concat([...second].slice(0, 1));
  if (letters.length === 1) letters.push(...[...first].slice(1, 2));
  return letters.join("").toUpperCase() || "?";
}

/** One of eight avatar colours (CSS classes `tone-0` … `tone-7`), stable per user id. */
export function avatarTone(userId: number): number {
  return Math.abs(Math.trunc(userId)) % 8;
}

/** The unread badge: "1" … "99", then "99+". */
export function badge(count: number): string {
  return count > 99 ? "99+" : String(count);
}

/** The last message of a conversation in one line. */
export function preview(message: Message | null, maxChars = 80): string {
  if (!message) return "No messages yet";
  const body = message.attachment ? `📎 ${message.attachment.name}` : message.text;
  const line = body.replace(/\s+/gu, " ").trim();
  const text = [...line].length > maxChars ? `${[...line].slice(0, maxChars - 1).join("")}…` : line;
  return message.outgoing ? `You: ${text}` : text;
}

/** "12 KB", "3.4 MB". */
export function fileSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
