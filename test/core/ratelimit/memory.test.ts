import t from 'tap';
import { TestClock } from '../../../core/clock.ts';
import { MemoryRateLimiter } from '../../../core/ratelimit/memory.ts';
import { rateLimiterSuite } from './rate-limiter-suite.ts';

rateLimiterSuite(t, 'memory', async (clock) => {
  const limiter = new MemoryRateLimiter({ clock });
  return { nodes: [limiter], close: () => limiter.close() };
});

t.test('memory: the number of windows stays bounded, expired windows go first', async (t) => {
  const clock = new TestClock(0);
  const limiter = new MemoryRateLimiter({ clock, maxWindows: 100 });
  for (let index = 0; index < 1_000; index++) limiter.limitNow([{ workspaceId: 'w', namespace: 'n', identifier: `id${index}`, limit: 5, durationMs: 1_000 }]);
  t.ok(limiter.size <= 100, `size ${limiter.size}`);
  // The newest identifiers are still counted after the churn.
  const [recent] = limiter.limitNow([{ workspaceId: 'w', namespace: 'n', identifier: 'id999', limit: 5, durationMs: 1_000 }]);
  t.equal(recent!.remaining, 3);
  clock.advance(5_000);
  limiter.limitNow([{ workspaceId: 'w', namespace: 'n', identifier: 'late', limit: 5, durationMs: 1_000 }]);
  t.ok(limiter.size <= 100);
  await limiter.close();
});

t.test('memory: a reused frozen request counts on its own counter; a mutable request is read afresh every call', async (t) => {
  const limiter = new MemoryRateLimiter({ clock: new TestClock(0) });
  t.teardown(() => limiter.close());
  const frozen = Object.freeze({ workspaceId: 'w', namespace: 'n', identifier: 'a', limit: 3, durationMs: 1_000 });
  t.same([limiter.limitOneNow(frozen).remaining, limiter.limitOneNow(frozen).remaining], [2, 1]);
  t.equal(limiter.limitNow([{ ...frozen }])[0]!.remaining, 0, 'an equal fresh request shares the counter');
  t.equal(limiter.limitOneNow(frozen).passed, false, 'and the limit stays exact');

  const mutable = { workspaceId: 'w', namespace: 'n', identifier: 'b', limit: 1, durationMs: 1_000 };
  t.equal(limiter.limitOneNow(mutable).passed, true);
  mutable.identifier = 'c';
  t.equal(limiter.limitOneNow(mutable).passed, true, 'a changed identifier is a different counter');
  mutable.identifier = 'b';
  t.equal(limiter.limitOneNow(mutable).passed, false, 'and the first counter is still spent');
  t.throws(() => limiter.limitOneNow(Object.freeze({ ...frozen, limit: -1 })), { code: 'err:unkey:application:invalid_input' }, 'a malformed request is rejected');
});
