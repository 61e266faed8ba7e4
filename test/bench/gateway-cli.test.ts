import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const GATEWAY_BENCH = fileURLToPath(new URL('../../bench/gateway.ts', import.meta.url));

/** Runs bench/gateway.ts with `args`; every call here fails on its options, before anything starts. */
function run(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const result = spawnSync(process.execPath, [GATEWAY_BENCH, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stderr: result.stderr, stdout: result.stdout };
}

t.test('--rate must be a positive number', async (t) => {
  for (const bad of ['0', '-5', 'fast', '']) {
    const result = run([`--rate=${bad}`]);
    t.equal(result.status, 2, `--rate ${JSON.stringify(bad)} exits 2`);
    t.match(result.stderr, /--rate must be a positive number/);
    t.match(result.stderr, /--rate REQ_PER_S/, 'followed by the usage');
  }
});

t.test('--rate refuses autocannon, whose rate is bursty, instead of measuring something else', async (t) => {
  const result = run(['--rate', '1000', '--load-generator', 'autocannon']);
  t.equal(result.status, 2);
  t.match(result.stderr, /--rate needs wrk/);
});

t.test('--help documents --rate', async (t) => {
  const result = run(['--help']);
  t.equal(result.status, 0);
  t.match(result.stdout, /`--rate` \(wrk only\) offers every case the same paced rate/);
});
