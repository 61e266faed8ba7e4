/**
 * Seeded simulation of the SWR cache: thousands of random steps (clock advances, reads through
 * `get` and `getSync`, loads settled in random order with values, "not found" or errors, source
 * changes followed by `remove`/`set`/`clear`, evictions from a tiny capacity) checked against
 * three invariants after every step:
 *   1. no read is served an entry at or past its stale window;
 *   2. no read is served a value older than the last remove/set/clear of its key that happened
 *      before the read began;
 *   3. never two loads of one key at once.
 * Replay a failure with KEYGATE_SIM_SEED=<seed> npx tap test/core/cache/swr-cache.simulation.test.ts
 */
import t from 'tap';
import { SwrCache } from '../../../core/cache/swr-cache.ts';
import { TestClock } from '../../../core/clock.ts';
import { Metrics } from '../../../core/metrics.ts';
import { seededRandom } from '../../helpers/seeded-random.ts';
import { settle } from './loader-harness.ts';

const STEPS_PER_SEED = 10_000;
const FIXED_SEEDS = [1, 7, 42, 0xc0ffee];

const replaySeed = process.env.KEYGATE_SIM_SEED;
const seeds = replaySeed !== undefined ? [Number(replaySeed)] : [...FIXED_SEEDS, (Date.now() ^ process.pid) >>> 0];

for (const seed of seeds) {
  t.test(`seed ${seed}: never serves past the stale window or older than the last remove, never two loads per key (replay: KEYGATE_SIM_SEED=${seed})`, async (t) => {
    const report = await simulate(seed, STEPS_PER_SEED);
    t.same(report.violations.slice(0, 10), [], `no invariant violations (${report.violations.length} in total)`);
    t.equal(report.unsettledReads, 0, 'every read settled once the loads did');
    // Guard against a vacuous run: the interesting paths must actually have been exercised.
    t.ok(report.counts.staleServed > 0, `stale reads served: ${report.counts.staleServed}`);
    t.ok(report.counts.negativeServed > 0, `negative reads served: ${report.counts.negativeServed}`);
    t.ok(report.counts.sharedLoads > 0, `reads that waited on a load already running: ${report.counts.sharedLoads}`);
    t.ok(report.counts.outdatedLoadsSettled > 0, `loads that settled after their key was invalidated: ${report.counts.outdatedLoadsSettled}`);
    t.ok(report.counts.loadErrorsSeenByReads > 0, `reads that received a loader error: ${report.counts.loadErrorsSeenByReads}`);
    t.ok(report.counts.evictions > 0, `evictions: ${report.counts.evictions}`);
  });
}

interface SimValue {
  key: string;
  version: number;
  /** Which load (or set) produced it, to look up when it was written. */
  writeId: number;
}

interface SimLoad {
  id: number;
  key: string;
  version: number;
  resolve(value: SimValue | undefined): void;
  reject(err: unknown): void;
}

class SimLoaderError extends Error {
  readonly key: string;
  constructor(key: string) {
    super(`simulated failure loading ${key}`);
    this.key = key;
  }
}

interface SimReport {
  violations: string[];
  unsettledReads: number;
  counts: { staleServed: number; negativeServed: number; sharedLoads: number; outdatedLoadsSettled: number; loadErrorsSeenByReads: number; evictions: number };
}

async function simulate(seed: number, steps: number): Promise<SimReport> {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const freshMs = 50 + Math.floor(random() * 500);
  const staleMs = freshMs + Math.floor(random() * 2_000);
  const negativeStaleMs = 1 + Math.floor(random() * staleMs);
  const negativeFreshMs = Math.floor(random() * negativeStaleMs);
  const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
  const clock = new TestClock();
  const metrics = new Metrics();
  const cache = new SwrCache<SimValue>({ name: 'sim', freshMs, staleMs, negativeFreshMs, negativeStaleMs, maxEntries: 4, clock, metrics });

  const sourceVersion = new Map(keys.map((key) => [key, 0]));
  const foundAt = (key: string, version: number) => (version + key.charCodeAt(0)) % 4 !== 0;
  /** When each value was written into the cache (load completion or set). */
  const writtenAtMs = new Map<number, number>();
  /** Per key: every "not found" written, with the source version it reflects. */
  const negativeWrites = new Map<string, Array<{ version: number; atMs: number }>>(keys.map((key) => [key, []]));
  const activeLoads = new Map<string, number>(keys.map((key) => [key, 0]));
  const pendingLoads: SimLoad[] = [];
  const violations: string[] = [];
  const counts = { staleServed: 0, negativeServed: 0, sharedLoads: 0, outdatedLoadsSettled: 0, loadErrorsSeenByReads: 0, evictions: 0 };
  let nextWriteId = 1;
  let unsettledReads = 0;
  let step = 0;

  const load = (key: string): Promise<SimValue | undefined> => {
    const running = activeLoads.get(key)!;
    if (running !== 0) violations.push(`step ${step}: a load of ${key} started while ${running} other(s) ran`);
    activeLoads.set(key, running + 1);
    return new Promise((resolve, reject) => {
      pendingLoads.push({ id: nextWriteId++, key, version: sourceVersion.get(key)!, resolve, reject });
    });
  };

  const checkServed = (key: string, value: SimValue | undefined, minVersion: number, how: string) => {
    const nowMs = clock.nowMs();
    if (value === undefined) {
      const ok = negativeWrites.get(key)!.some((write) => write.version >= minVersion && nowMs - write.atMs < negativeStaleMs);
      if (!ok) violations.push(`step ${step}: ${how} ${key} served "not found" with no live negative write of version >= ${minVersion}`);
      return;
    }
    if (value.key !== key) violations.push(`step ${step}: ${how} ${key} served the value of ${value.key}`);
    if (value.version < minVersion) violations.push(`step ${step}: ${how} ${key} served version ${value.version}, older than ${minVersion} at read start`);
    const writtenMs = writtenAtMs.get(value.writeId);
    if (writtenMs === undefined) violations.push(`step ${step}: ${how} ${key} served a value that was never written (write ${value.writeId})`);
    else if (nowMs - writtenMs >= staleMs) violations.push(`step ${step}: ${how} ${key} served an entry aged ${nowMs - writtenMs} ms >= staleMs ${staleMs}`);
  };

  const readAsync = (key: string, minVersion: number) => {
    unsettledReads++;
    cache.get(key, load).then(
      (value) => { unsettledReads--; checkServed(key, value, minVersion, 'get'); },
      (err: unknown) => {
        unsettledReads--;
        if (err instanceof SimLoaderError && err.key === key) counts.loadErrorsSeenByReads++;
        else violations.push(`step ${step}: get ${key} rejected with an unexpected error: ${String(err)}`);
      },
    );
  };

  const read = (key: string) => {
    const minVersion = sourceVersion.get(key)!;
    const peeked = cache.peek(key);
    if (peeked !== undefined) checkServed(key, peeked, minVersion, 'peek');
    if (random() < 0.5) {
      // The hot-path pattern: getSync, and get only on a miss.
      const value = cache.getSync(key, load);
      if (value === SwrCache.MISS) readAsync(key, minVersion);
      else checkServed(key, value, minVersion, 'getSync');
    } else {
      const pendingBefore = pendingLoads.length;
      const anyRunning = activeLoads.get(key)! > 0;
      readAsync(key, minVersion);
      if (anyRunning && pendingLoads.length === pendingBefore) counts.sharedLoads++;
    }
  };

  const settleLoad = (pending: SimLoad, outcome: 'value' | 'error') => {
    pendingLoads.splice(pendingLoads.indexOf(pending), 1);
    activeLoads.set(pending.key, activeLoads.get(pending.key)! - 1);
    if (pending.version < sourceVersion.get(pending.key)!) counts.outdatedLoadsSettled++;
    if (outcome === 'error') return pending.reject(new SimLoaderError(pending.key));
    const nowMs = clock.nowMs();
    noteWrite(nowMs);
    if (foundAt(pending.key, pending.version)) {
      writtenAtMs.set(pending.id, nowMs);
      pending.resolve({ key: pending.key, version: pending.version, writeId: pending.id });
    } else {
      negativeWrites.get(pending.key)!.push({ version: pending.version, atMs: nowMs });
      pending.resolve(undefined);
    }
  };

  /** Moves time: often to the exact edge of some entry's window, where off-by-one bugs live. */
  const advanceClock = () => {
    const nowMs = clock.nowMs();
    if (random() < 0.4 && recentWritesMs.length > 0) {
      const edgeMs = pick(recentWritesMs) + pick([freshMs, staleMs, negativeFreshMs, negativeStaleMs]) + pick([-1, 0, 0, 1]);
      if (edgeMs >= nowMs) return clock.set(edgeMs);
    }
    clock.advance(random() < 0.3 ? 0 : Math.floor(random() * random() * staleMs));
  };
  const recentWritesMs: number[] = [];
  const noteWrite = (atMs: number) => {
    recentWritesMs.push(atMs);
    if (recentWritesMs.length > 16) recentWritesMs.shift();
  };

  /** A change at the source, followed by the invalidation a mutating handler performs. */
  const changeSource = (key: string) => sourceVersion.set(key, sourceVersion.get(key)! + 1);

  for (step = 0; step < steps; step++) {
    const roll = random();
    if (roll < 0.34) {
      read(pick(keys));
    } else if (roll < 0.58) {
      if (pendingLoads.length > 0) settleLoad(pick(pendingLoads), random() < 0.8 ? 'value' : 'error');
    } else if (roll < 0.8) {
      advanceClock();
    } else if (roll < 0.9) {
      const removed = random() < 0.8 ? [pick(keys)] : [pick(keys), pick(keys)];
      for (const key of new Set(removed)) changeSource(key);
      cache.remove(removed);
    } else if (roll < 0.97) {
      const key = pick(keys);
      changeSource(key);
      const version = sourceVersion.get(key)!;
      const writeId = nextWriteId++;
      noteWrite(clock.nowMs());
      if (foundAt(key, version)) {
        writtenAtMs.set(writeId, clock.nowMs());
        cache.set(key, { key, version, writeId });
      } else {
        negativeWrites.get(key)!.push({ version, atMs: clock.nowMs() });
        cache.set(key, undefined);
      }
    } else {
      for (const key of keys) changeSource(key);
      cache.clear();
    }
    await settle();
  }

  // Drain: settle every remaining load (new ones may start as outdated ones finish), bounded.
  for (let round = 0; round < 10_000 && (pendingLoads.length > 0 || unsettledReads > 0); round++) {
    if (pendingLoads.length > 0) settleLoad(pendingLoads[0]!, 'value');
    await settle();
  }
  const rendered = await metrics.render();
  const metricValue = (pattern: RegExp) => Number(pattern.exec(rendered)?.[1] ?? 0);
  counts.evictions = metricValue(/keygate_cache_evictions_total\{cache="sim"\} (\d+)/);
  counts.staleServed = metricValue(/keygate_cache_reads_total\{cache="sim",result="stale"\} (\d+)/);
  counts.negativeServed = metricValue(/keygate_cache_reads_total\{cache="sim",result="negative"\} (\d+)/);
  return { violations, unsettledReads, counts };
}

