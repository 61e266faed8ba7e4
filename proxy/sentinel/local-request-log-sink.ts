/**
 * `LocalRequestLogSink`: the gateway's request log on a node without ClickHouse. Rows
 * (dataplane.md §7.3, already redacted by SentinelHooks) are buffered in memory (bounded, a
 * core `BatchBuffer`) and written to the `gateway_requests` table of migration 0003 in batches,
 * by size or by interval.
 * Captured bodies go to the `request_body` / `response_body` columns of migration 0004 (NULL
 * when no Logging policy asked for them), cut to the column bound so one oversized body can
 * never fail the whole batch.
 * `record` never blocks and never throws: a full buffer or a failed batch drops rows and counts
 * them, because logging must never slow down or fail a proxied request.
 */
import type { Database, SqlParam } from '../../core/db/database.ts';
import { GATEWAY_BODY_MAX_BYTES } from '../../core/db/migrations/0004-gateway-bodies.ts';
import { insertMany } from '../../core/db/queries/row-values.ts';
import { quoteColumns } from '../../core/db/queries/sql-fragments.ts';
import type { Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import { BatchBuffer } from '../../core/analytics/batch-buffer.ts';
import type { GatewayRequestRow, RequestLogSink } from '../../core/analytics/request-log-sink.ts';

/** Defaults of {@link LocalRequestLogSink}. */
export const LOCAL_REQUEST_LOG_DEFAULTS = {
  /** Most rows held in memory; beyond it new rows are dropped and counted. */
  maxBufferedRows: 100_000,
  /** Buffered rows that trigger a write without waiting for the interval. */
  batchSize: 2_000,
  /** Longest time a row waits in the buffer, in ms; 0 = flush by size and on close only. */
  flushIntervalMs: 5_000,
} as const;

/** Options of {@link LocalRequestLogSink}. */
export interface LocalRequestLogSinkOptions {
  db: Database;
  /** Written into every row (`region`); default `local`. */
  region?: string;
  maxBufferedRows?: number;
  batchSize?: number;
  flushIntervalMs?: number;
  metrics?: Metrics;
  logger?: Logger;
}

/** What happened to recorded rows. */
export interface LocalRequestLogStats {
  recorded: number;
  written: number;
  dropped: number;
  failedBatches: number;
}

const COLUMNS = quoteColumns([
  'request_id', 'time', 'workspace_id', 'deployment_id', 'instance_address', 'region', 'method', 'host', 'path', 'query_string',
  'request_headers', 'response_status', 'response_headers', 'user_agent', 'ip_address', 'total_latency_ms', 'request_body', 'response_body',
]);

/** Buffered writer of request-log rows into `gateway_requests`. */
export class LocalRequestLogSink implements RequestLogSink {
  readonly #buffer: BatchBuffer<GatewayRequestRow>;

  constructor(options: LocalRequestLogSinkOptions) {
    const db = options.db;
    const region = options.region ?? 'local';
    const logger = options.logger;
    this.#buffer = new BatchBuffer<GatewayRequestRow>({
      maxBufferedItems: options.maxBufferedRows ?? LOCAL_REQUEST_LOG_DEFAULTS.maxBufferedRows,
      batchSize: options.batchSize ?? LOCAL_REQUEST_LOG_DEFAULTS.batchSize,
      flushIntervalMs: options.flushIntervalMs ?? LOCAL_REQUEST_LOG_DEFAULTS.flushIntervalMs,
      droppedCounter: options.metrics?.counter('keygate_sentinel_request_log_dropped_total', 'Gateway request-log rows dropped (buffer full or write failed).'),
      writeBatch: async (batch) => {
        await insertMany(db, '`gateway_requests`', COLUMNS, batch, (row): SqlParam[] => [
          row.requestId, row.timeMs, row.workspaceId, row.deploymentId, row.instanceAddress, region, row.method, row.host,
          row.path, row.queryString, JSON.stringify(row.requestHeaders), row.responseStatus, JSON.stringify(row.responseHeaders),
          row.userAgent, row.ipAddress, row.totalLatencyMs, storedBody(row.requestBody), storedBody(row.responseBody),
        ]);
        return true;
      },
      onBatchFailed: (err, batch) => logger?.warn({ err, rows: batch.length }, 'writing gateway request-log rows failed; batch dropped'),
    });
  }

  /** A copy of the counters. */
  get stats(): LocalRequestLogStats {
    return this.#buffer.stats;
  }

  /** Called once per proxied request; O(1), never throws. */
  record(row: GatewayRequestRow): void {
    this.#buffer.record(row);
  }

  /** Writes what is buffered; one writer at a time (a flush asked for during a write runs after it). */
  flush(): Promise<void> {
    return this.#buffer.flush();
  }

  /** Stops the timer and writes the rest. Idempotent. */
  close(): Promise<void> {
    return this.#buffer.close();
  }
}

/** Appended to a body cut to {@link GATEWAY_BODY_MAX_BYTES}; the text before it is the body's start. */
export const STORED_BODY_CUT_MARKER = '…[cut to fit the request log]';

const CUT_MARKER_BYTES = Buffer.byteLength(STORED_BODY_CUT_MARKER);

/**
 * A captured body as stored: NULL when none was captured, else the text cut on a UTF-8 character
 * boundary so that it (with the marker) fits the column's {@link GATEWAY_BODY_MAX_BYTES}.
 */
function storedBody(body: string | undefined): string | null {
  if (body === undefined) return null;
  // Fast path: a UTF-16 unit encodes to at most 3 UTF-8 bytes, so short text always fits.
  if (body.length * 3 <= GATEWAY_BODY_MAX_BYTES) return body;
  const bytes = Buffer.from(body, 'utf8');
  if (bytes.length <= GATEWAY_BODY_MAX_BYTES) return body;
  let end = GATEWAY_BODY_MAX_BYTES - CUT_MARKER_BYTES;
  // Step back over continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8') + STORED_BODY_CUT_MARKER;
}
