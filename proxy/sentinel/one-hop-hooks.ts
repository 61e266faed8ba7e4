/**
 * `OneHopHooks`: Frontline and Sentinel as one set of phases in one process and one request
 * (config `sentinel.mode = "one-hop"`): Frontline terminates TLS and finds the route, then the
 * route's deployment runs its policies and picks an instance, with no second HTTP hop. Per request:
 * ```
 * earlyRequestFilter     Frontline (verify hop headers, strip every client X-Keygate-*), then Sentinel
 * requestFilter          Frontline (health, route by Host → 404); a route served locally names its
 *                        deployment (as a trusted Frontline would in two hops) → Sentinel's policies
 * upstreamPeer           Sentinel's instance pool; a remote-only route goes to Frontline's peers
 * upstreamRequestFilter  Frontline's headers, then Sentinel's (principal, deployment header removed)
 * responseFilter         Sentinel's (X-RateLimit-*), then Frontline's (X-Keygate-Frontline-Id)
 * failToConnect, logging both, in the same order
 * ```
 * The order of headers and phases is the one a request sees through two hops, so both modes
 * answer the same (tested side by side in test/e2e/gateway-modes.test.ts).
 */
import type { Fault } from '../../core/fault.ts';
import type { FrontlineCtx, FrontlineHooks } from '../frontline/frontline-hooks.ts';
import type { ConnectFailureDecision, FilterOutcome, ProxyHooks, UpstreamRequest, UpstreamResponse } from '../hooks.ts';
import type { HttpPeer } from '../http-peer.ts';
import type { ProxySession } from '../proxy-session.ts';
import { DEPLOYMENT_HEADER } from './sentinel-hooks.ts';
import type { SentinelCtx, SentinelHooks } from './sentinel-hooks.ts';
import { staticDeploymentId } from './static-deployments.ts';

/** Per-request state of the one-hop gateway: both roles' contexts. */
export interface OneHopCtx {
  frontline: FrontlineCtx;
  sentinel: SentinelCtx;
  /** True when the route has no local upstream: Frontline forwards to a peer region, whose gateway applies the policies. */
  remote: boolean;
}

/** Frontline's phases followed by Sentinel's, in one request. */
export class OneHopHooks implements ProxyHooks<OneHopCtx> {
  readonly #frontline: FrontlineHooks;
  readonly #sentinel: SentinelHooks;

  constructor(frontline: FrontlineHooks, sentinel: SentinelHooks) {
    this.#frontline = frontline;
    this.#sentinel = sentinel;
  }

  newCtx(): OneHopCtx {
    return { frontline: this.#frontline.newCtx(), sentinel: this.#sentinel.newCtx(), remote: false };
  }

  earlyRequestFilter(session: ProxySession, ctx: OneHopCtx): void {
    // Frontline first: it deletes every client X-Keygate-* header (principal, deployment id),
    // so nothing below can see a client-chosen value.
    this.#frontline.earlyRequestFilter(session, ctx.frontline);
    this.#sentinel.earlyRequestFilter(session);
  }

  requestFilter(session: ProxySession, ctx: OneHopCtx): FilterOutcome | Promise<FilterOutcome> {
    const outcome = this.#frontline.requestFilter(session, ctx.frontline);
    if (outcome instanceof Promise) return outcome.then((decided) => this.#admit(session, ctx, decided));
    return this.#admit(session, ctx, outcome);
  }

  upstreamPeer(session: ProxySession, ctx: OneHopCtx): readonly HttpPeer[] {
    if (ctx.remote) return this.#frontline.upstreamPeer(session, ctx.frontline);
    return this.#sentinel.upstreamPeer(session, ctx.sentinel);
  }

  upstreamRequestFilter(session: ProxySession, request: UpstreamRequest, ctx: OneHopCtx): void {
    this.#frontline.upstreamRequestFilter(session, request, ctx.frontline);
    if (!ctx.remote) this.#sentinel.upstreamRequestFilter(session, request, ctx.sentinel);
  }

  responseFilter(session: ProxySession, response: UpstreamResponse, ctx: OneHopCtx): void {
    if (!ctx.remote) this.#sentinel.responseFilter(session, response, ctx.sentinel);
    this.#frontline.responseFilter(session, response, ctx.frontline);
  }

  failToConnect(session: ProxySession, peer: HttpPeer, fault: Fault, ctx: OneHopCtx): ConnectFailureDecision {
    this.#frontline.failToConnect();
    if (ctx.remote) return 'next';
    return this.#sentinel.failToConnect(session, peer, fault, ctx.sentinel);
  }

  logging(session: ProxySession, fault: Fault | undefined, ctx: OneHopCtx): void {
    try {
      this.#sentinel.logging(session, fault, ctx.sentinel);
    } finally {
      this.#frontline.logging(session, fault, ctx.frontline);
    }
  }

  #admit(session: ProxySession, ctx: OneHopCtx, decided: FilterOutcome): FilterOutcome | Promise<FilterOutcome> {
    if (decided === 'responded') return decided;
    const route = ctx.frontline.route!;
    if (route.remoteOnly) {
      ctx.remote = true;
      return 'continue';
    }
    // The route names its deployment exactly as a trusted Frontline does over two hops; the
    // client's copy of this header was deleted in earlyRequestFilter.
    session.req.headers[DEPLOYMENT_HEADER] = route.deploymentId ?? staticDeploymentId(route.host);
    // Over two hops a policy rejection is Sentinel's response, to which Frontline adds its
    // headers; the same headers go on the rejection here so both modes answer alike, whether
    // the policies rejected synchronously (thrown) or after waiting (rejected).
    let admitted: FilterOutcome | Promise<FilterOutcome>;
    try {
      admitted = this.#sentinel.requestFilter(session, ctx.sentinel);
    } catch (err) {
      this.#frontline.responseFilter(session, NO_UPSTREAM_RESPONSE, ctx.frontline);
      throw err;
    }
    if (!(admitted instanceof Promise)) return admitted;
    return admitted.catch((err: unknown) => {
      this.#frontline.responseFilter(session, NO_UPSTREAM_RESPONSE, ctx.frontline);
      throw err;
    });
  }
}

const NO_UPSTREAM_RESPONSE: UpstreamResponse = { status: 0, headers: {} };
