/**
 * Benchmark: the HttpServer kernel against a bare node:http hello world, side by side in one run.
 * Each server runs in its own child process (so the load generator does not share its event
 * loop), on 127.0.0.1, and autocannon drives it for a few seconds. Prints req/s, p50 and p99 of
 * each and the ratio to bare node:http.
 *
 *   npx node bench/http-kernel.ts [--duration-seconds 3] [--connections 50] [--rounds 1]
 *
 * Variants: `bare` (node:http), `kernel` (HttpServer with the access log on, written to
 * /dev/null, and metrics), `kernel-quiet` (HttpServer with the logger at `warn`, so no access
 * log line), `kernel-quiet-node-parser` (the same on node:http's parser instead of keygate's own
 * HTTP/1.1 path). With several rounds the variants alternate and medians are printed.
 *
 * On a shared machine req/s swings with the neighbours' load, so the server's own CPU time per
 * request (user + system, read in the server process) is printed too: its ratio is the steadier
 * estimate of relative capacity.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { answerCpuRequests, formatComparisonRow, measureChildServer, type ChildMeasurement } from './harness/child-server-bench.ts';

const VARIANTS = ['bare', 'kernel', 'kernel-quiet', 'kernel-quiet-node-parser'] as const;
type Variant = (typeof VARIANTS)[number];

const HELLO = { hello: 'world' };

const { values } = parseArgs({
  options: {
    serve: { type: 'string' },
    'duration-seconds': { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '1' },
  },
});

if (values.serve !== undefined) {
  await serve(values.serve as Variant);
} else {
  await main(Number(values['duration-seconds']), Number(values.connections), Number(values.rounds));
}

async function main(durationSeconds: number, connections: number, rounds: number): Promise<void> {
  const results = new Map<Variant, ChildMeasurement[]>(VARIANTS.map((variant) => [variant, []]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of VARIANTS) {
      const { child, port } = await startChild(variant);
      try {
        // measureChildServer warms up first so the JIT has compiled the hot path before measuring.
        const measurement = await measureChildServer(child, { url: `http://127.0.0.1:${port}/hello` }, durationSeconds, connections);
        results.get(variant)!.push(measurement);
      } finally {
        child.kill();
      }
    }
  }
  console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; ${durationSeconds} s × ${rounds} round(s), ${connections} connections, GET hello world (JSON)`);
  console.log('variant        req/s    p50 ms   p99 ms   errors   ratio vs bare   cpu µs/req   cpu ratio (bare/x)');
  for (const variant of VARIANTS) console.log(formatComparisonRow(variant, 12, results.get(variant)!, results.get('bare')!));
}

function startChild(variant: Variant): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL(import.meta.url), ['--serve', variant], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (message) => resolve({ child, port: (message as { port: number }).port }));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bench server ${variant} exited with ${code}`)));
  });
}

async function serve(variant: Variant): Promise<void> {
  let port: number;
  if (variant === 'bare') {
    const server = createServer((_req, res) => {
      const body = JSON.stringify(HELLO);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  } else {
    // Imported here so the bare variant's process loads nothing of keygate.
    const { HttpServer } = await import('../core/http/http-server.ts');
    const { createLogger } = await import('../core/log.ts');
    const { Metrics } = await import('../core/metrics.ts');
    const logger = createLogger({
      level: variant === 'kernel' ? 'info' : 'warn',
      destination: pino.destination({ dest: '/dev/null', sync: false }),
    });
    const server = new HttpServer({ logger, metrics: new Metrics(), http1Parser: variant === 'kernel-quiet-node-parser' ? 'node' : 'keygate' });
    server.route('GET', '/hello', () => ({ body: HELLO }));
    port = (await server.listen({ port: 0, host: '127.0.0.1' })).port;
  }
  answerCpuRequests();
  process.send!({ port });
}
