/**
 * Helpers of the standalone scripts that compare servers each running in a forked child process
 * (`bench/http-kernel.ts`, `bench/verify-key.ts`): autocannon load against the child, the
 * child's own CPU time per request (asked over IPC, so a busy neighbour on a shared machine does
 * not count), medians over rounds, and one table row with the ratios to a baseline.
 */
import type { ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { median } from './stats.ts';

/** One measured run against a child server. */
export interface ChildMeasurement {
  requestsPerSecond: number;
  latencyMsP50: number;
  latencyMsP99: number;
  /** Connection errors plus non-2xx answers. */
  errors: number;
  /** The child's user + system CPU time per completed request, in µs. */
  cpuMicrosPerRequest: number;
}

/** What autocannon sends to the child (loopback only). */
export interface ChildLoadTarget {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Per-request setup (e.g. rotating credentials); when set, autocannon sends these instead of the fields above. */
  requests?: autocannon.Request[];
}

/**
 * Warms the child up for min(1, durationSeconds) (JIT and caches hot), then loads it for
 * `durationSeconds` with `connections` and returns the measurement with its CPU µs per request.
 */
export async function measureChildServer(child: ChildProcess, target: ChildLoadTarget, durationSeconds: number, connections: number): Promise<ChildMeasurement> {
  await loadChildServer(target, Math.min(1, durationSeconds), connections);
  const cpuBefore = await childCpuMicros(child);
  const { totalRequests, ...measurement } = await loadChildServer(target, durationSeconds, connections);
  measurement.cpuMicrosPerRequest = (await childCpuMicros(child) - cpuBefore) / Math.max(1, totalRequests);
  return measurement;
}

/** One autocannon run; `cpuMicrosPerRequest` is left 0 (see {@link measureChildServer}). */
export async function loadChildServer(target: ChildLoadTarget, durationSeconds: number, connections: number): Promise<ChildMeasurement & { totalRequests: number }> {
  const result = await autocannon({ ...target, connections, duration: durationSeconds });
  return {
    requestsPerSecond: result.requests.average,
    latencyMsP50: result.latency.p50,
    latencyMsP99: result.latency.p99,
    errors: result.errors + result.non2xx,
    cpuMicrosPerRequest: 0,
    totalRequests: result.requests.total,
  };
}

/** The child's CPU time so far (user + system, µs), asked over IPC; the child runs {@link answerCpuRequests}. */
export function childCpuMicros(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (message) => resolve((message as { cpuMicros: number }).cpuMicros));
    child.send('cpu');
  });
}

/** Child side: answers every IPC message with this process's CPU time (`{ cpuMicros }`). */
export function answerCpuRequests(): void {
  process.on('message', () => {
    const usage = process.cpuUsage();
    process.send!({ cpuMicros: usage.user + usage.system });
  });
}

/** The median of one field over the rounds of a variant. */
export function medianOf(measurements: readonly ChildMeasurement[], field: keyof ChildMeasurement): number {
  return median(measurements.map((measurement) => measurement[field]));
}

/**
 * One table row: label (padded to `labelWidth`), median req/s, p50, p99, total errors, req/s ratio
 * to the baseline and CPU µs/request with the baseline's CPU divided by this one's.
 */
export function formatComparisonRow(label: string, labelWidth: number, measurements: readonly ChildMeasurement[], baseline: readonly ChildMeasurement[]): string {
  const requestsPerSecond = medianOf(measurements, 'requestsPerSecond');
  const cpuMicrosPerRequest = medianOf(measurements, 'cpuMicrosPerRequest');
  return label.padEnd(labelWidth) +
    String(Math.round(requestsPerSecond)).padStart(8) +
    medianOf(measurements, 'latencyMsP50').toFixed(2).padStart(9) +
    medianOf(measurements, 'latencyMsP99').toFixed(2).padStart(9) +
    String(measurements.reduce((sum, measurement) => sum + measurement.errors, 0)).padStart(9) +
    (requestsPerSecond / medianOf(baseline, 'requestsPerSecond')).toFixed(2).padStart(16) +
    cpuMicrosPerRequest.toFixed(1).padStart(13) +
    (medianOf(baseline, 'cpuMicrosPerRequest') / cpuMicrosPerRequest).toFixed(2).padStart(21);
}
