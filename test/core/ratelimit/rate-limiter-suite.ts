/**
 * One contract, one suite: every RateLimiter implementation must pass these. The factory may
 * return several "nodes" sharing state (Redis); the suite spreads calls across them.
 */
import type { Test } from 'tap';
import { TestClock } from '../../../core/clock.ts';
import { allPassed, type RateLimitDecision, type RateLimiter, type RateLimitRequest } from '../../../core/ratelimit/interface.ts';
import { seededRandom } from '../../helpers/seeded-random.ts';

/** Nodes under test and how to release them. */
export interface RateLimiterFixture {
  nodes: RateLimiter[];
  close(): Promise<void>;
}

/** Builds fresh, empty limiters on the given clock. */
export type RateLimiterFactory = (clock: TestClock) => Promise<RateLimiterFixture>;

/**
 * The straightforward reference model: remembers every consumed unit with its time and derives
 * the window counts by filtering; the previous window's weight (1 - elapsed/duration) is applied
 * in exact rational arithmetic (BigInt), then truncated.
 */
export class ReferenceRateLimitModel {
  readonly #events = new Map<string, Array<{ atMs: number; cost: number }>>();

  limit(nowMs: number, requests: readonly RateLimitRequest[]): RateLimitDecision[] {
    const claimed = new Map<string, number>();
    const results = requests.map((request) => {
      const key = JSON.stringify([request.workspaceId, request.namespace, request.identifier, request.durationMs]);
      const cost = request.cost ?? 1;
      const duration = request.durationMs;
      const sequence = Math.floor(nowMs / duration);
      const events = this.#events.get(key) ?? [];
      const current = events.filter((event) => Math.floor(event.atMs / duration) === sequence).reduce((sum, event) => sum + event.cost, 0) + (claimed.get(key) ?? 0);
      const previous = events.filter((event) => Math.floor(event.atMs / duration) === sequence - 1).reduce((sum, event) => sum + event.cost, 0);
      const elapsed = BigInt(nowMs - sequence * duration);
      const weighted = Number((BigInt(previous) * (BigInt(duration) - elapsed)) / BigInt(duration));
      const effective = current + weighted + cost;
      const passed = effective <= request.limit;
      if (passed) claimed.set(key, (claimed.get(key) ?? 0) + cost);
      return { key, cost, passed, effective, request, resetMs: (sequence + 1) * duration };
    });
    const batchPassed = results.every((result) => result.passed);
    if (batchPassed) {
      for (const result of results) {
        const list = this.#events.get(result.key) ?? [];
        list.push({ atMs: nowMs, cost: result.cost });
        this.#events.set(result.key, list);
      }
    }
    return results.map((result) => ({
      passed: result.passed,
      limit: result.request.limit,
      remaining: !result.passed ? 0 : Math.max(0, result.request.limit - (batchPassed ? result.effective : result.effective - result.cost)),
      resetMs: result.resetMs,
    }));
  }
}

const request = (identifier: string, limit: number, durationMs: number, cost?: number, namespace = 'ns'): RateLimitRequest => ({
  workspaceId: 'ws_1',
  namespace,
  identifier,
  limit,
  durationMs,
  ...(cost === undefined ? {} : { cost }),
});

/** Registers the compliance tests for one implementation. */
export function rateLimiterSuite(t: Test, name: string, factory: RateLimiterFactory, options: { simulationSteps?: number } = {}): void {
  const withLimiter = (title: string, body: (nodes: RateLimiter[], clock: TestClock, t: Test) => Promise<void>) =>
    t.test(`${name}: ${title}`, async (t) => {
      // Start exactly at a window edge of every duration the tests use.
      const clock = new TestClock(1_700_000_000_000 - (1_700_000_000_000 % 60_000));
      const fixture = await factory(clock);
      t.teardown(() => fixture.close());
      await body(fixture.nodes, clock, t);
    });

  withLimiter('passes up to the limit, counts remaining down, then denies with remaining 0 and an absolute reset', async (nodes, clock, t) => {
    const windowEnd = clock.nowMs() + 10_000;
    for (let index = 0; index < 5; index++) {
      const [decision] = await nodes[index % nodes.length]!.limit([request('alice', 5, 10_000)]);
      t.same(decision, { passed: true, limit: 5, remaining: 4 - index, resetMs: windowEnd }, `request ${index + 1}`);
    }
    const [denied] = await nodes[0]!.limit([request('alice', 5, 10_000)]);
    t.same(denied, { passed: false, limit: 5, remaining: 0, resetMs: windowEnd });
    const [other] = await nodes[0]!.limit([request('bob', 5, 10_000)]);
    t.equal(other!.passed, true, 'identifiers are independent');
  });

  withLimiter('weights the previous window by the unelapsed fraction and truncates', async (nodes, clock, t) => {
    for (let index = 0; index < 10; index++) await nodes[0]!.limit([request('u', 10, 1_000)]);
    clock.advance(1_000 + 350); // 35% into the next window: previous weighs floor(10 * 0.65) = 6
    const [first] = await nodes[0]!.limit([request('u', 10, 1_000)]);
    t.same(first, { passed: true, limit: 10, remaining: 3, resetMs: clock.nowMs() - 350 + 1_000 });
    const more = [];
    for (let index = 0; index < 5; index++) more.push((await nodes[index % nodes.length]!.limit([request('u', 10, 1_000)]))[0]!.passed);
    t.same(more, [true, true, true, false, false]);
    clock.advance(2_000); // two windows later nothing is left
    t.equal((await nodes[0]!.limit([request('u', 10, 1_000, 10)]))[0]!.passed, true);
  });

  withLimiter('a deny consumes nothing', async (nodes, clock, t) => {
    await nodes[0]!.limit([request('d', 3, 1_000, 3)]);
    for (let index = 0; index < 20; index++) t.equal((await nodes[0]!.limit([request('d', 3, 1_000)]))[0]!.passed, false);
    clock.advance(1_000 + 500); // previous = 3 (not 23): weighs floor(3 * 0.5) = 1
    const [decision] = await nodes[0]!.limit([request('d', 3, 1_000)]);
    t.same([decision!.passed, decision!.remaining], [true, 1]);
  });

  withLimiter('cost 0 passes even at the limit and consumes nothing; a cost above the limit is denied', async (nodes, _clock, t) => {
    await nodes[0]!.limit([request('c', 2, 1_000, 2)]);
    t.same((await nodes[0]!.limit([request('c', 2, 1_000, 0)]))[0], { passed: true, limit: 2, remaining: 0, resetMs: (await nodes[0]!.limit([request('c', 2, 1_000, 0)]))[0]!.resetMs });
    t.equal((await nodes[0]!.limit([request('fresh', 2, 1_000, 3)]))[0]!.passed, false);
    t.equal((await nodes[0]!.limit([request('fresh', 0, 1_000, 0)]))[0]!.passed, true, 'limit 0 with cost 0 passes');
    t.equal((await nodes[0]!.limit([request('fresh', 0, 1_000, 1)]))[0]!.passed, false, 'limit 0 denies any cost');
  });

  withLimiter('several limits are all-or-nothing: none is consumed when any fails', async (nodes, _clock, t) => {
    const batch = [request('k', 10, 60_000, 1, 'wide'), request('k', 2, 60_000, 1, 'narrow')];
    t.ok(allPassed(await nodes[0]!.limit(batch)));
    t.ok(allPassed(await nodes[1 % nodes.length]!.limit(batch)));
    const failed = await nodes[0]!.limit(batch);
    t.notOk(allPassed(failed));
    t.same(failed.map((decision) => [decision.passed, decision.remaining]), [[true, 8], [false, 0]], 'the passing item reports its cost refunded');
    for (let index = 0; index < 5; index++) await nodes[index % nodes.length]!.limit(batch);
    const [wide] = await nodes[0]!.limit([batch[0]!]);
    t.same([wide!.passed, wide!.remaining], [true, 7], 'the wide limit was consumed only by the two passing batches');
  });

  withLimiter('the same counter named twice in a batch sees both costs', async (nodes, _clock, t) => {
    const decisions = await nodes[0]!.limit([request('twice', 3, 1_000, 2), request('twice', 3, 1_000, 2)]);
    t.same(decisions.map((decision) => decision.passed), [true, false]);
    const [after] = await nodes[0]!.limit([request('twice', 3, 1_000, 3)]);
    t.equal(after!.passed, true, 'the failed batch consumed nothing');
  });

  withLimiter('counters are separated by workspace, namespace, identifier and duration, even with look-alike strings', async (nodes, _clock, t) => {
    const base: RateLimitRequest = { workspaceId: 'a:1', namespace: 'b', identifier: 'c', limit: 1, durationMs: 1_000 };
    t.equal((await nodes[0]!.limit([base]))[0]!.passed, true);
    const variants: RateLimitRequest[] = [
      { ...base, workspaceId: 'a' , namespace: '1:b' },
      { ...base, namespace: 'b:c', identifier: '' + 'c' },
      { ...base, identifier: 'c:1000' },
      { ...base, durationMs: 2_000 },
      { ...base, workspaceId: 'ws_2' },
    ];
    for (const variant of variants) t.equal((await nodes[0]!.limit([variant]))[0]!.passed, true, JSON.stringify(variant));
    t.equal((await nodes[0]!.limit([base]))[0]!.passed, false);
  });

  withLimiter('rejects malformed requests with invalid_input', async (nodes, _clock, t) => {
    const bad: RateLimitRequest[] = [
      request('x', -1, 1_000),
      request('x', 1.5, 1_000),
      request('x', 1, 0),
      request('x', 1, 1_000, -1),
      request('', 1, 1_000),
      request('x', 1, 1_000, 1, ''),
    ];
    for (const item of bad) await t.rejects(nodes[0]!.limit([item]), { code: 'err:unkey:application:invalid_input' }, JSON.stringify(item));
  });

  withLimiter('concurrent requests never pass more than the limit', async (nodes, _clock, t) => {
    const calls = Array.from({ length: 120 }, (_, index) => nodes[index % nodes.length]!.limit([request('hot', 37, 60_000)]));
    const decisions = (await Promise.all(calls)).map(([decision]) => decision!);
    t.equal(decisions.filter((decision) => decision.passed).length, 37);
    const remainders = decisions.filter((decision) => decision.passed).map((decision) => decision.remaining).sort((a, b) => a - b);
    t.same(remainders, Array.from({ length: 37 }, (_, index) => index), 'every remaining value is handed out once');
  });

  withLimiter('agrees with the reference model over a seeded random run', async (nodes, clock, t) => {
    const seed = 20_240_611;
    const random = seededRandom(seed);
    const model = new ReferenceRateLimitModel();
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const steps = options.simulationSteps ?? 2_000;
    let mismatches = 0;
    let passedBatches = 0;
    let deniedBatches = 0;
    for (let step = 0; step < steps && mismatches < 5; step++) {
      clock.advance(Math.floor(random() * 900));
      const batch = Array.from({ length: 1 + Math.floor(random() * 3) }, () =>
        request(pick(['a', 'b', 'c']), pick([0, 1, 3, 5, 8, 13]), pick([1_000, 2_500]), pick([0, 1, 1, 1, 2, 3]), pick(['n1', 'n2'])),
      );
      const expected = model.limit(clock.nowMs(), batch);
      const actual = await nodes[step % nodes.length]!.limit(batch);
      if (allPassed(expected)) passedBatches++;
      else deniedBatches++;
      if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        mismatches++;
        t.fail(`seed ${seed} step ${step}: ${JSON.stringify(batch)} → ${JSON.stringify(actual)}, model ${JSON.stringify(expected)}`);
      }
    }
    t.equal(mismatches, 0, `${steps} steps match the model`);
    t.ok(passedBatches > steps / 10 && deniedBatches > steps / 10, `both outcomes exercised (${passedBatches} passed, ${deniedBatches} denied)`);
  });
}
