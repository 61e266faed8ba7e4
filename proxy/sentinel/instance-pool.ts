/**
 * `InstancePool`: the running instances of one deployment and how a request picks among them:
 * round robin or least outstanding requests (config), with passive health: an instance that
 * refused a connection is ejected for `ejectMs` and moved behind the healthy ones (still tried
 * last, so a pool whose instances are all ejected keeps serving when one recovers). The
 * candidate order doubles as the retry order on connect failure.
 */
import { systemClock, type Clock } from '../../core/clock.ts';
import type { HttpPeer } from '../http-peer.ts';

/** How a request picks its first instance. */
export type BalancingStrategy = 'round-robin' | 'least-outstanding';

/** Defaults of {@link InstancePool}. */
export const INSTANCE_POOL_DEFAULTS = {
  /** How long an instance that refused a connection is skipped. */
  ejectMs: 10_000,
  strategy: 'round-robin' as BalancingStrategy,
} as const;

/** Options of {@link InstancePool}. */
export interface InstancePoolOptions {
  strategy?: BalancingStrategy;
  ejectMs?: number;
  clock?: Clock;
}

/** The instances of one deployment. Build when instances load; `candidates` is called per request. */
export class InstancePool {
  readonly peers: readonly HttpPeer[];
  readonly #strategy: BalancingStrategy;
  readonly #ejectMs: number;
  readonly #clock: Clock;
  readonly #outstanding: number[];
  readonly #ejectedUntilMs: number[];
  readonly #indexOf = new Map<HttpPeer, number>();
  /**
   * The try order from each starting index while no instance is ejected, built on first use and
   * shared by the requests that start there (read only); only for pools of at most
   * {@link MAX_SHARED_ORDERS_POOL_SIZE} instances, bounding them to that many squared entries.
   */
  readonly #sharedOrders: (readonly HttpPeer[] | undefined)[] | undefined;
  #cursor = 0;

  constructor(peers: readonly HttpPeer[], options: InstancePoolOptions = {}) {
    this.peers = peers;
    this.#strategy = options.strategy ?? INSTANCE_POOL_DEFAULTS.strategy;
    this.#ejectMs = options.ejectMs ?? INSTANCE_POOL_DEFAULTS.ejectMs;
    this.#clock = options.clock ?? systemClock;
    this.#outstanding = peers.map(() => 0);
    this.#ejectedUntilMs = peers.map(() => 0);
    peers.forEach((peer, index) => this.#indexOf.set(peer, index));
    this.#sharedOrders = peers.length <= MAX_SHARED_ORDERS_POOL_SIZE ? new Array(peers.length).fill(undefined) : undefined;
  }

  /**
   * The instances in the order to try them: the chosen one first, healthy before ejected. Read
   * only (while none is ejected, the same array serves every request that starts at the same
   * instance).
   */
  candidates(): readonly HttpPeer[] {
    const count = this.peers.length;
    if (count === 0) return NO_PEERS;
    const nowMs = this.#clock.nowMs();
    let start: number;
    if (this.#strategy === 'least-outstanding') {
      start = -1;
      for (let offset = 0; offset < count; offset++) {
        const index = (this.#cursor + offset) % count;
        if (this.#ejectedUntilMs[index]! > nowMs) continue;
        if (start === -1 || this.#outstanding[index]! < this.#outstanding[start]!) start = index;
      }
      if (start === -1) start = this.#cursor % count;
      this.#cursor = (this.#cursor + 1) % count;
    } else {
      start = this.#cursor;
      this.#cursor = (this.#cursor + 1) % count;
    }
    const shared = this.#sharedOrders;
    if (shared !== undefined && !this.#anyEjected(nowMs)) return (shared[start] ??= Object.freeze(this.#order(start, nowMs)));
    return this.#order(start, nowMs);
  }

  #anyEjected(nowMs: number): boolean {
    for (const until of this.#ejectedUntilMs) if (until > nowMs) return true;
    return false;
  }

  /** A new array: the instances from `start` on, healthy before ejected. */
  #order(start: number, nowMs: number): HttpPeer[] {
    const count = this.peers.length;
    const healthy: HttpPeer[] = [];
    const ejected: HttpPeer[] = [];
    for (let offset = 0; offset < count; offset++) {
      const index = (start + offset) % count;
      (this.#ejectedUntilMs[index]! > nowMs ? ejected : healthy).push(this.peers[index]!);
    }
    return ejected.length === 0 ? healthy : [...healthy, ...ejected];
  }

  /** Marks `peer` as serving one more request (call `release` when it ends). */
  acquire(peer: HttpPeer): void {
    const index = this.#indexOf.get(peer);
    if (index !== undefined) this.#outstanding[index]!++;
  }

  /** The request on `peer` ended. */
  release(peer: HttpPeer): void {
    const index = this.#indexOf.get(peer);
    if (index !== undefined && this.#outstanding[index]! > 0) this.#outstanding[index]!--;
  }

  /** `peer` refused a connection: skip it for `ejectMs`. */
  eject(peer: HttpPeer): void {
    const index = this.#indexOf.get(peer);
    if (index !== undefined) this.#ejectedUntilMs[index] = this.#clock.nowMs() + this.#ejectMs;
  }

  /** True while `peer` is ejected. */
  isEjected(peer: HttpPeer): boolean {
    const index = this.#indexOf.get(peer);
    return index !== undefined && this.#ejectedUntilMs[index]! > this.#clock.nowMs();
  }
}

/** Pools up to this size share their try orders (see `#sharedOrders`). */
const MAX_SHARED_ORDERS_POOL_SIZE = 16;
const NO_PEERS: readonly HttpPeer[] = Object.freeze([]);
