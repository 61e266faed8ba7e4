import t from 'tap';
import { TestClock } from '../../../core/clock.ts';
import { HybridLogicalClock, hlcLogical, hlcPhysicalMs, hlcVersion } from '../../../core/invalidation/hybrid-logical-clock.ts';

t.test('packs physical ms and a logical counter into one 64-bit version', async (t) => {
  const version = hlcVersion(1_700_000_000_123, 7);
  t.equal(hlcPhysicalMs(version), 1_700_000_000_123);
  t.equal(hlcLogical(version), 7);
  t.ok(hlcVersion(1_700_000_000_124, 0) > hlcVersion(1_700_000_000_123, 65_535), 'physical time dominates');
  t.ok(version < 1n << 64n);
});

t.test('ticks strictly increase when the wall clock stands still or goes backwards', async (t) => {
  let nowMs = 1_700_000_000_000;
  const clock = new HybridLogicalClock({ clock: { nowMs: () => nowMs } });
  const first = clock.tick();
  const second = clock.tick();
  nowMs -= 5_000; // an NTP step backwards
  const third = clock.tick();
  t.ok(first < second && second < third);
  t.equal(hlcPhysicalMs(third), 1_700_000_000_000, 'keeps the highest physical time seen');
  nowMs += 10_000;
  t.same([hlcPhysicalMs(clock.tick()), hlcLogical(clock.peek())], [1_700_000_005_000, 0], 'follows the wall clock again once it is ahead');
});

t.test('borrows the next millisecond instead of wrapping the logical counter', async (t) => {
  const clock = new HybridLogicalClock({ clock: new TestClock(1_000) });
  let previous = clock.tick();
  for (let index = 0; index < 70_000; index += 1) {
    const next = clock.tick();
    if (next <= previous) t.fail(`version went backwards at ${index}`);
    previous = next;
  }
  t.equal(hlcPhysicalMs(previous), 1_001);
});

t.test('a tick after observing a remote version is greater than it, even with a slower clock', async (t) => {
  const clock = new HybridLogicalClock({ clock: new TestClock(1_700_000_000_000) });
  const remote = hlcVersion(1_700_000_030_000, 12);
  t.equal(clock.observe(remote), true);
  t.ok(clock.tick() > remote);
  t.ok(clock.observe(hlcVersion(1_600_000_000_000, 0)), 'an older remote changes nothing but is accepted');
});

t.test('refuses to adopt a remote clock too far in the future', async (t) => {
  const clock = new HybridLogicalClock({ clock: new TestClock(1_700_000_000_000), maxForwardDriftMs: 60_000 });
  t.equal(clock.observe(hlcVersion(1_700_000_000_000 + 3_600_000, 0)), false);
  t.equal(hlcPhysicalMs(clock.tick()), 1_700_000_000_000, 'local versions stay at local time');
});
