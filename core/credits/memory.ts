/**
 * In-process usage limiter for one node: counters in a bounded map, loaded from the database on
 * first use and kept for `counterTtlMs` (so a refill or an edit made elsewhere shows up within
 * that time), consumed amounts written back through a {@link WriteBackQueue}.
 */
import { systemClock, type Clock } from '../clock.ts';
import { Fault } from '../fault.ts';
import { assertCreditCost, type LoadRemaining, type PersistConsumedCredits, type UsageDecision, type UsageLimiter } from './interface.ts';
import { WriteBackQueue, type WriteBackOverflowPolicy } from './write-back-queue.ts';

/** How long a loaded counter is trusted before it is reloaded from the database, in ms. */
export const DEFAULT_CREDITS_COUNTER_TTL_MS = 60_000;
/** Most counters kept in memory; the oldest are dropped first (they reload on next use). */
export const DEFAULT_CREDITS_MAX_COUNTERS = 100_000;

/** Options shared by the usage-limiter implementations. */
export interface UsageLimiterOptions {
  persist: PersistConsumedCredits;
  clock?: Clock;
  counterTtlMs?: number;
  flushIntervalMs?: number;
  maxPendingKeys?: number;
  overflowPolicy?: WriteBackOverflowPolicy;
  onPersistError?: (err: unknown) => void;
}

/** Options of {@link MemoryUsageLimiter}. */
export interface MemoryUsageLimiterOptions extends UsageLimiterOptions {
  maxCounters?: number;
}

/** One running database load; identity tells a detached (reset) load from the current one. */
interface LoadTicket {
  promise: Promise<Counter> | undefined;
}

/** Attempts to find room in a full write-back queue before giving up (other keys may refill it). */
const MAX_ROOM_ATTEMPTS = 3;

interface Counter {
  remaining: number | null;
  expiresAtMs: number;
}

/** {@link UsageLimiter} in process memory. Decisions are synchronous once the counter is loaded. */
export class MemoryUsageLimiter implements UsageLimiter {
  readonly #clock: Clock;
  readonly #counterTtlMs: number;
  readonly #maxCounters: number;
  readonly #queue: WriteBackQueue;
  readonly #counters = new Map<string, Counter>();
  /** One database load per key at a time; a reset detaches the running load. */
  readonly #loads = new Map<string, LoadTicket>();

  constructor(options: MemoryUsageLimiterOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#counterTtlMs = options.counterTtlMs ?? DEFAULT_CREDITS_COUNTER_TTL_MS;
    this.#maxCounters = options.maxCounters ?? DEFAULT_CREDITS_MAX_COUNTERS;
    this.#queue = new WriteBackQueue(options);
  }

  /** The write-back queue (for metrics: pending keys, dropped credits). */
  get writeBack(): WriteBackQueue {
    return this.#queue;
  }

  async consume(keyId: string, cost: number, loadRemaining: LoadRemaining): Promise<UsageDecision> {
    assertCreditCost(cost);
    let dropAccepted = false;
    for (let attempt = 0; attempt < MAX_ROOM_ATTEMPTS; attempt++) {
      const counter = this.#freshCounter(keyId) ?? (await this.#counter(keyId, loadRemaining));
      const spends = cost > 0 && counter.remaining !== null && counter.remaining >= cost;
      // Room in the write-back queue is checked right before the synchronous decrement, so a
      // refusal spends nothing and an acceptance is never lost to a queue that filled meanwhile.
      if (!spends || dropAccepted || this.#queue.hasRoomFor(keyId)) return this.#decide(counter, keyId, cost);
      dropAccepted = !(await this.#queue.makeRoomFor(keyId));
    }
    throw new Fault('err:unkey:application:service_unavailable', {
      retryable: true,
      publicMessage: 'Credits cannot be recorded right now.',
      internalMessage: `credits write-back queue stayed full after ${MAX_ROOM_ATTEMPTS} attempts`,
    });
  }

  async reset(keyId: string): Promise<void> {
    this.#counters.delete(keyId);
    this.#loads.delete(keyId);
    await this.#queue.flushKey(keyId);
  }

  flush(): Promise<void> {
    return this.#queue.flush();
  }

  async close(): Promise<void> {
    await this.#queue.close();
    this.#counters.clear();
  }

  // Synchronous from here to the end: no other consume can interleave between check and decrement.
  #decide(counter: Counter, keyId: string, cost: number): UsageDecision {
    if (counter.remaining === null) return { valid: true, remaining: null };
    if (counter.remaining < cost) return { valid: false, remaining: counter.remaining };
    counter.remaining -= cost;
    this.#queue.add(keyId, cost);
    return { valid: true, remaining: counter.remaining };
  }

  #freshCounter(keyId: string): Counter | undefined {
    const counter = this.#counters.get(keyId);
    if (counter === undefined) return undefined;
    if (counter.expiresAtMs > this.#clock.nowMs()) return counter;
    this.#counters.delete(keyId);
    return undefined;
  }

  async #counter(keyId: string, loadRemaining: LoadRemaining): Promise<Counter> {
    const fresh = this.#freshCounter(keyId);
    if (fresh !== undefined) return fresh;
    let load = this.#loads.get(keyId);
    if (load === undefined) {
      const ticket: LoadTicket = { promise: undefined };
      this.#loads.set(keyId, ticket);
      load = ticket;
      ticket.promise = this.#load(keyId, loadRemaining, ticket);
    }
    return load.promise!;
  }

  async #load(keyId: string, loadRemaining: LoadRemaining, ticket: LoadTicket): Promise<Counter> {
    try {
      // The database has not seen what this node consumed but has not written back yet. A
      // write-back can land while the load reads, so the value read may or may not include it:
      // subtract the larger of the unsaved amounts before and after, never spending a credit twice.
      const unsavedBefore = this.#queue.unsaved(keyId);
      const stored = await loadRemaining(keyId);
      const unsaved = Math.max(unsavedBefore, this.#queue.unsaved(keyId));
      const remaining = stored === null ? null : Math.max(0, stored - unsaved);
      const counter: Counter = { remaining, expiresAtMs: this.#clock.nowMs() + this.#counterTtlMs };
      // A reset during the load detached this ticket: answer this caller but keep no state.
      if (this.#loads.get(keyId) === ticket) {
        if (this.#counters.size >= this.#maxCounters) this.#evictOldest();
        this.#counters.set(keyId, counter);
      }
      return counter;
    } finally {
      if (this.#loads.get(keyId) === ticket) this.#loads.delete(keyId);
    }
  }

  #evictOldest(): void {
    const oldest = this.#counters.keys().next().value;
    if (oldest !== undefined) this.#counters.delete(oldest);
  }
}
