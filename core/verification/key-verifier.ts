/**
 * `KeyVerifier`: the verification engine (spec api.md §7). A plain class, used by the API's
 * `keys.verifyKey` and root-key authentication, and in-process by the gateway's KeyAuth policy.
 *
 * Order of checks (each one only runs while everything before it passed, so a failed check
 * never consumes rate-limit tokens or credits):
 *   key cache by hash (SWR) → status (workspace, deleted, disabled, expired) → migration
 *   fallback → workspace guard → caller authorization (masked as NOT_FOUND) → IP allow-list →
 *   permission query → rate limits (all-or-nothing) → credits → analytics event → result.
 */
import { performance } from 'node:perf_hooks';
import type { VerificationEventSink } from '../analytics/interface.ts';
import { SwrCache } from '../cache/swr-cache.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { UsageLimiter } from '../credits/interface.ts';
import type { Database } from '../db/database.ts';
import { findKeyForVerification } from '../db/queries/find-key-for-verification.ts';
import { getKeyMigration } from '../db/queries/key-migrations.ts';
import { getKeyById, updateKey } from '../db/queries/keys.ts';
import { Fault } from '../fault.ts';
import { hashKey } from '../keys/key-hash.ts';
import { migrationLookupHash, startOfExistingKey } from '../keys/key-migration.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { RateLimitDecision, RateLimiter, RateLimitRequest } from '../ratelimit/interface.ts';
import { MemoryRateLimiter } from '../ratelimit/memory.ts';
import { evaluatePermissionQuery } from '../rbac/evaluate-permission-query.ts';
import { parsePermissionQuery } from '../rbac/parse-permission-query.ts';
import type { PermissionQuery } from '../rbac/permission-query.ts';
import { VERIFICATION_CODES } from './interface.ts';
import type { CheckedRatelimit, VerificationCode, VerificationResult, VerifyKeyInput, VerifyKeyOptions } from './interface.ts';
import { VerificationKey, type ResolvedRatelimit } from './verification-key.ts';

/** Name of the key cache, also its name on the invalidation bus (keys are key hashes). */
export const KEY_CACHE_NAME = 'keys_by_hash';
/** Default fresh window of the key cache, in ms (reference: 10 s). */
export const DEFAULT_KEY_CACHE_FRESH_MS = 10_000;
/** Default stale window of the key cache, in ms (reference: 10 min). */
export const DEFAULT_KEY_CACHE_STALE_MS = 600_000;
/** Default bound on cached keys. */
export const DEFAULT_KEY_CACHE_MAX_ENTRIES = 1_000_000;
/** Parsed permission queries kept so a repeated query is parsed once (cleared when full). */
export const DEFAULT_MAX_PARSED_QUERIES = 1_000;

const NO_TAGS: readonly string[] = Object.freeze([]);

/** One rate limit to check and the units it costs. */
interface RatelimitCheck {
  readonly limit: ResolvedRatelimit;
  readonly cost: number;
}

const NO_CHECKS: readonly RatelimitCheck[] = Object.freeze([]);

/** Options of {@link KeyVerifier}. */
export interface KeyVerifierOptions {
  db: Database;
  rateLimiter: RateLimiter;
  usageLimiter: UsageLimiter;
  analytics: VerificationEventSink;
  clock?: Clock;
  /** Key cache windows and bound; defaults above. */
  cacheFreshMs?: number;
  cacheStaleMs?: number;
  cacheMaxEntries?: number;
  /** Negative ("no such key") entries are trusted this long, in ms; default 10 s, so a key created elsewhere shows up soon. */
  negativeCacheStaleMs?: number;
  metrics?: Metrics;
  logger?: Logger;
  /** Region written into analytics events. Default `local`. */
  region?: string;
}

/** The status of a key from its stored state alone (api.md §7 step 3). */
export type KeyStatus = 'VALID' | 'NOT_FOUND' | 'FORBIDDEN' | 'DISABLED' | 'EXPIRED';

/** The verification engine; see the file comment. One instance per process, shared by every caller. */
export class KeyVerifier {
  /** The key cache (by key hash). Mutating handlers and the invalidation bus remove entries from it. */
  readonly cache: SwrCache<VerificationKey>;
  readonly #db: Database;
  readonly #rateLimiter: RateLimiter;
  /** The limiter again when it is the plain in-process one (whose `limit` is `limitNow` in a promise), else undefined. */
  readonly #syncRateLimiter: MemoryRateLimiter | undefined;
  readonly #usageLimiter: UsageLimiter;
  readonly #analytics: VerificationEventSink;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #region: string;
  readonly #parsedQueries = new Map<string, PermissionQuery>();
  // Per cached entry (weak: they go when the key cache drops the entry, and a reload is a new
  // entry): its auto-applied limits as checks and as the limiter's batch, built on first use.
  readonly #autoAppliedChecks = new WeakMap<VerificationKey, readonly RatelimitCheck[]>();
  readonly #autoAppliedRequests = new WeakMap<VerificationKey, readonly RateLimitRequest[]>();
  /** Outcomes counted since the last scrape (see the constructor); undefined without metrics. */
  readonly #outcomes: Record<VerificationCode, number> | undefined;
  readonly #load = (hash: string): Promise<VerificationKey | undefined> =>
    findKeyForVerification(this.#db, hash).then((row) => (row === undefined ? undefined : new VerificationKey(row)));
  readonly #loadRemaining = async (keyId: string): Promise<number | null> => (await getKeyById(this.#db, keyId))?.remainingRequests ?? null;

  constructor(options: KeyVerifierOptions) {
    this.#db = options.db;
    this.#rateLimiter = options.rateLimiter;
    const limiter = options.rateLimiter;
    // Only when `limit` is not overridden (a subclass or wrapper keeps its own behaviour).
    this.#syncRateLimiter = limiter instanceof MemoryRateLimiter && limiter.limit === MemoryRateLimiter.prototype.limit ? limiter : undefined;
    this.#usageLimiter = options.usageLimiter;
    this.#analytics = options.analytics;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    this.#region = options.region ?? 'local';
    const freshMs = options.cacheFreshMs ?? DEFAULT_KEY_CACHE_FRESH_MS;
    const staleMs = Math.max(freshMs, options.cacheStaleMs ?? DEFAULT_KEY_CACHE_STALE_MS);
    const negativeStaleMs = Math.min(staleMs, options.negativeCacheStaleMs ?? 10_000);
    this.cache = new SwrCache<VerificationKey>({
      name: KEY_CACHE_NAME,
      freshMs,
      staleMs,
      maxEntries: options.cacheMaxEntries ?? DEFAULT_KEY_CACHE_MAX_ENTRIES,
      negativeFreshMs: Math.min(freshMs, negativeStaleMs),
      negativeStaleMs,
      clock: this.#clock,
      metrics: options.metrics,
    });
    if (options.metrics !== undefined) {
      const metrics = options.metrics;
      const name = 'keygate_verification_outcomes_total';
      const counter = metrics.counter(name, 'Key verifications by outcome code.', ['code']);
      // Counted in plain numbers per verification and published when scraped: a prom-client
      // `inc()`, even on a bound child, hashes its labels (about 0.4 µs per verification).
      const counts = newOutcomeCounts();
      this.#outcomes = counts;
      const children = VERIFICATION_CODES.map((code) => [code, counter.labels(code)] as const);
      metrics.onCollect(name, () => {
        for (const [code, child] of children) {
          const pending = counts[code];
          if (pending > 0) {
            counts[code] = 0;
            child.inc(pending);
          }
        }
      });
    }
  }

  /**
   * The cached entry for a key hash, loading it on a miss; undefined when no live key has that
   * hash. Database errors propagate (and are not cached). Called after a key migration.
   */
  lookup(hash: string): Promise<VerificationKey | undefined> {
    const entry = this.lookupNow(hash);
    return entry instanceof Promise ? entry : Promise.resolve(entry);
  }

  /**
   * {@link lookup} without a promise when the entry is cached (fresh or stale): the entry, or
   * undefined for a cached miss; a promise only when it must be loaded. Called per request by
   * root-key authentication.
   */
  lookupNow(hash: string): VerificationKey | undefined | Promise<VerificationKey | undefined> {
    const cached = this.cache.getSync(hash, this.#load);
    return cached === SwrCache.MISS ? this.cache.get(hash, this.#load) : cached;
  }

  /** Drops cached keys by hash on this node (publish on the bus to reach the others). */
  invalidate(hashes: string | readonly string[]): void {
    this.cache.remove(hashes);
  }

  /**
   * Verifies a key. Outcomes are values (`valid` + `code`); it throws only for a caller error
   * (400 `permissions_query_syntax_error`, 412 for an unknown rate-limit name, 400 for a malformed
   * limit) or an infrastructure failure (database down, credits store failing closed).
   */
  verify(input: VerifyKeyInput, options: VerifyKeyOptions): Promise<VerificationResult> {
    try {
      const outcome = this.verifyNow(input, options);
      return outcome instanceof Promise ? outcome : Promise.resolve(outcome);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * {@link verify} without a promise when none is needed: a cached key (fresh or stale) checked
   * against the in-process limiter, without credits, is answered synchronously; anything that
   * waits (a cache miss, a migration, credits, a remote limiter) returns a promise. The same
   * checks in the same order as `verify`; the errors `verify` rejects with are thrown (or
   * rejected, once something was awaited). Called per request by the gateway's KeyAuth.
   */
  verifyNow(input: VerifyKeyInput, options: VerifyKeyOptions): VerificationResult | Promise<VerificationResult> {
    const startedAtMs = options.startedAtMs ?? performance.now();
    // A malformed query is a malformed request whatever the key: reject it before any lookup,
    // so the answer does not depend on (or reveal) the key's state.
    const query = input.permissions === undefined ? undefined : this.#parseQuery(input.permissions);
    const hash = options.keyHash ?? hashKey(input.key);
    const cached = this.cache.getSync(hash, this.#load);
    if (cached === SwrCache.MISS || (cached === undefined && input.migrationId !== undefined)) {
      return this.#verifyLoaded(cached, hash, input, options, query, startedAtMs);
    }
    return this.#check(cached, input, options, query, startedAtMs);
  }

  /** The path that waits: a cache miss (one load, shared with concurrent callers) or a migration. */
  async #verifyLoaded(
    cached: VerificationKey | undefined | typeof SwrCache.MISS,
    hash: string,
    input: VerifyKeyInput,
    options: VerifyKeyOptions,
    query: PermissionQuery | undefined,
    startedAtMs: number,
  ): Promise<VerificationResult> {
    let entry = cached === SwrCache.MISS ? await this.cache.get(hash, this.#load) : cached;
    if (entry === undefined && input.migrationId !== undefined) {
      entry = await this.#migrate(input.key, hash, input.migrationId, options.workspaceId);
    }
    return this.#check(entry, input, options, query, startedAtMs);
  }

  /** Every check after the lookup, in the order of the file comment; synchronous until credits or a remote limiter. */
  #check(
    entry: VerificationKey | undefined,
    input: VerifyKeyInput,
    options: VerifyKeyOptions,
    query: PermissionQuery | undefined,
    startedAtMs: number,
  ): VerificationResult | Promise<VerificationResult> {
    // Workspace guard and caller authorization: failures look exactly like a missing key, and
    // nothing is recorded (the caller may not learn that the key exists).
    if (entry === undefined || entry.workspaceId !== options.workspaceId || (options.keySpaceId !== undefined && entry.keySpaceId !== options.keySpaceId)) {
      return this.#notFound();
    }
    const nowMs = this.#clock.nowMs();
    const status = keyStatus(entry, nowMs);
    if (status === 'NOT_FOUND' || (options.authorize !== undefined && !options.authorize(entry))) return this.#notFound();
    if (status !== 'VALID') return this.#finish(entry, status, input, options, startedAtMs, nowMs, undefined, 0, entry.remainingRequests);

    if (entry.ipWhitelist !== undefined && (options.clientIp === undefined || !entry.ipWhitelist.has(options.clientIp))) {
      return this.#finish(entry, 'FORBIDDEN', input, options, startedAtMs, nowMs, undefined, 0, entry.remainingRequests);
    }
    if (query !== undefined && !evaluatePermissionQuery(query, entry.permissionSet)) {
      return this.#finish(entry, 'INSUFFICIENT_PERMISSIONS', input, options, startedAtMs, nowMs, undefined, 0, entry.remainingRequests);
    }

    const checks = this.#ratelimitChecks(entry, input);
    if (checks.length === 0) return this.#charge(entry, input, options, startedAtMs, nowMs, undefined);
    const requests = this.#ratelimitRequests(entry, input, checks);
    if (this.#syncRateLimiter !== undefined) {
      // In-process limiter: its decision is synchronous, so no promise is needed to wait for it.
      let decisions: RateLimitDecision[] | undefined;
      try {
        decisions = this.#syncRateLimiter.limitNow(requests);
      } catch (err) {
        decisions = this.#limiterFailed(err, entry);
      }
      return this.#charge(entry, input, options, startedAtMs, nowMs, decisions === undefined ? undefined : checkedRatelimits(checks, decisions));
    }
    let pending: Promise<RateLimitDecision[]>;
    try {
      pending = this.#rateLimiter.limit(requests);
    } catch (err) {
      this.#limiterFailed(err, entry);
      return this.#charge(entry, input, options, startedAtMs, nowMs, undefined);
    }
    return pending.then(
      (decisions) => this.#charge(entry, input, options, startedAtMs, nowMs, checkedRatelimits(checks, decisions)),
      (err: unknown) => {
        this.#limiterFailed(err, entry);
        return this.#charge(entry, input, options, startedAtMs, nowMs, undefined);
      },
    );
  }

  /**
   * A failed limiter: the limiter applies the configured failure mode itself (open answers
   * `failedOpen` decisions, closed throws a retryable service_unavailable Fault, which must reach
   * the caller: swallowing it here would make `redis.rateLimitFailureMode: closed` fail open).
   * Anything else is logged and the verification allowed (fail open); returns undefined then.
   */
  #limiterFailed(err: unknown, entry: VerificationKey): undefined {
    if (err instanceof Fault) throw err;
    this.#logger?.warn({ err, keyId: entry.keyId }, 'rate limiter failed; verification allowed (fail open)');
    return undefined;
  }

  /** After the rate limits: a limited key stops here; credits last, charged only when every other check passed. */
  #charge(
    entry: VerificationKey,
    input: VerifyKeyInput,
    options: VerifyKeyOptions,
    startedAtMs: number,
    nowMs: number,
    checked: CheckedRatelimit[] | undefined,
  ): VerificationResult | Promise<VerificationResult> {
    if (checked !== undefined && anyExceeded(checked)) {
      return this.#finish(entry, 'RATE_LIMITED', input, options, startedAtMs, nowMs, checked, 0, entry.remainingRequests);
    }
    if (entry.remainingRequests === undefined) {
      return this.#finish(entry, 'VALID', input, options, startedAtMs, nowMs, checked, 0, undefined);
    }
    const cost = input.credits?.cost ?? 1;
    return this.#usageLimiter.consume(entry.keyId, cost, this.#loadRemaining).then((decision) => {
      const remaining = decision.remaining ?? undefined;
      if (!decision.valid) return this.#finish(entry, 'USAGE_EXCEEDED', input, options, startedAtMs, nowMs, checked, 0, remaining);
      return this.#finish(entry, 'VALID', input, options, startedAtMs, nowMs, checked, cost, remaining);
    });
  }

  #notFound(): VerificationResult {
    if (this.#outcomes !== undefined) this.#outcomes.NOT_FOUND++;
    return { valid: false, code: 'NOT_FOUND' };
  }

  #parseQuery(text: string): PermissionQuery {
    let query = this.#parsedQueries.get(text);
    if (query === undefined) {
      query = parsePermissionQuery(text);
      if (this.#parsedQueries.size >= DEFAULT_MAX_PARSED_QUERIES) this.#parsedQueries.clear();
      this.#parsedQueries.set(text, query);
    }
    return query;
  }

  /** Auto-applied limits (cost 1) plus the requested ones; a requested name replaces an auto-applied one. */
  #ratelimitChecks(entry: VerificationKey, input: VerifyKeyInput): readonly RatelimitCheck[] {
    const requested = input.ratelimits;
    if (requested === undefined || requested.length === 0) {
      if (entry.autoApplied.length === 0) return NO_CHECKS;
      let checks = this.#autoAppliedChecks.get(entry);
      if (checks === undefined) {
        checks = Object.freeze(entry.autoApplied.map((limit) => Object.freeze({ limit, cost: 1 })));
        this.#autoAppliedChecks.set(entry, checks);
      }
      return checks;
    }
    const requestedNames = new Set(requested.map((limit) => limit.name));
    const checks: RatelimitCheck[] = [];
    for (const limit of entry.autoApplied) if (!requestedNames.has(limit.name)) checks.push({ limit, cost: 1 });
    for (const request of requested) {
      const cost = request.cost ?? 1;
      if (request.limit !== undefined && request.duration !== undefined) {
        // Ad hoc: only with BOTH limit and duration (api.md §14.9); counted per key.
        checks.push({ limit: { id: '', name: request.name, limit: request.limit, duration: request.duration, autoApply: false, identifier: entry.keyId }, cost });
        continue;
      }
      const stored = entry.ratelimit(request.name);
      if (stored === undefined) {
        throw Fault.expected('err:unkey:application:precondition_failed', {
          publicMessage: `Ratelimit '${request.name}' was requested but does not exist for key '${entry.keyId}' nor its identity, and no custom limit and duration were given.`,
        });
      }
      checks.push({ limit: stored, cost });
    }
    return checks;
  }

  /** The limiter's batch for the checks; the auto-applied-only batch of an entry is built once and reused. */
  #ratelimitRequests(entry: VerificationKey, input: VerifyKeyInput, checks: readonly RatelimitCheck[]): readonly RateLimitRequest[] {
    const autoAppliedOnly = input.ratelimits === undefined || input.ratelimits.length === 0;
    if (autoAppliedOnly) {
      const remembered = this.#autoAppliedRequests.get(entry);
      if (remembered !== undefined) return remembered;
    }
    const requests: readonly RateLimitRequest[] = Object.freeze(checks.map(({ limit, cost }) => Object.freeze({
      workspaceId: entry.workspaceId,
      namespace: limit.name,
      identifier: limit.identifier,
      limit: limit.limit,
      durationMs: limit.duration,
      cost,
    })));
    if (autoAppliedOnly) this.#autoAppliedRequests.set(entry, requests);
    return requests;
  }

  /**
   * On-demand migration (api.md §6): look the key up under the foreign hash of the migration's
   * algorithm; when it is pending for exactly this migration, re-store it under our hash.
   */
  async #migrate(rawKey: string, hash: string, migrationId: string, workspaceId: string): Promise<VerificationKey | undefined> {
    const migration = await getKeyMigration(this.#db, workspaceId, migrationId);
    if (migration === undefined) return undefined;
    const foreignHash = migrationLookupHash(rawKey, migration.algorithm);
    if (foreignHash === undefined) return undefined;
    const foreign = await findKeyForVerification(this.#db, foreignHash);
    if (foreign === undefined || foreign.key.pendingMigrationId !== migrationId || foreign.key.workspaceId !== workspaceId) return undefined;
    await updateKey(this.#db, foreign.key.id, { hash, start: startOfExistingKey(rawKey), pendingMigrationId: null }, this.#clock.nowMs());
    // The negative entry cached for our hash a moment ago must not hide the migrated key.
    this.cache.remove(hash);
    return this.lookup(hash);
  }

  #finish(
    entry: VerificationKey,
    code: VerificationCode,
    input: VerifyKeyInput,
    options: VerifyKeyOptions,
    startedAtMs: number,
    nowMs: number,
    ratelimits: CheckedRatelimit[] | undefined,
    spentCredits: number,
    credits: number | undefined,
  ): VerificationResult {
    if (this.#outcomes !== undefined) this.#outcomes[code]++;
    this.#analytics.record({
      requestId: options.requestId ?? '',
      timeMs: nowMs,
      workspaceId: entry.workspaceId,
      keySpaceId: entry.keySpaceId,
      keyId: entry.keyId,
      identityId: entry.identity?.id,
      externalId: entry.identity?.externalId,
      outcome: code,
      // Shared empty list for the common untagged call; sinks only read (serialize) tags.
      tags: input.tags === undefined || input.tags.length === 0 ? (NO_TAGS as string[]) : [...input.tags],
      spentCredits,
      latencyMs: performance.now() - startedAtMs,
      region: this.#region,
    });
    const result: VerificationResult = { valid: code === 'VALID', code, keyId: entry.keyId };
    if (entry.name !== undefined) result.name = entry.name;
    if (entry.meta !== undefined) result.meta = entry.meta;
    if (entry.expiresAtMs !== undefined) result.expires = entry.expiresAtMs;
    if (credits !== undefined) result.credits = credits;
    result.enabled = entry.enabled;
    if (entry.permissions !== undefined) result.permissions = entry.permissions;
    if (entry.roles !== undefined) result.roles = entry.roles;
    if (entry.identity !== undefined) result.identity = entry.identity;
    if (ratelimits !== undefined && ratelimits.length > 0) result.ratelimits = ratelimits;
    return result;
  }
}

/**
 * The status of a cached key at `nowMs` from its stored state (api.md §7 step 3): a root key
 * whose target workspace is gone or a deleted API is NOT_FOUND, a disabled workspace FORBIDDEN,
 * then DISABLED, then EXPIRED (`expires` at or before now).
 */
export function keyStatus(entry: VerificationKey, nowMs: number): KeyStatus {
  const stored = entry.storedStatus;
  if (stored !== 'VALID') return stored;
  if (entry.expiresAtMs !== undefined && entry.expiresAtMs <= nowMs) return 'EXPIRED';
  return 'VALID';
}

/** The limits as reported to the caller, one per check, from the limiter's decisions (same order). */
function checkedRatelimits(checks: readonly RatelimitCheck[], decisions: readonly RateLimitDecision[]): CheckedRatelimit[] {
  const checked: CheckedRatelimit[] = new Array(checks.length);
  for (let index = 0; index < checks.length; index++) {
    const limit = checks[index]!.limit;
    const decision = decisions[index]!;
    checked[index] = {
      id: limit.id,
      name: limit.name,
      limit: limit.limit,
      duration: limit.duration,
      reset: decision.resetMs,
      remaining: decision.remaining,
      exceeded: !decision.passed,
      autoApply: limit.autoApply,
    };
  }
  return checked;
}

function anyExceeded(checked: readonly CheckedRatelimit[]): boolean {
  for (const limit of checked) if (limit.exceeded) return true;
  return false;
}

/** A zero count per verification code. */
function newOutcomeCounts(): Record<VerificationCode, number> {
  const counts = {} as Record<VerificationCode, number>;
  for (const code of VERIFICATION_CODES) counts[code] = 0;
  return counts;
}
