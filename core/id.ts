/**
 * Resource and request ids in the reference's shape: `<prefix>_<random>` (spec api.md §2).
 * Ids are not secrets, but they are drawn from the crypto RNG anyway: it costs little when
 * taken in batches, and it keeps ids unguessable.
 */
import { randomFillSync } from 'node:crypto';

/** The id prefixes in use. */
export const ID_PREFIXES = [
  'ws', 'api', 'ks', 'key', 'id', 'perm', 'role', 'rl', 'rlns', 'rlor', 'log', 'req', 'mig',
  'dep', 'env', 'prj', 'inst', 'route', 'cert', 'pol', 'evt', 'dek',
] as const;

/** One of {@link ID_PREFIXES}. */
export type IdPrefix = (typeof ID_PREFIXES)[number];

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const ALPHANUMERIC_CODES = Array.from(ALPHANUMERIC, (character) => character.charCodeAt(0));
// 62 * 4 = 248: bytes at or above this are rejected so every character is equally likely.
const UNBIASED_LIMIT = 248;
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolOffset = POOL_BYTES;

function nextByte(): number {
  if (poolOffset === POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  return pool[poolOffset++]!;
}

/** The character code of one random character from `[A-Za-z0-9]`, uniformly distributed. */
function randomCode(): number {
  for (;;) {
    const byte = nextByte();
    if (byte < UNBIASED_LIMIT) return ALPHANUMERIC_CODES[byte % 62]!;
  }
}

/** `length` random characters from `[A-Za-z0-9]`, uniformly distributed. */
export function randomAlphanumeric(length: number): string {
  let out = '';
  while (out.length < length) out += String.fromCharCode(randomCode());
  return out;
}

/**
 * A new id, `<prefix>_<random>`. Resource ids use 16 random characters (about 95 bits) so that
 * they are also safe as cursors and never collide in practice; request ids use the reference's 9.
 */
export function newId(prefix: IdPrefix, randomLength = prefix === 'req' ? 9 : 16): string {
  return prefix + '_' + randomAlphanumeric(randomLength);
}

/**
 * A new request id: `req_` + 9 alphanumeric characters, as in the reference. Made for every
 * gateway request that verifies a key: the nine characters become one string at once.
 */
export function newRequestId(): string {
  return 'req_' + String.fromCharCode(randomCode(), randomCode(), randomCode(), randomCode(), randomCode(), randomCode(), randomCode(), randomCode(), randomCode());
}
