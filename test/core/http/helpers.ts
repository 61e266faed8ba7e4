/** Shared helpers of the HTTP kernel tests: a server with an in-memory log and its own metrics. */
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { HttpServer } from '../../../core/http/http-server.ts';
import type { HttpServerOptions } from '../../../core/http/http-server.ts';
import { createLogger } from '../../../core/log.ts';
import { Metrics } from '../../../core/metrics.ts';

/** A parsed log line. */
export type LogLine = Record<string, unknown> & { msg?: string; status?: number; requestId?: string };

/** An HttpServer that logs into `lines` and registers metrics in a private registry. */
export function testServer(options: HttpServerOptions = {}) {
  const lines: LogLine[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
  const metrics = new Metrics();
  const server = new HttpServer({ logger, metrics, ...options });
  return { server, lines, metrics, accessLines: () => lines.filter((line) => line.msg === 'request') };
}

/** The value of one sample of `keygate_http_requests_total`, or 0. */
export async function requestCount(metrics: Metrics, labels: { method: string; route: string; status: string }): Promise<number> {
  const metric = await metrics.counter('keygate_http_requests_total', '', ['method', 'route', 'status']).get();
  const sample = metric.values.find((value) =>
    value.labels.method === labels.method && value.labels.route === labels.route && String(value.labels.status) === labels.status);
  return sample?.value ?? 0;
}

/** A plain HTTP/1.1 request without connection reuse. */
export function send(port: number, options: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Polls `condition` until it holds or `timeoutMs` passes (then throws). */
export async function waitFor(condition: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A promise with its resolve function, for handlers that wait for the test to release them. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}
