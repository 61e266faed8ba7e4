/**
 * The one hash under which keys are stored and looked up (spec api.md §6, pitfall §14.1):
 * standard, padded base64 of SHA-256 over the UTF-8 bytes of the whole key, prefix and `_` included.
 * Hex or base64url would silently break every existing key.
 */
import { hash } from 'node:crypto';
import { sha256AsciiBase64 } from './sha256-ascii.ts';

/** Length of every {@link hashKey} result: 32 bytes in padded base64. */
export const KEY_HASH_LENGTH = 44;

/**
 * `base64(sha256(utf8(key)))`, 44 characters. Called once per verification (before the cache
 * lookup; the gateway's KeyAuth once per key it has not verified before) and once per created
 * key; about 0.65 µs for a typical key in a loop, 2 µs per call inside the gateway (README.md).
 */
export function hashKey(key: string): string {
  // ASCII keys (all of them in practice) in JavaScript: cheaper than OpenSSL per request in the
  // gateway (sha256-ascii.ts); anything else with the one-shot `hash` (strings hashed as UTF-8).
  return sha256AsciiBase64(key) ?? hash('sha256', key, 'base64');
}
