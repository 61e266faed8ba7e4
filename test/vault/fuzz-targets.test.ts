/**
 * Runs the vault fuzz targets for a fixed, seeded number of iterations (a regression net; the
 * long runs are `npx node fuzz/run.ts`), and proves the runner reports a failing input.
 */
import t from 'tap';
import { runFuzzTarget } from '../../fuzz/fuzz-runner.ts';
import type { FuzzTarget } from '../../fuzz/fuzz-target.ts';

for (const name of ['vault-payload', 'vault-stored-dek']) {
  t.test(`${name}: 1500 seeded inputs, no property violated`, async (t) => {
    const { createFuzzTarget } = (await import(`../../fuzz/${name}.fuzz.ts`)) as { createFuzzTarget(): Promise<FuzzTarget> };
    const target = await createFuzzTarget();
    const report = await runFuzzTarget(target, { seed: 20_240_601, maxIterations: 1500, durationMs: 60_000 });
    t.equal(report.iterations, 1500);
    t.same(report.failures.map((failure) => String(failure.error)), []);
    t.ok(Object.keys(report.outcomes).length >= 2, `inputs reached several outcomes: ${Object.keys(report.outcomes).join(', ')}`);
  });
}

t.test('the runner catches and keeps a failing input, and replays the same inputs for a seed', async (t) => {
  const seen: string[][] = [[], []];
  let run = 0;
  const target: FuzzTarget = {
    name: 'finds-0xff',
    seeds: [Uint8Array.from([1, 2, 3])],
    check(input) {
      seen[run]!.push(Buffer.from(input).toString('hex'));
      if (input.includes(0xff)) throw new Error('found 0xff');
      return input.length > 3 ? 'long' : 'short';
    },
  };
  const report = await runFuzzTarget(target, { seed: 7, maxIterations: 2000, durationMs: 60_000 });
  t.ok(report.failureCount > 0, 'a byte value that the mutations produce is found');
  t.ok(report.failures.every((failure) => failure.input.includes(0xff)));
  run = 1;
  await runFuzzTarget(target, { seed: 7, maxIterations: 2000, durationMs: 60_000 });
  t.same(seen[1], seen[0], 'same seed, same inputs');
});
