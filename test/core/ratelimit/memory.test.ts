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
