/**
 * `WorkspaceThrottle`: the per-workspace request throttle of protected routes (spec api.md §5.2).
 * Called once per authenticated request, right after root-key authentication.
 *
 * The limit is `limits.api_requests_count_max_per_minute`, read through an SWR cache (bus name
 * {@link WORKSPACE_LIMITS_CACHE_NAME}): NULL or no row = no throttle, 0 = every request is
 * throttled. Counting uses the service's one RateLimiter with namespace
 * {@link WORKSPACE_THROTTLE_NAMESPACE}, identifier = workspace id and a 60 s window, so several
 * API nodes on one Redis share the budget.
 *
 * Headers `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the window
 * ends) are set on every throttled workspace's response, success or error; a denial adds
 * `Retry-After` and throws 429 `workspace_rate_limited`. A failing limits lookup or limiter lets
 * the request through (fail open, logged): an outage of the counter store must not stop the API.
 */
import { SwrCache } from '../../core/cache/swr-cache.ts';
import type { Clock } from '../../core/clock.ts';
import type { Database } from '../../core/db/database.ts';
import { getWorkspaceLimits } from '../../core/db/queries/workspaces.ts';
import { Fault } from '../../core/fault.ts';
import type { Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { RateLimiter } from '../../core/ratelimit/interface.ts';

/** Bus name of the workspace-limits cache (keys are workspace ids). */
export const WORKSPACE_LIMITS_CACHE_NAME = 'workspace_limits';
/** Rate-limiter namespace of the throttle's counters. */
export const WORKSPACE_THROTTLE_NAMESPACE = 'workspace.ratelimit';
/** The throttle's window, in ms (the setting is per minute). */
export const WORKSPACE_THROTTLE_WINDOW_MS = 60_000;
/** Fresh / stale windows of the limits cache, in ms: a changed limit applies within a minute even without a bus. */
export const WORKSPACE_LIMITS_CACHE_FRESH_MS = 60_000;
export const WORKSPACE_LIMITS_CACHE_STALE_MS = 300_000;
/** Most workspaces whose limits are cached. */
export const WORKSPACE_LIMITS_CACHE_MAX_ENTRIES = 100_000;

/** The cached limit of a workspace: a number of requests per minute, or `null` for no throttle. */
export type WorkspaceRequestLimit = { readonly perMinute: number | null };

const NO_THROTTLE: WorkspaceRequestLimit = Object.freeze({ perMinute: null });

/** Where the throttle's headers go: the request's context (`RequestContext` fits), so they reach success and error replies. */
export interface ResponseHeaderSink {
  setResponseHeader(name: string, value: string): void;
}

/** Options of {@link WorkspaceThrottle}. */
export interface WorkspaceThrottleOptions {
  db: Database;
  rateLimiter: RateLimiter;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
}

/** The throttle; one per `ApiDependencies`. */
export class WorkspaceThrottle {
  /** Limits by workspace id; bound to the bus under {@link WORKSPACE_LIMITS_CACHE_NAME}. */
  readonly cache: SwrCache<WorkspaceRequestLimit>;
  readonly #db: Database;
  readonly #rateLimiter: RateLimiter;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #load = async (workspaceId: string): Promise<WorkspaceRequestLimit> => {
    const limits = await getWorkspaceLimits(this.#db, workspaceId);
    const perMinute = limits?.apiRequestsCountMaxPerMinute;
    return perMinute === undefined ? NO_THROTTLE : { perMinute };
  };

  constructor(options: WorkspaceThrottleOptions) {
    this.#db = options.db;
    this.#rateLimiter = options.rateLimiter;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.cache = new SwrCache<WorkspaceRequestLimit>({
      name: WORKSPACE_LIMITS_CACHE_NAME,
      freshMs: WORKSPACE_LIMITS_CACHE_FRESH_MS,
      staleMs: WORKSPACE_LIMITS_CACHE_STALE_MS,
      maxEntries: WORKSPACE_LIMITS_CACHE_MAX_ENTRIES,
      clock: options.clock,
      metrics: options.metrics,
    });
  }

  /**
   * Counts one request of `workspaceId`. Sets the RateLimit-* headers on `reply` when the
   * workspace is throttled; throws 429 `workspace_rate_limited` (after setting `Retry-After`) on
   * denial. Never throws for a failing lookup or limiter. Returns `undefined` when it could
   * decide at once (a cached workspace without a limit: the per-request common case), otherwise a
   * promise to await.
   */
  check(workspaceId: string, reply: ResponseHeaderSink): Promise<void> | undefined {
    // The common case (a cached, unthrottled workspace) answers synchronously: no promise per request.
    const cached = this.cache.getSync(workspaceId, this.#load);
    if (cached !== SwrCache.MISS && (cached?.perMinute ?? null) === null) return undefined;
    return this.#check(workspaceId, reply, cached);
  }

  async #check(workspaceId: string, reply: ResponseHeaderSink, cached: WorkspaceRequestLimit | undefined | typeof SwrCache.MISS): Promise<void> {
    let limit: WorkspaceRequestLimit | undefined;
    try {
      limit = cached === SwrCache.MISS ? await this.cache.get(workspaceId, this.#load) : cached;
    } catch (err) {
      this.#logger.warn({ err, workspaceId }, 'reading workspace limits failed; request allowed (fail open)');
      return;
    }
    const perMinute = limit?.perMinute ?? null;
    if (perMinute === null) return;

    let remaining = 0;
    let resetMs: number;
    let passed = false;
    if (perMinute === 0) {
      // 0 means "always throttled": no counter to consult, the window just names when to retry.
      resetMs = (Math.floor(this.#clock.nowMs() / WORKSPACE_THROTTLE_WINDOW_MS) + 1) * WORKSPACE_THROTTLE_WINDOW_MS;
    } else {
      try {
        const [decision] = await this.#rateLimiter.limit([
          { workspaceId, namespace: WORKSPACE_THROTTLE_NAMESPACE, identifier: workspaceId, limit: perMinute, durationMs: WORKSPACE_THROTTLE_WINDOW_MS, cost: 1 },
        ]);
        if (decision === undefined || decision.failedOpen === true) return;
        remaining = decision.remaining;
        resetMs = decision.resetMs;
        passed = decision.passed;
      } catch (err) {
        this.#logger.warn({ err, workspaceId }, 'workspace throttle failed; request allowed (fail open)');
        return;
      }
    }
    const resetSeconds = String(Math.max(0, Math.ceil((resetMs - this.#clock.nowMs()) / 1000)));
    reply.setResponseHeader('RateLimit-Limit', String(perMinute));
    reply.setResponseHeader('RateLimit-Remaining', String(remaining));
    reply.setResponseHeader('RateLimit-Reset', resetSeconds);
    if (passed) return;
    reply.setResponseHeader('Retry-After', resetSeconds);
    throw Fault.expected('err:user:too_many_requests:workspace_rate_limited', {
      publicMessage: `The workspace exceeded its limit of ${perMinute} API requests per minute; retry after ${resetSeconds} s.`,
    });
  }
}
