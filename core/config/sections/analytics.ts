/**
 * The `analytics` section: where verification events and the gateway's request log go. Without
 * `clickhouseUrl` they go to local tables in the database (one node still shows usage); with
 * it, `keygate api` / `keygate dev` write them to ClickHouse instead (core/analytics/clickhouse-*).
 */
import { field } from '../field.ts';

/** `analytics.*` keys. */
export const analytics = {
  clickhouseUrl: field.url({
    description: 'ClickHouse HTTP interface for analytics, e.g. http://127.0.0.1:8123. Unset: local tables in the database.',
    protocols: ['http:', 'https:'],
  }),
  clickhouseUser: field.string({ description: 'ClickHouse user for analytics.', default: 'default' }),
  clickhousePassword: field.secret({ description: 'Password of analytics.clickhouseUser (never printed).' }),
  clickhouseDatabase: field.string({ description: 'ClickHouse database holding the analytics tables (must exist).', default: 'default' }),
  clickhouseTimeoutMs: field.durationMs({ description: 'Longest time one ClickHouse insert may take before its batch is dropped.', default: 10_000, min: 100 }),
  flushIntervalMs: field.durationMs({ description: 'How often buffered analytics rows are inserted into ClickHouse (also when a batch is full).', default: 5_000, min: 0 }),
  batchSize: field.integer({ description: 'Rows per ClickHouse insert.', default: 10_000, min: 1, max: 1_000_000 }),
  maxBufferedRows: field.integer({ description: 'Most analytics rows held in memory per table; beyond it new rows are dropped and counted.', default: 100_000, min: 1, max: 10_000_000 }),
} as const;
