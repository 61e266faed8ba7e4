/**
 * `TwoHopFrontlineHooks`: Frontline's phases for `sentinel.mode = "two-hop"`. Every route with
 * local upstreams is forwarded to the Sentinel listener (keep-alive HTTP/1.1 or h2c, one pooled
 * peer) with `X-Keygate-Deployment-Id` naming the route's deployment; Sentinel believes that
 * header only from its `trustedFrontlines`, runs the policies and picks the instance. Remote-only
 * routes still go to peer Frontlines. Every other phase is Frontline's own.
 */
import type { Fault } from '../../core/fault.ts';
import type { FrontlineCtx, FrontlineHooks } from '../frontline/frontline-hooks.ts';
import type { ConnectFailureDecision, FilterOutcome, ProxyHooks, UpstreamRequest, UpstreamResponse } from '../hooks.ts';
import type { HttpPeer } from '../http-peer.ts';
import type { ProxySession } from '../proxy-session.ts';
import { DEPLOYMENT_HEADER } from './sentinel-hooks.ts';
import { staticDeploymentId } from './static-deployments.ts';

/** Frontline forwarding local routes to one Sentinel. */
export class TwoHopFrontlineHooks implements ProxyHooks<FrontlineCtx> {
  readonly #frontline: FrontlineHooks;
  readonly #sentinel: readonly HttpPeer[];

  constructor(frontline: FrontlineHooks, sentinel: HttpPeer) {
    this.#frontline = frontline;
    this.#sentinel = [sentinel];
  }

  newCtx(): FrontlineCtx {
    return this.#frontline.newCtx();
  }

  earlyRequestFilter(session: ProxySession, ctx: FrontlineCtx): void {
    this.#frontline.earlyRequestFilter(session, ctx);
  }

  requestFilter(session: ProxySession, ctx: FrontlineCtx): FilterOutcome | Promise<FilterOutcome> {
    return this.#frontline.requestFilter(session, ctx);
  }

  upstreamPeer(session: ProxySession, ctx: FrontlineCtx): readonly HttpPeer[] {
    if (ctx.route!.remoteOnly) return this.#frontline.upstreamPeer(session, ctx);
    return this.#sentinel;
  }

  upstreamRequestFilter(session: ProxySession, request: UpstreamRequest, ctx: FrontlineCtx): void {
    this.#frontline.upstreamRequestFilter(session, request, ctx);
    const route = ctx.route!;
    if (!route.remoteOnly) request.headers[DEPLOYMENT_HEADER] = route.deploymentId ?? staticDeploymentId(route.host);
  }

  responseFilter(session: ProxySession, response: UpstreamResponse, ctx: FrontlineCtx): void {
    this.#frontline.responseFilter(session, response, ctx);
  }

  failToConnect(): ConnectFailureDecision {
    return this.#frontline.failToConnect();
  }

  logging(session: ProxySession, fault: Fault | undefined, ctx: FrontlineCtx): void {
    this.#frontline.logging(session, fault, ctx);
  }
}
