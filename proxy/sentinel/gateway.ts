/**
 * `Gateway`: Frontline with the Sentinel policy phase, from one ingress file whose
 * `routes[].policies` are compiled into deployments (one per route), in the mode config chooses
 * (`sentinel.mode`):
 * ```
 * one-hop  client ─TLS─► Frontline+Sentinel phases (OneHopHooks, one request) ─► instance
 * two-hop  client ─TLS─► Frontline (TwoHopFrontlineHooks) ─keep-alive HTTP/1.1 or h2c,
 *          X-Keygate-Deployment-Id─► Sentinel listener (SentinelHooks) ─► instance
 * ```
 * Both modes use the same `SentinelHooks`, instance pools and compiled policies, so they answer
 * the same. On an ingress reload the policies are compiled again and swapped in whole; a route
 * whose deployment is not (yet) compiled is refused with 404 `deployment_not_found`, never
 * served without its policies.
 */
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../core/clock.ts';
import { Fault } from '../../core/fault.ts';
import type { Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { IngressConfig } from '../frontline/ingress-config.ts';
import { IngressFrontline } from '../frontline/ingress-frontline.ts';
import type { IngressFrontlineOptions, ReloadResult } from '../frontline/ingress-frontline.ts';
import { HttpPeer } from '../http-peer.ts';
import { ProxyServer } from '../proxy-server.ts';
import type { BalancingStrategy, InstancePoolOptions } from './instance-pool.ts';
import { OneHopHooks } from './one-hop-hooks.ts';
import type { PolicyEngine } from './policy-engine.ts';
import type { RequestLogSink } from '../../core/analytics/request-log-sink.ts';
import { SentinelHooks } from './sentinel-hooks.ts';
import type { DeploymentResolver, SentinelCtx, SentinelDeployment } from './sentinel-hooks.ts';
import { StaticDeploymentResolver } from './static-deployments.ts';
import { TwoHopFrontlineHooks } from './two-hop-frontline-hooks.ts';

/** How Frontline and Sentinel meet. */
export type GatewayMode = 'one-hop' | 'two-hop';

/** Defaults of {@link GatewayOptions}. */
export const GATEWAY_DEFAULTS = {
  mode: 'one-hop' as GatewayMode,
  trustedFrontlines: ['127.0.0.1', '::1'] as readonly string[],
  sentinelProtocol: 'http1' as 'http1' | 'h2c',
  /** Grace period of `close()` for in-flight requests, in ms. */
  closeGraceMs: 30_000,
} as const;

/** Options of {@link Gateway.start}. */
export interface GatewayOptions {
  /** The ingress (file or parsed config, ports, certificates, logger, proxy options). */
  ingress: Omit<IngressFrontlineOptions, 'wrapHooks'>;
  /** Compiles the routes' policies (holds the key verifier, rate limiter, JWT options). */
  engine: PolicyEngine;
  mode?: GatewayMode;
  balancing?: BalancingStrategy;
  /** How long an instance that refused a connection is tried last, in ms (default 10 s). */
  ejectMs?: number;
  /** Two-hop: addresses allowed to set `X-Keygate-Deployment-Id` on the Sentinel listener (default loopback). */
  trustedFrontlines?: readonly string[];
  /** Other proxies whose `X-Forwarded-For` names the client (besides Frontline's own trusted proxies). */
  trustedProxies?: readonly string[];
  /** Two-hop: Sentinel listener port (default 0: any free port) on `ingress.host`. */
  sentinelPort?: number;
  /** Two-hop: protocol of the Frontline → Sentinel hop (default `http1`, keep-alive). */
  sentinelProtocol?: 'http1' | 'h2c';
  requestLog?: RequestLogSink;
  metrics?: Metrics;
  logger?: Logger;
  clock?: Clock;
}

/** A running gateway: build with {@link Gateway.start}, stop with `close`. */
export class Gateway {
  readonly mode: GatewayMode;
  readonly ingress: IngressFrontline;
  /** Two-hop only: the Sentinel listener. */
  readonly sentinelAddress: AddressInfo | undefined;
  readonly #deployments: ReloadableDeployments;
  readonly #sentinel: ProxyServer<SentinelCtx> | undefined;
  #closing: Promise<void> | undefined;

  private constructor(mode: GatewayMode, ingress: IngressFrontline, deployments: ReloadableDeployments, sentinel: ProxyServer<SentinelCtx> | undefined, sentinelAddress: AddressInfo | undefined) {
    this.mode = mode;
    this.ingress = ingress;
    this.#deployments = deployments;
    this.#sentinel = sentinel;
    this.sentinelAddress = sentinelAddress;
  }

  /** Compiles every route's policies, then starts Sentinel (two-hop) and Frontline. Throws a `Fault` naming the bad field. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const mode = options.mode ?? GATEWAY_DEFAULTS.mode;
    const ingressOptions = options.ingress;
    const config = ingressOptions.config ?? (ingressOptions.file !== undefined ? await readConfig(ingressOptions.file) : undefined);
    if (config === undefined) throw new Fault('err:keygate:config:invalid', { publicMessage: 'the gateway needs an ingress file (--config FILE) with frontline.routes' });
    const poolOptions: InstancePoolOptions = {
      ...(options.balancing === undefined ? {} : { strategy: options.balancing }),
      ...(options.ejectMs === undefined ? {} : { ejectMs: options.ejectMs }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    };
    const deployments = new ReloadableDeployments(options.engine, poolOptions, await compileRoutes(config, options.engine, poolOptions));
    const common = {
      deployments,
      ...(options.requestLog === undefined ? {} : { requestLog: options.requestLog }),
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    };
    const frontlineTrusted = ingressOptions.proxy?.trustedProxies ?? [];
    let sentinel: ProxyServer<SentinelCtx> | undefined;
    let sentinelAddress: AddressInfo | undefined;
    let wrapHooks: IngressFrontlineOptions['wrapHooks'];
    if (mode === 'two-hop') {
      const trustedFrontlines = options.trustedFrontlines ?? GATEWAY_DEFAULTS.trustedFrontlines;
      // A trusted Frontline is a trusted proxy too: its X-Forwarded-For carries the client's address.
      const trustedProxies = [...trustedFrontlines, ...(options.trustedProxies ?? [])];
      const hooks = new SentinelHooks({ ...common, trustedFrontlines, trustedProxies });
      // The Frontline's request id is adopted, so one id runs from the client to the origin.
      sentinel = new ProxyServer<SentinelCtx>({ trustedProxies, adoptRequestIdFrom: trustedFrontlines, hooks, onHookError: (err, phase) => options.logger?.error({ err, phase }, 'sentinel hook failed') });
      const protocol = options.sentinelProtocol ?? GATEWAY_DEFAULTS.sentinelProtocol;
      sentinelAddress = await sentinel.listen({ protocol: protocol === 'h2c' ? 'h2c' : 'http', port: options.sentinelPort ?? 0, host: ingressOptions.host ?? '127.0.0.1' });
      const host = sentinelAddress.family === 'IPv6' ? `[${sentinelAddress.address}]` : sentinelAddress.address;
      const peer = new HttpPeer(`http://${host}:${sentinelAddress.port}`, { protocol, name: 'sentinel' });
      wrapHooks = (frontline) => new TwoHopFrontlineHooks(frontline, peer);
    } else {
      const sentinelHooks = new SentinelHooks({ ...common, trustedProxies: [...frontlineTrusted, ...(options.trustedProxies ?? [])] });
      wrapHooks = (frontline) => new OneHopHooks(frontline, sentinelHooks);
    }
    const userOnReload = ingressOptions.onReload;
    let ingress: IngressFrontline;
    try {
      ingress = await IngressFrontline.start({
        ...ingressOptions,
        config,
        wrapHooks,
        onReload: (result: ReloadResult) => {
          if (result.applied) void deployments.reload(ingress.config).catch((err) => options.logger?.error({ code: Fault.from(err).code, detail: Fault.from(err).publicMessage }, 'gateway policies not reloaded; previous policies kept'));
          userOnReload?.(result);
        },
      });
    } catch (err) {
      await sentinel?.close({ graceMs: 0 });
      deployments.close();
      throw err;
    }
    return new Gateway(mode, ingress, deployments, sentinel, sentinelAddress);
  }

  /** The compiled deployments (for tests and status pages). */
  get deployments(): DeploymentResolver {
    return this.#deployments;
  }

  /** Drains Frontline, then Sentinel (`graceMs`, default 30 s), and stops the compiled policies. Idempotent. */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing ??= (async () => {
      const graceMs = options.graceMs ?? GATEWAY_DEFAULTS.closeGraceMs;
      await this.ingress.close({ graceMs });
      await this.#sentinel?.close({ graceMs });
      this.#deployments.close();
    })();
    return this.#closing;
  }
}

/** Static deployments swapped whole when the ingress file reloads. */
class ReloadableDeployments implements DeploymentResolver {
  readonly #engine: PolicyEngine;
  readonly #poolOptions: InstancePoolOptions;
  #current: StaticDeploymentResolver;

  constructor(engine: PolicyEngine, poolOptions: InstancePoolOptions, initial: StaticDeploymentResolver) {
    this.#engine = engine;
    this.#poolOptions = poolOptions;
    this.#current = initial;
  }

  resolve(host: string, deploymentId: string | undefined): SentinelDeployment | undefined {
    return this.#current.resolve(host, deploymentId);
  }

  async reload(config: IngressConfig): Promise<void> {
    const next = await compileRoutes(config, this.#engine, this.#poolOptions);
    const previous = this.#current;
    this.#current = next;
    previous.close();
  }

  close(): void {
    this.#current.close();
  }
}

function compileRoutes(config: IngressConfig, engine: PolicyEngine, poolOptions: InstancePoolOptions): Promise<StaticDeploymentResolver> {
  return StaticDeploymentResolver.create(config.routes.map((route) => ({
    host: route.host, upstreams: route.upstreams, policies: route.policies, protocol: route.protocol,
  })), engine, poolOptions, 'frontline.routes');
}

async function readConfig(file: string): Promise<IngressConfig> {
  const { readIngressFile } = await import('../frontline/ingress-config.ts');
  return readIngressFile(file);
}
