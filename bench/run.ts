/**
 * `make bench`: keygate's proxy against its peers, side by side in one run; with `--all`, then
 * every other standalone benchmark script in bench/ (`bench/<name>.ts`, one after another, short
 * durations by default), their printed tables collected into the same report.
 *
 *   npx node bench/run.ts [--duration-seconds 5] [--warmup-seconds 1] [--repeats 3]
 *                         [--connections 50] [--cases a,b] [--peers a,b] [--all] [--scripts-only]
 *                         [--script-seconds 1] [--origin nginx|node] [--load-generator wrk|autocannon]
 *                         [--fixed-rate 10000]
 *   make bench ARGS="--all"
 *
 * Layout on a 2-core machine: each proxy under test runs alone on core 0 (`taskset`, when
 * installed); the origin (nginx when installed, else origin.ts) and the load generator share
 * core 1. Cases are interleaved (every peer once per round, rounds repeated) and medians
 * reported, since this machine is shared and noisy; the proxy's own CPU time per request is
 * reported as the steadier figure. Peers: direct to the origin, keygate with each forwarding
 * engine (raw, undici), http-proxy-3 (keep-alive agent), minimal undici and node:http proxies,
 * and nginx, HAProxy (plain and TLS with ALPN h2) and Caddy when installed
 * (`bench/install-peers.sh`; skipped with a message otherwise). `wrk` drives the HTTP/1.1 cases
 * when installed (autocannon otherwise), `h2load` the HTTP/2 case (skipped without it) and
 * `openssl s_time` the full-handshake case (skipped without openssl).
 * Results: a table on stdout, JSON and a self-contained HTML report in bench/results/ (git-ignored).
 *
 * Cases (`--cases`, comma-separated): http1-keepalive, tls-keepalive, tls-new-handshakes,
 * tls-full-handshakes, http2-downstream, routes-1-vs-1000, p99-fixed-rate. `tls-full-handshakes`
 * makes a full TLS handshake per connection and no request (`openssl s_time -new`, 4 processes);
 * the client costs more CPU per handshake than any server, so it cannot saturate one from one
 * core, and its rows compare the peers' CPU time per handshake instead of req/s. Every other case
 * but the last runs closed loop at saturation, so each peer's p99 is taken at its own maximum
 * rate. `p99-fixed-rate` is
 * http1-keepalive (keygate-raw, nginx, HAProxy, http-proxy-3) with every peer offered the same
 * `--fixed-rate` req/s (a positive integer, default 10000): its table shows p99 against nginx's
 * p99 and flags a peer whose req/s fell below 97 % of the rate (its latency is then a saturation
 * figure). wrk offers the rate evenly spread, with a generated Lua pacing script (load.ts,
 * wrkPacingScript). Without wrk (or with `--load-generator autocannon`) autocannon's
 * `overallRate` offers it, and says so: autocannon spends each connection's share of a second's
 * requests as fast as it can, then waits for the next second; the note column shows how bursty
 * that was (the busiest 10 ms as a multiple of the rate), and bursty load puts its latencies well
 * above those of the same rate spread evenly (bench/harness/README.md).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { planExternalPeers, planNginxOrigin, which } from './harness/external-peers.ts';
import { freePort, waitForPort } from './harness/ports.ts';
import type { ExternalPeerPorts } from './harness/external-peers.ts';
import { H2_STREAMS_PER_CONNECTION, runAutocannon, runH2load, runSTime, runWrk } from './harness/load.ts';
import type { LoadOptions, LoadResult } from './harness/load.ts';
import { checkGoals, compareAtFixedRate, ratioAgainst, renderTable, writeReport } from './harness/report.ts';
import type { BenchReport, CaseSummary, RatioMetric } from './harness/report.ts';
import { median, processTreeCpuMs } from './harness/stats.ts';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const HARNESS_DIR = join(BENCH_DIR, 'harness');
const NODE = process.execPath;

const { values: args } = parseArgs({
  options: {
    'duration-seconds': { type: 'string', default: '5' },
    'warmup-seconds': { type: 'string', default: '1' },
    repeats: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    cases: { type: 'string' },
    peers: { type: 'string' },
    all: { type: 'boolean', default: false },
    'scripts-only': { type: 'boolean', default: false },
    'script-seconds': { type: 'string', default: '1' },
    'script-timeout-seconds': { type: 'string', default: '300' },
    origin: { type: 'string', default: 'nginx' },
    'load-generator': { type: 'string', default: 'wrk' },
    'fixed-rate': { type: 'string', default: '10000' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  // The usage is this file's opening comment, printed as text.
  const source = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const usage = source.slice(source.indexOf('/**') + 3, source.indexOf('*/')).split('\n').map((line) => line.replace(/^ ?\* ?/, '')).join('\n').trim();
  console.log(usage);
  console.log('\ncases: http1-keepalive, tls-keepalive, tls-new-handshakes, tls-full-handshakes, http2-downstream, routes-1-vs-1000, p99-fixed-rate');
  process.exit(0);
}

/** `--fixed-rate`: the req/s the fixed-rate case offers every peer. */
const fixedRate = positiveInteger('fixed-rate', args['fixed-rate']!);

interface RunningPeer {
  name: string;
  url: string;
  pid: number | undefined;
  child: ChildProcess | undefined;
}

interface BenchCase {
  name: string;
  description: string;
  peers: string[];
  scheme: 'http' | 'https';
  /**
   * `h2` runs h2load (HTTP/2 over TLS with ALPN); `http1` runs wrk or autocannon; `s_time` runs
   * `openssl s_time -new` (full TLS handshakes, no request; `--connections` does not apply).
   */
  protocol: 'http1' | 'h2' | 's_time';
  headers?: Record<string, string>;
  /** Extra request headers for one peer of the case (the Host each routing table knows). */
  peerHeaders?: Record<string, Record<string, string>>;
  /** Where this case's nginx / http-proxy-3 references come from when it runs neither itself. */
  referenceCase?: string;
  /** Offer every peer `--fixed-rate` req/s (paced wrk, else autocannon) instead of loading it to saturation. */
  fixedRate?: boolean;
  /**
   * What the ratios compare: req/s (undefined), or `cpu`: the reference's CPU time per request ÷
   * the peer's, for a case whose load generator cannot saturate the peers (see RatioMetric).
   */
  compareBy?: RatioMetric;
}

/** One measured run of one peer in one case. */
interface MeasuredRun {
  caseName: string;
  peer: string;
  round: number;
  result: LoadResult & { cpuMs: number };
}

const children: ChildProcess[] = [];
const skipped: string[] = [];
const taskset = which('taskset');
const pinned = taskset !== undefined && cpus().length >= 2;
const wrk = which('wrk');
const h2load = which('h2load');
const openssl = which('openssl');
/** Concurrent `openssl s_time` processes in `tls-full-handshakes` (all on the load core; more only share it). */
const S_TIME_PROCESSES = 4;
const useWrk = wrk !== undefined && args['load-generator'] !== 'autocannon';
/** Most output kept per standalone script in the report (the terminal still sees all of it). */
const MAX_SCRIPT_OUTPUT_CHARS = 256 * 1024;
/** How long a standalone script gets between SIGTERM and SIGKILL once past its timeout. */
const SCRIPT_KILL_GRACE_MS = 5_000;

/** Runs `command` (pinned to `core` when possible) and waits for its `ready <port>` line. */
async function startChild(name: string, command: string[], core: number, readyPort?: number): Promise<{ child: ChildProcess; port: number }> {
  const full = pinned ? [taskset!, '-c', String(core), ...command] : command;
  const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stderr!.on('data', (data: Buffer) => { output += data.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      if (readyPort !== undefined) resolve({ child, port: readyPort });
      else reject(new Error(`${name} did not start: ${output}`));
    }, readyPort !== undefined ? 1_000 : 15_000);
    child.stdout!.on('data', (data: Buffer) => {
      const match = /ready (\d+)/.exec(data.toString());
      if (match !== null) { clearTimeout(timer); resolve({ child, port: Number(match[1]) }); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited with ${code}: ${output}`)); });
  });
}

/** Starts an external binary (nginx, HAProxy, Caddy) and waits until its port accepts connections. */
async function startExternal(name: string, command: string[], core: number, port: number): Promise<ChildProcess> {
  const full = pinned ? [taskset!, '-c', String(core), ...command] : command;
  const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let output = '';
  child.stderr!.on('data', (data: Buffer) => { output += data.toString(); });
  let exited: number | null | undefined;
  child.once('exit', (code) => { exited = code; });
  const ready = await waitForPort(port, 10_000);
  if (!ready || exited !== undefined) throw new Error(`${name} did not start (exit ${exited}): ${output.slice(0, 500)}`);
  return child;
}

/** The origin every peer forwards to: nginx when installed (faster than any proxy under test), else `origin.ts`. */
async function startOrigin(workDir: string): Promise<{ port: number; kind: string }> {
  const port = await freePort();
  const nginxOrigin = args.origin === 'node' ? undefined : planNginxOrigin(workDir, port);
  if (nginxOrigin !== undefined) {
    try {
      await startExternal('nginx origin', nginxOrigin, 1, port);
      return { port, kind: 'nginx' };
    } catch (err) {
      skipped.push(`nginx origin failed, using origin.ts: ${(err as Error).message}`);
    }
  } else if (args.origin !== 'node') {
    skipped.push('nginx not installed: the origin is origin.ts (node:http), which may cap the fastest peers');
  }
  const origin = await startChild('origin', [NODE, join(HARNESS_DIR, 'origin.ts'), '0'], 1);
  return { port: origin.port, kind: 'node' };
}

const CASES: BenchCase[] = [
  { name: 'http1-keepalive', description: 'plain HTTP/1.1, keep-alive on both sides', protocol: 'http1', scheme: 'http',
    peers: ['direct', 'keygate-raw', 'keygate-undici', 'http-proxy-3', 'undici-minimal', 'node-http-minimal', 'nginx', 'haproxy', 'caddy'] },
  { name: 'tls-keepalive', description: 'TLS termination (ECDSA P-256), HTTP/1.1 keep-alive downstream', protocol: 'http1', scheme: 'https',
    peers: ['keygate-raw-tls', 'keygate-undici-tls', 'http-proxy-3-tls', 'nginx-tls', 'haproxy-tls'] },
  { name: 'tls-new-handshakes', description: 'a new TLS connection per request (Connection: close); wrk resumes each with the ticket of the one before (TLS 1.3 PSK + X25519: no certificate, no signature), for every peer alike', protocol: 'http1', scheme: 'https',
    peers: ['keygate-raw-tls', 'http-proxy-3-tls', 'nginx-tls', 'haproxy-tls'], headers: { connection: 'close' } },
  { name: 'tls-full-handshakes', description: `a full TLS handshake per connection, then close, no request (openssl s_time -new, ${S_TIME_PROCESSES} processes: a new session each time, no ticket; ECDSA P-256 certificate, X25519); the client cannot saturate a server from one core, so peers are compared by their CPU time per handshake`,
    protocol: 's_time', scheme: 'https', peers: ['keygate-raw-tls', 'http-proxy-3-tls', 'nginx-tls', 'haproxy-tls'], compareBy: 'cpu' },
  { name: 'http2-downstream', description: `HTTP/2 over TLS (ALPN h2) downstream, HTTP/1.1 keep-alive upstream; ${H2_STREAMS_PER_CONNECTION} streams per connection`, protocol: 'h2', scheme: 'https',
    peers: ['keygate-raw-tls', 'keygate-undici-tls', 'http-proxy-3-h2', 'nginx-tls', 'haproxy-tls'] },
  { name: 'routes-1-vs-1000', description: 'keygate routing by Host through a table of 1 host, then of 1,000 hosts (asked for the last one)', protocol: 'http1', scheme: 'http',
    peers: ['keygate-1-route', 'keygate-1000-routes'], peerHeaders: { 'keygate-1-route': { Host: 'r0.bench' }, 'keygate-1000-routes': { Host: 'r999.bench' } },
    referenceCase: 'http1-keepalive' },
  { name: 'p99-fixed-rate', description: `plain HTTP/1.1, keep-alive on both sides, every peer offered ${fixedRate} req/s (p99 at the same offered load)`, protocol: 'http1', scheme: 'http',
    peers: ['keygate-raw', 'http-proxy-3', 'nginx', 'haproxy'], fixedRate: true },
];

/** The cases to run: `--cases`, minus the HTTP/2 case without h2load, peers narrowed by `--peers`. */
function selectCases(): BenchCase[] {
  const wantedCases = args.cases?.split(',');
  const wantedPeers = args.peers?.split(',');
  const selected: BenchCase[] = [];
  for (const benchCase of CASES) {
    if (wantedCases !== undefined && !wantedCases.includes(benchCase.name)) continue;
    if (benchCase.protocol === 'h2' && h2load === undefined) {
      skipped.push(`${benchCase.name}: h2load not installed (package nghttp2-client; run bench/install-peers.sh)`);
      continue;
    }
    if (benchCase.protocol === 's_time' && openssl === undefined) {
      skipped.push(`${benchCase.name}: openssl not found on PATH (its s_time command drives the case; package openssl)`);
      continue;
    }
    const peers = benchCase.peers.filter((name) => wantedPeers === undefined || wantedPeers.includes(name));
    if (peers.length > 0) selected.push({ ...benchCase, peers });
  }
  return selected;
}

/** Starts every peer one of `cases` uses (Node peers on core 0, external ones when installed). */
async function startPeers(cases: readonly BenchCase[], originPort: number, certFile: string, keyFile: string, configDir: string): Promise<Map<string, RunningPeer>> {
  const needed = new Set(cases.flatMap((c) => c.peers));
  const peers = new Map<string, RunningPeer>();
  if (needed.has('direct')) peers.set('direct', { name: 'direct', url: `http://127.0.0.1:${originPort}`, pid: undefined, child: undefined });
  const keygate = join(HARNESS_DIR, 'peers/keygate.ts');
  const httpProxy3 = join(HARNESS_DIR, 'peers/http-proxy-3.ts');
  const tls = ['--tls', certFile, keyFile];
  const origin = String(originPort);
  const nodePeers: [string, string[], 'http' | 'https'][] = [
    ['keygate-raw', [keygate, origin, '0', '--engine', 'raw'], 'http'],
    ['keygate-undici', [keygate, origin, '0', '--engine', 'undici'], 'http'],
    ['keygate-raw-tls', [keygate, origin, '0', '--engine', 'raw', ...tls], 'https'],
    ['keygate-undici-tls', [keygate, origin, '0', '--engine', 'undici', ...tls], 'https'],
    ['keygate-1-route', [keygate, origin, '0', '--routes', '1'], 'http'],
    ['keygate-1000-routes', [keygate, origin, '0', '--routes', '1000'], 'http'],
    ['http-proxy-3', [httpProxy3, origin, '0'], 'http'],
    ['http-proxy-3-tls', [httpProxy3, origin, '0', ...tls], 'https'],
    ['http-proxy-3-h2', [httpProxy3, origin, '0', ...tls, '--h2'], 'https'],
    ['undici-minimal', [join(HARNESS_DIR, 'peers/undici-minimal.ts'), origin, '0'], 'http'],
    ['node-http-minimal', [join(HARNESS_DIR, 'peers/node-http-minimal.ts'), origin, '0'], 'http'],
  ];
  for (const [name, command, scheme] of nodePeers) {
    if (!needed.has(name)) continue;
    try {
      const { child, port } = await startChild(name, [NODE, ...command], 0);
      peers.set(name, { name, url: `${scheme}://127.0.0.1:${port}`, pid: child.pid, child });
    } catch (err) {
      skipped.push(`${name} failed to start: ${(err as Error).message.slice(0, 500)}`);
    }
  }
  const ports: ExternalPeerPorts = { nginx: await freePort(), 'nginx-tls': await freePort(), haproxy: await freePort(), 'haproxy-tls': await freePort(), caddy: await freePort() };
  for (const plan of planExternalPeers(configDir, originPort, ports, certFile, keyFile)) {
    if (!needed.has(plan.name)) continue;
    if (plan.command === undefined) { skipped.push(plan.skipReason!); continue; }
    try {
      const child = await startExternal(plan.name, plan.command, 0, plan.port);
      peers.set(plan.name, { name: plan.name, url: `${plan.scheme}://127.0.0.1:${plan.port}`, pid: child.pid, child });
    } catch (err) {
      skipped.push(`${plan.name} failed to start: ${(err as Error).message}`);
    }
  }
  return peers;
}

function loadGeneratorOf(benchCase: BenchCase): 'h2load' | 'openssl s_time' | 'wrk' | 'autocannon' {
  if (benchCase.protocol === 'h2') return 'h2load';
  if (benchCase.protocol === 's_time') return 'openssl s_time';
  // A fixed rate too: wrk holds it with its pacing script (runWrk), autocannon in bursts.
  return useWrk ? 'wrk' : 'autocannon';
}

/** How a case's load is described in the report: the generator, with the rate and how it is offered for a fixed-rate case. */
function loadDescriptionOf(benchCase: BenchCase): string {
  const generator = loadGeneratorOf(benchCase);
  if (generator === 'openssl s_time') return `openssl s_time -new × ${S_TIME_PROCESSES}`;
  if (benchCase.fixedRate !== true) return generator;
  return generator === 'wrk' ? `wrk paced by a Lua script at ${fixedRate} req/s` : `autocannon at ${fixedRate} req/s (bursty)`;
}

async function measure(peer: RunningPeer, benchCase: BenchCase, durationSeconds: number, connections: number): Promise<LoadResult & { cpuMs: number }> {
  const headers = { ...benchCase.headers, ...benchCase.peerHeaders?.[peer.name] };
  const options: LoadOptions = { url: `${peer.url}/`, connections, durationSeconds, headers, insecure: benchCase.scheme === 'https', ...(benchCase.fixedRate === true ? { rate: fixedRate } : {}) };
  const cpuBefore = peer.pid === undefined ? Number.NaN : processTreeCpuMs(peer.pid);
  // wrk never verifies certificates, so it drives the TLS cases too; with `Connection: close`
  // it reconnects per request, a handshake each time (resumed with the previous connection's
  // ticket: wrk keeps its session across reconnects). h2load speaks HTTP/2 (ALPN h2). s_time
  // makes a full handshake per connection and sends no request (headers do not apply).
  const generator = loadGeneratorOf(benchCase);
  const { hostname, port } = new URL(peer.url);
  const result = generator === 'h2load' ? await runH2load(options, h2load!)
    : generator === 'openssl s_time' ? await runSTime({ host: hostname, port: Number(port || 443), durationSeconds, processes: S_TIME_PROCESSES }, openssl!)
      : generator === 'wrk' ? await runWrk(options, wrk!) : await runAutocannon(options);
  const cpuAfter = peer.pid === undefined ? Number.NaN : processTreeCpuMs(peer.pid);
  return { ...result, cpuMs: cpuAfter - cpuBefore };
}

/**
 * Medians per peer and case, with ratios against nginx and http-proxy-3 (see
 * BenchCase.referenceCase): of req/s, or of CPU time per request for a `compareBy: 'cpu'` case.
 */
function summarize(cases: readonly BenchCase[], runs: readonly MeasuredRun[]): CaseSummary[] {
  const byCase = new Map<string, CaseSummary[]>();
  for (const benchCase of cases) {
    byCase.set(benchCase.name, benchCase.peers.flatMap((peer): CaseSummary[] => {
      const mine = runs.filter((run) => run.caseName === benchCase.name && run.peer === peer).map((run) => run.result);
      if (mine.length === 0) return [];
      return [{
        caseName: benchCase.name, peer,
        requestsPerSecond: median(mine.map((r) => r.requestsPerSecond)),
        latencyMsP50: median(mine.map((r) => r.latencyMsP50)),
        latencyMsP99: median(mine.map((r) => r.latencyMsP99)),
        cpuMicrosecondsPerRequest: median(mine.map((r) => (r.cpuMs * 1000) / Math.max(1, r.requests))),
        runs: mine.length, ratio: 1, reference: '',
        ...busiestOf(mine),
      }];
    }));
  }
  const find = (benchCase: BenchCase, prefix: string): { summary: CaseSummary; label: string } | undefined => {
    const own = byCase.get(benchCase.name)?.find((s) => s.peer.startsWith(prefix));
    if (own !== undefined) return { summary: own, label: own.peer };
    const borrowed = benchCase.referenceCase === undefined ? undefined : byCase.get(benchCase.referenceCase)?.find((s) => s.peer.startsWith(prefix));
    return borrowed === undefined ? undefined : { summary: borrowed, label: `${borrowed.peer} (${borrowed.caseName})` };
  };
  const summaries: CaseSummary[] = [];
  for (const benchCase of cases) {
    const caseSummaries = byCase.get(benchCase.name) ?? [];
    if (caseSummaries.length === 0) continue;
    const reference = find(benchCase, 'nginx') ?? find(benchCase, 'http-proxy-3') ?? { summary: caseSummaries[0]!, label: caseSummaries[0]!.peer };
    const nodeReference = find(benchCase, 'http-proxy-3');
    for (const summary of caseSummaries) {
      summary.ratio = ratioAgainst(summary, reference.summary, benchCase.compareBy);
      summary.reference = reference.label;
      if (nodeReference !== undefined) {
        summary.ratioNode = ratioAgainst(summary, nodeReference.summary, benchCase.compareBy);
        summary.referenceNode = nodeReference.label;
      }
      if (benchCase.compareBy !== undefined) summary.ratioMetric = benchCase.compareBy;
    }
    if (benchCase.fixedRate === true) compareAtFixedRate(caseSummaries, fixedRate, loadGeneratorOf(benchCase) === 'wrk' ? 'wrk' : 'autocannon');
    summaries.push(...caseSummaries);
  }
  return summaries;
}

/** One measured run's figures for its progress line: req/s and latencies, or handshakes/s and CPU per handshake for s_time. */
function progressFigures(benchCase: BenchCase, result: LoadResult & { cpuMs: number }): string {
  const rate = result.requestsPerSecond.toFixed(0).padStart(7);
  if (benchCase.protocol === 's_time') {
    return `${rate} handshakes/s  CPU ${((result.cpuMs * 1000) / Math.max(1, result.requests)).toFixed(1)} µs/handshake`;
  }
  const offered = benchCase.fixedRate === true ? ` of ${fixedRate}` : '';
  return `${rate}${offered} req/s  p50 ${result.latencyMsP50.toFixed(2)} ms  p99 ${result.latencyMsP99.toFixed(2)} ms${result.errors + result.non2xx > 0 ? `  errors ${result.errors} non2xx ${result.non2xx}` : ''}`;
}

/** The median busiest-10-ms rate of autocannon's fixed-rate runs; nothing for runs without one (wrk, closed loop). */
function busiestOf(results: readonly LoadResult[]): { busiestRequestsPerSecond?: number } {
  const busiest = results.flatMap((r) => (r.busiestRequestsPerSecond === undefined ? [] : [r.busiestRequestsPerSecond]));
  return busiest.length === 0 ? {} : { busiestRequestsPerSecond: median(busiest) };
}

/** Restricts this process (every thread) to `cpuList` ("1", "0,1"); returns the previous list. */
function setAffinity(cpuList: string): string | undefined {
  try {
    const before = /list: (\S+)/.exec(execFileSync(taskset!, ['-p', '-c', String(process.pid)], { encoding: 'utf8' }))?.[1];
    execFileSync(taskset!, ['-a', '-p', '-c', cpuList, String(process.pid)], { stdio: 'ignore' });
    return before;
  } catch (err) {
    skipped.push(`taskset failed (${(err as Error).message}): processes are not pinned`);
    return undefined;
  }
}

async function runProxyCases(report: BenchReport): Promise<void> {
  const durationSeconds = Number(args['duration-seconds']);
  const warmupSeconds = Number(args['warmup-seconds']);
  const repeats = Number(args.repeats);
  const connections = Number(args.connections);
  const previousAffinity = pinned ? setAffinity('1') : undefined;
  report.machine.pinned = previousAffinity !== undefined;
  if (!pinned) skipped.push('taskset not available or fewer than 2 cores: processes are not pinned');
  if (wrk === undefined) skipped.push('wrk not installed: autocannon drives the HTTP/1.1 cases (it saturates near 55–70k req/s); run bench/install-peers.sh');
  const cases = selectCases();
  if (!useWrk && cases.some((c) => c.fixedRate === true)) {
    const remedy = wrk === undefined ? 'wrk not installed (bench/install-peers.sh installs it and paces the rate evenly)' : '--load-generator autocannon (wrk would pace the rate evenly)';
    skipped.push(`p99-fixed-rate: ${remedy}: autocannon offers the rate in bursts, so its p99 is a burst figure`);
  }

  const workDir = mkdtempSync(join(tmpdir(), 'keygate-bench-'));
  const certFile = join(workDir, 'bench.pem');
  const keyFile = join(workDir, 'bench.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=bench.local', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  try {
    const origin = await startOrigin(workDir);
    const peers = await startPeers(cases, origin.port, certFile, keyFile, workDir);
    const runnable = cases.map((c) => ({ ...c, peers: c.peers.filter((name) => peers.has(name)) })).filter((c) => c.peers.length > 0);
    const runs: MeasuredRun[] = [];
    for (let round = 1; round <= repeats; round++) {
      for (const benchCase of runnable) {
        for (const name of benchCase.peers) {
          const peer = peers.get(name)!;
          try {
            await measure(peer, benchCase, warmupSeconds, connections);
            const result = await measure(peer, benchCase, durationSeconds, connections);
            runs.push({ caseName: benchCase.name, peer: name, round, result });
            process.stdout.write(`round ${round}/${repeats} ${benchCase.name.padEnd(20)} ${name.padEnd(20)} ${progressFigures(benchCase, result)}\n`);
          } catch (err) {
            // One peer or load generator failing must not cost the whole run.
            skipped.push(`round ${round} ${benchCase.name} ${name}: ${(err as Error).message.slice(0, 300)}`);
            process.stdout.write(`round ${round}/${repeats} ${benchCase.name.padEnd(20)} ${name.padEnd(20)} failed: ${(err as Error).message.slice(0, 200)}\n`);
          }
        }
      }
    }
    report.summaries = summarize(runnable, runs);
    report.runs = runs;
    report.cases = runnable.map((c) => ({ name: c.name, description: c.description, loadGenerator: loadDescriptionOf(c) }));
    report.settings = { ...report.settings, durationSeconds, warmupSeconds, repeats, connections, h2StreamsPerConnection: H2_STREAMS_PER_CONNECTION, origin: origin.kind,
      ...(runnable.some((c) => c.fixedRate === true) ? { fixedRateRequestsPerSecond: fixedRate } : {}) };
    report.machine.loadGenerator = [...new Set(report.cases.map((c) => c.loadGenerator))].join(', ');
    process.stdout.write(`\n${renderTable(report.summaries)}\n`);
    for (const goal of checkGoals(report.summaries)) {
      process.stdout.write(`goal: ${goal.goal}: ${goal.peer} ${goal.measured.toFixed(2)}× (target ${goal.target}×) ${goal.met ? 'met' : 'MISSED'}\n`);
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
    rmSync(workDir, { recursive: true, force: true });
    // The standalone scripts that may follow measure with every core, as when run alone.
    if (previousAffinity !== undefined) setAffinity(previousAffinity);
  }
}

/**
 * Options that keep each standalone script short (`--script-seconds` per measured phase); their
 * measurements are theirs, only the duration is chosen here. A script not listed runs with none.
 */
function scriptArguments(script: string, seconds: string): { nodeOptions: string[]; args: string[] } {
  switch (script) {
    case 'verify-key.ts': return { nodeOptions: ['--expose-gc'], args: ['--duration-seconds', seconds] };
    case 'gateway.ts':
    case 'http-kernel.ts': return { nodeOptions: [], args: ['--duration-seconds', seconds] };
    case 'vault.ts':
    case 'ratelimit.ts': return { nodeOptions: [], args: ['--seconds', seconds] };
    default: return { nodeOptions: [], args: [] };
  }
}

/** Runs every other `bench/<name>.ts` (written by other engineers) one after another, capturing its output. */
async function runOtherScripts(report: BenchReport): Promise<void> {
  const scripts = readdirSync(BENCH_DIR).filter((name) => name.endsWith('.ts') && name !== 'run.ts').sort();
  const timeoutMs = Number(args['script-timeout-seconds']) * 1000;
  for (const script of scripts) {
    const { nodeOptions, args: scriptArgs } = scriptArguments(script, args['script-seconds']!);
    process.stdout.write(`\n=== bench/${script} ${scriptArgs.join(' ')} ===\n`);
    const startedAt = performance.now();
    const child = spawn(NODE, [...nodeOptions, join(BENCH_DIR, script), ...scriptArgs], { cwd: join(BENCH_DIR, '..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const capture = (target: NodeJS.WriteStream) => (data: Buffer): void => {
      target.write(data);
      if (output.length < MAX_SCRIPT_OUTPUT_CHARS) output += data.toString();
    };
    child.stdout!.on('data', capture(process.stdout));
    child.stderr!.on('data', capture(process.stderr));
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), SCRIPT_KILL_GRACE_MS);
    }, timeoutMs);
    const exitCode = await new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    clearTimeout(timer);
    clearTimeout(killTimer);
    if (exitCode !== 0) process.stdout.write(`bench/${script} exited with ${exitCode ?? 'a signal'}\n`);
    report.scripts.push({
      script, args: scriptArgs, exitCode, durationMs: performance.now() - startedAt,
      // Terminal colour codes would show up as noise in the HTML.
      output: (output.length >= MAX_SCRIPT_OUTPUT_CHARS ? `${output.slice(0, MAX_SCRIPT_OUTPUT_CHARS)}\n… (truncated)` : output).replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''),
    });
  }
}

/** Reads a whole, positive option value; prints what is wrong and exits 2 otherwise. */
function positiveInteger(option: string, text: string): number {
  const value = Number(text);
  if (/^\d+$/.test(text.trim()) && Number.isSafeInteger(value) && value > 0) return value;
  process.stderr.write(`bench/run.ts: --${option} must be a positive whole number, got "${text}" (see --help)\n`);
  process.exit(2);
}

const report: BenchReport = {
  startedAt: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version, pinned: false, loadGenerator: 'none', loadAverage: loadavg() },
  settings: { scriptSeconds: args['all'] || args['scripts-only'] ? Number(args['script-seconds']) : undefined },
  skipped, cases: [], summaries: [], runs: [], scripts: [],
};
if (!args['scripts-only']) await runProxyCases(report);
if (args.all || args['scripts-only']) await runOtherScripts(report);
for (const reason of skipped) process.stdout.write(`skipped: ${reason}\n`);
const paths = writeReport(join(BENCH_DIR, 'results'), report);
process.stdout.write(`report: ${paths.html}\n        ${paths.json}\n`);
