import t from 'tap';
import type { ConsumedCredits } from '../../../core/credits/interface.ts';
import { MemoryUsageLimiter } from '../../../core/credits/memory.ts';
import { WriteBackQueue } from '../../../core/credits/write-back-queue.ts';
import { CreditStore } from './usage-limiter-suite.ts';

t.test('sums amounts per key and writes them in bounded batches', async (t) => {
  const batches: ConsumedCredits[][] = [];
  const queue = new WriteBackQueue({ persist: async (batch) => void batches.push([...batch]), maxBatchRows: 2, flushIntervalMs: 60_000 });
  queue.add('a', 1);
  queue.add('b', 2);
  queue.add('a', 3);
  queue.add('c', 4);
  queue.add('d', 0); // nothing to write
  t.equal(queue.pendingKeys, 3);
  t.equal(queue.unsaved('a'), 4);
  await queue.flush();
  t.same(batches, [[{ keyId: 'a', consumed: 4 }, { keyId: 'b', consumed: 2 }], [{ keyId: 'c', consumed: 4 }]]);
  t.equal(queue.unsaved('a'), 0);
  await queue.close();
});

t.test('a failed write keeps its amounts and is retried; the error is reported', async (t) => {
  const store = new CreditStore();
  store.rows.set('a', 10);
  let failuresLeft = 1;
  const errors: unknown[] = [];
  const queue = new WriteBackQueue({
    persist: async (batch) => {
      if (failuresLeft-- > 0) throw new Error('database down');
      await store.persist(batch);
    },
    onPersistError: (err) => errors.push(err),
    flushIntervalMs: 60_000,
  });
  queue.add('a', 3);
  await t.rejects(queue.flush(), /database down/);
  t.equal(queue.unsaved('a'), 3, 'still pending');
  queue.add('a', 1);
  await queue.flush();
  t.equal(store.rows.get('a'), 6);
  t.equal(errors.length, 1);
  await queue.close();
});

t.test('the flush timer writes pending amounts on its own', async (t) => {
  const store = new CreditStore();
  store.rows.set('a', 10);
  let written!: () => void;
  const done = new Promise<void>((resolve) => (written = resolve));
  const queue = new WriteBackQueue({ persist: async (batch) => { await store.persist(batch); written(); }, flushIntervalMs: 5 });
  queue.add('a', 2);
  // The queue's timer is unref'd (it must not keep a process alive); this deadline keeps the test's.
  const deadline = setTimeout(() => written(), 5_000);
  await done;
  clearTimeout(deadline);
  t.equal(store.rows.get('a'), 8);
  await queue.close();
});

t.test('a full queue: reject refuses before spending, drop spends and counts, wait flushes', async (t) => {
  for (const policy of ['reject', 'drop', 'wait'] as const) {
    const store = new CreditStore();
    let persistWorks = policy === 'wait';
    const limiter = new MemoryUsageLimiter({
      persist: async (batch) => {
        if (!persistWorks) throw new Error('database down');
        await store.persist(batch);
      },
      maxPendingKeys: 2,
      overflowPolicy: policy,
      flushIntervalMs: 60_000,
    });
    for (const keyId of ['k1', 'k2', 'k3']) store.rows.set(keyId, 5);
    await limiter.consume('k1', 1, store.load);
    await limiter.consume('k2', 1, store.load);
    t.same(await limiter.consume('k1', 1, store.load), { valid: true, remaining: 3 }, `${policy}: a key already queued still fits`);
    if (policy === 'reject') {
      await t.rejects(limiter.consume('k3', 1, store.load), { code: 'err:unkey:application:service_unavailable' });
      persistWorks = true;
      await limiter.flush();
      t.same(await limiter.consume('k3', 1, store.load), { valid: true, remaining: 4 }, 'nothing was spent by the refused call');
    } else if (policy === 'drop') {
      t.same(await limiter.consume('k3', 1, store.load), { valid: true, remaining: 4 });
      t.equal(limiter.writeBack.droppedCredits, 1);
      persistWorks = true;
    } else {
      t.same(await limiter.consume('k3', 1, store.load), { valid: true, remaining: 4 });
      t.equal(store.rows.get('k1'), 3, 'the wait flushed the queue');
    }
    await limiter.close();
  }
});
