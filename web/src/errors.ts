// Every error the client can reject with, in plain words (the relay's `message` is for
// developers; apps switch on `code`, api.md "Error codes").

import type { ErrorCode } from "securechat-client";

const WORDS: Record<ErrorCode, string> = {
  invalid_json: "The app sent something the server did not understand. Reload the page and try again.",
  payload_too_large: "That is too large to send.",
  invalid_input: "Something in the form is not valid.",
  invalid_email: "That does not look like an e-mail address.",
  invalid_ms_id:
    "An ms_id is 3 to 32 characters: a–z, 0–9, dots, dashes or underscores, starting and ending with a letter or digit.",
  password_length: "The password must be 8 to 128 characters long.",
  weak_password: "This password is too common or too easy to guess. Add words or make it longer.",
  email_taken: "An account with this e-mail address already exists. Log in instead.",
  ms_id_unavailable: "This ms_id is taken. Try another one.",
  unauthorized: "You are signed out. Log in again.",
  invalid_credentials: "Wrong e-mail address or password.",
  csrf_failed: "The server refused the request (security check). Reload the page.",
  two_factor_required: "A second step is needed to sign in.",
  invalid_challenge: "The sign-in took too long. Start again with your password.",
  invalid_code: "That code is not right. Check it and try again.",
  code_expired: "That code has expired. Ask for a new one.",
  code_replayed: "That code was already used. Wait for the next one.",
  too_many_attempts: "Too many wrong codes. Wait a while, then try again.",
  two_factor_state: "Two-factor sign-in is not in a state that allows this.",
  not_found: "Not found.",
  self_request: "That is your own ms_id.",
  duplicate_request: "A friend request is already waiting.",
  already_friends: "You are already friends.",
  blocked: "This is not possible between you and this person.",
  rate_limited: "Too many tries.",
  conflict: "That conflicts with a change made meanwhile. Reload and try again.",
  internal: "Something went wrong on the server. Try again later.",
  unavailable: "The server is busy or unreachable. Try again in a moment.",
  invalid_key: "A key was refused by the server.",
  bad_signature: "A signature was refused by the server.",
  identity_taken: "This device is already registered.",
  too_many_devices: "Your account has too many devices. Remove one in Settings.",
  too_many_prekeys: "This device holds too many keys on the server.",
  duplicate_prekey: "A key was uploaded twice.",
  stale_prekey: "A key is older than the one the server has.",
  forbidden_origin: "This page's address is not allowed to connect to the server.",
  quota_exceeded: "Your storage on the server is full.",
  unknown_device: "This device is not registered any more. Log out and in again.",
  reauth_required: "For your safety, enter your password again to add this device (or log out and in again).",
  not_room_admin: "Only an admin of this room can do that.",
  request_timeout: "The connection was too slow and the server stopped waiting. Try again.",
  not_friends: "You are no longer friends, so this cannot be delivered.",
  queue_full: "Their inbox is full. The message will be sent later.",
  not_a_member: "You are not a member of this room.",
  invalid_frame: "The connection sent something invalid.",
  too_large: "That is too large to send.",
  unsupported_version: "The server speaks another version. Reload the page.",
  unknown_type: "The server did not understand a request.",
  binary_not_supported: "The server did not understand a request.",
  network: "Cannot reach the server. Check your connection.",
  bad_response: "The server gave an answer the app does not understand.",
  unknown_relay_code: "The server refused this for a reason the app does not know.",
  not_signed_in: "You are signed out. Log in again.",
  no_device: "This browser is not set up yet. Log in again.",
  wrong_password: "Wrong password.",
  store_corrupted: "The data kept in this browser is damaged.",
  storage: "This browser's storage failed (is it full or private browsing?).",
  crypto: "Encryption failed in this browser.",
  identity_mismatch: "A contact's security key changed unexpectedly. Messages to them are held.",
  invalid_argument: "Something in the form is not valid.",
  attachment_mismatch: "The file did not arrive intact.",
};

/** "2 minutes", "45 seconds". */
export function waitWords(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 90) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? "" : "s"}`;
}

/** The error code of anything thrown (`undefined` for errors that are not the client's). */
export function errorCode(error: unknown): ErrorCode | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === "string" && code in WORDS) return code as ErrorCode;
  }
  return undefined;
}

/** What went wrong, in plain words, with the wait for rate limits. */
export function explain(error: unknown): string {
  const code = errorCode(error);
  if (code) {
    let text = WORDS[code];
    const retry = (error as { retryAfter?: unknown }).retryAfter;
    if ((code === "rate_limited" || code === "unavailable" || code === "too_many_attempts") && typeof retry === "number") {
      text = `${text.replace(/\.$/u, "")}. Try again in ${waitWords(retry)}.`;
    } else if (code === "rate_limited") {
      text = "Too many tries. Wait a little, then try again.";
    }
    return text;
  }
  if (error instanceof Error && error.message) return `Something went wrong: ${error.message}`;
  return "Something went wrong.";
}
