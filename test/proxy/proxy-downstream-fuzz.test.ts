/**
 * Runs the differential proxy downstream fuzz target (the proxy on keygate's own HTTP/1.1 parser
 * against the proxy on node:http) for a fixed, seeded number of inputs: a regression net in CI.
 * Long runs are `npx node fuzz/run.ts --target proxy-downstream --seconds 120`.
 */
import t from 'tap';
import { runFuzzTarget } from '../../fuzz/fuzz-runner.ts';
import { createFuzzTarget } from '../../fuzz/proxy-downstream.fuzz.ts';

const INPUTS = 800;

t.test(`proxy-downstream: ${INPUTS} seeded inputs, the keygate downstream answers and forwards as node:http does`, async (t) => {
  const target = await createFuzzTarget();
  t.teardown(() => target.close?.());
  const report = await runFuzzTarget(target, { seed: 20_261_122, maxIterations: INPUTS, durationMs: 120_000, checkTimeoutMs: 10_000 });
  t.equal(report.iterations, INPUTS);
  t.same(report.failures.map((failure) => String(failure.error)), []);
  const outcomes = Object.keys(report.outcomes);
  t.ok(outcomes.some((outcome) => outcome.startsWith('200')), `some inputs are forwarded and answered: ${outcomes.join(' ')}`);
  t.ok(outcomes.some((outcome) => outcome.startsWith('400')), 'some inputs are rejected');
});
