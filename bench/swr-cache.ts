/**
 * Micro-benchmark of the SWR cache's hot path: a fresh hit, side by side with a bare `Map`
 * lookup and a bare `lru-cache` get over the same keys, and the clock read every hit makes
 * (`Date.now()`, which dominates the difference on VMs without a fast clock source). Rounds are interleaved so that every
 * variant sees the same machine conditions, and the median of the rounds is printed.
 *
 *   npx node bench/swr-cache.ts            (about 3 s)
 *
 * Numbers are only meaningful as ratios within one run; quote the machine with any absolute figure.
 */
import { LRUCache } from 'lru-cache';
import { SwrCache } from '../core/cache/swr-cache.ts';
import { Metrics } from '../core/metrics.ts';

const KEY_COUNT = 10_000;
const ROUNDS = 5;
const ROUND_MS = 100;
const BATCH = 10_000;

interface Row { id: string; workspaceId: string }

const keys = Array.from({ length: KEY_COUNT }, (_, index) => `key-hash-${index.toString(36).padStart(8, '0')}`);
const rows = keys.map((key): Row => ({ id: key, workspaceId: 'ws_1' }));
const load = async (key: string): Promise<Row | undefined> => rows[keys.indexOf(key)];

const map = new Map<string, Row>();
const lru = new LRUCache<string, Row>({ max: KEY_COUNT * 2 });
const swrPlain = new SwrCache<Row>({ name: 'bench_plain', freshMs: 3_600_000, staleMs: 7_200_000, maxEntries: KEY_COUNT * 2 });
const swrMetered = new SwrCache<Row>({ name: 'bench_metered', freshMs: 3_600_000, staleMs: 7_200_000, maxEntries: KEY_COUNT * 2, metrics: new Metrics() });
for (let index = 0; index < KEY_COUNT; index++) {
  map.set(keys[index]!, rows[index]!);
  lru.set(keys[index]!, rows[index]!);
  swrPlain.set(keys[index]!, rows[index]!);
  swrMetered.set(keys[index]!, rows[index]!);
}

let sink = 0;

/** Each variant runs BATCH lookups per call and returns how many it did. */
const variants: Array<{ name: string; run: () => number | Promise<number> }> = [
  { name: 'Map.get', run: () => { for (let i = 0; i < BATCH; i++) sink += map.get(keys[i % KEY_COUNT]!) === undefined ? 0 : 1; return BATCH; } },
  { name: 'Date.now() alone', run: () => { for (let i = 0; i < BATCH; i++) sink += Date.now() & 1; return BATCH; } },
  { name: 'LRUCache.get', run: () => { for (let i = 0; i < BATCH; i++) sink += lru.get(keys[i % KEY_COUNT]!) === undefined ? 0 : 1; return BATCH; } },
  { name: 'SwrCache.getSync', run: () => { for (let i = 0; i < BATCH; i++) sink += swrPlain.getSync(keys[i % KEY_COUNT]!, load) === SwrCache.MISS ? 0 : 1; return BATCH; } },
  { name: 'SwrCache.getSync +metrics', run: () => { for (let i = 0; i < BATCH; i++) sink += swrMetered.getSync(keys[i % KEY_COUNT]!, load) === SwrCache.MISS ? 0 : 1; return BATCH; } },
  { name: 'await SwrCache.get', run: async () => { for (let i = 0; i < BATCH; i++) sink += (await swrPlain.get(keys[i % KEY_COUNT]!, load)) === undefined ? 0 : 1; return BATCH; } },
];

const samples = new Map<string, number[]>(variants.map((variant) => [variant.name, []]));
for (let round = 0; round < ROUNDS + 1; round++) {
  for (const variant of variants) {
    const startNs = process.hrtime.bigint();
    const deadlineNs = startNs + BigInt(ROUND_MS) * 1_000_000n;
    let operations = 0;
    while (process.hrtime.bigint() < deadlineNs) operations += await variant.run();
    const elapsedSeconds = Number(process.hrtime.bigint() - startNs) / 1e9;
    // Round 0 is a warm-up for the JIT and is discarded.
    if (round > 0) samples.get(variant.name)!.push(operations / elapsedSeconds);
  }
}

const baseline = median(samples.get('Map.get')!);
console.log(`SWR cache fresh-hit micro-benchmark: ${KEY_COUNT} keys, median of ${ROUNDS} interleaved rounds of ${ROUND_MS} ms, node ${process.version}`);
console.log('variant'.padEnd(28) + 'ops/s'.padStart(16) + 'ns/op'.padStart(10) + 'vs Map'.padStart(10));
for (const variant of variants) {
  const opsPerSecond = median(samples.get(variant.name)!);
  console.log(
    variant.name.padEnd(28) +
      Math.round(opsPerSecond).toLocaleString('en-US').padStart(16) +
      (1e9 / opsPerSecond).toFixed(1).padStart(10) +
      `${(opsPerSecond / baseline).toFixed(2)}x`.padStart(10),
  );
}
if (sink === 0) console.log('(no hits: the benchmark is broken)');

function median(values: readonly number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.floor(sorted.length / 2)]!;
}
