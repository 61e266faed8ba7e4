/**
 * `UndiciEngine`: the forwarding engine on undici's `Pool.dispatch` (HTTP/1.1 keep-alive pools)
 * and `H2CClient` (prior-knowledge h2c, multiplexed); chosen with `engine: 'undici'` (the default
 * is `RawHttp1Engine`, which also sends its h2c peers here). Faster than `node:http` with a
 * keep-alive agent (`make bench`: keygate vs http-proxy-3): dispatch skips undici's stream
 * wrappers and hands parsed chunks straight to the runner, which writes them downstream.
 *
 * Bounded: at most `maxConnectionsPerPeer` sockets per peer and `maxPeers` pools; the least
 * recently created pool is closed gracefully when a new peer would exceed the bound.
 */
import { H2CClient, Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { ForwardingEngine, UpstreamDispatch, UpstreamHandler } from './forwarding-engine.ts';
import type { HttpPeer } from '../http-peer.ts';

/** Options for {@link UndiciEngine}; every bound has a default. */
export interface UndiciEngineOptions {
  /** Sockets per HTTP/1.1 peer (default 128). */
  maxConnectionsPerPeer?: number;
  /** Pools kept at once (default 1024). */
  maxPeers?: number;
  /** TCP (and TLS) connect timeout per attempt (default 10 000 ms, dataplane.md §2.5). */
  connectTimeoutMs?: number;
  /** How long an idle kept-alive upstream socket is kept when the server sends no hint (default 4 000 ms). */
  idleTimeoutMs?: number;
  /** Upper bound for a server's `Keep-Alive: timeout` hint (default 60 000 ms). */
  maxIdleTimeoutMs?: number;
  /** Largest upstream response head in bytes (default 64 KiB). */
  maxResponseHeaderBytes?: number;
  /** Concurrent streams per h2c connection (default 100). */
  maxConcurrentStreams?: number;
}

/** Default bounds of {@link UndiciEngine}. */
export const UNDICI_ENGINE_DEFAULTS = {
  maxConnectionsPerPeer: 128,
  maxPeers: 1024,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 4_000,
  maxIdleTimeoutMs: 60_000,
  maxResponseHeaderBytes: 64 * 1024,
  maxConcurrentStreams: 100,
} as const;

/** A {@link ForwardingEngine} over undici pools, one per peer. */
export class UndiciEngine implements ForwardingEngine {
  readonly #options: Required<UndiciEngineOptions>;
  readonly #pools = new Map<string, Dispatcher>();

  constructor(options: UndiciEngineOptions = {}) {
    this.#options = { ...UNDICI_ENGINE_DEFAULTS, ...options };
  }

  /** Number of pools currently open (one per peer used). */
  get poolCount(): number {
    return this.#pools.size;
  }

  dispatch(peer: HttpPeer, request: UpstreamDispatch, handler: UpstreamHandler): void {
    const pool = this.#pools.get(peer.poolKey) ?? this.#createPool(peer);
    try {
      pool.dispatch({
        path: request.path,
        method: request.method,
        headers: request.headers as Record<string, string | string[]>,
        body: request.body,
        upgrade: request.upgrade ?? null,
        headersTimeout: request.headersTimeoutMs,
        bodyTimeout: request.bodyIdleTimeoutMs,
      }, handler as unknown as Dispatcher.DispatchHandler);
    } catch (err) {
      // undici validates headers synchronously; a bad header is the request's fault, reported
      // the same way as any other failure before a connection (nothing was sent).
      handler.onResponseError(undefined, err as Error);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.close()));
  }

  async destroy(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy()));
  }

  #createPool(peer: HttpPeer): Dispatcher {
    if (this.#pools.size >= this.#options.maxPeers) {
      const [oldestKey, oldest] = this.#pools.entries().next().value as [string, Dispatcher];
      this.#pools.delete(oldestKey);
      oldest.close().catch(() => {});
    }
    const common = {
      connectTimeout: this.#options.connectTimeoutMs,
      keepAliveTimeout: this.#options.idleTimeoutMs,
      keepAliveMaxTimeout: this.#options.maxIdleTimeoutMs,
      maxHeaderSize: this.#options.maxResponseHeaderBytes,
    };
    const pool: Dispatcher = peer.protocol === 'h2c'
      ? new H2CClient(peer.origin, { ...common, maxConcurrentStreams: this.#options.maxConcurrentStreams })
      : new Pool(peer.origin, {
        ...common,
        connections: this.#options.maxConnectionsPerPeer,
        pipelining: 1,
        connect: peer.tls
          ? { servername: peer.servername, rejectUnauthorized: peer.rejectUnauthorized, ca: peer.ca as string | Buffer | Array<string | Buffer> | undefined }
          : undefined,
      });
    // A pool-level error (e.g. a connect failure with nothing queued) must never crash the process.
    pool.on('connectionError', () => {});
    this.#pools.set(peer.poolKey, pool);
    return pool;
  }
}
