/**
 * `createListener`: the downstream side of the proxy. One function builds the right Node server
 * for a listener kind and wires it to a runner's request and upgrade handlers:
 * - `http`: plain HTTP/1.1 (`node:http`);
 * - `https`: TLS with ALPN `h2` and `http/1.1` (`node:http2` secure server with HTTP/1.1
 *   fallback), certificates chosen per handshake by a `CertificateStore`;
 * - `h2c`: HTTP/2 over plain TCP with prior knowledge.
 * Node's own request timeout (300 s by default) is turned off, since it would cut long uploads and
 * SSE streams (dataplane.md §10.5); the runner's total timeout applies instead. Header read and
 * keep-alive idle time stay bounded.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { attachHttp1Downstream } from './http1-downstream.ts';
import type { CertificateStore } from './tls/certificate-store.ts';
import type { DownstreamRequest, DownstreamResponse } from './proxy-session.ts';

/** The kinds of downstream listener. */
export type ListenerProtocol = 'http' | 'https' | 'h2c';

/** Options of {@link createListener}; every bound has a default in {@link LISTENER_DEFAULTS}. */
export interface ListenerOptions {
  protocol: ListenerProtocol;
  /** Required for `https`. */
  certificates?: CertificateStore;
  /** ALPN protocols offered on `https` (default `h2`, `http/1.1`). Without `h2`, HTTP/1.1 only. */
  alpnProtocols?: readonly ('h2' | 'http/1.1')[];
  /** Longest time to receive a request head (default 60 000 ms). */
  headersTimeoutMs?: number;
  /** How long an idle keep-alive connection or HTTP/2 session is kept open (default 60 000 ms). */
  idleTimeoutMs?: number;
  /** Largest request head (default 16 KiB). */
  maxHeaderBytes?: number;
  /** HTTP/2: concurrent streams per connection (default 250). */
  maxConcurrentStreams?: number;
  /**
   * Who parses HTTP/1.1 requests (plain `http`, and HTTP/1.1 over TLS on `https`): `keygate`
   * (default), keygate's own request path (`http1-downstream.ts`), which hands connections it
   * does not handle (upgrades, chunked or large bodies, unusual requests) to node:http; or `node`,
   * node:http for everything.
   */
  http1Parser?: 'keygate' | 'node';
}

/** Defaults of {@link ListenerOptions}. */
export const LISTENER_DEFAULTS = {
  headersTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  maxHeaderBytes: 16 * 1024,
  maxConcurrentStreams: 250,
  http1Parser: 'keygate',
} as const;

/**
 * Node ≥ 24.12: an HTTP/1.1 request without Content-Length or Transfer-Encoding (no body) gets an
 * already-ended body stream, skipping the per-request Readable end/dump ticks (a few percent of
 * a proxied request's CPU). The proxy reads a body only when one of those headers is present
 * (`ProxySession`), so nothing waits for events such a request no longer emits. Older Nodes
 * ignore the unknown option. (Not yet in @types/node, hence the spread.)
 */
const OPTIMIZE_EMPTY_REQUESTS = { optimizeEmptyRequests: true } as const;

/**
 * No Nagle on accepted sockets (net.Server's `noDelay`, applied to the TCP handle; `http`'s own
 * option does the same): a response that leaves as more than one segment (several TLS records,
 * HTTP/2 frames) must not wait for the client's delayed ACK, tens of ms, before its last one.
 * Not in the http2 option types, hence the spread.
 */
const NO_DELAY = { noDelay: true } as const;

/** The request and upgrade handlers a listener feeds (a `PhaseRunner` provides both). */
export interface ListenerHandlers {
  handleRequest(req: DownstreamRequest, res: DownstreamResponse): void;
  handleUpgrade(req: DownstreamRequest, socket: Duplex, head: Buffer): void;
}

/** Builds a server of the given kind (not yet listening). Called at boot. */
export function createListener(handlers: ListenerHandlers, options: ListenerOptions): Server {
  const headersTimeoutMs = options.headersTimeoutMs ?? LISTENER_DEFAULTS.headersTimeoutMs;
  const idleTimeoutMs = options.idleTimeoutMs ?? LISTENER_DEFAULTS.idleTimeoutMs;
  const maxHeaderBytes = options.maxHeaderBytes ?? LISTENER_DEFAULTS.maxHeaderBytes;
  const settings = { maxConcurrentStreams: options.maxConcurrentStreams ?? LISTENER_DEFAULTS.maxConcurrentStreams };
  const fastHttp1 = (options.http1Parser ?? LISTENER_DEFAULTS.http1Parser) === 'keygate';
  // The fast path's bounds mirror node's: no receive deadline beyond the head's for its small bodies.
  const fastLimits = { maxHeaderBytes, headersTimeoutMs, requestReceiveTimeoutMs: headersTimeoutMs, keepAliveTimeoutMs: idleTimeoutMs };
  switch (options.protocol) {
    case 'http': {
      const server = http.createServer({
        requestTimeout: 0,
        headersTimeout: headersTimeoutMs,
        keepAliveTimeout: idleTimeoutMs,
        maxHeaderSize: maxHeaderBytes,
        noDelay: true,
        ...OPTIMIZE_EMPTY_REQUESTS,
      }, handlers.handleRequest as http.RequestListener);
      server.on('upgrade', handlers.handleUpgrade);
      server.on('clientError', onClientError);
      if (fastHttp1) attachHttp1Downstream(server, 'connection', handlers, fastLimits, alwaysFast);
      return server;
    }
    case 'https': {
      if (options.certificates === undefined) throw new TypeError('createListener: an https listener needs a CertificateStore');
      const alpn = options.alpnProtocols ?? ['h2', 'http/1.1'];
      const server = http2.createSecureServer({
        ...options.certificates.serverOptions(alpn),
        allowHTTP1: alpn.includes('http/1.1'),
        ...OPTIMIZE_EMPTY_REQUESTS,
        ...NO_DELAY,
        maxSessionMemory: 32,
        settings,
      }, handlers.handleRequest as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
      // The server's own context decides ticket resumption: give it the store's rotating keys now,
      // not on the first SNI handshake, so clients without SNI follow rotations too.
      options.certificates.attachServer(server);
      // The HTTP/1.1 fallback inherits these from http.Server semantics.
      const http1 = server as unknown as { requestTimeout: number; headersTimeout: number; keepAliveTimeout: number };
      http1.requestTimeout = 0;
      http1.headersTimeout = headersTimeoutMs;
      http1.keepAliveTimeout = idleTimeoutMs;
      server.on('upgrade', handlers.handleUpgrade);
      server.on('session', (session: http2.ServerHttp2Session) => session.setTimeout(idleTimeoutMs, () => session.close()));
      server.on('tlsClientError', noop);
      if (fastHttp1 && alpn.includes('http/1.1')) attachHttp1Downstream(server, 'secureConnection', handlers, fastLimits, notHttp2);
      return server;
    }
    case 'h2c': {
      const server = http2.createServer({ maxSessionMemory: 32, settings, ...NO_DELAY },
        handlers.handleRequest as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
      server.on('session', (session: http2.ServerHttp2Session) => session.setTimeout(idleTimeoutMs, () => session.close()));
      return server;
    }
  }
}

/** A malformed request or a socket error before a request: answer 400 if possible, never crash. */
function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
}

function noop(): void {}

function alwaysFast(): boolean {
  return true;
}

/** A TLS connection that did not choose HTTP/2 by ALPN (HTTP/1.1, or no ALPN at all). */
function notHttp2(socket: Socket): boolean {
  return (socket as TLSSocket).alpnProtocol !== 'h2';
}
