// Which local store belongs to whom, and the ways into an unlocked, signed-in client:
// sign up, log in (+ second factor), unlock after a reload (remembered or with the password),
// log out. One IndexedDB database per account on this browser, named by a hash of the e-mail
// address so that the address itself is not written anywhere in clear.

import { IndexedDbStore, SecureChatClient, type LoginOutcome } from "securechat-client";

/** The relay is the page's own origin (the relay serves this app). */
const RELAY = "";
/** localStorage: the database of the account that was signed in last (a hash, no address). */
const LAST = "securechat.last";

export async function storeName(email: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`securechat:${email.trim().toLowerCase()}`));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `securechat-${hex.slice(0, 32)}`;
}

async function storeExists(name: string): Promise<boolean> {
  if (typeof indexedDB.databases !== "function") return false;
  const all = await indexedDB.databases();
  return all.some((db) => db.name === name);
}

/** A name for this device in the account's device list: "Firefox on Linux". */
export function deviceName(userAgent: string = navigator.userAgent): string {
  const browser = /Edg\//u.test(userAgent)
    ? "Edge"
    : /Firefox\//u.test(userAgent)
      ? "Firefox"
      : /Chrom(e|ium)\//u.test(userAgent)
        ? "Chromium"
        : /Safari\//u.test(userAgent)
          ? "Safari"
          : "Browser";
  const os = /Android/u.test(userAgent)
    ? "Android"
    : /iPhone|iPad/u.test(userAgent)
      ? "iOS"
      : /Mac OS X/u.test(userAgent)
        ? "macOS"
        : /Windows/u.test(userAgent)
          ? "Windows"
          : /Linux/u.test(userAgent)
            ? "Linux"
            : "";
  return os ? `${browser} on ${os}` : browser;
}

/** An opened store and its client, not yet known to be signed in. */
export interface Opened {
  client: SecureChatClient;
  name: string;
  store: IndexedDbStore;
  /** This call created the store (a failed first login removes it again). */
  created: boolean;
}

/**
 * Opens the account's store with the password, creating it on first use on this browser.
 * A store made by a login that then fails is removed by [`discard`].
 */
export async function openForAccount(email: string, password: string, remember: boolean): Promise<Opened> {
  const name = await storeName(email);
  const existed = await storeExists(name);
  const store = await IndexedDbStore.open(name);
  try {
    const client = await SecureChatClient.open(RELAY, store, password, !existed, { remember });
    return { client, name, store, created: !existed };
  } catch (error) {
    store.close();
    if (!existed) await IndexedDbStore.destroy(name).catch(() => undefined);
    throw error;
  }
}

/** Removes a store that [`openForAccount`] just created for a sign-in that did not happen. */
export async function discard(opened: Opened): Promise<void> {
  opened.client.free();
  opened.store.close();
  if (opened.created) await IndexedDbStore.destroy(opened.name).catch(() => undefined);
}

/** The password step of a login. */
export function passwordStep(opened: Opened, email: string, password: string): Promise<LoginOutcome> {
  return opened.client.login(email, password);
}

/** After a successful sign-in: register this device once, remember the account, connect. */
export async function finishSignIn(opened: Opened): Promise<void> {
  await opened.client.ensureDevice(deviceName());
  localStorage.setItem(LAST, opened.name);
}

/** What the page can do at start: nothing kept, unlock with the password, or open by itself. */
export type Resume =
  | { kind: "none" }
  | { kind: "locked"; name: string }
  | { kind: "open"; client: SecureChatClient; name: string };

/** At page load: opens the last account's store if this device is remembered. */
export async function resume(): Promise<Resume> {
  const name = localStorage.getItem(LAST);
  if (!name || !(await storeExists(name))) return { kind: "none" };
  const store = await IndexedDbStore.open(name);
  if (await SecureChatClient.isRemembered(store)) {
    try {
      return { kind: "open", client: await SecureChatClient.openRemembered(RELAY, store), name };
    } catch {
      // Not (or no longer) remembered: ask for the password.
    }
  }
  store.close();
  return { kind: "locked", name };
}

/** Unlocks the last account's store with the password. */
export async function unlock(name: string, password: string, remember: boolean): Promise<SecureChatClient> {
  const store = await IndexedDbStore.open(name);
  try {
    return await SecureChatClient.open(RELAY, store, password, false, { remember });
  } catch (error) {
    store.close();
    throw error;
  }
}

/** Forget which account was last here (the page then shows the login). */
export function forgetLast(): void {
  localStorage.removeItem(LAST);
}

/**
 * Signs out: ends the relay session, drops "remember me" on this device and forgets which
 * account was here. The store keeps keys and history for the next login with the password.
 */
export async function logOut(client: SecureChatClient, name: string): Promise<void> {
  try {
    await client.logout();
  } finally {
    await client.disconnect().catch(() => undefined);
    const store = await IndexedDbStore.open(name);
    await SecureChatClient.forgetDevice(store).catch(() => undefined);
    store.close();
    forgetLast();
  }
}
