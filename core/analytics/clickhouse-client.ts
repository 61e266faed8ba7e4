/**
 * Opening a ClickHouse connection for the analytics sinks, and the few facts about the server
 * they need. Works down to Debian's clickhouse-server 18.16 (DEPENDENCIES.md): JSONEachRow
 * inserts only, no server-side query parameters, and table TTL only from 19.6 on (older servers
 * get a retention sweep that drops old daily partitions instead, see `clickhouse-batch-writer.ts`).
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';

export type { ClickHouseClient };

/** Longest time one insert or DDL statement may take before it is abandoned, in ms. */
export const DEFAULT_CLICKHOUSE_REQUEST_TIMEOUT_MS = 10_000;
/** Most sockets the analytics client keeps open to ClickHouse. */
export const DEFAULT_CLICKHOUSE_MAX_OPEN_CONNECTIONS = 4;

/** Where and as whom to connect (config keys `analytics.clickhouse*`). */
export interface ClickHouseConnectionSettings {
  /** HTTP(S) interface, e.g. `http://127.0.0.1:8123`. */
  url: string;
  /** Default `default`. */
  username?: string;
  /** Never logged. */
  password?: string;
  /** Default `default`. */
  database?: string;
  /** Default {@link DEFAULT_CLICKHOUSE_REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number;
}

/**
 * Opens a client (no request is sent yet). Its own logging is off: the sinks log failures
 * through keygate's logger, which redacts secrets. Called once at boot per process.
 */
export function openClickHouseClient(settings: ClickHouseConnectionSettings): ClickHouseClient {
  return createClient({
    url: settings.url,
    username: settings.username ?? 'default',
    password: settings.password ?? '',
    database: settings.database ?? 'default',
    request_timeout: settings.requestTimeoutMs ?? DEFAULT_CLICKHOUSE_REQUEST_TIMEOUT_MS,
    max_open_connections: DEFAULT_CLICKHOUSE_MAX_OPEN_CONNECTIONS,
    application: 'keygate',
    log: { level: ClickHouseLogLevel.OFF },
  });
}

/** What the analytics tables may use on this server. */
export interface ClickHouseFeatures {
  /** `major.minor.patch…` as the server reports it. */
  version: string;
  /** `TTL` clauses on MergeTree tables (ClickHouse 19.6 and later). */
  tableTtl: boolean;
}

/** Asks the server for its version; throws what the client throws when it cannot be reached. */
export async function readClickHouseFeatures(client: ClickHouseClient): Promise<ClickHouseFeatures> {
  const result = await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
  const rows = await result.json<{ version: string }>();
  const version = String(rows[0]?.version ?? '0.0');
  return { version, tableTtl: clickHouseVersionAtLeast(version, 19, 6) };
}

/** True when `version` (e.g. `18.16.1`) is at least `major.minor`. */
export function clickHouseVersionAtLeast(version: string, major: number, minor: number): boolean {
  const [actualMajor = 0, actualMinor = 0] = version.split('.').map((part) => Number.parseInt(part, 10) || 0);
  return actualMajor > major || (actualMajor === major && actualMinor >= minor);
}

/** The `analytics` config keys this module reads (a structural subset of `KeygateConfig['analytics']`). */
export interface AnalyticsClickHouseConfig {
  readonly clickhouseUrl?: string;
  readonly clickhouseUser: string;
  readonly clickhousePassword?: string;
  readonly clickhouseDatabase: string;
  readonly clickhouseTimeoutMs: number;
}

/** Connection settings from the `analytics` config section; undefined when `clickhouseUrl` is unset (local tables). */
export function clickHouseSettingsFromConfig(analytics: AnalyticsClickHouseConfig): ClickHouseConnectionSettings | undefined {
  if (analytics.clickhouseUrl === undefined) return undefined;
  return {
    url: analytics.clickhouseUrl,
    username: analytics.clickhouseUser,
    password: analytics.clickhousePassword,
    database: analytics.clickhouseDatabase,
    requestTimeoutMs: analytics.clickhouseTimeoutMs,
  };
}
