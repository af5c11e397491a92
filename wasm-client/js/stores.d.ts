import type { RawStore, StoreOp } from "./web/wasm_client.js";

/**
 * IndexedDB (browsers): each write batch is one transaction; also keeps the non-extractable
 * WebCrypto key of "remember me".
 */
export declare class IndexedDbStore implements RawStore {
  static open(name?: string): Promise<IndexedDbStore>;
  /** Deletes the database (every record and the device key); close it first. */
  static destroy(name?: string): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  getMany(keys: string[]): Promise<(Uint8Array | undefined)[]>;
  write(ops: StoreOp[]): Promise<void>;
  getKey(name: string): Promise<CryptoKey | undefined>;
  putKey(name: string, key: CryptoKey): Promise<void>;
  deleteKey(name: string): Promise<void>;
  close(): void;
}

/** In memory: gone when the process ends. */
export declare class MemoryStore implements RawStore {
  constructor();
  get(key: string): Promise<Uint8Array | undefined>;
  getMany(keys: string[]): Promise<(Uint8Array | undefined)[]>;
  write(ops: StoreOp[]): Promise<void>;
  getKey(name: string): Promise<CryptoKey | undefined>;
  putKey(name: string, key: CryptoKey): Promise<void>;
  deleteKey(name: string): Promise<void>;
}
