/**
 * `RequestContext`: everything a handler or middleware knows about one request. Created once
 * per request by the kernel; the costly parts (query parsing, the abort signal, the child
 * logger, the state bag) are built only when first read, so a handler that does not use them
 * does not pay for them.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Fault } from '../fault.ts';
import type { Logger } from '../log.ts';
import type { Http1Exchange } from './http1-connection.ts';

/** The kernel side of a context: told when the client goes away, and the root logger. */
export interface RequestContextOwner {
  /** Called at most once, when the client closes the connection before the response. */
  clientClosed(ctx: RequestContext): void;
}

const UNPARSED: unique symbol = Symbol('unparsed');
const EMPTY_BODY = Buffer.alloc(0);
const EMPTY_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * One request as handlers see it. Public fields are the agreed interface; fields documented
 * as "kernel" are written by `HttpServer` and should only be read by handlers.
 */
export class RequestContext {
  /** `req_` + 9 alphanumeric characters; always generated here, never taken from the client. */
  readonly requestId: string;
  /** Upper-case method as sent by the client. */
  readonly method: string;
  /** The path without the query string, not decoded. */
  readonly path: string;
  /** Lower-cased request headers (Node's `IncomingHttpHeaders`). */
  readonly headers: IncomingHttpHeaders;
  /** Values of the route's `:param` segments, percent-decoded. Empty for exact routes. */
  params: Readonly<Record<string, string>> = EMPTY_PARAMS;
  /** The whole request body, read before the handler runs and bounded by `maxBodyBytes`. */
  rawBody: Buffer = EMPTY_BODY;

  /** Kernel: the Node request, undefined under `inject()`. */
  readonly req: IncomingMessage | undefined;
  /** Kernel: the Node response, undefined under `inject()` and on keygate's HTTP/1.1 path. */
  readonly res: ServerResponse | undefined;
  /** Kernel: the request on keygate's own HTTP/1.1 path (`Http1Connection`), else undefined. */
  exchange: Http1Exchange | undefined = undefined;
  /** Kernel: `performance.now()` when the request arrived, for the latency. */
  readonly startedAtMs: number;
  /** Kernel: true once a response has been written (or given up on); later results are dropped. */
  finished = false;
  /** Kernel: true once the client has gone away. */
  clientGone = false;
  /** Kernel: the fault code of the error reply, for the access log. */
  faultCode: string | undefined;
  /** Kernel: close the connection after this response (a body that was not read to its end). */
  closeConnection = false;
  /** Kernel: the owning server's private per-request data. */
  kernel: unknown = undefined;

  readonly #owner: RequestContextOwner;
  readonly #rootLogger: Logger;
  readonly #search: string;
  readonly #remoteAddress: string | undefined;
  #query: URLSearchParams | undefined;
  #json: unknown = UNPARSED;
  #jsonFault: Fault | undefined;
  #abortController: AbortController | undefined;
  #abortReason: unknown;
  #log: Logger | undefined;
  #state: Record<string, unknown> | undefined;
  #responseHeaders: Record<string, string> | undefined;

  constructor(
    owner: RequestContextOwner,
    rootLogger: Logger,
    requestId: string,
    method: string,
    url: string,
    headers: IncomingHttpHeaders,
    req: IncomingMessage | undefined,
    res: ServerResponse | undefined,
    remoteAddress?: string,
  ) {
    this.#owner = owner;
    this.#rootLogger = rootLogger;
    this.requestId = requestId;
    this.method = method;
    const queryStart = url.indexOf('?');
    this.path = queryStart === -1 ? url : url.slice(0, queryStart);
    this.#search = queryStart === -1 ? '' : url.slice(queryStart + 1);
    this.headers = headers;
    this.req = req;
    this.res = res;
    this.#remoteAddress = remoteAddress;
    this.startedAtMs = performance.now();
  }

  /** The query string, parsed on first access. */
  get query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(this.#search));
  }

  /** The client's address (the socket's peer; proxies' headers are not trusted here). */
  get remoteAddress(): string {
    return this.req?.socket.remoteAddress ?? this.exchange?.remoteAddress ?? this.#remoteAddress ?? '';
  }

  /**
   * The connection this request arrived on, as an opaque identity (the same object for every
   * request of one keep-alive connection), for memos that must not outlive it; undefined under
   * `inject()`. Use it only as a WeakMap key.
   */
  get connection(): object | undefined {
    return this.exchange?.connection ?? this.req?.socket ?? undefined;
  }

  /** A logger that adds `requestId` to every line, created on first access. */
  get log(): Logger {
    return (this.#log ??= this.#rootLogger.child({ requestId: this.requestId }));
  }

  /** A per-request bag for middlewares to pass things to handlers (e.g. the authenticated principal). */
  get state(): Record<string, unknown> {
    return (this.#state ??= {});
  }

  /**
   * Aborts when the client goes away (reason: a `client_closed_request` fault) or the deadline
   * passes (reason: a `request_timeout` fault). Created on first access: only then does the
   * kernel watch the connection for an early close.
   */
  get signal(): AbortSignal {
    if (this.#abortController === undefined) {
      this.#abortController = new AbortController();
      if (this.#abortReason !== undefined) {
        this.#abortController.abort(this.#abortReason);
      } else if (this.res !== undefined && !this.finished) {
        if (this.res.destroyed) this.#onClientClose();
        else this.res.once('close', () => this.#onClientClose());
      } else if (this.exchange !== undefined && !this.finished) {
        if (this.exchange.connectionClosed) this.#onClientClose();
        else this.exchange.onConnectionClose(() => this.#onClientClose());
      }
    }
    return this.#abortController.signal;
  }

  /**
   * The body parsed as JSON, parsed once and cached. Throws a `Fault`
   * (`err:user:bad_request:request_body_unreadable`, 400) for an empty body or invalid JSON.
   * Validating the shape is the route's job (ajv schema → `invalid_input`).
   */
  json<T = unknown>(): T {
    if (this.#json === UNPARSED) {
      if (this.#jsonFault !== undefined) throw this.#jsonFault;
      if (this.rawBody.length === 0) {
        this.#jsonFault = Fault.expected('err:user:bad_request:request_body_unreadable', {
          publicMessage: 'The request body is empty; a JSON body is required.',
        });
        throw this.#jsonFault;
      }
      try {
        this.#json = JSON.parse(this.rawBody.toString('utf8'));
      } catch (err) {
        this.#jsonFault = Fault.expected('err:user:bad_request:request_body_unreadable', {
          publicMessage: 'The request body is not valid JSON.',
          internalMessage: err instanceof Error ? err.message : String(err),
        });
        throw this.#jsonFault;
      }
    }
    return this.#json as T;
  }

  /**
   * Adds a header to the response of this request, whatever it turns out to be (including an
   * error reply). For headers that belong on every response of a route, such as `RateLimit-*`.
   */
  setResponseHeader(name: string, value: string): void {
    (this.#responseHeaders ??= {})[name.toLowerCase()] = value;
  }

  /** Kernel: headers added with {@link RequestContext.setResponseHeader}, if any. */
  get responseHeaders(): Readonly<Record<string, string>> | undefined {
    return this.#responseHeaders;
  }

  /** Kernel: aborts the signal (now, or when it is created) with `reason`. Idempotent. */
  abort(reason: unknown): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#abortController?.abort(reason);
  }

  /** Kernel: the reason given to {@link RequestContext.abort}, if it was called. */
  get abortReason(): unknown {
    return this.#abortReason;
  }

  #onClientClose(): void {
    if (this.finished || this.clientGone) return;
    this.clientGone = true;
    this.abort(Fault.expected('err:user:bad_request:client_closed_request', { publicMessage: 'The client closed the request.' }));
    this.#owner.clientClosed(this);
  }

  /** Kernel (inject): the injected client went away. */
  injectedClientClosed(): void {
    this.#onClientClose();
  }
}
