/**
 * Redis rate limiter, strict mode: every decision is one Lua script that evaluates all limits of
 * the batch against the shared counters and consumes either all costs or none, so several nodes
 * on one Redis never overshoot. The time is passed in by the caller (its Clock), not read in Redis,
 * so tests control it; nodes should run NTP, a skew of s ms shifts window edges by s ms.
 * Works against one Redis (or a primary); the keys of one batch may span slots, so not Cluster.
 */
import type { Redis } from 'ioredis';
import { systemClock, type Clock } from '../clock.ts';
import { Fault } from '../fault.ts';
import {
  DEFAULT_RATE_LIMIT_FAILURE_MODE,
  type RateLimitDecision,
  type RateLimiter,
  type RateLimitFailureMode,
  type RateLimitRequest,
} from './interface.ts';
import { counterKey, remainingAfter, validateRateLimitRequest, windowPosition } from './sliding-window.ts';
import { withTimeout } from './with-timeout.ts';

/** How long one decision may wait for Redis before the failure mode applies (the reference's 300 ms). */
export const DEFAULT_RATE_LIMIT_REDIS_TIMEOUT_MS = 300;
/** Extra life of a counter beyond the next window, to absorb clock skew between nodes. */
export const RATE_LIMIT_KEY_TTL_SLACK_MS = 5_000;
/** Most limits in one batch (the API's multiLimit bound). */
export const MAX_RATE_LIMITS_PER_BATCH = 100;

const COMMAND = 'keygateRateLimit';

// KEYS: per limit, the current-window key then the previous-window key.
// ARGV: per limit, 5 numbers: limit, durationMs, cost, elapsedMs, ttlMs.
// Returns each limit's effective count; the costs were consumed iff every effective <= limit.
// The arithmetic mirrors sliding-window.ts exactly (Lua numbers are IEEE doubles, like JS).
const SCRIPT = `
local count = #KEYS / 2
local claimed = {}
local effective = {}
local passed = true
for i = 1, count do
  local base = (i - 1) * 5
  local limit = tonumber(ARGV[base + 1])
  local duration = tonumber(ARGV[base + 2])
  local cost = tonumber(ARGV[base + 3])
  local elapsed = tonumber(ARGV[base + 4])
  local currentKey = KEYS[2 * i - 1]
  local current = tonumber(redis.call('GET', currentKey) or '0') + (claimed[currentKey] or 0)
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local value = current + math.floor((previous * (duration - elapsed)) / duration) + cost
  effective[i] = value
  if value > limit then
    passed = false
  else
    claimed[currentKey] = (claimed[currentKey] or 0) + cost
  end
end
if passed then
  for i = 1, count do
    local base = (i - 1) * 5
    local cost = tonumber(ARGV[base + 3])
    if cost > 0 then
      redis.call('INCRBY', KEYS[2 * i - 1], cost)
      redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[base + 5])
    end
  end
end
return effective
`;

/** Options of {@link RedisRateLimiter}. */
export interface RedisRateLimiterOptions {
  /** A connection owned by the caller (not closed by {@link RedisRateLimiter.close}). */
  redis: Redis;
  /** Prefix of every key, e.g. `keygate:`; lets several deployments share one Redis. */
  keyPrefix?: string;
  clock?: Clock;
  /** Per-decision timeout in ms; default {@link DEFAULT_RATE_LIMIT_REDIS_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Default 'open' ({@link DEFAULT_RATE_LIMIT_FAILURE_MODE}). */
  failureMode?: RateLimitFailureMode;
  /** Called with every backend failure (for logs and metrics); must not throw. */
  onBackendError?: (err: unknown) => void;
}

type RateLimitCommand = (...keysThenArgs: (string | number)[]) => Promise<number[]>;

/** {@link RateLimiter} whose counters live in Redis; one round trip per decision. */
export class RedisRateLimiter implements RateLimiter {
  readonly #redis: Redis;
  readonly #keyPrefix: string;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #failureMode: RateLimitFailureMode;
  readonly #onBackendError: ((err: unknown) => void) | undefined;

  constructor(options: RedisRateLimiterOptions) {
    this.#redis = options.redis;
    this.#keyPrefix = options.keyPrefix ?? 'keygate:';
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_RATE_LIMIT_REDIS_TIMEOUT_MS;
    this.#failureMode = options.failureMode ?? DEFAULT_RATE_LIMIT_FAILURE_MODE;
    this.#onBackendError = options.onBackendError;
    // defineCommand is idempotent per connection; ioredis runs EVALSHA and falls back to EVAL.
    if (typeof (this.#redis as unknown as Record<string, unknown>)[COMMAND] !== 'function') {
      this.#redis.defineCommand(COMMAND, { lua: SCRIPT });
    }
  }

  async limit(requests: readonly RateLimitRequest[]): Promise<RateLimitDecision[]> {
    if (requests.length > MAX_RATE_LIMITS_PER_BATCH) {
      throw Fault.expected('err:unkey:application:invalid_input', { publicMessage: `At most ${MAX_RATE_LIMITS_PER_BATCH} rate limits per call.` });
    }
    const costs = requests.map(validateRateLimitRequest);
    if (requests.length === 0) return [];
    const nowMs = this.#clock.nowMs();
    const keys: string[] = [];
    const args: number[] = [];
    for (let index = 0; index < requests.length; index++) {
      const request = requests[index]!;
      const { sequence, elapsedMs } = windowPosition(nowMs, request.durationMs);
      const base = this.#keyPrefix + 'rl:' + counterKey(request) + ':';
      keys.push(base + sequence, base + (sequence - 1));
      const ttlMs = 2 * request.durationMs - elapsedMs + RATE_LIMIT_KEY_TTL_SLACK_MS;
      args.push(request.limit, request.durationMs, costs[index]!, elapsedMs, ttlMs);
    }

    let effectives: number[];
    try {
      const command = (this.#redis as unknown as Record<string, RateLimitCommand>)[COMMAND]!;
      effectives = await withTimeout(command.call(this.#redis, keys.length, ...keys, ...args), this.#timeoutMs);
    } catch (err) {
      return this.#onFailure(err, requests, costs, nowMs);
    }

    let batchPassed = true;
    for (let index = 0; index < requests.length; index++) if (effectives[index]! > requests[index]!.limit) batchPassed = false;
    return requests.map((request, index) => {
      const effective = effectives[index]!;
      const passed = effective <= request.limit;
      const remaining = !passed ? 0 : batchPassed ? remainingAfter(request.limit, effective) : remainingAfter(request.limit, effective - costs[index]!);
      return { passed, limit: request.limit, remaining, resetMs: windowPosition(nowMs, request.durationMs).resetMs };
    });
  }

  /** Nothing to release: the connection belongs to the caller. */
  async close(): Promise<void> {}

  #onFailure(err: unknown, requests: readonly RateLimitRequest[], costs: number[], nowMs: number): RateLimitDecision[] {
    try {
      this.#onBackendError?.(err);
    } catch {
      // A broken observer must not change the decision.
    }
    if (this.#failureMode === 'closed') {
      throw new Fault('err:unkey:application:service_unavailable', {
        source: 'upstream',
        retryable: true,
        publicMessage: 'The rate limit store is unavailable.',
        internalMessage: `redis rate limit failed: ${err instanceof Error ? err.message : String(err)}`,
        cause: err,
      });
    }
    return requests.map((request, index) => ({
      passed: true,
      limit: request.limit,
      remaining: remainingAfter(request.limit, costs[index]!),
      resetMs: windowPosition(nowMs, request.durationMs).resetMs,
      failedOpen: true,
    }));
  }
}
