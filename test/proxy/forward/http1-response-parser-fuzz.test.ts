/**
 * Runs the HTTP/1.1 response parser fuzz target for a fixed, seeded number of inputs (a
 * regression net in CI; long runs are `npx node fuzz/run.ts --target http1-response-parser`).
 */
import t from 'tap';
import { runFuzzTarget } from '../../../fuzz/fuzz-runner.ts';
import { createFuzzTarget } from '../../../fuzz/http1-response-parser.fuzz.ts';

t.test('http1-response-parser: 1500 seeded inputs, no property violated', async (t) => {
  const target = await createFuzzTarget();
  const report = await runFuzzTarget(target, { seed: 20_261_122, maxIterations: 1500, durationMs: 60_000 });
  t.equal(report.iterations, 1500);
  t.same(report.failures.map((failure) => String(failure.error)), []);
  const outcomes = Object.keys(report.outcomes);
  t.ok(outcomes.some((outcome) => outcome.startsWith('complete')), 'some inputs parse as complete responses');
  t.ok(outcomes.some((outcome) => outcome.startsWith('HPE_')), 'some inputs are rejected');
});
