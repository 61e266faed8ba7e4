import t from 'tap';
import { SwrCache } from '../../../core/cache/swr-cache.ts';
import type { SwrCacheOptions, SwrRemoveEvent } from '../../../core/cache/swr-cache.ts';
import { TestClock } from '../../../core/clock.ts';
import { Fault } from '../../../core/fault.ts';
import { Metrics } from '../../../core/metrics.ts';
import { ControlledLoader, settle } from './loader-harness.ts';

const FRESH_MS = 1_000;
const STALE_MS = 10_000;

function makeCache(overrides: Partial<SwrCacheOptions> = {}) {
  const clock = new TestClock();
  const metrics = new Metrics();
  const cache = new SwrCache<string>({ name: 'test', freshMs: FRESH_MS, staleMs: STALE_MS, maxEntries: 100, clock, metrics, ...overrides });
  const loader = new ControlledLoader<string>();
  return { clock, metrics, cache, loader };
}

/** The value of `keygate_cache_<metric>` for this cache and (optionally) result, from the rendered text. */
async function metricValue(metrics: Metrics, metric: string, result?: string): Promise<number> {
  const text = await metrics.render();
  const labels = result === undefined ? '{cache="test"}' : `{cache="test",result="${result}"}`;
  const line = text.split('\n').find((candidate) => candidate.startsWith(`keygate_cache_${metric}${labels} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

/** Fills `key` with `value` through a load, at the clock's current time. */
async function prime(cache: SwrCache<string>, loader: ControlledLoader<string>, key: string, value: string | undefined): Promise<void> {
  const read = cache.get(key, loader.load);
  await loader.resolveNext(value);
  await read;
}

t.test('serves by window: fresh as is, stale with one background refresh, expired only after a load', async (t) => {
  const cases = [
    { ageMs: 0, served: 'old', refreshStarted: false, result: 'hit' },
    { ageMs: FRESH_MS - 1, served: 'old', refreshStarted: false, result: 'hit' },
    { ageMs: FRESH_MS, served: 'old', refreshStarted: true, result: 'stale' },
    { ageMs: STALE_MS - 1, served: 'old', refreshStarted: true, result: 'stale' },
    { ageMs: STALE_MS, served: 'new', refreshStarted: true, result: 'miss' },
    { ageMs: STALE_MS * 5, served: 'new', refreshStarted: true, result: 'miss' },
  ];
  for (const testCase of cases) {
    const { clock, cache, loader, metrics } = makeCache();
    await prime(cache, loader, 'k', 'old');
    clock.advance(testCase.ageMs);
    const syncValue = cache.getSync('k', loader.load);
    const expectMiss = testCase.result === 'miss';
    t.equal(syncValue, expectMiss ? SwrCache.MISS : 'old', `age ${testCase.ageMs}: getSync`);
    t.equal(loader.pending.length, testCase.refreshStarted && !expectMiss ? 1 : 0, `age ${testCase.ageMs}: getSync starts a refresh only when stale`);
    const read = cache.get('k', loader.load);
    t.equal(loader.pending.length, testCase.refreshStarted ? 1 : 0, `age ${testCase.ageMs}: at most one load running`);
    if (loader.pending.length > 0) await loader.resolveNext('new');
    t.equal(await read, testCase.served, `age ${testCase.ageMs}: served`);
    t.equal(cache.peek('k'), testCase.refreshStarted ? 'new' : 'old', `age ${testCase.ageMs}: entry after the read`);
    // Hit and stale: getSync and get count one each. Miss: the priming read and this get (getSync leaves misses to get).
    t.equal(await metricValue(metrics, 'reads_total', testCase.result), 2, `age ${testCase.ageMs}: counted as ${testCase.result}`);
  }
});

t.test('many stale reads start exactly one refresh, and its result is then fresh', async (t) => {
  const { clock, cache, loader, metrics } = makeCache();
  await prime(cache, loader, 'k', 'v1');
  clock.advance(FRESH_MS + 1);
  const reads = Array.from({ length: 50 }, () => cache.get('k', loader.load));
  t.same(await Promise.all(reads), Array(50).fill('v1'), 'all stale reads served the stale value');
  t.equal(loader.pending.length, 1, 'one refresh');
  await loader.resolveNext('v2');
  t.equal(cache.getSync('k', loader.load), 'v2');
  t.equal(loader.pending.length, 0, 'fresh again, no new load');
  t.equal(await metricValue(metrics, 'loads_total'), 2);
});

t.test('concurrent misses for one key share a single load (no thundering herd)', async (t) => {
  const { cache, loader, metrics } = makeCache();
  const reads = Array.from({ length: 100 }, () => cache.get('k', loader.load));
  const other = cache.get('other', loader.load);
  t.same(loader.calls, ['k', 'other'], 'one load per key');
  await loader.resolveNext('v');
  await loader.resolveNext('o');
  t.same(new Set(await Promise.all(reads)), new Set(['v']));
  t.equal(await other, 'o');
  t.equal(await metricValue(metrics, 'reads_total', 'miss'), 101);
  t.equal(await metricValue(metrics, 'loads_total'), 2);
});

t.test('a read past the stale window joins the refresh already running', async (t) => {
  const { clock, cache, loader } = makeCache();
  await prime(cache, loader, 'k', 'v1');
  clock.advance(FRESH_MS);
  t.equal(await cache.get('k', loader.load), 'v1', 'stale read starts the refresh');
  clock.advance(STALE_MS);
  const late = cache.get('k', loader.load);
  t.equal(loader.pending.length, 1, 'no second load');
  await loader.resolveNext('v2');
  t.equal(await late, 'v2');
});

t.test('caches "not found" negatively, with its own shorter windows', async (t) => {
  const { clock, cache, loader, metrics } = makeCache({ negativeFreshMs: 100, negativeStaleMs: 500 });
  await prime(cache, loader, 'missing', undefined);
  t.equal(cache.getSync('missing', loader.load), undefined, 'negative entry is served, not a MISS');
  t.equal(await cache.get('missing', loader.load), undefined);
  t.equal(loader.pending.length, 0, 'no load while negatively fresh');
  clock.advance(100);
  t.equal(await cache.get('missing', loader.load), undefined, 'negative stale is served');
  t.equal(loader.pending.length, 1, 'and refreshed');
  await loader.resolveNext('now-exists');
  t.equal(await cache.get('missing', loader.load), 'now-exists', 'the refresh replaced the negative entry');
  t.equal(await metricValue(metrics, 'reads_total', 'negative'), 3);

  await prime(cache, loader, 'gone', undefined);
  clock.advance(500);
  t.equal(cache.getSync('gone', loader.load), SwrCache.MISS, 'past the negative stale window: a miss');
  t.equal(cache.peek('gone'), undefined);
});

t.test('negative entries default to the value windows', async (t) => {
  const { clock, cache, loader } = makeCache();
  await prime(cache, loader, 'missing', undefined);
  clock.advance(FRESH_MS - 1);
  t.equal(cache.getSync('missing', loader.load), undefined);
  t.equal(loader.pending.length, 0);
  clock.advance(1);
  t.equal(cache.getSync('missing', loader.load), undefined);
  t.equal(loader.pending.length, 1, 'stale negative entry refreshes');
  await loader.resolveNext(undefined);
});

t.test('peek never loads, never serves past the stale window and leaves the LRU order alone', async (t) => {
  const { clock, cache, loader } = makeCache({ maxEntries: 2 });
  t.equal(cache.peek('k'), undefined, 'absent');
  t.equal(loader.calls.length, 0, 'no load');
  await prime(cache, loader, 'k', 'v');
  await prime(cache, loader, 'j', 'w');
  t.equal(cache.peek('k'), 'v');
  cache.set('x', 'y'); // k is still the least recently used despite the peek
  t.equal(cache.peek('k'), undefined, 'peek did not protect k from eviction');
  t.equal(cache.peek('j'), 'w');
  clock.advance(STALE_MS - 1);
  t.equal(cache.peek('j'), 'w', 'stale is peekable');
  t.equal(loader.pending.length, 0, 'and not refreshed by a peek');
  clock.advance(1);
  t.equal(cache.peek('j'), undefined, 'past stale is not');
});

t.test('a loader error reaches every waiting caller and is not cached', async (t) => {
  const { cache, loader, metrics } = makeCache();
  const reads = [cache.get('k', loader.load), cache.get('k', loader.load)];
  const failure = new Fault('err:keygate:database:unavailable');
  await loader.rejectNext(failure);
  for (const read of reads) await t.rejects(read, failure);
  t.equal(cache.size, 0, 'nothing cached');
  const retry = cache.get('k', loader.load);
  t.equal(loader.pending.length, 1, 'the next read loads again');
  await loader.resolveNext('v');
  t.equal(await retry, 'v');
  t.equal(await metricValue(metrics, 'load_errors_total'), 1);
});

t.test('a loader that throws synchronously rejects the read and leaves no load behind', async (t) => {
  const { cache } = makeCache();
  const failure = new Error('boom');
  await t.rejects(cache.get('k', () => { throw failure; }), failure);
  t.equal(await cache.get('k', async () => 'v'), 'v', 'a later read loads normally');
});

t.test('a failed background refresh keeps serving the stale value until the stale window ends', async (t) => {
  const { clock, cache, loader, metrics } = makeCache();
  await prime(cache, loader, 'k', 'v1');
  clock.advance(FRESH_MS);
  t.equal(await cache.get('k', loader.load), 'v1');
  await loader.rejectNext(new Error('database down'));
  t.equal(await cache.get('k', loader.load), 'v1', 'still served stale after the failure');
  t.equal(loader.pending.length, 1, 'the next stale read tries again (one at a time)');
  await loader.rejectNext(new Error('database down'));
  clock.advance(STALE_MS - FRESH_MS);
  const read = cache.get('k', loader.load);
  t.equal(loader.pending.length, 1, 'past stale: a foreground load');
  await loader.rejectNext(new Error('still down'));
  await t.rejects(read, /still down/, 'and its error reaches the caller');
  t.equal(await metricValue(metrics, 'load_errors_total'), 3);
});

t.test('remove during an in-flight load: the old result is not written back nor served to later reads', async (t) => {
  const { cache, loader } = makeCache();
  const before = cache.get('k', loader.load);
  cache.remove('k');
  const after = cache.get('k', loader.load);
  t.equal(loader.pending.length, 1, 'the new load waits for the outdated one: never two loads for one key');
  await loader.resolveNext('outdated');
  t.equal(await before, 'outdated', 'the read that started before the remove gets its load');
  t.equal(cache.peek('k'), undefined, 'the outdated result was not written back');
  t.equal(loader.pending.length, 1, 'the new load started once the outdated one settled');
  await loader.resolveNext('current');
  t.equal(await after, 'current', 'the read that started after the remove never sees the outdated value');
  t.equal(cache.peek('k'), 'current');
});

t.test('remove during a background refresh: the refresh result is dropped', async (t) => {
  const { clock, cache, loader } = makeCache();
  await prime(cache, loader, 'k', 'v1');
  clock.advance(FRESH_MS);
  t.equal(await cache.get('k', loader.load), 'v1');
  cache.remove(['k', 'unrelated']);
  await loader.resolveNext('v2-outdated');
  t.equal(cache.peek('k'), undefined);
  const read = cache.get('k', loader.load);
  await loader.resolveNext('v3');
  t.equal(await read, 'v3');
});

t.test('an outdated load that fails does not block or fail the load after it', async (t) => {
  const { cache, loader } = makeCache();
  const before = cache.get('k', loader.load);
  cache.remove('k');
  const after = cache.get('k', loader.load);
  await loader.rejectNext(new Error('outdated failure'));
  await t.rejects(before, /outdated failure/);
  await loader.resolveNext('current');
  t.equal(await after, 'current');
});

t.test('clear during in-flight loads drops every result and notifies with keys undefined', async (t) => {
  const { cache, loader } = makeCache();
  await prime(cache, loader, 'kept-before', 'x');
  const events: SwrRemoveEvent[] = [];
  cache.onRemove.push((event) => events.push(event));
  const reads = [cache.get('a', loader.load), cache.get('b', loader.load)];
  cache.clear();
  t.equal(cache.size, 0);
  await loader.resolveNext('a-old');
  await loader.resolveNext('b-old');
  t.same(await Promise.all(reads), ['a-old', 'b-old']);
  t.equal(cache.size, 0, 'no outdated result written after the clear');
  t.same(events, [{ cacheName: 'test', keys: undefined, origin: undefined }]);
});

t.test('set during an in-flight load wins over the load result', async (t) => {
  const { cache, loader } = makeCache();
  const read = cache.get('k', loader.load);
  cache.set('k', 'written');
  await loader.resolveNext('loaded-before-write');
  t.equal(await read, 'loaded-before-write');
  t.equal(cache.getSync('k', loader.load), 'written');
  cache.set('k', undefined);
  t.equal(cache.getSync('k', loader.load), undefined, 'set(undefined) writes a negative entry');
});

t.test('stays within maxEntries, evicting the least recently used entry', async (t) => {
  const { cache, metrics } = makeCache({ maxEntries: 3 });
  const load = async (key: string) => `value-${key}`;
  for (const key of ['a', 'b', 'c']) await cache.get(key, load);
  await cache.get('a', load); // a is now most recent; b is the least recent
  await cache.get('d', load);
  await cache.get('e', load);
  t.equal(cache.size, 3);
  t.equal(cache.peek('a'), 'value-a', 'recently read entry kept');
  t.equal(cache.peek('b'), undefined, 'least recently used evicted');
  t.equal(cache.peek('c'), undefined);
  t.equal(await metricValue(metrics, 'evictions_total'), 2);
  t.equal(await metricValue(metrics, 'entries_count'), 3);
  for (let i = 0; i < 1000; i++) cache.set(`bulk-${i}`, 'x');
  t.equal(cache.size, 3, 'bounded under many writes');
});

t.test('onRemove listeners see explicit removes with their origin, never evictions', async (t) => {
  const { cache } = makeCache({ maxEntries: 1 });
  const events: SwrRemoveEvent[] = [];
  cache.onRemove.push((event) => events.push(event));
  cache.set('a', '1');
  cache.set('b', '2'); // evicts a
  cache.remove('b');
  cache.remove(['x', 'y'], { origin: 'peer-7' });
  cache.clear({ origin: 'peer-7' });
  t.same(events, [
    { cacheName: 'test', keys: ['b'], origin: undefined },
    { cacheName: 'test', keys: ['x', 'y'], origin: 'peer-7' },
    { cacheName: 'test', keys: undefined, origin: 'peer-7' },
  ]);
});

t.test('a throwing listener does not stop the removal or the other listeners', async (t) => {
  const { cache } = makeCache();
  cache.set('k', 'v');
  const seen: string[] = [];
  cache.onRemove.push(() => { throw new Error('listener bug'); });
  cache.onRemove.push((event) => seen.push(String(event.keys)));
  t.throws(() => cache.remove('k'), { name: 'Fault', code: 'err:unkey:application:unexpected_error', message: /listener bug/ });
  t.equal(cache.peek('k'), undefined, 'removed anyway');
  t.same(seen, ['k'], 'the other listener ran');
});

t.test('counts reads by result and tracks the entry gauge', async (t) => {
  const { clock, cache, loader, metrics } = makeCache();
  await prime(cache, loader, 'k', 'v');   // miss
  await cache.get('k', loader.load);      // hit
  cache.getSync('k', loader.load);        // hit
  clock.advance(FRESH_MS);
  await cache.get('k', loader.load);      // stale
  await loader.resolveNext('v2');
  await prime(cache, loader, 'n', undefined); // miss
  await cache.get('n', loader.load);      // negative
  t.equal(await metricValue(metrics, 'reads_total', 'miss'), 2);
  t.equal(await metricValue(metrics, 'reads_total', 'hit'), 2);
  t.equal(await metricValue(metrics, 'reads_total', 'stale'), 1);
  t.equal(await metricValue(metrics, 'reads_total', 'negative'), 1);
  t.equal(await metricValue(metrics, 'loads_total'), 3);
  t.equal(await metricValue(metrics, 'entries_count'), 2);
  cache.remove('k');
  t.equal(await metricValue(metrics, 'entries_count'), 1);
  cache.clear();
  t.equal(await metricValue(metrics, 'entries_count'), 0);
});

t.test('two caches share the metrics, told apart by the cache label', async (t) => {
  const metrics = new Metrics();
  const one = new SwrCache<string>({ name: 'one', freshMs: 1, staleMs: 2, maxEntries: 10, metrics });
  const two = new SwrCache<string>({ name: 'two', freshMs: 1, staleMs: 2, maxEntries: 10, metrics });
  await one.get('k', async () => 'v');
  await two.get('k', async () => 'v');
  await two.get('j', async () => 'v');
  const text = await metrics.render();
  t.match(text, /keygate_cache_loads_total\{cache="one"\} 1/);
  t.match(text, /keygate_cache_loads_total\{cache="two"\} 2/);
});

t.test('works without metrics and with the system clock', async (t) => {
  const cache = new SwrCache<number>({ name: 'plain', freshMs: 60_000, staleMs: 120_000, maxEntries: 10 });
  t.equal(await cache.get('k', async () => 42), 42);
  t.equal(cache.getSync('k', async () => 0), 42);
});

t.test('rejects invalid options with a config fault naming the cache', async (t) => {
  const base = { name: 'bad', freshMs: 10, staleMs: 20, maxEntries: 10 };
  const cases: Array<[Partial<SwrCacheOptions>, RegExp]> = [
    [{ staleMs: 5 }, /staleMs must be >= freshMs/],
    [{ freshMs: -1 }, /freshMs must be a number >= 0/],
    [{ freshMs: Number.NaN }, /freshMs/],
    [{ maxEntries: 0 }, /maxEntries must be a positive integer/],
    [{ maxEntries: 1.5 }, /maxEntries/],
    [{ name: '' }, /name must be a non-empty string/],
    [{ negativeFreshMs: -5 }, /negativeFreshMs/],
  ];
  for (const [override, message] of cases) {
    t.throws(() => new SwrCache({ ...base, ...override }), { code: 'err:keygate:config:invalid', message }, JSON.stringify(override));
  }
});

t.test('settle helper lets pending callbacks run', async (t) => {
  let ran = false;
  void Promise.resolve().then(() => { ran = true; });
  await settle();
  t.ok(ran);
});
