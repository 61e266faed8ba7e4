/**
 * `VerifiedTokenCache`: JWTAuth's memory of tokens it verified, so a client that sends the same
 * token again skips the signature check (an RS256 verify is ~100 µs of CPU; a lookup is well under
 * one). Keyed by the token's exact characters: any other token, even one differing by a single
 * byte, is a miss and is verified in full. Only successes are remembered; a failure is never
 * cached, so a forged or expired token always meets the real check.
 *
 * An entry is served only while the clock is before BOTH the token's `exp` (no clock-skew
 * allowance: a token inside the skew window is verified again every time) and `maxAgeMs` after
 * it was verified, which bounds how long a token keeps passing after its signing key leaves the
 * JWKS (the JWKS itself is trusted for `jwksCacheMs`, 1 h by default). One cache per executor: a
 * recompiled policy (a new static key, new issuer or audiences) starts empty. Bounded in entries
 * and in token length; at the bound the oldest entry goes.
 */
import type { Principal } from '../../principal.ts';

/** Bounds of {@link VerifiedTokenCache}. */
export const VERIFIED_TOKEN_CACHE_DEFAULTS = {
  /** Tokens remembered per JWTAuth policy. */
  maxEntries: 10_000,
  /** Longest a verified token is served from memory, in ms (also bounded by its `exp`). */
  maxAgeMs: 30_000,
  /** Longer tokens are verified every time (bounds the cache's memory: at most maxEntries × this many characters). */
  maxTokenChars: 2_048,
} as const;

/** Options of {@link VerifiedTokenCache}; defaults in {@link VERIFIED_TOKEN_CACHE_DEFAULTS}. */
export interface VerifiedTokenCacheOptions {
  maxEntries?: number;
  maxAgeMs?: number;
  maxTokenChars?: number;
}

interface Entry {
  principal: Principal;
  /** Unix ms after which the entry is never served. */
  validUntilMs: number;
}

/** Remembers verified tokens; see the file comment. */
export class VerifiedTokenCache {
  readonly #maxEntries: number;
  readonly #maxAgeMs: number;
  readonly #maxTokenChars: number;
  // Insertion order = verification order: the first key is the oldest entry.
  readonly #entries = new Map<string, Entry>();

  constructor(options: VerifiedTokenCacheOptions = {}) {
    this.#maxEntries = options.maxEntries ?? VERIFIED_TOKEN_CACHE_DEFAULTS.maxEntries;
    this.#maxAgeMs = options.maxAgeMs ?? VERIFIED_TOKEN_CACHE_DEFAULTS.maxAgeMs;
    this.#maxTokenChars = options.maxTokenChars ?? VERIFIED_TOKEN_CACHE_DEFAULTS.maxTokenChars;
  }

  /** Tokens remembered now (expired ones included until they are looked up or evicted). */
  get size(): number {
    return this.#entries.size;
  }

  /** The principal of `token` when it was verified and is still servable at `nowMs`; called per request with a token. */
  get(token: string, nowMs: number): Principal | undefined {
    const entry = this.#entries.get(token);
    if (entry === undefined) return undefined;
    if (nowMs < entry.validUntilMs) return entry.principal;
    this.#entries.delete(token);
    return undefined;
  }

  /**
   * Remembers a token that was just verified at `nowMs`, with its `exp` claim (Unix seconds;
   * undefined when the token has none). Nothing is kept when the token is too long or already at
   * its `exp`. Pass a frozen principal: it is shared by every request that presents the token.
   */
  set(token: string, principal: Principal, expSeconds: number | undefined, nowMs: number): void {
    if (this.#maxEntries <= 0 || token.length > this.#maxTokenChars) return;
    let validUntilMs = nowMs + this.#maxAgeMs;
    if (expSeconds !== undefined) validUntilMs = Math.min(validUntilMs, expSeconds * 1000);
    if (validUntilMs <= nowMs) return;
    if (!this.#entries.has(token) && this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(token, { principal, validUntilMs });
  }
}
