/**
 * `Metrics`: keygate's Prometheus registry. A thin wrapper over a prom-client `Registry` that
 * enforces one naming rule for every metric (`keygate_<area>_<name>_<unit>`) and makes
 * registration idempotent, so that two components (or two instances of one component, such as
 * two caches) asking for the same metric share it instead of crashing the process at boot.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Fault } from './fault.ts';

/** The unit suffixes a metric name may end with. Counters end with `_total`, nothing else does. */
export const METRIC_UNIT_SUFFIXES = ['total', 'seconds', 'bytes', 'ms', 'count', 'ratio', 'info'] as const;

/**
 * `keygate_` + area + at least one name segment + a unit, all lower-case snake case.
 * The area is one segment (`cache`, `http`, `proxy`), the name may have several.
 */
const METRIC_NAME_PATTERN = new RegExp(`^keygate_[a-z][a-z0-9]*(_[a-z0-9]+)+_(${METRIC_UNIT_SUFFIXES.join('|')})$`);

/** A Prometheus label name (names starting with `__` are reserved). */
const LABEL_NAME_PATTERN = /^(?!__)[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Default histogram buckets for `_seconds` metrics: 0.5 ms to 10 s, roughly ×2.5 apart. */
export const DEFAULT_SECONDS_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Default histogram buckets for `_ms` metrics: the seconds buckets in milliseconds. */
export const DEFAULT_MS_BUCKETS: readonly number[] = DEFAULT_SECONDS_BUCKETS.map((seconds) => seconds * 1000);

/** Default histogram buckets for `_bytes` metrics: 64 B to 64 MiB, ×4 apart. */
export const DEFAULT_BYTES_BUCKETS: readonly number[] = [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

type MetricKind = 'counter' | 'gauge' | 'histogram' | 'local-histogram';

interface RegisteredMetric {
  kind: MetricKind;
  labelNames: readonly string[];
  /** Histograms only: the buckets in use (undefined = prom-client's defaults). */
  buckets: readonly number[] | undefined;
  metric: Counter<string> | Gauge<string> | Histogram<string> | LocalHistogram;
}

/**
 * A registry of keygate metrics. Create one per process (see {@link defaultMetrics}) or one per
 * test. Registration happens at boot or construction time, never per request: callers keep the
 * returned metric (ideally a pre-bound `metric.labels(...)` child) and only increment it on the
 * hot path. Invalid names and conflicting re-registrations throw a `Fault` with code
 * `err:keygate:metrics:invalid_definition` that names the metric.
 */
export class Metrics {
  /** The underlying prom-client registry (for `/metrics` handlers or advanced use). */
  readonly registry: Registry;
  readonly #byName = new Map<string, RegisteredMetric>();
  readonly #collectHooks = new Map<string, Set<() => void>>();

  constructor() {
    this.registry = new Registry();
  }

  /** The `Content-Type` header value for {@link Metrics.render}'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * A counter named `keygate_<area>_<name>_total`. Returns the existing counter when the same
   * name was registered before with the same label names; throws a `Fault` otherwise.
   */
  counter<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.#register(name, 'counter', labelNames, undefined, () => new Counter<L>({ name, help, labelNames, registers: [this.registry], collect: this.#collector(name) })) as Counter<L>;
  }

  /**
   * A gauge named `keygate_<area>_<name>_<unit>` (any unit but `_total`). Idempotent like
   * {@link Metrics.counter}.
   */
  gauge<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.#register(name, 'gauge', labelNames, undefined, () => new Gauge<L>({ name, help, labelNames, registers: [this.registry], collect: this.#collector(name) })) as Gauge<L>;
  }

  /**
   * A histogram named `keygate_<area>_<name>_<unit>` (any unit but `_total`). Buckets default by
   * unit: {@link DEFAULT_SECONDS_BUCKETS}, {@link DEFAULT_MS_BUCKETS}, {@link DEFAULT_BYTES_BUCKETS},
   * else prom-client's defaults. Idempotent like {@link Metrics.counter}; a re-registration with
   * different explicit buckets throws.
   */
  histogram<L extends string = string>(name: string, help: string, labelNames: readonly L[] = [], buckets?: readonly number[]): Histogram<L> {
    const resolvedBuckets = buckets ?? defaultBucketsFor(name);
    return this.#register(name, 'histogram', labelNames, { explicit: buckets, resolved: resolvedBuckets }, () =>
      new Histogram<L>({ name, help, labelNames, registers: [this.registry], collect: this.#collector(name), ...(resolvedBuckets ? { buckets: [...resolvedBuckets] } : {}) }),
    ) as Histogram<L>;
  }

  /**
   * A histogram for hot paths, named and bucketed like {@link Metrics.histogram}: `labels(...)`
   * (once, at boot or on first use of a label set) returns a series whose `observe` only finds a
   * bucket and adds to plain numbers; the Prometheus values are built when the registry is read.
   * prom-client's own `observe` validates and hashes the labels on every call, which costs a few
   * microseconds per request. Idempotent like {@link Metrics.counter} (but not interchangeable
   * with {@link Metrics.histogram} under one name).
   */
  localHistogram(name: string, help: string, labelNames: readonly string[] = [], buckets?: readonly number[]): LocalHistogram {
    const resolvedBuckets = buckets ?? defaultBucketsFor(name) ?? DEFAULT_SECONDS_BUCKETS;
    return this.#register(name, 'local-histogram', labelNames, { explicit: buckets, resolved: resolvedBuckets }, () => {
      for (const labelName of labelNames) {
        if (!LABEL_NAME_PATTERN.test(labelName) || labelName === 'le') throw new Error(`invalid label name "${labelName}"`);
      }
      const histogram = new LocalHistogram(name, help, labelNames, resolvedBuckets, this.#collector(name));
      this.registry.registerMetric(histogram as unknown as Parameters<Registry['registerMetric']>[0]);
      return histogram;
    }) as LocalHistogram;
  }

  /**
   * Registers `hook` to run each time the metric `name` is collected (by {@link Metrics.render}
   * or any prom-client read of the registry), before its value is read. This lets a hot path
   * count in a plain number and publish the delta only when scraped: a prom-client `inc()` with
   * labels costs a few hundred ns, a `number++` about one. The metric must be registered first.
   * Returns a function that removes the hook. A hook should only copy numbers, and must not throw.
   */
  onCollect(name: string, hook: () => void): () => void {
    if (!this.#byName.has(name)) throw invalidDefinition(name, `onCollect: metric "${name}" is not registered`);
    let hooks = this.#collectHooks.get(name);
    if (hooks === undefined) {
      hooks = new Set();
      this.#collectHooks.set(name, hooks);
    }
    const ownHook = () => hook();
    hooks.add(ownHook);
    return () => {
      hooks.delete(ownHook);
    };
  }

  /** The Prometheus text exposition of every registered metric (for a `/metrics` handler). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  #collector(name: string): () => void {
    return () => {
      const hooks = this.#collectHooks.get(name);
      if (hooks !== undefined) for (const hook of hooks) hook();
    };
  }

  #register(
    name: string,
    kind: MetricKind,
    labelNames: readonly string[],
    buckets: { explicit: readonly number[] | undefined; resolved: readonly number[] | undefined } | undefined,
    create: () => Counter<string> | Gauge<string> | Histogram<string> | LocalHistogram,
  ): Counter<string> | Gauge<string> | Histogram<string> | LocalHistogram {
    const existing = this.#byName.get(name);
    if (existing) {
      assertSameDefinition(name, existing, kind, labelNames, buckets?.explicit);
      return existing.metric;
    }
    assertValidName(name, kind);
    let metric: Counter<string> | Gauge<string> | Histogram<string> | LocalHistogram;
    try {
      metric = create();
    } catch (err) {
      // prom-client rejects bad label names or a name registered directly on `registry`.
      throw invalidDefinition(name, err instanceof Error ? err.message : String(err), err);
    }
    this.#byName.set(name, { kind, labelNames: [...labelNames], buckets: buckets?.resolved ? [...buckets.resolved] : undefined, metric });
    return metric;
  }
}

/** One label set of a {@link LocalHistogram}: call `observe` on the hot path. */
export interface LocalHistogramSeries {
  /** Adds one observation (in the metric's unit). Non-finite values are ignored. */
  observe(value: number): void;
}

/** Counts of one label set: per-bucket (not cumulative) counts, the sum and the count. */
class LocalSeries implements LocalHistogramSeries {
  readonly labels: Record<string, string>;
  readonly bucketCounts: Float64Array;
  sum = 0;
  count = 0;
  readonly #upperBounds: readonly number[];

  constructor(labels: Record<string, string>, upperBounds: readonly number[]) {
    this.labels = labels;
    this.#upperBounds = upperBounds;
    this.bucketCounts = new Float64Array(upperBounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const upperBounds = this.#upperBounds;
    let index = 0;
    while (index < upperBounds.length && value > upperBounds[index]!) index++;
    this.bucketCounts[index]!++;
    this.sum += value;
    this.count++;
  }
}

/**
 * A Prometheus histogram kept in plain numbers (see {@link Metrics.localHistogram}); it
 * implements what prom-client's registry reads from a metric (`name`, `help`, `type`,
 * `aggregator`, `get()`), and renders like a prom-client histogram (`_bucket{le}`, `_sum`,
 * `_count`). At most {@link LocalHistogram.MAX_SERIES} label sets; past that, new label sets
 * share one series labelled `other`, so a label fed from requests cannot grow it without bound.
 */
export class LocalHistogram {
  /** Bound on distinct label sets. */
  static readonly MAX_SERIES = 10_000;
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #labelNames: readonly string[];
  readonly #upperBounds: readonly number[];
  readonly #collect: () => void;
  readonly #series = new Map<string, LocalSeries>();

  constructor(name: string, help: string, labelNames: readonly string[], upperBounds: readonly number[], collect: () => void) {
    this.name = name;
    this.help = help;
    this.#labelNames = labelNames;
    this.#upperBounds = [...upperBounds].sort((a, b) => a - b);
    this.#collect = collect;
  }

  /** The series of one label set (values in label-name order); keep it, and `observe` on it. */
  labels(...values: string[]): LocalHistogramSeries {
    if (values.length !== this.#labelNames.length) {
      throw invalidDefinition(this.name, `expected ${this.#labelNames.length} label values, got ${values.length}`);
    }
    const key = values.join('\u0000');
    let series = this.#series.get(key);
    if (series === undefined) {
      const overflow = this.#series.size >= LocalHistogram.MAX_SERIES;
      const labels: Record<string, string> = {};
      this.#labelNames.forEach((labelName, index) => {
        labels[labelName] = overflow ? 'other' : values[index]!;
      });
      const seriesKey = overflow ? '\u0001other' : key;
      series = this.#series.get(seriesKey) ?? new LocalSeries(labels, this.#upperBounds);
      this.#series.set(seriesKey, series);
    }
    return series;
  }

  /** The values in prom-client's shape, read by the registry at every scrape. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> }> {
    this.#collect();
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const series of new Set(this.#series.values())) {
      let cumulative = 0;
      this.#upperBounds.forEach((bound, index) => {
        cumulative += series.bucketCounts[index]!;
        values.push({ labels: { ...series.labels, le: bound }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...series.labels, le: '+Inf' }, value: series.count, metricName: `${this.name}_bucket` });
      values.push({ labels: series.labels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: series.labels, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Forgets every series (prom-client's `reset`, used by `registry.resetMetrics()`). */
  reset(): void {
    this.#series.clear();
  }
}

/** The process-wide registry that `bin/` exposes on `/metrics`; tests make their own. */
export const defaultMetrics = new Metrics();

function assertValidName(name: string, kind: MetricKind): void {
  if (!METRIC_NAME_PATTERN.test(name)) {
    throw invalidDefinition(
      name,
      `metric name "${name}" does not follow keygate_<area>_<name>_<unit> (lower-case snake case, unit one of ${METRIC_UNIT_SUFFIXES.join(', ')})`,
    );
  }
  const isTotal = name.endsWith('_total');
  if (kind === 'counter' && !isTotal) throw invalidDefinition(name, `counter "${name}" must end with _total`);
  if (kind !== 'counter' && isTotal) throw invalidDefinition(name, `${kind} "${name}" must not end with _total (reserved for counters)`);
}

function assertSameDefinition(
  name: string,
  existing: RegisteredMetric,
  kind: MetricKind,
  labelNames: readonly string[],
  buckets: readonly number[] | undefined,
): void {
  if (existing.kind !== kind) {
    throw invalidDefinition(name, `metric "${name}" is already registered as a ${existing.kind}, not a ${kind}`);
  }
  if (!sameList(existing.labelNames, labelNames)) {
    throw invalidDefinition(
      name,
      `metric "${name}" is already registered with labels [${existing.labelNames.join(', ')}], not [${labelNames.join(', ')}]`,
    );
  }
  // Only explicit buckets conflict: a later caller that omits them accepts whatever exists.
  if (buckets && !(existing.buckets && sameList(existing.buckets, buckets))) {
    throw invalidDefinition(name, `histogram "${name}" is already registered with different buckets`);
  }
}

function sameList<T>(left: readonly T[], right: readonly T[]): boolean {
  return left.length === right.length && left.every((item, index) => item === right[index]);
}

function defaultBucketsFor(name: string): readonly number[] | undefined {
  if (name.endsWith('_seconds')) return DEFAULT_SECONDS_BUCKETS;
  if (name.endsWith('_ms')) return DEFAULT_MS_BUCKETS;
  if (name.endsWith('_bytes')) return DEFAULT_BYTES_BUCKETS;
  return undefined;
}

function invalidDefinition(name: string, message: string, cause?: unknown): Fault {
  return new Fault('err:keygate:metrics:invalid_definition', { internalMessage: `invalid metric ${name}: ${message}`, cause });
}
