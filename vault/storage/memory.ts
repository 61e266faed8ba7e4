/**
 * `MemoryStorage`: a `VaultStorage` in a Map, for tests and single-process embedding where
 * losing DEKs on exit is acceptable (everything they sealed becomes unreadable with them).
 */
import { assertObjectKey, MAX_LISTED_KEYS, storageUnavailable, type VaultStorage } from './vault-storage.ts';

/** In-memory storage; bounded by {@link MemoryStorage.maxObjects} (default 1,000,000). */
export class MemoryStorage implements VaultStorage {
  readonly kind = 'memory';
  readonly maxObjects: number;
  readonly #objects = new Map<string, Uint8Array>();

  constructor(options: { maxObjects?: number } = {}) {
    this.maxObjects = options.maxObjects ?? 1_000_000;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    assertObjectKey(key);
    this.#assertRoom(key);
    // Copies on the way in and out, so callers can never mutate what is stored.
    this.#objects.set(key, Uint8Array.from(bytes));
  }

  async putIfAbsent(key: string, bytes: Uint8Array): Promise<boolean> {
    assertObjectKey(key);
    if (this.#objects.has(key)) return false;
    this.#assertRoom(key);
    this.#objects.set(key, Uint8Array.from(bytes));
    return true;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    assertObjectKey(key);
    const bytes = this.#objects.get(key);
    return bytes === undefined ? undefined : Uint8Array.from(bytes);
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for (const key of this.#objects.keys()) {
      if (!key.startsWith(prefix)) continue;
      if (keys.length === MAX_LISTED_KEYS) throw storageUnavailable('list', prefix, new Error(`more than ${MAX_LISTED_KEYS} keys`));
      keys.push(key);
    }
    return keys.sort();
  }

  async close(): Promise<void> {}

  #assertRoom(key: string): void {
    if (!this.#objects.has(key) && this.#objects.size >= this.maxObjects) {
      throw storageUnavailable('put', key, new Error(`memory storage is full (${this.maxObjects} objects)`));
    }
  }
}
