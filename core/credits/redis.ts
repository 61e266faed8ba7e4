/**
 * Redis usage limiter for several nodes (spec api.md §7 step 11): one Lua script does
 * "initialise from the database value if missing (SET NX semantics, with a TTL), then decrement
 * only if the remaining covers the cost", atomically, so concurrent nodes never over-spend while
 * the counter lives. Consumed amounts go back to the database through the write-back queue. When
 * the counter expires (default 60 s) the next consume reloads it from the database, minus what this
 * node has not written back yet.
 */
import type { Redis } from 'ioredis';
import { Fault } from '../fault.ts';
import { withTimeout } from '../ratelimit/with-timeout.ts';
import {
  assertCreditCost,
  DEFAULT_USAGE_FAILURE_MODE,
  type LoadRemaining,
  type UsageDecision,
  type UsageFailureMode,
  type UsageLimiter,
} from './interface.ts';
import { DEFAULT_CREDITS_COUNTER_TTL_MS, type UsageLimiterOptions } from './memory.ts';
import { WriteBackQueue } from './write-back-queue.ts';

/** How long one Redis call may take before the failure mode applies, in ms. */
export const DEFAULT_CREDITS_REDIS_TIMEOUT_MS = 500;

const COMMAND = 'keygateConsumeCredits';
const UNLIMITED = 'unlimited';
const STATUS_INSUFFICIENT = 0;
const STATUS_CONSUMED = 1;
const STATUS_UNLIMITED = 2;
const STATUS_MISSING = -1;

// KEYS[1]: the counter. ARGV: cost, initial value ('' = do not initialise), ttlMs.
// Returns {status, value}: consumed → remaining after; insufficient → remaining; missing; unlimited.
const SCRIPT = `
local value = redis.call('GET', KEYS[1])
if not value then
  if ARGV[2] == '' then return {${STATUS_MISSING}, 0} end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  value = ARGV[2]
end
if value == '${UNLIMITED}' then return {${STATUS_UNLIMITED}, 0} end
local current = tonumber(value)
local cost = tonumber(ARGV[1])
if current >= cost then
  if cost > 0 then current = redis.call('DECRBY', KEYS[1], cost) end
  return {${STATUS_CONSUMED}, current}
end
return {${STATUS_INSUFFICIENT}, current}
`;

/** Options of {@link RedisUsageLimiter}. */
export interface RedisUsageLimiterOptions extends UsageLimiterOptions {
  /** A connection owned by the caller (not closed by {@link RedisUsageLimiter.close}). */
  redis: Redis;
  /** Prefix of every key, e.g. `keygate:`. Counters are `<prefix>credits:<keyId>`. */
  keyPrefix?: string;
  timeoutMs?: number;
  /** Default 'closed' ({@link DEFAULT_USAGE_FAILURE_MODE}). */
  failureMode?: UsageFailureMode;
  /**
   * Used instead of the failure mode when Redis fails: a direct read-check-decrement in the
   * database (as the reference does). Its result is final; nothing is queued for write-back.
   */
  databaseFallback?: (keyId: string, cost: number) => Promise<UsageDecision>;
  /** Called with every Redis failure (logs, metrics); must not throw. */
  onBackendError?: (err: unknown) => void;
}

type ConsumeCommand = (key: string, cost: number, initial: string, ttlMs: number) => Promise<[number, number]>;

/** Marks a failure of Redis itself, as opposed to one of the database loader. */
class RedisFailure {
  readonly cause: unknown;
  constructor(cause: unknown) {
    this.cause = cause;
  }
}

/** {@link UsageLimiter} whose counters live in Redis. One round trip per consume when warm. */
export class RedisUsageLimiter implements UsageLimiter {
  readonly #redis: Redis;
  readonly #keyPrefix: string;
  readonly #counterTtlMs: number;
  readonly #timeoutMs: number;
  readonly #failureMode: UsageFailureMode;
  readonly #databaseFallback: RedisUsageLimiterOptions['databaseFallback'];
  readonly #onBackendError: ((err: unknown) => void) | undefined;
  readonly #queue: WriteBackQueue;
  readonly #loads = new Map<string, Promise<number | null>>();

  constructor(options: RedisUsageLimiterOptions) {
    this.#redis = options.redis;
    this.#keyPrefix = options.keyPrefix ?? 'keygate:';
    this.#counterTtlMs = options.counterTtlMs ?? DEFAULT_CREDITS_COUNTER_TTL_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_CREDITS_REDIS_TIMEOUT_MS;
    this.#failureMode = options.failureMode ?? DEFAULT_USAGE_FAILURE_MODE;
    this.#databaseFallback = options.databaseFallback;
    this.#onBackendError = options.onBackendError;
    this.#queue = new WriteBackQueue(options);
    if (typeof (this.#redis as unknown as Record<string, unknown>)[COMMAND] !== 'function') {
      this.#redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: SCRIPT });
    }
  }

  /** The write-back queue (for metrics: pending keys, dropped credits). */
  get writeBack(): WriteBackQueue {
    return this.#queue;
  }

  async consume(keyId: string, cost: number, loadRemaining: LoadRemaining): Promise<UsageDecision> {
    assertCreditCost(cost);
    // Admission before spending: a full queue refuses (or waits) while nothing is spent yet.
    if (cost > 0 && !this.#queue.hasRoomFor(keyId)) await this.#queue.makeRoomFor(keyId);
    const key = this.#keyPrefix + 'credits:' + keyId;
    try {
      let [status, value] = await this.#run(key, cost, '');
      if (status === STATUS_MISSING) {
        // Database errors propagate as they are: they are not a Redis outage.
        // A write-back can land while the load reads: subtract the larger of the unsaved amounts
        // before and after the read, so a credit is never spent twice (see memory.ts).
        const unsavedBefore = this.#queue.unsaved(keyId);
        const stored = await this.#loadOnce(keyId, loadRemaining);
        const unsaved = Math.max(unsavedBefore, this.#queue.unsaved(keyId));
        const initial = stored === null ? UNLIMITED : String(Math.max(0, stored - unsaved));
        [status, value] = await this.#run(key, cost, initial);
      }
      if (status === STATUS_UNLIMITED) return { valid: true, remaining: null };
      if (status === STATUS_CONSUMED) {
        this.#queue.add(keyId, cost);
        return { valid: true, remaining: value };
      }
      return { valid: false, remaining: value };
    } catch (err) {
      if (!(err instanceof RedisFailure)) throw err;
      return this.#onFailure(err.cause, keyId, cost);
    }
  }

  async reset(keyId: string): Promise<void> {
    // Later consumes on this node must not join a load that started before the database change.
    this.#loads.delete(keyId);
    await this.#queue.flushKey(keyId);
    try {
      await withTimeout(this.#redis.del(this.#keyPrefix + 'credits:' + keyId), this.#timeoutMs);
    } catch (err) {
      this.#report(err);
      throw new Fault('err:unkey:application:service_unavailable', {
        source: 'upstream',
        retryable: true,
        publicMessage: 'The credits store is unavailable.',
        internalMessage: `could not drop the credits counter: ${err instanceof Error ? err.message : String(err)}`,
        cause: err,
      });
    }
  }

  flush(): Promise<void> {
    return this.#queue.flush();
  }

  async close(): Promise<void> {
    await this.#queue.close();
  }

  /** One database load per key at a time on this node, so a burst of misses is one query. */
  #loadOnce(keyId: string, loadRemaining: LoadRemaining): Promise<number | null> {
    let load = this.#loads.get(keyId);
    if (load === undefined) {
      const started: Promise<number | null> = loadRemaining(keyId).finally(() => {
        if (this.#loads.get(keyId) === started) this.#loads.delete(keyId);
      });
      load = started;
      this.#loads.set(keyId, load);
    }
    return load;
  }

  async #run(key: string, cost: number, initial: string): Promise<[number, number]> {
    try {
      const command = (this.#redis as unknown as Record<string, ConsumeCommand>)[COMMAND]!;
      const [status, value] = await withTimeout(command.call(this.#redis, key, cost, initial, this.#counterTtlMs), this.#timeoutMs);
      return [Number(status), Number(value)];
    } catch (err) {
      throw new RedisFailure(err);
    }
  }

  async #onFailure(err: unknown, keyId: string, cost: number): Promise<UsageDecision> {
    this.#report(err);
    if (this.#databaseFallback !== undefined) return this.#databaseFallback(keyId, cost);
    if (this.#failureMode === 'open') return { valid: true, remaining: null };
    throw new Fault('err:unkey:application:service_unavailable', {
      source: 'upstream',
      retryable: true,
      publicMessage: 'The credits store is unavailable.',
      internalMessage: `redis credits failed: ${err instanceof Error ? err.message : String(err)}`,
      cause: err,
    });
  }

  #report(err: unknown): void {
    try {
      this.#onBackendError?.(err);
    } catch {
      // A broken observer must not change the outcome.
    }
  }
}
