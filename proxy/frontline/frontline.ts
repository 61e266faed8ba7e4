/**
 * `Frontline`: keygate's TLS ingress. One `ProxyServer` running {@link FrontlineHooks} on an
 * HTTPS listener (SNI certificates from a `CertificateStore`, ALPN `h2` and `http/1.1`), plus a
 * plain-HTTP listener for ACME HTTP-01 challenges, health probes and 308 redirects to HTTPS.
 * Routes come from a `RouteStore` (static file or database). `close()` drains both listeners.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { newRequestId } from '../../core/id.ts';
import type { Logger } from '../../core/log.ts';
import { defaultMetrics } from '../../core/metrics.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { ProxyHooks } from '../hooks.ts';
import type { PhaseRunnerOptions } from '../phase-runner.ts';
import { ProxyServer } from '../proxy-server.ts';
import type { CertificateStore } from '../tls/certificate-store.ts';
import type { AcmeChallengeStore } from './acme-challenge-store.ts';
import { FRONTLINE_HOOKS_DEFAULTS, FrontlineHooks } from './frontline-hooks.ts';
import { FrontlineMetrics } from './frontline-metrics.ts';
import type { HealthState } from './health.ts';
import { createHttpListenerHandler } from './http-listener.ts';
import { PeerHopAuthenticator } from './peer-hop.ts';
import type { RouteStore } from './route-store.ts';

/** Options of {@link Frontline}. */
export interface FrontlineOptions {
  routes: RouteStore;
  certificates: CertificateStore;
  /** ACME HTTP-01 answers for the HTTP listener. */
  challenges?: AcmeChallengeStore;
  /** `X-Keygate-Frontline-Id` value (default `frontline`). */
  instanceId?: string;
  /** `X-Keygate-Region` value (default `local`). */
  region?: string;
  /** Hop limit between Frontlines (default 10). */
  maxHops?: number;
  /** Secret shared by the Frontline fleet to authenticate hop headers; without it, inbound hop counts are not trusted. */
  peerSecret?: string;
  /** Registry for the `keygate_frontline_*` metrics (default the process-wide one). */
  metrics?: Metrics;
  /** Access log and errors; undefined = silent. */
  logger?: Logger;
  /** Options of the proxy core (timeouts, trusted proxies, engine). */
  proxy?: PhaseRunnerOptions;
  /**
   * Who parses HTTP/1.1 on the HTTPS listener (`frontline.http1Parser`): `keygate` (default),
   * keygate's own request path with node:http taking what it does not handle, or `node`, node:http
   * for every request. The plain HTTP listener (redirects, ACME) is node:http either way.
   */
  http1Parser?: 'keygate' | 'node';
  /** ALPN offered on HTTPS (default `h2`, `http/1.1`). */
  alpnProtocols?: readonly ('h2' | 'http/1.1')[];
  /** Port in HTTP → HTTPS redirects (default: the bound HTTPS port). */
  redirectPort?: number;
  /**
   * Wraps Frontline's phases before they are served, e.g. to run the gateway's policy phase in
   * the same request (one hop) or to forward every route to a Sentinel (two hops). Default: none.
   */
  wrapHooks?: (hooks: FrontlineHooks) => ProxyHooks<any>;
}

/** Where the listeners go. */
export interface FrontlineListenOptions {
  /** Bind address of both listeners (default `127.0.0.1`). */
  host?: string;
  /** HTTPS port (0 = any free port). */
  httpsPort: number;
  /** HTTP port (0 = any free port); undefined = no HTTP listener. */
  httpPort?: number;
  /** `SO_REUSEPORT`, to share the ports between worker processes. */
  reusePort?: boolean;
}

/** The bound addresses. */
export interface FrontlineAddresses {
  https: AddressInfo;
  http: AddressInfo | undefined;
}

/** A Frontline instance: build, `listen`, later `close`. */
export class Frontline {
  readonly hooks: FrontlineHooks;
  readonly proxy: ProxyServer<any>;
  readonly metrics: FrontlineMetrics;
  readonly routes: RouteStore;
  readonly certificates: CertificateStore;
  /** Port used in redirects; settable so a reload can change it. */
  redirectPort: number | undefined;
  readonly #options: FrontlineOptions;
  readonly #health: { started: boolean; readonly draining: boolean };
  #httpServer: http.Server | undefined;
  readonly #httpSockets = new Set<Socket>();
  #httpsPort = 443;
  #closing: Promise<void> | undefined;

  constructor(options: FrontlineOptions) {
    this.#options = options;
    this.routes = options.routes;
    this.certificates = options.certificates;
    this.redirectPort = options.redirectPort;
    this.metrics = new FrontlineMetrics(options.metrics ?? defaultMetrics);
    const proxyRef: { proxy?: ProxyServer<any> } = {};
    const health = {
      started: false,
      get draining(): boolean {
        return proxyRef.proxy?.draining ?? false;
      },
    };
    this.#health = health;
    this.hooks = new FrontlineHooks({
      routes: options.routes,
      hopAuthenticator: new PeerHopAuthenticator(options.peerSecret),
      metrics: this.metrics,
      health,
      instanceId: options.instanceId ?? FRONTLINE_HOOKS_DEFAULTS.instanceId,
      region: options.region ?? FRONTLINE_HOOKS_DEFAULTS.region,
      maxHops: options.maxHops ?? FRONTLINE_HOOKS_DEFAULTS.maxHops,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
    this.proxy = new ProxyServer<any>({
      ...options.proxy,
      hooks: options.wrapHooks?.(this.hooks) ?? this.hooks,
      onHookError: (err, phase) => options.logger?.error({ err, phase }, 'frontline hook failed'),
    });
    proxyRef.proxy = this.proxy;
  }

  /** Liveness and readiness as the health endpoints report them. */
  get health(): HealthState {
    return this.#health;
  }

  /** Starts the HTTPS listener and, when `httpPort` is given, the HTTP listener. Call once. */
  async listen(options: FrontlineListenOptions): Promise<FrontlineAddresses> {
    const host = options.host ?? '127.0.0.1';
    const https = await this.proxy.listen({
      protocol: 'https',
      certificates: this.certificates,
      port: options.httpsPort,
      host,
      ...(options.reusePort === undefined ? {} : { reusePort: options.reusePort }),
      ...(this.#options.alpnProtocols === undefined ? {} : { alpnProtocols: this.#options.alpnProtocols }),
      ...(this.#options.http1Parser === undefined ? {} : { http1Parser: this.#options.http1Parser }),
    });
    this.#httpsPort = https.port;
    let plain: AddressInfo | undefined;
    if (options.httpPort !== undefined) plain = await this.#listenHttp(host, options.httpPort, options.reusePort);
    this.#health.started = true;
    return { https, http: plain };
  }

  /**
   * Drains: both listeners stop accepting, in-flight requests and tunnels get `graceMs`
   * (default 30 s), idle connections close at once. Idempotent.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing ??= this.#close(options.graceMs);
    return this.#closing;
  }

  async #close(graceMs: number | undefined): Promise<void> {
    const server = this.#httpServer;
    const httpClosed = server === undefined ? Promise.resolve() : new Promise<void>((resolve) => {
      server.close(() => resolve());
      // The HTTP listener answers instantly (redirects, challenges): nothing worth waiting for.
      server.closeIdleConnections();
      for (const socket of this.#httpSockets) socket.destroySoon();
    });
    await Promise.all([httpClosed, this.proxy.close(graceMs === undefined ? {} : { graceMs })]);
    await this.routes.close?.();
    this.certificates.close();
  }

  async #listenHttp(host: string, port: number, reusePort: boolean | undefined): Promise<AddressInfo> {
    const handler = createHttpListenerHandler({
      challenges: this.#options.challenges,
      metrics: this.metrics,
      health: this.#health,
      redirectPort: () => this.redirectPort ?? this.#httpsPort,
      newRequestId,
    });
    const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 }, handler);
    server.on('clientError', (_err, socket) => socket.destroy());
    server.on('connection', (socket: Socket) => {
      this.#httpSockets.add(socket);
      socket.once('close', () => this.#httpSockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, ...(reusePort === undefined ? {} : { reusePort }) }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#httpServer = server;
    return server.address() as AddressInfo;
  }
}
