/**
 * `ClickHouseVerificationSink`: the analytics sink of a node configured with ClickHouse
 * (`analytics.clickhouseUrl`). One row per verification event goes to `key_verifications_raw_v2`
 * with the spec's columns (api.md §7 step 12), batched through {@link ClickHouseBatchWriter}
 * (bounded buffer, drop-and-count when full or when ClickHouse fails, flush on close). The table
 * keeps 90 days. Beside each batch, `keys.last_used_at_m` moves forward (never back) to each
 * key's newest event through a {@link KeyLastUsedWriter}, as the local sink does (coalesced: at
 * most once per key per `lastUsedIntervalMs`, a minute by default, and on `flush`/`close`),
 * whether or not ClickHouse took the batch: the key was used either way.
 */
import type { Clock } from '../clock.ts';
import type { Database } from '../db/database.ts';
import type { KeyVerificationEvent } from '../db/queries/key-verifications.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { ClickHouseBatchWriter, type ClickHouseTableDefinition } from './clickhouse-batch-writer.ts';
import { ClickHouseSink } from './clickhouse-sink.ts';
import type { ClickHouseClient } from './clickhouse-client.ts';
import type { VerificationEventSink } from './interface.ts';
import { KeyLastUsedWriter } from './key-last-used-writer.ts';

/** Defaults of {@link ClickHouseVerificationSink} (the reference batches 10k rows every 5 s). */
export const CLICKHOUSE_VERIFICATION_DEFAULTS = {
  /** Most events held in memory; beyond it new events are dropped and counted. */
  maxBufferedEvents: 100_000,
  /** Buffered events that trigger an insert without waiting for the interval. */
  batchSize: 10_000,
  /** Longest time an event waits in the buffer, in ms; 0 = flush by size and on close only. */
  flushIntervalMs: 5_000,
  /** Days a row is kept (TTL). */
  retentionDays: 90,
} as const;

/** The table of verification events (api.md §7 step 12). */
export const KEY_VERIFICATIONS_TABLE: ClickHouseTableDefinition = {
  name: 'key_verifications_raw_v2',
  columns: [
    '`request_id` String', '`time` Int64', '`workspace_id` String', '`key_space_id` String', '`key_id` String',
    '`identity_id` String', '`external_id` String', '`region` String', '`source` String', '`app_id` String',
    '`outcome` String', '`tags` Array(String)', '`spent_credits` Int64', '`latency` Float64',
  ],
  orderBy: 'workspace_id, key_space_id, key_id, time',
  retentionDays: CLICKHOUSE_VERIFICATION_DEFAULTS.retentionDays,
};

/** Options of {@link ClickHouseVerificationSink}. */
export interface ClickHouseVerificationSinkOptions {
  /** Opened with `openClickHouseClient`; closed by the caller after the sink. */
  client: ClickHouseClient;
  /** Where `keys.last_used_at_m` is kept; without it last-used times are not tracked. */
  db?: Database;
  /** The `source` column: `api` for the API, `gateway` for Sentinel's KeyAuth. Default `api`. */
  source?: string;
  maxBufferedEvents?: number;
  batchSize?: number;
  flushIntervalMs?: number;
  /** How often `keys.last_used_at_m` is written, in ms (default a minute; see `KeyLastUsedWriter`). */
  lastUsedIntervalMs?: number;
  metrics?: Metrics;
  logger?: Logger;
  clock?: Clock;
}

/** Buffered writer of verification events into ClickHouse; see the file comment. */
export class ClickHouseVerificationSink extends ClickHouseSink<KeyVerificationEvent> implements VerificationEventSink {
  readonly #lastUsed: KeyLastUsedWriter | undefined;

  constructor(options: ClickHouseVerificationSinkOptions) {
    const source = options.source ?? 'api';
    const lastUsed = options.db === undefined ? undefined : new KeyLastUsedWriter({ db: options.db, intervalMs: options.lastUsedIntervalMs, logger: options.logger });
    super(new ClickHouseBatchWriter<KeyVerificationEvent>({
      client: options.client,
      table: KEY_VERIFICATIONS_TABLE,
      toJsonRow: (event) => ({
        request_id: event.requestId,
        time: Math.trunc(event.timeMs),
        workspace_id: event.workspaceId,
        key_space_id: event.keySpaceId,
        key_id: event.keyId,
        identity_id: event.identityId ?? '',
        external_id: event.externalId ?? '',
        region: event.region,
        source,
        app_id: '',
        outcome: event.outcome,
        tags: event.tags,
        spent_credits: Math.trunc(event.spentCredits),
        latency: event.latencyMs,
      }),
      alongsideInsert: lastUsed === undefined ? undefined : (batch) => {
        lastUsed.note(batch);
        return Promise.resolve();
      },
      maxBufferedRows: options.maxBufferedEvents ?? CLICKHOUSE_VERIFICATION_DEFAULTS.maxBufferedEvents,
      batchSize: options.batchSize ?? CLICKHOUSE_VERIFICATION_DEFAULTS.batchSize,
      flushIntervalMs: options.flushIntervalMs ?? CLICKHOUSE_VERIFICATION_DEFAULTS.flushIntervalMs,
      // The same counter as the local sink: one metric for "analytics lost events".
      droppedCounter: options.metrics?.counter('keygate_analytics_dropped_events_total', 'Verification events dropped because the analytics buffer was full.'),
      clock: options.clock,
      logger: options.logger,
    }));
    this.#lastUsed = lastUsed;
  }

  /** Keys whose `last_used_at_m` waits to be written. */
  get pendingLastUsedKeys(): number {
    return this.#lastUsed?.pendingKeys ?? 0;
  }

  /** Writes the buffered events, then every pending `last_used_at_m`; never rejects. */
  override async flush(): Promise<void> {
    await super.flush();
    await this.#lastUsed?.flush();
  }

  /** Stops the timers and writes the rest. Idempotent. */
  override async close(): Promise<void> {
    await super.close();
    await this.#lastUsed?.close();
  }
}
