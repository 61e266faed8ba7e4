import t from 'tap';
import { AppliedVersions } from '../../../core/invalidation/applied-versions.ts';
import { hlcVersion } from '../../../core/invalidation/hybrid-logical-clock.ts';
import type { Invalidation } from '../../../core/invalidation/interface.ts';

const T0 = 1_700_000_000_000;

function inv(keys: string[], physicalMs: number, originNode = 'node-a', cache = 'keys', clearAll = false): Invalidation {
  return { cache, keys, clearAll, version: hlcVersion(physicalMs, 0), originNode, sentAtMs: physicalMs };
}

t.test('table of admit decisions', async (t) => {
  const cases: { name: string; history: Invalidation[]; incoming: Invalidation; expect: string[] | string }[] = [
    { name: 'first sight applies', history: [], incoming: inv(['k'], T0), expect: ['k'] },
    { name: 'exact duplicate is skipped', history: [inv(['k'], T0)], incoming: inv(['k'], T0), expect: 'duplicate' },
    { name: 'same version from another origin applies (concurrent writes)', history: [inv(['k'], T0)], incoming: inv(['k'], T0, 'node-b'), expect: ['k'] },
    { name: 'newer applies', history: [inv(['k'], T0)], incoming: inv(['k'], T0 + 1), expect: ['k'] },
    { name: 'older beyond tolerance is skipped', history: [inv(['k'], T0)], incoming: inv(['k'], T0 - 1_001), expect: 'older' },
    { name: 'older within tolerance applies again', history: [inv(['k'], T0)], incoming: inv(['k'], T0 - 1_000, 'node-b'), expect: ['k'] },
    { name: 'only unseen keys of an old message apply', history: [inv(['k'], T0)], incoming: inv(['k', 'j'], T0 - 5_000), expect: ['j'] },
    { name: 'keys are per cache', history: [inv(['k'], T0, 'node-a', 'apis')], incoming: inv(['k'], T0 - 5_000), expect: ['k'] },
    { name: 'a clear covers keys stamped well before it', history: [inv([], T0, 'node-a', 'keys', true)], incoming: inv(['k'], T0 - 5_000), expect: 'older' },
    { name: 'a key stamped after the clear applies', history: [inv([], T0, 'node-a', 'keys', true)], incoming: inv(['k'], T0 + 1), expect: ['k'] },
    { name: 'a repeated clear is a duplicate', history: [inv([], T0, 'node-a', 'keys', true)], incoming: inv([], T0, 'node-a', 'keys', true), expect: 'duplicate' },
    { name: 'an older clear is skipped', history: [inv([], T0, 'node-a', 'keys', true)], incoming: inv([], T0 - 5_000, 'node-b', 'keys', true), expect: 'older' },
  ];
  for (const testCase of cases) {
    const applied = new AppliedVersions({ reorderToleranceMs: 1_000 });
    for (const previous of testCase.history) applied.admit(previous);
    const result = applied.admit(testCase.incoming);
    const actual = result.apply ? [...result.invalidation.keys] : result.reason;
    t.same(actual, testCase.incoming.clearAll && result.apply ? [] : testCase.expect, testCase.name);
  }
});

t.test('forgets the least recently applied keys beyond its bound, and then re-applies harmlessly', async (t) => {
  const applied = new AppliedVersions({ maxTrackedKeys: 2 });
  applied.admit(inv(['a'], T0));
  applied.admit(inv(['b'], T0));
  applied.admit(inv(['c'], T0));
  t.same(applied.admit(inv(['a'], T0)), { apply: true, invalidation: inv(['a'], T0) }, 'a was forgotten');
  t.same(applied.admit(inv(['c'], T0)), { apply: false, reason: 'duplicate' }, 'c is remembered');
});
