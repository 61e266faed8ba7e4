/**
 * `HttpServer`: keygate's small HTTP kernel. Routes are compiled at registration and the
 * middleware chain is composed once (at `listen`, the first `inject` or the first request); the
 * per-request path only looks things up.
 *
 * Built-in layers, outermost first, run inline for every request:
 *   request id → access log → metrics → error translation → timeout → body limit
 *   → server-wide middlewares → route middlewares → handler.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Fault } from '../fault.ts';
import { newRequestId } from '../id.ts';
import { createLogger } from '../log.ts';
import type { Logger } from '../log.ts';
import { defaultMetrics } from '../metrics.ts';
import type { Metrics } from '../metrics.ts';
import { apiErrorBody } from './api-error-body.ts';
import { Http1Connection, type Http1ConnectionOwner, type Http1Exchange } from './http1-connection.ts';
import { HTTP_METHODS } from './interface.ts';
import type { ErrorBodyBuilder, Handler, HttpMethod, HttpReply, InjectRequest, InjectResponse, Middleware, Next, RouteOptions } from './interface.ts';
import { bodyTooLarge, hasBody, readBody } from './read-body.ts';
import { RequestContext } from './request-context.ts';
import type { RequestContextOwner } from './request-context.ts';
import { Router } from './router.ts';
import type { RouteMatch } from './router.ts';

/** Default handler deadline (→ 408), as in the reference. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** Default body limit (→ 413): 10 MiB, as in the reference. */
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Default bound on how long `close()` waits for in-flight requests. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** Default time a client has to send the request headers (Node's `headersTimeout`). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** Default time a client has to send the whole request, headers and body (Node's `requestTimeout`). */
export const DEFAULT_REQUEST_RECEIVE_TIMEOUT_MS = 30_000;
/** Default idle time before a keep-alive connection is closed. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** Default bound on the size of the request headers. */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
/** Paths kept out of the access log by default: liveness probes and metric scrapes. */
export const DEFAULT_ACCESS_LOG_SKIP_PATHS: readonly string[] = ['/v2/liveness', '/metrics', '/healthz', '/livez', '/readyz', '/health/live', '/health/ready'];

/** Options of {@link HttpServer}; every bound has a named default. */
export interface HttpServerOptions {
  /** Root logger; the access log and error lines go here. Default: `createLogger({ name: 'http' })`. */
  logger?: Logger;
  /** Where `keygate_http_*` metrics are registered. Default: the process-wide `defaultMetrics`. */
  metrics?: Metrics;
  /** Handler deadline in ms → 408 `request_timeout`. Default {@link DEFAULT_REQUEST_TIMEOUT_MS}; 0 disables. */
  requestTimeoutMs?: number;
  /** Body limit in bytes → 413. Default {@link DEFAULT_MAX_BODY_BYTES}. */
  maxBodyBytes?: number;
  /** Bound on waiting for in-flight requests in `close()`. Default {@link DEFAULT_DRAIN_TIMEOUT_MS}. */
  drainTimeoutMs?: number;
  /** Default {@link DEFAULT_HEADERS_TIMEOUT_MS}. */
  headersTimeoutMs?: number;
  /** Default {@link DEFAULT_REQUEST_RECEIVE_TIMEOUT_MS}. */
  requestReceiveTimeoutMs?: number;
  /** Default {@link DEFAULT_KEEP_ALIVE_TIMEOUT_MS}. */
  keepAliveTimeoutMs?: number;
  /** Default {@link DEFAULT_MAX_HEADER_BYTES}. */
  maxHeaderBytes?: number;
  /** Exact paths kept out of the access log. Default {@link DEFAULT_ACCESS_LOG_SKIP_PATHS}. */
  accessLogSkipPaths?: readonly string[];
  /** Builds error responses. Default {@link apiErrorBody} (the API envelope). */
  errorBody?: ErrorBodyBuilder;
  /**
   * Who parses HTTP/1.1 on `listen()`: `keygate` (default) runs the common request shape on
   * keygate's own connection handler (`http1-connection.ts`) and hands any other connection to
   * node:http; `node` uses node:http for everything.
   */
  http1Parser?: Http1Parser;
}

/** The HTTP/1.1 request path of a listening {@link HttpServer}. */
export type Http1Parser = 'keygate' | 'node';

/** A registered route, as the kernel keeps it. */
interface CompiledRoute {
  readonly label: string;
  readonly run: Next;
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
  readonly accessLog: boolean;
}

/**
 * Pre-bound metric children for one (method, route, status). Requests are counted in a plain
 * number and published to the prom-client counter only when scraped (`Metrics.onCollect`), so
 * the hot path pays one increment instead of a labelled counter update.
 */
interface MetricChildren {
  readonly requests: { inc(value?: number): void };
  readonly duration: { observe(value: number): void };
  /** Requests answered since the last scrape. */
  unpublishedRequests: number;
}

/** The per-request data the kernel keeps beside the public context. */
interface KernelState {
  readonly route: CompiledRoute | undefined;
  /** Set when the declared body was over this limit (keygate's HTTP/1.1 path): answer 413. */
  readonly refusedBodyLimit: number | undefined;
  readonly match: RouteMatch<CompiledRoute>;
  /** The handler deadline of this request, ms (0: none). */
  readonly timeoutMs: number;
  /** Armed at the end of the event-loop turn if the request is still running then. */
  timer: NodeJS.Timeout | undefined;
  inject: ((response: InjectResponse) => void) | undefined;
  injectedBody: Buffer | undefined;
}

const UNMATCHED_ROUTE_LABEL = '(unmatched)';
/** Method → small index for numeric metric keys; methods outside the list share the `OTHER` label. */
const METHOD_INDEX = new Map<string, number>(HTTP_METHODS.map((method, index) => [method, index + 1]));
const EMPTY_BUFFER = Buffer.alloc(0);

/**
 * The HTTP server kernel. Register routes and middlewares, then `listen` (or `inject` in tests).
 * One instance per listener; `close()` drains it gracefully.
 */
export class HttpServer implements RequestContextOwner {
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #requestTimeoutMs: number;
  readonly #maxBodyBytes: number;
  readonly #drainTimeoutMs: number;
  readonly #headersTimeoutMs: number;
  readonly #requestReceiveTimeoutMs: number;
  readonly #keepAliveTimeoutMs: number;
  readonly #maxHeaderBytes: number;
  readonly #accessLogSkipPaths: ReadonlySet<string>;
  readonly #errorBody: ErrorBodyBuilder;
  readonly #http1Parser: Http1Parser;
  /** Connections on keygate's HTTP/1.1 path (node:http tracks the others). */
  readonly #connections = new Set<Http1Connection>();
  readonly #router = new Router<CompiledRoute>();
  readonly #middlewares: Middleware[] = [];
  /** Pre-bound metric children per route label, keyed by `methodIndex * 1000 + status` (no string hashing per request). */
  readonly #metricChildren = new Map<string, Map<number, MetricChildren>>();
  #requestsTotal: ReturnType<Metrics['counter']> | undefined;
  #requestDuration: ReturnType<Metrics['localHistogram']> | undefined;
  #chain: Next | undefined;
  #stopPublishing: (() => void) | undefined;
  #server: Server | undefined;
  #draining = false;
  #closing: Promise<void> | undefined;
  #inFlight = 0;
  #onIdle: (() => void) | undefined;
  /** Requests of the current event-loop turn whose deadline timer is not armed yet. */
  #unarmed: RequestContext[] = [];
  #armScheduled = false;

  constructor(options: HttpServerOptions = {}) {
    this.#logger = options.logger ?? createLogger({ name: 'http' });
    this.#metrics = options.metrics ?? defaultMetrics;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    this.#headersTimeoutMs = options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
    this.#requestReceiveTimeoutMs = options.requestReceiveTimeoutMs ?? DEFAULT_REQUEST_RECEIVE_TIMEOUT_MS;
    this.#keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
    this.#maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    this.#accessLogSkipPaths = new Set(options.accessLogSkipPaths ?? DEFAULT_ACCESS_LOG_SKIP_PATHS);
    this.#errorBody = options.errorBody ?? apiErrorBody;
    this.#http1Parser = options.http1Parser ?? 'keygate';
  }

  /** True once `close()` was called: responses carry `connection: close`, no new connections. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Requests received and not yet answered. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Open connections on keygate's own HTTP/1.1 path (not those handed to node:http). */
  get openHttp1Connections(): number {
    return this.#connections.size;
  }

  /** The bound address while listening. */
  get address(): AddressInfo | undefined {
    const address = this.#server?.address();
    return address !== null && typeof address === 'object' ? address : undefined;
  }

  /**
   * Registers a route: an exact path or one with `:name` segments. Allowed at any time (its own
   * middleware chain is composed here, once). Throws `err:keygate:http:invalid_registration`
   * for a duplicate or a malformed pattern.
   */
  route(method: HttpMethod, path: string, handler: Handler, options: RouteOptions = {}): this {
    const route: CompiledRoute = {
      label: options.name ?? path,
      run: compose(options.middleware ?? [], handler),
      timeoutMs: options.timeoutMs ?? this.#requestTimeoutMs,
      maxBodyBytes: options.maxBodyBytes ?? this.#maxBodyBytes,
      accessLog: options.accessLog ?? !this.#accessLogSkipPaths.has(path),
    };
    this.#router.add(method, path, route);
    return this;
  }

  /**
   * Adds a server-wide middleware; they run in the order added, inside the built-in layers and
   * outside the route's own middlewares, for every request (unmatched ones included). Only
   * before the chain is composed (first `listen`, `inject` or request); later it throws.
   */
  use(middleware: Middleware): this {
    if (this.#chain !== undefined) {
      throw new Fault('err:keygate:http:invalid_registration', { internalMessage: 'HttpServer.use() after the middleware chain was composed (listen/inject/first request)' });
    }
    this.#middlewares.push(middleware);
    return this;
  }

  /** Starts listening. Resolves with the bound address; rejects with `err:keygate:http:listen_failed`. */
  listen(options: { port: number; host?: string }): Promise<AddressInfo> {
    if (this.#server !== undefined) {
      return Promise.reject(new Fault('err:keygate:http:listen_failed', { internalMessage: 'HttpServer.listen() called twice' }));
    }
    this.#freeze();
    const server = createServer({
      maxHeaderSize: this.#maxHeaderBytes,
      headersTimeout: this.#headersTimeoutMs,
      requestTimeout: this.#requestReceiveTimeoutMs,
      keepAliveTimeout: this.#keepAliveTimeoutMs,
      // Node checks the two receive timeouts on this interval (30 s by default, far too coarse).
      connectionsCheckingInterval: Math.min(1_000, this.#headersTimeoutMs),
    }, this.handle);
    if (this.#http1Parser === 'keygate') this.#takeConnections(server);
    this.#server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        this.#server = undefined;
        reject(new Fault('err:keygate:http:listen_failed', { internalMessage: `listen on ${options.host ?? '::'}:${options.port} failed: ${err.message}`, cause: err }));
      };
      server.once('error', onError);
      server.listen(options.port, options.host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.#logger.error({ err }, 'http server error'));
        resolve(server.address() as AddressInfo);
      });
    });
  }

  /**
   * Graceful shutdown: stops accepting connections, sets `draining`, waits for in-flight
   * requests (at most `drainTimeoutMs`), then closes the remaining (idle) connections.
   * Idempotent: later calls return the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#drainAndClose();
    return this.#closing;
  }

  /**
   * The raw `(req, res)` listener, for mounting the kernel on a server made elsewhere.
   * Called once per request; never throws.
   */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.#chain === undefined) this.#freeze();
    const ctx = new RequestContext(this, this.#logger, newRequestId(), req.method ?? 'GET', req.url ?? '/', req.headers, req, res);
    this.#start(ctx, undefined, undefined);
  };

  /**
   * Runs one request through the whole chain without a socket (tests, in-process callers).
   * Timeouts, body limits, error translation, metrics and the access log all apply.
   */
  inject(request: InjectRequest): Promise<InjectResponse> {
    if (this.#chain === undefined) this.#freeze();
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;
    const body = injectedBody(request.body, headers);
    if (body.length > 0) headers['content-length'] ??= String(body.length);
    return new Promise<InjectResponse>((resolve) => {
      const ctx = new RequestContext(this, this.#logger, newRequestId(), request.method.toUpperCase(), request.url, headers, undefined, undefined, request.remoteAddress ?? '127.0.0.1');
      const signal = request.signal;
      if (signal !== undefined) {
        if (signal.aborted) queueMicrotask(() => ctx.injectedClientClosed());
        else signal.addEventListener('abort', () => ctx.injectedClientClosed(), { once: true });
      }
      this.#start(ctx, resolve, body);
    });
  }

  /** @internal Called by a context whose client went away before the response: logs 499. */
  clientClosed(ctx: RequestContext): void {
    this.#finishWithFault(ctx, ctx.abortReason);
  }

  /** Timer callback (no closure per request): the deadline passed → abort the handler, answer 408. */
  static #onRequestTimeout(server: HttpServer, ctx: RequestContext, timeoutMs: number): void {
    if (ctx.finished) return;
    const fault = Fault.expected('err:user:bad_request:request_timeout', {
      publicMessage: `The request did not complete within ${timeoutMs} ms.`,
      source: 'internal',
    });
    ctx.abort(fault);
    server.#finishWithFault(ctx, fault);
  }

  /**
   * Makes keygate's HTTP/1.1 path the listener's connection handler. node:http's own handler is
   * kept: connections that leave the fast path continue there (with the bytes already read), and
   * node's header and receive timeouts then apply to them as usual.
   */
  #takeConnections(server: Server): void {
    const nodeListeners = server.listeners('connection') as Array<(socket: Socket) => void>;
    server.removeAllListeners('connection');
    const limits = {
      maxHeaderBytes: this.#maxHeaderBytes,
      headersTimeoutMs: this.#headersTimeoutMs,
      requestReceiveTimeoutMs: this.#requestReceiveTimeoutMs,
      keepAliveTimeoutMs: this.#keepAliveTimeoutMs,
    };
    const connections = this.#connections;
    const owner: Http1ConnectionOwner = {
      bodyLimitFor: (exchange) => {
        const match = this.#router.find(exchange.method, pathOf(exchange.url));
        exchange.route = match;
        return match.kind === 'found' ? match.value.maxBodyBytes : this.#maxBodyBytes;
      },
      request: (exchange) => this.#startExchange(exchange, undefined),
      bodyTooLarge: (exchange, limitBytes) => this.#startExchange(exchange, limitBytes),
      handOff: (socket, unread) => {
        if (unread !== undefined) socket.unshift(unread);
        for (const listener of nodeListeners) listener.call(server, socket);
      },
      closed: (connection) => connections.delete(connection),
    };
    server.on('connection', (socket: Socket) => {
      if (this.#draining) {
        socket.destroy();
        return;
      }
      connections.add(new Http1Connection(socket, owner, limits));
    });
  }

  /** Runs a request of keygate's HTTP/1.1 path (the route was matched in `bodyLimitFor`). */
  #startExchange(exchange: Http1Exchange, refusedBodyLimit: number | undefined): void {
    if (this.#chain === undefined) this.#freeze();
    const ctx = new RequestContext(this, this.#logger, newRequestId(), exchange.method, exchange.url, exchange.headers, undefined, undefined);
    ctx.exchange = exchange;
    this.#start(ctx, undefined, exchange.body, exchange.route as RouteMatch<CompiledRoute>, refusedBodyLimit);
  }

  #start(ctx: RequestContext, inject: KernelState['inject'], body: Buffer | undefined, knownMatch?: RouteMatch<CompiledRoute>, refusedBodyLimit?: number): void {
    this.#inFlight++;
    const match = knownMatch ?? this.#router.find(ctx.method, ctx.path);
    let route: CompiledRoute | undefined;
    if (match.kind === 'found') {
      route = match.value;
      ctx.params = match.params;
    }
    const timeoutMs = route?.timeoutMs ?? this.#requestTimeoutMs;
    const state: KernelState = {
      route,
      refusedBodyLimit,
      match,
      timeoutMs,
      timer: undefined,
      inject,
      injectedBody: body,
    };
    ctx.kernel = state;
    if (timeoutMs > 0) {
      // Most requests finish within the event-loop turn that received them; their deadline timer
      // is only armed (with the time left) for those still running when the turn ends, so the
      // common request never creates or clears a timer.
      this.#unarmed.push(ctx);
      if (!this.#armScheduled) {
        this.#armScheduled = true;
        setImmediate(this.#armDeadlines);
      }
    }
    void this.#dispatch(ctx, state);
  }

  /** End of an event-loop turn: arms the deadline of every request of the turn still running. */
  readonly #armDeadlines = (): void => {
    this.#armScheduled = false;
    const contexts = this.#unarmed;
    this.#unarmed = [];
    const nowMs = performance.now();
    for (const ctx of contexts) {
      if (ctx.finished) continue;
      const state = ctx.kernel as KernelState;
      const remainingMs = Math.max(0, state.timeoutMs - (nowMs - ctx.startedAtMs));
      state.timer = setTimeout(HttpServer.#onRequestTimeout, remainingMs, this, ctx, state.timeoutMs);
      // With a socket, the deadline is unref'd: the open socket keeps the process alive, and a
      // request abandoned at shutdown must not hold it open until its deadline. Under inject()
      // nothing else would keep the loop alive, so the timer stays ref'd there.
      if (ctx.req !== undefined || ctx.exchange !== undefined) state.timer.unref();
    }
  };

  async #dispatch(ctx: RequestContext, state: KernelState): Promise<void> {
    let reply: HttpReply;
    try {
      // Body limit: the innermost built-in layer, inside the timeout.
      const maxBodyBytes = state.route?.maxBodyBytes ?? this.#maxBodyBytes;
      if (ctx.exchange !== undefined) {
        // Read (and its declared length checked against this route's limit) by the connection.
        if (state.refusedBodyLimit !== undefined) throw bodyTooLarge(state.refusedBodyLimit);
        if (state.injectedBody !== undefined) ctx.rawBody = state.injectedBody;
      } else if (ctx.req !== undefined) {
        if (hasBody(ctx.req)) ctx.rawBody = await readBody(ctx.req, maxBodyBytes);
      } else if (state.injectedBody !== undefined && state.injectedBody.length > 0) {
        if (state.injectedBody.length > maxBodyBytes) throw bodyTooLarge(maxBodyBytes);
        ctx.rawBody = state.injectedBody;
      }
      if (ctx.finished) return;
      const result = this.#chain!(ctx);
      reply = result instanceof Promise ? await result : result;
    } catch (err) {
      if (ctx.finished) return;
      reply = this.#errorReply(ctx, err);
    }
    this.#finish(ctx, reply);
  }

  /** The innermost step of the server-wide chain: the route's own chain, or 404 / 405. */
  #dispatchRoute = (ctx: RequestContext): HttpReply | Promise<HttpReply> => {
    const state = ctx.kernel as KernelState;
    if (state.route !== undefined) return state.route.run(ctx);
    throw routeMissFault(state.match);
  };

  #freeze(): void {
    this.#chain = compose(this.#middlewares, this.#dispatchRoute);
    this.#requestsTotal = this.#metrics.counter('keygate_http_requests_total', 'HTTP requests answered, by method, route and status.', ['method', 'route', 'status']);
    this.#stopPublishing = this.#metrics.onCollect('keygate_http_requests_total', () => this.#publishRequestCounts());
    this.#requestDuration = this.#metrics.localHistogram('keygate_http_request_duration_seconds', 'Time from request arrival to response, by method, route and status.', ['method', 'route', 'status']);
  }

  /** Error translation: a fault keeps its code; anything else becomes a masked 500. */
  #errorReply(ctx: RequestContext, err: unknown): HttpReply {
    let fault: Fault;
    if (err instanceof Fault) fault = err;
    else if (ctx.abortReason instanceof Fault) fault = ctx.abortReason; // the handler gave up because we aborted it
    else {
      fault = new Fault('err:unkey:application:unexpected_error', {
        publicMessage: 'An unexpected error occurred; it has been logged with this request id.',
        internalMessage: err instanceof Error ? err.message : String(err),
        cause: err,
      });
    }
    ctx.faultCode = fault.code;
    if (fault.status >= 500) {
      // The internal message and stack go to the log only; the client sees the public message.
      this.#logger.error({ requestId: ctx.requestId, code: fault.code, internalMessage: fault.internalMessage, err: fault.cause ?? fault }, 'request failed');
    }
    if (fault.code === 'err:user:bad_request:request_body_too_large') ctx.closeConnection = true;
    const built = this.#errorBody(fault, ctx.requestId);
    const headers: Record<string, string> = { ...built.headers };
    if (headers['content-type'] === undefined) {
      const accept = ctx.headers.accept;
      headers['content-type'] = accept !== undefined && accept.includes('application/problem+json') ? 'application/problem+json' : 'application/json';
    }
    if (fault.code === 'err:unkey:application:method_not_allowed') {
      const match = (ctx.kernel as KernelState | undefined)?.match;
      if (match?.kind === 'method_not_allowed') headers.allow = match.allow;
    }
    return { status: built.status, headers, body: built.body };
  }

  #finishWithFault(ctx: RequestContext, reason: unknown): void {
    if (ctx.finished) return;
    this.#finish(ctx, this.#errorReply(ctx, reason));
  }

  /** Writes the reply (once), then records metrics and the access log line. */
  #finish(ctx: RequestContext, reply: HttpReply): void {
    if (ctx.finished) return;
    ctx.finished = true;
    const state = ctx.kernel as KernelState;
    if (state.timer !== undefined) clearTimeout(state.timer);
    let status = reply.status ?? 200;
    const res = ctx.res;
    if (ctx.clientGone || (res !== undefined && res.destroyed) || ctx.exchange?.connectionClosed === true) {
      // Nobody to answer: record the outcome as the conventional 499.
      status = 499;
      ctx.faultCode = 'err:user:bad_request:client_closed_request';
    } else {
      try {
        this.#write(ctx, state, status, reply);
      } catch (err) {
        // A reply that cannot be serialized (a cycle, a BigInt) is our bug: answer 500 instead.
        const fallback = this.#errorReply(ctx, err);
        status = fallback.status ?? 500;
        // A writeHead that threw on a header has already set the first status's reason phrase;
        // cleared so the fallback's status line carries its own ("500 Internal Server Error").
        if (res !== undefined && !res.headersSent) res.statusMessage = '';
        this.#write(ctx, state, status, fallback);
      }
    }
    this.#record(ctx, state, status);
    if (--this.#inFlight === 0 && this.#onIdle !== undefined) this.#onIdle();
  }

  #write(ctx: RequestContext, state: KernelState, status: number, reply: HttpReply): void {
    const body = reply.body;
    let payload: string | Uint8Array | undefined;
    let defaultType: string | undefined;
    if (body === undefined || body === null) payload = undefined;
    else if (typeof body === 'string') {
      payload = body;
      defaultType = 'text/plain; charset=utf-8';
    } else if (body instanceof Uint8Array) {
      payload = body;
      defaultType = 'application/octet-stream';
    } else {
      payload = JSON.stringify(body);
      defaultType = 'application/json';
    }
    if (reply.contentType !== undefined && payload !== undefined) defaultType = reply.contentType;
    const extra = ctx.responseHeaders;
    const res = ctx.res;
    const hasBodyStatus = status >= 200 && status !== 204 && status !== 304;
    const exchange = ctx.exchange;
    if (exchange !== undefined) {
      if (!hasBodyStatus) payload = undefined;
      exchange.respond(status, flatHeaders(extra, reply.headers, defaultType, hasBodyStatus, payload), payload, this.#draining || ctx.closeConnection);
      return;
    }
    if (res !== undefined && extra === undefined && reply.headers === undefined) {
      // The common case (no extra headers): a flat header list, which Node writes without
      // walking an object's keys.
      if (!hasBodyStatus) payload = undefined;
      const contentLength = payload === undefined ? 0 : typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
      const flat: string[] = [];
      if (defaultType !== undefined) flat.push('content-type', defaultType);
      if (hasBodyStatus) flat.push('content-length', String(contentLength));
      if (this.#draining || ctx.closeConnection) flat.push('connection', 'close');
      res.writeHead(status, flat);
      res.end(payload);
      return;
    }
    const headers: Record<string, string | number> = {};
    if (extra !== undefined) Object.assign(headers, extra);
    if (reply.headers !== undefined) Object.assign(headers, reply.headers);
    if (defaultType !== undefined && headers['content-type'] === undefined) headers['content-type'] = defaultType;
    // 1xx, 204 and 304 responses have no body and must not announce one.
    if (hasBodyStatus) {
      headers['content-length'] = payload === undefined ? 0 : typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
    } else {
      payload = undefined;
    }
    if (this.#draining || ctx.closeConnection) headers.connection = 'close';
    if (res !== undefined) {
      res.writeHead(status, headers);
      res.end(payload);
      return;
    }
    state.inject?.(injectResponse(status, headers, payload));
  }

  #record(ctx: RequestContext, state: KernelState, status: number): void {
    const latencySeconds = (performance.now() - ctx.startedAtMs) / 1000;
    const routeLabel = state.route?.label ?? UNMATCHED_ROUTE_LABEL;
    const methodIndex = METHOD_INDEX.get(ctx.method) ?? 0;
    const key = methodIndex * 1000 + status;
    let byKey = this.#metricChildren.get(routeLabel);
    if (byKey === undefined) {
      byKey = new Map();
      this.#metricChildren.set(routeLabel, byKey);
    }
    let children = byKey.get(key);
    if (children === undefined) {
      const methodLabel = methodIndex === 0 ? 'OTHER' : ctx.method;
      const statusLabel = String(status);
      children = {
        requests: this.#requestsTotal!.labels(methodLabel, routeLabel, statusLabel),
        duration: this.#requestDuration!.labels(methodLabel, routeLabel, statusLabel),
        unpublishedRequests: 0,
      };
      byKey.set(key, children);
    }
    children.unpublishedRequests++;
    children.duration.observe(latencySeconds);
    if (state.route === undefined ? this.#accessLogSkipPaths.has(ctx.path) : !state.route.accessLog) return;
    // Checked first so that a logger above `info` costs no line object per request.
    if (!this.#logger.isLevelEnabled('info')) return;
    this.#logger.info({
      requestId: ctx.requestId,
      method: ctx.method,
      path: ctx.path,
      route: routeLabel,
      status,
      latencyMs: Math.round(latencySeconds * 1_000_000) / 1000,
      code: ctx.faultCode,
    }, 'request');
  }

  /** Scrape time: moves the plain request counts into the prom-client counter. */
  #publishRequestCounts(): void {
    for (const byKey of this.#metricChildren.values()) {
      for (const children of byKey.values()) {
        if (children.unpublishedRequests === 0) continue;
        children.requests.inc(children.unpublishedRequests);
        children.unpublishedRequests = 0;
      }
    }
  }

  async #drainAndClose(): Promise<void> {
    this.#draining = true;
    const server = this.#server;
    const closed = server === undefined ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    // New connections are refused from here on; idle keep-alive connections can go now.
    server?.closeIdleConnections();
    for (const connection of this.#connections) if (connection.idle) connection.destroy();
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#logger.warn({ inFlight: this.#inFlight, drainTimeoutMs: this.#drainTimeoutMs }, 'drain timeout: closing with requests in flight');
          resolve();
        }, this.#drainTimeoutMs);
        this.#onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#onIdle = undefined;
    }
    // In-flight responses carried `connection: close`; whatever remains is idle or abandoned.
    server?.closeAllConnections();
    for (const connection of this.#connections) connection.destroy();
    await closed;
    // Counts answered so far stay visible; later scrapes no longer call into this server.
    this.#publishRequestCounts();
    this.#stopPublishing?.();
  }
}

/** The path part of a request target (no query). */
function pathOf(url: string): string {
  const queryStart = url.indexOf('?');
  return queryStart === -1 ? url : url.slice(0, queryStart);
}

/**
 * The response headers of keygate's HTTP/1.1 path as a flat `[name, value, …]` list: the
 * context's extra headers, then the reply's (which win), the default content type unless one was
 * given, and `content-length` for statuses that carry a body.
 */
function flatHeaders(
  extra: Readonly<Record<string, string>> | undefined,
  replyHeaders: Record<string, string> | undefined,
  defaultType: string | undefined,
  hasBodyStatus: boolean,
  payload: string | Uint8Array | undefined,
): string[] {
  const flat: string[] = [];
  let hasContentType = false;
  if (extra !== undefined) {
    for (const name in extra) {
      if (replyHeaders !== undefined && replyHeaders[name] !== undefined) continue;
      if (name === 'content-length' || name === 'connection') continue;
      if (name === 'content-type') hasContentType = true;
      flat.push(name, String(extra[name]));
    }
  }
  if (replyHeaders !== undefined) {
    for (const name in replyHeaders) {
      if (name === 'content-length' || name === 'connection') continue;
      if (name === 'content-type') hasContentType = true;
      flat.push(name, String(replyHeaders[name]));
    }
  }
  if (defaultType !== undefined && !hasContentType) flat.push('content-type', defaultType);
  if (hasBodyStatus) flat.push('content-length', String(payload === undefined ? 0 : typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength));
  return flat;
}

/** Composes `middlewares` around `last` once; the result is called per request. */
function compose(middlewares: readonly Middleware[], last: Next): Next {
  let next = last;
  for (let index = middlewares.length - 1; index >= 0; index--) {
    const middleware = middlewares[index]!;
    const inner = next;
    next = (ctx) => middleware(ctx, inner);
  }
  return next;
}

function routeMissFault(match: RouteMatch<CompiledRoute>): Fault {
  if (match.kind === 'method_not_allowed') {
    return Fault.expected('err:unkey:application:method_not_allowed', { publicMessage: `This route does not accept this method; allowed: ${match.allow}.` });
  }
  return Fault.expected('err:unkey:application:not_found', { publicMessage: 'No route matches this path.' });
}

function injectedBody(body: unknown, headers: Record<string, string>): Buffer {
  if (body === undefined || body === null) return EMPTY_BUFFER;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  headers['content-type'] ??= 'application/json';
  return Buffer.from(JSON.stringify(body));
}

function injectResponse(status: number, headers: Record<string, string | number>, payload: string | Uint8Array | undefined): InjectResponse {
  const textHeaders: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) textHeaders[name] = String(value);
  const body = payload === undefined ? '' : typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8');
  return { status, headers: textHeaders, body, json: <T>() => JSON.parse(body) as T };
}
