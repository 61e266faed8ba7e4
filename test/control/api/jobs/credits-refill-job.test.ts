/**
 * The credits refill job on a TestClock: daily and monthly schedules, day 31 on short months,
 * SET (not add) semantics, once per day even when run repeatedly or concurrently, counters reset.
 */
import t from 'tap';
import { TestClock } from '../../../../core/clock.ts';
import { MemoryUsageLimiter } from '../../../../core/credits/memory.ts';
import { openDatabase, type Database } from '../../../../core/db/database.ts';
import { migrate } from '../../../../core/db/migrate.ts';
import * as q from '../../../../core/db/queries/index.ts';
import { newId } from '../../../../core/id.ts';
import { CreditsRefillJob, refillSchedule } from '../../../../control/api/jobs/credits-refill-job.ts';

const DAY_MS = 86_400_000;

async function setup(startMs: number): Promise<{ db: Database; clock: TestClock; workspaceId: string; addKey: (patch: Partial<q.NewKey>) => Promise<string> }> {
  const db = await openDatabase(':memory:');
  await migrate(db);
  const clock = new TestClock(startMs);
  const workspaceId = newId('ws');
  const keySpaceId = newId('ks');
  await q.insertWorkspace(db, { id: workspaceId, name: 'acme', createdAtMs: startMs });
  await q.insertKeySpace(db, { id: keySpaceId, workspaceId, createdAtMs: startMs });
  const addKey = async (patch: Partial<q.NewKey>): Promise<string> => {
    const id = newId('key');
    await q.insertKey(db, { id, keySpaceId, workspaceId, hash: newId('req') + id, start: 'sk_1234', createdAtMs: startMs, ...patch });
    return id;
  };
  return { db, clock, workspaceId, addKey };
}

async function remaining(db: Database, keyId: string): Promise<number | undefined> {
  return (await q.getKeyById(db, keyId))?.remainingRequests;
}

t.test('refillSchedule knows the last day of each month, leap years included', async (t) => {
  t.match(refillSchedule(Date.UTC(2025, 1, 28, 12)), { day: '2025-02-28', params: [Date.UTC(2025, 1, 28), 28, 1, 28] });
  t.match(refillSchedule(Date.UTC(2024, 1, 28, 12)), { day: '2024-02-28', params: [Date.UTC(2024, 1, 28), 28, 0, 28] });
  t.match(refillSchedule(Date.UTC(2024, 1, 29, 23, 59)), { params: [Date.UTC(2024, 1, 29), 29, 1, 29] });
  t.match(refillSchedule(Date.UTC(2025, 3, 30)), { params: [Date.UTC(2025, 3, 30), 30, 1, 30] });
  t.match(refillSchedule(Date.UTC(2025, 0, 30)), { params: [Date.UTC(2025, 0, 30), 30, 0, 30] });
});

t.test('a daily refill SETS remaining to the amount, once per UTC day', async (t) => {
  const { db, clock, workspaceId, addKey } = await setup(Date.UTC(2025, 4, 10, 8));
  t.teardown(() => db.close());
  const job = new CreditsRefillJob({ db, clock });
  const low = await addKey({ remainingRequests: 3, refillAmount: 100 });
  const above = await addKey({ remainingRequests: 500, refillAmount: 100 });
  const unlimited = await addKey({});
  const noSchedule = await addKey({ remainingRequests: 1 });

  const first = await job.runOnce();
  t.same(first.refilledKeyIds, [low]);
  t.equal(await remaining(db, low), 100, 'set to the amount, not 103');
  t.equal(await remaining(db, above), 500, 'a balance above the amount is left alone');
  t.equal(await remaining(db, unlimited), undefined);
  t.equal(await remaining(db, noSchedule), 1);

  await q.updateKey(db, low, { remainingRequests: 7 }, clock.nowMs());
  clock.advance(6 * 3_600_000); // same UTC day
  t.same((await job.runOnce()).refilledKeyIds, [], 'not twice on the same day');
  t.equal(await remaining(db, low), 7);

  clock.set(Date.UTC(2025, 4, 11, 0, 0, 1));
  t.same((await job.runOnce()).refilledKeyIds, [low], 'again the next day');
  t.equal(await remaining(db, low), 100);

  const audit = await q.listAuditLogs(db, { workspaceId, event: 'key.update' });
  t.equal(audit.length, 2, 'one audit event per refill');
  t.match(audit[0], { actor: { type: 'system', id: 'credits_refill' }, targets: [{ type: 'key', id: low }] });
});

t.test('a monthly refill fires on its day, and day 31 fires on the last day of short months', async (t) => {
  const { db, clock, addKey } = await setup(Date.UTC(2025, 1, 27, 12)); // 27 Feb 2025 (not a leap year)
  t.teardown(() => db.close());
  const job = new CreditsRefillJob({ db, clock });
  const on31 = await addKey({ remainingRequests: 0, refillAmount: 10, refillDay: 31 });
  const on28 = await addKey({ remainingRequests: 0, refillAmount: 20, refillDay: 28 });
  const on15 = await addKey({ remainingRequests: 0, refillAmount: 30, refillDay: 15 });

  t.same((await job.runOnce()).refilledKeyIds, [], 'nothing is due on the 27th');
  clock.set(Date.UTC(2025, 1, 28, 1));
  t.same((await job.runOnce()).refilledKeyIds.sort(), [on31, on28].sort(), 'the 28th is February\'s last day: day 28 and day 31 fire');
  t.equal(await remaining(db, on15), 0);

  // March has 31 days: day 31 fires on the 31st, not the 30th.
  await q.updateKey(db, on31, { remainingRequests: 0 }, clock.nowMs());
  clock.set(Date.UTC(2025, 2, 30, 1));
  t.same((await job.runOnce()).refilledKeyIds, []);
  clock.set(Date.UTC(2025, 2, 31, 1));
  t.same((await job.runOnce()).refilledKeyIds, [on31]);
  clock.set(Date.UTC(2025, 3, 15, 1));
  t.same((await job.runOnce()).refilledKeyIds, [on15]);
  t.equal(await remaining(db, on15), 30);
});

t.test('concurrent runs (two nodes) refill each key exactly once', async (t) => {
  const { db, clock, workspaceId, addKey } = await setup(Date.UTC(2025, 6, 1, 3));
  t.teardown(() => db.close());
  const keys = await Promise.all(Array.from({ length: 25 }, () => addKey({ remainingRequests: 0, refillAmount: 5 })));
  const jobA = new CreditsRefillJob({ db, clock, batchSize: 7 });
  const jobB = new CreditsRefillJob({ db, clock, batchSize: 4 });
  const [a, b] = await Promise.all([jobA.runOnce(), jobB.runOnce()]);
  const all = [...a.refilledKeyIds, ...b.refilledKeyIds].sort();
  t.same(all, [...keys].sort(), 'every key once, none twice');
  t.equal((await q.listAuditLogs(db, { workspaceId, event: 'key.update', limit: 1000 })).length, 25);
});

t.test('the credits counter is reset, so the refilled balance is used at once', async (t) => {
  const { db, clock, addKey } = await setup(Date.UTC(2025, 6, 1, 3));
  t.teardown(() => db.close());
  const limiter = new MemoryUsageLimiter({
    clock,
    persist: async (batch) => {
      for (const { keyId, consumed } of batch) await q.applyKeyCreditsSpend(db, keyId, consumed);
    },
  });
  t.teardown(() => limiter.close());
  const keyId = await addKey({ remainingRequests: 2, refillAmount: 50 });
  const load = async (id: string): Promise<number | null> => (await q.getKeyById(db, id))?.remainingRequests ?? null;
  t.match(await limiter.consume(keyId, 2, load), { valid: true, remaining: 0 });
  t.match(await limiter.consume(keyId, 1, load), { valid: false });
  const job = new CreditsRefillJob({ db, clock, usageLimiter: limiter });
  t.same((await job.runOnce()).refilledKeyIds, [keyId], 'the spent credits were written back first, so the key is due');
  t.equal(await remaining(db, keyId), 50);
  t.match(await limiter.consume(keyId, 1, load), { valid: true, remaining: 49 }, 'no stale counter of 0');
});

t.test('start() runs at once and stop() waits for the run', async (t) => {
  const { db, clock, addKey } = await setup(Date.UTC(2025, 6, 1, 3));
  t.teardown(() => db.close());
  const keyId = await addKey({ remainingRequests: 0, refillAmount: 9 });
  const job = new CreditsRefillJob({ db, clock, intervalMs: 3_600_000 });
  job.start();
  await job.stop();
  t.equal(await remaining(db, keyId), 9);
  clock.advance(DAY_MS);
});
