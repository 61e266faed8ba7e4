/**
 * The `InvalidationBus` contract: how a node tells every node (itself included) that cached
 * entries are out of date. Invalidations carry no values, only "drop these keys" or "drop the
 * whole cache", so applying one twice costs a refetch and nothing else. Implementations: the
 * in-memory bus (one process, the default) in `memory-bus.ts`, and the libp2p gossip bus in
 * `gossip/`. All of them pass the shared suite in `test/helpers/invalidation-bus-suite.ts`.
 */

/** The cache name of a local resync: "drop everything, you may have missed messages". */
export const ALL_CACHES = '*';

/** One invalidation as it travels between nodes (the protobuf message of `invalidation.proto`). */
export interface Invalidation {
  /** The cache's resource name, e.g. `verification_key_by_hash`; {@link ALL_CACHES} for a resync. */
  readonly cache: string;
  /** Keys to drop; empty when `clearAll` is set. */
  readonly keys: readonly string[];
  /** Drop every entry of the cache. */
  readonly clearAll: boolean;
  /**
   * Hybrid logical clock version stamped by the origin (see `hybrid-logical-clock.ts`):
   * physical Unix ms in the upper 48 bits, a logical counter in the lower 16.
   */
  readonly version: bigint;
  /** Node id of the node that stamped the version. */
  readonly originNode: string;
  /** Origin's wall clock when it sent the message, Unix ms (feeds the propagation-latency metric). */
  readonly sentAtMs: number;
}

/** What a caller asks to invalidate; the bus stamps version, origin and time. */
export interface InvalidationRequest {
  readonly cache: string;
  /** Keys to drop. Required unless `clearAll` is true. */
  readonly keys?: readonly string[];
  readonly clearAll?: boolean;
}

/**
 * Receives the invalidations this node must apply, once each, in arrival order. Called from the
 * bus's delivery path: keep it short (drop cache entries, no I/O). A thrown error or rejected
 * promise is counted and logged as the bus's last error, and never stops delivery.
 */
export type InvalidationHandler = (invalidation: Invalidation) => void | Promise<void>;

/** Why a received invalidation was not applied. */
export type InvalidationIgnoreReason = 'own' | 'duplicate' | 'older' | 'malformed';

/** The last failure a bus saw, for status pages and metrics. The message never holds secrets. */
export interface InvalidationBusError {
  readonly message: string;
  readonly atMs: number;
}

/** A snapshot of a bus's health, cheap to take (no I/O). */
export interface InvalidationBusStatus {
  /** Node id stamped into this node's invalidations. */
  readonly nodeId: string;
  /** Peers currently reachable that receive this node's invalidations. */
  readonly peerCount: number;
  /**
   * True when this node expects peers but reaches none: invalidations from elsewhere cannot
   * arrive, so cache entries only converge when they expire.
   */
  readonly fallbackToExpiry: boolean;
  readonly publishedCount: number;
  readonly receivedCount: number;
  readonly appliedCount: number;
  readonly ignoredCount: number;
  readonly lastError: InvalidationBusError | undefined;
}

/**
 * The bus. `publish` is called after the write it describes has committed; it applies the
 * invalidation on this node (its subscribers run before the returned promise settles), then
 * sends it to every peer, best effort: a lost message converges when the entry expires.
 */
export interface InvalidationBus {
  /** This node's id, stamped as `originNode` into everything it publishes. */
  readonly nodeId: string;
  /**
   * Stamps a new version and invalidates here and on every peer. Rejects with a `Fault`
   * (`err:keygate:gossip:invalid_invalidation`) for a request outside the bounds, and with
   * `err:keygate:gossip:closed` after {@link close}; a peer being unreachable is not an error.
   * Resolves with the stamped invalidation (keys split into several messages share its version).
   */
  publish(request: InvalidationRequest): Promise<Invalidation>;
  /**
   * Forwards an invalidation stamped elsewhere, unchanged (version and origin kept): for
   * bridges between clusters and for replay. It is applied here under the same ordering
   * rules as a received one.
   */
  relay(invalidation: Invalidation): Promise<void>;
  /** Registers a handler; returns the function that removes it. */
  subscribe(handler: InvalidationHandler): () => void;
  /** Current health; see {@link InvalidationBusStatus}. */
  status(): InvalidationBusStatus;
  /** Stops sending and delivering. Idempotent. */
  close(): Promise<void>;
}
