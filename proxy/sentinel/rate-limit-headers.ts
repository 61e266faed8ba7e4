/**
 * `RateLimitHeaders`: the `X-RateLimit-*` / `Retry-After` values of one request, merged across
 * KeyAuth and every RateLimit policy so that the most restrictive result wins (dataplane.md
 * §5.6, §10.19): a denial beats an allow, then the lower remaining, then (between denials) the
 * later reset. `X-RateLimit-Reset` is in Unix seconds; `Retry-After = max(1, ceil(reset - now))`
 * on a denial only. Headers go out on 2xx and on 429.
 */

/** One rate-limit result as the headers show it. */
export interface RateLimitOutcome {
  readonly limit: number;
  readonly remaining: number;
  /** Absolute Unix ms at which the window resets. */
  readonly resetMs: number;
  readonly passed: boolean;
}

/** True when `next` should replace `current` in the headers. */
export function moreRestrictive(current: RateLimitOutcome | undefined, next: RateLimitOutcome): boolean {
  if (current === undefined) return true;
  if (current.passed !== next.passed) return !next.passed;
  if (next.remaining !== current.remaining) return next.remaining < current.remaining;
  return !next.passed && next.resetMs > current.resetMs;
}

/** Where {@link addRateLimitHeaders} writes (a `ProxySession`). */
export interface ResponseHeaderTarget {
  addResponseHeader(name: string, value: string): void;
}

/**
 * Adds the headers for `outcome` to `target` (lower-case names); `nowMs` is read only for the
 * `Retry-After` of a denial. Called per request that checked a limit (no arrays allocated).
 */
export function addRateLimitHeaders(target: ResponseHeaderTarget, outcome: RateLimitOutcome, nowMs: () => number): void {
  target.addResponseHeader('x-ratelimit-limit', String(outcome.limit));
  target.addResponseHeader('x-ratelimit-remaining', String(Math.max(0, outcome.remaining)));
  target.addResponseHeader('x-ratelimit-reset', String(Math.ceil(outcome.resetMs / 1000)));
  if (!outcome.passed) target.addResponseHeader('retry-after', String(Math.max(1, Math.ceil((outcome.resetMs - nowMs()) / 1000))));
}

/** The header pairs for `outcome` at `nowMs` (lower-case names), as {@link addRateLimitHeaders} adds them. */
export function rateLimitHeaderPairs(outcome: RateLimitOutcome, nowMs: number): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  addRateLimitHeaders({ addResponseHeader: (name, value) => pairs.push([name, value]) }, outcome, () => nowMs);
  return pairs;
}
