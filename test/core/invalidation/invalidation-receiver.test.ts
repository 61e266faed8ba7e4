import t from 'tap';
import { TestClock } from '../../../core/clock.ts';
import { hlcVersion } from '../../../core/invalidation/hybrid-logical-clock.ts';
import type { Invalidation } from '../../../core/invalidation/interface.ts';
import { InvalidationReceiver } from '../../../core/invalidation/invalidation-receiver.ts';

function fromPeer(clock: TestClock, peer: string, physicalMs: number, request: { keys?: string[]; clearAll?: boolean }): Invalidation {
  return {
    cache: 'verification_key_by_hash',
    keys: request.clearAll === true ? [] : (request.keys ?? []),
    clearAll: request.clearAll === true,
    version: hlcVersion(physicalMs, 0),
    originNode: peer,
    sentAtMs: clock.nowMs(),
  };
}

t.test('a peer with a clock far in the future cannot make later invalidations of healthy peers be skipped', async (t) => {
  const clock = new TestClock();
  const receiver = new InvalidationReceiver({ nodeId: 'node_local', clock });
  const dropped: string[][] = [];
  receiver.subscribe((invalidation) => void dropped.push(invalidation.clearAll ? ['*'] : [...invalidation.keys]));
  const hourAheadMs = clock.nowMs() + 3_600_000;

  t.equal(await receiver.receive(fromPeer(clock, 'node_broken', hourAheadMs, { keys: ['hash_a'] })), true, 'still applied: dropping is always safe');
  t.equal(await receiver.receive(fromPeer(clock, 'node_broken', hourAheadMs, { clearAll: true })), true);
  clock.advance(5_000);
  t.equal(await receiver.receive(fromPeer(clock, 'node_healthy', clock.nowMs(), { keys: ['hash_a'] })), true, 'a later revocation of the same key is applied');
  t.equal(await receiver.receive(fromPeer(clock, 'node_healthy', clock.nowMs(), { keys: ['hash_b'] })), true, 'so is one of another key after the future clear');
  t.same(dropped, [['hash_a'], ['*'], ['hash_a'], ['hash_b']]);
});

t.test('ordinary reordering is still recognised: an old duplicate is skipped', async (t) => {
  const clock = new TestClock();
  const receiver = new InvalidationReceiver({ nodeId: 'node_local', clock });
  let appliedCount = 0;
  receiver.subscribe(() => void appliedCount++);
  const message = fromPeer(clock, 'node_peer', clock.nowMs(), { keys: ['hash_a'] });
  t.equal(await receiver.receive(message), true);
  t.equal(await receiver.receive(message), false, 'a duplicate is skipped');
  t.equal(appliedCount, 1);
});

t.test('a relayed invalidation from a future clock is applied but does not shadow later ones', async (t) => {
  const clock = new TestClock();
  const receiver = new InvalidationReceiver({ nodeId: 'node_local', clock });
  let appliedCount = 0;
  receiver.subscribe(() => void appliedCount++);
  t.equal(await receiver.applyLocal(fromPeer(clock, 'node_broken', clock.nowMs() + 3_600_000, { keys: ['hash_a'] })), true);
  clock.advance(5_000);
  t.equal(await receiver.receive(fromPeer(clock, 'node_healthy', clock.nowMs(), { keys: ['hash_a'] })), true);
  t.equal(appliedCount, 2);
});
