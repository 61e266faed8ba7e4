/**
 * ClickHouseVerificationSink against a real (private) clickhouse-server: rows land with the
 * spec's columns and values, batching by size and on close, the bounded buffer, last-used
 * times, retention on servers without TTL, and outages that drop and count instead of failing.
 */
import t, { type Test } from 'tap';
import { ClickHouseVerificationSink } from '../../../core/analytics/clickhouse-verification-sink.ts';
import { openClickHouseClient, clickHouseVersionAtLeast, type ClickHouseClient } from '../../../core/analytics/clickhouse-client.ts';
import { TestClock } from '../../../core/clock.ts';
import { openDatabase } from '../../../core/db/database.ts';
import { migrate } from '../../../core/db/migrate.ts';
import { insertApi } from '../../../core/db/queries/apis.ts';
import { insertKeySpace } from '../../../core/db/queries/key-spaces.ts';
import type { KeyVerificationEvent } from '../../../core/db/queries/key-verifications.ts';
import { getKeyById, insertKey, markKeyUsed } from '../../../core/db/queries/keys.ts';
import { insertWorkspace } from '../../../core/db/queries/workspaces.ts';
import { Metrics } from '../../../core/metrics.ts';
import { startTestClickHouse } from '../../helpers/clickhouse.ts';

const clickhouse = await startTestClickHouse();
if (clickhouse === undefined) {
  t.plan(0, 'clickhouse-server is not installed (scripts/install-clickhouse.sh); ClickHouse sink tests skipped');
} else {
  const server = clickhouse;
  t.teardown(() => server.stop());

  let databaseCount = 0;
  /** A fresh database per test, so that row counts never mix. */
  async function freshClient(t: Test, requestTimeoutMs = 5_000): Promise<{ client: ClickHouseClient; database: string }> {
    const database = `${server.database}_${++databaseCount}`;
    await server.query(`CREATE DATABASE ${database}`);
    const client = openClickHouseClient({ url: server.url, username: server.username, password: server.password, database, requestTimeoutMs });
    t.teardown(() => client.close());
    return { client, database };
  }

  async function rows(database: string, columns = '*'): Promise<Array<Record<string, unknown>>> {
    const body = await server.query(`SELECT ${columns} FROM ${database}.key_verifications_raw_v2 ORDER BY time, request_id FORMAT JSONEachRow`);
    return body.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  async function count(database: string): Promise<number> {
    return Number((await server.query(`SELECT count() FROM ${database}.key_verifications_raw_v2 FORMAT TSV`)).trim());
  }

  async function waitFor(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  function event(keyId: string, timeMs: number, overrides: Partial<KeyVerificationEvent> = {}): KeyVerificationEvent {
    return {
      requestId: `req_${keyId}_${timeMs}`, timeMs, workspaceId: 'ws_1', keySpaceId: 'ks_1', keyId, outcome: 'VALID',
      tags: [], spentCredits: 0, latencyMs: 1.25, region: 'eu-test', ...overrides,
    };
  }

  async function keyDatabase(t: Test) {
    const db = await openDatabase(':memory:');
    t.teardown(() => db.close());
    await migrate(db);
    await insertWorkspace(db, { id: 'ws_1', name: 'ws', createdAtMs: 1 });
    await insertKeySpace(db, { id: 'ks_1', workspaceId: 'ws_1', createdAtMs: 1 });
    await insertApi(db, { id: 'api_1', workspaceId: 'ws_1', name: 'api', keySpaceId: 'ks_1', createdAtMs: 1 });
    for (const id of ['key_a', 'key_b']) await insertKey(db, { id, keySpaceId: 'ks_1', workspaceId: 'ws_1', hash: 'hash_' + id, start: 'x', createdAtMs: 1 });
    return db;
  }

  t.test('rows land in key_verifications_raw_v2 with the spec columns and values', async (t) => {
    const { client, database } = await freshClient(t);
    const sink = new ClickHouseVerificationSink({ client, flushIntervalMs: 0 });
    t.equal(await sink.ready(), true, 'table created');
    const now = Date.now();
    sink.record(event('key_a', now, { identityId: 'id_1', externalId: 'user_42', outcome: 'RATE_LIMITED', tags: ['path=/v1', 'plan=pro'], spentCredits: 0, latencyMs: 0.75 }));
    sink.record(event('key_b', now + 1, { spentCredits: 3 }));
    await sink.close();
    const written = await rows(database);
    t.same(written[0], {
      request_id: `req_key_a_${now}`, time: String(now), workspace_id: 'ws_1', key_space_id: 'ks_1', key_id: 'key_a',
      identity_id: 'id_1', external_id: 'user_42', region: 'eu-test', source: 'api', app_id: '', outcome: 'RATE_LIMITED',
      tags: ['path=/v1', 'plan=pro'], spent_credits: '0', latency: 0.75,
    });
    t.match(written[1], { key_id: 'key_b', identity_id: '', external_id: '', spent_credits: '3', outcome: 'VALID' });
    t.same(sink.stats, { recorded: 2, written: 2, dropped: 0, failedBatches: 0, partitionsDropped: 0 });
    const engine = await server.query(`SELECT engine FROM system.tables WHERE database = '${database}' AND name = 'key_verifications_raw_v2' FORMAT TSV`);
    t.equal(engine.trim(), 'MergeTree');
    const version = (await server.query('SELECT version() FORMAT TSV')).trim();
    if (clickHouseVersionAtLeast(version, 19, 6)) {
      t.match(await server.query(`SHOW CREATE TABLE ${database}.key_verifications_raw_v2 FORMAT TSV`), /TTL .*90 DAY/, '90-day TTL');
    } else {
      t.pass(`ClickHouse ${version} has no TTL: retention is the partition sweep (tested below)`);
    }
  });

  t.test('batches by size without a timer, one insert per batch, and flushes the rest on close', async (t) => {
    const { client, database } = await freshClient(t);
    const sink = new ClickHouseVerificationSink({ client, flushIntervalMs: 0, batchSize: 50, maxBufferedEvents: 1_000 });
    const base = Date.now();
    for (let index = 0; index < 100; index++) sink.record(event('key_a', base + index));
    await waitFor(() => sink.stats.written >= 100, 'two full batches');
    for (let index = 100; index < 120; index++) sink.record(event('key_a', base + index));
    t.equal(sink.buffered, 20, 'a partial batch waits for the interval or close');
    t.equal(await count(database), 100);
    await sink.close();
    t.equal(await count(database), 120, 'close writes the rest');
    // Level-0 parts are the inserts themselves (background merges add higher levels).
    const parts = await server.query(`SELECT count() FROM system.parts WHERE database = '${database}' AND table = 'key_verifications_raw_v2' AND level = 0 FORMAT TSV`);
    t.equal(parts.trim(), '3', 'three inserts (50 + 50 + 20), not one per event');
    sink.record(event('key_a', base));
    t.equal(sink.stats.dropped, 1, 'records after close are dropped and counted');
  });

  t.test('the flush interval writes without reaching the batch size', async (t) => {
    const { client, database } = await freshClient(t);
    const sink = new ClickHouseVerificationSink({ client, flushIntervalMs: 20, batchSize: 1_000 });
    t.teardown(() => sink.close());
    sink.record(event('key_a', Date.now()));
    await waitFor(() => sink.stats.written === 1, 'the interval flush');
    t.equal((await rows(database)).length, 1);
  });

  t.test('a full buffer drops new events and counts them in the metric', async (t) => {
    const { client, database } = await freshClient(t);
    const metrics = new Metrics();
    const sink = new ClickHouseVerificationSink({ client, flushIntervalMs: 0, batchSize: 1_000, maxBufferedEvents: 5, metrics });
    for (let index = 0; index < 8; index++) sink.record(event('key_a', Date.now() + index));
    t.equal(sink.buffered, 5, 'bounded');
    t.match(sink.stats, { recorded: 5, dropped: 3 });
    t.match(await metrics.render(), /keygate_analytics_dropped_events_total 3/);
    await sink.close();
    t.equal((await rows(database)).length, 5);
  });

  t.test('moves keys.last_used_at_m forward only, from each flushed batch', async (t) => {
    const { client } = await freshClient(t);
    const db = await keyDatabase(t);
    const sink = new ClickHouseVerificationSink({ client, db, flushIntervalMs: 0 });
    t.teardown(() => sink.close());
    sink.record(event('key_a', 1_000));
    sink.record(event('key_a', 3_000));
    sink.record(event('key_b', 2_000));
    await sink.flush();
    t.equal((await getKeyById(db, 'key_a'))?.lastUsedAtMs, 3_000, 'newest event per key');
    t.equal((await getKeyById(db, 'key_b'))?.lastUsedAtMs, 2_000);
    await markKeyUsed(db, 'key_b', 9_000);
    sink.record(event('key_b', 5_000));
    await sink.flush();
    t.equal((await getKeyById(db, 'key_b'))?.lastUsedAtMs, 9_000, 'an older event never moves it back');
  });

  t.test('last use is coalesced: batches written by size leave it pending until the interval or a flush', async (t) => {
    const { client } = await freshClient(t);
    const db = await keyDatabase(t);
    const sink = new ClickHouseVerificationSink({ client, db, flushIntervalMs: 0, batchSize: 2 });
    t.teardown(() => sink.close());
    for (let index = 0; index < 6; index++) sink.record(event(index % 2 === 0 ? 'key_a' : 'key_b', 1_000 + index));
    await waitFor(() => sink.stats.written === 6, 'three batches written by size');
    t.equal(sink.pendingLastUsedKeys, 2, 'one pending last use per key, not one update per batch');
    t.equal((await getKeyById(db, 'key_a'))?.lastUsedAtMs ?? null, null, 'not written with the batches');
    await sink.flush();
    t.equal(sink.pendingLastUsedKeys, 0);
    t.equal((await getKeyById(db, 'key_a'))?.lastUsedAtMs, 1_004, 'the newest use of each key, on flush');
    t.equal((await getKeyById(db, 'key_b'))?.lastUsedAtMs, 1_005);
  });

  t.test('an unreachable ClickHouse drops and counts events, never throws, and still tracks last use', async (t) => {
    const db = await keyDatabase(t);
    // A port nobody listens on: connection refused.
    const client = openClickHouseClient({ url: 'http://127.0.0.1:1', requestTimeoutMs: 1_000 });
    t.teardown(() => client.close());
    const sink = new ClickHouseVerificationSink({ client, db, flushIntervalMs: 0, batchSize: 2 });
    t.equal(await sink.ready(), false, 'ready() reports the outage instead of failing the boot');
    t.doesNotThrow(() => {
      for (let index = 0; index < 5; index++) sink.record(event('key_a', 10_000 + index));
    });
    await sink.close();
    t.match(sink.stats, { recorded: 5, written: 0, dropped: 5 });
    t.ok(sink.stats.failedBatches >= 1);
    t.equal((await getKeyById(db, 'key_a'))?.lastUsedAtMs, 10_004, 'the key was used even though analytics lost the rows');
  });

  t.test('a hung ClickHouse costs one bounded timeout per batch; writes resume once it is back', async (t) => {
    const { client, database } = await freshClient(t, 300);
    const sink = new ClickHouseVerificationSink({ client, flushIntervalMs: 0, batchSize: 10, maxBufferedEvents: 10 });
    t.teardown(() => sink.close());
    t.equal(await sink.ready(), true);
    server.pause();
    try {
      for (let index = 0; index < 10; index++) sink.record(event('key_a', Date.now() + index)); // a full batch: insert starts
      await waitFor(() => sink.buffered === 0, 'the batch to be taken');
      for (let index = 0; index < 15; index++) sink.record(event('key_b', Date.now() + index)); // while the insert hangs
      await waitFor(() => sink.stats.failedBatches >= 1, 'the insert timeout');
    } finally {
      server.resume();
    }
    await sink.flush();
    t.ok(sink.stats.dropped >= 15, `the timed-out batch and the overflow are dropped and counted (${sink.stats.dropped})`);
    t.ok(sink.stats.written <= 10, 'at most the buffered batch written after the server came back');
    sink.record(event('key_a', Date.now(), { requestId: 'after_outage' }));
    await sink.flush();
    const after = await rows(database, 'request_id');
    t.ok(after.some((row) => row.request_id === 'after_outage'), 'rows land again after the outage');
  });

  t.test('without TTL support, the retention sweep drops daily partitions older than 90 days', async (t) => {
    const version = (await server.query('SELECT version() FORMAT TSV')).trim();
    if (clickHouseVersionAtLeast(version, 19, 6)) {
      t.pass(`ClickHouse ${version} enforces retention with TTL`);
      return;
    }
    const { client, database } = await freshClient(t);
    const realNowMs = Date.now();
    const clock = new TestClock(realNowMs + 100 * 24 * 60 * 60 * 1000);
    const sink = new ClickHouseVerificationSink({ client, clock, flushIntervalMs: 0 });
    // Written first (no sweep due yet would still keep it): the sweep runs after this insert.
    sink.record(event('key_a', realNowMs, { requestId: 'old' }));
    sink.record(event('key_a', clock.nowMs(), { requestId: 'fresh' }));
    await sink.close();
    t.same((await rows(database, 'request_id')).map((row) => row.request_id), ['fresh'], 'the 100-day-old partition is gone');
    t.equal(sink.stats.partitionsDropped, 1);
  });
}
