/**
 * `VaultStorage`: the object store under the Vault keyring. Three implementations pass one
 * shared compliance suite (test/vault/storage-suite.ts): memory, a directory on disk, and
 * S3-compatible storage.
 *
 * Keys are forward-slash paths (`keyring/<ring>/<dek_id>`, `keyring/<ring>/LATEST`) checked by
 * {@link assertObjectKey}. Every backend failure surfaces as the retryable fault
 * `err:vault:storage:unavailable`; a missing object is `undefined`, not a fault.
 */
import { Fault } from '../../core/fault.ts';

/** The storage contract. Objects are small (a wrapped DEK is ~100 bytes). */
export interface VaultStorage {
  /** A short name for logs and metrics: `memory`, `disk`, `s3`. */
  readonly kind: string;
  /** Writes `bytes` at `key`, replacing what was there, atomically (a reader sees old or new). */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /**
   * Writes `bytes` at `key` only if nothing is there yet; resolves true when it wrote, false when
   * an object already existed. Used so that concurrent first uses of a keyring agree on one DEK.
   */
  putIfAbsent(key: string, bytes: Uint8Array): Promise<boolean>;
  /** The object's bytes, or undefined when there is none. */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * Every key starting with `prefix` (all keys for `''`), sorted, following pagination. Throws
   * `err:vault:storage:unavailable` rather than truncating silently when more than
   * {@link MAX_LISTED_KEYS} match.
   */
  list(prefix: string): Promise<string[]>;
  /** Releases connections or handles. Idempotent. */
  close(): Promise<void>;
}

/** Most keys one `list` returns before it fails loudly (spec pitfall 7: no silent truncation). */
export const MAX_LISTED_KEYS = 100_000;

/** Longest object key, in UTF-8 bytes (S3's limit). */
export const MAX_OBJECT_KEY_BYTES = 1024;

/**
 * Throws `err:vault:request:invalid_argument` unless `key` is a relative forward-slash path with
 * no empty, `.` or `..` segment, no NUL or backslash, and at most 1024 UTF-8 bytes. Every backend
 * calls it, so no key can escape a disk root or address another bucket's objects.
 */
export function assertObjectKey(key: string): void {
  const problem = objectKeyProblem(key);
  if (problem !== undefined) {
    throw Fault.expected('err:vault:request:invalid_argument', { publicMessage: `Invalid storage key: ${problem}.` });
  }
}

/** Why `key` is not a valid object key, or undefined. */
export function objectKeyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'it is empty';
  if (Buffer.byteLength(key) > MAX_OBJECT_KEY_BYTES) return `it is longer than ${MAX_OBJECT_KEY_BYTES} bytes`;
  if (key.includes('\0') || key.includes('\\')) return 'it contains NUL or a backslash';
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return 'it has an empty, "." or ".." segment';
  }
  return undefined;
}

/** Wraps a backend error into the retryable storage fault, keeping the cause for logs. */
export function storageUnavailable(operation: string, key: string, cause: unknown): Fault {
  if (cause instanceof Fault) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new Fault('err:vault:storage:unavailable', {
    source: 'upstream',
    retryable: true,
    publicMessage: 'Vault storage is unavailable.',
    internalMessage: `${operation} ${key}: ${detail}`,
    cause,
  });
}
