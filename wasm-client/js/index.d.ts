export * from "./web/wasm_client.js";
export { IndexedDbStore, MemoryStore } from "./stores.js";
/** Loads the WebAssembly module (browsers); a no-op in Node. Call once before anything else. */
export function init(input?: string | URL | Request | BufferSource | WebAssembly.Module): Promise<void>;
