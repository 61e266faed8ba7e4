import t from 'tap';
import { SwrCache } from '../../../core/cache/swr-cache.ts';
import { TestClock } from '../../../core/clock.ts';

t.test('a cache bounded at a million entries allocates nothing up front for the bound', async (t) => {
  // lru-cache with `max` preallocates typed slot arrays (~12 MB of ArrayBuffers for a million
  // slots, plus ~16 MB of plain arrays); the SwrCache must only grow with what it holds.
  const before = process.memoryUsage().arrayBuffers;
  const cache = new SwrCache<string>({ name: 'big', freshMs: 1_000, staleMs: 2_000, maxEntries: 1_000_000, clock: new TestClock(0) });
  const grownBytes = process.memoryUsage().arrayBuffers - before;
  t.ok(grownBytes < 1024 * 1024, `array buffers grew by ${grownBytes} bytes`);
  cache.set('a', 'x');
  t.equal(cache.size, 1);
});

t.test('the bound still evicts the least recently used entry without preallocation', async (t) => {
  const clock = new TestClock(0);
  const cache = new SwrCache<string>({ name: 'small', freshMs: 1_000, staleMs: 2_000, maxEntries: 2, clock });
  cache.set('a', '1');
  cache.set('b', '2');
  t.equal(cache.getSync('a', async () => undefined), '1'); // a is now the most recently used
  cache.set('c', '3');
  t.equal(cache.size, 2);
  t.equal(cache.peek('b'), undefined, 'b was evicted');
  t.equal(cache.peek('a'), '1');
  t.equal(cache.peek('c'), '3');
});

t.test('entry windows are measured from the write even when the clock starts far from zero', async (t) => {
  const clock = new TestClock(1_700_000_000_000);
  const cache = new SwrCache<string>({ name: 'epoch', freshMs: 1_000, staleMs: 2_000, maxEntries: 10, clock });
  cache.set('k', 'v');
  clock.advance(999);
  t.equal(cache.getSync('k', async () => 'new'), 'v', 'fresh just before freshMs');
  clock.advance(1_000);
  t.equal(cache.peek('k'), 'v', 'stale but servable just before staleMs');
  clock.advance(1);
  t.equal(cache.peek('k'), undefined, 'never served from staleMs on');
});
