/**
 * `InstancePool` (proxy/sentinel/instance-pool.ts): the try order per request (round robin, least
 * outstanding), ejected instances last until their time is up, and the shared read-only orders
 * handed out while nothing is ejected.
 */
import t from 'tap';
import { TestClock } from '../../../core/clock.ts';
import { HttpPeer } from '../../../proxy/http-peer.ts';
import { InstancePool } from '../../../proxy/sentinel/instance-pool.ts';

function peers(count: number): HttpPeer[] {
  return Array.from({ length: count }, (_, index) => new HttpPeer(`http://127.0.0.1:${9001 + index}`));
}

function ports(order: readonly HttpPeer[]): number[] {
  return order.map((peer) => peer.port);
}

t.test('round robin: each request starts one instance further, the others follow in pool order', async (t) => {
  const pool = new InstancePool(peers(3), { clock: new TestClock(0) });
  t.same(ports(pool.candidates()), [9001, 9002, 9003]);
  t.same(ports(pool.candidates()), [9002, 9003, 9001]);
  t.same(ports(pool.candidates()), [9003, 9001, 9002]);
  t.same(ports(pool.candidates()), [9001, 9002, 9003], 'and around again');
  t.same(new InstancePool([]).candidates(), [], 'an empty pool has no candidate');
});

t.test('while nothing is ejected, requests starting at the same instance share one frozen order', async (t) => {
  const pool = new InstancePool(peers(2), { clock: new TestClock(0) });
  const first = pool.candidates();
  const second = pool.candidates();
  const third = pool.candidates();
  t.equal(third, first, 'the same array for the same start');
  t.not(second, first, 'another start, another array');
  t.ok(Object.isFrozen(first), 'shared orders are read only');
  t.throws(() => (first as unknown as number[]).push(1), TypeError, 'a caller cannot change what the next request gets');
  t.same(ports(pool.candidates()), [9002, 9001], 'the shared orders are right');
});

t.test('an ejected instance goes last (in a fresh array) until its time is up, then the shared orders return', async (t) => {
  const clock = new TestClock(1_000);
  const list = peers(3);
  const pool = new InstancePool(list, { clock, ejectMs: 5_000 });
  const shared = pool.candidates(); // starts at 9001
  pool.eject(list[1]!);
  t.ok(pool.isEjected(list[1]!));
  pool.candidates(); // starts at 9002
  pool.candidates(); // starts at 9003
  const whileEjected = pool.candidates(); // starts at 9001 again
  t.same(ports(whileEjected), [9001, 9003, 9002], 'healthy first, the ejected one last');
  t.not(whileEjected, shared, 'not the shared order while an instance is ejected');
  t.same(ports(shared), [9001, 9002, 9003], 'the shared order was not changed by the ejection');
  clock.advance(5_000);
  t.notOk(pool.isEjected(list[1]!), 'the ejection is over');
  pool.candidates();
  pool.candidates();
  t.equal(pool.candidates(), shared, 'the shared order again');
});

t.test('least outstanding: the instance with the fewest requests in flight first, ejected ones skipped', async (t) => {
  const clock = new TestClock(0);
  const list = peers(3);
  const pool = new InstancePool(list, { clock, strategy: 'least-outstanding' });
  pool.acquire(list[0]!);
  pool.acquire(list[0]!);
  pool.acquire(list[1]!);
  t.equal(pool.candidates()[0], list[2], 'the idle instance first');
  pool.acquire(list[2]!);
  pool.acquire(list[2]!);
  t.equal(pool.candidates()[0], list[1], 'then the one with a single request');
  pool.release(list[0]!);
  pool.eject(list[1]!);
  // In flight now: 1, 1 (ejected), 2.
  t.equal(pool.candidates()[0], list[0], 'an ejected instance is not chosen first, however idle');
  pool.release(list[0]!);
  pool.release(list[0]!); // one more than acquired: never below zero
  pool.acquire(list[2]!);
  t.same(ports(pool.candidates()), [9001, 9003, 9002], 'the idle one first, the ejected one last');
});

t.test('pools larger than the shared-order bound still answer correctly, with a new array per request', async (t) => {
  const pool = new InstancePool(peers(20), { clock: new TestClock(0) });
  const first = pool.candidates();
  t.equal(first.length, 20);
  for (let index = 1; index < 20; index++) pool.candidates();
  const again = pool.candidates();
  t.same(ports(again), ports(first), 'the same order after a full round');
  t.not(again, first, 'not shared');
});
