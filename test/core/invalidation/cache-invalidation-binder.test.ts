import t from 'tap';
import { SwrCache } from '../../../core/cache/swr-cache.ts';
import { TestClock } from '../../../core/clock.ts';
import { CacheInvalidationBinder } from '../../../core/invalidation/cache-invalidation-binder.ts';
import { MemoryBus, MemoryBusHub } from '../../../core/invalidation/memory-bus.ts';
import { waitUntil } from '../../helpers/invalidation-bus-suite.ts';

function node(hub: MemoryBusHub) {
  const bus = new MemoryBus({ hub });
  const binder = new CacheInvalidationBinder(bus);
  const cache = new SwrCache<string>({ name: 'verification_key_by_hash', freshMs: 60_000, staleMs: 120_000, maxEntries: 100, clock: new TestClock() });
  return { bus, binder, cache };
}

t.test('a removal on one node reaches the same cache on every node, and never echoes back', async (t) => {
  const hub = new MemoryBusHub();
  const a = node(hub);
  const b = node(hub);
  t.teardown(async () => { await a.bus.close(); await b.bus.close(); });
  a.binder.bind('verification_key_by_hash', a.cache, { publishLocalRemovals: true });
  b.binder.bind('verification_key_by_hash', b.cache, { publishLocalRemovals: true });
  let source = 'valid';
  const load = async () => source;
  t.equal(await a.cache.get('h', load), 'valid');
  t.equal(await b.cache.get('h', load), 'valid');

  source = 'disabled';
  a.cache.remove('h'); // what a mutating handler does after its transaction commits
  await waitUntil(() => b.cache.peek('h') === undefined, 'b dropped the entry');
  t.equal(await b.cache.get('h', load), 'disabled');
  // Let any echo run: the remote removal carries an origin, so b publishes nothing.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(a.bus.status().publishedCount, 1);
  t.equal(b.bus.status().publishedCount, 0, 'the applied invalidation was not published again');
});

t.test('clear_all and resync clear the bound caches; unknown names are ignored', async (t) => {
  const hub = new MemoryBusHub();
  const a = node(hub);
  const b = node(hub);
  t.teardown(async () => { await a.bus.close(); await b.bus.close(); });
  const other = new SwrCache<string>({ name: 'live_api_by_id', freshMs: 60_000, staleMs: 120_000, maxEntries: 100, clock: new TestClock() });
  b.binder.bind('verification_key_by_hash', b.cache);
  const unbind = b.binder.bind('live_api_by_id', other);
  b.cache.set('h', 'v');
  other.set('api', 'v');
  await a.bus.publish({ cache: 'unknown_cache', keys: ['h'] });
  await a.bus.publish({ cache: 'verification_key_by_hash', clearAll: true });
  await waitUntil(() => b.cache.peek('h') === undefined, 'cleared');
  t.equal(other.peek('api'), 'v', 'other caches untouched');
  await a.bus.publish({ cache: '*', clearAll: true });
  await waitUntil(() => other.peek('api') === undefined, 'a cluster-wide clear clears every bound cache');
  t.same(b.binder.boundNames().sort(), ['live_api_by_id', 'verification_key_by_hash']);
  unbind();
  t.same(b.binder.boundNames(), ['verification_key_by_hash']);
});
