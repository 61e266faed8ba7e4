/**
 * One contract, one suite: every UsageLimiter must pass these. The "database" is a small
 * in-memory stand-in for the two callbacks the limiter is given (load and persist), applying
 * the documented write-back rule `remaining = max(remaining - consumed, 0)`.
 */
import type { Test } from 'tap';
import { TestClock } from '../../../core/clock.ts';
import type { ConsumedCredits, UsageLimiter } from '../../../core/credits/interface.ts';

/** The database side of credits, as the limiter sees it through its callbacks. */
export class CreditStore {
  readonly rows = new Map<string, number | null>();
  loads = 0;
  persistCalls = 0;

  /** The `loadRemaining` callback. */
  load = async (keyId: string): Promise<number | null> => {
    this.loads++;
    await Promise.resolve();
    const row = this.rows.get(keyId);
    if (row === undefined) throw new Error(`no key ${keyId}`);
    return row;
  };

  /** The `persist` callback. */
  persist = async (batch: readonly ConsumedCredits[]): Promise<void> => {
    this.persistCalls++;
    await Promise.resolve();
    for (const { keyId, consumed } of batch) {
      const row = this.rows.get(keyId);
      if (row !== undefined && row !== null) this.rows.set(keyId, Math.max(0, row - consumed));
    }
  };
}

/** Limiters under test (several = several nodes sharing state) and how to release them. */
export interface UsageLimiterFixture {
  nodes: UsageLimiter[];
  close(): Promise<void>;
}

/** Builds fresh limiters writing back into `store`. */
export type UsageLimiterFactory = (store: CreditStore, clock: TestClock) => Promise<UsageLimiterFixture>;

/** Registers the compliance tests for one implementation. */
export function usageLimiterSuite(t: Test, name: string, factory: UsageLimiterFactory): void {
  const withLimiter = (title: string, body: (nodes: UsageLimiter[], store: CreditStore, t: Test) => Promise<void>) =>
    t.test(`${name}: ${title}`, async (t) => {
      const store = new CreditStore();
      const fixture = await factory(store, new TestClock());
      t.teardown(() => fixture.close());
      await body(fixture.nodes, store, t);
    });

  withLimiter('decrements by the cost, reports the remaining after the call, and denies without spending', async (nodes, store, t) => {
    store.rows.set('key_a', 10);
    const [node] = nodes;
    t.same(await node!.consume('key_a', 1, store.load), { valid: true, remaining: 9 });
    t.same(await node!.consume('key_a', 4, store.load), { valid: true, remaining: 5 });
    t.same(await node!.consume('key_a', 6, store.load), { valid: false, remaining: 5 }, 'insufficient: nothing spent');
    t.same(await node!.consume('key_a', 5, store.load), { valid: true, remaining: 0 });
    t.same(await node!.consume('key_a', 1, store.load), { valid: false, remaining: 0 });
    t.same(await node!.consume('key_a', 0, store.load), { valid: true, remaining: 0 }, 'cost 0 at 0 remaining is valid');
    t.equal(store.loads, 1, 'loaded from the database once');
    await node!.flush();
    t.equal(store.rows.get('key_a'), 0, 'the database caught up');
  });

  withLimiter('unlimited keys are never decremented and never written back', async (nodes, store, t) => {
    store.rows.set('key_u', null);
    for (let index = 0; index < 5; index++) t.same(await nodes[index % nodes.length]!.consume('key_u', 3, store.load), { valid: true, remaining: null });
    await Promise.all(nodes.map((node) => node.flush()));
    t.equal(store.persistCalls, 0);
    t.equal(store.rows.get('key_u'), null);
  });

  withLimiter('concurrent consumers on every node never over-spend', async (nodes, store, t) => {
    store.rows.set('key_hot', 100);
    const calls = Array.from({ length: 300 }, (_, index) => nodes[index % nodes.length]!.consume('key_hot', 1, store.load));
    const decisions = await Promise.all(calls);
    t.equal(decisions.filter((decision) => decision.valid).length, 100, 'exactly the credits there were');
    const remainders = decisions.filter((decision) => decision.valid).map((decision) => decision.remaining).sort((a, b) => a! - b!);
    t.same(remainders, Array.from({ length: 100 }, (_, index) => index), 'each remaining value handed out once');
    // A consume whose first round trip saw no counter may start a second load after the first one
    // settled (correct, thanks to SET NX, just not free); what must hold is that loads are shared.
    t.ok(store.loads <= nodes.length * 3, `a burst of misses shares its database loads (${store.loads} for 300 calls)`);
    await Promise.all(nodes.map((node) => node.flush()));
    t.equal(store.rows.get('key_hot'), 0);
  });

  withLimiter('concurrent consumers with mixed costs spend exactly what they were granted', async (nodes, store, t) => {
    store.rows.set('key_mix', 250);
    const costs = Array.from({ length: 200 }, (_, index) => (index * 7) % 5);
    const decisions = await Promise.all(costs.map((cost, index) => nodes[index % nodes.length]!.consume('key_mix', cost, store.load)));
    const granted = decisions.reduce((sum, decision, index) => sum + (decision.valid ? costs[index]! : 0), 0);
    t.ok(granted <= 250, `granted ${granted}`);
    t.ok(granted >= 250 - 4, 'stops only when no remaining cost fits');
    await Promise.all(nodes.map((node) => node.flush()));
    t.equal(store.rows.get('key_mix'), 250 - granted);
  });

  withLimiter('reset writes pending consumption, then the next consume reloads from the database', async (nodes, store, t) => {
    store.rows.set('key_r', 10);
    await nodes[0]!.consume('key_r', 3, store.load);
    await nodes[0]!.reset('key_r');
    t.equal(store.rows.get('key_r'), 7, 'pending consumption reached the database before the reset');
    store.rows.set('key_r', 50); // updateCredits set=50
    for (const node of nodes) await node.reset('key_r');
    t.same(await nodes[nodes.length - 1]!.consume('key_r', 1, store.load), { valid: true, remaining: 49 });
    t.equal(store.loads, 2);
  });

  withLimiter('loader errors propagate and are not cached', async (nodes, store, t) => {
    await t.rejects(nodes[0]!.consume('key_missing', 1, store.load), /no key key_missing/);
    store.rows.set('key_missing', 2);
    t.same(await nodes[0]!.consume('key_missing', 1, store.load), { valid: true, remaining: 1 });
  });

  withLimiter('rejects a negative, fractional or huge cost', async (nodes, store, t) => {
    store.rows.set('key_c', 5);
    for (const cost of [-1, 1.5, Number.NaN, 1e13]) {
      await t.rejects(nodes[0]!.consume('key_c', cost, store.load), { code: 'err:unkey:application:invalid_input' }, String(cost));
    }
  });
}
