/**
 * Benchmark: `POST /v2/keys.verifyKey` on the cache-hit path (a key with one auto-applied rate
 * limit, no credits) against a bare node:http hello world, side by side in one run. Each server
 * runs in its own child process on 127.0.0.1; autocannon drives it for a few seconds. Prints
 * req/s, p50, p99, the server's CPU µs per request, and the ratios to bare node:http.
 *
 * A second mode verifies N distinct keys (default 100,000) once each, in process, and reports the
 * resident memory before and after (the key cache holding N entries) and the throughput of the
 * cache-miss path (one database load per key).
 *
 * The key database for this mode is a SQLite file seeded by a separate process, so the RSS is
 * the API's own (cache, engine, analytics buffer), not the seeding's garbage or an in-memory DB.
 *
 * `--compare-dir <tree>` also runs the API variants on the sources of another checkout (for
 * example a copy of the tree before a change), so before and after are measured in one run.
 *
 *   npx node --expose-gc bench/verify-key.ts [--mode all|latency|half-rate|distinct] [--duration-seconds 3]
 *        [--connections 50] [--rounds 1] [--keys 100000] [--compare-dir /path/to/other/tree]
 *        [--max-semi-space-mib 8]   (distinct mode: cap V8's young generation in the child)
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import autocannon from 'autocannon';
import { formatComparisonRow, measureChildServer, type ChildLoadTarget, type ChildMeasurement } from './harness/child-server-bench.ts';

// `verify-key-no-analytics`: the same with the NullVerificationSink, to show what the local
// analytics table costs per verification.
// `bare-post`: node:http reading the same POST body and answering JSON, the fairer floor for a
// POST API (body read, JSON parse and stringify).
const VARIANTS = ['bare', 'bare-post', 'verify-key', 'verify-key-no-analytics'] as const;
type Variant = (typeof VARIANTS)[number];

interface Target {
  port: number;
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

const { values } = parseArgs({
  options: {
    serve: { type: 'string' },
    mode: { type: 'string', default: 'all' },
    'duration-seconds': { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '1' },
    keys: { type: 'string', default: '100000' },
    'compare-dir': { type: 'string' },
    'source-dir': { type: 'string' },
    db: { type: 'string' },
    'max-semi-space-mib': { type: 'string' },
  },
});

/** The tree whose core/ and control/ the API variants import (this checkout unless `--source-dir`). */
const SOURCE_DIR = values['source-dir'] ?? fileURLToPath(new URL('..', import.meta.url));
const COMPARE_DIR = values['compare-dir'];
const source = (path: string): string => join(SOURCE_DIR, path);

if (values.serve === 'seed') {
  await seedKeys(values.db!, Number(values.keys));
} else if (values.serve === 'distinct') {
  await distinctKeys(values.db!);
} else if (values.serve !== undefined) {
  await serve(values.serve as Variant);
} else {
  if (values.mode === 'all' || values.mode === 'latency') {
    await latency(Number(values['duration-seconds']), Number(values.connections), Number(values.rounds));
  }
  if (values.mode === 'all' || values.mode === 'half-rate') await halfRate(Number(values['duration-seconds']), Number(values.connections));
  if (values.mode === 'all' || values.mode === 'distinct') await runDistinct(Number(values.keys));
}

interface Run {
  /** Printed name. */
  label: string;
  variant: Variant;
  /** Tree whose sources the API variants import. */
  sourceDir: string;
}

function plannedRuns(): Run[] {
  const runs: Run[] = VARIANTS.map((variant) => ({ label: variant, variant, sourceDir: SOURCE_DIR }));
  if (COMPARE_DIR !== undefined) {
    for (const variant of ['verify-key', 'verify-key-no-analytics'] as const) runs.push({ label: `${variant} (compare)`, variant, sourceDir: COMPARE_DIR });
  }
  return runs;
}

async function latency(durationSeconds: number, connections: number, rounds: number): Promise<void> {
  const runs = plannedRuns();
  const results = new Map<string, ChildMeasurement[]>(runs.map((run) => [run.label, []]));
  for (let round = 0; round < rounds; round++) {
    for (const run of runs) {
      const { child, target } = await startChild(run);
      try {
        // measureChildServer warms up first: JIT, key cache and rate-limit window are hot before measuring.
        const measurement = await measureChildServer(child, childLoadTarget(target), durationSeconds, connections);
        results.get(run.label)!.push(measurement);
      } finally {
        child.kill();
      }
    }
  }
  console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; ${durationSeconds} s × ${rounds} round(s), ${connections} connections`);
  if (COMPARE_DIR !== undefined) console.log(`(compare) = the API built from ${COMPARE_DIR}`);
  console.log('variant                              req/s    p50 ms   p99 ms   errors   ratio vs bare   cpu µs/req   cpu ratio (bare/x)');
  for (const run of runs) console.log(formatComparisonRow(run.label, 34, results.get(run.label)!, results.get('bare')!));
}

/**
 * The latency goal: p99 at half of the peak rate. The server is pinned to core 0 and this
 * process (autocannon) to core 1 when `taskset` exists; the peak is measured closed-loop, then
 * half of it is offered at a fixed rate (`overallRate`), so latency is not inflated by queueing.
 */
async function halfRate(durationSeconds: number, connections: number): Promise<void> {
  console.log(`half-rate: peak closed-loop with ${connections} connections, then half of it offered at a fixed rate for ${durationSeconds * 2} s`);
  for (const variant of ['bare', 'verify-key', 'verify-key-no-analytics'] as const) {
    const { child, target } = await startChild({ label: variant, variant, sourceDir: SOURCE_DIR });
    try {
      pinToCore(child.pid, 0);
      pinToCore(process.pid, 1);
      const load = childLoadTarget(target);
      await autocannon({ ...load, connections, duration: 1 });
      const peak = await autocannon({ ...load, connections, duration: durationSeconds });
      const offered = Math.max(1, Math.round(peak.requests.average / 2));
      const half = await autocannon({ ...load, connections: Math.min(connections, 20), duration: durationSeconds * 2, overallRate: offered });
      console.log(`${variant.padEnd(24)} peak ${Math.round(peak.requests.average)} req/s (p99 ${peak.latency.p99} ms); `
        + `at ${offered} req/s offered: p50 ${half.latency.p50} ms, p99 ${half.latency.p99} ms, p99.9 ${half.latency.p99_9} ms, errors ${half.errors + half.non2xx}`);
    } finally {
      child.kill();
    }
  }
}

/** Pins a process to one core with `taskset` when it is installed; a no-op otherwise. */
function pinToCore(pid: number | undefined, core: number): void {
  if (pid === undefined) return;
  try {
    execFileSync('taskset', ['-a', '-cp', String(core), String(pid)], { stdio: 'ignore' });
  } catch {
    // No taskset (or no permission): the run is unpinned, which only makes it noisier.
  }
}

function startChild(run: Run): Promise<{ child: ChildProcess; target: Target }> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL(import.meta.url), ['--serve', run.variant, '--source-dir', run.sourceDir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (message) => resolve({ child, target: message as Target }));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bench server ${run.label} exited with ${code}`)));
  });
}

function childLoadTarget(target: Target): ChildLoadTarget {
  return { url: `http://127.0.0.1:${target.port}${target.path}`, method: target.method, headers: target.headers, body: target.body };
}

async function serve(variant: Variant): Promise<void> {
  let target: Target;
  if (variant === 'bare') {
    const server = createServer((_req, res) => {
      const body = JSON.stringify({ hello: 'world' });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    target = { port: (server.address() as AddressInfo).port, path: '/hello', method: 'GET', headers: {} };
  } else if (variant === 'bare-post') {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { key: string };
        const body = JSON.stringify({ meta: { requestId: 'req_123456789' }, data: { valid: true, code: 'VALID', keyId: parsed.key.slice(0, 8) } });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    target = {
      port: (server.address() as AddressInfo).port, path: '/v2/keys.verifyKey', method: 'POST',
      headers: { authorization: 'Bearer x', 'content-type': 'application/json' }, body: JSON.stringify({ key: 'sk_1234567890abcdefghij' }),
    };
  } else {
    const { api, rootKey, key } = await startApi(variant === 'verify-key-no-analytics');
    const port = (await api.server.listen({ port: 0, host: '127.0.0.1' })).port;
    target = {
      port,
      path: '/v2/keys.verifyKey',
      method: 'POST',
      headers: { authorization: `Bearer ${rootKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ key }),
    };
  }
  process.on('message', (message) => {
    // 'exit' ends the server cleanly (so that `--cpu-prof` writes its profile).
    if (message === 'exit') process.exit(0);
    const usage = process.cpuUsage();
    process.send!({ cpuMicros: usage.user + usage.system });
  });
  process.send!(target);
}

/** The API on SQLite (in memory unless `dbPath`) with in-process counters, one API, one key with an auto-applied limit. */
async function startApi(withoutAnalytics = false, dbPath = ':memory:') {
  const { openDatabase } = await import(source('core/db/database.ts')) as typeof import('../core/db/database.ts');
  const { migrate } = await import(source('core/db/migrate.ts')) as typeof import('../core/db/migrate.ts');
  const { createLogger } = await import(source('core/log.ts')) as typeof import('../core/log.ts');
  const { Metrics } = await import(source('core/metrics.ts')) as typeof import('../core/metrics.ts');
  const { createApiDependencies } = await import(source('control/api/dependencies.ts')) as typeof import('../control/api/dependencies.ts');
  const { createApiServer } = await import(source('control/api/api-service.ts')) as typeof import('../control/api/api-service.ts');
  const { bootstrapApi } = await import(source('control/api/root-workspace.ts')) as typeof import('../control/api/root-workspace.ts');
  const { systemClock } = await import(source('core/clock.ts')) as typeof import('../core/clock.ts');
  const { NullVerificationSink } = await import(source('core/analytics/interface.ts')) as typeof import('../core/analytics/interface.ts');
  const db = await openDatabase(dbPath);
  await migrate(db);
  const bootstrap = await bootstrapApi(db, systemClock);
  const deps = createApiDependencies({
    db, logger: createLogger({ level: 'warn' }), metrics: new Metrics(),
    ...(withoutAnalytics ? { analytics: new NullVerificationSink() } : {}),
  });
  const api = createApiServer(deps);
  if (!bootstrap.created) return { api, deps, db, rootKey: '', key: '', workspaceId: '', apiId: '' };
  const call = async (operation: string, body: unknown) => {
    const response = await api.server.inject({ method: 'POST', url: `/v2/${operation}`, headers: { authorization: `Bearer ${bootstrap.rootKey}` }, body });
    if (response.status !== 200) throw new Error(`${operation}: ${response.status} ${response.body}`);
    return response.json<{ data: Record<string, string> }>().data;
  };
  const { apiId } = await call('apis.createApi', { name: 'bench' });
  const { key } = await call('keys.createKey', { apiId, ratelimits: [{ name: 'requests', limit: 1_000_000_000, duration: 60_000, autoApply: true }] });
  return { api, deps, db, rootKey: bootstrap.rootKey, key: key!, workspaceId: bootstrap.workspaceId, apiId: apiId! };
}

async function runDistinct(keyCount: number): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'keygate-bench-'));
  try {
    const dbPath = join(directory, 'keys.db');
    await runChild(['--serve', 'seed', '--db', dbPath, '--keys', String(keyCount)]);
    for (const sourceDir of COMPARE_DIR === undefined ? [SOURCE_DIR] : [SOURCE_DIR, COMPARE_DIR]) {
      console.log(`distinct keys, sources of ${sourceDir}:`);
      await runChild(['--serve', 'distinct', '--db', dbPath, '--source-dir', sourceDir]);
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

function runChild(args: string[]): Promise<void> {
  // `--max-semi-space-mib N` runs the distinct child with V8's young generation capped (as
  // `--max-semi-space-size=N`): the burst of cache misses otherwise grows it to 64 MiB per
  // semi-space, and those pages stay resident after V8 shrinks it again.
  const semiSpace = values['max-semi-space-mib'];
  const execArgv = semiSpace === undefined ? ['--expose-gc'] : ['--expose-gc', `--max-semi-space-size=${semiSpace}`];
  const child = fork(new URL(import.meta.url), args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`child ${args.join(' ')} exited with ${code}`))));
  });
}

/** Seeds `keyCount` keys into a SQLite file; the plaintexts and the workspace go to `<db>.json`. */
async function seedKeys(dbPath: string, keyCount: number): Promise<void> {
  const { api, deps, db, workspaceId, apiId } = await startApi(true, dbPath);
  const { generateKey } = await import(source('core/keys/key-generator.ts')) as typeof import('../core/keys/key-generator.ts');
  const { newId } = await import(source('core/id.ts')) as typeof import('../core/id.ts');
  const { insertMany } = await import(source('core/db/queries/row-values.ts')) as typeof import('../core/db/queries/row-values.ts');
  const keySpaceId = String((await db.query('SELECT `key_auth_id` FROM `apis` WHERE `id` = ?', [apiId]))[0]!.key_auth_id);
  const plaintexts: string[] = [];
  const rows: Array<[string, string, string, string, string, number]> = [];
  for (let index = 0; index < keyCount; index++) {
    const generated = generateKey({ prefix: 'bk' });
    plaintexts.push(generated.key);
    rows.push([newId('key'), keySpaceId, workspaceId, generated.hash, generated.start, Date.now()]);
  }
  await db.transaction((tx) => insertMany(tx, '`keys`', ['`id`', '`key_auth_id`', '`workspace_id`', '`hash`', '`start`', '`created_at_m`'], rows, (row) => row));
  writeFileSync(`${dbPath}.json`, JSON.stringify({ workspaceId, plaintexts }));
  await api.server.close();
  await deps.close();
  await db.close();
}

/** Verifies every seeded key once (cache misses), then prints RSS, heap and throughput. */
async function distinctKeys(dbPath: string): Promise<void> {
  const { workspaceId, plaintexts } = JSON.parse(readFileSync(`${dbPath}.json`, 'utf8')) as { workspaceId: string; plaintexts: string[] };
  const { api, deps, db } = await startApi(process.env.BENCH_NO_ANALYTICS === '1', dbPath);
  const keyCount = plaintexts.length;
  globalThis.gc?.();
  const rssBeforeBytes = process.memoryUsage().rss;
  const heapBeforeBytes = process.memoryUsage().heapUsed;
  const verifier = deps.keyVerifier;
  const startedAtMs = performance.now();
  let valid = 0;
  const concurrency = 64;
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < plaintexts.length) {
      const key = plaintexts[next++]!;
      const result = await verifier.verify({ key }, { workspaceId });
      if (result.valid) valid++;
    }
  }));
  const elapsedMs = performance.now() - startedAtMs;
  await deps.analytics.flush();
  globalThis.gc?.();
  const memoryAtEnd = process.memoryUsage();
  // Steady state: V8 returns the pages of the burst's garbage to the system only after a quiet
  // moment (its memory reducer), which a serving node has between bursts.
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.BENCH_IDLE_MS ?? 3_000)));
  globalThis.gc?.();
  const memory = process.memoryUsage();
  const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  console.log(`  ${keyCount} keys verified once each in process (cache misses, SQLite file), ${valid} VALID, ${Math.round(keyCount / (elapsedMs / 1000))} verifications/s; cache entries ${verifier.cache.size}`);
  console.log(`  right after the burst: RSS ${mib(memoryAtEnd.rss)} MiB, heap used ${mib(memoryAtEnd.heapUsed)} MiB, heap total ${mib(memoryAtEnd.heapTotal)} MiB`);
  console.log(`  after 3 s idle: RSS ${mib(rssBeforeBytes)} MiB → ${mib(memory.rss)} MiB; heap used ${mib(heapBeforeBytes)} → ${mib(memory.heapUsed)} MiB`
    + ` (≈ ${Math.round((memory.heapUsed - heapBeforeBytes) / keyCount)} heap bytes per cached key${globalThis.gc === undefined ? '; run with --expose-gc for steadier numbers' : ''});`
    + ` heap total ${mib(memory.heapTotal)} MiB, external ${mib(memory.external)} MiB`);
  console.log(`  ${residentBreakdown()}`);
  if (process.env.BENCH_SMAPS === '1') console.log(largestMappings(8));
  if (process.env.BENCH_HEAP_SPACES === '1') {
    const { getHeapSpaceStatistics } = await import('node:v8');
    for (const space of getHeapSpaceStatistics()) console.log(`    ${space.space_name}: size ${mib(space.space_size)} used ${mib(space.space_used_size)} physical ${mib(space.physical_space_size)}`);
  }
  await api.server.close();
  await deps.close();
  await db.close();
}

/** Linux: anonymous vs file-backed vs shared resident memory (what RSS is made of). */
function residentBreakdown(): string {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    return status.split('\n').filter((line) => /^(RssAnon|RssFile|RssShmem):/.test(line)).map((line) => line.replace(/\s+/g, ' ')).join(', ');
  } catch {
    return 'RSS breakdown unavailable (no /proc)';
  }
}

/** Linux: the `count` largest resident mappings (`BENCH_SMAPS=1`), to see what outside the V8 heap holds memory. */
function largestMappings(count: number): string {
  try {
    const mappings: Array<{ name: string; sizeKb: number; rssKb: number }> = [];
    let current: { name: string; sizeKb: number; rssKb: number } | undefined;
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (header !== null) {
        current = { name: header[1] || '[anon]', sizeKb: 0, rssKb: 0 };
        mappings.push(current);
      } else if (current !== undefined && line.startsWith('Size:')) {
        current.sizeKb = Number(line.split(/\s+/)[1]);
      } else if (current !== undefined && line.startsWith('Rss:')) {
        current.rssKb = Number(line.split(/\s+/)[1]);
      }
    }
    // Anonymous mappings grouped by size: V8 pages are 256 KiB each, malloc arenas 64 MiB.
    const anonymousBySize = new Map<number, { mappings: number; rssKb: number }>();
    for (const mapping of mappings) {
      if (mapping.name !== '[anon]') continue;
      const group = anonymousBySize.get(mapping.sizeKb) ?? { mappings: 0, rssKb: 0 };
      group.mappings++;
      group.rssKb += mapping.rssKb;
      anonymousBySize.set(mapping.sizeKb, group);
    }
    const groups = [...anonymousBySize].sort((left, right) => right[1].rssKb - left[1].rssKb).slice(0, count)
      .map(([sizeKb, group]) => `    anonymous ${sizeKb} KiB × ${group.mappings}: ${(group.rssKb / 1024).toFixed(1)} MiB resident`);
    mappings.sort((left, right) => right.rssKb - left.rssKb);
    return [...mappings.slice(0, count).map((mapping) => `    ${(mapping.rssKb / 1024).toFixed(1)} MiB ${mapping.name}`), ...groups].join('\n');
  } catch {
    return 'smaps unavailable (no /proc)';
  }
}
