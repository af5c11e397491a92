import type { RawStore, StoreOp } from "./web/wasm_client.js";

/** IndexedDB (browsers): each write batch is one transaction. */
export declare class IndexedDbStore implements RawStore {
  static open(name?: string): Promise<IndexedDbStore>;
  get(key: string): Promise<Uint8Array | undefined>;
  write(ops: StoreOp[]): Promise<void>;
  close(): void;
}

/** In memory: gone when the process ends. */
export declare class MemoryStore implements RawStore {
  constructor();
  get(key: string): Promise<Uint8Array | undefined>;
  write(ops: StoreOp[]): Promise<void>;
}
