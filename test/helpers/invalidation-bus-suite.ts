/**
 * The compliance suite every `InvalidationBus` implementation passes (the in-memory bus and the
 * libp2p gossip bus). It starts ONE cluster of three buses, each with its own `TestClock`, and
 * runs every case on it with a distinct cache name, so a slow-to-start transport pays its
 * start-up once. Waits are polls with a deadline, never sleeps.
 */
import type { Test } from 'tap';
import type { Clock } from '../../core/clock.ts';
import { TestClock } from '../../core/clock.ts';
import { hlcVersion } from '../../core/invalidation/hybrid-logical-clock.ts';
import type { Invalidation, InvalidationBus } from '../../core/invalidation/interface.ts';

/** How an implementation plugs into the suite. */
export interface InvalidationBusSuiteOptions {
  /**
   * Starts one bus per clock, all connected and ready to deliver to each other (for a network
   * transport: wait until every node sees the others as subscribers). The suite closes them.
   */
  startCluster(clocks: readonly Clock[]): Promise<InvalidationBus[]>;
  /** Deadline of each wait for a delivery. Default 10 s. */
  deliveryDeadlineMs?: number;
}

/** Polls `condition` every few ms until it holds; fails with `description` after `deadlineMs`. */
export async function waitUntil(condition: () => boolean, description: string, deadlineMs = 10_000): Promise<void> {
  const giveUpAt = performance.now() + deadlineMs;
  while (!condition()) {
    if (performance.now() > giveUpAt) throw new Error(`timed out after ${deadlineMs} ms waiting until ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Every invalidation a bus delivered to its subscriber, in order. */
export class DeliveryRecorder {
  readonly delivered: Invalidation[] = [];
  readonly unsubscribe: () => void;

  constructor(bus: InvalidationBus) {
    this.unsubscribe = bus.subscribe((invalidation) => {
      this.delivered.push(invalidation);
    });
  }

  /** Deliveries of one cache. */
  of(cache: string): Invalidation[] {
    return this.delivered.filter((invalidation) => invalidation.cache === cache);
  }

  /** Every key delivered for one cache, in delivery order. */
  keysOf(cache: string): string[] {
    return this.of(cache).flatMap((invalidation) => invalidation.keys);
  }
}

const BASE_MS = 1_700_000_000_000;

/** Registers the suite's subtests on `t`. */
export function invalidationBusSuite(t: Test, options: InvalidationBusSuiteOptions): void {
  const deadlineMs = options.deliveryDeadlineMs ?? 10_000;
  const clocks = [new TestClock(BASE_MS), new TestClock(BASE_MS), new TestClock(BASE_MS)];
  let buses: InvalidationBus[] = [];
  let recorders: DeliveryRecorder[] = [];

  t.before(async () => {
    buses = await options.startCluster(clocks);
    recorders = buses.map((bus) => new DeliveryRecorder(bus));
  });
  t.teardown(async () => {
    for (const recorder of recorders) recorder.unsubscribe();
    await Promise.all(buses.map((bus) => bus.close()));
  });

  const wait = (condition: () => boolean, description: string) => waitUntil(condition, description, deadlineMs);
  const ignored = (index: number) => buses[index]!.status().ignoredCount;

  t.test('every node sees the others as peers and none falls back to expiry', async (t) => {
    for (const bus of buses) {
      const status = bus.status();
      t.equal(status.peerCount, 2, `${bus.nodeId} peers`);
      t.equal(status.fallbackToExpiry, false, `${bus.nodeId} fallback`);
      t.equal(status.nodeId, bus.nodeId);
    }
    t.equal(new Set(buses.map((bus) => bus.nodeId)).size, 3, 'node ids are distinct');
  });

  t.test('applies a publish on the publisher before it resolves, then on every peer with the stamp intact', async (t) => {
    const [a, b, c] = buses as [InvalidationBus, InvalidationBus, InvalidationBus];
    const published = await a.publish({ cache: 'suite_basic', keys: ['k1', 'k2'] });
    t.same(recorders[0]!.keysOf('suite_basic'), ['k1', 'k2'], 'applied locally before publish resolved');
    t.equal(published.originNode, a.nodeId);
    t.equal(published.sentAtMs, clocks[0]!.nowMs());
    await wait(() => recorders[1]!.of('suite_basic').length === 1 && recorders[2]!.of('suite_basic').length === 1, 'b and c applied');
    for (const recorder of [recorders[1]!, recorders[2]!]) {
      const received = recorder.of('suite_basic')[0]!;
      t.same(received.keys, ['k1', 'k2']);
      t.equal(received.version, published.version, 'version survives the wire');
      t.equal(received.originNode, a.nodeId);
      t.equal(received.sentAtMs, published.sentAtMs);
      t.equal(received.clearAll, false);
    }
    t.ok(b.status().appliedCount >= 1 && c.status().receivedCount >= 1);
  });

  // A marker published after the messages under test: once it arrived (deliveries from one
  // sender keep their order), anything sent before it was delivered or dropped.
  const marker = async (sender: number, receivers: number[], cache: string): Promise<void> => {
    await buses[sender]!.publish({ cache, keys: ['marker'] });
    await wait(() => receivers.every((index) => recorders[index]!.of(cache).length === 1), `the marker on ${cache} arrived`);
  };

  t.test('ignores messages that carry its own origin when a peer sends them back', async (t) => {
    const [a, b] = buses as [InvalidationBus, InvalidationBus];
    const published = await a.publish({ cache: 'suite_own', keys: ['k'] });
    await wait(() => recorders[1]!.of('suite_own').length === 1 && recorders[2]!.of('suite_own').length === 1, 'b and c applied');
    // An echo of a's origin with a version a never applied: only the origin check stops it.
    await b.relay({ ...published, keys: ['k2'], version: published.version + 1n });
    await wait(() => recorders[2]!.keysOf('suite_own').includes('k2'), 'c applied the relayed one');
    await marker(1, [0], 'suite_own_marker');
    t.same(recorders[0]!.keysOf('suite_own'), ['k'], 'a applied only what it published itself');
    t.ok(a.status().ignoredCount >= 1, 'a counted the echo as ignored');
  });

  t.test('delivers a duplicate harmlessly: applied once', async (t) => {
    const [a] = buses as [InvalidationBus];
    const stamped = foreign('suite_duplicate', ['k'], clocks[0]!.nowMs());
    await a.relay(stamped);
    await a.relay(stamped);
    await marker(0, [1, 2], 'suite_duplicate_marker');
    t.equal(recorders[0]!.of('suite_duplicate').length, 1, 'the relaying node applied it once');
    t.equal(recorders[1]!.of('suite_duplicate').length, 1);
    t.equal(recorders[2]!.of('suite_duplicate').length, 1);
  });

  t.test('skips the keys of an invalidation older than the one applied, beyond the reorder tolerance', async (t) => {
    const [a] = buses as [InvalidationBus];
    const nowMs = clocks[0]!.nowMs();
    await a.relay(foreign('suite_older', ['k'], nowMs));
    await wait(() => recorders[1]!.of('suite_older').length === 1, 'b applied the newer one');
    const ignoredOnB = ignored(1);
    // Stamped 5 s earlier: its write was visible to the refetch after the newer one.
    await a.relay(foreign('suite_older', ['k'], nowMs - 5_000));
    await wait(() => ignored(1) > ignoredOnB, 'b ignored the older one');
    t.equal(recorders[1]!.of('suite_older').length, 1);
    // An older message still applies to keys it has not seen newer versions of.
    await a.relay(foreign('suite_older', ['k', 'other'], nowMs - 5_000));
    await wait(() => recorders[1]!.of('suite_older').length === 2, 'b applied the unseen key');
    t.same(recorders[1]!.of('suite_older')[1]!.keys, ['other'], 'only the key without a newer version');
  });

  t.test('re-applies a slightly older invalidation: within the clock-skew tolerance skipping could keep a revoked entry', async (t) => {
    const [a] = buses as [InvalidationBus];
    const nowMs = clocks[0]!.nowMs();
    await a.relay(foreign('suite_skew', ['k'], nowMs));
    await a.relay(foreign('suite_skew', ['k'], nowMs - 200, 'node-y'));
    await wait(() => recorders[1]!.of('suite_skew').length === 2, 'b applied both');
    t.pass('both applied');
  });

  t.test('orders versions causally: a node stamps after what it applied, even with its clock behind', async (t) => {
    const [a, b] = buses as [InvalidationBus, InvalidationBus];
    clocks[0]!.advance(30_000); // a's clock runs 30 s ahead of b's and c's
    const fromA = await a.publish({ cache: 'suite_causal', keys: ['k'] });
    await wait(() => recorders[1]!.of('suite_causal').length === 1, 'b applied a\'s invalidation');
    const fromB = await b.publish({ cache: 'suite_causal', keys: ['k'] });
    t.ok(fromB.version > fromA.version, 'b\'s later write has the greater version');
    t.ok(fromB.sentAtMs < fromA.sentAtMs, 'even though b\'s wall clock is behind');
    await wait(() => recorders[2]!.of('suite_causal').length === 2, 'c applied both');
    t.same(recorders[2]!.of('suite_causal').map((invalidation) => invalidation.originNode), [a.nodeId, b.nodeId]);
    // Later publishes by one node always increase.
    const again = await b.publish({ cache: 'suite_causal', keys: ['k'] });
    t.ok(again.version > fromB.version);
  });

  t.test('clear_all drops the cache everywhere and covers key invalidations stamped well before it', async (t) => {
    const [a] = buses as [InvalidationBus];
    const cleared = await a.publish({ cache: 'suite_clear', clearAll: true });
    t.equal(cleared.clearAll, true);
    t.same(cleared.keys, []);
    await wait(() => recorders[1]!.of('suite_clear').length === 1 && recorders[2]!.of('suite_clear').length === 1, 'b and c cleared');
    t.equal(recorders[1]!.of('suite_clear')[0]!.clearAll, true);
    const ignoredOnB = ignored(1);
    await a.relay(foreign('suite_clear', ['k'], clocks[0]!.nowMs() - 10_000));
    await wait(() => ignored(1) > ignoredOnB, 'b ignored the key invalidation older than the clear');
    await a.relay(cleared);
    await marker(0, [1], 'suite_clear_marker');
    t.equal(recorders[1]!.of('suite_clear').length, 1, 'the repeated clear was not applied again');
  });

  t.test('a failing handler neither stops the other handlers nor delivery, and becomes the last error', async (t) => {
    const [a, b] = buses as [InvalidationBus, InvalidationBus];
    const remove = b.subscribe((invalidation) => {
      if (invalidation.cache === 'suite_failing') throw new Error('handler broke');
    });
    t.teardown(remove);
    await a.publish({ cache: 'suite_failing', keys: ['k'] });
    await wait(() => recorders[1]!.of('suite_failing').length === 1, 'the other handler on b still ran');
    t.match(b.status().lastError?.message, /handler broke/);
    await a.publish({ cache: 'suite_failing', keys: ['k2'] });
    await wait(() => recorders[1]!.of('suite_failing').length === 2, 'b keeps delivering');
  });

  t.test('splits a large publish into bounded messages and delivers every key', async (t) => {
    const [a] = buses as [InvalidationBus];
    const keys = Array.from({ length: 2500 }, (_, index) => `key-${index}`);
    await a.publish({ cache: 'suite_large', keys });
    await wait(() => recorders[2]!.keysOf('suite_large').length === keys.length, 'c received every key');
    t.same([...recorders[2]!.keysOf('suite_large')].sort(), [...keys].sort());
    t.ok(recorders[2]!.of('suite_large').length >= 3, 'in several messages');
  });

  t.test('refuses requests outside the contract with a Fault', async (t) => {
    const [a] = buses as [InvalidationBus];
    const bad = [
      { cache: '', keys: ['k'] },
      { cache: 'suite_bad' },
      { cache: 'suite_bad', keys: [] },
      { cache: 'suite_bad', keys: ['k'], clearAll: true },
      { cache: 'suite_bad', keys: [''] },
      { cache: 'suite_bad', keys: ['x'.repeat(5000)] },
      { cache: '*', keys: ['k'] },
    ];
    for (const request of bad) {
      await t.rejects(a.publish(request), { code: 'err:keygate:gossip:invalid_invalidation' }, JSON.stringify(request).slice(0, 60));
    }
    t.same(recorders[0]!.of('suite_bad'), []);
  });

  t.test('a closed bus refuses to publish and its peers notice it is gone', async (t) => {
    const [a, , c] = buses as [InvalidationBus, InvalidationBus, InvalidationBus];
    await c.close();
    await c.close(); // idempotent
    await t.rejects(c.publish({ cache: 'suite_closed', keys: ['k'] }), { code: 'err:keygate:gossip:closed' });
    await wait(() => a.status().peerCount === 1, 'a counts one peer left');
    await a.publish({ cache: 'suite_closed', keys: ['k'] });
    await wait(() => recorders[1]!.of('suite_closed').length === 1, 'b still receives');
    t.same(recorders[2]!.of('suite_closed'), [], 'nothing reaches the closed bus');
  });
}

/** An invalidation stamped by a node outside the cluster, as a bridge would relay it. */
function foreign(cache: string, keys: string[], physicalMs: number, originNode = 'node-x'): Invalidation {
  return { cache, keys, clearAll: false, version: hlcVersion(physicalMs, 0), originNode, sentAtMs: physicalMs };
}
