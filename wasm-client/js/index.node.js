// Node (>= 20): the wasm is compiled synchronously at import. Node has no WebSocket global
// before version 22: assign one first, e.g. `globalThis.WebSocket = (await import("ws")).WebSocket`.
import { readFileSync } from "node:fs";
import { initSync } from "./web/wasm_client.js";

initSync({ module: readFileSync(new URL("./web/wasm_client_bg.wasm", import.meta.url)) });

export * from "./web/wasm_client.js";
export { IndexedDbStore, MemoryStore } from "./stores.js";

/** Nothing to do in Node (the module is loaded at import); kept for one code path. */
export async function init() {}
