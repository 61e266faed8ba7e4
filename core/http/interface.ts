/**
 * The contract of the HTTP kernel: what a handler receives and returns, what a middleware is,
 * and the shapes of `inject()`. Implemented by {@link HttpServer} (`http-server.ts`).
 */
import type { Fault } from '../fault.ts';
import type { RequestContext } from './request-context.ts';

/** The methods a route can be registered for. `HEAD` falls back to the `GET` route. */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/** The methods a route can be registered for, as a list (also the bounded set of metric labels). */
export const HTTP_METHODS: readonly HttpMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * What a handler returns. `status` defaults to 200. `body`: an object or array is sent as JSON
 * (`content-type: application/json`), a string as `text/plain; charset=utf-8`, a Buffer or
 * Uint8Array as `application/octet-stream`, unless `headers['content-type']` says otherwise.
 * Header names must be lower-case.
 */
export interface HttpReply {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /**
   * Content type of the body, overriding the default by kind (text for a string, octet-stream
   * for bytes, JSON for anything else; a `content-type` in `headers` wins over both). Lets a
   * handler that serialised JSON itself say so without a headers object per request.
   */
  contentType?: string;
}

/** The next layer of the chain: the rest of the middlewares and finally the route's handler. */
export type Next = (ctx: RequestContext) => HttpReply | Promise<HttpReply>;

/** A route handler, called once per matched request after its body has been read. */
export type Handler = Next;

/**
 * A middleware, called once per request: do something, call `next(ctx)` (or not, to answer
 * early), and return the reply. `next` is fixed when the chain is composed at boot, so no closure
 * is created per request. A thrown error becomes an error reply in the kernel's error layer.
 */
export type Middleware = (ctx: RequestContext, next: Next) => HttpReply | Promise<HttpReply>;

/** Per-route options; everything defaults to the server's setting. */
export interface RouteOptions {
  /** Label of the route in metrics and the access log. Default: the path pattern. */
  name?: string;
  /** Middlewares that run for this route only, inside the server-wide ones, in this order. */
  middleware?: readonly Middleware[];
  /** Handler deadline for this route (→ 408). Default: the server's `requestTimeoutMs`. */
  timeoutMs?: number;
  /** Body limit for this route (→ 413). Default: the server's `maxBodyBytes`. */
  maxBodyBytes?: number;
  /** False to keep this route out of the access log (liveness, metrics scrapes). Default true. */
  accessLog?: boolean;
}

/** What an error body builder returns: the complete error response for one fault. */
export interface ErrorReply {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
}

/**
 * Turns a fault into the error response. Default: the API's envelope
 * (`{meta:{requestId},error:{title,detail,status,type,errors?}}`); the gateway supplies its own.
 * Called once per failed request; must not throw.
 */
export type ErrorBodyBuilder = (fault: Fault, requestId: string) => ErrorReply;

/** A request for {@link HttpServer.inject}: runs the full chain without a socket. */
export interface InjectRequest {
  method: string;
  /** Path and query, e.g. `/v2/keys.verifyKey?x=1`. */
  url: string;
  headers?: Record<string, string>;
  /** A string or bytes are sent as is; anything else as JSON (with `content-type: application/json`). */
  body?: unknown;
  /** Aborting it behaves like a client closing the connection (the handler's signal fires, 499). */
  signal?: AbortSignal;
  /** The `remoteAddress` the handler sees. Default `127.0.0.1`. */
  remoteAddress?: string;
}

/** The response of {@link HttpServer.inject}. Header names are lower-case. */
export interface InjectResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Parses `body` as JSON (throws a SyntaxError if it is not). */
  json<T = unknown>(): T;
}
