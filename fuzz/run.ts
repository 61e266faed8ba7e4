/**
 * The fuzz runner: `npx node fuzz/run.ts [--seconds N] [--target NAME] [--seed N] [--crash-dir DIR]`.
 * Runs every `fuzz/*.fuzz.ts` target (or the one named) within a total time budget of
 * `--seconds` (default 10, split evenly between targets), prints iterations, failures and
 * outcome counts per target, writes each failing input to the crash directory (default
 * `<tmp>/keygate-fuzz-crashes`), and exits 1 when any input failed.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runFuzzTarget } from './fuzz-runner.ts';
import type { FuzzTargetModule } from './fuzz-target.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    target: { type: 'string' },
    seed: { type: 'string' },
    'crash-dir': { type: 'string', default: join(tmpdir(), 'keygate-fuzz-crashes') },
  },
});
const totalSeconds = Number(values.seconds);
if (!(totalSeconds > 0)) throw new Error(`--seconds must be a positive number, got ${values.seconds}`);
const seed = values.seed === undefined ? undefined : Number(values.seed);
const fuzzDirectory = new URL('.', import.meta.url).pathname;
const files = readdirSync(fuzzDirectory)
  .filter((name) => name.endsWith('.fuzz.ts'))
  .filter((name) => values.target === undefined || name === `${values.target}.fuzz.ts`)
  .sort();
if (files.length === 0) throw new Error(values.target === undefined ? 'no fuzz targets found' : `no target named ${values.target}`);

let failed = false;
const perTargetMs = (totalSeconds * 1000) / files.length;
for (const file of files) {
  const module = (await import(join(fuzzDirectory, file))) as FuzzTargetModule;
  const target = await module.createFuzzTarget();
  try {
    const report = await runFuzzTarget(target, { durationMs: perTargetMs, seed });
    const rate = Math.round(report.iterations / (report.elapsedMs / 1000));
    console.log(`${report.target}: ${report.iterations} iterations (${rate}/s), ${report.failureCount} failures, seed ${report.seed}, corpus ${report.corpusSize}`);
    console.log(`  outcomes: ${Object.entries(report.outcomes).map(([label, count]) => `${label}=${count}`).join(' ')}`);
    if (report.failureCount > 0) {
      failed = true;
      const crashDirectory = join(values['crash-dir']!, report.target);
      mkdirSync(crashDirectory, { recursive: true });
      for (const failure of report.failures) {
        const path = join(crashDirectory, createHash('sha256').update(failure.input).digest('hex').slice(0, 16) + '.bin');
        writeFileSync(path, failure.input);
        const message = failure.error instanceof Error ? failure.error.message : String(failure.error);
        console.log(`  FAIL ${path}: ${message}`);
      }
    }
  } finally {
    await target.close?.();
  }
}
process.exitCode = failed ? 1 : 0;
