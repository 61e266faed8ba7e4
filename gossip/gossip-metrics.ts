/**
 * `GossipMetrics`: the Prometheus metrics of the gossip bus, registered once per registry
 * (two buses on one registry share them). All `keygate_gossip_*`:
 * - `peers_count`: peers reachable that receive our invalidations;
 * - `fallback_to_expiry_info`: 1 while peers are expected but none is reachable (caches then
 *   converge only by expiry), else 0;
 * - `messages_published_total`, `messages_received_total`, `messages_applied_total`,
 *   `messages_ignored_total{reason}` (own, duplicate, older, malformed);
 * - `propagation_latency_seconds`: origin's send time to apply here (clocks of different
 *   machines: trust it to the clock skew);
 * - `errors_total{code}` (the fault code) and `last_error_timestamp_seconds`.
 */
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { Fault } from '../core/fault.ts';
import type { InvalidationReceiverObserver } from '../core/invalidation/invalidation-receiver.ts';
import type { Invalidation, InvalidationIgnoreReason } from '../core/invalidation/interface.ts';
import type { Metrics } from '../core/metrics.ts';

/** Buckets of the propagation histogram, seconds: 0.25 ms to 10 s (the goal is p99 < 50 ms). */
export const PROPAGATION_LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** The gossip bus's metrics; also the receiver's observer. */
export class GossipMetrics implements InvalidationReceiverObserver {
  readonly #peers: Gauge<string>;
  readonly #fallback: Gauge<string>;
  readonly #published: Counter<string>;
  readonly #received: Counter<string>;
  readonly #applied: Counter<string>;
  readonly #ignored: Counter<'reason'>;
  readonly #latency: Histogram<string>;
  readonly #errors: Counter<'code'>;
  readonly #lastError: Gauge<string>;

  constructor(metrics: Metrics) {
    this.#peers = metrics.gauge('keygate_gossip_peers_count', 'Gossip peers reachable that receive this node\'s invalidations.');
    this.#fallback = metrics.gauge('keygate_gossip_fallback_to_expiry_info', '1 while peers are expected but none is reachable: cache entries converge only by expiry.');
    this.#published = metrics.counter('keygate_gossip_messages_published_total', 'Invalidation messages this node sent.');
    this.#received = metrics.counter('keygate_gossip_messages_received_total', 'Invalidation messages received from peers.');
    this.#applied = metrics.counter('keygate_gossip_messages_applied_total', 'Invalidations from peers applied to local caches.');
    this.#ignored = metrics.counter('keygate_gossip_messages_ignored_total', 'Invalidation messages skipped, by reason: own, duplicate, older, malformed.', ['reason']);
    this.#latency = metrics.histogram(
      'keygate_gossip_propagation_latency_seconds',
      'Time from the origin sending an invalidation to this node applying it (across machines: within clock skew).',
      [],
      PROPAGATION_LATENCY_BUCKETS_SECONDS,
    );
    this.#errors = metrics.counter('keygate_gossip_errors_total', 'Gossip failures by fault code (peer unreachable, malformed message, a failing handler...).', ['code']);
    this.#lastError = metrics.gauge('keygate_gossip_last_error_timestamp_seconds', 'Unix time of the last gossip failure (0: none yet).');
  }

  /** Sets the peer gauge and the fallback flag. On every peer change. */
  setPeers(peerCount: number, fallbackToExpiry: boolean): void {
    this.#peers.set(peerCount);
    this.#fallback.set(fallbackToExpiry ? 1 : 0);
  }

  /** Counts sent messages (one publish may be several messages). */
  published(messageCount: number): void {
    this.#published.inc(messageCount);
  }

  /** Counts one message from a peer, before it is decoded. */
  received(): void {
    this.#received.inc();
  }

  /** Observer hook: counts an applied invalidation from a peer and feeds the latency histogram. */
  applied(_invalidation: Invalidation, origin: 'local' | 'remote', latencyMs: number): void {
    if (origin !== 'remote') return;
    this.#applied.inc();
    this.#latency.observe(latencyMs / 1000);
  }

  /** Observer hook: counts a skipped message. */
  ignored(reason: InvalidationIgnoreReason, _invalidation: Invalidation | undefined): void {
    this.#ignored.inc({ reason });
  }

  /** Observer hook: counts a failure by code and stamps the last-error time. */
  failed(error: Fault, atMs: number): void {
    this.#errors.inc({ code: error.code });
    this.#lastError.set(atMs / 1000);
  }
}
