// Raw stores for SecureChatClient.open(). The client seals every value and MACs every key
// before they reach a store: these only keep opaque bytes.

/**
 * IndexedDB (browsers): object store `records` for the sealed records (each write batch is one
 * transaction) and `keys` for the non-extractable WebCrypto key of "remember me" (a CryptoKey
 * is stored as an opaque object: usable by this origin, never readable).
 */
export class IndexedDbStore {
  /** Opens (or creates) the database `name`. */
  static open(name = "securechat") {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(name, 2);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains("records")) db.createObjectStore("records");
        if (!db.objectStoreNames.contains("keys")) db.createObjectStore("keys");
      };
      request.onsuccess = () => resolve(new IndexedDbStore(request.result));
      request.onerror = () => reject(request.error);
      // onblocked: another tab still has an older version open; it closes its connection on
      // `versionchange` (constructor below) and this request then goes on by itself.
    });
  }

  /** Deletes the database `name` (every record and the device key). */
  static destroy(name = "securechat") {
    return new Promise((resolve, reject) => {
      const request = indexedDB.deleteDatabase(name);
      request.onsuccess = () => resolve();
      request.onerror = () => reject(request.error);
    });
  }

  constructor(db) {
    this.db = db;
    // Another tab upgrades or deletes the database: let it (this connection is then closed,
    // and its next operation fails with a storage error; the app should reload).
    db.onversionchange = () => db.close();
  }

  #request(storeName, mode, run) {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction(storeName, mode);
      const request = run(tx.objectStore(storeName));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error ?? request.error);
      tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
    });
  }

  async get(key) {
    const value = await this.#request("records", "readonly", (s) => s.get(key));
    return value === undefined ? undefined : new Uint8Array(value);
  }

  /** The values of many keys, in order, read in one transaction. */
  getMany(keys) {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction("records", "readonly");
      const records = tx.objectStore("records");
      const requests = keys.map((key) => records.get(key));
      tx.oncomplete = () =>
        resolve(requests.map((r) => (r.result === undefined ? undefined : new Uint8Array(r.result))));
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
    });
  }

  /** Applies every operation in one transaction: all of them, or (on any error) none. */
  write(ops) {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction("records", "readwrite");
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
      const records = tx.objectStore("records");
      try {
        for (const op of ops) {
          if ("put" in op) records.put(op.value, op.put);
          else records.delete(op.delete);
        }
      } catch (error) {
        // A request that throws (a value that cannot be stored, a bad key) must not let the
        // ones queued before it commit: abort the whole batch.
        tx.onabort = () => reject(error);
        tx.abort();
      }
    });
  }

  getKey(name) {
    return this.#request("keys", "readonly", (s) => s.get(name));
  }

  async putKey(name, key) {
    await this.#request("keys", "readwrite", (s) => s.put(key, name));
  }

  async deleteKey(name) {
    await this.#request("keys", "readwrite", (s) => s.delete(name));
  }

  close() {
    this.db.close();
  }
}

/** In memory (tests, Node scripts): gone when the process ends. */
export class MemoryStore {
  constructor() {
    this.map = new Map();
    this.keys = new Map();
  }

  async get(key) {
    const value = this.map.get(key);
    return value === undefined ? undefined : new Uint8Array(value);
  }

  async getMany(keys) {
    return keys.map((key) => {
      const value = this.map.get(key);
      return value === undefined ? undefined : new Uint8Array(value);
    });
  }

  async write(ops) {
    // Everything is checked and copied first, so a bad operation changes nothing.
    const changes = ops.map((op) => {
      if ("put" in op) {
        if (typeof op.put !== "string" || !(op.value instanceof Uint8Array)) throw new TypeError("a put needs a string key and a Uint8Array");
        return [op.put, new Uint8Array(op.value)];
      }
      if (typeof op.delete !== "string") throw new TypeError("a delete needs a string key");
      return [op.delete, undefined];
    });
    for (const [key, value] of changes) {
      if (value === undefined) this.map.delete(key);
      else this.map.set(key, value);
    }
  }

  async getKey(name) {
    return this.keys.get(name);
  }

  async putKey(name, key) {
    this.keys.set(name, key);
  }

  async deleteKey(name) {
    this.keys.delete(name);
  }
}
