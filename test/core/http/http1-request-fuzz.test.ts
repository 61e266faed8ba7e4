/**
 * Runs the differential HTTP/1.1 request fuzz target (keygate's own parser against node:http)
 * for a fixed, seeded number of inputs: a regression net in CI. Long runs are
 * `npx node fuzz/run.ts --target http1-request --seconds 120`.
 */
import t from 'tap';
import { runFuzzTarget } from '../../../fuzz/fuzz-runner.ts';
import { createFuzzTarget } from '../../../fuzz/http1-request.fuzz.ts';

t.test('http1-request: 500 seeded inputs, keygate answers as node:http does', async (t) => {
  const target = await createFuzzTarget();
  t.teardown(() => target.close?.());
  const report = await runFuzzTarget(target, { seed: 20_261_122, maxIterations: 500, durationMs: 120_000, checkTimeoutMs: 10_000 });
  t.equal(report.iterations, 500);
  t.same(report.failures.map((failure) => String(failure.error)), []);
  const outcomes = Object.keys(report.outcomes);
  t.ok(outcomes.some((outcome) => outcome.startsWith('200')), `some inputs are answered: ${outcomes.join(' ')}`);
  t.ok(outcomes.some((outcome) => outcome.startsWith('400')), 'some inputs are rejected');
});
