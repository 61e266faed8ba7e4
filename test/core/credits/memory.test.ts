import t from 'tap';
import { TestClock } from '../../../core/clock.ts';
import type { ConsumedCredits } from '../../../core/credits/interface.ts';
import { MemoryUsageLimiter } from '../../../core/credits/memory.ts';
import { CreditStore, usageLimiterSuite } from './usage-limiter-suite.ts';

usageLimiterSuite(t, 'memory', async (store, clock) => {
  const limiter = new MemoryUsageLimiter({ persist: store.persist, clock, flushIntervalMs: 60_000 });
  return { nodes: [limiter], close: () => limiter.close() };
});

/** A persist whose calls hang until released, to hold amounts "in flight". */
function gatedPersist(store: CreditStore) {
  let release!: () => void;
  let gate = new Promise<void>((resolve) => (release = resolve));
  return {
    persist: async (batch: readonly ConsumedCredits[]) => {
      await gate;
      await store.persist(batch);
    },
    open() {
      release();
      gate = Promise.resolve();
    },
  };
}

t.test('memory: a counter past its TTL reloads from the database minus what is not written back yet', async (t) => {
  const store = new CreditStore();
  store.rows.set('key_t', 10);
  const clock = new TestClock();
  const gated = gatedPersist(store);
  const limiter = new MemoryUsageLimiter({ persist: gated.persist, clock, counterTtlMs: 1_000, flushIntervalMs: 60_000 });
  await limiter.consume('key_t', 5, store.load);
  const flushing = limiter.flush(); // in flight, held by the gate
  clock.advance(1_001);
  t.same(await limiter.consume('key_t', 1, store.load), { valid: true, remaining: 4 }, 'the database still says 10; 5 are in flight');
  t.equal(store.loads, 2);
  gated.open();
  await flushing;
  await limiter.close();
  t.equal(store.rows.get('key_t'), 4);
});

t.test('memory: a reset during a load keeps the stale load from installing its value', async (t) => {
  const store = new CreditStore();
  store.rows.set('key_l', 10);
  const limiter = new MemoryUsageLimiter({ persist: store.persist, flushIntervalMs: 60_000 });
  let releaseLoad!: () => void;
  const slowLoad = async (keyId: string) => {
    const value = await store.load(keyId);
    await new Promise<void>((resolve) => (releaseLoad = resolve));
    return value;
  };
  const first = limiter.consume('key_l', 1, slowLoad);
  await new Promise<void>((resolve) => setImmediate(resolve));
  store.rows.set('key_l', 100);
  await limiter.reset('key_l');
  releaseLoad();
  t.same(await first, { valid: true, remaining: 9 }, 'the caller of the old load still gets an answer');
  // The next consume reloads (100), minus the credit the first caller spent that is not written back yet.
  t.same(await limiter.consume('key_l', 1, store.load), { valid: true, remaining: 98 }, 'but the next consume reloads');
  await limiter.flush();
  t.equal(store.rows.get('key_l'), 98, 'both spent credits reach the database');
  await limiter.close();
});

t.test('memory: the counter map stays bounded', async (t) => {
  const store = new CreditStore();
  const limiter = new MemoryUsageLimiter({ persist: store.persist, maxCounters: 10, flushIntervalMs: 60_000 });
  for (let index = 0; index < 50; index++) {
    store.rows.set(`key_${index}`, 5);
    await limiter.consume(`key_${index}`, 1, store.load);
  }
  t.same(await limiter.consume('key_49', 1, store.load), { valid: true, remaining: 3 }, 'recent keys stay cached');
  t.equal(store.loads, 50);
  t.same(await limiter.consume('key_0', 1, store.load), { valid: true, remaining: 3 }, 'an evicted key reloads minus unsaved credits');
  await limiter.close();
});

t.test('memory: a write-back that lands while a reload is reading the database never lets credits be spent twice', async (t) => {
  const store = new CreditStore();
  store.rows.set('key_r', 10);
  const clock = new TestClock();
  const limiter = new MemoryUsageLimiter({ persist: store.persist, clock, counterTtlMs: 1_000, flushIntervalMs: 60_000 });
  t.teardown(() => limiter.close());
  t.same(await limiter.consume('key_r', 4, store.load), { valid: true, remaining: 6 });
  clock.advance(1_001);
  // The reload reads the database (still 10: the 4 spent credits are pending), and the write-back
  // of those 4 completes before the load returns.
  let readValue: (() => void) | undefined;
  const racingLoad = async (keyId: string) => {
    const value = await store.load(keyId);
    await new Promise<void>((resolve) => (readValue = resolve));
    return value;
  };
  const consuming = limiter.consume('key_r', 1, racingLoad);
  while (readValue === undefined) await new Promise<void>((resolve) => setImmediate(resolve));
  await limiter.flush();
  t.equal(store.rows.get('key_r'), 6, 'the database caught up during the load');
  readValue();
  t.same(await consuming, { valid: true, remaining: 5 }, 'the 4 spent credits are still counted');
});
