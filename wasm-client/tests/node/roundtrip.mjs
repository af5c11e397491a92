// Two clients of the npm package against a real relay (started by `cargo xtask test`, URL in
// RELAY_URL): sign-up, friends by ms_id, a message each way, typed errors, hostile arguments.
// Usage: RELAY_URL=http://127.0.0.1:PORT node roundtrip.mjs [package specifier or path]
import assert from "node:assert/strict";
import "fake-indexeddb/auto";
import { WebSocket } from "ws";

globalThis.WebSocket = WebSocket;
const spec = process.argv[2] ?? "securechat-client";
const { init, SecureChatClient, MemoryStore, IndexedDbStore } = await import(spec);
await init();

const relay = process.env.RELAY_URL;
assert.ok(relay, "RELAY_URL is not set");
const password = "correct horse battery staple 42";
const tag = `${process.pid}${Date.now() % 100000}`;

async function user(name, store = new MemoryStore()) {
  const client = await SecureChatClient.open(relay, store, "local pw", true);
  const email = `${name}${tag}@example.org`;
  const msId = `${name}${tag}`;
  const created = await client.register(email, password, msId, name);
  const outcome = await client.login(email, password);
  assert.deepEqual(outcome, { status: "signed_in" });
  await client.ensureDevice(`${name} node`);
  const events = [];
  const waiters = [];
  client.onEvent((e) => {
    events.push(e);
    for (const w of waiters.splice(0)) w();
  });
  const until = async (what, pred, ms = 30000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = events.find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(events)}`);
      await new Promise((r) => { waiters.push(r); setTimeout(r, 200); });
    }
  };
  return { client, store, created, msId, until };
}

// Ada keeps her state in IndexedDB (fake-indexeddb in Node), Bob in memory.
const adaDb = `securechat-ada-${tag}`;
const ada = await user("ada", await IndexedDbStore.open(adaDb));
const bob = await user("bob");

// Typed errors.
await assert.rejects(ada.client.login(`nobody${tag}@example.org`, password), (e) => {
  assert.equal(e.name, "SecureChatError");
  assert.equal(e.code, "invalid_credentials");
  return true;
});
await assert.rejects(ada.client.sendText(1.5, "x"), (e) => e.code === "invalid_argument");
await assert.rejects(ada.client.history({ nope: 1 }, 10), (e) => e.code === "invalid_argument");
await assert.rejects(SecureChatClient.open(relay, ada.store, "wrong local pw", false), (e) => e.code === "wrong_password");

// "Remember me" in Node: the MemoryStore keeps the non-extractable WebCrypto key.
const remembered = new MemoryStore();
await SecureChatClient.open(relay, remembered, "local pw", true, { remember: true });
assert.equal(await SecureChatClient.isRemembered(remembered), true);
assert.equal((await remembered.getKey("device")).extractable, false);
await SecureChatClient.openRemembered(relay, remembered);
await SecureChatClient.forgetDevice(remembered);
assert.equal(await SecureChatClient.isRemembered(remembered), false);
await assert.rejects(SecureChatClient.openRemembered(relay, remembered), (e) => e.code === "wrong_password");

// A store without getKey/putKey/deleteKey cannot remember: refused before anything is created.
const inner = new MemoryStore();
const plain = { get: (k) => inner.get(k), write: (ops) => inner.write(ops) };
await assert.rejects(SecureChatClient.open(relay, plain, "local pw", true, { remember: true }), (e) => e.code === "invalid_argument");
assert.equal(inner.map.size, 0);
await SecureChatClient.open(relay, plain, "local pw", true);

await bob.client.sendFriendRequest(ada.msId, null);
const requests = await ada.client.friendRequests();
assert.equal(requests.incoming.length, 1);
await ada.client.acceptFriendRequest(requests.incoming[0].id);

await ada.client.connect();
await bob.client.connect();
await ada.until("online", (e) => e.type === "connection" && e.state === "online");
await bob.until("online", (e) => e.type === "connection" && e.state === "online");

const hello = `hello from node ${tag}`;
const sent = await ada.client.sendText(bob.created.user_id, hello);
assert.equal(sent.status, "pending");
const got = await bob.until("message", (e) => e.type === "message" && e.message.text === hello);
assert.equal(got.message.from_user, ada.created.user_id);
assert.deepEqual(got.message.conversation, { user: ada.created.user_id });
await ada.until("sent", (e) => e.type === "status" && e.id === sent.id && e.status !== "pending");

const reply = `reply from node ${tag}`;
await bob.client.sendText(ada.created.user_id, reply);
await ada.until("reply", (e) => e.type === "message" && e.message.text === reply);
const history = await ada.client.history({ user: bob.created.user_id }, 10);
assert.deepEqual(history.map((m) => m.text), [hello, reply]);

// A room: one send, fanned out by the relay, sender key over the pairwise session.
const room = await ada.client.createRoom(null);
await ada.client.inviteToRoom(room.id, bob.msId);
assert.deepEqual((await bob.client.rooms()).map((r) => [r.id, r.state]), [[room.id, "invited"]]);
await bob.client.joinRoom(room.id);
const members = await ada.client.roomMembers(room.id);
assert.deepEqual(members.map((m) => m.state).sort(), ["joined", "joined"]);
const inRoom = `room message from node ${tag}`;
await ada.client.sendRoomText(room.id, inRoom);
const roomMessage = await bob.until("room message", (e) => e.type === "message" && e.message.text === inRoom);
assert.deepEqual(roomMessage.message.conversation, { room: room.id });

// An attachment, 200 KB.
const file = new Uint8Array(200_000).map((_, i) => (i * 31 + 7) & 0xff);
const ref = await ada.client.uploadAttachment(file, "application/octet-stream", "data.bin");
assert.equal(ref.size, file.length);
await ada.client.sendAttachment({ user: bob.created.user_id }, ref, "a file");
const withFile = await bob.until("attachment", (e) => e.type === "message" && e.message.text === "a file");
const downloaded = await bob.client.downloadAttachment(withFile.message.attachment);
assert.deepEqual(Buffer.from(downloaded), Buffer.from(file));
await assert.rejects(bob.client.downloadAttachment({ ...ref, digest: ref.key }), (e) => e.code === "attachment_mismatch");
await assert.rejects(bob.client.downloadAttachment({ id: 5 }), (e) => e.code === "invalid_argument");

// The stores hold nothing readable.
for (const [k, v] of bob.store.map) {
  const text = k + Buffer.from(v).toString("latin1");
  for (const secret of [hello, reply, inRoom, ada.msId, bob.msId]) assert.ok(!text.includes(secret), `store holds ${secret}`);
}

// Ada's app restarts: a new client over the same IndexedDB database reads her history.
await ada.client.disconnect();
const reopened = await SecureChatClient.open(relay, await IndexedDbStore.open(adaDb), "local pw", false);
const again = await reopened.history({ user: bob.created.user_id }, 10);
assert.deepEqual(again.map((m) => m.text).slice(0, 2), [hello, reply]);
await assert.rejects(SecureChatClient.open(relay, await IndexedDbStore.open(adaDb), "wrong", false), (e) => e.code === "wrong_password");

await ada.client.disconnect();
await bob.client.disconnect();
console.log("node round trip: ok");
process.exit(0);
