/**
 * `FrontlineHooks`: Frontline written as `ProxyHooks` on the proxy framework (the product
 * dogfoods the library). Per HTTPS request:
 * ```
 * earlyRequestFilter  verify peer hop headers, then strip every client X-Keygate-* header
 * requestFilter       reserved /_keygate/ paths (health); route lookup by Host → 404 when none;
 *                     hop limit for remote-only routes → 508
 * upstreamPeer        local upstreams round-robin, then peer Frontlines (unless the hop limit is reached)
 * upstreamRequestFilter  signed hop headers when a peer may be reached
 * responseFilter      X-Keygate-Frontline-Id / -Region (additive)
 * logging             metrics and the access log
 * ```
 */
import type { Logger } from '../../core/log.ts';
import { Fault } from '../../core/fault.ts';
import { proxyStatus } from '../errors/error-page.ts';
import type { FilterOutcome, ProxyHooks, UpstreamRequest, UpstreamResponse } from '../hooks.ts';
import type { HttpPeer } from '../http-peer.ts';
import type { ProxySession } from '../proxy-session.ts';
import type { FrontlineMetrics } from './frontline-metrics.ts';
import type { HealthState } from './health.ts';
import { answerInternal, isInternalPath } from './health.ts';
import type { InboundHop, PeerHopAuthenticator } from './peer-hop.ts';
import { NO_HOP } from './peer-hop.ts';
import type { RouteStore } from './route-store.ts';
import type { FrontlineRoute } from './route-table.ts';

/** Per-request state of Frontline. */
export interface FrontlineCtx {
  route: FrontlineRoute | undefined;
  hop: InboundHop;
  /** True when this request's candidates include a peer Frontline. */
  peersIncluded: boolean;
  /** True for reserved internal paths (not logged as traffic). */
  internal: boolean;
}

/** Options of {@link FrontlineHooks}. */
export interface FrontlineHooksOptions {
  routes: RouteStore;
  hopAuthenticator: PeerHopAuthenticator;
  metrics: FrontlineMetrics;
  health: HealthState;
  /** This instance's id, sent as `X-Keygate-Frontline-Id` (default `frontline`). */
  instanceId: string;
  /** This instance's region, sent as `X-Keygate-Region`. */
  region: string;
  /** Hops between Frontlines a request may take (default 10). A request that arrived after this many is refused. */
  maxHops: number;
  /** Access log; undefined = none. */
  logger?: Logger;
}

/** Defaults of {@link FrontlineHooksOptions}. */
export const FRONTLINE_HOOKS_DEFAULTS = {
  instanceId: 'frontline',
  region: 'local',
  maxHops: 10,
} as const;

/** Prefix of every internal header: stripped from client requests at the edge. */
const INTERNAL_HEADER_PREFIX = 'x-keygate-';

/** Frontline's phases. One instance per Frontline; swap routes through its `RouteStore`. */
export class FrontlineHooks implements ProxyHooks<FrontlineCtx> {
  readonly #options: FrontlineHooksOptions;

  constructor(options: FrontlineHooksOptions) {
    this.#options = options;
  }

  newCtx(): FrontlineCtx {
    return { route: undefined, hop: NO_HOP, peersIncluded: false, internal: false };
  }

  earlyRequestFilter(session: ProxySession, ctx: FrontlineCtx): void {
    this.#options.metrics.inflight++;
    const headers = session.req.headers;
    // Security: the hop headers are read and verified first, then *every* X-Keygate-* header is
    // deleted, so nothing later (routing, policies, the upstream) can see a client-chosen value.
    // Only an authenticated count survives, in ctx (dataplane.md §3.5, §10.12).
    const hop = this.#options.hopAuthenticator.read(headers, session.host);
    ctx.hop = hop;
    if (hop.rejected) this.#options.metrics.hopHeadersRejected.inc();
    else if (hop.hops > 0) this.#options.metrics.hops.observe(hop.hops);
    for (const name in headers) {
      if (name.startsWith(INTERNAL_HEADER_PREFIX)) delete headers[name];
    }
  }

  requestFilter(session: ProxySession, ctx: FrontlineCtx): FilterOutcome | Promise<FilterOutcome> {
    if (isInternalPath(session.path)) {
      ctx.internal = true;
      const answer = answerInternal(session.path, this.#options.health);
      return session.respond(answer.status, session.method === 'HEAD' ? '' : answer.body, answer.headers);
    }
    const found = this.#options.routes.lookup(session.host);
    if (found instanceof Promise) return found.then((route) => this.#admit(session, ctx, route));
    return this.#admit(session, ctx, found);
  }

  upstreamPeer(_session: ProxySession, ctx: FrontlineCtx): readonly HttpPeer[] {
    const route = ctx.route!;
    const allowPeers = route.peers.length > 0 && ctx.hop.hops < this.#options.maxHops;
    ctx.peersIncluded = allowPeers;
    if (allowPeers) this.#options.metrics.peerForwards.inc();
    return route.candidates(allowPeers);
  }

  upstreamRequestFilter(session: ProxySession, request: UpstreamRequest, ctx: FrontlineCtx): void {
    const options = this.#options;
    const headers = request.headers;
    headers['x-keygate-frontline-id'] = options.instanceId;
    headers['x-keygate-region'] = options.region;
    if (ctx.peersIncluded) {
      // The count after this hop, signed so the peer's edge can trust it.
      const hopHeaders = options.hopAuthenticator.sign(ctx.hop.hops + 1, session.requestId, options.instanceId, session.host);
      for (const name in hopHeaders) headers[name] = hopHeaders[name];
    }
  }

  responseFilter(session: ProxySession, _response: UpstreamResponse, _ctx: FrontlineCtx): void {
    session.addResponseHeader('x-keygate-frontline-id', this.#options.instanceId);
    session.addResponseHeader('x-keygate-region', this.#options.region);
  }

  failToConnect(): 'next' {
    this.#options.metrics.upstreamConnectFailures.inc();
    return 'next';
  }

  logging(session: ProxySession, fault: Fault | undefined, ctx: FrontlineCtx): void {
    const options = this.#options;
    const metrics = options.metrics;
    metrics.inflight--;
    if (ctx.internal) return;
    const status = session.responseStatus !== 0 ? session.responseStatus : fault !== undefined ? proxyStatus(fault) : 0;
    const durationMs = performance.now() - session.startedAtMs;
    const code = fault?.code ?? '';
    metrics.countRequest(statusClass(status), code);
    metrics.requestDuration.observe(durationMs / 1000);
    options.logger?.info({
      requestId: session.requestId,
      method: session.method,
      host: session.host,
      // Without the query: query strings carry tokens often enough that they stay out of logs.
      path: pathWithoutQuery(session.path),
      status,
      durationMs: Math.round(durationMs * 100) / 100,
      upstream: session.peer?.origin,
      attempts: session.connectAttempts,
      hops: ctx.hop.hops,
      clientAddress: session.clientAddress,
      ...(fault === undefined ? {} : { code, detail: fault.internalMessage }),
    }, 'request');
  }

  #admit(session: ProxySession, ctx: FrontlineCtx, route: FrontlineRoute | undefined): FilterOutcome {
    if (route === undefined) {
      throw Fault.expected('err:frontline:routing:config_not_found', {
        publicMessage: 'No route is configured for this host.',
        internalMessage: `no route for host ${JSON.stringify(session.host)}`,
      });
    }
    ctx.route = route;
    if (route.remoteOnly && ctx.hop.hops >= this.#options.maxHops) {
      this.#options.metrics.hopLimitRejections.inc();
      throw Fault.expected('err:frontline:platform:hop_limit_exceeded', {
        publicMessage: 'Request routing limit exceeded.',
        internalMessage: `request arrived after ${ctx.hop.hops} hops (limit ${this.#options.maxHops}), parent ${ctx.hop.parentRequestId ?? '?'}`,
      });
    }
    if (route.remoteOnly && route.peers.length === 0) {
      throw Fault.expected('err:frontline:capacity:no_running_instances', { internalMessage: `route ${route.host} has no upstream` });
    }
    return 'continue';
  }
}

function pathWithoutQuery(path: string): string {
  const query = path.indexOf('?');
  return query === -1 ? path : path.slice(0, query);
}

function statusClass(status: number): string {
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  if (status >= 200) return '2xx';
  return status === 0 ? 'none' : '1xx';
}
