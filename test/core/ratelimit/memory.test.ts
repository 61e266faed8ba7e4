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

t.test('memory: a prepared request decides exactly like a fresh request, across window roll-over, eviction and close', async (t) => {
  const a = Object.freeze({ workspaceId: 'w', namespace: 'n', identifier: 'a', limit: 3, durationMs: 1_000 });
  const others = ['b', 'c', 'd'].map((identifier) => Object.freeze({ ...a, identifier }));
  // The same script on two limiters: one decides `a` through a prepared request, the other through
  // the general path with a fresh unfrozen copy each time (no remembered key or counter).
  const run = async (usePrepared: boolean): Promise<Array<[boolean, number]>> => {
    const clock = new TestClock(0);
    const limiter = new MemoryRateLimiter({ clock, maxWindows: 3 });
    const prepared = limiter.prepare(a);
    const decide = (): [boolean, number] => {
      const decision = usePrepared ? limiter.limitPreparedNow(prepared) : limiter.limitNow([{ ...a }])[0]!;
      return [decision.passed, decision.remaining];
    };
    const out: Array<[boolean, number]> = [decide(), decide()];
    limiter.limitNow([{ ...a }]); // an equal, unfrozen request spends on the same counter
    out.push(decide());
    clock.advance(1_000); // next window: the counter object is replaced
    out.push(decide());
    clock.advance(600);
    out.push(decide(), decide());
    for (const other of others) limiter.limitOneNow(other); // maxWindows 3: `a` is evicted
    out.push(decide(), decide());
    clock.advance(5_000); // every window expires; a new identifier's insert sweeps them out
    limiter.limitOneNow(Object.freeze({ ...a, identifier: 'e' }));
    out.push(decide(), decide());
    await limiter.close();
    out.push(decide(), [limiter.size === 1, limiter.size]);
    return out;
  };
  const viaPrepared = await run(true);
  t.same(viaPrepared, await run(false));
  t.same(viaPrepared.slice(0, 3), [[true, 2], [true, 1], [false, 0]], 'the script does exercise the limit');
  t.not(viaPrepared[6]![1], 0, 'and eviction does forget the count');

  const limiter = new MemoryRateLimiter({ clock: new TestClock(0) });
  t.equal(limiter.prepare(a).request, a);
  t.throws(() => limiter.prepare({ ...a }), TypeError, 'only a frozen request can be prepared');
  t.throws(() => limiter.prepare(Object.freeze({ ...a, limit: -1 })), { code: 'err:unkey:application:invalid_input' });
});
