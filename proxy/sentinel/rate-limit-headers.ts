/**
 * `RateLimitHeaders`: the `X-RateLimit-*` / `Retry-After` values of one request, merged across
 * KeyAuth and every RateLimit policy so that the most restrictive result wins (dataplane.md
 * §5.6, §10.19): a denial beats an allow, then the lower remaining, then (between denials) the
 * later reset. `X-RateLimit-Reset` is in Unix seconds; `Retry-After = max(1, ceil(reset - now))`
 * on a denial only. Headers go out on 2xx and on 429.
 */

/** One rate-limit result as the headers show it. */
export interface RateLimitOutcome {
  limit: number;
  remaining: number;
  /** Absolute Unix ms at which the window resets. */
  resetMs: number;
  passed: boolean;
}

/** True when `next` should replace `current` in the headers. */
export function moreRestrictive(current: RateLimitOutcome | undefined, next: RateLimitOutcome): boolean {
  if (current === undefined) return true;
  if (current.passed !== next.passed) return !next.passed;
  if (next.remaining !== current.remaining) return next.remaining < current.remaining;
  return !next.passed && next.resetMs > current.resetMs;
}

/** The header pairs for `outcome` at `nowMs` (lower-case names). */
export function rateLimitHeaderPairs(outcome: RateLimitOutcome, nowMs: number): Array<[string, string]> {
  const pairs: Array<[string, string]> = [
    ['x-ratelimit-limit', String(outcome.limit)],
    ['x-ratelimit-remaining', String(Math.max(0, outcome.remaining))],
    ['x-ratelimit-reset', String(Math.ceil(outcome.resetMs / 1000))],
  ];
  if (!outcome.passed) pairs.push(['retry-after', String(Math.max(1, Math.ceil((outcome.resetMs - nowMs) / 1000)))]);
  return pairs;
}
