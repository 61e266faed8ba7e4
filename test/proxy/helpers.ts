/**
 * Shared helpers of the proxy tests: loopback origins that close every socket they opened, a
 * small HTTP client that returns status, headers and body, a deadline-bounded poll, and
 * `forEachEngine`, which runs a suite once per forwarding engine (one contract, every engine).
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { Test } from 'tap';
import { FORWARDING_ENGINE_NAMES } from '../../proxy/forward/create-forwarding-engine.ts';
import type { ForwardingEngineName } from '../../proxy/forward/create-forwarding-engine.ts';
import { ProxyServer } from '../../proxy/proxy-server.ts';
import type { ProxyServerOptions, ProxyListenOptions } from '../../proxy/proxy-server.ts';

/** A running origin server on 127.0.0.1. */
export interface TestOrigin {
  server: http.Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Starts an HTTP/1.1 origin with `handler`; `close()` destroys every socket it accepted. */
export async function startOrigin(handler: http.RequestListener, configure?: (server: http.Server) => void): Promise<TestOrigin> {
  const server = http.createServer({ requestTimeout: 0 }, handler);
  configure?.(server);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

/** Starts a proxy on one `http` listener; returns it with its base URL. */
export async function startProxy<Ctx>(options: ProxyServerOptions<Ctx>, listen: ProxyListenOptions = {}): Promise<{ proxy: ProxyServer<Ctx>; port: number; url: string }> {
  const proxy = new ProxyServer(options);
  const address = await proxy.listen(listen);
  return { proxy, port: address.port, url: `http://127.0.0.1:${address.port}` };
}

/** A response read to the end. */
export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

/** Sends one request over a fresh connection and reads the whole response. */
export function request(url: string, options: http.RequestOptions & { body?: string | Buffer } = {}): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Polls `check` until it returns true or `timeoutMs` (default 5 000) passes; then throws. */
export async function waitFor(check: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Runs `suite` once per forwarding engine (`raw`, `undici`), each as a subtest named after the
 * engine; the suite passes `engine` to `startProxy`, so every guarantee is checked on both.
 */
export function forEachEngine(t: Test, suite: (t: Test, engine: ForwardingEngineName) => void): void {
  for (const engine of FORWARDING_ENGINE_NAMES) t.test(`${engine} engine`, async (t) => suite(t, engine));
}

/**
 * A loopback port that refuses connections. A port picked with listen(0) and closed again can be
 * handed to another test's listener a moment later (CI runs test files side by side), which turns
 * "refused" into "accepted and never answered". A privileged port (below 1024) is never handed out
 * by listen(0), so the first of those that refuses here is used; the listen-and-close way is the
 * fallback only where every one of them answers.
 */
export async function refusedPort(): Promise<number> {
  for (const candidate of [1, 3, 5, 7, 9]) {
    if (await refuses(candidate)) return candidate;
  }
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
