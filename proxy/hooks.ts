/**
 * `ProxyHooks<Ctx>`: the embedding contract of the proxy framework. A custom proxy is a set of
 * named phases over a per-request context `Ctx` (in the spirit of Pingora's `ProxyHttp`). Only
 * `upstreamPeer` is required; a phase that is absent costs nothing, because the runner reads
 * which hooks exist once, at construction.
 *
 * Order per request:
 * ```
 * earlyRequestFilter → requestFilter → upstreamPeer → upstreamRequestFilter
 *   → [forward, streaming both ways] → upstreamResponseFilter → responseFilter → logging
 * failures: failToConnect (may try the next peer) · errorWhileProxy · failToProxy
 * ```
 * Every phase may return a value or a promise of it; the runner awaits only real promises.
 * Throwing (or rejecting with) a `Fault` from a phase ends the request with that fault's
 * error response.
 */
import type { Fault } from '../core/fault.ts';
import type { HttpPeer } from './http-peer.ts';
import type { ProxySession } from './proxy-session.ts';

/** What `requestFilter` decided: go on to the upstream, or the hook already answered. */
export type FilterOutcome = 'continue' | 'responded';

/** What `failToConnect` decided: try the next candidate peer, or give up with the fault. */
export type ConnectFailureDecision = 'next' | 'fail';

/** What `failToProxy` decided: the hook wrote its own response, or the default error page is sent. */
export type FailureResponseDecision = 'responded' | 'default';

/** A value or a promise of it: phases may be synchronous or asynchronous. */
export type MaybePromise<T> = T | Promise<T>;

/** Response header values as the forwarding engine hands them over (lower-cased names). */
export type HeaderMap = Record<string, string | string[] | undefined>;

/**
 * The request about to be sent upstream, built once per request after `upstreamPeer`:
 * hop-by-hop headers removed, `X-Forwarded-*` set. Mutable in `upstreamRequestFilter`.
 */
export interface UpstreamRequest {
  method: string;
  /** Path and query, as received (the original escaped form is forwarded). */
  path: string;
  /** Lower-cased header names; `host` carries the original client Host unless changed. */
  headers: HeaderMap;
}

/** The response head from the upstream (hop-by-hop headers removed). Mutable in the response phases. */
export interface UpstreamResponse {
  status: number;
  headers: HeaderMap;
}

/**
 * The phases of a custom proxy over a per-request context `Ctx`. Called per request; each phase
 * receives the {@link ProxySession} (downstream request, response helpers, request id) and `ctx`.
 */
export interface ProxyHooks<Ctx> {
  /** Creates the per-request context; called once per request before any phase. */
  newCtx(): Ctx;
  /** First look at the request (before any filtering), e.g. to stamp timing or strip headers. */
  earlyRequestFilter?(session: ProxySession, ctx: Ctx): MaybePromise<void>;
  /** Admission: answer the request yourself (`session.respond(...)` → `'responded'`) or `'continue'`. */
  requestFilter?(session: ProxySession, ctx: Ctx): MaybePromise<FilterOutcome>;
  /**
   * Required. The upstream to forward to: one peer, or candidates in order (only a failure to
   * connect moves on to the next one; a request is never replayed once bytes were sent).
   */
  upstreamPeer(session: ProxySession, ctx: Ctx): MaybePromise<HttpPeer | readonly HttpPeer[]>;
  /** Rewrites the request about to go upstream (headers, path, method). */
  upstreamRequestFilter?(session: ProxySession, request: UpstreamRequest, ctx: Ctx): MaybePromise<void>;
  /** Sees (and may change) the upstream response head, per attempt that got a response. */
  upstreamResponseFilter?(session: ProxySession, response: UpstreamResponse, ctx: Ctx): MaybePromise<void>;
  /** Last change to the response head before it is written downstream (also for `101` upgrades). */
  responseFilter?(session: ProxySession, response: UpstreamResponse, ctx: Ctx): MaybePromise<void>;
  /**
   * A connection to `peer` could not be made (no byte was sent). Default `'next'`: the next
   * candidate of `upstreamPeer` is tried; with none left the request fails with `fault`.
   */
  failToConnect?(session: ProxySession, peer: HttpPeer, fault: Fault, ctx: Ctx): ConnectFailureDecision;
  /** An error after the connection was made (reset, timeout, abort); informational, never retried. */
  errorWhileProxy?(session: ProxySession, peer: HttpPeer, fault: Fault, ctx: Ctx): void;
  /**
   * The request failed before a response head was sent downstream. Write your own response
   * (`session.respond`) and return `'responded'`, or `'default'` for the JSON/HTML error page.
   */
  failToProxy?(session: ProxySession, fault: Fault, ctx: Ctx): MaybePromise<FailureResponseDecision>;
  /** Called once when the request is over (finished, failed or aborted); `fault` is set on failure. */
  logging?(session: ProxySession, fault: Fault | undefined, ctx: Ctx): void;
}
