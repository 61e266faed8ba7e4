/**
 * `ProxySession`: one downstream request on its way through the proxy. Hooks read the request
 * from it (`method`, `path`, `host`, `headers`, `clientAddress`, `requestId`) and may answer it
 * themselves (`respond`). It is also the {@link UpstreamHandler} of the exchange: the forwarding
 * engine calls it directly as the upstream connects, answers and streams, so one object per
 * request carries the whole exchange (no adapter, no per-chunk closure).
 *
 * Streaming rules (dataplane.md §10): the body is never buffered unless a request phase asks for
 * it (`readBody`, bounded); the upstream response streams
 * back while the request body is still arriving (full duplex); downstream back-pressure pauses
 * the upstream; a failure after the response head went out destroys the downstream connection
 * (HTTP/1.1) or resets the stream (HTTP/2) so the client can tell the body was cut short.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { Readable, Transform } from 'node:stream';
import type { Duplex, TransformCallback } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { Fault } from '../core/fault.ts';
import { bodyTooLarge, readBody } from '../core/http/read-body.ts';
import { classifyUpstreamError } from './errors/classify-upstream-error.ts';
import { renderErrorPage } from './errors/error-page.ts';
import { copyRequestHeaders, stripResponseHeaders } from './forward/hop-by-hop.ts';
import { normalizeAddress } from './forward/trusted-proxies.ts';
import type { UpstreamController, UpstreamDispatch, UpstreamHandler } from './forward/forwarding-engine.ts';
import type { HeaderMap, UpstreamRequest, UpstreamResponse } from './hooks.ts';
import type { HttpPeer } from './http-peer.ts';
import { Http1DownstreamRequest, Http1DownstreamResponse } from './http1-downstream.ts';
import type { SessionRuntime } from './session-runtime.ts';

/**
 * A downstream request object: node:http's (HTTP/1.1), the HTTP/2 compatibility API's, or
 * keygate's HTTP/1.1 path's (`http1-downstream.ts`, same fields for what the proxy reads).
 */
export type DownstreamRequest = IncomingMessage | Http2ServerRequest | Http1DownstreamRequest;
/** A downstream response object, the counterpart of {@link DownstreamRequest}. */
export type DownstreamResponse = ServerResponse | Http2ServerResponse | Http1DownstreamResponse;

/**
 * The first bytes of a request or response body kept for the `logging` phase (see
 * {@link ProxySession.captureBodies}); `totalBytes` counts every byte that went through.
 */
export interface CapturedBody {
  bytes: Buffer;
  totalBytes: number;
  truncated: boolean;
}

/** Upper bound of one body capture, whatever a hook asks for (bounded memory per request). */
export const MAX_BODY_CAPTURE_BYTES = 1024 * 1024;

const STATE_FILTERING = 0;
const STATE_FORWARDING = 1;
const STATE_DONE = 2;

/** One request through the proxy; created by the runner per request, never by hooks. */
export class ProxySession implements UpstreamHandler {
  /** The raw downstream request (escape hatch; prefer the accessors). */
  readonly req: DownstreamRequest;
  /** The raw downstream response; undefined for an HTTP/1.1 upgrade (see `socket`). */
  readonly res: DownstreamResponse | undefined;
  /** The client socket of an upgrade request, else undefined. */
  readonly upgradeSocket: Duplex | undefined;
  /** The `Upgrade` protocol requested (e.g. `websocket`), else undefined. */
  readonly upgrade: string | undefined;
  /** The per-request context created by `newCtx` (typed by the hooks that created it). */
  ctx: unknown;
  /** How many upstream connections were attempted (1 after the first). */
  connectAttempts = 0;
  /** The peer of the current or last attempt. */
  peer: HttpPeer | undefined;
  /** The request sent upstream (set after `upstreamPeer`; change its fields, do not replace it). */
  upstreamRequest: UpstreamRequest | undefined;
  /** The response status sent downstream (0 until a head was written). */
  responseStatus = 0;
  /** Set when the request failed (also for client aborts); read by the `logging` phase. */
  fault: Fault | undefined;
  /** When the request arrived (`performance.now()` milliseconds; for latency measurements). */
  readonly startedAtMs: number;

  readonly #runtime: SessionRuntime;
  #requestId: string | undefined;
  readonly #upgradeHead: Buffer | undefined;
  #state = STATE_FILTERING;
  #peers: readonly HttpPeer[] = [];
  #peerIndex = 0;
  #controller: UpstreamController | undefined;
  #dispatch: UpstreamDispatch | undefined;
  #headWritten = false;
  #downstreamGone = false;
  #extraHeaders: string[] | undefined;
  /** This session's place in the runner's total-timeout list while the timeout runs. */
  #deadline: SessionDeadline | undefined;
  #drainListener: (() => void) | undefined;
  #host: string | undefined;
  #pendingChunks: Buffer[] | undefined;
  #upstreamSocket: Duplex | undefined;
  /** The body read by `readBody` (pending or done); undefined while the body is still a stream. */
  #bodyRead: Promise<Buffer> | undefined;
  #bufferedBody: Buffer | undefined;
  /** The rest of the request body was left unread (413): the connection must not be reused. */
  #closeConnection = false;
  #requestCapture: BodyCaptureState | undefined;
  #responseCapture: BodyCaptureState | undefined;
  /** Response body bytes still to come when the upstream sent a Content-Length (else NaN). */
  #responseBytesLeft = Number.NaN;
  /** The chunk that completes a Content-Length body, held for `end(chunk)`: one write, no extra tick. */
  #lastChunk: Buffer | undefined;

  constructor(runtime: SessionRuntime, req: DownstreamRequest, res: DownstreamResponse | undefined, upgradeSocket?: Duplex, upgradeHead?: Buffer) {
    this.#runtime = runtime;
    this.req = req;
    this.res = res;
    this.upgradeSocket = upgradeSocket;
    this.#upgradeHead = upgradeHead;
    this.upgrade = upgradeSocket === undefined ? undefined : (req.headers.upgrade as string | undefined);
    this.startedAtMs = performance.now();
    // A trusted previous hop's id is read now, before any hook can strip or rewrite the header
    // (Frontline's edge drops every client-sent `x-keygate-*` header); only a new id is made lazily.
    this.#requestId = runtime.inboundRequestId?.(req);
    // keygate's HTTP/1.1 path reads a (small) body whole before the phases: it is forwarded as a
    // buffered body, with its length, exactly as one that `readBody` read.
    if (req instanceof Http1DownstreamRequest) {
      const body = req.body;
      if (body !== undefined) this.#bufferedBody = body;
    }
  }

  /**
   * `req_…` (or a trusted previous hop's id, read at construction), on the error page, the
   * upstream request and the downstream response. A new id is made on first use: a proxy that
   * sends no id header and never logs one never pays for it.
   */
  get requestId(): string {
    return (this.#requestId ??= this.#runtime.newRequestId());
  }

  // ---- request accessors (for hooks) -------------------------------------------------------

  /** The request method (upper case as sent). */
  get method(): string {
    return this.req.method ?? 'GET';
  }

  /** Path and query, exactly as received (escaped form kept for the upstream). */
  get path(): string {
    return this.req.url ?? '/';
  }

  /** Downstream request headers (lower-cased names; HTTP/2 pseudo-headers included). */
  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }

  /** The Host as sent (`Host`, or `:authority` on HTTP/2), port included; '' when absent. */
  get authority(): string {
    const headers = this.req.headers;
    return (headers[':authority'] as string | undefined) ?? headers.host ?? '';
  }

  /** The routing host: lower-cased, port and trailing dot removed, IPv6 brackets removed. Computed once. */
  get host(): string {
    if (this.#host === undefined) this.#host = normalizeHost(this.authority);
    return this.#host;
  }

  /** The direct peer's IP address (IPv4-mapped IPv6 unwrapped); '' if the socket is gone. */
  get clientAddress(): string {
    return normalizeAddress(this.req.socket?.remoteAddress);
  }

  /** True when the downstream connection is TLS. */
  get tls(): boolean {
    return (this.req.socket as TLSSocket | undefined)?.encrypted === true;
  }

  /** The TLS server name the client asked for, when TLS. */
  get servername(): string | undefined {
    const servername = (this.req.socket as TLSSocket | undefined)?.servername;
    return typeof servername === 'string' ? servername : undefined;
  }

  /** `1.1`, `1.0` or `2.0`. */
  get httpVersion(): string {
    return this.req.httpVersion;
  }

  /** True once the request is over (answered, failed or aborted). */
  get done(): boolean {
    return this.#state === STATE_DONE;
  }

  // ---- responses written by hooks -----------------------------------------------------------

  /**
   * Adds a header to the downstream response (additive: upstream values are kept, this value is
   * appended, dataplane.md §10.10). Call before the response head is written.
   */
  addResponseHeader(name: string, value: string): void {
    (this.#extraHeaders ??= []).push(name.toLowerCase(), value);
  }

  /**
   * Answers the request from the proxy (e.g. in `requestFilter`) and returns `'responded'`.
   * `body` is a string or bytes; headers are lower-cased names. Per request, at most once.
   */
  respond(status: number, body: string | Uint8Array = '', headers: Record<string, string> = {}): 'responded' {
    if (this.#headWritten || this.#downstreamGone) return 'responded';
    const merged: HeaderMap = { ...headers };
    if (merged['content-length'] === undefined) merged['content-length'] = String(Buffer.byteLength(body));
    this.#writeHead(status, merged);
    if (this.res !== undefined) this.res.end(body);
    else this.upgradeSocket?.end(body);
    this.#state = STATE_DONE;
    this.#downstreamEnded = true;
    return 'responded';
  }

  // ---- request body (for request phases) ----------------------------------------------------

  /**
   * Reads the whole request body into memory, at most `maxBytes`, and makes the forwarder send
   * these bytes (with a matching `content-length`) instead of the stream; retries to another
   * peer resend them. For request phases (`earlyRequestFilter`, `requestFilter`, `upstreamPeer`,
   * `upstreamRequestFilter`) of a non-upgrade request; per request the body is read once and later
   * calls share it. Rejects with a `Fault`: 413 `request_body_too_large` past `maxBytes` (the
   * connection is then closed after the answer, the rest is never read), 499 when the client left.
   * Resolves to an empty buffer when the request has no body. The total timeout starts here.
   */
  readBody(maxBytes: number): Promise<Buffer> {
    if (this.#bodyRead === undefined) {
      if (this.#state !== STATE_FILTERING || this.upgradeSocket !== undefined) {
        return Promise.reject(new Fault('err:frontline:platform:internal_server_error', { internalMessage: 'readBody is only available in the request phases of a non-upgrade request' }));
      }
      this.#startTotalTimer();
      const buffered = this.#bufferedBody;
      const read = buffered !== undefined ? Promise.resolve(buffered)
        : this.#hasRequestBody() ? readBody(this.req as IncomingMessage, maxBytes) : Promise.resolve(EMPTY_BODY);
      this.#bodyRead = read.then((body) => {
        this.#bufferedBody = body;
        return body;
      }, (err: unknown) => {
        if (err instanceof Fault && err.status === 413) this.#closeConnection = true;
        throw err;
      });
    }
    return this.#bodyRead.then((body) => {
      if (body.length > maxBytes) throw bodyTooLarge(maxBytes);
      return body;
    });
  }

  /**
   * Keeps the first bytes of the request and/or response body as they stream (never more than
   * {@link MAX_BODY_CAPTURE_BYTES} each), for the `logging` phase: see `capturedRequestBody` and
   * `capturedResponseBody`. Call in a request phase; a bound of 0 or less captures nothing.
   */
  captureBodies(options: { requestMaxBytes?: number; responseMaxBytes?: number }): void {
    const requestMaxBytes = Math.min(options.requestMaxBytes ?? 0, MAX_BODY_CAPTURE_BYTES);
    const responseMaxBytes = Math.min(options.responseMaxBytes ?? 0, MAX_BODY_CAPTURE_BYTES);
    if (requestMaxBytes > 0 && this.#state === STATE_FILTERING) this.#requestCapture ??= new BodyCaptureState(requestMaxBytes);
    if (responseMaxBytes > 0) this.#responseCapture ??= new BodyCaptureState(responseMaxBytes);
  }

  /** The captured start of the request body (after `captureBodies`), or undefined. */
  get capturedRequestBody(): CapturedBody | undefined {
    return this.#requestCapture?.result();
  }

  /** The captured start of the response body (after `captureBodies`), or undefined. */
  get capturedResponseBody(): CapturedBody | undefined {
    return this.#responseCapture?.result();
  }

  // ---- runner entry points ------------------------------------------------------------------

  /** Called by the runner with the candidates from `upstreamPeer`; builds the upstream request. */
  prepareUpstream(peers: HttpPeer | readonly HttpPeer[]): UpstreamRequest {
    this.#peers = peers instanceof Array ? peers : [peers as HttpPeer];
    if (this.#peers.length === 0) {
      throw Fault.expected('err:frontline:capacity:no_running_instances', { source: 'internal', internalMessage: 'upstreamPeer returned no peer' });
    }
    const runtime = this.#runtime;
    const source = this.req.headers;
    const headers = copyRequestHeaders(source);
    const first = this.#peers[0]!;
    const authority = this.authority;
    // An HTTP/1.0 request may come without Host: the engine then writes the peer's own authority
    // (an HTTP/1.1 request must carry a non-empty Host; origins answer `host: ` with 400 and close).
    const hostHeader = first.hostHeader ?? authority;
    if (hostHeader !== '') headers.host = hostHeader;
    const remote = this.clientAddress;
    // Security: X-Forwarded-* from the client are replaced unless the direct peer is a trusted
    // proxy; otherwise a client could pick the IP that rate limits and logs see (§10.13).
    if (runtime.trustedProxies.check(remote)) {
      const forwardedFor = source['x-forwarded-for'];
      headers['x-forwarded-for'] = forwardedFor === undefined || forwardedFor === '' ? remote : `${forwardedFor}, ${remote}`;
      const forwardedHost = (source['x-forwarded-host'] as string | undefined) ?? authority;
      if (forwardedHost !== '') headers['x-forwarded-host'] = forwardedHost;
      headers['x-forwarded-proto'] = (source['x-forwarded-proto'] as string | undefined) ?? (this.tls ? 'https' : 'http');
    } else {
      headers['x-forwarded-for'] = remote;
      if (authority !== '') headers['x-forwarded-host'] = authority;
      headers['x-forwarded-proto'] = this.tls ? 'https' : 'http';
    }
    if (runtime.requestIdHeader !== undefined) headers[runtime.requestIdHeader] = this.requestId;
    // One object is both what the hooks may change and what the engine is given: hooks see the
    // UpstreamRequest fields; the rest is filled in by startForwarding.
    const dispatch: UpstreamDispatch = {
      method: this.method,
      path: this.path,
      headers,
      body: null,
      upgrade: this.upgrade,
      headersTimeoutMs: runtime.headersTimeoutMs,
      bodyIdleTimeoutMs: this.upgrade === undefined ? runtime.bodyIdleTimeoutMs : 0,
    };
    this.#dispatch = dispatch;
    this.upstreamRequest = dispatch;
    return dispatch;
  }

  /** Called by the runner after the request phases: starts the first upstream attempt. */
  startForwarding(): void {
    if (this.#state === STATE_DONE) return;
    if (this.#bodyRead !== undefined && this.#bufferedBody === undefined) {
      // A phase started reading the body without waiting for it: forward once it is in memory.
      this.#bodyRead.then(() => this.startForwarding(), (err: unknown) => this.fail(Fault.from(err, 'err:frontline:platform:internal_server_error')));
      return;
    }
    this.#state = STATE_FORWARDING;
    this.#startTotalTimer();
    const request = this.#dispatch!;
    let body: Readable | null = null;
    const buffered = this.#bufferedBody;
    if (buffered !== undefined) {
      // The body is in memory: its length is known, so it goes with content-length (a streamed
      // body is sent per attempt from the buffer, see #attempt).
      delete request.headers['transfer-encoding'];
      if (buffered.length > 0 || request.headers['content-length'] !== undefined) request.headers['content-length'] = String(buffered.length);
      this.#requestCapture?.add(buffered);
    } else if (this.#hasRequestBody()) {
      body = this.req as Readable;
      const capture = this.#requestCapture;
      if (capture !== undefined) {
        const tap = new CaptureTap(capture);
        body.on('error', (err: Error) => tap.destroy(err));
        body.pipe(tap);
        body = tap;
      }
    }
    this.#dispatch!.body = body;
    this.#attempt();
  }

  /**
   * Ends the request with `fault`: the error page when nothing was sent yet (through the
   * `failToProxy` hook), a destroyed connection when the head already went out. Idempotent.
   */
  fail(fault: Fault): void {
    if (this.#state === STATE_DONE) return;
    this.#state = STATE_DONE;
    this.fault ??= fault;
    this.#clearTimer();
    if (this.#controller !== undefined) this.#abortUpstream(fault);
    if (this.#downstreamGone) return;
    if (this.#headWritten) {
      this.#destroyDownstream(fault);
      return;
    }
    const decision = this.#runtime.failToProxy(this, fault);
    if (decision === 'default') {
      this.#writeErrorPage(fault);
    } else if (decision !== 'responded') {
      decision.then(
        (outcome) => { if (outcome !== 'responded') this.#writeErrorPage(fault); },
        () => this.#writeErrorPage(fault),
      );
    }
  }

  /**
   * Called by the runner once, when the downstream side closed: `finished` is true when the
   * response was fully written (or the upgrade tunnel ran its course). Runs the `logging` phase.
   */
  downstreamClosed(finished: boolean): void {
    this.#downstreamGone = true;
    this.#clearTimer();
    if (!finished && this.fault === undefined) {
      this.fault = Fault.expected('err:user:bad_request:client_closed_request', { internalMessage: 'client closed the connection before the response was complete' });
    }
    this.#state = STATE_DONE;
    if (this.#controller !== undefined) this.#abortUpstream(this.fault ?? CLIENT_CLOSED);
    if (this.#upstreamSocket !== undefined) this.#upstreamSocket.destroy();
    this.#runtime.finish(this);
  }

  /** True once an upgrade tunnel was established (the 101 went out). */
  get tunneled(): boolean {
    return this.#upstreamSocket !== undefined && this.#headWritten;
  }

  /** True once the proxy ended the downstream response (answered, error page or full body). */
  get downstreamEnded(): boolean {
    return this.#downstreamEnded;
  }

  #downstreamEnded = false;

  #responseEnded = false;

  // ---- UpstreamHandler (called by the forwarding engine) --------------------------------------

  onRequestStart(controller: UpstreamController, _context: unknown): void {
    this.#controller = controller;
    // A client that left (or a timeout that fired) while we were connecting: stop now.
    if (this.#state === STATE_DONE) controller.abort(this.fault ?? CLIENT_CLOSED);
  }

  onResponseStart(controller: UpstreamController, statusCode: number, headers: HeaderMap): void {
    if (this.#state === STATE_DONE) {
      controller.abort(this.fault ?? CLIENT_CLOSED);
      return;
    }
    const response: UpstreamResponse = { status: statusCode, headers: stripResponseHeaders(headers) };
    const pending = this.#runtime.runResponsePhases(this, response);
    if (pending === undefined) {
      this.#writeUpstreamHead(response);
      return;
    }
    // An asynchronous response phase: hold the body until the head is decided.
    controller.pause();
    this.#pendingChunks = [];
    pending.then(() => {
      if (this.#state === STATE_DONE) return;
      this.#writeUpstreamHead(response);
      const chunks = this.#pendingChunks!;
      this.#pendingChunks = undefined;
      for (const chunk of chunks) {
        this.#responseBytesLeft -= chunk.length;
        this.#writeBody(chunk);
      }
      if (this.#responseEnded) this.#endBody(undefined);
      else controller.resume();
    }, (err: unknown) => this.fail(Fault.from(err, 'err:frontline:platform:internal_server_error')));
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    this.#responseCapture?.add(chunk);
    if (this.#pendingChunks !== undefined) {
      this.#pendingChunks.push(chunk);
      return;
    }
    // Both engines end a Content-Length body in the same tick as its last chunk: keeping that chunk
    // for `end(chunk)` writes head, body and end together (for small bodies, one socket write).
    const left = this.#responseBytesLeft - chunk.length;
    if (left === 0) {
      this.#lastChunk = chunk;
      this.#responseBytesLeft = 0;
      return;
    }
    this.#responseBytesLeft = left;
    if (!this.#writeBody(chunk)) controller.pause();
  }

  onResponseEnd(_controller: UpstreamController, trailers: HeaderMap): void {
    this.#controller = undefined;
    this.#responseEnded = true;
    if (this.#pendingChunks !== undefined) return;
    this.#endBody(trailers);
  }

  onResponseError(controller: UpstreamController | undefined, error: Error): void {
    const connected = controller !== undefined || this.#controller !== undefined;
    this.#controller = undefined;
    if (this.#state === STATE_DONE) return;
    const peer = this.peer!;
    const fault = classifyUpstreamError(error, connected);
    if (!connected) {
      const decision = this.#runtime.failToConnect(this, peer, fault);
      if (decision === 'next' && this.#peerIndex + 1 < this.#peers.length && this.connectAttempts < this.#runtime.maxConnectAttempts) {
        this.#peerIndex++;
        this.#attempt();
        return;
      }
    } else {
      this.#runtime.errorWhileProxy(this, peer, fault);
    }
    this.fail(fault);
  }

  onRequestUpgrade(_controller: UpstreamController, statusCode: number, headers: HeaderMap, socket: Duplex): void {
    this.#controller = undefined;
    const client = this.upgradeSocket;
    if (this.#state === STATE_DONE || client === undefined || client.destroyed) {
      socket.destroy();
      return;
    }
    this.#upstreamSocket = socket;
    const response: UpstreamResponse = { status: statusCode, headers: stripResponseHeaders(headers) };
    response.headers.connection = 'upgrade';
    response.headers.upgrade = this.upgrade;
    const pending = this.#runtime.runResponsePhases(this, response);
    const connect = (): void => {
      if (client.destroyed) {
        socket.destroy();
        return;
      }
      this.#writeHead(response.status, response.headers);
      const head = this.#upgradeHead;
      if (head !== undefined && head.length > 0) socket.write(head);
      // Two raw pipes; either side closing or failing tears down the other. No timeout applies.
      socket.on('error', noop);
      client.on('error', noop);
      socket.pipe(client);
      client.pipe(socket);
      socket.on('close', () => client.destroy());
      client.on('close', () => socket.destroy());
    };
    if (pending === undefined) connect();
    else pending.then(connect, (err: unknown) => { socket.destroy(); this.fail(Fault.from(err, 'err:frontline:platform:internal_server_error')); });
  }

  // ---- internals ------------------------------------------------------------------------------

  #attempt(): void {
    const peer = this.#peers[this.#peerIndex]!;
    this.peer = peer;
    this.connectAttempts++;
    const dispatch = this.#dispatch!;
    if (peer.hostHeader !== undefined) dispatch.headers.host = peer.hostHeader;
    // A buffered body is a fresh stream per attempt: a refused connection consumed nothing.
    const buffered = this.#bufferedBody;
    if (buffered !== undefined && buffered.length > 0) dispatch.body = Readable.from([buffered], { objectMode: false });
    this.#runtime.engine.dispatch(peer, dispatch, this);
  }

  #hasRequestBody(): boolean {
    const req = this.req;
    // keygate's HTTP/1.1 path has read the body already (`content-length: 00` is no body too).
    if (req instanceof Http1DownstreamRequest) return req.body !== undefined;
    if (req.httpVersionMajor === 2) return (req as Http2ServerRequest).stream.endAfterHeaders === false;
    const headers = req.headers;
    if (headers['transfer-encoding'] !== undefined) return true;
    const length = headers['content-length'];
    return length !== undefined && length !== '0';
  }

  #writeUpstreamHead(response: UpstreamResponse): void {
    if (this.upgradeSocket !== undefined) {
      // An upgrade the upstream declined: relay its answer, then close (no keep-alive on this socket).
      response.headers.connection = 'close';
    }
    this.#writeHead(response.status, response.headers);
    // Node holds a head back until the first body write. A streamed response (no length: SSE,
    // chunked, gRPC) may not write for a long time, so its head goes out now. A response with a
    // length gets its body in the same tick almost always: one write instead of two.
    const contentLength = response.headers['content-length'];
    if (contentLength === undefined) {
      if (this.res !== undefined) (this.res as ServerResponse).flushHeaders?.();
    } else if (typeof contentLength === 'string' && this.req.method !== 'HEAD') {
      this.#responseBytesLeft = Number(contentLength);
    }
  }

  #writeHead(status: number, headers: HeaderMap): void {
    this.#headWritten = true;
    this.responseStatus = status;
    let extra = this.#extraHeaders;
    const requestIdHeader = this.#runtime.requestIdHeader;
    // An upstream that adopted our id (a trusted next hop) already answers with it: one id, once.
    // A new list: a head that failed its checks may be followed by an error page's, which adds the id again.
    if (requestIdHeader !== undefined && !hasValue(headers[requestIdHeader], this.requestId)) extra = extra === undefined ? [requestIdHeader, this.requestId] : [...extra, requestIdHeader, this.requestId];
    const res = this.res;
    if (res instanceof Http1DownstreamResponse) {
      if (this.#runtime.draining || this.#closeConnection) res.shouldKeepAlive = false;
      // The fast path writes the added lines after the upstream's: its header object keeps its shape.
      res.writeHead(status, headers as Record<string, string | string[]>, extra);
      return;
    }
    if (extra !== undefined) {
      for (let i = 0; i < extra.length; i += 2) appendHeader(headers, extra[i]!, extra[i + 1]!);
    }
    if (res !== undefined) {
      if ((this.#runtime.draining || this.#closeConnection) && res instanceof Object && 'shouldKeepAlive' in res) (res as ServerResponse).shouldKeepAlive = false;
      (res as ServerResponse).writeHead(status, headers as Record<string, string | string[]>);
      return;
    }
    this.upgradeSocket?.write(rawResponseHead(status, headers));
  }

  #writeBody(chunk: Buffer): boolean {
    // Both response kinds share write/once('drain'); the cast only unifies their signatures.
    const res = this.res as ServerResponse | undefined;
    if (res === undefined) return this.upgradeSocket!.write(chunk);
    if (res.write(chunk)) return true;
    // Made on the first full buffer only: most responses never need it.
    this.#drainListener ??= () => this.#controller?.resume();
    res.once('drain', this.#drainListener);
    return false;
  }

  #endBody(trailers: HeaderMap | undefined): void {
    this.#clearTimer();
    this.#state = STATE_DONE;
    this.#downstreamEnded = true;
    const res = this.res;
    const last = this.#lastChunk;
    this.#lastChunk = undefined;
    if (res === undefined) {
      this.upgradeSocket?.end(last);
      return;
    }
    if (trailers !== undefined && hasKeys(trailers)) res.addTrailers(trailers as Record<string, string>);
    // The cast only unifies the response kinds' `end` signatures.
    if (last === undefined) (res as ServerResponse).end();
    else res.end(last);
  }

  #writeErrorPage(fault: Fault): void {
    if (this.#downstreamGone || this.#headWritten) return;
    const page = renderErrorPage(fault, this.requestId, this.req.headers.accept);
    const headers: HeaderMap = { 'content-type': page.contentType, 'content-length': String(Buffer.byteLength(page.body)), 'cache-control': 'no-store' };
    if (this.upgradeSocket !== undefined) headers.connection = 'close';
    this.#writeHead(page.status, headers);
    this.#downstreamEnded = true;
    if (this.res !== undefined) this.res.end(page.body);
    else this.upgradeSocket?.end(page.body);
  }

  #destroyDownstream(fault: Fault): void {
    const res = this.res;
    if (res === undefined) {
      this.upgradeSocket?.destroy();
      return;
    }
    // HTTP/1.1: destroying the socket leaves a chunked/length-delimited body visibly incomplete;
    // HTTP/2: destroy with an error sends RST_STREAM(INTERNAL_ERROR). Never fake a clean end.
    res.destroy(fault);
  }

  #abortUpstream(reason: Error): void {
    const controller = this.#controller;
    this.#controller = undefined;
    try {
      controller?.abort(reason);
    } catch {
      // The engine already finished with this exchange.
    }
  }

  #startTotalTimer(): void {
    const runtime = this.#runtime;
    if (this.#deadline === undefined && runtime.totalTimeoutMs > 0 && this.upgrade === undefined) {
      this.#deadline = runtime.deadlines.add(this);
    }
  }

  #clearTimer(): void {
    const deadline = this.#deadline;
    if (deadline !== undefined) {
      this.#deadline = undefined;
      this.#runtime.deadlines.remove(deadline);
    }
  }

  /** Called by the runner's {@link SessionDeadlines} when the total timeout is reached → 504. */
  totalTimeoutReached(): void {
    this.#deadline = undefined;
    this.fail(Fault.expected('err:user:bad_request:request_timeout', { source: 'internal', internalMessage: `total timeout of ${this.#runtime.totalTimeoutMs} ms reached` }));
  }
}

/** One session's entry in {@link SessionDeadlines}. */
export interface SessionDeadline {
  readonly session: ProxySession;
  /** `performance.now()` ms at which the session times out. */
  readonly atMs: number;
  previous: SessionDeadline | undefined;
  next: SessionDeadline | undefined;
}

/**
 * The total timeouts of one runner's sessions, on one timer instead of one `setTimeout` (and
 * `clearTimeout`) per request. Every session of a runner has the same timeout, so the order
 * sessions start in is the order they expire in: entries form a doubly linked list, a finished
 * session unlinks in O(1), and the timer only ever looks at the head. The timer waits for the
 * head's deadline but at least `timeoutMs / 10` (≤ 1 s), so under load it fires about once per
 * that period and a timeout is late by no more than it. Unref'd: it never holds a process open.
 */
export class SessionDeadlines {
  readonly timeoutMs: number;
  readonly #minimumWaitMs: number;
  #head: SessionDeadline | undefined;
  #tail: SessionDeadline | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** `timeoutMs`: the runner's total timeout (> 0). */
  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
    this.#minimumWaitMs = Math.min(1000, Math.max(1, timeoutMs / 10));
  }

  /** Starts `session`'s timeout; pass the entry to `remove` when it ends first. Per request. */
  add(session: ProxySession): SessionDeadline {
    const entry: SessionDeadline = { session, atMs: performance.now() + this.timeoutMs, previous: this.#tail, next: undefined };
    if (this.#tail === undefined) this.#head = entry;
    else this.#tail.next = entry;
    this.#tail = entry;
    if (this.#timer === undefined) this.#arm(this.timeoutMs);
    return entry;
  }

  /** Stops an entry's timeout (the session ended). Per request; O(1). */
  remove(entry: SessionDeadline): void {
    const { previous, next } = entry;
    if (previous === undefined && this.#head !== entry) return; // already removed
    if (previous === undefined) this.#head = next;
    else previous.next = next;
    if (next === undefined) this.#tail = previous;
    else next.previous = previous;
    entry.previous = undefined;
    entry.next = undefined;
  }

  #arm(waitMs: number): void {
    this.#timer = setTimeout(this.#expire, Math.max(waitMs, this.#minimumWaitMs));
    this.#timer.unref();
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    const nowMs = performance.now();
    try {
      let head = this.#head;
      while (head !== undefined && head.atMs <= nowMs) {
        this.remove(head);
        head.session.totalTimeoutReached();
        head = this.#head;
      }
    } finally {
      // Even if one session's failure threw, the others keep their timer.
      const head = this.#head;
      if (head !== undefined && this.#timer === undefined) this.#arm(head.atMs - nowMs);
    }
  };
}

const CLIENT_CLOSED = Fault.expected('err:user:bad_request:client_closed_request');
const EMPTY_BODY = Buffer.alloc(0);

/** The first `maxBytes` of a body as it streams by. */
class BodyCaptureState {
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #keptBytes = 0;
  #totalBytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  add(chunk: Buffer): void {
    this.#totalBytes += chunk.length;
    const room = this.#maxBytes - this.#keptBytes;
    if (room <= 0) return;
    const kept = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.#chunks.push(kept);
    this.#keptBytes += kept.length;
  }

  result(): CapturedBody {
    return { bytes: Buffer.concat(this.#chunks, this.#keptBytes), totalBytes: this.#totalBytes, truncated: this.#totalBytes > this.#keptBytes };
  }
}

/** A pass-through that shows every request body chunk to a capture on its way upstream. */
class CaptureTap extends Transform {
  readonly #capture: BodyCaptureState;

  constructor(capture: BodyCaptureState) {
    super();
    this.#capture = capture;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#capture.add(chunk);
    callback(null, chunk);
  }
}

function hasValue(existing: string | string[] | undefined, value: string): boolean {
  return existing === value || (Array.isArray(existing) && existing.includes(value));
}

function noop(): void {}

function hasKeys(object: object): boolean {
  for (const _ in object) return true;
  return false;
}

/** Adds `value` to a header map without replacing what is there (arrays for repeats). */
function appendHeader(headers: HeaderMap, name: string, value: string): void {
  const existing = headers[name];
  if (existing === undefined) headers[name] = value;
  else if (typeof existing === 'string') headers[name] = [existing, value];
  else existing.push(value);
}

/** An HTTP/1.1 response head for a raw socket (upgrade requests). */
function rawResponseHead(status: number, headers: HeaderMap): string {
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Status'}\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') head += `${name}: ${value}\r\n`;
    else for (const item of value) head += `${name}: ${item}\r\n`;
  }
  return head + '\r\n';
}

const STATUS_TEXT: Record<number, string> = {
  101: 'Switching Protocols', 200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  426: 'Upgrade Required', 429: 'Too Many Requests', 499: 'Client Closed Request', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout', 508: 'Loop Detected',
};

/** Lower-cases a Host value and removes its port, a trailing dot and IPv6 brackets. */
export function normalizeHost(authority: string): string {
  let host = authority;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    host = end === -1 ? host.slice(1) : host.slice(1, end);
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host.toLowerCase();
}
