/**
 * `SessionRuntime`: what a {@link ProxySession} needs from the runner that created it (settings,
 * the forwarding engine and the failure and response phases). Implemented by `PhaseRunner`;
 * kept as an interface so the session does not depend on the hooks' context type.
 */
import type { Fault } from '../core/fault.ts';
import type { ForwardingEngine } from './forward/forwarding-engine.ts';
import type { TrustedProxies } from './forward/trusted-proxies.ts';
import type { ConnectFailureDecision, FailureResponseDecision, UpstreamResponse } from './hooks.ts';
import type { HttpPeer } from './http-peer.ts';
import type { DownstreamRequest, ProxySession, SessionDeadlines } from './proxy-session.ts';

/** Settings and phase entry points shared by every session of one runner. */
export interface SessionRuntime {
  readonly engine: ForwardingEngine;
  readonly trustedProxies: TrustedProxies;
  /** Header carrying the request id upstream and downstream; undefined = none. */
  readonly requestIdHeader: string | undefined;
  readonly totalTimeoutMs: number;
  /** The sessions' total timeouts (one timer for all), used when `totalTimeoutMs` > 0. */
  readonly deadlines: SessionDeadlines;
  readonly headersTimeoutMs: number;
  readonly bodyIdleTimeoutMs: number;
  readonly maxConnectAttempts: number;
  /** True while the server drains: responses ask HTTP/1.1 clients to close. */
  readonly draining: boolean;
  newRequestId(): string;
  /**
   * The request id a trusted previous hop already gave this request (its `requestIdHeader`),
   * or undefined to make a new one. Optional; called once per request, before any phase.
   */
  inboundRequestId?(req: DownstreamRequest): string | undefined;
  failToConnect(session: ProxySession, peer: HttpPeer, fault: Fault): ConnectFailureDecision;
  errorWhileProxy(session: ProxySession, peer: HttpPeer, fault: Fault): void;
  failToProxy(session: ProxySession, fault: Fault): FailureResponseDecision | Promise<FailureResponseDecision>;
  /** Runs `upstreamResponseFilter` and `responseFilter`; undefined when both completed synchronously. */
  runResponsePhases(session: ProxySession, response: UpstreamResponse): Promise<void> | undefined;
  /** The request is over: runs `logging`. Called exactly once per session. */
  finish(session: ProxySession): void;
}
