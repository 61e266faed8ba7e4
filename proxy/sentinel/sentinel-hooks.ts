/**
 * `SentinelHooks`: the gateway written as `ProxyHooks` on the proxy framework. Per request:
 * ```
 * earlyRequestFilter     remove client copies of X-Keygate-Principal / X-Keygate-Deployment-Id
 *                        (the latter is kept only from a trusted Frontline address)
 * requestFilter          deployment by X-Keygate-Deployment-Id (trusted) or Host → 404;
 *                        evaluate the deployment's policies → reject with the policy's fault,
 *                        X-RateLimit-* / Retry-After on the error page
 * upstreamPeer           the deployment's instances: round robin or least outstanding,
 *                        ejected instances last; connect failures move to the next one
 * upstreamRequestFilter  X-Keygate-Principal (compact JSON) when a policy authenticated
 * responseFilter         X-RateLimit-* (additive), response headers for the log
 * failToConnect          eject the instance (passive health), try the next
 * logging                metrics and the request-log row (only when an instance was tried)
 * ```
 * It runs behind Frontline (two hops, Host preserved) or alone (one hop): the same hooks.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { systemClock, type Clock } from '../../core/clock.ts';
import { Fault } from '../../core/fault.ts';
import type { Metrics } from '../../core/metrics.ts';
import { proxyStatus } from '../errors/error-page.ts';
import { TrustedProxies } from '../forward/trusted-proxies.ts';
import type { FilterOutcome, ProxyHooks, UpstreamRequest, UpstreamResponse } from '../hooks.ts';
import type { HttpPeer } from '../http-peer.ts';
import type { ProxySession } from '../proxy-session.ts';
import type { InstancePool } from './instance-pool.ts';
import type { LogCapture } from './policy-executor.ts';
import type { CompiledPolicySet, EvaluationResult } from './policy-engine.ts';
import { PRINCIPAL_HEADER, serializePrincipal } from './principal.ts';
import type { RateLimitOutcome } from './rate-limit-headers.ts';
import { addRateLimitHeaders } from './rate-limit-headers.ts';
import type { RequestLogSink } from '../../core/analytics/request-log-sink.ts';
import { redactQuery, renderBody, renderHeaders, secretValues } from './request-log.ts';
import { RequestView } from './request-view.ts';
import type { GatewayRequestSource } from './request-view.ts';

/** Header a trusted Frontline may use to name the deployment (ignored from anyone else). */
export const DEPLOYMENT_HEADER = 'x-keygate-deployment-id';

/** A deployment as the gateway serves it: compiled policies and instances. */
export interface SentinelDeployment {
  readonly id: string;
  readonly workspaceId: string;
  readonly policies: CompiledPolicySet;
  readonly instances: InstancePool;
  /** Header names (lower case) and query names whose values are secrets (KeyAuth locations). */
  readonly secretHeaders: ReadonlySet<string>;
  readonly secretQueryParams: ReadonlySet<string>;
}

/** Finds the deployment of a request: by id (from a trusted Frontline) or by host. */
export interface DeploymentResolver {
  resolve(host: string, deploymentId: string | undefined): SentinelDeployment | undefined | Promise<SentinelDeployment | undefined>;
}

/** Per-request state of the gateway. */
export interface SentinelCtx {
  deployment: SentinelDeployment | undefined;
  principalHeader: string | undefined;
  rateLimit: RateLimitOutcome | undefined;
  log: LogCapture | undefined;
  acquired: HttpPeer | undefined;
  responseHeaders: string[] | undefined;
  startedAtUnixMs: number;
}

/** Options of {@link SentinelHooks}. */
export interface SentinelHooksOptions {
  deployments: DeploymentResolver;
  /**
   * Proxies (IPs/CIDRs) whose `X-Forwarded-For` is believed for the client IP (rate limits, logs).
   * Give the same list as the proxy runner's `trustedProxies`. Default: none.
   */
  trustedProxies?: readonly string[];
  /** Addresses (IPs/CIDRs) of Frontlines allowed to set `X-Keygate-Deployment-Id`. */
  trustedFrontlines?: readonly string[];
  requestLog?: RequestLogSink;
  /** Most bytes of each body a Logging policy with `requestBody` / `responseBody` captures (default 8 KiB). */
  maxLoggedBodyBytes?: number;
  metrics?: Metrics;
  clock?: Clock;
}

/** Defaults of {@link SentinelHooksOptions}. */
export const SENTINEL_HOOKS_DEFAULTS = {
  maxLoggedBodyBytes: 8 * 1024,
} as const;

/** The gateway's phases; one instance per gateway. */
export class SentinelHooks implements ProxyHooks<SentinelCtx> {
  readonly #deployments: DeploymentResolver;
  readonly #trustedFrontlines: TrustedProxies;
  readonly #trustedProxies: TrustedProxies;
  readonly #requestLog: RequestLogSink | undefined;
  readonly #maxLoggedBodyBytes: number;
  readonly #clock: Clock;
  readonly #nowMs = (): number => this.#clock.nowMs();
  readonly #ejections: { inc(): void } | undefined;
  readonly #retries: { inc(): void } | undefined;

  constructor(options: SentinelHooksOptions) {
    this.#deployments = options.deployments;
    this.#trustedFrontlines = new TrustedProxies(options.trustedFrontlines ?? []);
    this.#trustedProxies = new TrustedProxies(options.trustedProxies ?? []);
    this.#requestLog = options.requestLog;
    this.#maxLoggedBodyBytes = options.maxLoggedBodyBytes ?? SENTINEL_HOOKS_DEFAULTS.maxLoggedBodyBytes;
    this.#clock = options.clock ?? systemClock;
    this.#ejections = options.metrics?.counter('keygate_sentinel_instance_ejections_total', 'Instances ejected after refusing a connection.');
    this.#retries = options.metrics?.counter('keygate_sentinel_connect_retries_total', 'Requests moved to another instance after a connect failure.');
  }

  newCtx(): SentinelCtx {
    return { deployment: undefined, principalHeader: undefined, rateLimit: undefined, log: undefined, acquired: undefined, responseHeaders: undefined, startedAtUnixMs: this.#clock.nowMs() };
  }

  earlyRequestFilter(session: ProxySession): void {
    const headers = session.req.headers;
    // Security: a client must never choose its principal; the header is removed before any
    // policy runs and set again only from this request's own authentication.
    delete headers[PRINCIPAL_HEADER];
    if (headers[DEPLOYMENT_HEADER] !== undefined && !this.#trustedFrontlines.check(session.clientAddress)) delete headers[DEPLOYMENT_HEADER];
  }

  requestFilter(session: ProxySession, ctx: SentinelCtx): Promise<FilterOutcome> | FilterOutcome {
    const deploymentId = session.req.headers[DEPLOYMENT_HEADER] as string | undefined;
    const found = this.#deployments.resolve(session.host, deploymentId);
    if (found instanceof Promise) return found.then((deployment) => this.#admit(session, ctx, deployment));
    return this.#admit(session, ctx, found);
  }

  upstreamPeer(_session: ProxySession, ctx: SentinelCtx): readonly HttpPeer[] {
    const pool = ctx.deployment!.instances;
    const candidates = pool.candidates();
    if (candidates.length === 0) {
      throw Fault.expected('err:frontline:capacity:no_running_instances', { internalMessage: `deployment ${ctx.deployment!.id} has no running instance` });
    }
    ctx.acquired = candidates[0];
    pool.acquire(candidates[0]!);
    return candidates;
  }

  upstreamRequestFilter(_session: ProxySession, request: UpstreamRequest, ctx: SentinelCtx): void {
    delete request.headers[DEPLOYMENT_HEADER];
    if (ctx.principalHeader !== undefined) request.headers[PRINCIPAL_HEADER] = ctx.principalHeader;
    else delete request.headers[PRINCIPAL_HEADER];
  }

  responseFilter(session: ProxySession, response: UpstreamResponse, ctx: SentinelCtx): void {
    if (ctx.rateLimit !== undefined) this.#addRateLimitHeaders(session, ctx.rateLimit);
    if (ctx.log?.responseHeaders === true) ctx.responseHeaders = renderHeaders(response.headers, EMPTY_SET);
  }

  failToConnect(_session: ProxySession, peer: HttpPeer, _fault: Fault, ctx: SentinelCtx): 'next' {
    ctx.deployment?.instances.eject(peer);
    this.#ejections?.inc();
    this.#retries?.inc();
    return 'next';
  }

  logging(session: ProxySession, fault: Fault | undefined, ctx: SentinelCtx): void {
    const deployment = ctx.deployment;
    if (deployment === undefined) return;
    if (ctx.acquired !== undefined) deployment.instances.release(ctx.acquired);
    // A row only when an instance was tried (§7.3): no row for policy rejections.
    const peer = session.peer;
    if (this.#requestLog === undefined || peer === undefined) return;
    const view = new RequestView({ requestId: session.requestId, method: session.method, url: session.path, headers: session.headers, clientIp: session.clientAddress });
    const log = ctx.log;
    const headers = session.req.headers;
    this.#requestLog.record({
      requestId: session.requestId,
      timeMs: ctx.startedAtUnixMs,
      workspaceId: deployment.workspaceId,
      deploymentId: deployment.id,
      instanceAddress: `${peer.hostname}:${peer.port}`,
      method: session.method.toUpperCase(),
      host: session.host,
      path: view.rawPath,
      queryString: log?.query === true ? redactQuery(view.rawQuery, deployment.secretQueryParams) : '',
      requestHeaders: log?.requestHeaders === true ? renderHeaders(headers, deployment.secretHeaders) : [],
      responseStatus: session.responseStatus !== 0 ? session.responseStatus : fault === undefined ? 0 : proxyStatus(fault),
      responseHeaders: ctx.responseHeaders ?? [],
      userAgent: log?.requestHeaders === true ? (headers['user-agent'] ?? '') : '',
      ipAddress: log?.requestHeaders === true ? this.#clientIp(session) : '',
      totalLatencyMs: Math.round(performance.now() - session.startedAtMs),
      ...(log?.requestBody === true ? { requestBody: renderBody(session.capturedRequestBody, secretValues(headers, deployment.secretHeaders)) } : {}),
      ...(log?.responseBody === true ? { responseBody: renderBody(session.capturedResponseBody, secretValues(headers, deployment.secretHeaders)) } : {}),
    });
  }

  #admit(session: ProxySession, ctx: SentinelCtx, deployment: SentinelDeployment | undefined): FilterOutcome | Promise<FilterOutcome> {
    if (deployment === undefined) {
      throw Fault.expected('err:frontline:routing:deployment_not_found', { publicMessage: 'No deployment serves this host.', internalMessage: `no deployment for host ${JSON.stringify(session.host)}` });
    }
    ctx.deployment = deployment;
    if (deployment.policies.empty) return 'continue';
    const view = new RequestView(new SessionRequestSource(session, this.#clientIp(session)));
    const evaluation = deployment.policies.evaluate(view, deployment.workspaceId);
    // Synchronous policies (the common case: cached keys, in-process limits) decide without a promise.
    if (evaluation instanceof Promise) return evaluation.then((result) => this.#apply(session, ctx, result));
    return this.#apply(session, ctx, evaluation);
  }

  /** Applies an evaluation to the request: rate-limit headers, log flags, the rejection or the principal header. */
  #apply(session: ProxySession, ctx: SentinelCtx, { state, fault }: EvaluationResult): FilterOutcome {
    ctx.rateLimit = state.rateLimit;
    ctx.log = state.log;
    if (state.log.requestBody || state.log.responseBody) {
      session.captureBodies({
        requestMaxBytes: state.log.requestBody ? this.#maxLoggedBodyBytes : 0,
        responseMaxBytes: state.log.responseBody ? this.#maxLoggedBodyBytes : 0,
      });
    }
    if (fault !== undefined) {
      // Rate-limit headers go out on the 429 (and any other rejection after a limit was checked).
      if (state.rateLimit !== undefined) this.#addRateLimitHeaders(session, state.rateLimit);
      throw fault;
    }
    if (state.principal !== undefined) ctx.principalHeader = serializePrincipal(state.principal);
    return 'continue';
  }

  /**
   * The client IP. Security: `X-Forwarded-For` is read only when the direct peer is a trusted
   * proxy, and then from the right, skipping trusted hops: the first untrusted address is the
   * client (a client-written left-most entry is never believed, dataplane.md §10.13).
   */
  #clientIp(session: ProxySession): string {
    const direct = session.clientAddress;
    if (!this.#trustedProxies.check(direct)) return direct;
    const forwarded = session.req.headers['x-forwarded-for'];
    if (typeof forwarded !== 'string' || forwarded === '') return direct;
    const entries = forwarded.split(',');
    for (let index = entries.length - 1; index >= 0; index--) {
      const entry = entries[index]!.trim();
      if (entry !== '' && !this.#trustedProxies.check(entry)) return entry;
    }
    return entries[0]!.trim() || direct;
  }

  #addRateLimitHeaders(session: ProxySession, outcome: RateLimitOutcome): void {
    addRateLimitHeaders(session, outcome, this.#nowMs);
  }
}

const EMPTY_SET: ReadonlySet<string> = new Set();

/**
 * What policies read of a proxied request, taken from the session when asked: a class with
 * prototype getters (cheap to create per request, unlike an object literal with a getter), and
 * the request id made only if a policy or log uses it.
 */
class SessionRequestSource implements GatewayRequestSource {
  readonly session: ProxySession;
  readonly clientIp: string;
  /** OpenAPI body validation buffers the body (bounded); absent for upgrades, which have none to buffer. */
  readonly readBody: ((maxBytes: number) => Promise<Buffer>) | undefined;

  constructor(session: ProxySession, clientIp: string) {
    this.session = session;
    this.clientIp = clientIp;
    this.readBody = session.upgrade === undefined ? readSessionBody : undefined;
  }

  get requestId(): string {
    return this.session.requestId;
  }

  get method(): string {
    return this.session.method;
  }

  get url(): string {
    return this.session.path;
  }

  get headers(): IncomingHttpHeaders {
    return this.session.headers;
  }

  /** node:http builds `headersDistinct` on first access; only a matcher on header lines needs it. */
  get headersDistinct(): Record<string, string[] | undefined> | undefined {
    return (this.session.req as { headersDistinct?: Record<string, string[] | undefined> }).headersDistinct;
  }
}

/** `SessionRequestSource.readBody`: one function for every request, not a closure per request. */
function readSessionBody(this: SessionRequestSource, maxBytes: number): Promise<Buffer> {
  return this.session.readBody(maxBytes);
}
