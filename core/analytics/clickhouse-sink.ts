/**
 * `ClickHouseSink`: what every ClickHouse-backed sink does with its {@link ClickHouseBatchWriter}
 * once the writer is configured: hand rows to it, flush, close and report its counters. The
 * request-log and verification sinks extend it and differ only in table, row mapping and defaults.
 */
import type { ClickHouseBatchWriter, ClickHouseBatchWriterStats } from './clickhouse-batch-writer.ts';

/** Base of the ClickHouse sinks; `Row` is what the producer records. */
export class ClickHouseSink<Row> {
  readonly #writer: ClickHouseBatchWriter<Row>;

  constructor(writer: ClickHouseBatchWriter<Row>) {
    this.#writer = writer;
  }

  /** A copy of the counters. */
  get stats(): ClickHouseBatchWriterStats {
    return this.#writer.stats;
  }

  /** Rows waiting to be written. */
  get buffered(): number {
    return this.#writer.buffered;
  }

  /**
   * Creates the table if missing. Called once at boot; resolves false (and logs) when ClickHouse
   * is unreachable, in which case the next flush tries again. Never rejects.
   */
  ready(): Promise<boolean> {
    return this.#writer.ready();
  }

  /** Called once per row (per request or verification); O(1), never throws. */
  record(row: Row): void {
    this.#writer.record(row);
  }

  /** Writes what is buffered; never rejects. */
  flush(): Promise<void> {
    return this.#writer.flush();
  }

  /** Stops the timer and writes the rest. Idempotent. */
  close(): Promise<void> {
    return this.#writer.close();
  }
}
