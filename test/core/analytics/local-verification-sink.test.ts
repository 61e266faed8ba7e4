import t, { type Test } from 'tap';
import { KeyLastUsedWriter, LAST_USED_KEYS_PER_TRANSACTION } from '../../../core/analytics/key-last-used-writer.ts';
import { LocalVerificationSink } from '../../../core/analytics/local-verification-sink.ts';
import { openDatabase } from '../../../core/db/database.ts';
import { migrate } from '../../../core/db/migrate.ts';
import { insertApi } from '../../../core/db/queries/apis.ts';
import { insertKeySpace } from '../../../core/db/queries/key-spaces.ts';
import { listKeyVerifications, type KeyVerificationEvent } from '../../../core/db/queries/key-verifications.ts';
import { getKeyById, insertKey, markKeyUsed } from '../../../core/db/queries/keys.ts';
import { insertWorkspace } from '../../../core/db/queries/workspaces.ts';

async function setup(t: Test) {
  const db = await openDatabase(':memory:');
  t.teardown(() => db.close());
  await migrate(db);
  await insertWorkspace(db, { id: 'ws_1', name: 'ws', createdAtMs: 1 });
  await insertKeySpace(db, { id: 'ks_1', workspaceId: 'ws_1', createdAtMs: 1 });
  await insertApi(db, { id: 'api_1', workspaceId: 'ws_1', name: 'api', keySpaceId: 'ks_1', createdAtMs: 1 });
  for (const id of ['key_a', 'key_b']) {
    await insertKey(db, { id, keySpaceId: 'ks_1', workspaceId: 'ws_1', hash: 'hash_' + id, start: 'x', createdAtMs: 1 });
  }
  return db;
}

function event(keyId: string, timeMs: number, outcome = 'VALID'): KeyVerificationEvent {
  return { requestId: 'req_1', timeMs, workspaceId: 'ws_1', keySpaceId: 'ks_1', keyId, outcome, tags: ['t=1'], spentCredits: 0, latencyMs: 0.5, region: 'test' };
}

t.test('writes buffered events on flush and moves last_used_at forward only', async (t) => {
  const db = await setup(t);
  const sink = new LocalVerificationSink({ db, flushIntervalMs: 0 });
  t.teardown(() => sink.close());
  sink.record(event('key_a', 1000));
  sink.record(event('key_a', 3000, 'RATE_LIMITED'));
  sink.record(event('key_b', 2000));
  t.equal(sink.buffered, 3);
  t.same(await listKeyVerifications(db, { workspaceId: 'ws_1' }), [], 'nothing written before a flush');
  await sink.flush();
  const written = await listKeyVerifications(db, { workspaceId: 'ws_1' });
  t.equal(written.length, 3);
  t.same(written.find((row) => row.outcome === 'RATE_LIMITED')?.tags, ['t=1']);
  t.equal((await getKeyById(db, 'key_a'))?.lastUsedAtMs, 3000, 'newest event per key');
  t.equal((await getKeyById(db, 'key_b'))?.lastUsedAtMs, 2000);
  await markKeyUsed(db, 'key_b', 9000);
  sink.record(event('key_b', 5000));
  await sink.flush();
  t.equal((await getKeyById(db, 'key_b'))?.lastUsedAtMs, 9000, 'an older event never moves it back');
  t.same(sink.stats, { recorded: 4, written: 4, dropped: 0, failedBatches: 0 });
});

t.test('a full buffer drops new events and counts them; reaching the batch size flushes without a timer', async (t) => {
  const db = await setup(t);
  const sink = new LocalVerificationSink({ db, flushIntervalMs: 0, maxBufferedEvents: 3, batchSize: 3 });
  t.teardown(() => sink.close());
  sink.record(event('key_a', 1));
  sink.record(event('key_a', 2));
  t.equal(sink.buffered, 2);
  sink.record(event('key_a', 3)); // reaches the batch size: a flush starts on its own
  const deadline = Date.now() + 5000;
  while (sink.stats.written < 3 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  t.equal(sink.stats.written, 3, 'written without flush() or a timer');
  t.equal((await listKeyVerifications(db, { workspaceId: 'ws_1' })).length, 3);

  const tiny = new LocalVerificationSink({ db, flushIntervalMs: 0, maxBufferedEvents: 2, batchSize: 10 });
  tiny.record(event('key_b', 1));
  tiny.record(event('key_b', 2));
  tiny.record(event('key_b', 3));
  t.equal(tiny.stats.dropped, 1, 'the third event did not fit');
  await tiny.close();
  t.equal((await listKeyVerifications(db, { workspaceId: 'ws_1', keyId: 'key_b' })).length, 2, 'close flushed the rest');
  tiny.record(event('key_b', 4));
  t.equal(tiny.stats.dropped, 2, 'events after close are dropped');
});

t.test('a failed write drops the batch and counts it instead of growing without bound', async (t) => {
  const db = await setup(t);
  const sink = new LocalVerificationSink({ db, flushIntervalMs: 0 });
  sink.record(event('key_a', 1));
  await db.close();
  await sink.flush();
  t.same(sink.stats, { recorded: 1, written: 0, dropped: 1, failedBatches: 1 });
  t.equal(sink.buffered, 0);
});

t.test('the interval timer flushes on its own', async (t) => {
  const db = await setup(t);
  const sink = new LocalVerificationSink({ db, flushIntervalMs: 5 });
  t.teardown(() => sink.close());
  sink.record(event('key_a', 42));
  const deadline = Date.now() + 5000;
  while (sink.stats.written === 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  t.equal(sink.stats.written, 1);
});

t.test('last_used_at is written once per key per interval, not once per batch, and always on flush', async (t) => {
  const db = await setup(t);
  const sink = new LocalVerificationSink({ db, flushIntervalMs: 0, batchSize: 1, lastUsedIntervalMs: 0 });
  t.teardown(() => sink.close());
  sink.record(event('key_a', 1000)); // the batch size: written on its own
  sink.record(event('key_a', 2000));
  const deadline = Date.now() + 5000;
  while (sink.stats.written < 2 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  t.equal(sink.stats.written, 2, 'both events written');
  t.equal((await getKeyById(db, 'key_a'))?.lastUsedAtMs, undefined, 'the key waits in memory, not one UPDATE per batch');
  t.equal(sink.pendingLastUsedKeys, 1, 'one key pending, with its newest use');
  await sink.flush();
  t.equal((await getKeyById(db, 'key_a'))?.lastUsedAtMs, 2000, 'flush writes it');
  t.equal(sink.pendingLastUsedKeys, 0);
});

t.test('pending last_used_at values are written by their own timer and at the bound', async (t) => {
  const db = await setup(t);
  const timed = new KeyLastUsedWriter({ db, intervalMs: 5 });
  t.teardown(() => timed.close());
  timed.note([event('key_a', 7000)]);
  let deadline = Date.now() + 5000;
  while ((await getKeyById(db, 'key_a'))?.lastUsedAtMs !== 7000 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  t.equal((await getKeyById(db, 'key_a'))?.lastUsedAtMs, 7000, 'written by the timer');

  const bounded = new KeyLastUsedWriter({ db, intervalMs: 0, maxPendingKeys: 2 });
  t.teardown(() => bounded.close());
  bounded.note([event('key_a', 8000)]);
  t.equal(bounded.pendingKeys, 1, 'below the bound it waits');
  bounded.note([event('key_b', 8000)]);
  deadline = Date.now() + 5000;
  while ((await getKeyById(db, 'key_b'))?.lastUsedAtMs !== 8000 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  t.equal((await getKeyById(db, 'key_b'))?.lastUsedAtMs, 8000, 'reaching the bound writes at once');
  t.equal((await getKeyById(db, 'key_a'))?.lastUsedAtMs, 8000);
});

t.test('a flush of many keys writes them all in short transactions with a turn of the event loop between them', async (t) => {
  const db = await setup(t);
  const writer = new KeyLastUsedWriter({ db, intervalMs: 0 });
  t.teardown(() => writer.close());
  const keyIds = ['key_a'];
  for (let index = 0; index < 3 * LAST_USED_KEYS_PER_TRANSACTION + 50; index++) keyIds.push(`key_missing_${String(index).padStart(4, '0')}`);
  writer.note(keyIds.map((keyId) => event(keyId, 9000)));
  // SQLite answers synchronously: without a yield the whole flush would run before any of these turns.
  let turns = 0;
  let counting = true;
  const count = (): void => {
    if (!counting) return;
    turns++;
    setImmediate(count);
  };
  setImmediate(count);
  await writer.flush();
  counting = false;
  t.ok(turns >= 3, `the event loop turned between the 4 transactions (${turns} turns)`);
  t.equal(writer.pendingKeys, 0, 'nothing left pending');
  t.equal((await getKeyById(db, 'key_a'))?.lastUsedAtMs, 9000, 'the existing key was written');
});
