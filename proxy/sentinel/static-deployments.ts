/**
 * `StaticDeploymentResolver`: deployments from the ingress file's routes
 * (`"routes": [{ "host", "upstreams", "policies" }]`), one deployment per route, keyed by host
 * (exact, or a one-label wildcard `*.example.com`). Policies are validated (errors name
 * `routes[i].policies[j]...`) and compiled when the file loads; build a new resolver on reload.
 */
import type { HttpPeer } from '../http-peer.ts';
import { HttpPeer as Peer } from '../http-peer.ts';
import { InstancePool } from './instance-pool.ts';
import type { InstancePoolOptions } from './instance-pool.ts';
import type { CompiledPolicySet, PolicyEngine } from './policy-engine.ts';
import { parsePolicies } from './policy/parse-policies.ts';
import type { Policy } from './policy/policy-types.ts';
import type { DeploymentResolver, SentinelDeployment } from './sentinel-hooks.ts';

/** One static route as the ingress file gives it. */
export interface StaticRoute {
  host: string;
  upstreams: readonly string[];
  policies?: readonly unknown[];
  protocol?: 'http1' | 'h2c';
  /** Workspace that owns rate-limit counters (default `static`; KeyAuth uses the key space's own workspace). */
  workspaceId?: string;
}

/** {@link DeploymentResolver} over static routes. */
export class StaticDeploymentResolver implements DeploymentResolver {
  readonly #byHost: Map<string, SentinelDeployment>;

  private constructor(byHost: Map<string, SentinelDeployment>) {
    this.#byHost = byHost;
  }

  /** Validates and compiles every route's policies; throws a `Fault` (422) with the path of the first bad field. */
  static async create(routes: readonly StaticRoute[], engine: PolicyEngine, poolOptions: InstancePoolOptions = {}, location = 'routes'): Promise<StaticDeploymentResolver> {
    const byHost = new Map<string, SentinelDeployment>();
    for (const [index, route] of routes.entries()) {
      const policies = parsePolicies(route.policies ?? [], `${location}[${index}].policies`);
      const compiled: CompiledPolicySet = await engine.compile(policies);
      const peers: HttpPeer[] = route.upstreams.map((url) => new Peer(url, { protocol: route.protocol ?? 'http1', name: `${route.host} ${url}` }));
      const host = route.host.toLowerCase();
      byHost.set(host, {
        id: staticDeploymentId(host),
        workspaceId: route.workspaceId ?? 'static',
        policies: compiled,
        instances: new InstancePool(peers, poolOptions),
        ...secretLocations(policies),
      });
    }
    return new StaticDeploymentResolver(byHost);
  }

  /**
   * By id first (`static:<route host>`, set by a trusted Frontline or the one-hop composition),
   * else by Host: exact, then the one-label wildcard. Called per request.
   */
  resolve(host: string, deploymentId?: string): SentinelDeployment | undefined {
    if (deploymentId !== undefined && deploymentId.startsWith(STATIC_ID_PREFIX)) return this.#byHost.get(deploymentId.slice(STATIC_ID_PREFIX.length));
    const exact = this.#byHost.get(host);
    if (exact !== undefined) return exact;
    const dot = host.indexOf('.');
    return dot === -1 ? undefined : this.#byHost.get(`*${host.slice(dot)}`);
  }

  /** Stops what the compiled policies hold. */
  close(): void {
    for (const deployment of this.#byHost.values()) deployment.policies.close();
  }
}

const STATIC_ID_PREFIX = 'static:';

/** The deployment id of a static route, from its configured host (`app.example.com`, `*.example.com`). */
export function staticDeploymentId(routeHost: string): string {
  return STATIC_ID_PREFIX + routeHost.toLowerCase();
}

/**
 * Header and query names that carry keys, from every KeyAuth policy, enabled or not (they are
 * redacted in logs whatever the policy state, §7.3); `authorization` always.
 */
export function secretLocations(policies: readonly Policy[]): { secretHeaders: Set<string>; secretQueryParams: Set<string> } {
  const secretHeaders = new Set(['authorization', 'x-keygate-principal']);
  const secretQueryParams = new Set<string>();
  for (const policy of policies) {
    for (const location of policy.keyauth?.locations ?? []) {
      if (location.header !== undefined) secretHeaders.add(location.header.name);
      if (location.queryParam !== undefined) secretQueryParams.add(location.queryParam.name);
    }
  }
  return { secretHeaders, secretQueryParams };
}
