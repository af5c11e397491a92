// Raw stores for SecureChatClient.open(). The client seals every value and MACs every key
// before they reach a store: these only keep opaque bytes.

/** IndexedDB (browsers): one object store; each write batch is one transaction. */
export class IndexedDbStore {
  /** Opens (or creates) the database `name`. */
  static open(name = "securechat") {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore("records");
      request.onsuccess = () => resolve(new IndexedDbStore(request.result));
      request.onerror = () => reject(request.error);
    });
  }

  constructor(db) {
    this.db = db;
  }

  get(key) {
    return new Promise((resolve, reject) => {
      const request = this.db.transaction("records", "readonly").objectStore("records").get(key);
      request.onsuccess = () =>
        resolve(request.result === undefined ? undefined : new Uint8Array(request.result));
      request.onerror = () => reject(request.error);
    });
  }

  write(ops) {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction("records", "readwrite");
      const records = tx.objectStore("records");
      for (const op of ops) {
        if ("put" in op) records.put(op.value, op.put);
        else records.delete(op.delete);
      }
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
    });
  }

  close() {
    this.db.close();
  }
}

/** In memory (tests, Node scripts): gone when the process ends. */
export class MemoryStore {
  constructor() {
    this.map = new Map();
  }

  async get(key) {
    const value = this.map.get(key);
    return value === undefined ? undefined : new Uint8Array(value);
  }

  async write(ops) {
    for (const op of ops) {
      if ("put" in op) this.map.set(op.put, new Uint8Array(op.value));
      else this.map.delete(op.delete);
    }
  }
}
