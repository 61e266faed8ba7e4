/**
 * `SwrCache`: a bounded, stale-while-revalidate, in-process cache keyed by string.
 *
 * Every entry has two windows measured from the moment it was written:
 * - age < freshMs: served as is (a "hit");
 * - freshMs ≤ age < staleMs: served as is, and ONE background refresh is started (a "stale" read);
 * - age ≥ staleMs: never served; the caller waits for a load (a "miss").
 * "Not found" (a loader resolving to `undefined`) is cached too, as a negative entry with its
 * own, usually shorter, windows.
 *
 * Guarantees (proved by the seeded simulation in test/core/cache/swr-cache.simulation.test.ts):
 * - at most one load per key runs at a time: concurrent misses share one load, a stale read
 *   that finds a refresh already running does not start another, and a load needed after a
 *   `remove` waits for the outdated one to settle before it starts;
 * - a load that started before `remove(key)`, `clear()` or `set(key)` never writes its result
 *   back, and a read that starts after such a call never receives it;
 * - loader errors reach every caller waiting on that load and are never cached; a failed
 *   background refresh leaves the stale entry in place until its stale window ends.
 *
 * Time comes only from the injected `Clock`; the cache owns no timers.
 */
import type { Clock } from '../clock.ts';
import { systemClock } from '../clock.ts';
import { Fault } from '../fault.ts';
import type { Metrics } from '../metrics.ts';
import { SecondChanceMap } from './second-chance-map.ts';

/**
 * Loads the value for a key from the source of truth. Resolve `undefined` for "not found" (it
 * is cached negatively); reject for anything else (nothing is cached). The cache owns no timers,
 * so a loader must bound its own time (database and RPC clients carry their own timeouts): a
 * loader that never settles holds back every later load of that key.
 */
export type SwrLoader<V> = (key: string) => Promise<V | undefined>;

/** Construction options of {@link SwrCache}. */
export interface SwrCacheOptions {
  /** Names the cache in metrics and faults, e.g. `verification_key_by_hash`. */
  name: string;
  /** Age in ms below which an entry is served without a refresh. */
  freshMs: number;
  /** Age in ms from which an entry is never served (≥ `freshMs`); between the two it is served stale while one refresh runs. */
  staleMs: number;
  /** Most entries kept; beyond it an entry not read recently is evicted (second chance, see `SecondChanceMap`). Storage grows with the entries actually held (nothing is preallocated for the bound). */
  maxEntries: number;
  /** Source of time; defaults to the system clock. */
  clock?: Clock;
  /** Where to register the `keygate_cache_*` metrics; none when absent. */
  metrics?: Metrics;
  /** Fresh window of a negative ("not found") entry; defaults to `freshMs`, capped at `negativeStaleMs`. */
  negativeFreshMs?: number;
  /** Stale window of a negative entry; defaults to `staleMs`. Shorten it to stop serving "not found" soon after a create. */
  negativeStaleMs?: number;
}

/** What an `onRemove` listener receives after an explicit `remove` or `clear` (never for eviction or expiry). */
export interface SwrRemoveEvent {
  /** The cache's `name`. */
  cacheName: string;
  /** The removed keys, or `undefined` when the whole cache was cleared. */
  keys: readonly string[] | undefined;
  /**
   * Who asked for the removal, as passed to `remove`/`clear`; `undefined` means this process.
   * An invalidation bus publishes only events without an origin and passes the peer's id when
   * it applies a remote invalidation, so an invalidation never echoes back around the cluster.
   */
  origin: string | undefined;
}

/** A listener registered in {@link SwrCache.onRemove}; called synchronously after the removal took effect. */
export type SwrRemoveListener = (event: SwrRemoveEvent) => void;

/** Options of {@link SwrCache.remove} and {@link SwrCache.clear}. */
export interface SwrRemoveOptions {
  /** Who asked for the removal (for example a peer id); passed on to `onRemove` listeners. */
  origin?: string;
}

/**
 * One cached value and when it was written, as ms since the cache's epoch (its construction):
 * a small integer that V8 stores inline (a Smi, for the first ~12 days after the epoch) rather than
 * two boxed doubles of absolute time. Both windows follow from it and from whether it is negative.
 */
interface Entry<V> {
  readonly value: V | undefined;
  readonly writtenAtSinceEpochMs: number;
  /** Read since the eviction clock last passed it (see `SecondChanceMap`). */
  referenced: boolean;
}

interface Flight<V> {
  promise: Promise<V | undefined>;
  /** Set by remove/clear/set: the result must not be written back, and new reads must not join. */
  outdated: boolean;
}

/** Read outcomes counted as plain numbers on the hot path; published to prom-client when scraped. */
interface ReadCounts {
  hit: number;
  stale: number;
  miss: number;
  negative: number;
}

interface CacheInstruments {
  reads: ReadCounts;
  loads: { inc(): void };
  loadErrors: { inc(): void };
  evictions: { inc(): void };
  entries: { set(value: number): void };
}

const MISS: unique symbol = Symbol('keygate.SwrCache.MISS');
const ignore = (): void => {};

/**
 * The SWR cache. Create one per resource at boot (e.g. keys by hash, routes by host). Reads are
 * called per request; `get` always returns a promise, `getSync` is the allocation-free variant
 * for hot paths. Writes (`set`, `remove`, `clear`) are called by mutating handlers and the
 * invalidation bus.
 */
export class SwrCache<V> {
  /**
   * The marker {@link SwrCache.getSync} returns when the caller must wait for a load. A symbol
   * rather than `undefined`, because `undefined` is a valid cached answer ("not found").
   */
  static readonly MISS: typeof MISS = MISS;

  /** Listeners told about every explicit `remove`/`clear` (push to add; wiring for cross-node invalidation). */
  readonly onRemove: SwrRemoveListener[] = [];
  /** The cache's name, as given. */
  readonly name: string;

  readonly #freshMs: number;
  readonly #staleMs: number;
  readonly #negativeFreshMs: number;
  readonly #negativeStaleMs: number;
  readonly #clock: Clock;
  /** Clock reading at construction; entries store their write time relative to it (see {@link Entry}). */
  readonly #epochMs: number;
  readonly #entries: SecondChanceMap<Entry<V>>;
  /** One flight per key at most; an outdated flight stays here until it settles so its successor can wait for it. */
  readonly #flights = new Map<string, Flight<V>>();
  readonly #instruments: CacheInstruments | undefined;

  constructor(options: SwrCacheOptions) {
    validateOptions(options);
    this.name = options.name;
    this.#freshMs = options.freshMs;
    this.#staleMs = options.staleMs;
    this.#negativeStaleMs = options.negativeStaleMs ?? options.staleMs;
    this.#negativeFreshMs = Math.min(options.negativeFreshMs ?? options.freshMs, this.#negativeStaleMs);
    this.#clock = options.clock ?? systemClock;
    this.#instruments = options.metrics ? createInstruments(options.metrics, options.name) : undefined;
    const evictions = this.#instruments?.evictions;
    this.#epochMs = this.#clock.nowMs();
    // Evicts by second chance (an approximation of least-recently-used): a read is one Map
    // lookup and a flag, with no list to reorder (see second-chance-map.ts). Only evictions for
    // room are counted; deletes and overwrites are ours and expected.
    this.#entries = new SecondChanceMap<Entry<V>>(options.maxEntries, evictions === undefined ? undefined : () => evictions.inc());
  }

  /** Number of entries held, including ones past their stale window that were not read since. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Reads `key`, loading it with `load` when needed; called per request. Resolves the value,
   * or `undefined` for "not found" (fresh or stale negative entry, or a load that found
   * nothing). Rejects with the loader's error when the read had to wait for a load that failed.
   * A fresh hit still costs one resolved promise; see {@link SwrCache.getSync} to avoid it.
   */
  get(key: string, load: SwrLoader<V>): Promise<V | undefined> {
    const value = this.getSync(key, load);
    if (value !== MISS) return Promise.resolve(value);
    if (this.#instruments !== undefined) this.#instruments.reads.miss++;
    return this.#join(key, load).promise;
  }

  /**
   * The hot-path read: returns the value (or `undefined` for a negative entry) when an entry is
   * fresh or stale, starting a background refresh with `load` in the stale case; returns
   * {@link SwrCache.MISS} when the caller must wait, in which case it should call
   * `await cache.get(key, load)` (which joins any load already running and counts the miss).
   * Allocates nothing on a fresh hit.
   */
  getSync(key: string, load: SwrLoader<V>): V | undefined | typeof MISS {
    const entry = this.#entries.get(key);
    if (entry === undefined) return MISS;
    const ageMs = this.#clock.nowMs() - this.#epochMs - entry.writtenAtSinceEpochMs;
    const negative = entry.value === undefined;
    if (ageMs < (negative ? this.#negativeFreshMs : this.#freshMs)) {
      if (this.#instruments !== undefined) this.#countServed(this.#instruments.reads, entry, 'hit');
      return entry.value;
    }
    if (ageMs < (negative ? this.#negativeStaleMs : this.#staleMs)) {
      if (this.#instruments !== undefined) this.#countServed(this.#instruments.reads, entry, 'stale');
      this.#refreshInBackground(key, load);
      return entry.value;
    }
    // Past its stale window: never served. Deleting now frees the slot early.
    this.#entries.delete(key);
    this.#instruments?.entries.set(this.#entries.size);
    return MISS;
  }

  /**
   * The cached value of `key` without loading, refreshing, counting or marking it as used:
   * the value when an entry is fresh or stale, otherwise `undefined` (which also
   * means "cached as not found"; use `getSync` to tell the two apart).
   */
  peek(key: string): V | undefined {
    const entry = this.#entries.peek(key);
    if (entry === undefined) return undefined;
    const ageMs = this.#clock.nowMs() - this.#epochMs - entry.writtenAtSinceEpochMs;
    if (ageMs >= (entry.value === undefined ? this.#negativeStaleMs : this.#staleMs)) return undefined;
    return entry.value;
  }

  /**
   * Writes `key` as fresh now (`undefined` writes a negative entry). A load of that key already
   * running is marked outdated so its older result cannot overwrite this one. Does not notify
   * `onRemove` listeners.
   */
  set(key: string, value: V | undefined): void {
    const flight = this.#flights.get(key);
    if (flight) flight.outdated = true;
    this.#write(key, value);
  }

  /**
   * Drops one key or several and notifies `onRemove` listeners. Loads of those keys already
   * running keep their callers but will not write back, and a later read starts a new load once
   * they settle. Throws (after the removal took effect and every listener ran) the first error a
   * listener threw, as a `Fault`.
   */
  remove(keyOrKeys: string | readonly string[], options: SwrRemoveOptions = {}): void {
    const keys = typeof keyOrKeys === 'string' ? [keyOrKeys] : [...keyOrKeys];
    for (const key of keys) {
      this.#entries.delete(key);
      const flight = this.#flights.get(key);
      if (flight) flight.outdated = true;
    }
    this.#instruments?.entries.set(this.#entries.size);
    this.#notify({ cacheName: this.name, keys, origin: options.origin });
  }

  /** Drops every entry, outdates every running load (as `remove` does per key) and notifies `onRemove` listeners with `keys: undefined`. */
  clear(options: SwrRemoveOptions = {}): void {
    this.#entries.clear();
    for (const flight of this.#flights.values()) flight.outdated = true;
    this.#instruments?.entries.set(0);
    this.#notify({ cacheName: this.name, keys: undefined, origin: options.origin });
  }

  #countServed(reads: ReadCounts, entry: Entry<V>, result: 'hit' | 'stale'): void {
    if (entry.value === undefined) reads.negative++;
    else reads[result]++;
  }

  #refreshInBackground(key: string, load: SwrLoader<V>): void {
    const running = this.#flights.get(key);
    if (running !== undefined && !running.outdated) return;
    // Errors are counted in #startFlight; the stale entry stays until its window ends.
    this.#startFlight(key, load, running);
  }

  /** The current flight for `key`, starting one (after an outdated predecessor settles) if none can be joined. */
  #join(key: string, load: SwrLoader<V>): Flight<V> {
    const running = this.#flights.get(key);
    if (running !== undefined && !running.outdated) return running;
    return this.#startFlight(key, load, running);
  }

  #startFlight(key: string, load: SwrLoader<V>, predecessor: Flight<V> | undefined): Flight<V> {
    const flight: Flight<V> = { promise: undefined as unknown as Promise<V | undefined>, outdated: false };
    // Registered before the loader runs: a loader that throws synchronously still finds and
    // clears its own registration. (A loader must not read its own key: it would wait on itself.)
    this.#flights.set(key, flight);
    flight.promise = this.#runFlight(key, load, flight, predecessor);
    // A background refresh has no waiter: keep its rejection from becoming an unhandled one.
    // Waiters still see the rejection through `flight.promise` itself.
    flight.promise.catch(ignore);
    return flight;
  }

  async #runFlight(key: string, load: SwrLoader<V>, flight: Flight<V>, predecessor: Flight<V> | undefined): Promise<V | undefined> {
    try {
      // One load per key at a time, even across a remove: wait for the outdated load to finish first.
      if (predecessor !== undefined) await predecessor.promise.then(ignore, ignore);
      this.#instruments?.loads.inc();
      let value: V | undefined;
      try {
        value = await load(key);
      } catch (err) {
        this.#instruments?.loadErrors.inc();
        throw err;
      }
      if (!flight.outdated) this.#write(key, value);
      return value;
    } finally {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
    }
  }

  #write(key: string, value: V | undefined): void {
    this.#entries.set(key, { value, writtenAtSinceEpochMs: this.#clock.nowMs() - this.#epochMs, referenced: false });
    this.#instruments?.entries.set(this.#entries.size);
  }

  #notify(event: SwrRemoveEvent): void {
    let firstError: unknown;
    let failed = false;
    for (const listener of this.onRemove) {
      try {
        listener(event);
      } catch (err) {
        if (!failed) firstError = err;
        failed = true;
      }
    }
    if (failed) {
      throw Fault.from(firstError, 'err:unkey:application:unexpected_error');
    }
  }
}

function validateOptions(options: SwrCacheOptions): void {
  const problems: string[] = [];
  if (typeof options.name !== 'string' || options.name.length === 0) problems.push('name must be a non-empty string');
  if (!isNonNegative(options.freshMs)) problems.push(`freshMs must be a number >= 0, got ${options.freshMs}`);
  if (!isNonNegative(options.staleMs) || options.staleMs < options.freshMs) problems.push(`staleMs must be >= freshMs (${options.freshMs}), got ${options.staleMs}`);
  if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1) problems.push(`maxEntries must be a positive integer, got ${options.maxEntries}`);
  if (options.negativeFreshMs !== undefined && !isNonNegative(options.negativeFreshMs)) problems.push(`negativeFreshMs must be a number >= 0, got ${options.negativeFreshMs}`);
  if (options.negativeStaleMs !== undefined && !isNonNegative(options.negativeStaleMs)) problems.push(`negativeStaleMs must be a number >= 0, got ${options.negativeStaleMs}`);
  if (problems.length > 0) {
    throw new Fault('err:keygate:config:invalid', { internalMessage: `SwrCache ${String(options.name)}: ${problems.join('; ')}` });
  }
}

function isNonNegative(value: number): boolean {
  return typeof value === 'number' && value >= 0 && !Number.isNaN(value);
}

function createInstruments(metrics: Metrics, cacheName: string): CacheInstruments {
  const reads = metrics.counter('keygate_cache_reads_total', 'Cache reads by outcome: hit (fresh), stale (served while refreshing), miss (waited for a load), negative (cached not-found).', ['cache', 'result']);
  const loads = metrics.counter('keygate_cache_loads_total', 'Loads from the source of truth, foreground and background.', ['cache']);
  const loadErrors = metrics.counter('keygate_cache_load_errors_total', 'Loads that failed; nothing was cached.', ['cache']);
  const evictions = metrics.counter('keygate_cache_evictions_total', 'Entries evicted because the cache was full (not recently read first).', ['cache']);
  const entries = metrics.gauge('keygate_cache_entries_count', 'Entries currently held.', ['cache']);
  // Reads are the hot path: they bump plain numbers, and the deltas reach prom-client only when
  // the metric is scraped (a labelled prom-client inc() costs ~250 ns, more than the read itself).
  // The hook holds only these small counters, never the cache's entries.
  const counts: ReadCounts = { hit: 0, stale: 0, miss: 0, negative: 0 };
  const published: ReadCounts = { hit: 0, stale: 0, miss: 0, negative: 0 };
  const results = ['hit', 'stale', 'miss', 'negative'] as const;
  const children = results.map((result) => reads.labels({ cache: cacheName, result }));
  metrics.onCollect('keygate_cache_reads_total', () => {
    for (let index = 0; index < results.length; index++) {
      const result = results[index]!;
      const delta = counts[result] - published[result];
      if (delta > 0) children[index]!.inc(delta);
      published[result] = counts[result];
    }
  });
  // Other counters move once per load or eviction (already costly events): bound once, incremented directly.
  return {
    reads: counts,
    loads: loads.labels({ cache: cacheName }),
    loadErrors: loadErrors.labels({ cache: cacheName }),
    evictions: evictions.labels({ cache: cacheName }),
    entries: entries.labels({ cache: cacheName }),
  };
}
