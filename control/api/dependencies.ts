/**
 * `ApiDependencies`: everything the API service uses, built once (in `bin/`, or by a test) and
 * handed to `createApiServer`. `createApiDependencies` builds it from a database plus optional
 * Redis, Vault and invalidation bus, with embedded defaults for the rest: in-process rate
 * limiter and credits, an in-memory invalidation bus, and the local analytics table.
 */
import type { Redis } from 'ioredis';
import type { VerificationEventSink } from '../../core/analytics/interface.ts';
import { LocalVerificationSink } from '../../core/analytics/local-verification-sink.ts';
import type { SwrCache } from '../../core/cache/swr-cache.ts';
import { systemClock, type Clock } from '../../core/clock.ts';
import type { ConsumedCredits, UsageFailureMode, UsageLimiter } from '../../core/credits/interface.ts';
import { MemoryUsageLimiter } from '../../core/credits/memory.ts';
import { RedisUsageLimiter } from '../../core/credits/redis.ts';
import type { Database } from '../../core/db/database.ts';
import { applyKeyCreditsSpend } from '../../core/db/queries/keys.ts';
import { CacheInvalidationBinder } from '../../core/invalidation/cache-invalidation-binder.ts';
import type { InvalidationBus } from '../../core/invalidation/interface.ts';
import { MemoryBus } from '../../core/invalidation/memory-bus.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import { defaultMetrics, type Metrics } from '../../core/metrics.ts';
import type { RateLimiter, RateLimitFailureMode } from '../../core/ratelimit/interface.ts';
import { MemoryRateLimiter } from '../../core/ratelimit/memory.ts';
import { RedisRateLimiter } from '../../core/ratelimit/redis.ts';
import type { VaultClient } from '../../core/vault-client.ts';
import { KEY_CACHE_NAME, KeyVerifier } from '../../core/verification/key-verifier.ts';
import type { VerificationKey } from '../../core/verification/verification-key.ts';
import { AuditWriter } from './audit-log.ts';
import { createRatelimitNamespaceCache, RATELIMIT_NAMESPACE_CACHE_NAME, type CachedNamespace } from './ratelimit-namespace-cache.ts';
import { guardVaultFaults } from './vault-fault-guard.ts';
import { WORKSPACE_LIMITS_CACHE_NAME, WorkspaceThrottle, type WorkspaceRequestLimit } from './workspace-throttle.ts';

/** Settings of the API service that are not objects. */
export interface ApiConfig {
  /** Written into analytics events. */
  readonly region: string;
  /** Whether `X-Forwarded-For` names the client (behind a trusted proxy); the IP allow-list uses it. */
  readonly trustForwardedFor: boolean;
}

/** The caches of the API service, by purpose. */
export interface ApiCaches {
  /** Keys (and root keys) by hash; bus name {@link KEY_CACHE_NAME}. */
  readonly keysByHash: SwrCache<VerificationKey>;
  /** Rate-limit namespaces with compiled overrides by `<workspaceId>:<name or id>`; bus name `ratelimit_namespaces`. */
  readonly ratelimitNamespaces: SwrCache<CachedNamespace>;
  /** Workspace request limits (§5.2) by workspace id; bus name `workspace_limits`. */
  readonly workspaceLimits: SwrCache<WorkspaceRequestLimit>;
}

/** Everything the API service depends on. */
export interface ApiDependencies {
  readonly db: Database;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly keyVerifier: KeyVerifier;
  readonly caches: ApiCaches;
  readonly rateLimiter: RateLimiter;
  readonly usageLimiter: UsageLimiter;
  /** The per-workspace request throttle of protected routes (api.md §5.2). */
  readonly workspaceThrottle: WorkspaceThrottle;
  /**
   * Absent: recoverable keys are refused with 412. Its failures are API server errors (500,
   * `service_unavailable` when retryable), never the Vault's own 401/404/400: see vault-fault-guard.ts.
   */
  readonly vault: VaultClient | undefined;
  readonly invalidation: InvalidationBus;
  readonly analytics: VerificationEventSink;
  readonly audit: AuditWriter;
  readonly config: ApiConfig;
  /** Flushes analytics and credits and releases what `createApiDependencies` created (not the db, Redis or Vault passed in). */
  close(): Promise<void>;
}

/** Options of {@link createApiDependencies}; only `db` is required. */
export interface CreateApiDependenciesOptions {
  db: Database;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
  /** Shared counters for rate limits and credits; absent = in-process counters (one node). */
  redis?: Redis;
  /** Prefix of every Redis key; default `keygate:`. */
  redisKeyPrefix?: string;
  /** Rate limits while Redis fails (config `redis.rateLimitFailureMode`): default `open` (pass, logged); `closed` = retryable 500. */
  rateLimitFailureMode?: RateLimitFailureMode;
  /** Credits while Redis fails (config `redis.creditsFailureMode`): default `closed` (retryable 500); `open` = VALID, nothing charged. */
  creditsFailureMode?: UsageFailureMode;
  vault?: VaultClient;
  /** Absent: an in-memory bus (one node). */
  invalidation?: InvalidationBus;
  /** Absent: the local `key_verification_batches` table (a `LocalVerificationSink`). */
  analytics?: VerificationEventSink;
  /** Key cache windows (config `cache.freshMs`, `cache.staleMs`, `cache.maxEntries`). */
  cacheFreshMs?: number;
  cacheStaleMs?: number;
  cacheMaxEntries?: number;
  /** Flush interval of the local analytics table, in ms; default 5000. */
  analyticsFlushIntervalMs?: number;
  /** Flush interval of the credits write-back, in ms; default 1000. */
  creditsFlushIntervalMs?: number;
  region?: string;
  trustForwardedFor?: boolean;
}

/** Builds the dependencies; nothing is started but timers (unref'd) of the analytics and credits write-back. */
export function createApiDependencies(options: CreateApiDependenciesOptions): ApiDependencies {
  const db = options.db;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger({ name: 'api' });
  const metrics = options.metrics ?? defaultMetrics;
  const closers: Array<() => Promise<void>> = [];

  const persist = async (batch: readonly ConsumedCredits[]): Promise<void> => {
    await db.transaction(async (tx) => {
      for (const item of batch) await applyKeyCreditsSpend(tx, item.keyId, item.consumed);
    });
  };
  const onPersistError = (err: unknown): void => logger.warn({ err }, 'writing consumed credits failed; will retry');
  let rateLimiter: RateLimiter;
  let usageLimiter: UsageLimiter;
  if (options.redis !== undefined) {
    const keyPrefix = options.redisKeyPrefix ?? 'keygate:';
    const onBackendError = (err: unknown): void => logger.warn({ err }, 'redis counter store failed');
    rateLimiter = new RedisRateLimiter({ redis: options.redis, keyPrefix, clock, onBackendError, failureMode: options.rateLimitFailureMode });
    usageLimiter = new RedisUsageLimiter({
      redis: options.redis, keyPrefix, clock, persist, onPersistError, onBackendError, failureMode: options.creditsFailureMode,
      flushIntervalMs: options.creditsFlushIntervalMs,
    });
  } else {
    rateLimiter = new MemoryRateLimiter({ clock });
    usageLimiter = new MemoryUsageLimiter({ clock, persist, onPersistError, flushIntervalMs: options.creditsFlushIntervalMs });
  }
  closers.push(() => usageLimiter.close(), () => rateLimiter.close());

  let analytics = options.analytics;
  if (analytics === undefined) {
    const sink = new LocalVerificationSink({ db, metrics, logger, flushIntervalMs: options.analyticsFlushIntervalMs });
    analytics = sink;
    closers.push(() => sink.close());
  }

  let invalidation = options.invalidation;
  if (invalidation === undefined) {
    const bus = new MemoryBus();
    invalidation = bus;
    closers.push(() => bus.close());
  }

  const keyVerifier = new KeyVerifier({
    db, rateLimiter, usageLimiter, analytics, clock, metrics, logger,
    cacheFreshMs: options.cacheFreshMs, cacheStaleMs: options.cacheStaleMs, cacheMaxEntries: options.cacheMaxEntries,
    region: options.region,
  });
  const binder = new CacheInvalidationBinder(invalidation, {
    onPublishError: (error) => logger.warn({ err: error }, 'publishing a cache invalidation failed'),
  });
  // Local removals are published too: the verifier drops a negative entry locally when it
  // migrates a key, and every other node may hold the same "no such key" entry.
  binder.bind(KEY_CACHE_NAME, keyVerifier.cache, { publishLocalRemovals: true });
  const ratelimitNamespaces = createRatelimitNamespaceCache(clock, metrics);
  // Published for the same reason: ratelimit.limit drops its negative entry after auto-creating a namespace.
  binder.bind(RATELIMIT_NAMESPACE_CACHE_NAME, ratelimitNamespaces, { publishLocalRemovals: true });
  const workspaceThrottle = new WorkspaceThrottle({ db, rateLimiter, clock, logger, metrics });
  binder.bind(WORKSPACE_LIMITS_CACHE_NAME, workspaceThrottle.cache);
  closers.unshift(async () => binder.close());

  let closing: Promise<void> | undefined;
  return {
    db, clock, logger, metrics, keyVerifier, rateLimiter, usageLimiter, analytics, invalidation, workspaceThrottle,
    caches: { keysByHash: keyVerifier.cache, ratelimitNamespaces, workspaceLimits: workspaceThrottle.cache },
    vault: options.vault === undefined ? undefined : guardVaultFaults(options.vault),
    audit: new AuditWriter(clock),
    config: { region: options.region ?? 'local', trustForwardedFor: options.trustForwardedFor ?? false },
    close() {
      closing ??= (async () => {
        // In order: stop receiving invalidations, flush analytics and credits, then buses.
        for (const close of closers) {
          try {
            await close();
          } catch (err) {
            logger.warn({ err }, 'closing an API dependency failed');
          }
        }
      })();
      return closing;
    },
  };
}
