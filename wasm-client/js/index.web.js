// Browsers and bundlers: call `await init()` once before using the client (it fetches and
// compiles the wasm next to this file, or the URL / bytes you pass).
import initWasm from "./web/wasm_client.js";

export * from "./web/wasm_client.js";
export { IndexedDbStore, MemoryStore } from "./stores.js";

/** Loads the WebAssembly module; idempotent. */
export async function init(input) {
  await initWasm(input === undefined ? undefined : { module_or_path: input });
}
