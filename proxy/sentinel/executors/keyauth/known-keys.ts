/**
 * `KnownKeys`: what one KeyAuth policy remembers per key that some key space knows, looked up by
 * the key's exact characters: its hash (`hashKey`), so the SHA-256 runs once per key instead of
 * once per request, and its principal, one frozen {@link Principal} reused (with the header string
 * stored on it by `freezeWithHeader`) while the verification answer stays the same. Requests
 * usually reach the gateway over connections shared by many keys (Frontline's pool in two-hop
 * mode, any client-side proxy), so remembering per key, not per connection, is what hits.
 *
 * Only keys the verifier found (any code but NOT_FOUND) are remembered, so random guesses cannot
 * fill the map; a key that later answers NOT_FOUND (deleted) is forgotten. The map holds at most
 * `maxEntries` keys and is cleared when full. The raw key is held as its own flat copy (never a
 * slice that keeps the request head alive), never logged, never shared between policies.
 *
 * A principal hit requires every input of `principalFromVerification` to be identical: the
 * scalars by value and `meta`, `roles`, `permissions` and `identity` by reference. Those objects
 * belong to the key cache's entry and are replaced (never mutated) when the entry reloads, so a
 * reloaded or changed key always misses. A key with credits changes `credits` on every call and
 * simply misses.
 */
import type { VerificationResult } from '../../../../core/verification/interface.ts';
import { freezeWithHeader, principalFromVerification, type Principal } from '../../principal.ts';

/** Keys remembered per KeyAuth policy; the map is cleared when full. */
export const DEFAULT_MAX_KNOWN_KEYS = 50_000;

/** One remembered key: its hash and the inputs and result of its last principal. */
export class KnownKey {
  readonly hash: string;
  keySpaceId: string | undefined = undefined;
  name: string | undefined = undefined;
  expires: number | undefined = undefined;
  credits: number | undefined = undefined;
  meta: unknown = undefined;
  roles: string[] | undefined = undefined;
  permissions: string[] | undefined = undefined;
  identity: VerificationResult['identity'] = undefined;
  principal: Principal | undefined = undefined;

  constructor(hash: string) {
    this.hash = hash;
  }
}

/** See the file comment. One per KeyAuth policy. */
export class KnownKeys {
  readonly #maxEntries: number;
  readonly #byKey = new Map<string, KnownKey>();

  /** `maxEntries` defaults to {@link DEFAULT_MAX_KNOWN_KEYS}. */
  constructor(maxEntries = DEFAULT_MAX_KNOWN_KEYS) {
    this.#maxEntries = maxEntries;
  }

  /** Remembered keys. */
  get size(): number {
    return this.#byKey.size;
  }

  /** The remembered entry of `key`, or undefined. Called per request. */
  get(key: string): KnownKey | undefined {
    return this.#byKey.get(key);
  }

  /** Remembers `key` (found by the verifier) with its hash; called once per key until the map is cleared. */
  remember(key: string, hash: string): KnownKey {
    const known = new KnownKey(hash);
    if (this.#byKey.size >= this.#maxEntries) this.#byKey.clear();
    this.#byKey.set(flatCopy(key), known);
    return known;
  }

  /** Forgets `key` (the verifier no longer finds it). */
  forget(key: string): void {
    this.#byKey.delete(key);
  }

  /** The (frozen) principal of a successful verification of `known`; called per authenticated request. */
  principalFor(known: KnownKey, result: VerificationResult, keySpaceId: string): Principal {
    if (
      known.principal !== undefined && known.keySpaceId === keySpaceId && known.name === result.name && known.expires === result.expires &&
      known.credits === result.credits && known.meta === result.meta && known.roles === result.roles &&
      known.permissions === result.permissions && known.identity === result.identity
    ) {
      return known.principal;
    }
    const principal = freezePrincipal(principalFromVerification(result, keySpaceId));
    known.keySpaceId = keySpaceId;
    known.name = result.name;
    known.expires = result.expires;
    known.credits = result.credits;
    known.meta = result.meta;
    known.roles = result.roles;
    known.permissions = result.permissions;
    known.identity = result.identity;
    known.principal = principal;
    return principal;
  }
}

/**
 * A copy of `text` that shares no storage with the string it came from. A key sliced out of a
 * request head would otherwise keep the whole head alive for as long as it is remembered: V8
 * makes a substring of 13 characters or more a view of its parent. Concatenating makes V8 build
 * a new flat string once the result is sliced, and the slice then points into that copy only.
 */
function flatCopy(text: string): string {
  return ` ${text}`.slice(1);
}

/**
 * Freezes the wrappers built for the principal (not the entry's own meta/role objects), so a
 * shared principal cannot be changed by one request; it carries its header string.
 */
function freezePrincipal(principal: Principal): Principal {
  if (principal.source.key !== undefined) Object.freeze(principal.source.key);
  Object.freeze(principal.source);
  if (principal.identity !== undefined) Object.freeze(principal.identity);
  return freezeWithHeader(principal);
}
