/**
 * `ClickHouseRequestLogSink`: the gateway's request log on a node configured with ClickHouse
 * (`analytics.clickhouseUrl`), the counterpart of Sentinel's local `gateway_requests` table.
 * Rows (dataplane.md §7.3, already redacted by the producer) go to `frontline_requests_raw_v1`
 * through {@link ClickHouseBatchWriter}: bounded buffer, batch inserts, drop-and-count when full
 * or when ClickHouse fails, flush on close. The table keeps 7 days, as the reference's does.
 */
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { ClickHouseBatchWriter, type ClickHouseTableDefinition } from './clickhouse-batch-writer.ts';
import { ClickHouseSink } from './clickhouse-sink.ts';
import type { ClickHouseClient } from './clickhouse-client.ts';
import type { GatewayRequestRow, RequestLogSink } from './request-log-sink.ts';

/** Defaults of {@link ClickHouseRequestLogSink} (the reference: batch 5000, buffer 10000, 5 s). */
export const CLICKHOUSE_REQUEST_LOG_DEFAULTS = {
  /** Most rows held in memory; beyond it new rows are dropped and counted. */
  maxBufferedRows: 10_000,
  /** Buffered rows that trigger an insert without waiting for the interval. */
  batchSize: 5_000,
  /** Longest time a row waits in the buffer, in ms; 0 = flush by size and on close only. */
  flushIntervalMs: 5_000,
  /** Days a row is kept (TTL). */
  retentionDays: 7,
} as const;

/** The request-log table (dataplane.md §7.3; the columns keygate's rows carry). */
export const GATEWAY_REQUESTS_TABLE: ClickHouseTableDefinition = {
  name: 'frontline_requests_raw_v1',
  columns: [
    '`request_id` String', '`time` Int64', '`workspace_id` String', '`deployment_id` String', '`instance_address` String',
    '`region` String', '`method` String', '`host` String', '`path` String', '`query_string` String',
    '`request_headers` Array(String)', '`request_body` String', '`response_status` Int32', '`response_headers` Array(String)',
    '`response_body` String', '`user_agent` String', '`ip_address` String', '`total_latency` Int64',
  ],
  orderBy: 'workspace_id, time, deployment_id',
  retentionDays: CLICKHOUSE_REQUEST_LOG_DEFAULTS.retentionDays,
};

/** Options of {@link ClickHouseRequestLogSink}. */
export interface ClickHouseRequestLogSinkOptions {
  /** Opened with `openClickHouseClient`; closed by the caller after the sink. */
  client: ClickHouseClient;
  /** Written into every row (`region`); default `local`. */
  region?: string;
  maxBufferedRows?: number;
  batchSize?: number;
  flushIntervalMs?: number;
  metrics?: Metrics;
  logger?: Logger;
  clock?: Clock;
}

/** Buffered writer of request-log rows into ClickHouse; see the file comment. */
export class ClickHouseRequestLogSink extends ClickHouseSink<GatewayRequestRow> implements RequestLogSink {
  constructor(options: ClickHouseRequestLogSinkOptions) {
    const region = options.region ?? 'local';
    super(new ClickHouseBatchWriter<GatewayRequestRow>({
      client: options.client,
      table: GATEWAY_REQUESTS_TABLE,
      toJsonRow: (row) => ({
        request_id: row.requestId,
        time: Math.trunc(row.timeMs),
        workspace_id: row.workspaceId,
        deployment_id: row.deploymentId,
        instance_address: row.instanceAddress,
        region,
        method: row.method,
        host: row.host,
        path: row.path,
        query_string: row.queryString,
        request_headers: row.requestHeaders,
        request_body: row.requestBody ?? '',
        response_status: row.responseStatus,
        response_headers: row.responseHeaders,
        response_body: row.responseBody ?? '',
        user_agent: row.userAgent,
        ip_address: row.ipAddress,
        total_latency: Math.round(row.totalLatencyMs),
      }),
      maxBufferedRows: options.maxBufferedRows ?? CLICKHOUSE_REQUEST_LOG_DEFAULTS.maxBufferedRows,
      batchSize: options.batchSize ?? CLICKHOUSE_REQUEST_LOG_DEFAULTS.batchSize,
      flushIntervalMs: options.flushIntervalMs ?? CLICKHOUSE_REQUEST_LOG_DEFAULTS.flushIntervalMs,
      // The same counter as the local request log: one metric for "request-log rows lost".
      droppedCounter: options.metrics?.counter('keygate_sentinel_request_log_dropped_total', 'Gateway request-log rows dropped (buffer full or write failed).'),
      clock: options.clock,
      logger: options.logger,
    }));
  }
}
