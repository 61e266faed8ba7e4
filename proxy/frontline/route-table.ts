/**
 * `RouteTable`: Frontline's host → route map, compiled when configuration loads (never per
 * request). Lookup is exact host first, then the one-label wildcard (`a.b.example.com` →
 * `*.b.example.com`, never deeper). Hosts are lower-cased, port and trailing dot stripped by the
 * caller (`ProxySession.host`). Each route carries its upstreams as ready `HttpPeer`s and
 * precomputed round-robin rotations, so a lookup plus balancing allocates nothing.
 */
import type { HttpPeerOptions } from '../http-peer.ts';
import { HttpPeer } from '../http-peer.ts';
import type { IngressRoute } from './ingress-config.ts';

/** One compiled route. Immutable except for its round-robin cursor. */
export class FrontlineRoute {
  /** The configured host (`app.example.com` or `*.example.com`). */
  readonly host: string;
  /** Local upstreams (deployment instances or the environment's gateway). */
  readonly upstreams: readonly HttpPeer[];
  /** Peer Frontlines in other regions: the remote target, or the fallback after local dial failures. */
  readonly peers: readonly HttpPeer[];
  /** Policies for the gateway, as configured (interpreted by the Sentinel layer, not here). */
  readonly policies: readonly unknown[];
  /** Identity of the route's configuration: equal fingerprints mean an unchanged route on reload. */
  readonly fingerprint: string;
  /** Optional identifiers from a database-backed store (deployment, environment). */
  readonly deploymentId: string | undefined;
  readonly #withPeers: readonly (readonly HttpPeer[])[];
  readonly #localOnly: readonly (readonly HttpPeer[])[];
  #cursor = 0;

  constructor(route: IngressRoute & { deploymentId?: string }, peerOptions: HttpPeerOptions = {}) {
    this.host = route.host;
    this.policies = route.policies;
    this.deploymentId = route.deploymentId;
    this.fingerprint = JSON.stringify([route.host, route.upstreams, route.peers, route.protocol, route.policies, route.deploymentId ?? null]);
    this.upstreams = route.upstreams.map((url) => new HttpPeer(url, { protocol: route.protocol, name: `${route.host} ${url}` }));
    this.peers = route.peers.map((url) => new HttpPeer(url, { ...peerOptions, name: `peer ${url}` }));
    // Every rotation of the local upstreams, each followed by the peers in order: the request
    // tries one upstream, moves on only after a failed connect, and reaches a peer last.
    const rotations: HttpPeer[][] = [];
    const count = this.upstreams.length;
    for (let start = 0; start < Math.max(count, 1); start++) {
      const rotation: HttpPeer[] = [];
      for (let offset = 0; offset < count; offset++) rotation.push(this.upstreams[(start + offset) % count]!);
      rotations.push(rotation);
    }
    this.#localOnly = rotations;
    this.#withPeers = rotations.map((rotation) => [...rotation, ...this.peers]);
  }

  /** True when no local upstream exists: every request goes to a peer region. */
  get remoteOnly(): boolean {
    return this.upstreams.length === 0;
  }

  /**
   * The candidates of one request, round-robin over the local upstreams; `allowPeers` false
   * leaves the peers out (the hop limit was reached). Called per request; allocates nothing.
   */
  candidates(allowPeers: boolean): readonly HttpPeer[] {
    const index = this.#cursor;
    this.#cursor = index + 1 >= this.#localOnly.length ? 0 : index + 1;
    return allowPeers ? this.#withPeers[index]! : this.#localOnly[index]!;
  }
}

/** Host → route, exact and one-label wildcard. Built at load; swapped whole on reload. */
export class RouteTable {
  readonly #exact = new Map<string, FrontlineRoute>();
  readonly #wildcard = new Map<string, FrontlineRoute>();

  /**
   * Compiles `routes`. Routes whose configuration did not change since `previous` are reused as
   * they are (same peers, same balancing state). Throws a `Fault` if an upstream URL is invalid.
   */
  constructor(routes: readonly IngressRoute[], options: { peerOptions?: HttpPeerOptions; previous?: RouteTable } = {}) {
    for (const route of routes) {
      const compiled = new FrontlineRoute(route, options.peerOptions);
      const kept = options.previous?.get(route.host);
      this.#put(kept !== undefined && kept.fingerprint === compiled.fingerprint ? kept : compiled);
    }
  }

  /** Number of configured hosts. */
  get size(): number {
    return this.#exact.size + this.#wildcard.size;
  }

  /** Every route, exact ones first. */
  routes(): FrontlineRoute[] {
    return [...this.#exact.values(), ...this.#wildcard.values()];
  }

  /** The route configured for exactly `host` (`*.example.com` for a wildcard entry). */
  get(host: string): FrontlineRoute | undefined {
    return host.startsWith('*.') ? this.#wildcard.get(host.slice(1)) : this.#exact.get(host);
  }

  /** The route serving a normalised request host: exact, then one-label wildcard. Per request. */
  lookup(host: string): FrontlineRoute | undefined {
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    const dot = host.indexOf('.');
    return dot <= 0 ? undefined : this.#wildcard.get(host.slice(dot));
  }

  #put(route: FrontlineRoute): void {
    // Wildcards are keyed by their suffix including the dot (`.example.com`): one slice per lookup.
    if (route.host.startsWith('*.')) this.#wildcard.set(route.host.slice(1), route);
    else this.#exact.set(route.host, route);
  }
}
