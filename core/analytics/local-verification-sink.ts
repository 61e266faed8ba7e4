/**
 * `LocalVerificationSink`: the analytics sink of a node without ClickHouse. Verification events
 * are buffered in memory (bounded, a `BatchBuffer`) and written to the local store in batches, by
 * size or by interval, packed: one `key_verification_batches` row per workspace per batch (see
 * `insertKeyVerifications`). `keys.last_used_at_m` moves forward (never backwards)
 * to each key's newest written event through a {@link KeyLastUsedWriter}: coalesced, at most once
 * per key per `lastUsedIntervalMs` (and on `flush`/`close`), because one `UPDATE` per key per
 * batch cost about as much as the event rows themselves when many keys are active. A full buffer
 * drops new events and counts them: analytics must never slow down or fail a verification.
 */
import type { Database } from '../db/database.ts';
import { insertKeyVerifications, type KeyVerificationEvent } from '../db/queries/key-verifications.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { BatchBuffer } from './batch-buffer.ts';
import type { VerificationEventSink } from './interface.ts';
import { KeyLastUsedWriter } from './key-last-used-writer.ts';

/** Most events held in memory; beyond it new events are dropped and counted. */
export const DEFAULT_ANALYTICS_MAX_BUFFERED_EVENTS = 100_000;
/**
 * Buffered events that trigger a flush without waiting for the interval, and the events of one
 * write. Small on purpose: the embedded SQLite engine writes synchronously, so one batch blocks
 * the event loop for its whole insert. When every event was a row (6–10 µs a row with three
 * indexes), 5,000-event batches put ~30 ms stalls into verifyKey's p99 (14 ms at half the peak
 * rate) and 500-event batches ~5 ms ones. Packed, a batch is one row per workspace at ~0.4–0.7 µs
 * an event (mostly `JSON.stringify`), so a 100-event batch blocks for well under 0.1 ms, and larger
 * batches would save little: the fixed cost of the statement is already shared by 100 events.
 */
export const DEFAULT_ANALYTICS_BATCH_SIZE = 100;
/** Longest time an event waits in the buffer, in ms (the reference flushes every 5 s). */
export const DEFAULT_ANALYTICS_FLUSH_INTERVAL_MS = 5_000;

/** Options of {@link LocalVerificationSink}. */
export interface LocalVerificationSinkOptions {
  db: Database;
  /** Default {@link DEFAULT_ANALYTICS_MAX_BUFFERED_EVENTS}. */
  maxBufferedEvents?: number;
  /** Default {@link DEFAULT_ANALYTICS_BATCH_SIZE}. */
  batchSize?: number;
  /** Default {@link DEFAULT_ANALYTICS_FLUSH_INTERVAL_MS}; 0 disables the timer (flush by size and on close only). */
  flushIntervalMs?: number;
  /**
   * Longest time a key's newest use waits before `keys.last_used_at_m` is written, in ms (default
   * `KEY_LAST_USED_DEFAULTS.intervalMs`, a minute); 0 disables that timer (written on `flush`, `close`
   * and when 100k keys wait).
   */
  lastUsedIntervalMs?: number;
  metrics?: Metrics;
  logger?: Logger;
}

/** Counters of what happened to recorded events (for tests, status pages and metrics). */
export interface LocalVerificationSinkStats {
  recorded: number;
  written: number;
  dropped: number;
  failedBatches: number;
}

/** Buffered writer of verification events into the local table; see the file comment. */
export class LocalVerificationSink implements VerificationEventSink {
  readonly #buffer: BatchBuffer<KeyVerificationEvent>;
  readonly #lastUsed: KeyLastUsedWriter;

  constructor(options: LocalVerificationSinkOptions) {
    const db = options.db;
    const logger = options.logger;
    const lastUsed = new KeyLastUsedWriter({ db, intervalMs: options.lastUsedIntervalMs, logger });
    this.#lastUsed = lastUsed;
    this.#buffer = new BatchBuffer<KeyVerificationEvent>({
      maxBufferedItems: options.maxBufferedEvents ?? DEFAULT_ANALYTICS_MAX_BUFFERED_EVENTS,
      batchSize: options.batchSize ?? DEFAULT_ANALYTICS_BATCH_SIZE,
      flushIntervalMs: options.flushIntervalMs ?? DEFAULT_ANALYTICS_FLUSH_INTERVAL_MS,
      droppedCounter: options.metrics?.counter('keygate_analytics_dropped_events_total', 'Verification events dropped because the analytics buffer was full.'),
      writeBatch: async (batch) => {
        // One transaction: a batch larger than one INSERT is written whole or not at all.
        await db.transaction((tx) => insertKeyVerifications(tx, batch));
        // Only events that were written count as uses.
        lastUsed.note(batch);
        return true;
      },
      onBatchFailed: (err, batch) => logger?.warn({ err, events: batch.length }, 'writing verification events failed; batch dropped'),
    });
  }

  /** A copy of the counters. */
  get stats(): LocalVerificationSinkStats {
    return this.#buffer.stats;
  }

  /** Events waiting to be written. */
  get buffered(): number {
    return this.#buffer.buffered;
  }

  record(event: KeyVerificationEvent): void {
    this.#buffer.record(event);
  }

  /** Keys whose `last_used_at_m` waits to be written. */
  get pendingLastUsedKeys(): number {
    return this.#lastUsed.pendingKeys;
  }

  /** Writes the buffered events, then every pending `last_used_at_m`. */
  async flush(): Promise<void> {
    await this.#buffer.flush();
    await this.#lastUsed.flush();
  }

  async close(): Promise<void> {
    await this.#buffer.close();
    await this.#lastUsed.close();
  }
}
