/**
 * `ClickHouseBatchWriter`: the buffered, bounded writer under both ClickHouse analytics sinks.
 * Rows are held in memory (at most `maxBufferedRows`; beyond it new rows are dropped and
 * counted), and inserted as one JSONEachRow statement per batch, when `batchSize` rows are
 * waiting, every `flushIntervalMs`, and on `close`. A failed insert drops its batch (counted,
 * logged) instead of retrying forever: analytics must never slow down, grow without bound or
 * fail the request that produced the row.
 *
 * The table is created if missing (MergeTree, one partition per day, a `TTL` on servers that
 * support it). Servers older than 19.6 have no TTL, so the writer enforces the same retention by
 * dropping daily partitions older than `retentionDays`, at start and then at most once a day.
 */
import type { Clock } from '../clock.ts';
import { systemClock } from '../clock.ts';
import { Fault } from '../fault.ts';
import type { Logger } from '../log.ts';
import { BatchBuffer } from './batch-buffer.ts';
import { readClickHouseFeatures, type ClickHouseClient, type ClickHouseFeatures } from './clickhouse-client.ts';

/** How often the retention sweep runs on servers without TTL, in ms. */
export const CLICKHOUSE_RETENTION_SWEEP_INTERVAL_MS = 24 * 60 * 60 * 1000;

/** A table the writer creates if missing. It must have a `time Int64` column holding unix ms. */
export interface ClickHouseTableDefinition {
  /** Table name (plain identifier, in the client's database). */
  name: string;
  /** Column definitions, e.g. ``['`request_id` String', '`time` Int64']``. */
  columns: readonly string[];
  /** The sorting key expression list, e.g. `workspace_id, time`. */
  orderBy: string;
  /** Rows older than this many days are removed (TTL, or the sweep on old servers). */
  retentionDays: number;
}

/** Options of {@link ClickHouseBatchWriter}. */
export interface ClickHouseBatchWriterOptions<Row> {
  client: ClickHouseClient;
  table: ClickHouseTableDefinition;
  /** Maps a buffered row to the JSON object inserted (called at flush time, not per record). */
  toJsonRow(row: Row): Record<string, unknown>;
  /** Runs beside each insert with the same batch, whatever ClickHouse answers; its failures are logged. */
  alongsideInsert?: (batch: readonly Row[]) => Promise<void>;
  maxBufferedRows: number;
  batchSize: number;
  /** 0 disables the timer (flush by size and on close only). */
  flushIntervalMs: number;
  /** Counts dropped rows (buffer full or failed insert). */
  droppedCounter?: { inc(value?: number): void };
  clock?: Clock;
  logger?: Logger;
}

/** What happened to recorded rows. */
export interface ClickHouseBatchWriterStats {
  /** Rows accepted into the buffer. */
  recorded: number;
  /** Rows ClickHouse acknowledged. */
  written: number;
  /** Rows lost: buffer full, writer closed, or in a failed insert. */
  dropped: number;
  failedBatches: number;
  /** Partitions removed by the retention sweep (servers without TTL). */
  partitionsDropped: number;
}

/** Buffered, bounded batch inserter into one ClickHouse table; see the file comment. */
export class ClickHouseBatchWriter<Row> {
  readonly #client: ClickHouseClient;
  readonly #table: ClickHouseTableDefinition;
  readonly #toJsonRow: (row: Row) => Record<string, unknown>;
  readonly #alongsideInsert: ((batch: readonly Row[]) => Promise<void>) | undefined;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #buffer: BatchBuffer<Row>;
  #partitionsDropped = 0;
  // Set when an insert fails while closing: the rest skips ClickHouse (dropped and counted) so
  // that shutdown does not wait one timeout per remaining batch; side updates still run.
  #skipInserts = false;
  #tableReady: Promise<ClickHouseFeatures> | undefined;
  #nextSweepAtMs = 0;

  constructor(options: ClickHouseBatchWriterOptions<Row>) {
    // The name is interpolated into DDL (18.16 has no server-side parameters): identifiers only.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(options.table.name)) {
      throw new Fault('err:keygate:config:invalid', { internalMessage: `invalid ClickHouse table name: ${JSON.stringify(options.table.name)}` });
    }
    this.#client = options.client;
    this.#table = options.table;
    this.#toJsonRow = options.toJsonRow;
    this.#alongsideInsert = options.alongsideInsert;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    this.#buffer = new BatchBuffer<Row>({
      maxBufferedItems: Math.max(1, options.maxBufferedRows),
      batchSize: options.batchSize,
      flushIntervalMs: options.flushIntervalMs,
      droppedCounter: options.droppedCounter,
      writeBatch: (batch) => this.#writeBatch(batch),
      onBatchFailed: (err, batch) => this.#logger?.warn({ err, rows: batch.length, table: this.#table.name }, 'inserting analytics rows into ClickHouse failed; batch dropped'),
    });
  }

  /** A copy of the counters. */
  get stats(): ClickHouseBatchWriterStats {
    return { ...this.#buffer.stats, partitionsDropped: this.#partitionsDropped };
  }

  /** Rows waiting to be written. */
  get buffered(): number {
    return this.#buffer.buffered;
  }

  /** Buffers one row: O(1), never throws, never waits. Called per request. */
  record(row: Row): void {
    this.#buffer.record(row);
  }

  /**
   * Creates the table if missing (once; retried on the next call after a failure) and runs
   * the retention sweep when due. Resolves to the server's features; rejects when ClickHouse
   * cannot be reached or refuses the statement.
   */
  ensureTable(): Promise<ClickHouseFeatures> {
    if (this.#tableReady === undefined) {
      const attempt = this.#createTable();
      this.#tableReady = attempt;
      // Forget a failed attempt so that the next flush tries again (ClickHouse may come back).
      attempt.catch(() => {
        if (this.#tableReady === attempt) this.#tableReady = undefined;
      });
    }
    return this.#tableReady;
  }

  /**
   * {@link ensureTable} for boot: resolves false (and logs a warning) when ClickHouse cannot be
   * reached, so a node starts without it and the next flush tries again. Never rejects.
   */
  async ready(): Promise<boolean> {
    try {
      await this.ensureTable();
      return true;
    } catch (err) {
      this.#logger?.warn({ err, table: this.#table.name }, 'ClickHouse is not reachable; analytics rows are dropped until it is');
      return false;
    }
  }

  /** Writes everything buffered now; one writer at a time. Never rejects (failures are counted). */
  flush(): Promise<void> {
    return this.#buffer.flush();
  }

  /** Stops the timer and writes the rest; later records are dropped. Idempotent. Does not close the client. */
  close(): Promise<void> {
    return this.#buffer.close();
  }

  async #createTable(): Promise<ClickHouseFeatures> {
    const features = await readClickHouseFeatures(this.#client);
    const table = this.#table;
    const columns = [...table.columns, '`event_date` Date MATERIALIZED toDate(toDateTime(intDiv(`time`, 1000)))'];
    const ttl = features.tableTtl ? ` TTL event_date + INTERVAL ${Math.trunc(table.retentionDays)} DAY` : '';
    await this.#client.command({
      query: `CREATE TABLE IF NOT EXISTS ${table.name} (${columns.join(', ')}) ENGINE = MergeTree`
        + ` PARTITION BY toYYYYMMDD(event_date) ORDER BY (${table.orderBy})${ttl}`,
    });
    return features;
  }

  /** One batch for the buffer: true when inserted, false when skipped during close; rejects when the insert failed. */
  async #writeBatch(batch: Row[]): Promise<boolean> {
    const skipped = this.#skipInserts;
    const insert = skipped ? Promise.reject(new Error('skipped: ClickHouse failed during close')) : this.#insert(batch);
    const [inserted, alongside] = await Promise.allSettled([insert, this.#alongsideInsert?.(batch)]);
    if (alongside.status === 'rejected') this.#logger?.warn({ err: alongside.reason, rows: batch.length, table: this.#table.name }, 'analytics side update failed');
    if (inserted.status === 'fulfilled') return true;
    if (skipped) return false;
    this.#skipInserts = this.#buffer.closed;
    throw inserted.reason;
  }

  async #insert(batch: readonly Row[]): Promise<void> {
    const features = await this.ensureTable();
    await this.#client.insert({ table: this.#table.name, values: batch.map(this.#toJsonRow), format: 'JSONEachRow' });
    if (!features.tableTtl && this.#clock.nowMs() >= this.#nextSweepAtMs) await this.#sweepRetention();
  }

  async #sweepRetention(): Promise<void> {
    const nowMs = this.#clock.nowMs();
    this.#nextSweepAtMs = nowMs + CLICKHOUSE_RETENTION_SWEEP_INTERVAL_MS;
    const cutoff = yyyymmdd(nowMs - this.#table.retentionDays * 24 * 60 * 60 * 1000);
    try {
      const result = await this.#client.query({
        query: `SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = '${this.#table.name}' AND active`,
        format: 'JSONEachRow',
      });
      const partitions = (await result.json<{ partition: string }>()).map((row) => String(row.partition));
      // Partition ids are YYYYMMDD (see PARTITION BY); anything else is left alone.
      for (const partition of partitions) {
        if (!/^\d{8}$/.test(partition) || partition >= cutoff) continue;
        await this.#client.command({ query: `ALTER TABLE ${this.#table.name} DROP PARTITION ${partition}` });
        this.#partitionsDropped++;
      }
    } catch (err) {
      this.#logger?.warn({ err, table: this.#table.name }, 'analytics retention sweep failed; retried tomorrow');
    }
  }
}

function yyyymmdd(timeMs: number): string {
  return new Date(timeMs).toISOString().slice(0, 10).replaceAll('-', '');
}
