/**
 * `createApiServer`: the API service (spec api.md) on keygate's HTTP kernel. Every endpoint is
 * registered at `POST /v2/<operationId>` and runs, in this order:
 *   body JSON parse → schema validation (BEFORE auth, api.md §14.13) → root-key auth →
 *   handler → envelope `{meta:{requestId}, data}` (+ `pagination` on lists).
 * Also served: `GET /v2/liveness` (503 while draining) and `GET /openapi.json`.
 * Schemas are compiled and routes composed here, once; the hot path only looks things up.
 */
import { HttpServer, type HttpServerOptions } from '../../core/http/http-server.ts';
import type { HttpReply } from '../../core/http/interface.ts';
import type { RequestContext } from '../../core/http/request-context.ts';
import { faultTypeUrl } from '../../core/fault.ts';
import type { ApiDependencies } from './dependencies.ts';
import type { ApiRequest, Endpoint, EndpointResult } from './endpoint.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { RequestValidator } from './request-validator.ts';
import { authenticateRootKey, type RootKeyPrincipal } from './root-key-auth.ts';
import type { AuditContext } from './audit-log.ts';
import { apiEndpoints } from './routes/index.ts';

/** Options of {@link createApiServer}. */
export interface ApiServerOptions extends Pick<HttpServerOptions, 'requestTimeoutMs' | 'maxBodyBytes' | 'drainTimeoutMs'> {
  /** The operations to serve; default every endpoint in `routes/index.ts`. */
  endpoints?: readonly Endpoint[];
}

/** The running service: its HTTP server and a drain switch for liveness. */
export interface ApiServer {
  readonly server: HttpServer;
  readonly endpoints: readonly Endpoint[];
  /** The OpenAPI document served at `/openapi.json`. */
  readonly openApi: Record<string, unknown>;
  /** True once {@link ApiServer.startDraining} (or `server.close()`) was called: liveness answers 503. */
  readonly draining: boolean;
  /** Makes liveness answer 503 so load balancers stop sending traffic, without closing anything yet. */
  startDraining(): void;
}

/** Builds the API server for `deps`; call `server.listen()` or `server.inject()` next. */
export function createApiServer(deps: ApiDependencies, options: ApiServerOptions = {}): ApiServer {
  const endpoints = options.endpoints ?? apiEndpoints;
  const server = new HttpServer({
    logger: deps.logger,
    metrics: deps.metrics,
    requestTimeoutMs: options.requestTimeoutMs,
    maxBodyBytes: options.maxBodyBytes,
    drainTimeoutMs: options.drainTimeoutMs,
  });
  const validator = new RequestValidator();
  let drainRequested = false;

  for (const endpoint of endpoints) {
    validator.register(endpoint.operationId, endpoint.request);
    server.route('POST', `/v2/${endpoint.operationId}`, endpointHandler(endpoint, validator, deps), { name: endpoint.operationId });
  }

  const openApi = buildOpenApiDocument(endpoints);
  const openApiBody = JSON.stringify(openApi);
  server.route('GET', '/openapi.json', () => ({ headers: { 'content-type': 'application/json' }, body: openApiBody }), { accessLog: false });

  const api: ApiServer = {
    server,
    endpoints,
    openApi,
    get draining() {
      return drainRequested || server.draining;
    },
    startDraining() {
      drainRequested = true;
    },
  };
  server.route('GET', '/v2/liveness', (ctx) => liveness(ctx, api.draining), { accessLog: false });
  return api;
}

function endpointHandler(endpoint: Endpoint, validator: RequestValidator, deps: ApiDependencies) {
  const operationId = endpoint.operationId;
  // Each step returns a promise only when it had to wait (a cache miss, a throttled workspace, a
  // handler that reads the database): a verification of a cached key runs to its reply without
  // one, inside the event that received the request.
  const respond = (ctx: RequestContext, result: EndpointResult): HttpReply => {
    // The envelope is written as text around the handler's data: no wrapper objects to build
    // and walk per request. The request id goes through JSON.stringify like any other string.
    let envelope = '{"meta":{"requestId":' + JSON.stringify(ctx.requestId) + '},"data":' + (JSON.stringify(result.data) ?? 'null');
    if (result.pagination !== undefined) envelope += ',"pagination":' + JSON.stringify(result.pagination);
    return { status: 200, contentType: 'application/json', body: envelope + '}' };
  };
  const run = (ctx: RequestContext, body: unknown, principal: RootKeyPrincipal): HttpReply | Promise<HttpReply> => {
    const result = endpoint.handler(new EndpointRequest(body, principal, deps, ctx, clientIpOf(ctx, deps.config.trustForwardedFor)));
    return result instanceof Promise ? result.then((settled) => respond(ctx, settled)) : respond(ctx, result);
  };
  const authorized = (ctx: RequestContext, body: unknown, principal: RootKeyPrincipal): HttpReply | Promise<HttpReply> => {
    // The workspace throttle counts authenticated requests only: an unauthenticated flood must
    // not spend a workspace's budget. Its headers stay on the reply whatever the handler answers.
    const throttled = deps.workspaceThrottle.check(principal.workspaceId, ctx);
    return throttled === undefined ? run(ctx, body, principal) : throttled.then(() => run(ctx, body, principal));
  };
  return (ctx: RequestContext): HttpReply | Promise<HttpReply> => {
    const body = ctx.json();
    // Validation precedes authentication: a malformed body is a 400 whatever the credentials.
    validator.validate(operationId, body);
    const principal = authenticateRootKey(ctx.headers, deps.keyVerifier, deps.clock, ctx.connection);
    return principal instanceof Promise ? principal.then((settled) => authorized(ctx, body, settled)) : authorized(ctx, body, principal);
  };
}

/**
 * One request as a handler sees it. A class rather than a literal so that the audit context,
 * which only mutating handlers read, is built on first use instead of for every verification.
 */
class EndpointRequest implements ApiRequest {
  readonly body: unknown;
  readonly principal: RootKeyPrincipal;
  readonly deps: ApiDependencies;
  readonly ctx: RequestContext;
  readonly clientIp: string;
  #audit: AuditContext | undefined;

  constructor(body: unknown, principal: RootKeyPrincipal, deps: ApiDependencies, ctx: RequestContext, clientIp: string) {
    this.body = body;
    this.principal = principal;
    this.deps = deps;
    this.ctx = ctx;
    this.clientIp = clientIp;
  }

  get requestId(): string {
    return this.ctx.requestId;
  }

  get audit(): AuditContext {
    if (this.#audit !== undefined) return this.#audit;
    const principal = this.principal;
    const userAgent = this.ctx.headers['user-agent'];
    this.#audit = {
      workspaceId: principal.workspaceId,
      actor: principal.rootKeyName === undefined ? { type: 'key', id: principal.rootKeyId } : { type: 'key', id: principal.rootKeyId, name: principal.rootKeyName },
      correlationId: this.ctx.requestId,
      remoteIp: this.clientIp === '' ? undefined : this.clientIp,
      userAgent: typeof userAgent === 'string' ? userAgent : undefined,
    };
    return this.#audit;
  }
}

function liveness(ctx: RequestContext, draining: boolean): HttpReply {
  if (draining) {
    return {
      status: 503,
      body: {
        meta: { requestId: ctx.requestId },
        error: {
          title: 'Service Unavailable',
          detail: 'The server is shutting down.',
          status: 503,
          type: faultTypeUrl('err:unkey:application:service_unavailable'),
        },
      },
    };
  }
  return { status: 200, body: { meta: { requestId: ctx.requestId }, data: { message: 'OK' } } };
}

/**
 * The client's IP. `X-Forwarded-For` is believed only when configured (behind a proxy that sets
 * it): otherwise any client could claim an allow-listed address.
 */
function clientIpOf(ctx: RequestContext, trustForwardedFor: boolean): string {
  if (trustForwardedFor) {
    const header = ctx.headers['x-forwarded-for'];
    const value = Array.isArray(header) ? header[0] : header;
    if (value !== undefined) {
      for (const part of value.split(',')) {
        const candidate = part.trim();
        if (candidate !== '') return candidate;
      }
    }
  }
  return normalizeIp(ctx.remoteAddress);
}

function normalizeIp(address: string): string {
  // An IPv4 client on a dual-stack socket shows up as ::ffff:1.2.3.4.
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
