/**
 * The bounded, asynchronous write-back of consumed credits to the database. Amounts are summed
 * per key, so the queue's size is the number of distinct keys with unsaved consumption, and a
 * flush writes one row per key. Flushed every `flushIntervalMs`, when full (policy), on reset of a
 * key, and on close. A failed write keeps its amounts queued and is retried on the next flush.
 */
import { Fault } from '../fault.ts';
import type { ConsumedCredits, PersistConsumedCredits } from './interface.ts';

/** How often pending amounts are written, in ms. */
export const DEFAULT_CREDITS_FLUSH_INTERVAL_MS = 1_000;
/** Most distinct keys with unsaved consumption before the overflow policy applies. */
export const DEFAULT_CREDITS_MAX_PENDING_KEYS = 10_000;
/** Most rows handed to one persist call. */
export const DEFAULT_CREDITS_MAX_BATCH_ROWS = 1_000;

/**
 * When the queue is full and a new key wants in:
 * - `wait` (default): flush now and wait for it; if still full (the database is failing), reject;
 * - `reject`: refuse at once (`Fault(service_unavailable)`): the consume fails, nothing is spent;
 * - `drop`: accept and lose the amount (counted in `droppedCredits`): the database will
 *   under-count consumption; for deployments that prefer availability over exact billing.
 */
export type WriteBackOverflowPolicy = 'wait' | 'reject' | 'drop';

/** Options of {@link WriteBackQueue}. */
export interface WriteBackQueueOptions {
  persist: PersistConsumedCredits;
  flushIntervalMs?: number;
  maxPendingKeys?: number;
  maxBatchRows?: number;
  overflowPolicy?: WriteBackOverflowPolicy;
  /** Called with every failed persist (it will be retried); must not throw. */
  onPersistError?: (err: unknown) => void;
}

/** Per-key sums of consumed credits on their way to the database. */
export class WriteBackQueue {
  readonly #persist: PersistConsumedCredits;
  readonly #maxPendingKeys: number;
  readonly #maxBatchRows: number;
  readonly #overflowPolicy: WriteBackOverflowPolicy;
  readonly #onPersistError: ((err: unknown) => void) | undefined;
  readonly #pending = new Map<string, number>();
  readonly #inFlight = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  #flushing: Promise<void> | undefined;
  #droppedCredits = 0;
  #closed = false;

  constructor(options: WriteBackQueueOptions) {
    this.#persist = options.persist;
    this.#maxPendingKeys = options.maxPendingKeys ?? DEFAULT_CREDITS_MAX_PENDING_KEYS;
    this.#maxBatchRows = options.maxBatchRows ?? DEFAULT_CREDITS_MAX_BATCH_ROWS;
    this.#overflowPolicy = options.overflowPolicy ?? 'wait';
    this.#onPersistError = options.onPersistError;
    this.#timer = setInterval(() => void this.flush().catch(() => {}), options.flushIntervalMs ?? DEFAULT_CREDITS_FLUSH_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Distinct keys waiting to be written. */
  get pendingKeys(): number {
    return this.#pending.size;
  }

  /** Credits accepted under the `drop` policy that never reached the database. */
  get droppedCredits(): number {
    return this.#droppedCredits;
  }

  /** Consumed credits of `keyId` not yet confirmed in the database (queued plus being written). */
  unsaved(keyId: string): number {
    return (this.#pending.get(keyId) ?? 0) + (this.#inFlight.get(keyId) ?? 0);
  }

  /** True when an amount for `keyId` can be added without the overflow policy. */
  hasRoomFor(keyId: string): boolean {
    return this.#pending.size < this.#maxPendingKeys || this.#pending.has(keyId);
  }

  /**
   * Applies the overflow policy until `keyId` fits. Called before a credit is spent, so a refusal
   * spends nothing. Resolves to false under `drop` (the caller should then not {@link add}).
   */
  async makeRoomFor(keyId: string): Promise<boolean> {
    if (this.hasRoomFor(keyId)) return true;
    if (this.#overflowPolicy === 'drop') return false;
    if (this.#overflowPolicy === 'wait') {
      await this.flush().catch(() => {});
      if (this.hasRoomFor(keyId)) return true;
    }
    throw new Fault('err:unkey:application:service_unavailable', {
      source: 'internal',
      retryable: true,
      publicMessage: 'Credits cannot be recorded right now.',
      internalMessage: `credits write-back queue is full (${this.#maxPendingKeys} keys)`,
    });
  }

  /**
   * Queues `consumed` credits of `keyId`. The bound is enforced at admission ({@link makeRoomFor},
   * before anything is spent), so an amount already spent is always kept, except under `drop`:
   * concurrent admitted consumes may exceed `maxPendingKeys` by at most their number.
   */
  add(keyId: string, consumed: number): void {
    if (consumed <= 0) return;
    if (this.#overflowPolicy === 'drop' && !this.hasRoomFor(keyId)) {
      this.#droppedCredits += consumed;
      return;
    }
    this.#pending.set(keyId, (this.#pending.get(keyId) ?? 0) + consumed);
  }

  /**
   * Writes everything pending, in batches of `maxBatchRows`. Flushes never overlap: a call during
   * a flush waits for it and then flushes what arrived meanwhile. Rejects if a persist failed.
   */
  async flush(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing.catch(() => {});
    if (this.#pending.size === 0) return;
    const run = this.#flushAll();
    this.#flushing = run;
    try {
      await run;
    } finally {
      this.#flushing = undefined;
    }
  }

  /** Writes pending amounts of one key now (used before its counter is reset). */
  async flushKey(keyId: string): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing.catch(() => {});
    const consumed = this.#pending.get(keyId);
    if (consumed === undefined) return;
    this.#pending.delete(keyId);
    const run = this.#write([{ keyId, consumed }]);
    this.#flushing = run;
    try {
      await run;
    } finally {
      this.#flushing = undefined;
    }
  }

  /** Stops the timer and writes what is pending. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.flush();
  }

  async #flushAll(): Promise<void> {
    let firstError: unknown;
    while (this.#pending.size > 0) {
      const batch: ConsumedCredits[] = [];
      for (const [keyId, consumed] of this.#pending) {
        batch.push({ keyId, consumed });
        this.#pending.delete(keyId);
        if (batch.length >= this.#maxBatchRows) break;
      }
      try {
        await this.#write(batch);
      } catch (err) {
        firstError = err;
        break; // the rest waits for the next flush; the database is likely down
      }
    }
    if (firstError !== undefined) throw firstError;
  }

  async #write(batch: ConsumedCredits[]): Promise<void> {
    for (const { keyId, consumed } of batch) this.#inFlight.set(keyId, (this.#inFlight.get(keyId) ?? 0) + consumed);
    try {
      await this.#persist(batch);
    } catch (err) {
      // Put the amounts back (merging with anything that arrived meanwhile) for the next flush.
      for (const { keyId, consumed } of batch) this.#pending.set(keyId, (this.#pending.get(keyId) ?? 0) + consumed);
      try {
        this.#onPersistError?.(err);
      } catch {
        // A broken observer must not lose credits.
      }
      throw err;
    } finally {
      for (const { keyId, consumed } of batch) {
        const left = (this.#inFlight.get(keyId) ?? 0) - consumed;
        if (left > 0) this.#inFlight.set(keyId, left);
        else this.#inFlight.delete(keyId);
      }
    }
  }
}
