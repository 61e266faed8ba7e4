/**
 * The one hash under which keys are stored and looked up (spec api.md §6, pitfall §14.1):
 * standard, padded base64 of SHA-256 over the UTF-8 bytes of the whole key, prefix and `_` included.
 * Hex or base64url would silently break every existing key.
 */
import { hash } from 'node:crypto';

/** Length of every {@link hashKey} result: 32 bytes in padded base64. */
export const KEY_HASH_LENGTH = 44;

/**
 * `base64(sha256(utf8(key)))`, 44 characters. Called once per verification (before the cache
 * lookup) and once per created key; about 1–2 µs for a typical key.
 */
export function hashKey(key: string): string {
  // One-shot `hash` (no Hash object per call); strings are hashed as UTF-8, same output.
  return hash('sha256', key, 'base64');
}
