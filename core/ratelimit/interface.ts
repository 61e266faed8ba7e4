/**
 * The rate-limiter contract (spec api.md §8, pitfalls §14.7–8). One call decides a batch of
 * limits ALL-OR-NOTHING: either every limit passes and every cost is consumed, or nothing is
 * consumed. Implementations: `memory.ts` (one node) and `redis.ts` (several nodes, strict).
 */

/** One limit to check and, if the whole batch passes, consume. */
export interface RateLimitRequest {
  /** Tenant the counter belongs to. */
  readonly workspaceId: string;
  /** Counter namespace: a namespace ID for ratelimit.limit, the limit's name for verifyKey. */
  readonly namespace: string;
  /** Who is limited: a user-chosen identifier, a key ID or an identity ID. */
  readonly identifier: string;
  /** Most units allowed per window (integer ≥ 0). */
  readonly limit: number;
  /** Window length in ms (integer ≥ 1; the API enforces ≥ 1000). */
  readonly durationMs: number;
  /** Units this request consumes (integer ≥ 0); default 1. Cost 0 checks without consuming. */
  readonly cost?: number;
}

/** The outcome of one limit. */
export interface RateLimitDecision {
  /** This limit's own check (in a failed batch a passing item still says true, but nothing was consumed). */
  readonly passed: boolean;
  readonly limit: number;
  /** Units left after this request; 0 on a deny; with the cost refunded when the batch failed. */
  readonly remaining: number;
  /** Absolute Unix ms at which the current fixed window ends (not a duration). */
  readonly resetMs: number;
  /** True when the backend failed and the limiter let the request through (fail open). */
  readonly failedOpen?: boolean;
}

/** What to do when the shared backend (Redis) fails or times out. */
export type RateLimitFailureMode = 'open' | 'closed';

/**
 * Default for rate limits: fail OPEN (let requests through), as the reference does: an outage
 * of the counter store should not take the product down with it. Credits default the other way.
 */
export const DEFAULT_RATE_LIMIT_FAILURE_MODE: RateLimitFailureMode = 'open';

/** A rate limiter. Safe to call concurrently; every implementation passes one shared test suite. */
export interface RateLimiter {
  /**
   * Decides the batch atomically; the result has one decision per request, in order. Throws
   * `Fault(invalid_input)` on a malformed request and, in fail-closed mode, `Fault(service_unavailable)`
   * when the backend is down. Called once per request that has limits.
   */
  limit(requests: readonly RateLimitRequest[]): Promise<RateLimitDecision[]>;
  /** Releases timers and connections this limiter owns. */
  close(): Promise<void>;
}

/** True when every decision passed: the verdict of a batch. */
export function allPassed(decisions: readonly RateLimitDecision[]): boolean {
  for (const decision of decisions) if (!decision.passed) return false;
  return true;
}
