/**
 * `KeyPrincipalCache`: KeyAuth's principals, one frozen {@link Principal} per key, so a key that
 * verifies again with the same answer reuses the object (and the header string stored on it by
 * `freezeWithHeader`) instead of building and serialising JSON per request.
 *
 * A hit requires every input of `principalFromVerification` to be identical: the scalars by value
 * and `meta`, `roles`, `permissions` and `identity` by reference. Those objects belong to the key
 * cache's entry and are replaced (never mutated) when the entry reloads, so a reloaded or changed
 * key always misses. A key with credits changes `credits` on every call and simply misses.
 */
import type { VerificationResult } from '../../../../core/verification/interface.ts';
import { freezeWithHeader, principalFromVerification, type Principal } from '../../principal.ts';

/** Keys whose principal is remembered per KeyAuth policy; the map is cleared when full. */
export const DEFAULT_MAX_CACHED_PRINCIPALS = 10_000;

interface CachedPrincipal {
  keySpaceId: string;
  name: string | undefined;
  expires: number | undefined;
  credits: number | undefined;
  meta: unknown;
  roles: string[] | undefined;
  permissions: string[] | undefined;
  identity: VerificationResult['identity'];
  principal: Principal;
}

/** Remembers the principal of each recently verified key; see the file comment. One per KeyAuth policy. */
export class KeyPrincipalCache {
  readonly #maxEntries: number;
  readonly #byKeyId = new Map<string, CachedPrincipal>();

  /** `maxEntries` defaults to {@link DEFAULT_MAX_CACHED_PRINCIPALS}. */
  constructor(maxEntries = DEFAULT_MAX_CACHED_PRINCIPALS) {
    this.#maxEntries = maxEntries;
  }

  /** The (frozen) principal of a successful verification; called per authenticated request. */
  principalFor(result: VerificationResult, keySpaceId: string): Principal {
    const keyId = result.keyId ?? '';
    const cached = this.#byKeyId.get(keyId);
    if (
      cached !== undefined && cached.keySpaceId === keySpaceId && cached.name === result.name && cached.expires === result.expires &&
      cached.credits === result.credits && cached.meta === result.meta && cached.roles === result.roles &&
      cached.permissions === result.permissions && cached.identity === result.identity
    ) {
      return cached.principal;
    }
    const principal = freezePrincipal(principalFromVerification(result, keySpaceId));
    if (cached === undefined && this.#byKeyId.size >= this.#maxEntries) this.#byKeyId.clear();
    this.#byKeyId.set(keyId, {
      keySpaceId, name: result.name, expires: result.expires, credits: result.credits, meta: result.meta,
      roles: result.roles, permissions: result.permissions, identity: result.identity, principal,
    });
    return principal;
  }
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
