/**
 * Load generation for the benchmark: autocannon (programmatic, in this process) by default,
 * `wrk` when it is installed (it goes past autocannon's ~55–70k req/s ceiling on one core), and
 * `h2load` (nghttp2-client) for the HTTP/2 case, which neither of the others speaks.
 * All report req/s, p50 and p99 latency in milliseconds.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { percentile } from './stats.ts';

/** One measured run. */
export interface LoadResult {
  requestsPerSecond: number;
  latencyMsP50: number;
  latencyMsP99: number;
  /** Completed requests (the divisor of CPU time per request). */
  requests: number;
  errors: number;
  non2xx: number;
}

/** What to load. */
export interface LoadOptions {
  url: string;
  /** Requests in flight at once: connections for HTTP/1.1; for h2load, connections × streams. */
  connections: number;
  durationSeconds: number;
  headers?: Record<string, string>;
  /** Skip certificate checks (self-signed bench certificates). */
  insecure?: boolean;
}

/** Longest a load generator may run past its duration before it is killed (slow start, TLS). */
const LOAD_GRACE_MS = 30_000;
/** Most output a load generator may print (h2load prints a progress line per 10 %). */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
/** Concurrent streams per HTTP/2 connection in the h2load case (browsers and gRPC multiplex too). */
export const H2_STREAMS_PER_CONNECTION = 10;

/** Runs autocannon against `options.url`. */
export async function runAutocannon(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    headers: options.headers,
    ...(options.insecure ? { tlsOptions: { rejectUnauthorized: false } } : {}),
  } as autocannon.Options);
  return {
    requestsPerSecond: result.requests.average,
    latencyMsP50: result.latency.p50,
    latencyMsP99: result.latency.p99,
    requests: result.requests.total,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** Runs `wrk` (must be installed) with one thread, pinned by the caller's taskset if any. */
export async function runWrk(options: LoadOptions, wrkPath: string): Promise<LoadResult> {
  // wrk takes whole seconds only ("-d0.5s" is an error).
  const args = ['-t1', `-c${options.connections}`, `-d${Math.max(1, Math.round(options.durationSeconds))}s`, '--latency'];
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
  args.push(options.url);
  return parseWrkOutput(await runTool(wrkPath, args, options.durationSeconds));
}

/** Reads req/s, p50, p99 and errors from the text `wrk --latency` prints. */
export function parseWrkOutput(output: string): LoadResult {
  const milliseconds = (text: string | undefined): number => {
    const match = /([\d.]+)(us|ms|s)/.exec(text ?? '');
    if (match === null) return Number.NaN;
    const value = Number(match[1]);
    return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
  };
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  return {
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? 0),
    // Anchored at the line start: the Thread Stats lines end in percentages such as "76.50%".
    latencyMsP50: milliseconds(/^\s*50%\s+(\S+)/m.exec(output)?.[1]),
    latencyMsP99: milliseconds(/^\s*99%\s+(\S+)/m.exec(output)?.[1]),
    requests: Number(/(\d+) requests in/.exec(output)?.[1] ?? 0),
    errors: socketErrors === null ? 0 : socketErrors.slice(1).reduce((sum, count) => sum + Number(count), 0),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0),
  };
}

/**
 * Runs `h2load` (must be installed) over HTTP/2 with ALPN `h2`, one thread, for
 * `options.durationSeconds`, with `options.connections` requests in flight spread over
 * connections of H2_STREAMS_PER_CONNECTION streams each. h2load prints only min/mean/max
 * latencies, so p50 and p99 come from its per-request log file. h2load never verifies
 * certificates, so `insecure` needs no flag.
 */
export async function runH2load(options: LoadOptions, h2loadPath: string): Promise<LoadResult> {
  const streams = Math.min(H2_STREAMS_PER_CONNECTION, options.connections);
  const clients = Math.max(1, Math.ceil(options.connections / streams));
  const logDir = mkdtempSync(join(tmpdir(), 'keygate-h2load-'));
  const logFile = join(logDir, 'requests.tsv');
  // `--npn-list h2`: h2load would otherwise fall back to HTTP/1.1 when a peer does not offer h2.
  const args = ['-t', '1', '-c', String(clients), '-m', String(streams), '-D', `${Math.max(1, Math.round(options.durationSeconds * 1000))}ms`,
    '--npn-list', 'h2', '--log-file', logFile];
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
  args.push(options.url);
  try {
    const output = await runTool(h2loadPath, args, options.durationSeconds);
    if (!/Application protocol: h2\b/.test(output)) throw new Error(`h2load did not negotiate h2 with ${options.url}: ${output.slice(0, 300)}`);
    let log = '';
    try { log = readFileSync(logFile, 'utf8'); } catch { /* no request completed: no log file */ }
    return parseH2loadOutput(output, log);
  } finally {
    rmSync(logDir, { recursive: true, force: true });
  }
}

/**
 * Reads req/s, counts and errors from h2load's summary, and p50/p99 from its `--log-file`
 * (tab-separated: start µs since epoch, status, µs until the end of the response).
 */
export function parseH2loadOutput(output: string, log: string): LoadResult {
  const counts = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(output);
  const statuses = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(output);
  const latenciesMs: number[] = [];
  for (const line of log.split('\n')) {
    const columns = line.split('\t');
    if (columns.length < 3) continue;
    const microseconds = Number(columns[2]);
    // A request that never got a response is logged with status -1 and counts as an error.
    if (Number(columns[1]) > 0 && Number.isFinite(microseconds)) latenciesMs.push(microseconds / 1000);
  }
  latenciesMs.sort((a, b) => a - b);
  return {
    requestsPerSecond: Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(output)?.[1] ?? 0),
    latencyMsP50: percentile(latenciesMs, 50),
    latencyMsP99: percentile(latenciesMs, 99),
    requests: Number(counts?.[3] ?? 0),
    // h2load's "failed" also counts 4xx/5xx answers; like wrk, those are non2xx, not errors.
    errors: Number(counts?.[6] ?? 0) + Number(counts?.[7] ?? 0),
    non2xx: statuses === null ? 0 : Number(statuses[3]) + Number(statuses[4]),
  };
}

/** Runs a load generator binary with a deadline of its duration plus LOAD_GRACE_MS; resolves its stdout. */
function runTool(path: string, args: string[], durationSeconds: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    execFile(path, args, { encoding: 'utf8', timeout: durationSeconds * 1000 + LOAD_GRACE_MS, maxBuffer: MAX_OUTPUT_BYTES },
      (err, stdout, stderr) => (err ? reject(new Error(`${path} failed: ${err.message.split('\n')[0]} ${(stderr || stdout).trim().slice(0, 300)}`)) : resolve(stdout)));
  });
}
