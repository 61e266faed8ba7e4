/**
 * Key generation (spec api.md §6, pitfall §14.2): `prefix_` + base58 of `byteLength` bytes from
 * the crypto RNG; without a prefix the key is the bare base58 string (no `_`). `start` is what the
 * dashboard shows: `prefix_` plus the first 4 base58 characters.
 */
import { randomBytes } from 'node:crypto';
import { Fault } from '../fault.ts';
import { encodeBase58 } from './base58.ts';
import { hashKey } from './key-hash.ts';

/** Random bytes in a key when neither the request nor the key space says otherwise. */
export const DEFAULT_KEY_BYTES = 16;
/** Fewest random bytes a key may have (128 bits). */
export const MIN_KEY_BYTES = 16;
/** Most random bytes a key may have. */
export const MAX_KEY_BYTES = 255;
/** Longest allowed prefix, as in createKey's schema. */
export const MAX_KEY_PREFIX_LENGTH = 16;
/** Base58 characters of the random part shown in `start`. */
export const KEY_START_CHARACTERS = 4;

const PREFIX_PATTERN = /^[a-zA-Z0-9_]+$/;

/** What {@link generateKey} accepts. */
export interface GenerateKeyOptions {
  /** Optional prefix, 1..16 of `[a-zA-Z0-9_]`; joined to the random part with `_`. */
  prefix?: string | undefined;
  /** Random bytes, 16..255; default {@link DEFAULT_KEY_BYTES}. */
  byteLength?: number | undefined;
}

/** A freshly generated key. `key` is the plaintext: return it once, never store or log it. */
export interface GeneratedKey {
  key: string;
  start: string;
  hash: string;
}

/**
 * Generates a key with its `start` and storage hash. Called once per createKey / rerollKey.
 * Throws `Fault(invalid_input)` on a bad prefix or byte length.
 */
export function generateKey(options: GenerateKeyOptions = {}): GeneratedKey {
  const byteLength = options.byteLength ?? DEFAULT_KEY_BYTES;
  if (!Number.isInteger(byteLength) || byteLength < MIN_KEY_BYTES || byteLength > MAX_KEY_BYTES) {
    throw Fault.expected('err:unkey:application:invalid_input', {
      publicMessage: `byteLength must be an integer between ${MIN_KEY_BYTES} and ${MAX_KEY_BYTES}.`,
    });
  }
  const prefix = options.prefix;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > MAX_KEY_PREFIX_LENGTH || !PREFIX_PATTERN.test(prefix))) {
    throw Fault.expected('err:unkey:application:invalid_input', {
      publicMessage: `prefix must be 1 to ${MAX_KEY_PREFIX_LENGTH} characters of [a-zA-Z0-9_].`,
    });
  }
  const encoded = encodeBase58(randomBytes(byteLength));
  const key = prefix === undefined ? encoded : prefix + '_' + encoded;
  return { key, start: keyStart(prefix, encoded), hash: hashKey(key) };
}

/** `start` for a key made of `prefix` and its base58 part: `prefix_` + 4 characters, or just 4. */
export function keyStart(prefix: string | undefined, encodedRandom: string): string {
  const head = encodedRandom.slice(0, KEY_START_CHARACTERS);
  return prefix === undefined ? head : prefix + '_' + head;
}
