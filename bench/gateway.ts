/**
 * Benchmark: the gateway's policy phase, side by side in one run. Sentinel (`SentinelHooks` on a
 * plain-HTTP `ProxyServer`, the same phases Frontline runs in one-hop mode, without TLS) serves
 * one host per case in a child process; a node:http origin runs in another child; autocannon
 * drives each case from this process. Cases: plain proxy, + KeyAuth, + KeyAuth and RateLimit,
 * + JWTAuth, with 1 and N distinct keys/tokens (default 10,000; the key cache warmed first, so
 * the N-key rows measure a large hot set, not database loads). KeyAuth runs the REAL verifier
 * (`KeyVerifier` on SQLite in memory).
 *
 * Made for a noisy 2-core machine: the cases are interleaved over `--rounds` (every case once per
 * round, then again), each measured run follows its own warm-up, and the table shows medians per
 * case. With `taskset` and ≥ 2 cores the gateway child runs alone on core 0 while the origin and
 * the load generator (this process) share core 1. The gateway's CPU time per request comes from
 * the child itself (`process.cpuUsage` over IPC), so a busy neighbour does not inflate it.
 * Prints req/s, p50, p99, CPU µs/request, the cost vs plain proxy as throughput
 * (1 − req/s ÷ plain req/s) and as CPU (CPU µs ÷ plain CPU µs − 1), and whether the goal
 * "KeyAuth + RateLimit costs ≤ 15 % of plain-proxy throughput" holds for the medians.
 *
 *   npx node bench/gateway.ts [--duration-seconds 3] [--rounds 3] [--connections 20] [--keys 10000]
 *                             [--cases keys-rl] [--cpu-prof-dir DIR]
 *
 * `--cases` keeps only the cases whose host contains one of the comma-separated words (the plain
 * proxy always runs: it is the baseline). `--cpu-prof-dir` runs the gateway child with
 * `--cpu-prof` (sampling every 100 µs, which itself costs CPU: compare cases within one profiled
 * run only) and writes its `.cpuprofile` there when the run ends (Chrome DevTools' Performance
 * panel opens it); profile few cases at a time (`--cases`) to keep it readable.
 */
import { execFileSync, fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type autocannon from 'autocannon';
import { answerCpuRequests, measureChildServer, medianOf, type ChildMeasurement } from './harness/child-server-bench.ts';

const HERE = fileURLToPath(import.meta.url);
const TASKSET = '/usr/bin/taskset';
/** The goal: KeyAuth + RateLimit may cost at most this share of plain-proxy throughput. */
const MAX_KEYAUTH_RATELIMIT_COST = 0.15;
const GATEWAY_CORE = '0';
const LOAD_CORE = '1';
const CASES = [
  { name: 'plain proxy', host: 'plain.bench', credential: 'none' },
  { name: '+ KeyAuth (1 key)', host: 'keys.bench', credential: 'key1' },
  { name: '+ KeyAuth (N keys)', host: 'keys.bench', credential: 'keyN' },
  { name: '+ KeyAuth + RateLimit (1 key)', host: 'keys-rl.bench', credential: 'key1' },
  { name: '+ KeyAuth + RateLimit (N keys)', host: 'keys-rl.bench', credential: 'keyN' },
  { name: '+ JWTAuth (1 token)', host: 'jwt.bench', credential: 'jwt1' },
  { name: '+ JWTAuth (N tokens)', host: 'jwt.bench', credential: 'jwtN' },
] as const;
type BenchCase = (typeof CASES)[number];

interface Credentials { keys: string[]; tokens: string[] }

const role = process.argv[2];
if (role === '--origin') await serveOrigin();
else if (role === '--gateway') await serveGateway(process.argv[3]!, Number(process.argv[4]));
else await main();

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'duration-seconds': { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '20' },
      keys: { type: 'string', default: '10000' },
      cases: { type: 'string' },
      'cpu-prof-dir': { type: 'string' },
    },
  });
  const durationSeconds = positiveNumber('duration-seconds', values['duration-seconds']);
  const rounds = Math.floor(positiveNumber('rounds', values.rounds));
  const connections = Math.floor(positiveNumber('connections', values.connections));
  const keyCount = Math.floor(positiveNumber('keys', values.keys));
  const caseWords = values.cases?.split(',').map((word) => word.trim()).filter((word) => word !== '');
  const cases = CASES.filter((item) => item === CASES[0] || caseWords === undefined || caseWords.some((word) => item.host.includes(word)));
  const profileDir = values['cpu-prof-dir'];

  const canPin = existsSync(TASKSET) && cpus().length >= 2;
  // Pin this process first: the origin forked next inherits core 1, the gateway is moved to core 0.
  const previousAffinity = canPin ? setAffinity(process.pid, LOAD_CORE) : undefined;
  const origin = fork(HERE, ['--origin']);
  let gateway: ChildProcess | undefined;
  try {
    const originUrl = await firstMessage<string>(origin);
    const execArgv = profileDir === undefined ? process.execArgv : [...process.execArgv, '--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', profileDir];
    gateway = fork(HERE, ['--gateway', originUrl, String(keyCount)], { execArgv });
    const gatewayPinned = previousAffinity !== undefined && setAffinity(gateway.pid!, GATEWAY_CORE) !== undefined;
    const { url, credentials } = await firstMessage<{ url: string; credentials: Credentials }>(gateway);
    const pinning = gatewayPinned ? `gateway pinned to core ${GATEWAY_CORE}, origin + load on core ${LOAD_CORE}` : 'not pinned (no taskset or < 2 cores)';
    console.log(`gateway bench: ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, Node ${process.version}, ${durationSeconds} s per case × ${rounds} round(s) (interleaved, warm-up before each), ${connections} connections, N = ${keyCount}; ${pinning}`);

    const results = new Map<BenchCase, ChildMeasurement[]>(cases.map((item) => [item, []]));
    for (let round = 0; round < rounds; round++) {
      for (const item of cases) {
        // measureChildServer warms this case up first (JIT, pools, caches), then measures it.
        const measurement = await measureChildServer(gateway, { url, requests: [caseRequest(item, credentials)] }, durationSeconds, connections);
        results.get(item)!.push(measurement);
      }
    }
    printTable(results);
  } finally {
    origin.kill();
    // A profiled child writes its profile only when it exits by itself.
    if (profileDir !== undefined && gateway !== undefined) await stopGracefully(gateway);
    gateway?.kill();
    if (previousAffinity !== undefined) setAffinity(process.pid, previousAffinity);
  }
}

/** The autocannon request of one case: its Host, and a Bearer credential rotating over its pool. */
function caseRequest(item: BenchCase, credentials: Credentials): autocannon.Request {
  const pool = item.credential === 'key1' ? credentials.keys.slice(0, 1) : item.credential === 'keyN' ? credentials.keys
    : item.credential === 'jwt1' ? credentials.tokens.slice(0, 1) : item.credential === 'jwtN' ? credentials.tokens : [];
  let next = 0;
  return {
    method: 'GET', path: '/resource',
    setupRequest: (request) => {
      const headers: Record<string, string> = { host: item.host };
      if (pool.length > 0) headers.authorization = `Bearer ${pool[next++ % pool.length]}`;
      return { ...request, headers };
    },
  };
}

function printTable(results: Map<BenchCase, ChildMeasurement[]>): void {
  const plain = results.get(CASES[0])!;
  const plainRps = medianOf(plain, 'requestsPerSecond');
  const plainCpu = medianOf(plain, 'cpuMicrosPerRequest');
  const percent = (ratio: number): string => `${(ratio * 100).toFixed(1)} %`;
  const signedPercent = (ratio: number): string => (ratio >= 0 ? '+' : '−') + percent(Math.abs(ratio));
  console.log('\n(medians over the rounds; CPU = the gateway child\'s user + system time per request; a negative cost = faster/cheaper than plain, i.e. noise)');
  console.log('| case | req/s | req/s min–max | p50 ms | p99 ms | gateway CPU µs/req | cost vs plain (req/s) | cost vs plain (CPU) | non-2xx/errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  const throughputCost = new Map<BenchCase, number>();
  for (const [item, measurements] of results) {
    const rps = medianOf(measurements, 'requestsPerSecond');
    const cpu = medianOf(measurements, 'cpuMicrosPerRequest');
    throughputCost.set(item, 1 - rps / plainRps);
    const isPlain = item === CASES[0];
    const errors = measurements.reduce((sum, measurement) => sum + measurement.errors, 0);
    const roundRps = measurements.map((measurement) => Math.round(measurement.requestsPerSecond));
    console.log(`| ${item.name} | ${Math.round(rps)} | ${Math.min(...roundRps)}–${Math.max(...roundRps)} | ${medianOf(measurements, 'latencyMsP50')} | ${medianOf(measurements, 'latencyMsP99')} | ${cpu.toFixed(1)} | ${isPlain ? '—' : signedPercent(1 - rps / plainRps)} | ${isPlain ? '—' : signedPercent(cpu / plainCpu - 1)} | ${errors} |`);
  }
  const goalCases = [...results.keys()].filter((item) => item.host === 'keys-rl.bench');
  const verdicts = goalCases.map((item) => `${item.name.replace('+ KeyAuth + RateLimit (', '').replace(')', '')}: ${signedPercent(throughputCost.get(item)!)}`);
  if (goalCases.length === 0) return;
  const holds = goalCases.every((item) => throughputCost.get(item)! <= MAX_KEYAUTH_RATELIMIT_COST);
  console.log(`\ngoal "KeyAuth + RateLimit costs ≤ ${MAX_KEYAUTH_RATELIMIT_COST * 100} % of plain-proxy throughput" (median req/s): ${holds ? 'HOLDS' : 'DOES NOT HOLD'} (${verdicts.join(', ')})`);
}

/** Restricts every thread of `pid` to `cpuList` ("0", "1", "0,1"); returns the previous list, undefined when taskset fails. */
function setAffinity(pid: number, cpuList: string): string | undefined {
  try {
    const before = /list: (\S+)/.exec(execFileSync(TASKSET, ['-p', '-c', String(pid)], { encoding: 'utf8' }))?.[1];
    execFileSync(TASKSET, ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore' });
    return before;
  } catch (err) {
    console.log(`taskset failed for pid ${pid} (${(err as Error).message}): not pinned`);
    return undefined;
  }
}

function positiveNumber(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${text}`);
  return value;
}

async function serveOrigin(): Promise<void> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }).end('ok');
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.send!(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
}

async function serveGateway(originUrl: string, keyCount: number): Promise<void> {
  const { generateKeyPair, exportSPKI, SignJWT } = await import('jose');
  const { startApiHarness } = await import('../test/helpers/api-harness.ts');
  const { systemClock } = await import('../core/clock.ts');
  const { MemoryRateLimiter } = await import('../core/ratelimit/memory.ts');
  const { DatabaseKeySpaceResolver } = await import('../proxy/sentinel/executors/keyauth/database-key-space-resolver.ts');
  const { PolicyEngine } = await import('../proxy/sentinel/policy-engine.ts');
  const { SentinelHooks } = await import('../proxy/sentinel/sentinel-hooks.ts');
  const { StaticDeploymentResolver } = await import('../proxy/sentinel/static-deployments.ts');
  const { ProxyServer } = await import('../proxy/proxy-server.ts');

  const harness = (await startApiHarness({ teardown: () => undefined }))!;
  const { apiId } = await harness.seedApi();
  const keys: string[] = [];
  for (let index = 0; index < keyCount; index++) keys.push((await harness.seedKey({ apiId })).key);
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const tokens: string[] = [];
  const nowSeconds = Math.floor(Date.now() / 1000);
  for (let index = 0; index < Math.min(keyCount, 10_000); index++) {
    tokens.push(await new SignJWT({ sub: `user_${index}` }).setProtectedHeader({ alg: 'RS256' }).setIssuedAt(nowSeconds).setExpirationTime(nowSeconds + 3600).sign(privateKey));
  }
  const limiter = new MemoryRateLimiter({ clock: systemClock });
  const engine = new PolicyEngine({ rateLimiter: limiter, keyVerifier: harness.deps.keyVerifier, keySpaceResolver: new DatabaseKeySpaceResolver(harness.db) });
  const keyauth = { id: 'keys', name: 'keys', enabled: true, match: [], keyauth: { apiIds: [apiId] } };
  const resolver = await StaticDeploymentResolver.create([
    { host: 'plain.bench', upstreams: [originUrl] },
    { host: 'keys.bench', upstreams: [originUrl], policies: [keyauth] },
    { host: 'keys-rl.bench', upstreams: [originUrl], policies: [keyauth, { id: 'rl', name: 'rl', enabled: true, match: [], ratelimit: { limit: 1_000_000_000, windowMs: 60_000, identifiers: [{ authenticatedSubject: {} }] } }] },
    { host: 'jwt.bench', upstreams: [originUrl], policies: [{ id: 'jwt', name: 'jwt', enabled: true, match: [], jwtauth: { publicKeyPem: await exportSPKI(publicKey), algorithms: ['RS256'] } }] },
  ], engine);
  // The harness's verifier runs on a TestClock; its cache never expires during the run, so warm it.
  for (const key of keys) await harness.deps.keyVerifier.verify({ key }, { workspaceId: harness.workspaceId });
  const proxy = new ProxyServer({ hooks: new SentinelHooks({ deployments: resolver }) });
  // Asked by the parent when it profiles this child: exit normally so `--cpu-prof` writes the file.
  process.on('message', (message) => {
    if (message === 'exit') process.exit(0);
  });
  // Registered only now so the parent's CPU questions do not race the ready message below.
  answerCpuRequests();
  const address = await proxy.listen({ protocol: 'http', port: 0, host: '127.0.0.1' });
  process.send!({ url: `http://127.0.0.1:${address.port}`, credentials: { keys, tokens } });
}

/** Asks a profiled child to exit by itself and waits (bounded) until it has. */
async function stopGracefully(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.send('exit');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise<void>((resolve) => { timer = setTimeout(resolve, 10_000); })]);
  clearTimeout(timer);
}

function firstMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve(message as T));
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before it was ready`)));
  });
}
