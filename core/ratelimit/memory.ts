/**
 * In-process rate limiter for one node: a bounded map of window counters. Decisions are
 * synchronous and all-or-nothing (nothing else runs between the check and the commit).
 */
import { systemClock, type Clock } from '../clock.ts';
import type { RateLimitDecision, RateLimiter, RateLimitRequest } from './interface.ts';
import { counterKey, effectiveCount, remainingAfter, validateRateLimitRequest, windowPosition } from './sliding-window.ts';

/** Counters kept at most (each ~150 bytes). At the bound the oldest windows are evicted first. */
export const DEFAULT_MAX_RATE_LIMIT_WINDOWS = 500_000;
/** Entries examined for expiry per insert, so clean-up stays incremental and bounded. */
const EXPIRY_SWEEP_PER_INSERT = 4;

/** Options of {@link MemoryRateLimiter}. */
export interface MemoryRateLimiterOptions {
  clock?: Clock;
  /**
   * Bound on live counters (default {@link DEFAULT_MAX_RATE_LIMIT_WINDOWS}). Evicting a live counter
   * forgets its count, so keep the bound above the number of identifiers active per window.
   */
  maxWindows?: number;
}

/**
 * A frozen request made ready for repeated decisions by {@link MemoryRateLimiter.prepare}: keep it
 * and pass it to {@link MemoryRateLimiter.limitPreparedNow} instead of the request.
 */
export interface PreparedRateLimit {
  readonly request: RateLimitRequest;
}

/**
 * What a request contributes besides its numbers: its validated cost and its counter's key, and
 * the counter it last found, so a repeated decision reads the counter without a map lookup.
 */
interface ValidatedRequest extends PreparedRateLimit {
  readonly cost: number;
  readonly key: string;
  /** The counter of `key` as last seen; trusted only while it is not `removed`. */
  counter: WindowCounter | undefined;
}

/** One counter: the counts of its current and previous fixed window. */
interface WindowCounter {
  sequence: number;
  current: number;
  previous: number;
  /** End of the next window: after that both counts are irrelevant. */
  expiresAtMs: number;
  /** Set when the counter leaves the map (window rolled over, evicted, expired, limiter closed). */
  removed: boolean;
}

/** {@link RateLimiter} over process memory. Called per request; O(number of limits). */
export class MemoryRateLimiter implements RateLimiter {
  readonly #clock: Clock;
  readonly #maxWindows: number;
  // Insertion order ≈ order of each counter's latest window start: a counter is re-inserted when
  // its window rolls over, so the head of the map holds the counters that went quiet first.
  readonly #counters = new Map<string, WindowCounter>();
  // Counter key and cost of FROZEN requests (callers that reuse one request object per limit, such
  // as the verifier's auto-applied batches and the gateway's RateLimit policy), so a repeated
  // request builds no key string and hashes none: the key is the same string object every time.
  // Only frozen objects: a caller that changed a request between calls must never count against
  // the counter of what it used to say. Weak: entries go with their requests.
  readonly #frozenRequests = new WeakMap<RateLimitRequest, ValidatedRequest>();

  constructor(options: MemoryRateLimiterOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#maxWindows = options.maxWindows ?? DEFAULT_MAX_RATE_LIMIT_WINDOWS;
  }

  /** Number of live counters (for metrics and tests). */
  get size(): number {
    return this.#counters.size;
  }

  limit(requests: readonly RateLimitRequest[]): Promise<RateLimitDecision[]> {
    // Not `async` (no extra promise per call); a malformed request still arrives as a rejection.
    try {
      return Promise.resolve(this.limitNow(requests));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The synchronous core of {@link limit}, for in-process callers that want no promise. Throws what `limit` rejects with. */
  limitNow(requests: readonly RateLimitRequest[]): RateLimitDecision[] {
    const nowMs = this.#clock.nowMs();
    if (requests.length === 1) return [this.#limitOne(this.#validated(requests[0]!), nowMs)];
    const validated = requests.map((request) => this.#validated(request));
    const costs = validated.map((item) => item.cost);
    const keys = validated.map((item) => item.key);
    // Units this batch already claimed per counter, so a counter named twice sees both costs.
    const claimed = requests.length > 1 ? new Map<string, number>() : undefined;
    const effectives: number[] = [];
    let batchPassed = true;

    for (let index = 0; index < requests.length; index++) {
      const request = requests[index]!;
      const { sequence, elapsedMs } = windowPosition(nowMs, request.durationMs);
      const counter = this.#counters.get(keys[index]!);
      let current = 0;
      let previous = 0;
      if (counter !== undefined) {
        if (counter.sequence === sequence) ({ current, previous } = counter);
        else if (counter.sequence === sequence - 1) previous = counter.current;
      }
      current += claimed?.get(keys[index]!) ?? 0;
      const effective = effectiveCount(current, previous, request.durationMs, elapsedMs, costs[index]!);
      effectives.push(effective);
      if (effective > request.limit) batchPassed = false;
      else claimed?.set(keys[index]!, (claimed.get(keys[index]!) ?? 0) + costs[index]!);
    }

    if (batchPassed) {
      for (let index = 0; index < requests.length; index++) {
        if (costs[index]! > 0) this.#consume(keys[index]!, requests[index]!.durationMs, nowMs, costs[index]!);
      }
    }

    return requests.map((request, index) => {
      const effective = effectives[index]!;
      const passed = effective <= request.limit;
      // In a failed batch a passing item's cost was not consumed: report it refunded.
      const remaining = !passed ? 0 : batchPassed ? remainingAfter(request.limit, effective) : remainingAfter(request.limit, effective - costs[index]!);
      return { passed, limit: request.limit, remaining, resetMs: windowPosition(nowMs, request.durationMs).resetMs };
    });
  }

  /**
   * One limit, decided now: the same decision as `limitNow([request])[0]`, without the arrays.
   * For in-process callers with a single limit per request (the gateway's RateLimit policy); pass
   * the same frozen request object for the same limit to skip building its counter key. Throws
   * what `limit` rejects with.
   */
  limitOneNow(request: RateLimitRequest): RateLimitDecision {
    return this.#limitOne(this.#validated(request), this.#clock.nowMs());
  }

  /**
   * Validates a FROZEN request once (throws what `limit` rejects with, or a TypeError for a
   * request that is not frozen) for {@link limitPreparedNow}. Callers that decide the same limit
   * again and again (the gateway's RateLimit policy, one per identifier) keep the result.
   */
  prepare(request: RateLimitRequest): PreparedRateLimit {
    if (!Object.isFrozen(request)) throw new TypeError('MemoryRateLimiter.prepare: the request must be frozen');
    return this.#validated(request);
  }

  /**
   * `limitOneNow(prepared.request)` without looking anything up: the prepared request carries its
   * key and cost, and the counter it last used while that counter is still current. Called per request.
   */
  limitPreparedNow(prepared: PreparedRateLimit): RateLimitDecision {
    return this.#limitOne(prepared as ValidatedRequest, this.#clock.nowMs());
  }

  /** A batch of one (the common case): the same decision as the general path, without its per-batch arrays. */
  #limitOne(validated: ValidatedRequest, nowMs: number): RateLimitDecision {
    const { cost, key, request } = validated;
    const durationMs = request.durationMs;
    const sequence = Math.floor(nowMs / durationMs);
    const elapsedMs = nowMs - sequence * durationMs;
    let counter = validated.counter;
    if (counter === undefined || counter.removed) validated.counter = counter = this.#counters.get(key);
    let current = 0;
    let previous = 0;
    if (counter !== undefined) {
      if (counter.sequence === sequence) {
        current = counter.current;
        previous = counter.previous;
      } else if (counter.sequence === sequence - 1) previous = counter.current;
    }
    const effective = effectiveCount(current, previous, durationMs, elapsedMs, cost);
    const passed = effective <= request.limit;
    if (passed && cost > 0) {
      if (counter !== undefined && counter.sequence === sequence) counter.current += cost;
      else this.#consume(key, durationMs, nowMs, cost);
    }
    return { passed, limit: request.limit, remaining: passed ? remainingAfter(request.limit, effective) : 0, resetMs: (sequence + 1) * durationMs };
  }

  async close(): Promise<void> {
    for (const counter of this.#counters.values()) counter.removed = true;
    this.#counters.clear();
  }

  /** The request's cost (validated) and counter key; remembered for frozen requests. */
  #validated(request: RateLimitRequest): ValidatedRequest {
    const remembered = this.#frozenRequests.get(request);
    if (remembered !== undefined) return remembered;
    const validated: ValidatedRequest = { request, cost: validateRateLimitRequest(request), key: counterKey(request), counter: undefined };
    if (Object.isFrozen(request)) this.#frozenRequests.set(request, validated);
    return validated;
  }

  #consume(key: string, durationMs: number, nowMs: number, cost: number): void {
    const { sequence } = windowPosition(nowMs, durationMs);
    const counter = this.#counters.get(key);
    if (counter !== undefined && counter.sequence === sequence) {
      counter.current += cost;
      return;
    }
    const previous = counter !== undefined && counter.sequence === sequence - 1 ? counter.current : 0;
    if (counter !== undefined) {
      counter.removed = true;
      this.#counters.delete(key);
    } else {
      this.#makeRoom(nowMs);
    }
    this.#counters.set(key, { sequence, current: cost, previous, expiresAtMs: (sequence + 2) * durationMs, removed: false });
  }

  #makeRoom(nowMs: number): void {
    let examined = 0;
    for (const [key, counter] of this.#counters) {
      if (examined++ >= EXPIRY_SWEEP_PER_INSERT) break;
      if (counter.expiresAtMs <= nowMs) {
        counter.removed = true;
        this.#counters.delete(key);
      }
    }
    while (this.#counters.size >= this.#maxWindows) {
      const oldest = this.#counters.entries().next().value;
      if (oldest === undefined) break;
      oldest[1].removed = true;
      this.#counters.delete(oldest[0]);
    }
  }
}
