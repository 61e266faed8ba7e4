#!/usr/bin/env -S node --max-semi-space-size=8
/**
 * The `keygate` executable (the package's `bin`). Everything lives in `cli.ts`; this file only
 * connects it to the real process. Needs Node 24 (type stripping): `npx keygate` uses the
 * project's Node 24 from node_modules/.bin.
 *
 * `--max-semi-space-size=8` (MiB) caps V8's young generation. The key cache keeps every verified
 * key alive, so a burst of cache misses promotes a lot through the young generation; V8's default
 * lets it grow to 2 × 64 MiB and never returns those pages. Measured with 100,000 distinct keys
 * (bench/verify-key.ts --mode distinct): RSS 336 MiB without the cap, 221 MiB with it, and no
 * throughput loss on the verifyKey cache-hit path. It has to be a command-line flag: set at run
 * time it only half applies.
 */
import { runCli } from './cli.ts';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
});
