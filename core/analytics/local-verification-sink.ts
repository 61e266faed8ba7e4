/**
 * `LocalVerificationSink`: the analytics sink of a node without ClickHouse. Verification events
 * are buffered in memory (bounded, a `BatchBuffer`) and written to the local `key_verifications` table in batches,
 * by size or by interval; each flush also moves `keys.last_used_at_m` forward (never backwards)
 * to the newest event per key, in the same transaction. A full buffer drops new events and
 * counts them: analytics must never slow down or fail a verification.
 */
import type { Database } from '../db/database.ts';
import { insertKeyVerifications, type KeyVerificationEvent } from '../db/queries/key-verifications.ts';
import { markKeyUsed } from '../db/queries/keys.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { BatchBuffer } from './batch-buffer.ts';
import type { VerificationEventSink } from './interface.ts';

/** Most events held in memory; beyond it new events are dropped and counted. */
export const DEFAULT_ANALYTICS_MAX_BUFFERED_EVENTS = 100_000;
/**
 * Buffered events that trigger a flush without waiting for the interval, and the rows of one
 * insert. Small on purpose: the embedded SQLite engine writes synchronously, so one batch blocks
 * the event loop for its whole insert (~6 µs a row here); 5,000-row batches put ~30 ms stalls into
 * verifyKey's p99 (14 ms at half the peak rate), 500-row batches keep it at ~2 ms.
 */
export const DEFAULT_ANALYTICS_BATCH_SIZE = 500;
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

  constructor(options: LocalVerificationSinkOptions) {
    const db = options.db;
    const logger = options.logger;
    this.#buffer = new BatchBuffer<KeyVerificationEvent>({
      maxBufferedItems: options.maxBufferedEvents ?? DEFAULT_ANALYTICS_MAX_BUFFERED_EVENTS,
      batchSize: options.batchSize ?? DEFAULT_ANALYTICS_BATCH_SIZE,
      flushIntervalMs: options.flushIntervalMs ?? DEFAULT_ANALYTICS_FLUSH_INTERVAL_MS,
      droppedCounter: options.metrics?.counter('keygate_analytics_dropped_events_total', 'Verification events dropped because the analytics buffer was full.'),
      writeBatch: async (batch) => {
        await db.transaction(async (tx) => {
          await insertKeyVerifications(tx, batch);
          for (const [keyId, usedAtMs] of newestUsePerKey(batch)) await markKeyUsed(tx, keyId, usedAtMs);
        });
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

  flush(): Promise<void> {
    return this.#buffer.flush();
  }

  close(): Promise<void> {
    return this.#buffer.close();
  }
}

function newestUsePerKey(batch: readonly KeyVerificationEvent[]): Map<string, number> {
  const newest = new Map<string, number>();
  for (const event of batch) {
    const current = newest.get(event.keyId);
    if (current === undefined || event.timeMs > current) newest.set(event.keyId, event.timeMs);
  }
  return newest;
}
