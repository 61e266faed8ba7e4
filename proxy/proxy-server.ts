/**
 * `ProxyServer<Ctx>`: a ready-to-run proxy: one {@link PhaseRunner} over the given hooks, served
 * on any number of listeners (`http`, `https` with SNI and ALPN, `h2c`). `close()` drains: it
 * stops accepting, lets in-flight requests and open tunnels finish within a grace period, asks
 * HTTP/1.1 clients to close and HTTP/2 clients to go away (GOAWAY), then destroys what is left.
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import type { Http2SecureServer, Http2Server, ServerHttp2Session } from 'node:http2';
import type { ProxyHooks } from './hooks.ts';
import { http1DownstreamConnections } from './http1-downstream.ts';
import { createListener } from './listener.ts';
import type { ListenerOptions } from './listener.ts';
import { PhaseRunner } from './phase-runner.ts';
import type { PhaseRunnerOptions } from './phase-runner.ts';

/** Options of {@link ProxyServer}: the hooks plus the runner's options. */
export interface ProxyServerOptions<Ctx> extends PhaseRunnerOptions {
  hooks: ProxyHooks<Ctx>;
}

/** Where and how one listener listens. */
export interface ProxyListenOptions extends Partial<ListenerOptions> {
  /** Port (default 0: any free port). */
  port?: number;
  /** Bind address (default `127.0.0.1`). */
  host?: string;
  /** Share the port with other processes or threads (Linux `SO_REUSEPORT`) for multi-core serving. */
  reusePort?: boolean;
}

/** Defaults of {@link ProxyServer.close}. */
export const PROXY_SERVER_DEFAULTS = {
  /** How long `close()` waits for in-flight requests and tunnels before destroying them. */
  closeGraceMs: 30_000,
} as const;

interface ListenerRecord {
  server: Server;
  sockets: Set<Socket>;
  sessions: Set<ServerHttp2Session>;
}

/** A proxy serving one set of hooks on one or more listeners. */
export class ProxyServer<Ctx> {
  /** The runner (use `runner.handleRequest` to embed the proxy in another server). */
  readonly runner: PhaseRunner<Ctx>;
  readonly #listeners: ListenerRecord[] = [];
  #closing: Promise<void> | undefined;

  constructor(options: ProxyServerOptions<Ctx>) {
    this.runner = new PhaseRunner(options.hooks, options);
  }

  /** True once `close()` was called. */
  get draining(): boolean {
    return this.runner.draining;
  }

  /** Starts one listener; resolves with its bound address. Call once per port. */
  async listen(options: ProxyListenOptions = {}): Promise<AddressInfo> {
    const server = createListener(this.runner, { ...options, protocol: options.protocol ?? 'http' });
    const record: ListenerRecord = { server, sockets: new Set(), sessions: new Set() };
    const secure = options.protocol === 'https';
    server.on(secure ? 'secureConnection' : 'connection', (socket: Socket) => {
      record.sockets.add(socket);
      socket.once('close', () => record.sockets.delete(socket));
    });
    server.on('session', (session: ServerHttp2Session) => {
      record.sessions.add(session);
      session.once('close', () => record.sessions.delete(session));
      if (this.runner.draining) session.close();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1', reusePort: options.reusePort }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#listeners.push(record);
    return server.address() as AddressInfo;
  }

  /** The bound addresses of all listeners, in `listen` order. */
  addresses(): AddressInfo[] {
    return this.#listeners.map((record) => record.server.address() as AddressInfo);
  }

  /**
   * Drains and stops: no new connections; in-flight requests and upgrade tunnels get up to
   * `graceMs` (default 30 s); idle keep-alive connections close at once. Idempotent.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing ??= this.#drain(options.graceMs ?? PROXY_SERVER_DEFAULTS.closeGraceMs);
    return this.#closing;
  }

  async #drain(graceMs: number): Promise<void> {
    this.runner.draining = true;
    const closed = this.#listeners.map((record) => new Promise<void>((resolve) => record.server.close(() => resolve())));
    for (const record of this.#listeners) {
      for (const session of record.sessions) session.close();
      closeIdle(record.server);
    }
    const deadline = setTimeout(() => {
      for (const record of this.#listeners) {
        for (const session of record.sessions) session.destroy();
        for (const socket of record.sockets) socket.destroy();
      }
    }, graceMs);
    // Idle HTTP/1.1 connections that became idle after the first sweep are closed as they go idle.
    const sweep = setInterval(() => {
      for (const record of this.#listeners) closeIdle(record.server);
    }, 50);
    try {
      await Promise.all(closed);
    } finally {
      clearTimeout(deadline);
      clearInterval(sweep);
    }
    await this.runner.close();
  }
}

/** Closes a listener's keep-alive connections that are between requests, on either HTTP/1.1 path. */
function closeIdle(server: Server): void {
  (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
  http1DownstreamConnections(server)?.closeIdle();
}

/** The Node server types a listener can be (for callers that need the concrete server). */
export type ListenerServer = Server | Http2Server | Http2SecureServer;
