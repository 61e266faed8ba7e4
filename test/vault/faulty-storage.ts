/**
 * Test helper: wraps a real `VaultStorage` and lets a test corrupt what a read returns or make
 * chosen operations fail, to prove how the keyring reacts to bad or unavailable storage.
 */
import type { VaultStorage } from '../../vault/storage/vault-storage.ts';

/** A hook may return replacement bytes, or throw to simulate an outage. */
export type ReadHook = (key: string, bytes: Uint8Array | undefined) => Uint8Array | undefined;
/** A write hook may throw to simulate a failure before the write happens. */
export type WriteHook = (operation: 'put' | 'putIfAbsent', key: string) => void;

/** The wrapper. Set `onRead`/`onWrite` at any time; `calls` counts storage operations. */
export class FaultyStorage implements VaultStorage {
  readonly kind = 'faulty';
  readonly inner: VaultStorage;
  onRead: ReadHook | undefined;
  onWrite: WriteHook | undefined;
  readonly calls = { get: 0, put: 0, putIfAbsent: 0, list: 0 };

  constructor(inner: VaultStorage) {
    this.inner = inner;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    this.calls.put++;
    this.onWrite?.('put', key);
    return this.inner.put(key, bytes);
  }

  async putIfAbsent(key: string, bytes: Uint8Array): Promise<boolean> {
    this.calls.putIfAbsent++;
    this.onWrite?.('putIfAbsent', key);
    return this.inner.putIfAbsent(key, bytes);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.calls.get++;
    const bytes = await this.inner.get(key);
    return this.onRead ? this.onRead(key, bytes) : bytes;
  }

  list(prefix: string): Promise<string[]> {
    this.calls.list++;
    return this.inner.list(prefix);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
