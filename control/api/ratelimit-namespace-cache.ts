/**
 * The rate-limit namespace cache of the API service: namespace + compiled overrides, keyed
 * `<workspaceId>:<name or id>`, fresh 1 min / stale 24 h as in the reference. One per
 * `ApiDependencies` (in `ApiCaches`), bound to the invalidation bus under
 * {@link RATELIMIT_NAMESPACE_CACHE_NAME} by `createApiDependencies`.
 */
import { SwrCache } from '../../core/cache/swr-cache.ts';
import type { Clock } from '../../core/clock.ts';
import type { RatelimitNamespace } from '../../core/db/queries/ratelimit-namespaces.ts';
import type { RatelimitOverride } from '../../core/db/queries/ratelimit-overrides.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { OverrideResolver } from '../../core/ratelimit/override-resolver.ts';

/** Bus name of the namespace cache. */
export const RATELIMIT_NAMESPACE_CACHE_NAME = 'ratelimit_namespaces';
/** Fresh window of the namespace cache, in ms (reference: 1 min). */
export const RATELIMIT_NAMESPACE_CACHE_FRESH_MS = 60_000;
/** Stale window of the namespace cache, in ms (reference: 24 h). */
export const RATELIMIT_NAMESPACE_CACHE_STALE_MS = 86_400_000;
/** Most namespaces cached per process. */
export const RATELIMIT_NAMESPACE_CACHE_MAX_ENTRIES = 100_000;
/** How long "no such namespace" is trusted, in ms: short, so a namespace created elsewhere shows up soon. */
export const RATELIMIT_NAMESPACE_NEGATIVE_CACHE_MS = 1_000;

/** A cached namespace with its overrides compiled for lookup. */
export interface CachedNamespace {
  namespace: RatelimitNamespace;
  overrides: OverrideResolver<RatelimitOverride>;
}

/** Creates the (empty, unbound) namespace cache. At boot, once per `ApiDependencies`. */
export function createRatelimitNamespaceCache(clock: Clock, metrics?: Metrics): SwrCache<CachedNamespace> {
  return new SwrCache<CachedNamespace>({
    name: RATELIMIT_NAMESPACE_CACHE_NAME,
    freshMs: RATELIMIT_NAMESPACE_CACHE_FRESH_MS,
    staleMs: RATELIMIT_NAMESPACE_CACHE_STALE_MS,
    maxEntries: RATELIMIT_NAMESPACE_CACHE_MAX_ENTRIES,
    negativeFreshMs: RATELIMIT_NAMESPACE_NEGATIVE_CACHE_MS,
    negativeStaleMs: RATELIMIT_NAMESPACE_NEGATIVE_CACHE_MS,
    clock,
    metrics,
  });
}
