/**
 * Benchmark: the gateway's policy phase, side by side in one run. Sentinel (`SentinelHooks` on a
 * plain-HTTP `ProxyServer`, the same phases Frontline runs in one-hop mode, without TLS) serves
 * one host per case in a child process. Cases: plain proxy, + KeyAuth, + KeyAuth and RateLimit,
 * + JWTAuth, with 1 and N distinct keys/tokens (default 10,000; the key cache warmed first, so
 * the N-key rows measure a large hot set, not database loads). KeyAuth runs the REAL verifier
 * (`KeyVerifier` on SQLite in memory).
 *
 * Load and origin: `wrk` (one thread, a Lua script per case setting its Host and rotating
 * `Authorization: Bearer <credential>` over the case's pool) and nginx (one worker answering 200
 * `hello world`) by default when installed (`bench/install-peers.sh`), since autocannon in this
 * process and a node:http origin saturate core 1 near 10–11k req/s on a 2-core machine, before
 * the gateway does. `--load-generator autocannon` and `--origin node` (a node:http child) are the
 * fallbacks, used automatically (with a one-line message) when wrk or nginx is missing. With wrk,
 * `--duration-seconds` must be whole seconds.
 *
 * Made for a noisy 2-core machine: the cases are interleaved over `--rounds` (every case once per
 * round, then again), each measured run follows its own warm-up (min(1, duration) s), and the
 * table shows medians per case. With `taskset` and ≥ 2 cores the gateway child runs alone on
 * core 0 while the origin and the load generator share core 1. The gateway's CPU time per
 * request comes from the child itself (`process.cpuUsage` over IPC), so a busy neighbour does not
 * inflate it. Non-2xx answers (a 401 for a wrong key) and socket errors count as errors, never as
 * throughput. Prints req/s, p50, p99, CPU µs/request, the cost vs plain proxy as throughput
 * (1 − req/s ÷ plain req/s) and as CPU (CPU µs ÷ plain CPU µs − 1), and whether the goal
 * "KeyAuth + RateLimit costs ≤ 15 % of plain-proxy throughput" holds for the medians.
 *
 *   npx node bench/gateway.ts [--duration-seconds 3] [--rounds 3] [--connections 20] [--keys 10000]
 *                             [--cases keys-rl] [--load-generator wrk|autocannon] [--origin nginx|node]
 *                             [--rate REQ_PER_S] [--cpu-prof-dir DIR] [--help]
 *
 * `--cases` keeps only the cases whose host contains one of the comma-separated words (plain,
 * keys, keys-rl, jwt; the plain proxy always runs: it is the baseline). `--cpu-prof-dir` runs the
 * gateway child with `--cpu-prof` (sampling every 100 µs, which itself costs CPU: compare cases
 * within one profiled run only) and writes its `.cpuprofile` there when the run ends (Chrome
 * DevTools' Performance panel opens it); profile few cases at a time (`--cases`) to keep it
 * readable.
 *
 * `--rate` (wrk only) offers every case the same paced rate instead of closed-loop load (wrk's
 * pacing script, `wrkPacingScript`, appended to the case's script). The CPU per request then
 * compares the cases' own work at one load level: closed loop, a slower case runs at a lower
 * rate, where each request also costs the proxy more (fewer events per wake-up, a peer that is
 * idle more often and must be woken), so the closed-loop CPU cost mixes the policy's work with
 * that effect. The req/s cost is meaningless at a fixed rate and is not printed; a case whose
 * achieved rate stayed below 97 % of the offered one is flagged (saturated). An unknown option or
 * a bad value prints the error and this text and exits 2.
 */
import { execFileSync, fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type autocannon from 'autocannon';
import { answerCpuRequests, childCpuMicros, loadChildServer, medianOf, type ChildMeasurement } from './harness/child-server-bench.ts';
import { planNginxOrigin, which } from './harness/external-peers.ts';
import { runWrk, wrkPacingScript } from './harness/load.ts';
import { FIXED_RATE_KEPT_UP_SHARE } from './harness/report.ts';
import { freePort, waitForPort } from './harness/ports.ts';

const HERE = fileURLToPath(import.meta.url);
const TASKSET = '/usr/bin/taskset';
/** The issue's goal: KeyAuth + RateLimit may cost at most this share of plain-proxy throughput. */
const MAX_KEYAUTH_RATELIMIT_COST = 0.15;
const GATEWAY_CORE = '0';
const LOAD_CORE = '1';
/** First argument of the forked children; not option-like, so `--origin node` stays a user option. */
const ORIGIN_ROLE = 'bench-child:origin';
const GATEWAY_ROLE = 'bench-child:gateway';
/** Longest the nginx origin may take to accept connections, and to exit once asked. */
const ORIGIN_START_TIMEOUT_MS = 10_000;
const ORIGIN_STOP_TIMEOUT_MS = 5_000;
/** Longest a profiled gateway child may take to write its profile and exit. */
const PROFILED_EXIT_TIMEOUT_MS = 10_000;
const INSTALL_HINT = 'bench/install-peers.sh installs it';
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

/** What the command line asked for, validated. */
interface BenchSettings {
  durationSeconds: number;
  rounds: number;
  connections: number;
  keyCount: number;
  cases: BenchCase[];
  profileDir: string | undefined;
  /** `--rate`: the paced rate offered to every case (wrk only); undefined: closed loop. */
  rate: number | undefined;
  /** Undefined: pick by what is installed. */
  loadGenerator: 'wrk' | 'autocannon' | undefined;
  origin: 'nginx' | 'node' | undefined;
}

/** The load generator in use, and why it was picked (printed once). */
type LoadChoice = { kind: 'wrk'; wrkPath: string; reason: string } | { kind: 'autocannon'; reason: string };

/** The origin to start, and why it was picked (printed once). */
type OriginChoice = { kind: 'nginx'; reason: string } | { kind: 'node'; reason: string };

/** A running origin: its URL, and how to stop it. */
interface RunningOrigin { url: string; description: string; stop(): Promise<void> }

/** Loads one case for `durationSeconds`; `cpuMicrosPerRequest` is left 0 (see measureCase). */
type CaseLoad = (durationSeconds: number) => Promise<{ measurement: ChildMeasurement; requests: number }>;

/** A command-line mistake: printed as one line plus the usage, exit code 2. */
class UsageError extends Error {}

const role = process.argv[2];
if (role === ORIGIN_ROLE) await serveOrigin();
else if (role === GATEWAY_ROLE) await serveGateway(process.argv[3]!, Number(process.argv[4]));
else await main();

async function main(): Promise<void> {
  let settings: BenchSettings;
  let load: LoadChoice;
  let originChoice: OriginChoice;
  try {
    settings = readSettings(process.argv.slice(2));
    load = chooseLoadGenerator(settings);
    originChoice = chooseOrigin(settings);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`bench/gateway.ts: ${err.message}\n`);
    console.error(usageText());
    process.exit(2);
  }
  const { durationSeconds, rounds, connections, keyCount, cases, profileDir, rate } = settings;
  const canPin = existsSync(TASKSET) && cpus().length >= 2;
  // Pin this process first: the origin started next (and wrk, run from here) inherit core 1, the gateway is moved to core 0.
  const previousAffinity = canPin ? setAffinity(process.pid, LOAD_CORE) : undefined;
  const workDir = mkdtempSync(join(tmpdir(), 'keygate-gateway-bench-'));
  let origin: RunningOrigin | undefined;
  let gateway: ChildProcess | undefined;
  try {
    origin = await startOrigin(originChoice, workDir);
    const execArgv = profileDir === undefined ? process.execArgv : [...process.execArgv, '--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', profileDir];
    gateway = fork(HERE, [GATEWAY_ROLE, origin.url, String(keyCount)], { execArgv });
    const gatewayPinned = previousAffinity !== undefined && setAffinity(gateway.pid!, GATEWAY_CORE) !== undefined;
    const { url, credentials } = await firstMessage<{ url: string; credentials: Credentials }>(gateway);
    const pinning = gatewayPinned ? `gateway pinned to core ${GATEWAY_CORE}, origin + load on core ${LOAD_CORE}` : 'not pinned (no taskset or < 2 cores)';
    console.log(load.reason);
    console.log(originChoice.reason);
    console.log(`gateway bench: ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, Node ${process.version}, ${durationSeconds} s per case × ${rounds} round(s) (interleaved, warm-up before each), ${connections} connections, N = ${keyCount}; load: ${load.kind}${rate === undefined ? ' (closed loop)' : `, paced at ${rate} req/s`}, origin: ${origin.description}; ${pinning}`);

    const loads = new Map(cases.map((item, index) => [item, caseLoad(load, workDir, index, item, credentialPool(item, credentials), url, connections, rate)]));
    const results = new Map<BenchCase, ChildMeasurement[]>(cases.map((item) => [item, []]));
    for (let round = 0; round < rounds; round++) {
      for (const item of cases) results.get(item)!.push(await measureCase(gateway, loads.get(item)!, durationSeconds));
    }
    printTable(results, rate);
  } finally {
    // A profiled child writes its profile only when it exits by itself.
    if (profileDir !== undefined && gateway !== undefined) await stopGracefully(gateway);
    gateway?.kill();
    await origin?.stop();
    if (previousAffinity !== undefined) setAffinity(process.pid, previousAffinity);
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Parses and validates the options; throws a UsageError for anything wrong. `--help` prints the usage and exits 0. */
function readSettings(argv: string[]): BenchSettings {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        'duration-seconds': { type: 'string', default: '3' },
        rounds: { type: 'string', default: '3' },
        connections: { type: 'string', default: '20' },
        keys: { type: 'string', default: '10000' },
        cases: { type: 'string' },
        'load-generator': { type: 'string' },
        origin: { type: 'string' },
        'cpu-prof-dir': { type: 'string' },
        rate: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    // parseArgs' messages name the option ("Unknown option '--foo'. To specify a positional ..."): keep the first sentence.
    throw new UsageError((err as Error).message.split('. ')[0]!.replace(/\.$/, ''));
  }
  if (values.help) {
    console.log(usageText());
    process.exit(0);
  }
  const caseWords = values.cases?.split(',').map((word) => word.trim()).filter((word) => word !== '');
  const unmatched = caseWords?.filter((word) => !CASES.some((item) => item.host.includes(word)));
  if (caseWords !== undefined && (caseWords.length === 0 || unmatched!.length > 0)) {
    throw new UsageError(`--cases ${JSON.stringify(values.cases)} matches no case host (hosts: ${[...new Set(CASES.map((item) => item.host))].join(', ')})`);
  }
  return {
    durationSeconds: positiveNumber('duration-seconds', values['duration-seconds']),
    rounds: positiveInteger('rounds', values.rounds),
    connections: positiveInteger('connections', values.connections),
    keyCount: positiveInteger('keys', values.keys),
    cases: CASES.filter((item) => item === CASES[0] || caseWords === undefined || caseWords.some((word) => item.host.includes(word))),
    profileDir: values['cpu-prof-dir'],
    rate: values.rate === undefined ? undefined : positiveNumber('rate', values.rate),
    loadGenerator: oneOf('load-generator', values['load-generator'], ['wrk', 'autocannon'] as const),
    origin: oneOf('origin', values.origin, ['nginx', 'node'] as const),
  };
}

/** wrk when asked for or (by default) installed, else autocannon; throws a UsageError when wrk is asked for but cannot run. */
function chooseLoadGenerator(settings: BenchSettings): LoadChoice {
  if (settings.loadGenerator === 'autocannon') {
    if (settings.rate !== undefined) throw new UsageError('--rate needs wrk (its pacing script); autocannon\'s rate is bursty');
    return { kind: 'autocannon', reason: 'load generator: autocannon (--load-generator autocannon), in this process on the load core: it may saturate before the gateway does' };
  }
  const wrkPath = which('wrk');
  if (wrkPath === undefined) {
    if (settings.loadGenerator === 'wrk') throw new UsageError(`--load-generator wrk: wrk is not installed (${INSTALL_HINT})`);
    if (settings.rate !== undefined) throw new UsageError(`--rate needs wrk, which is not installed (${INSTALL_HINT})`);
    return { kind: 'autocannon', reason: `load generator: autocannon, since wrk is not installed (${INSTALL_HINT}); autocannon may saturate before the gateway does` };
  }
  // wrk rounds its duration to whole seconds (runWrk): refuse rather than measure another duration than asked.
  if (!Number.isInteger(settings.durationSeconds)) throw new UsageError(`--duration-seconds must be a whole number of seconds with wrk, got ${settings.durationSeconds}`);
  const why = settings.loadGenerator === 'wrk' ? '--load-generator wrk' : 'installed, the default';
  return { kind: 'wrk', wrkPath, reason: `load generator: wrk (${why}; one thread, a Lua script per case)` };
}

/** The case's credential pool: none (plain), the first key or token, or all of them. */
function credentialPool(item: BenchCase, credentials: Credentials): string[] {
  switch (item.credential) {
    case 'none': return [];
    case 'key1': return credentials.keys.slice(0, 1);
    case 'keyN': return credentials.keys;
    case 'jwt1': return credentials.tokens.slice(0, 1);
    case 'jwtN': return credentials.tokens;
  }
}

/**
 * How one case is loaded: wrk with a Lua script written into `workDir` now (paced at `rate` when
 * given: the pacing script's `delay` next to the case's `init` and `request`), or autocannon in
 * this process.
 */
function caseLoad(load: LoadChoice, workDir: string, index: number, item: BenchCase, pool: string[], url: string, connections: number, rate: number | undefined): CaseLoad {
  if (load.kind === 'autocannon') {
    const target = { url, requests: [caseRequest(item, pool)] };
    return async (durationSeconds) => {
      const { totalRequests, ...measurement } = await loadChildServer(target, durationSeconds, connections);
      return { measurement, requests: totalRequests };
    };
  }
  const script = join(workDir, `case-${index}.lua`);
  writeFileSync(script, wrkScript(item, pool) + (rate === undefined ? '' : '\n' + wrkPacingScript(rate)));
  return async (durationSeconds) => {
    const result = await runWrk({ url: `${url}/resource`, connections, durationSeconds, script }, load.wrkPath);
    const measurement: ChildMeasurement = {
      requestsPerSecond: result.requestsPerSecond,
      latencyMsP50: result.latencyMsP50,
      latencyMsP99: result.latencyMsP99,
      // wrk's Requests/sec includes non-2xx answers: they are reported here, as errors, never hidden.
      errors: result.errors + result.non2xx,
      cpuMicrosPerRequest: 0,
    };
    return { measurement, requests: result.requests };
  };
}

/**
 * Warms the case up for min(1, durationSeconds) (JIT, pools, caches hot), then loads it for
 * `durationSeconds` and returns the measurement with the gateway child's CPU µs per request.
 */
async function measureCase(gateway: ChildProcess, load: CaseLoad, durationSeconds: number): Promise<ChildMeasurement> {
  await load(Math.min(1, durationSeconds));
  const cpuBefore = await childCpuMicros(gateway);
  const { measurement, requests } = await load(durationSeconds);
  measurement.cpuMicrosPerRequest = (await childCpuMicros(gateway) - cpuBefore) / Math.max(1, requests);
  return measurement;
}

/**
 * The wrk Lua script of one case: every request sends its Host and, when the pool is not empty,
 * `Authorization: Bearer <credential>` rotating over the pool. The requests are formatted once in
 * `init`, so wrk's per-request work (on the load core, shared with the origin) is a table lookup.
 */
function wrkScript(item: BenchCase, pool: readonly string[]): string {
  return `-- ${item.name}: Host ${item.host}, Authorization rotating over ${pool.length} credential(s).
local host = ${luaString(item.host)}
local credentials = {
${pool.map((credential) => `${luaString(credential)},`).join('\n')}
}
local requests = {}
local next_index = 0

init = function(args)
  for index, credential in ipairs(credentials) do
    requests[index] = wrk.format("GET", "/resource", { ["Host"] = host, ["Authorization"] = "Bearer " .. credential })
  end
  if #requests == 0 then requests[1] = wrk.format("GET", "/resource", { ["Host"] = host }) end
end

request = function()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
`;
}

/** A Lua double-quoted string literal of `text` (backslash and quote escaped, control characters as 3-digit `\ddd`). */
function luaString(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&').replace(/[\u0000-\u001f\u007f]/g, (char) => `\\${String(char.charCodeAt(0)).padStart(3, '0')}`)}"`;
}

/** The autocannon request of one case: its Host, and a Bearer credential rotating over its pool. */
function caseRequest(item: BenchCase, pool: readonly string[]): autocannon.Request {
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

/** nginx when asked for or (by default) installed, else a node:http child; throws a UsageError when nginx is asked for but missing. */
function chooseOrigin(settings: BenchSettings): OriginChoice {
  if (settings.origin === 'node') return { kind: 'node', reason: 'origin: node:http child (--origin node): it may saturate before the gateway does' };
  if (which('nginx') !== undefined) {
    const why = settings.origin === 'nginx' ? '--origin nginx' : 'installed, the default';
    return { kind: 'nginx', reason: `origin: nginx (${why}; one worker answering 200 "hello world")` };
  }
  if (settings.origin === 'nginx') throw new UsageError(`--origin nginx: nginx is not installed (${INSTALL_HINT})`);
  return { kind: 'node', reason: `origin: node:http child, since nginx is not installed (${INSTALL_HINT}); it may saturate before the gateway does` };
}

/** Starts the chosen origin on this process's core; throws when it does not start. */
async function startOrigin(choice: OriginChoice, workDir: string): Promise<RunningOrigin> {
  if (choice.kind === 'nginx') {
    const port = await freePort();
    const command = planNginxOrigin(workDir, port);
    if (command === undefined) throw new Error('nginx disappeared since it was found on PATH');
    return startNginxOrigin(command, port);
  }
  const child = fork(HERE, [ORIGIN_ROLE]);
  try {
    const url = await firstMessage<string>(child);
    return { url, description: 'node:http', stop: async () => { child.kill(); } };
  } catch (err) {
    child.kill();
    throw err;
  }
}

/** Spawns nginx (`command` from planNginxOrigin) and waits until `port` accepts connections. */
async function startNginxOrigin(command: string[], port: number): Promise<RunningOrigin> {
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (data: Buffer) => { output += data.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitCode: number | null | undefined;
  child.once('exit', (code) => { exitCode = code; });
  child.once('error', (err) => { output += err.message; });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill();
    await withTimeout(exited, ORIGIN_STOP_TIMEOUT_MS);
  };
  const ready = await waitForPort(port, ORIGIN_START_TIMEOUT_MS, () => exitCode !== undefined);
  if (!ready) {
    await stop();
    throw new Error(`nginx origin did not start (exit ${exitCode}): ${output.trim().slice(0, 500)}; --origin node uses a node:http origin instead`);
  }
  return { url: `http://127.0.0.1:${port}`, description: 'nginx', stop };
}

/** Resolves when `promise` settles or after `timeoutMs`, whichever comes first. */
async function withTimeout(promise: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); })]);
  clearTimeout(timer);
}

/** This file's opening comment as plain text: the usage. */
function usageText(): string {
  const source = readFileSync(HERE, 'utf8');
  return source.slice(source.indexOf('/**') + 3, source.indexOf('*/')).split('\n').map((line) => line.replace(/^ ?\* ?/, '')).join('\n').trim();
}

function printTable(results: Map<BenchCase, ChildMeasurement[]>, rate: number | undefined): void {
  const plain = results.get(CASES[0])!;
  const plainRps = medianOf(plain, 'requestsPerSecond');
  const plainCpu = medianOf(plain, 'cpuMicrosPerRequest');
  const percent = (ratio: number): string => `${(ratio * 100).toFixed(1)} %`;
  const signedPercent = (ratio: number): string => (ratio >= 0 ? '+' : '−') + percent(Math.abs(ratio));
  if (rate !== undefined) return printPacedTable(results, rate, plainCpu, signedPercent);
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
    console.log(`| ${item.name} | ${Math.round(rps)} | ${Math.min(...roundRps)}–${Math.max(...roundRps)} | ${latencyCell(medianOf(measurements, 'latencyMsP50'))} | ${latencyCell(medianOf(measurements, 'latencyMsP99'))} | ${cpu.toFixed(1)} | ${isPlain ? '—' : signedPercent(1 - rps / plainRps)} | ${isPlain ? '—' : signedPercent(cpu / plainCpu - 1)} | ${errors} |`);
  }
  const goalCases = [...results.keys()].filter((item) => item.host === 'keys-rl.bench');
  const verdicts = goalCases.map((item) => `${item.name.replace('+ KeyAuth + RateLimit (', '').replace(')', '')}: ${signedPercent(throughputCost.get(item)!)}`);
  if (goalCases.length === 0) return;
  const holds = goalCases.every((item) => throughputCost.get(item)! <= MAX_KEYAUTH_RATELIMIT_COST);
  console.log(`\ngoal "KeyAuth + RateLimit costs ≤ ${MAX_KEYAUTH_RATELIMIT_COST * 100} % of plain-proxy throughput" (median req/s): ${holds ? 'HOLDS' : 'DOES NOT HOLD'} (${verdicts.join(', ')})`);
}

/** A latency in ms for the tables, with at most 3 decimals (the median of two rounds is their mean: 2.7299999999999995 → 2.73). */
function latencyCell(ms: number): string {
  return String(Number(ms.toFixed(3)));
}

/**
 * The table of a `--rate` run: every case at the same offered rate, so only the CPU per request
 * compares (the extra µs are the policies' own work at that load); cases that could not keep up
 * are flagged, their CPU figure being a saturation one.
 */
function printPacedTable(results: Map<BenchCase, ChildMeasurement[]>, rate: number, plainCpu: number, signedPercent: (ratio: number) => string): void {
  console.log(`\n(medians over the rounds, every case offered ${rate} req/s paced by wrk; CPU = the gateway child's user + system time per request)`);
  console.log('| case | achieved req/s | p50 ms | p99 ms | gateway CPU µs/req | extra CPU µs/req vs plain | cost vs plain (CPU) | note | non-2xx/errors |\n|---|---:|---:|---:|---:|---:|---:|---|---:|');
  for (const [item, measurements] of results) {
    const rps = medianOf(measurements, 'requestsPerSecond');
    const cpu = medianOf(measurements, 'cpuMicrosPerRequest');
    const isPlain = item === CASES[0];
    const errors = measurements.reduce((sum, measurement) => sum + measurement.errors, 0);
    const note = rps < rate * FIXED_RATE_KEPT_UP_SHARE ? `saturated: below ${FIXED_RATE_KEPT_UP_SHARE * 100} % of the offered rate` : '';
    console.log(`| ${item.name} | ${Math.round(rps)} | ${latencyCell(medianOf(measurements, 'latencyMsP50'))} | ${latencyCell(medianOf(measurements, 'latencyMsP99'))} | ${cpu.toFixed(1)} | ${isPlain ? '—' : (cpu - plainCpu).toFixed(1)} | ${isPlain ? '—' : signedPercent(cpu / plainCpu - 1)} | ${note} | ${errors} |`);
  }
  console.log(`\n(the goal "KeyAuth + RateLimit costs ≤ ${MAX_KEYAUTH_RATELIMIT_COST * 100} % of plain-proxy throughput" is a closed-loop figure: run without --rate to check it)`);
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
  if (text === undefined || text.trim() === '' || !Number.isFinite(value) || value <= 0) throw new UsageError(`--${name} must be a positive number, got ${JSON.stringify(text)}`);
  return value;
}

function positiveInteger(name: string, text: string | undefined): number {
  const value = positiveNumber(name, text);
  if (!Number.isInteger(value)) throw new UsageError(`--${name} must be a whole number, got ${JSON.stringify(text)}`);
  return value;
}

/** `text` when it is one of `allowed`, undefined when not given; throws a UsageError otherwise. */
function oneOf<const T extends string>(name: string, text: string | undefined, allowed: readonly T[]): T | undefined {
  if (text === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`--${name} must be ${allowed.join(' or ')}, got ${JSON.stringify(text)}`);
  return text as T;
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
  await withTimeout(exited, PROFILED_EXIT_TIMEOUT_MS);
}

function firstMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve(message as T));
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before it was ready`)));
  });
}
