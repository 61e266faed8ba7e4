/**
 * The sliding-window formula over fixed buckets (spec api.md §8):
 *   sequence        = floor(now / duration)
 *   elapsedMs       = now - sequence * duration
 *   effective       = current + floor(previous * (duration - elapsedMs) / duration) + cost
 *   passed          = effective <= limit
 *   remaining       = passed ? limit - effective : 0
 *   reset           = (sequence + 1) * duration          (absolute ms: end of the current window)
 * The previous window is weighted by (1 - elapsedFraction) and truncated. The weighting is done
 * as one multiply and one divide so that the Lua copy in `redis.ts` gives bit-identical results.
 */
import { Fault } from '../fault.ts';
import type { RateLimitRequest } from './interface.ts';

/** Where the request falls in fixed windows of `durationMs`. */
export interface WindowPosition {
  readonly sequence: number;
  readonly elapsedMs: number;
  readonly resetMs: number;
}

/** The fixed window containing `nowMs`. */
export function windowPosition(nowMs: number, durationMs: number): WindowPosition {
  const sequence = Math.floor(nowMs / durationMs);
  return { sequence, elapsedMs: nowMs - sequence * durationMs, resetMs: (sequence + 1) * durationMs };
}

/** `current + weighted previous + cost`: the load the request would bring the window to. */
export function effectiveCount(currentCount: number, previousCount: number, durationMs: number, elapsedMs: number, cost: number): number {
  return currentCount + Math.floor((previousCount * (durationMs - elapsedMs)) / durationMs) + cost;
}

/** Units left after a pass: `limit - effective`, never negative. */
export function remainingAfter(limit: number, effective: number): number {
  return effective >= limit ? 0 : limit - effective;
}

/** Longest window accepted (30 days, the API's bound), so counters stay in safe integer range. */
export const MAX_RATE_LIMIT_DURATION_MS = 2_592_000_000;

/**
 * Checks one request's numbers and returns its cost (default 1). Throws `Fault(invalid_input)` on
 * a non-integer or negative limit or cost, a duration outside 1..30 days, or an empty namespace
 * or identifier. Limit 0 is allowed (everything with a cost is denied), unlike the reference's 500.
 */
export function validateRateLimitRequest(request: RateLimitRequest): number {
  const cost = request.cost ?? 1;
  const problem =
    !Number.isSafeInteger(request.limit) || request.limit < 0 ? 'limit must be an integer >= 0'
    : !Number.isSafeInteger(cost) || cost < 0 ? 'cost must be an integer >= 0'
    : !Number.isSafeInteger(request.durationMs) || request.durationMs < 1 || request.durationMs > MAX_RATE_LIMIT_DURATION_MS
      ? `durationMs must be an integer between 1 and ${MAX_RATE_LIMIT_DURATION_MS}`
    : request.namespace.length === 0 || request.identifier.length === 0 ? 'namespace and identifier must not be empty'
    : undefined;
  if (problem !== undefined) throw Fault.expected('err:unkey:application:invalid_input', { publicMessage: `Invalid rate limit: ${problem}.` });
  return cost;
}

/**
 * The counter's identity without its window: workspace, namespace, identifier and duration,
 * length-prefixed so that no choice of identifier can collide with another counter.
 */
export function counterKey(request: RateLimitRequest): string {
  const { workspaceId, namespace, identifier } = request;
  return `${workspaceId.length}:${workspaceId}:${namespace.length}:${namespace}:${identifier.length}:${identifier}:${request.durationMs}`;
}
