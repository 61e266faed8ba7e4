/**
 * `CacheInvalidationBinder`: connects local caches to an {@link InvalidationBus} by cache name.
 *
 * Receiving: one subscription per bus routes each invalidation to the caches bound under its
 * name (any number per name: an API process and an embedded gateway may each hold a cache of
 * the same resource). A name with no bound cache is not this node's concern. A resync
 * ({@link ALL_CACHES}) clears every bound cache. Removals are made with the invalidation's
 * origin node as `origin`, so a cache's own removal listeners can tell them from local writes.
 *
 * Publishing (optional, per bound cache): a removal made on this node without an origin (a
 * mutating handler calling `cache.remove(key)`) is published on the bus. Removals the binder
 * makes always carry an origin, so an invalidation never echoes around the cluster.
 */
import { Fault } from '../fault.ts';
import { ALL_CACHES } from './interface.ts';
import type { Invalidation, InvalidationBus } from './interface.ts';

/** A removal as a cache reports it to its listeners (the shape of `SwrRemoveEvent`). */
export interface CacheRemoveEvent {
  readonly cacheName: string;
  /** Removed keys, or undefined when the cache was cleared. */
  readonly keys: readonly string[] | undefined;
  /** Who asked: undefined for this process's own writes, a node id for an applied invalidation. */
  readonly origin: string | undefined;
}

/**
 * What the binder needs of a cache. `SwrCache` (core/cache/swr-cache.ts) fits as is; anything
 * with `remove` and `clear` does, and `onRemove` is only needed to publish removals.
 */
export interface InvalidatableCache {
  /** Drops the entries of these keys (no-op for keys not cached). */
  remove(keys: string | readonly string[], options?: { origin?: string }): unknown;
  /** Drops every entry. */
  clear(options?: { origin?: string }): unknown;
  /** Listeners called after each explicit removal. */
  readonly onRemove?: Array<(event: CacheRemoveEvent) => void>;
}

/** Options of {@link CacheInvalidationBinder.bind}. */
export interface BindOptions {
  /**
   * Publish this cache's local removals (those without an origin) on the bus, so a handler's
   * `cache.remove(key)` reaches every node. Requires `onRemove` on the cache. Default false.
   */
  publishLocalRemovals?: boolean;
}

/** Options of {@link CacheInvalidationBinder}. */
export interface CacheInvalidationBinderOptions {
  /** Told when publishing a local removal fails (it then converges by expiry only). */
  onPublishError?: (error: Fault) => void;
}

/** Routes a bus's invalidations to the caches bound under each name, and optionally back. */
export class CacheInvalidationBinder {
  readonly #bus: InvalidationBus;
  readonly #caches = new Map<string, InvalidatableCache[]>();
  readonly #unsubscribe: () => void;
  readonly #onPublishError: ((error: Fault) => void) | undefined;

  constructor(bus: InvalidationBus, options: CacheInvalidationBinderOptions = {}) {
    this.#bus = bus;
    this.#onPublishError = options.onPublishError;
    this.#unsubscribe = bus.subscribe((invalidation) => this.#apply(invalidation));
  }

  /**
   * Binds `cache` to the invalidations of `cacheName` (the resource name used when
   * publishing). Returns the function that unbinds it. At boot, once per cache.
   */
  bind(cacheName: string, cache: InvalidatableCache, options: BindOptions = {}): () => void {
    this.#caches.set(cacheName, [...(this.#caches.get(cacheName) ?? []), cache]);
    const listener = options.publishLocalRemovals === true ? this.#publisherFor(cacheName, cache) : undefined;
    return () => {
      const remaining = (this.#caches.get(cacheName) ?? []).filter((candidate) => candidate !== cache);
      if (remaining.length === 0) this.#caches.delete(cacheName);
      else this.#caches.set(cacheName, remaining);
      if (listener !== undefined && cache.onRemove !== undefined) {
        const index = cache.onRemove.indexOf(listener);
        if (index >= 0) cache.onRemove.splice(index, 1);
      }
    };
  }

  /** The names that have at least one bound cache. */
  boundNames(): string[] {
    return [...this.#caches.keys()];
  }

  /** Stops receiving invalidations (bound caches keep their listeners until unbound). */
  close(): void {
    this.#unsubscribe();
  }

  #publisherFor(cacheName: string, cache: InvalidatableCache): (event: CacheRemoveEvent) => void {
    if (cache.onRemove === undefined) {
      throw new TypeError(`cache "${cacheName}" has no onRemove listeners: it cannot publish its removals`);
    }
    const listener = (event: CacheRemoveEvent): void => {
      // A removal with an origin came from the bus (or a peer): publishing it again would echo.
      if (event.origin !== undefined) return;
      const request = event.keys === undefined ? { cache: cacheName, clearAll: true } : { cache: cacheName, keys: event.keys };
      this.#bus.publish(request).catch((err: unknown) => this.#onPublishError?.(Fault.from(err)));
    };
    cache.onRemove.push(listener);
    return listener;
  }

  #apply(invalidation: Invalidation): void {
    const origin = { origin: invalidation.originNode };
    if (invalidation.cache === ALL_CACHES) {
      for (const caches of this.#caches.values()) for (const cache of caches) cache.clear(origin);
      return;
    }
    const caches = this.#caches.get(invalidation.cache);
    if (caches === undefined) return;
    for (const cache of caches) {
      if (invalidation.clearAll) cache.clear(origin);
      else cache.remove(invalidation.keys, origin);
    }
  }
}
