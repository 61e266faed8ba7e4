/**
 * `RawHttp1Engine`: a forwarding engine that speaks HTTP/1.1 to upstreams itself, over pooled
 * `net.Socket`s (or `tls.TLSSocket`s for `https:` peers), with its own strict response parser
 * (`http1-response-parser.ts`). What limits a Node proxy is JavaScript CPU time per request, so
 * the upstream leg does the least work that stays correct: the request head is one string and
 * one write, the response head is validated by one regular expression over the whole head, body
 * bytes are handed on as views of the socket's chunks, and a connection is reused the moment its
 * response ends. h2c peers are delegated to an {@link UndiciEngine} (HTTP/2 framing is not ours).
 *
 * Per peer: at most `maxConnectionsPerPeer` sockets, idle ones reused newest first (warm caches,
 * and old ones time out), and at most `maxQueuedPerPeer` waiting exchanges; at most `maxPeers`
 * pools. A connection is reused only when the response was complete, its framing was explicit,
 * the request body was fully sent, the server did not ask to close, and no stray byte followed.
 * Only a failure to connect is reported as "not connected" (retryable on another peer); once a
 * byte of the request went out, a failure is never replayed.
 */
import net from 'node:net';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { Fault } from '../../core/fault.ts';
import type { HeaderMap } from '../hooks.ts';
import type { HttpPeer } from '../http-peer.ts';
import type { ForwardingEngine, UpstreamController, UpstreamDispatch, UpstreamHandler } from './forwarding-engine.ts';
import { Http1ResponseParser } from './http1-response-parser.ts';
import type { Http1ResponseListener } from './http1-response-parser.ts';
import { UndiciEngine } from './undici-engine.ts';

/** Options for {@link RawHttp1Engine}; every bound has a default in {@link RAW_HTTP1_ENGINE_DEFAULTS}. */
export interface RawHttp1EngineOptions {
  /** Sockets per peer (default 128). */
  maxConnectionsPerPeer?: number;
  /** Exchanges waiting for a socket per peer before new ones fail with 503 (default 4096). */
  maxQueuedPerPeer?: number;
  /** Pools kept at once (default 1024); the oldest pool is closed when a new peer exceeds it. */
  maxPeers?: number;
  /** TCP (and TLS) connect timeout per attempt (default 10 000 ms, dataplane.md §2.5). */
  connectTimeoutMs?: number;
  /** How long an idle kept-alive upstream socket is kept when the server sends no hint (default 4 000 ms). */
  idleTimeoutMs?: number;
  /** Upper bound for a server's `Keep-Alive: timeout` hint (default 60 000 ms). */
  maxIdleTimeoutMs?: number;
  /** Largest upstream response head (and trailer section) in bytes (default 64 KiB). */
  maxResponseHeaderBytes?: number;
  /** Engine for h2c peers (default: a new `UndiciEngine`, created on first use and closed with this one). */
  h2cEngine?: ForwardingEngine;
}

/** Default bounds of {@link RawHttp1Engine}. */
export const RAW_HTTP1_ENGINE_DEFAULTS = {
  maxConnectionsPerPeer: 128,
  maxQueuedPerPeer: 4096,
  maxPeers: 1024,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 4_000,
  maxIdleTimeoutMs: 60_000,
  maxResponseHeaderBytes: 64 * 1024,
} as const;

type Settings = Required<Omit<RawHttp1EngineOptions, 'h2cEngine'>>;

/** A {@link ForwardingEngine} over raw pooled sockets with its own HTTP/1.1 framing. */
export class RawHttp1Engine implements ForwardingEngine {
  readonly #settings: Settings;
  readonly #pools = new Map<string, PeerPool>();
  #h2cEngine: ForwardingEngine | undefined;
  readonly #ownsH2cEngine: boolean;
  #closed = false;

  constructor(options: RawHttp1EngineOptions = {}) {
    const { h2cEngine, ...rest } = options;
    this.#settings = { ...RAW_HTTP1_ENGINE_DEFAULTS, ...rest };
    this.#h2cEngine = h2cEngine;
    this.#ownsH2cEngine = h2cEngine === undefined;
  }

  /** Number of peer pools currently open. */
  get poolCount(): number {
    return this.#pools.size;
  }

  /** Open sockets to `peer` (busy + idle + connecting), for tests and metrics. */
  connectionCount(peer: HttpPeer): number {
    return this.#pools.get(peer.poolKey)?.size ?? 0;
  }

  /** Idle kept-alive sockets to `peer`. */
  idleCount(peer: HttpPeer): number {
    return this.#pools.get(peer.poolKey)?.idle.length ?? 0;
  }

  dispatch(peer: HttpPeer, request: UpstreamDispatch, handler: UpstreamHandler): void {
    if (peer.protocol === 'h2c') {
      this.#h2cEngine ??= new UndiciEngine({ connectTimeoutMs: this.#settings.connectTimeoutMs, idleTimeoutMs: this.#settings.idleTimeoutMs, maxResponseHeaderBytes: this.#settings.maxResponseHeaderBytes });
      this.#h2cEngine.dispatch(peer, request, handler);
      return;
    }
    if (this.#closed) {
      handler.onResponseError(undefined, Fault.expected('err:frontline:upstream:service_unavailable', { source: 'internal', internalMessage: 'forwarding engine is closed' }));
      return;
    }
    let head: string;
    try {
      head = serializeRequestHead(peer, request);
    } catch (err) {
      // The request's own fault (a header a hook set with CR/LF, say): nothing was sent.
      handler.onResponseError(undefined, err as Error);
      return;
    }
    const pool = this.#pools.get(peer.poolKey) ?? this.#createPool(peer);
    pool.submit(new Exchange(pool, request, handler, head));
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.close()));
    if (this.#ownsH2cEngine) await this.#h2cEngine?.close();
  }

  async destroy(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    for (const pool of pools) pool.destroy();
    if (this.#ownsH2cEngine) await this.#h2cEngine?.destroy();
  }

  #createPool(peer: HttpPeer): PeerPool {
    if (this.#pools.size >= this.#settings.maxPeers) {
      const [oldestKey, oldest] = this.#pools.entries().next().value as [string, PeerPool];
      this.#pools.delete(oldestKey);
      oldest.close().catch(() => {});
    }
    const pool = new PeerPool(peer, this.#settings);
    this.#pools.set(peer.poolKey, pool);
    return pool;
  }
}

/** One request/response on one connection; it is also the handler's controller. */
class Exchange implements UpstreamController {
  readonly pool: PeerPool;
  readonly request: UpstreamDispatch;
  readonly handler: UpstreamHandler;
  readonly head: string;
  connection: Connection | undefined;
  /** Set once the exchange ended (completed, failed, aborted or upgraded). */
  finished = false;

  constructor(pool: PeerPool, request: UpstreamDispatch, handler: UpstreamHandler, head: string) {
    this.pool = pool;
    this.request = request;
    this.handler = handler;
    this.head = head;
  }

  pause(): void {
    if (!this.finished) this.connection?.socket.pause();
  }

  resume(): void {
    if (!this.finished) this.connection?.socket.resume();
  }

  abort(reason: Error): void {
    if (this.finished) return;
    const connection = this.connection;
    if (connection === undefined) {
      this.finished = true;
      this.pool.unqueue(this);
      this.handler.onResponseError(undefined, reason);
      return;
    }
    connection.failExchange(reason, true);
  }
}

/** The connections and the wait queue of one peer. */
class PeerPool {
  readonly peer: HttpPeer;
  readonly settings: Settings;
  /** Idle connections, most recently used last. */
  readonly idle: Connection[] = [];
  readonly all = new Set<Connection>();
  readonly #queue: Exchange[] = [];
  #queueHead = 0;
  #closing: { resolve: () => void } | undefined;
  #closed: Promise<void> | undefined;
  /** Closes idle connections past their deadline; armed while any connection is idle. */
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(peer: HttpPeer, settings: Settings) {
    this.peer = peer;
    this.settings = settings;
  }

  get size(): number {
    return this.all.size;
  }

  submit(exchange: Exchange): void {
    let idle: Connection | undefined;
    while ((idle = this.idle.pop()) !== undefined) {
      // A sweep may be late under load: never hand out a socket the server may be closing.
      if (idle.idleDeadlineMs > Date.now()) {
        idle.start(exchange);
        return;
      }
      idle.destroy();
    }
    if (this.all.size < this.settings.maxConnectionsPerPeer) {
      this.all.add(new Connection(this, exchange));
      return;
    }
    if (this.#queue.length - this.#queueHead >= this.settings.maxQueuedPerPeer) {
      exchange.finished = true;
      exchange.handler.onResponseError(undefined, Fault.expected('err:frontline:upstream:service_unavailable', { source: 'internal', internalMessage: `more than ${this.settings.maxQueuedPerPeer} requests waiting for a connection to ${this.peer.origin}` }));
      return;
    }
    this.#queue.push(exchange);
  }

  unqueue(exchange: Exchange): void {
    const index = this.#queue.indexOf(exchange, this.#queueHead);
    if (index !== -1) this.#queue.splice(index, 1);
  }

  /** The next waiting exchange, or undefined. */
  nextQueued(): Exchange | undefined {
    if (this.#queueHead >= this.#queue.length) return undefined;
    const exchange = this.#queue[this.#queueHead]!;
    this.#queue[this.#queueHead] = undefined as unknown as Exchange;
    this.#queueHead++;
    if (this.#queueHead === this.#queue.length) {
      this.#queue.length = 0;
      this.#queueHead = 0;
    } else if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#queueHead);
      this.#queueHead = 0;
    }
    return exchange;
  }

  /** A connection finished an exchange and may be reused: hand it the next waiting one or park it. */
  release(connection: Connection, idleTimeoutMs: number): void {
    const next = this.nextQueued();
    if (next !== undefined) {
      connection.start(next);
      return;
    }
    if (this.#closing !== undefined) {
      connection.destroy();
      return;
    }
    connection.park(idleTimeoutMs);
    this.idle.push(connection);
    this.#sweepTimer ??= setTimeout(this.#sweep, IDLE_SWEEP_INTERVAL_MS).unref();
  }

  /**
   * Idle timeouts are one timer per pool, not one per parked socket: re-arming a socket's own
   * timeout on every park and reuse costs a timer and a bound function per request. A connection
   * goes up to one sweep interval early rather than late (a server's Keep-Alive hint is a promise
   * about when *it* closes).
   */
  readonly #sweep = (): void => {
    this.#sweepTimer = undefined;
    const closeBeforeMs = Date.now() + IDLE_SWEEP_INTERVAL_MS;
    for (const connection of [...this.idle]) {
      if (connection.idleDeadlineMs <= closeBeforeMs) connection.destroy();
    }
    if (this.idle.length > 0 && this.#closing === undefined) this.#sweepTimer = setTimeout(this.#sweep, IDLE_SWEEP_INTERVAL_MS).unref();
  };

  /** A connection is gone (closed, failed, or handed to an upgrade). */
  remove(connection: Connection): void {
    if (!this.all.delete(connection)) return;
    const index = this.idle.lastIndexOf(connection);
    if (index !== -1) this.idle.splice(index, 1);
    if (this.#closing !== undefined) {
      if (this.all.size === 0) this.#closing.resolve();
      return;
    }
    // Exchanges waiting for a free slot get a fresh connection now that one is available.
    if (this.all.size < this.settings.maxConnectionsPerPeer) {
      const next = this.nextQueued();
      if (next !== undefined) this.all.add(new Connection(this, next));
    }
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#closing = { resolve };
      clearTimeout(this.#sweepTimer);
      this.#sweepTimer = undefined;
      for (const connection of [...this.idle]) connection.destroy();
      this.idle.length = 0;
      if (this.all.size === 0) resolve();
    });
    return this.#closed;
  }

  destroy(): void {
    void this.close();
    let queued: Exchange | undefined;
    const reason = Fault.expected('err:frontline:upstream:service_unavailable', { source: 'internal', internalMessage: 'forwarding engine destroyed' });
    while ((queued = this.nextQueued()) !== undefined) {
      queued.finished = true;
      queued.handler.onResponseError(undefined, reason);
    }
    for (const connection of [...this.all]) connection.failExchange(reason, true);
    for (const connection of [...this.all]) connection.destroy();
  }
}

/** One upstream socket; runs one exchange at a time (no pipelining). */
class Connection implements Http1ResponseListener {
  readonly pool: PeerPool;
  readonly socket: net.Socket;
  readonly parser: Http1ResponseParser;
  exchange: Exchange | undefined;
  #connected = false;
  #connectTimer: NodeJS.Timeout | undefined;
  /** True while the request body is still being written. */
  #bodyPending = false;
  #body: Readable | null = null;
  /** Timeouts of the current exchange (socket inactivity timer, re-armed per phase). */
  #headersTimeoutMs = 0;
  #bodyIdleTimeoutMs = 0;
  /** The socket's inactivity timeout as last set (re-set only when it changes: each set allocates a timer). */
  #socketTimeoutMs = 0;
  #destroyed = false;
  /** While idle: when (`Date.now()` ms) the pool's sweep closes this connection. */
  idleDeadlineMs = 0;

  constructor(pool: PeerPool, first: Exchange) {
    this.pool = pool;
    const peer = pool.peer;
    const settings = pool.settings;
    this.parser = new Http1ResponseParser(this, settings.maxResponseHeaderBytes);
    this.exchange = first;
    first.connection = undefined;
    // Plain TCP reads land in one shared buffer (`onread`) and are copied out at once: no
    // per-read allocation of a 64 KiB buffer and no Readable stream machinery per response.
    this.socket = peer.tls
      ? tls.connect({ host: peer.hostname, port: peer.port, servername: net.isIP(peer.servername ?? '') === 0 ? peer.servername : undefined, rejectUnauthorized: peer.rejectUnauthorized, ca: peer.ca as tls.ConnectionOptions['ca'], ALPNProtocols: ['http/1.1'] })
      : net.connect({ host: peer.hostname, port: peer.port, noDelay: true, onread: { buffer: SHARED_READ_BUFFER, callback: this.#onRead } });
    // The request head goes out in one write; Nagle would only hold back a body's last segment.
    if (peer.tls) {
      this.socket.setNoDelay(true);
      this.socket.on('data', this.#onData);
    }
    this.socket.on(peer.tls ? 'secureConnect' : 'connect', this.#onConnect);
    this.socket.on('end', this.#onEnd);
    this.socket.on('error', this.#onError);
    this.socket.on('close', this.#onClose);
    this.socket.on('timeout', this.#onTimeout);
    this.socket.on('drain', this.#onDrain);
    this.#connectTimer = setTimeout(this.#onConnectTimeout, settings.connectTimeoutMs);
  }

  /** Starts `exchange` on this (connected, idle) connection. */
  start(exchange: Exchange): void {
    this.exchange = exchange;
    exchange.connection = this;
    const request = exchange.request;
    this.#headersTimeoutMs = request.headersTimeoutMs;
    this.#bodyIdleTimeoutMs = request.bodyIdleTimeoutMs;
    this.#completedTrailers = undefined;
    this.#lastHeaders = undefined;
    this.parser.reset(request.method === 'HEAD', request.upgrade !== undefined);
    this.#setSocketTimeout(this.#headersTimeoutMs);
    exchange.handler.onRequestStart(exchange, null);
    // The handler may have aborted at once (its client left while we were connecting).
    if (exchange.finished) return;
    const body = request.body;
    if (body === null) {
      this.socket.write(exchange.head, 'latin1');
      return;
    }
    this.#body = body;
    this.#bodyPending = true;
    this.socket.cork();
    this.socket.write(exchange.head, 'latin1');
    body.on('data', this.#onBodyData);
    body.on('end', this.#onBodyEnd);
    body.on('error', this.#onBodyError);
    process.nextTick(uncork, this.socket);
  }

  /** Puts an idle connection to sleep until reused or closed by the pool's sweep after `idleTimeoutMs`. */
  park(idleTimeoutMs: number): void {
    this.exchange = undefined;
    this.idleDeadlineMs = Date.now() + idleTimeoutMs;
    // A shorter exchange timeout left on the socket would cut the idle time short.
    if (this.#socketTimeoutMs !== 0 && this.#socketTimeoutMs < idleTimeoutMs) this.#setSocketTimeout(0);
    this.socket.resume();
  }

  #setSocketTimeout(timeoutMs: number): void {
    if (timeoutMs === this.#socketTimeoutMs) return;
    this.#socketTimeoutMs = timeoutMs;
    this.socket.setTimeout(timeoutMs);
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#clearConnectTimer();
    this.#detachBody();
    this.socket.destroy();
    this.pool.remove(this);
  }

  /** Ends the current exchange with `error` and closes the socket (no reuse after a failure). */
  failExchange(error: Error, connected: boolean): void {
    const exchange = this.exchange;
    this.exchange = undefined;
    this.destroy();
    if (exchange === undefined || exchange.finished) return;
    exchange.finished = true;
    exchange.handler.onResponseError(connected ? exchange : undefined, error);
  }

  // ---- Http1ResponseListener ------------------------------------------------------------------

  onResponseHead(statusCode: number, headers: HeaderMap, statusMessage: string): void {
    const exchange = this.exchange!;
    if (statusCode === 101) {
      this.#lastHeaders = headers; // handed over after execute returns, with the leftover bytes
      return;
    }
    this.#setSocketTimeout(this.#bodyIdleTimeoutMs);
    exchange.handler.onResponseStart(exchange, statusCode, headers, statusMessage);
  }

  onResponseBody(chunk: Buffer): void {
    const exchange = this.exchange;
    if (exchange === undefined || exchange.finished) return;
    exchange.handler.onResponseData(exchange, chunk);
  }

  onResponseComplete(trailers: HeaderMap): void {
    // Completion is acted on in #onData once execute returns (stray bytes decide reuse).
    this.#completedTrailers = trailers;
  }

  #completedTrailers: HeaderMap | undefined;

  // ---- socket events ------------------------------------------------------------------------

  readonly #onConnect = (): void => {
    this.#connected = true;
    this.#clearConnectTimer();
    const exchange = this.exchange;
    if (exchange === undefined) return;
    if (exchange.finished) {
      // Aborted while connecting (e.g. the engine was destroyed): offer the socket to the pool.
      this.exchange = undefined;
      this.pool.release(this, this.pool.settings.idleTimeoutMs);
      return;
    }
    this.start(exchange);
  };

  /** An upgraded socket handed to the session: reads go to its stream side from now on. */
  #tunneled = false;

  /**
   * `onread` callback of a plain TCP socket: `bytes` is the shared read buffer, valid only during
   * this call, so the read is copied out first (the parser and handlers may keep slices of it).
   * Once upgraded, reads are pushed into the socket's stream side for the tunnel to pipe; returning
   * false there pauses reading until the tunnel takes them (back-pressure).
   */
  readonly #onRead = (length: number, bytes: Uint8Array): boolean => {
    const chunk = Buffer.from(bytes.subarray(0, length));
    if (this.#tunneled) return this.socket.push(chunk);
    this.#onData(chunk);
    return true;
  };

  readonly #onData = (chunk: Buffer): void => {
    const exchange = this.exchange;
    if (exchange === undefined || exchange.finished) {
      // Bytes nobody asked for on an idle connection: the stream is out of step; never reuse it.
      this.destroy();
      return;
    }
    let consumed: number;
    try {
      consumed = this.parser.execute(chunk);
    } catch (err) {
      this.failExchange(Fault.expected('err:frontline:upstream:bad_gateway', { source: 'upstream', internalMessage: `invalid upstream response: ${(err as Error).message}`, cause: err }), true);
      return;
    }
    if (this.parser.upgraded) {
      this.#handOverUpgrade(exchange, chunk, consumed);
      return;
    }
    const trailers = this.#completedTrailers;
    if (trailers === undefined) return;
    this.#completedTrailers = undefined;
    this.#completeExchange(exchange, trailers, consumed === chunk.length);
  };

  #completeExchange(exchange: Exchange, trailers: HeaderMap, clean: boolean): void {
    exchange.finished = true;
    this.exchange = undefined;
    exchange.connection = undefined;
    const parser = this.parser;
    // Reuse only when the next byte on this socket can only be the next response.
    const reusable = clean && parser.keepAlive && !this.#bodyPending;
    if (reusable && !this.#destroyed) {
      const hint = parser.keepAliveHintMs;
      const settings = this.pool.settings;
      // A server's hint is how long *it* keeps the socket; leave a second of margin for the race.
      const idleMs = hint === 0 ? settings.idleTimeoutMs : Math.min(hint - 1000, settings.maxIdleTimeoutMs);
      if (idleMs > 0) {
        this.socket.resume();
        this.pool.release(this, idleMs);
      } else {
        this.destroy();
      }
    } else {
      this.#detachBody();
      this.destroy();
    }
    exchange.handler.onResponseEnd(exchange, trailers);
  }

  #handOverUpgrade(exchange: Exchange, chunk: Buffer, consumed: number): void {
    exchange.finished = true;
    this.exchange = undefined;
    this.#destroyed = true;
    this.#clearConnectTimer();
    this.#detachBody();
    const socket = this.socket;
    // Stop flowing before our listeners go, or bytes would be emitted to nobody.
    socket.pause();
    socket.setTimeout(0);
    socket.off('data', this.#onData);
    this.#tunneled = true;
    socket.off('end', this.#onEnd);
    socket.off('error', this.#onError);
    socket.off('close', this.#onClose);
    socket.off('timeout', this.#onTimeout);
    socket.off('drain', this.#onDrain);
    this.pool.remove(this);
    if (consumed < chunk.length) socket.unshift(chunk.subarray(consumed));
    exchange.handler.onRequestUpgrade(exchange, 101, this.#upgradeHeaders(), socket);
  }

  #upgradeHeaders(): HeaderMap {
    return this.#lastHeaders ?? {};
  }

  #lastHeaders: HeaderMap | undefined;

  readonly #onEnd = (): void => {
    const exchange = this.exchange;
    if (exchange !== undefined && !exchange.finished) {
      try {
        this.parser.finish();
      } catch (err) {
        this.failExchange(Fault.expected('err:frontline:upstream:bad_gateway', { source: 'upstream', internalMessage: (err as Error).message, cause: err }), true);
        return;
      }
      const trailers = this.#completedTrailers;
      this.#completedTrailers = undefined;
      if (trailers !== undefined) {
        this.#completeExchange(exchange, trailers, false);
        return;
      }
    }
    this.destroy();
  };

  readonly #onError = (err: Error): void => {
    // Before the connection came up nothing was sent: "not connected", so another peer may be tried.
    this.failExchange(err, this.#connected);
  };

  readonly #onClose = (): void => {
    if (this.exchange !== undefined && !this.exchange.finished) {
      this.failExchange(Fault.expected('err:frontline:upstream:bad_gateway', { source: 'upstream', internalMessage: 'upstream connection closed before the response was complete' }), this.#connected);
      return;
    }
    this.destroy();
  };

  readonly #onTimeout = (): void => {
    const exchange = this.exchange;
    if (exchange === undefined || exchange.finished) {
      this.destroy(); // idle timeout
      return;
    }
    const waitingForHead = !this.parser.headReceived;
    const limitMs = waitingForHead ? this.#headersTimeoutMs : this.#bodyIdleTimeoutMs;
    this.failExchange(Fault.expected('err:frontline:upstream:gateway_timeout', {
      source: 'upstream',
      internalMessage: waitingForHead ? `no upstream response head within ${limitMs} ms` : `upstream body idle for ${limitMs} ms`,
    }), true);
  };

  readonly #onConnectTimeout = (): void => {
    this.#connectTimer = undefined;
    if (this.#connected) return;
    const error = Object.assign(new Error(`connect to ${this.pool.peer.origin} timed out after ${this.pool.settings.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' });
    this.failExchange(error, false);
  };

  readonly #onDrain = (): void => {
    this.#body?.resume();
  };

  readonly #onBodyData = (chunk: Buffer): void => {
    const exchange = this.exchange;
    if (exchange === undefined) return;
    const chunked = exchange.request.headers['content-length'] === undefined;
    let flushed: boolean;
    if (chunked) {
      if (chunk.length === 0) return;
      this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      this.socket.write(chunk);
      flushed = this.socket.write('\r\n', 'latin1');
    } else {
      flushed = this.socket.write(chunk);
    }
    if (!flushed) this.#body?.pause();
  };

  readonly #onBodyEnd = (): void => {
    const exchange = this.exchange;
    const wasChunked = exchange !== undefined && exchange.request.headers['content-length'] === undefined;
    this.#detachBody();
    if (wasChunked && !this.#destroyed) this.socket.write('0\r\n\r\n', 'latin1');
  };

  readonly #onBodyError = (err: Error): void => {
    this.failExchange(Fault.expected('err:user:bad_request:client_closed_request', { internalMessage: `request body failed: ${err.message}`, cause: err }), true);
  };

  #detachBody(): void {
    const body = this.#body;
    if (body === null) return;
    this.#body = null;
    this.#bodyPending = false;
    body.off('data', this.#onBodyData);
    body.off('end', this.#onBodyEnd);
    body.off('error', this.#onBodyError);
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== undefined) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    }
  }
}

/**
 * Where plain TCP upstream reads land (`onread`). One buffer for every connection of the thread:
 * each read callback copies its bytes out before it returns, and callbacks never overlap.
 */
const SHARED_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** How often a pool closes idle connections past their deadline (ms); also how early they may go. */
const IDLE_SWEEP_INTERVAL_MS = 250;

function uncork(socket: net.Socket): void {
  socket.uncork();
}

// A request target, method and header values must not be able to end the line they are on:
// a CR or LF from a hook would otherwise let it write a second request (request smuggling).
// What may go on the wire as a header value octet: HTAB, SP, visible ASCII and obs-text. The head
// is written as latin1, so anything above U+00FF (U+010D would become CR) is refused like CR/LF/NUL.
const UNSAFE_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_TARGET = /^[\x21-\x7e\x80-\xff]+$/;

/** The request line and headers, as one latin1 string. Throws a `Fault` for an unsafe request. Per attempt. */
export function serializeRequestHead(peer: HttpPeer, request: UpstreamDispatch): string {
  const { method, path, headers } = request;
  if (!TOKEN.test(method)) throw invalidRequest(`invalid method ${JSON.stringify(method)}`);
  if (!REQUEST_TARGET.test(path)) throw invalidRequest('invalid request target');
  let head = `${method} ${path} HTTP/1.1\r\n`;
  let hasHost = false;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (!TOKEN.test(name)) throw invalidRequest(`invalid header name ${JSON.stringify(name)}`);
    if (name === 'host') hasHost = true;
    if (typeof value === 'string') {
      if (UNSAFE_VALUE.test(value)) throw invalidRequest(`invalid value for header ${name}`);
      head += `${name}: ${value}\r\n`;
    } else {
      for (const item of value) {
        if (UNSAFE_VALUE.test(item)) throw invalidRequest(`invalid value for header ${name}`);
        head += `${name}: ${item}\r\n`;
      }
    }
  }
  if (!hasHost) head += `host: ${peer.hostname.includes(':') ? `[${peer.hostname}]` : peer.hostname}:${peer.port}\r\n`;
  if (request.upgrade !== undefined) {
    if (UNSAFE_VALUE.test(request.upgrade)) throw invalidRequest('invalid upgrade protocol');
    head += `connection: upgrade\r\nupgrade: ${request.upgrade}\r\n`;
  } else if (request.body !== null && headers['content-length'] === undefined) {
    head += 'transfer-encoding: chunked\r\n';
  }
  return `${head}\r\n`;
}

function invalidRequest(message: string): Fault {
  return Fault.expected('err:frontline:upstream:proxy_forward_failed', { source: 'internal', internalMessage: `refused to send upstream: ${message}` });
}
