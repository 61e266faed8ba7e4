/**
 * `PhaseRunner<Ctx>`: runs the phases of a {@link ProxyHooks} for every request. The hooks are
 * read once, at construction: an absent phase is skipped by a null check, a phase that returns a
 * plain value continues synchronously, and only a real promise is awaited (through `then`, so a
 * fully synchronous proxy allocates no promise at all). Plug `handleRequest` / `handleUpgrade`
 * into any `node:http`, `node:https` or `node:http2` server, or let `ProxyServer` do it.
 */
import type { Duplex } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { Fault } from '../core/fault.ts';
import { newRequestId } from '../core/id.ts';
import { createForwardingEngine } from './forward/create-forwarding-engine.ts';
import type { ForwardingEngineName } from './forward/create-forwarding-engine.ts';
import type { ForwardingEngine } from './forward/forwarding-engine.ts';
import { normalizeAddress, TrustedProxies } from './forward/trusted-proxies.ts';
import type {
  ConnectFailureDecision, FailureResponseDecision, FilterOutcome, MaybePromise, ProxyHooks, UpstreamResponse,
} from './hooks.ts';
import type { HttpPeer } from './http-peer.ts';
import { Http1DownstreamResponse } from './http1-downstream.ts';
import { ProxySession, SessionDeadlines } from './proxy-session.ts';
import type { DownstreamRequest, DownstreamResponse } from './proxy-session.ts';
import type { SessionRuntime } from './session-runtime.ts';

/** Options of {@link PhaseRunner}; every bound has a named default in {@link PHASE_RUNNER_DEFAULTS}. */
export interface PhaseRunnerOptions {
  /**
   * The forwarding engine: an instance (closed by whoever made it), or a name (`raw`, `undici`)
   * for a new one the runner owns and closes in `close()`. Default `raw` (`RawHttp1Engine`).
   */
  engine?: ForwardingEngine | ForwardingEngineName;
  /** IPs / CIDRs of proxies in front of us whose `X-Forwarded-*` are kept and appended to (default none). */
  trustedProxies?: readonly string[];
  /** Header carrying the request id upstream and downstream (default `x-keygate-request-id`; null = none). */
  requestIdHeader?: string | null;
  /** Total time for a non-upgrade request, from arrival to the last byte (default 15 min; 0 = none) → 504. */
  totalTimeoutMs?: number;
  /** Longest wait for the upstream response head once the request is written (default 300 s; 0 = none) → 504. */
  headersTimeoutMs?: number;
  /** Longest silence between upstream body chunks (default 300 s; 0 = none) → 504 or a cut response. */
  bodyIdleTimeoutMs?: number;
  /** Upstream connection attempts per request across candidate peers (default 3). */
  maxConnectAttempts?: number;
  /**
   * IPs / CIDRs of previous hops (a Frontline in front of a Sentinel) whose `requestIdHeader` is
   * adopted as this request's id, so one id runs end to end (default none: always a new id). A
   * value that is not 1–128 characters of `[A-Za-z0-9_.:-]` is ignored.
   */
  adoptRequestIdFrom?: readonly string[];
  /** Request id generator (default `req_` + 9 random characters). */
  newRequestId?: () => string;
  /** Reports errors thrown by the `logging` phase and other hook failures that cannot reach a client. */
  onHookError?: (err: unknown, phase: string) => void;
}

/** Defaults of {@link PhaseRunnerOptions}. */
export const PHASE_RUNNER_DEFAULTS = {
  requestIdHeader: 'x-keygate-request-id',
  totalTimeoutMs: 15 * 60_000,
  headersTimeoutMs: 300_000,
  bodyIdleTimeoutMs: 300_000,
  maxConnectAttempts: 3,
} as const;

type Phase<Ctx, R> = ((session: ProxySession, ctx: Ctx) => MaybePromise<R>) | undefined;

const SESSION = Symbol('keygate.proxySession');
const REQUEST_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Runs one set of hooks over every request given to it. */
export class PhaseRunner<Ctx> implements SessionRuntime {
  readonly engine: ForwardingEngine;
  readonly trustedProxies: TrustedProxies;
  readonly requestIdHeader: string | undefined;
  readonly totalTimeoutMs: number;
  readonly deadlines: SessionDeadlines;
  readonly headersTimeoutMs: number;
  readonly bodyIdleTimeoutMs: number;
  readonly maxConnectAttempts: number;
  draining = false;
  readonly newRequestId: () => string;

  readonly #requestIdSources: TrustedProxies | undefined;
  readonly #ownsEngine: boolean;
  readonly #onHookError: (err: unknown, phase: string) => void;
  readonly #newCtx: () => Ctx;
  readonly #early: Phase<Ctx, void>;
  readonly #requestFilter: Phase<Ctx, FilterOutcome>;
  readonly #upstreamPeer: (session: ProxySession, ctx: Ctx) => MaybePromise<HttpPeer | readonly HttpPeer[]>;
  readonly #upstreamRequestFilter: ProxyHooks<Ctx>['upstreamRequestFilter'];
  readonly #upstreamResponseFilter: ProxyHooks<Ctx>['upstreamResponseFilter'];
  readonly #responseFilter: ProxyHooks<Ctx>['responseFilter'];
  readonly #failToConnect: ProxyHooks<Ctx>['failToConnect'];
  readonly #errorWhileProxy: ProxyHooks<Ctx>['errorWhileProxy'];
  readonly #failToProxy: ProxyHooks<Ctx>['failToProxy'];
  readonly #logging: ProxyHooks<Ctx>['logging'];

  constructor(hooks: ProxyHooks<Ctx>, options: PhaseRunnerOptions = {}) {
    if (typeof hooks.upstreamPeer !== 'function') {
      throw new Fault('err:frontline:config:invalid_configuration', { internalMessage: 'ProxyHooks.upstreamPeer is required' });
    }
    // Read once: the per-request path only tests these fields (hooks are bound to their object).
    this.#newCtx = typeof hooks.newCtx === 'function' ? hooks.newCtx.bind(hooks) : () => ({}) as Ctx;
    this.#early = hooks.earlyRequestFilter?.bind(hooks);
    this.#requestFilter = hooks.requestFilter?.bind(hooks);
    this.#upstreamPeer = hooks.upstreamPeer.bind(hooks);
    this.#upstreamRequestFilter = hooks.upstreamRequestFilter?.bind(hooks);
    this.#upstreamResponseFilter = hooks.upstreamResponseFilter?.bind(hooks);
    this.#responseFilter = hooks.responseFilter?.bind(hooks);
    this.#failToConnect = hooks.failToConnect?.bind(hooks);
    this.#errorWhileProxy = hooks.errorWhileProxy?.bind(hooks);
    this.#failToProxy = hooks.failToProxy?.bind(hooks);
    this.#logging = hooks.logging?.bind(hooks);

    const engine = options.engine;
    this.#ownsEngine = engine === undefined || typeof engine === 'string';
    this.engine = engine === undefined || typeof engine === 'string' ? createForwardingEngine(engine) : engine;
    this.trustedProxies = new TrustedProxies(options.trustedProxies ?? []);
    const requestIdHeader = options.requestIdHeader === undefined ? PHASE_RUNNER_DEFAULTS.requestIdHeader : options.requestIdHeader;
    this.requestIdHeader = requestIdHeader === null ? undefined : requestIdHeader.toLowerCase();
    this.totalTimeoutMs = options.totalTimeoutMs ?? PHASE_RUNNER_DEFAULTS.totalTimeoutMs;
    this.deadlines = new SessionDeadlines(Math.max(this.totalTimeoutMs, 1));
    this.headersTimeoutMs = options.headersTimeoutMs ?? PHASE_RUNNER_DEFAULTS.headersTimeoutMs;
    this.bodyIdleTimeoutMs = options.bodyIdleTimeoutMs ?? PHASE_RUNNER_DEFAULTS.bodyIdleTimeoutMs;
    this.maxConnectAttempts = options.maxConnectAttempts ?? PHASE_RUNNER_DEFAULTS.maxConnectAttempts;
    this.newRequestId = options.newRequestId ?? newRequestId;
    const sources = options.adoptRequestIdFrom ?? [];
    this.#requestIdSources = sources.length === 0 || this.requestIdHeader === undefined ? undefined : new TrustedProxies(sources);
    this.#onHookError = options.onHookError ?? (() => {});
  }

  /** The `request` listener: one call per downstream request (HTTP/1.1 or HTTP/2). */
  readonly handleRequest = (req: DownstreamRequest, res: DownstreamResponse): void => {
    const session = new ProxySession(this, req, res);
    if (res instanceof Http1DownstreamResponse) {
      // Keygate's HTTP/1.1 response has a slot for this: no listener table, no closure, and no
      // property added to the response per request.
      res.onClose(sessionClosed, session);
    } else {
      (res as unknown as Record<symbol, ProxySession>)[SESSION] = session;
      // `on`, not `once`: a response closes once, and `once` allocates a wrapper per request.
      (res as ServerResponse).on('close', onResponseClose);
    }
    this.#start(session);
  };

  /** The `upgrade` listener (HTTP/1.1 `Upgrade`, e.g. WebSocket): same phases, then a raw tunnel. */
  readonly handleUpgrade = (req: DownstreamRequest, socket: Duplex, head: Buffer): void => {
    const session = new ProxySession(this, req, undefined, socket, head);
    socket.on('error', noop);
    socket.once('close', () => session.downstreamClosed(session.tunneled || session.downstreamEnded));
    this.#start(session);
  };

  /** Closes the engine's pools if the runner created the engine. */
  async close(): Promise<void> {
    if (this.#ownsEngine) await this.engine.close();
  }

  #start(session: ProxySession): void {
    // Two Host headers would let this proxy route on one and the upstream on the other (RFC 9112
    // §3.2 requires a 400); Node keeps only the first in `headers`, so count the raw ones.
    if (hasDuplicateHost(session.req)) {
      session.fail(DUPLICATE_HOST);
      return;
    }
    let ctx: Ctx;
    try {
      ctx = this.#newCtx();
    } catch (err) {
      session.fail(toFault(err));
      return;
    }
    session.ctx = ctx;
    const early = this.#early;
    if (early === undefined) {
      this.#runRequestFilter(session);
      return;
    }
    let result: MaybePromise<void>;
    try {
      result = early(session, ctx);
    } catch (err) {
      session.fail(toFault(err));
      return;
    }
    if (isPromise(result)) result.then(() => this.#runRequestFilter(session), (err: unknown) => session.fail(toFault(err)));
    else this.#runRequestFilter(session);
  }

  #runRequestFilter(session: ProxySession): void {
    const filter = this.#requestFilter;
    if (filter === undefined || session.done) {
      this.#runUpstreamPeer(session);
      return;
    }
    let result: MaybePromise<FilterOutcome>;
    try {
      result = filter(session, session.ctx as Ctx);
    } catch (err) {
      session.fail(toFault(err));
      return;
    }
    if (isPromise(result)) {
      result.then((outcome) => { if (outcome !== 'responded') this.#runUpstreamPeer(session); }, (err: unknown) => session.fail(toFault(err)));
    } else if (result !== 'responded') {
      this.#runUpstreamPeer(session);
    }
  }

  #runUpstreamPeer(session: ProxySession): void {
    if (session.done) return;
    let result: MaybePromise<HttpPeer | readonly HttpPeer[]>;
    try {
      result = this.#upstreamPeer(session, session.ctx as Ctx);
    } catch (err) {
      session.fail(toFault(err));
      return;
    }
    if (isPromise(result)) result.then((peers) => this.#runUpstreamRequestFilter(session, peers), (err: unknown) => session.fail(toFault(err)));
    else this.#runUpstreamRequestFilter(session, result);
  }

  #runUpstreamRequestFilter(session: ProxySession, peers: HttpPeer | readonly HttpPeer[]): void {
    if (session.done) return;
    try {
      const request = session.prepareUpstream(peers);
      const filter = this.#upstreamRequestFilter;
      if (filter !== undefined) {
        const result = filter(session, request, session.ctx as Ctx);
        if (isPromise(result)) {
          result.then(() => session.startForwarding(), (err: unknown) => session.fail(toFault(err)));
          return;
        }
      }
    } catch (err) {
      session.fail(toFault(err));
      return;
    }
    session.startForwarding();
  }

  // ---- SessionRuntime -----------------------------------------------------------------------

  inboundRequestId(req: DownstreamRequest): string | undefined {
    const sources = this.#requestIdSources;
    if (sources === undefined) return undefined;
    const value = req.headers[this.requestIdHeader!];
    // Security: only a configured previous hop names the id (a client could otherwise make its
    // requests look like someone else's in logs); the header is checked before the address.
    if (typeof value !== 'string' || !REQUEST_ID_PATTERN.test(value)) return undefined;
    return sources.check(normalizeAddress(req.socket?.remoteAddress)) ? value : undefined;
  }

  failToConnect(session: ProxySession, peer: HttpPeer, fault: Fault): ConnectFailureDecision {
    const hook = this.#failToConnect;
    if (hook === undefined) return 'next';
    try {
      return hook(session, peer, fault, session.ctx as Ctx);
    } catch (err) {
      this.#onHookError(err, 'failToConnect');
      return 'fail';
    }
  }

  errorWhileProxy(session: ProxySession, peer: HttpPeer, fault: Fault): void {
    const hook = this.#errorWhileProxy;
    if (hook === undefined) return;
    try {
      hook(session, peer, fault, session.ctx as Ctx);
    } catch (err) {
      this.#onHookError(err, 'errorWhileProxy');
    }
  }

  failToProxy(session: ProxySession, fault: Fault): FailureResponseDecision | Promise<FailureResponseDecision> {
    const hook = this.#failToProxy;
    if (hook === undefined) return 'default';
    try {
      return hook(session, fault, session.ctx as Ctx);
    } catch (err) {
      this.#onHookError(err, 'failToProxy');
      return 'default';
    }
  }

  runResponsePhases(session: ProxySession, response: UpstreamResponse): Promise<void> | undefined {
    const upstreamFilter = this.#upstreamResponseFilter;
    const responseFilter = this.#responseFilter;
    const ctx = session.ctx as Ctx;
    try {
      if (upstreamFilter !== undefined) {
        const result = upstreamFilter(session, response, ctx);
        if (isPromise(result)) {
          return responseFilter === undefined ? result : result.then(() => responseFilter(session, response, ctx));
        }
      }
      if (responseFilter !== undefined) {
        const result = responseFilter(session, response, ctx);
        if (isPromise(result)) return result;
      }
    } catch (err) {
      // Rare: a throwing response phase. The session turns the rejection into the fault's response.
      return Promise.reject(err);
    }
    return undefined;
  }

  finish(session: ProxySession): void {
    const logging = this.#logging;
    if (logging === undefined) return;
    try {
      logging(session, session.fault, session.ctx as Ctx);
    } catch (err) {
      this.#onHookError(err, 'logging');
    }
  }
}

function onResponseClose(this: DownstreamResponse): void {
  const session = (this as unknown as Record<symbol, ProxySession>)[SESSION]!;
  session.downstreamClosed(this.writableFinished);
}

/** The close callback of a keygate HTTP/1.1 response (`Http1DownstreamResponse.onClose`). */
function sessionClosed(this: ProxySession): void {
  this.downstreamClosed(this.res!.writableFinished);
}

function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

const DUPLICATE_HOST = Fault.expected('err:user:bad_request:invalid_host', { publicMessage: 'The request carries more than one Host header.' });

/** True when an HTTP/1.x request has more than one Host header. Per request, before any phase. */
function hasDuplicateHost(req: DownstreamRequest): boolean {
  if (req.httpVersionMajor !== 1) return false;
  const raw = req.rawHeaders;
  let seen = false;
  for (let index = 0; index < raw.length; index += 2) {
    const name = raw[index]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

function toFault(err: unknown): Fault {
  return Fault.from(err, 'err:frontline:platform:internal_server_error');
}

function noop(): void {}
