/**
 * `AppliedVersions`: which version of each (cache, key) and each cache-wide clear a node has
 * applied, so duplicates and older messages are recognised and skipped.
 *
 * Skipping an older invalidation is only safe when the write it describes is certainly
 * visible to the refetch that followed the newer one. Versions come from different nodes'
 * clocks, so "older" is only trusted when the physical gap exceeds `reorderToleranceMs`
 * (twice the clock skew we tolerate): a write stamped that much earlier committed before the
 * newer write was even published. A message older by less than that is applied again; that
 * costs a refetch, where skipping it could keep a revoked key cached until expiry.
 */
import { LRUCache } from 'lru-cache';
import { hlcPhysicalMs } from './hybrid-logical-clock.ts';
import type { Invalidation, InvalidationIgnoreReason } from './interface.ts';

/** Default for {@link AppliedVersionsOptions.reorderToleranceMs}: 1 s (twice a 500 ms clock skew). */
export const DEFAULT_REORDER_TOLERANCE_MS = 1000;
/** Default for {@link AppliedVersionsOptions.maxTrackedKeys}. */
export const DEFAULT_MAX_TRACKED_KEYS = 100_000;
/** Default for {@link AppliedVersionsOptions.maxTrackedCaches}. */
export const DEFAULT_MAX_TRACKED_CACHES = 1024;

/** Options for {@link AppliedVersions}. */
export interface AppliedVersionsOptions {
  /** An invalidation is skipped as older only when its physical time is this much behind. Default 1000 ms. */
  reorderToleranceMs?: number;
  /**
   * Most (cache, key) versions remembered, least recently applied forgotten first. A forgotten
   * key's next invalidation is applied whatever its version, which is harmless. Default 100,000.
   */
  maxTrackedKeys?: number;
  /** Most caches whose last clear is remembered. Default 1024. */
  maxTrackedCaches?: number;
}

/** The outcome of {@link AppliedVersions.admit}: the keys to apply, or why nothing applies. */
export type AdmitResult =
  | { readonly apply: true; readonly invalidation: Invalidation }
  | { readonly apply: false; readonly reason: Exclude<InvalidationIgnoreReason, 'own' | 'malformed'> };

interface Stamp {
  readonly version: bigint;
  readonly originNode: string;
}

/** Per-node memory of applied versions. Bounded; see the options. */
export class AppliedVersions {
  readonly #reorderToleranceMs: number;
  readonly #maxTrackedCaches: number;
  readonly #keys: LRUCache<string, Stamp>;
  readonly #clears = new Map<string, Stamp>();

  constructor(options: AppliedVersionsOptions = {}) {
    this.#reorderToleranceMs = options.reorderToleranceMs ?? DEFAULT_REORDER_TOLERANCE_MS;
    this.#maxTrackedCaches = options.maxTrackedCaches ?? DEFAULT_MAX_TRACKED_CACHES;
    this.#keys = new LRUCache<string, Stamp>({ max: options.maxTrackedKeys ?? DEFAULT_MAX_TRACKED_KEYS });
  }

  /**
   * Decides what of `invalidation` to apply and records it as applied. Keys already applied
   * at this version, or at a version newer by more than the tolerance, are dropped; when no
   * key remains the result says why. Per delivered message.
   */
  admit(invalidation: Invalidation): AdmitResult {
    const incoming: Stamp = { version: invalidation.version, originNode: invalidation.originNode };
    const lastClear = this.#clears.get(invalidation.cache);
    if (invalidation.clearAll) {
      const verdict = lastClear === undefined ? undefined : this.#compare(incoming, lastClear);
      if (verdict !== undefined) return { apply: false, reason: verdict };
      this.#recordClear(invalidation.cache, incoming, lastClear);
      return { apply: true, invalidation };
    }
    const admitted: string[] = [];
    let sawDuplicate = false;
    for (const key of invalidation.keys) {
      const entryKey = invalidation.cache + '\u0000' + key;
      const previous = this.#keys.get(entryKey);
      const verdict = (previous === undefined ? undefined : this.#compare(incoming, previous))
        ?? (lastClear === undefined ? undefined : this.#compareWithClear(incoming, lastClear));
      if (verdict === 'duplicate') sawDuplicate = true;
      if (verdict !== undefined) continue;
      admitted.push(key);
      if (previous === undefined || incoming.version > previous.version) this.#keys.set(entryKey, incoming);
    }
    if (admitted.length === 0) return { apply: false, reason: sawDuplicate ? 'duplicate' : 'older' };
    if (admitted.length === invalidation.keys.length) return { apply: true, invalidation };
    return { apply: true, invalidation: { ...invalidation, keys: admitted } };
  }

  /** Forgets everything (tests, and a node that reset its caches completely). */
  reset(): void {
    this.#keys.clear();
    this.#clears.clear();
  }

  // undefined = apply; otherwise why not.
  #compare(incoming: Stamp, applied: Stamp): 'duplicate' | 'older' | undefined {
    if (incoming.version === applied.version && incoming.originNode === applied.originNode) return 'duplicate';
    return this.#isSafelyOlder(incoming.version, applied.version) ? 'older' : undefined;
  }

  // A key invalidation stamped well before the last clear of its cache was covered by that clear.
  #compareWithClear(incoming: Stamp, clear: Stamp): 'older' | undefined {
    return this.#isSafelyOlder(incoming.version, clear.version) ? 'older' : undefined;
  }

  #isSafelyOlder(version: bigint, applied: bigint): boolean {
    return version < applied && hlcPhysicalMs(applied) - hlcPhysicalMs(version) > this.#reorderToleranceMs;
  }

  #recordClear(cache: string, incoming: Stamp, lastClear: Stamp | undefined): void {
    if (lastClear !== undefined && lastClear.version >= incoming.version) return;
    this.#clears.delete(cache);
    if (this.#clears.size >= this.#maxTrackedCaches) {
      // Forget the cache cleared longest ago; its next clear is then applied whatever its version.
      const oldest = this.#clears.keys().next().value;
      if (oldest !== undefined) this.#clears.delete(oldest);
    }
    this.#clears.set(cache, incoming);
  }
}
