/**
 * Helpers for keys imported from another system (spec api.md §6, "Migration"). Such keys keep
 * their own format and were hashed elsewhere; on their first verification (with a `migrationId`)
 * the verifier looks them up under the foreign hash, then re-stores them under {@link hashKey}.
 */
import { createHash } from 'node:crypto';
import { KEY_START_CHARACTERS } from './key-generator.ts';

/** The foreign hashing schemes keygate can import. */
export const KEY_MIGRATION_ALGORITHMS = ['sha256', 'github.com/seamapi/prefixed-api-key'] as const;

/** One of {@link KEY_MIGRATION_ALGORITHMS}. */
export type KeyMigrationAlgorithm = (typeof KEY_MIGRATION_ALGORITHMS)[number];

/** The parts of a `prefix_short_long` key (Seam's prefixed-api-key shape). */
export interface PrefixedKeyParts {
  /** Everything before the short token, or undefined when the key has only two parts. */
  prefix: string | undefined;
  /** The second-last `_`-separated part (public identifier in Seam's scheme). */
  shortToken: string;
  /** The last `_`-separated part: the secret that Seam hashes. */
  longToken: string;
}

/**
 * Splits a raw key on `_`: the long token is the last part and the short token the second-last.
 * Returns undefined when there are fewer than two parts or either token is empty.
 */
export function splitPrefixedKey(rawKey: string): PrefixedKeyParts | undefined {
  const lastSeparator = rawKey.lastIndexOf('_');
  if (lastSeparator <= 0) return undefined;
  const longToken = rawKey.slice(lastSeparator + 1);
  const beforeLong = rawKey.slice(0, lastSeparator);
  const shortSeparator = beforeLong.lastIndexOf('_');
  const shortToken = shortSeparator < 0 ? beforeLong : beforeLong.slice(shortSeparator + 1);
  if (longToken.length === 0 || shortToken.length === 0) return undefined;
  const prefix = shortSeparator < 0 ? undefined : beforeLong.slice(0, shortSeparator);
  return { prefix, shortToken, longToken };
}

/** Lower-case hex SHA-256 of a UTF-8 string: the digest form foreign systems usually store. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * The hash under which a migrated key was imported, computed from the raw key the client sent.
 * `sha256`: hex SHA-256 of the whole key. Seam: hex SHA-256 of the long token. Returns undefined
 * when the key does not have the algorithm's shape (then it cannot be a migrated key).
 * Called once per verification miss that carries a `migrationId`.
 */
export function migrationLookupHash(rawKey: string, algorithm: KeyMigrationAlgorithm): string | undefined {
  if (algorithm === 'sha256') return sha256Hex(rawKey);
  const parts = splitPrefixedKey(rawKey);
  return parts === undefined ? undefined : sha256Hex(parts.longToken);
}

/**
 * `start` for an existing (imported) key: the text up to its first `_` plus that `_` and the next
 * 4 characters, or the first 4 characters when the key has no `_`. Never reveals more than that.
 */
export function startOfExistingKey(rawKey: string): string {
  const separator = rawKey.indexOf('_');
  if (separator < 0) return rawKey.slice(0, KEY_START_CHARACTERS);
  return rawKey.slice(0, separator + 1 + KEY_START_CHARACTERS);
}
