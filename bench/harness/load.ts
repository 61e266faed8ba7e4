/**
 * Load generation for the benchmark: autocannon (programmatic, in this process) by default,
 * `wrk` when it is installed (it goes past autocannon's ~55–70k req/s ceiling on one core),
 * `h2load` (nghttp2-client) for the HTTP/2 case, which neither of the others speaks, and
 * `openssl s_time -new` (runSTime) for full TLS handshakes with no request, which none of the
 * others makes (wrk and autocannon resume TLS sessions).
 * The HTTP generators report req/s, p50 and p99 latency in milliseconds; s_time reports
 * connections (one full handshake each) and no latencies. A fixed offered rate
 * (`LoadOptions.rate`) is held by wrk with a generated Lua pacing script (evenly spread) or by
 * autocannon's `overallRate` (in bursts); h2load refuses one.
 */
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  /**
   * autocannon fixed-rate runs only (`LoadOptions.rate`): the rate, in requests per second, of the
   * busiest BURST_WINDOW_MS of the run. autocannon spends each connection's per-second quota as
   * fast as it can, then waits for the next second, so a figure far above the offered rate means
   * the load came in bursts. Undefined for closed-loop runs, and for wrk: its output has no
   * per-request times to count, and its pacing script spreads the requests evenly by design.
   */
  busiestRequestsPerSecond?: number;
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
  /**
   * wrk only: path of a Lua script passed as `-s <file>` (e.g. a `request` function that sets
   * per-request headers); autocannon and h2load ignore it. Undefined: no script.
   */
  script?: string;
  /**
   * Offered load in requests per second over all connections, instead of as many as the peer
   * answers. Undefined (the default): closed loop at saturation. runWrk holds it with its own
   * pacing script (wrkPacingScript; so not together with `script`), runAutocannon with
   * `overallRate` (each connection may send rate ÷ connections requests per second, in bursts);
   * runH2load rejects a rate.
   */
  rate?: number;
}

/** Longest a load generator may run past its duration before it is killed (slow start, TLS). */
const LOAD_GRACE_MS = 30_000;
/** Most output a load generator may print (h2load prints a progress line per 10 %). */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
/** Concurrent streams per HTTP/2 connection in the h2load case (browsers and gRPC multiplex too). */
export const H2_STREAMS_PER_CONNECTION = 10;
/** Width of the windows in which a fixed-rate run counts completed requests to find its busiest one. */
export const BURST_WINDOW_MS = 10;
/** Most lag, in ms, behind its schedule that wrk's pacing script catches up; older slots are dropped (wrkPacingScript). */
export const WRK_PACING_MAX_LAG_MS = 10;

/** Runs autocannon against `options.url`; at `options.rate` req/s when set (see runAutocannonAtRate). */
export async function runAutocannon(options: LoadOptions): Promise<LoadResult> {
  if (options.rate !== undefined) return runAutocannonAtRate(options, options.rate);
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

/**
 * Runs `wrk` (must be installed) with one thread, pinned by the caller's taskset if any, with
 * `options.script` when set. With `options.rate`, wrk runs a pacing script written for the run
 * (wrkPacingScript) into a temporary directory removed afterwards; the achieved rate is wrk's
 * own Requests/sec. Rejects a rate that is not a positive number, or one given with a script
 * (wrk runs one script, and the pacing is that script).
 */
export async function runWrk(options: LoadOptions, wrkPath: string): Promise<LoadResult> {
  const { rate } = options;
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0)) throw new Error(`wrk: LoadOptions.rate must be a positive number of requests per second, got ${rate}`);
  if (rate !== undefined && options.script !== undefined) {
    throw new Error(`wrk paces a fixed rate (LoadOptions.rate = ${rate}) with a Lua script of its own, so it cannot also run ${options.script}`);
  }
  // wrk takes whole seconds only ("-d0.5s" is an error).
  const args = ['-t1', `-c${options.connections}`, `-d${Math.max(1, Math.round(options.durationSeconds))}s`, '--latency'];
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
  const pacingDir = rate === undefined ? undefined : mkdtempSync(join(tmpdir(), 'keygate-wrk-pacing-'));
  try {
    if (pacingDir !== undefined) {
      const pacingScript = join(pacingDir, 'pacing.lua');
      writeFileSync(pacingScript, wrkPacingScript(rate!));
      args.push('-s', pacingScript);
    } else if (options.script !== undefined) {
      args.push('-s', options.script);
    }
    args.push(options.url);
    return parseWrkOutput(await runTool(wrkPath, args, options.durationSeconds));
  } finally {
    if (pacingDir !== undefined) rmSync(pacingDir, { recursive: true, force: true });
  }
}

/**
 * The Lua source that makes one wrk thread (runWrk uses one) offer `requestsPerSecond` evenly
 * spread over its connections. wrk calls `delay()` before each request a connection sends and
 * waits that many whole milliseconds; here every call takes the next free slot of a schedule
 * with one slot every 1000 ÷ requestsPerSecond ms (read from CLOCK_MONOTONIC through LuaJIT's
 * ffi, which Debian's wrk is built with) and waits until it. An absolute schedule, rather than a
 * random wait between a response and the next request: such a wait slows the rate by each
 * response's latency, and wrk truncates it to whole milliseconds (measured: a wait uniform in
 * [0, 10] ms on 50 connections, meant as 10,000 req/s, offered nginx 10,600), while the
 * schedule only jitters each request by about a millisecond. When every connection is still
 * waiting for a response as slots pass, the schedule lags; up to WRK_PACING_MAX_LAG_MS of lag is
 * caught up (a short stall of the peer or of wrk is followed by that many back-to-back requests,
 * as an open-loop client would send), older slots are dropped: a peer that cannot keep up is
 * driven closed loop at its own maximum rate, with no backlog, and its achieved rate falls below
 * the offered one. Called by runWrk once per run with a rate.
 */
export function wrkPacingScript(requestsPerSecond: number): string {
  return `-- Generated by bench/harness/load.ts (wrkPacingScript): ${requestsPerSecond} req/s for this thread.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } keygate_timespec;
int clock_gettime(int clock_id, keygate_timespec *time);
]]
local CLOCK_MONOTONIC = 1
local clock_reading = ffi.new("keygate_timespec")
local slot_interval_ms = ${1000 / requestsPerSecond}
local max_lag_ms = ${WRK_PACING_MAX_LAG_MS}
local next_slot_ms = nil

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock_reading)
  return tonumber(clock_reading.tv_sec) * 1000 + tonumber(clock_reading.tv_nsec) / 1e6
end

function delay()
  local now = now_ms()
  if next_slot_ms == nil then next_slot_ms = now end
  -- Slots no connection was free to take: catch up at most max_lag_ms of them, drop the rest.
  if next_slot_ms < now - max_lag_ms then next_slot_ms = now - max_lag_ms end
  local wait_ms = next_slot_ms - now
  next_slot_ms = next_slot_ms + slot_interval_ms
  -- wrk truncates the returned number to whole milliseconds (a negative one would wrap): round, at least 0.
  return math.max(0, math.floor(wait_ms + 0.5))
end
`;
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
 * certificates, so `insecure` needs no flag. Rejects `options.rate` (closed loop only here).
 */
export async function runH2load(options: LoadOptions, h2loadPath: string): Promise<LoadResult> {
  if (options.rate !== undefined) throw new Error(`h2load has no fixed-rate mode here (LoadOptions.rate = ${options.rate}): drive a fixed-rate case with runWrk or runAutocannon`);
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

/** What runSTime connects to, for how long, and from how many client processes at once. */
export interface STimeOptions {
  host: string;
  port: number;
  /** Seconds each process makes connections for (`-time`, whole seconds: rounded, at least 1). */
  durationSeconds: number;
  /** `openssl s_time` processes run at once (each makes one connection at a time). */
  processes: number;
}

/**
 * Runs `options.processes` concurrent `openssl s_time -connect host:port -new -time <seconds>`
 * (`opensslPath` must be an OpenSSL 1.1 or 3 binary). Each connection is a full handshake (a new
 * session each time, no ticket offered; TLS 1.3 with the client's default groups, so X25519),
 * then a close: no `-www`, so no request is sent and nothing is read. s_time prints no latencies,
 * so `latencyMsP50` and `latencyMsP99` are NaN; `requests` is the connections of every process
 * together and `requestsPerSecond` that ÷ the seconds given to `-time`. Each process is killed
 * after its duration plus LOAD_GRACE_MS. Rejects, once every process has exited, when one exits
 * non-zero, is killed, or prints output parseSTimeOutput cannot read; the first failure kills
 * the others. Called once per measured (or warm-up) run.
 */
export async function runSTime(options: STimeOptions, opensslPath: string): Promise<LoadResult> {
  if (!(Number.isSafeInteger(options.processes) && options.processes > 0)) throw new Error(`s_time: processes must be a positive whole number, got ${options.processes}`);
  // s_time takes whole seconds only (`-time` is an integer option).
  const seconds = Math.max(1, Math.round(options.durationSeconds));
  const args = ['s_time', '-connect', `${options.host}:${options.port}`, '-new', '-time', String(seconds)];
  const running = Array.from({ length: options.processes }, (_, index) => runSTimeProcess(opensslPath, args, seconds, `${index + 1} of ${options.processes}`));
  let firstFailure: Error | undefined;
  const counts = await Promise.all(running.map(({ done }) => done.then(parseSTimeOutput).catch((err: unknown) => {
    firstFailure ??= err as Error;
    // The first failure stops the rest: a result from fewer processes than asked would not compare.
    for (const { child } of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return Number.NaN;
  })));
  if (firstFailure !== undefined) throw firstFailure;
  const connections = counts.reduce((sum, count) => sum + count, 0);
  return { requestsPerSecond: connections / seconds, latencyMsP50: Number.NaN, latencyMsP99: Number.NaN, requests: connections, errors: 0, non2xx: 0 };
}

/**
 * The number of connections in the output of one `openssl s_time` run, read from its
 * `<n> connections in <s> real seconds` line (the `connections in <s>s;` line before it counts
 * the client's user CPU seconds). Throws an Error quoting the start of `output` when there is no
 * such line (the run failed or printed something else).
 */
export function parseSTimeOutput(output: string): number {
  const match = /^(\d+) connections in \d+ real seconds/m.exec(output);
  if (match === null) throw new Error(`openssl s_time printed no "<n> connections in <s> real seconds" line: ${JSON.stringify(output.replace(/\*{20,}/g, '***…').trim().slice(0, 300))}`);
  return Number(match[1]);
}

/** Starts one s_time process, killed after its duration plus LOAD_GRACE_MS; `done` resolves its stdout. */
function runSTimeProcess(opensslPath: string, args: string[], seconds: number, label: string): { child: ChildProcess; done: Promise<string> } {
  let child!: ChildProcess;
  const done = new Promise<string>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGTERM'); }, seconds * 1000 + LOAD_GRACE_MS);
    child = execFile(opensslPath, args, { encoding: 'utf8', maxBuffer: MAX_OUTPUT_BYTES }, (err, stdout, stderr) => {
      clearTimeout(timer);
      if (err === null) { resolve(stdout); return; }
      const how = timedOut ? `was killed ${LOAD_GRACE_MS} ms after its ${seconds} s`
        : child.signalCode !== null ? `was killed (${child.signalCode})`
          : child.exitCode !== null ? `exited with ${child.exitCode}` : `failed (${err.message.split('\n')[0]})`;
      reject(new Error(`openssl s_time (process ${label}) against ${args[2]} ${how}: ${(stderr || stdout).replace(/\*{20,}/g, '***…').trim().slice(0, 300)}`));
    });
  });
  return { child, done };
}

/** Runs a load generator binary with a deadline of its duration plus LOAD_GRACE_MS; resolves its stdout. */
function runTool(path: string, args: string[], durationSeconds: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    execFile(path, args, { encoding: 'utf8', timeout: durationSeconds * 1000 + LOAD_GRACE_MS, maxBuffer: MAX_OUTPUT_BYTES },
      (err, stdout, stderr) => (err ? reject(new Error(`${path} failed: ${err.message.split('\n')[0]} ${(stderr || stdout).trim().slice(0, 300)}`)) : resolve(stdout)));
  });
}

/**
 * autocannon at a fixed offered rate (`overallRate`). Its own latency histogram counts whole
 * milliseconds and, with a rate, adds coordinated-omission samples spaced `ceil(1 ÷ rate)` = 1 ms
 * apart whatever the rate, which would hide sub-millisecond differences between peers; so the
 * correction is off and p50/p99 come from each 2xx response's own time (one number per response:
 * rate × duration of them), like autocannon's. Completions are also counted per BURST_WINDOW_MS
 * to report how bursty the "fixed" rate was (`busiestRequestsPerSecond`).
 */
async function runAutocannonAtRate(options: LoadOptions, rate: number): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  const completionsPerWindow: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({
      url: options.url,
      connections: options.connections,
      duration: options.durationSeconds,
      headers: options.headers,
      overallRate: rate,
      ignoreCoordinatedOmission: true,
      ...(options.insecure ? { tlsOptions: { rejectUnauthorized: false } } : {}),
    } as autocannon.Options, (err, finished) => (err ? reject(err) : resolve(finished)));
    const startedAtMs = performance.now();
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      const window = Math.floor((performance.now() - startedAtMs) / BURST_WINDOW_MS);
      completionsPerWindow[window] = (completionsPerWindow[window] ?? 0) + 1;
      if (statusCode >= 200 && statusCode < 300) latenciesMs.push(responseTimeMs);
    });
  });
  latenciesMs.sort((a, b) => a - b);
  const busiestWindow = completionsPerWindow.reduce((most, count) => Math.max(most, count ?? 0), 0);
  return {
    requestsPerSecond: result.requests.average,
    latencyMsP50: percentile(latenciesMs, 50),
    latencyMsP99: percentile(latenciesMs, 99),
    requests: result.requests.total,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    busiestRequestsPerSecond: (busiestWindow * 1000) / BURST_WINDOW_MS,
  };
}
