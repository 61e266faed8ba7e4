/**
 * The gateway's request-log contract (dataplane.md §7.3): one row per proxied request that
 * reached an instance, handed to a {@link RequestLogSink}. It lives in core/ so that every role
 * and bin/ can share it: Sentinel produces rows; the local `gateway_requests` table
 * (`proxy/sentinel/local-request-log-sink.ts`) or ClickHouse
 * (`clickhouse-request-log-sink.ts`) stores them, chosen in bin/.
 */

/** One request-log row (field names follow §7.3; latencies in ms). Already redacted by the producer. */
export interface GatewayRequestRow {
  requestId: string;
  /** Unix ms at which the request arrived. */
  timeMs: number;
  workspaceId: string;
  deploymentId: string;
  instanceAddress: string;
  method: string;
  host: string;
  path: string;
  queryString: string;
  requestHeaders: string[];
  responseStatus: number;
  responseHeaders: string[];
  userAgent: string;
  ipAddress: string;
  totalLatencyMs: number;
  /** Captured request body, already redacted; present only when a Logging policy asked for it. */
  requestBody?: string;
  /** Captured response body, already redacted; present only when a Logging policy asked for it. */
  responseBody?: string;
}

/** Where rows go. `record` is called once per request and must never block or throw. */
export interface RequestLogSink {
  record(row: GatewayRequestRow): void;
}
