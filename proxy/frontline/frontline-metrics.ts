/**
 * `FrontlineMetrics`: Frontline's Prometheus instruments, registered once at construction
 * (naming rule `keygate_frontline_<name>_<unit>`, dataplane.md §7.2). The hot path only
 * increments pre-registered metrics.
 */
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { LocalHistogramSeries, Metrics } from '../../core/metrics.ts';

/** Bound on distinct (status class, fault code) request counters kept pre-bound. */
const MAX_BOUND_REQUEST_COUNTERS = 256;

/** The instruments of one Frontline. */
export class FrontlineMetrics {
  /** Finished requests by status class (`2xx`…`5xx`) and fault code (`""` on success). */
  readonly requests: Counter<'status_class' | 'code'>;
  /** Time from arrival to the end of the response (or failure), in seconds (plain bucket counts, see `Metrics.localHistogram`). */
  readonly requestDuration: LocalHistogramSeries;
  /** Requests being handled right now: a plain number, published to its gauge when scraped. */
  inflight = 0;
  /** Pre-bound children of `requests`, by `statusClass|code`. */
  readonly #requestCounters = new Map<string, { inc(): void }>();
  /** Plain-HTTP requests answered with a 308 to HTTPS. */
  readonly httpsRedirects: Counter<never>;
  /** ACME HTTP-01 challenge requests by outcome (`served`, `not_found`). */
  readonly acmeChallenges: Counter<'outcome'>;
  /** Inbound authenticated hop counts (requests forwarded by a peer Frontline). */
  readonly hops: Histogram<never>;
  /** Requests refused because the hop limit was reached. */
  readonly hopLimitRejections: Counter<never>;
  /** Inbound hop headers that failed authentication (ignored, counted as a client request). */
  readonly hopHeadersRejected: Counter<never>;
  /** Requests sent towards a peer Frontline (remote decision or fallback). */
  readonly peerForwards: Counter<never>;
  /** Failed connections to an upstream (each may be followed by the next candidate). */
  readonly upstreamConnectFailures: Counter<never>;
  /** Configuration reloads by outcome (`applied`, `failed`). */
  readonly configReloads: Counter<'outcome'>;
  /** Routes in the active configuration (static mode). */
  readonly routes: Gauge<never>;

  constructor(metrics: Metrics) {
    this.requests = metrics.counter('keygate_frontline_requests_total', 'Requests handled by Frontline, by status class and fault code.', ['status_class', 'code']);
    this.requestDuration = metrics.localHistogram('keygate_frontline_request_duration_seconds', 'Frontline request duration from arrival to the end of the response.').labels();
    const inflightGauge = metrics.gauge('keygate_frontline_inflight_requests_count', 'Requests in flight in Frontline.');
    metrics.onCollect('keygate_frontline_inflight_requests_count', () => inflightGauge.set(this.inflight));
    this.httpsRedirects = metrics.counter('keygate_frontline_https_redirects_total', 'Plain HTTP requests redirected to HTTPS with 308.');
    this.acmeChallenges = metrics.counter('keygate_frontline_acme_challenges_total', 'ACME HTTP-01 challenge requests, by outcome.', ['outcome']);
    this.hops = metrics.histogram('keygate_frontline_hops_count', 'Authenticated hop count of requests forwarded by a peer Frontline.', [], [1, 2, 3, 5, 10]);
    this.hopLimitRejections = metrics.counter('keygate_frontline_hop_limit_rejections_total', 'Requests refused because the hop limit between Frontlines was reached.');
    this.hopHeadersRejected = metrics.counter('keygate_frontline_hop_headers_rejected_total', 'Inbound hop headers whose signature did not verify.');
    this.peerForwards = metrics.counter('keygate_frontline_peer_forwards_total', 'Requests whose candidates include a peer Frontline.');
    this.upstreamConnectFailures = metrics.counter('keygate_frontline_upstream_connect_failures_total', 'Failed connection attempts to upstreams.');
    this.configReloads = metrics.counter('keygate_frontline_config_reloads_total', 'Configuration reloads, by outcome.', ['outcome']);
    this.routes = metrics.gauge('keygate_frontline_routes_count', 'Routes in the active static configuration.');
  }

  /** Counts one finished request; the labelled child is looked up once per (class, code). Called per request. */
  countRequest(statusClass: string, code: string): void {
    const key = statusClass + '|' + code;
    let child = this.#requestCounters.get(key);
    if (child === undefined) {
      child = this.requests.labels(statusClass, code);
      if (this.#requestCounters.size < MAX_BOUND_REQUEST_COUNTERS) this.#requestCounters.set(key, child);
    }
    child.inc();
  }
}
