/**
 * `SecondChanceMap`: a string-keyed map bounded by entry count that evicts by "second chance"
 * (the CLOCK algorithm), an approximation of least-recently-used. A read only sets its entry's
 * `referenced` flag; there is no list to reorder. When a new key arrives at the bound, the
 * oldest entry is looked at first: referenced since it was last looked at, it loses the flag and
 * moves to the back (its second chance); otherwise it is evicted. An entry read once since the
 * last pass of the clock therefore outlives every entry that was not.
 *
 * Why not exact LRU (`lru-cache`): `SwrCache.getSync` runs on every gateway request, and a
 * profile of the gateway put lru-cache's `get` (index lookup, then relinking the entry as most
 * recent) at about 0.2 µs per request, against one `Map.get` and one field write here.
 *
 * Values carry their own flag (`Referenced`), so a read touches no object besides the value.
 * A write replaces the value and moves the key to the back, as a fresh entry.
 */

/** What a value must carry: the flag reads set and the clock clears. */
export interface Referenced {
  referenced: boolean;
}

/** See the file comment. Single-threaded; every method is O(1) amortised. */
export class SecondChanceMap<V extends Referenced> {
  readonly #entries = new Map<string, V>();
  readonly #maxEntries: number;
  readonly #onEvict: (() => void) | undefined;

  /** `maxEntries` ≥ 1; `onEvict` is called once per entry evicted for room (not for deletes or overwrites). */
  constructor(maxEntries: number, onEvict?: () => void) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError(`SecondChanceMap: maxEntries must be a positive integer, got ${maxEntries}`);
    this.#maxEntries = maxEntries;
    this.#onEvict = onEvict;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value of `key`, marked as used. Called per request. */
  get(key: string): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) value.referenced = true;
    return value;
  }

  /** The value of `key` without marking it as used. */
  peek(key: string): V | undefined {
    return this.#entries.get(key);
  }

  /** Writes `key` (at the back, unmarked), evicting one entry first when a new key meets the bound. */
  set(key: string, value: V): void {
    const entries = this.#entries;
    if (entries.delete(key)) {
      entries.set(key, value);
      return;
    }
    if (entries.size >= this.#maxEntries) this.#evictOne();
    entries.set(key, value);
  }

  delete(key: string): boolean {
    return this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  /**
   * Evicts the first unreferenced entry from the front, moving referenced ones to the back with
   * their flag cleared. Ends within size + 1 steps: after one full pass every flag is clear.
   */
  #evictOne(): void {
    const entries = this.#entries;
    for (;;) {
      const oldest = entries.entries().next();
      if (oldest.done === true) return;
      const [key, value] = oldest.value;
      entries.delete(key);
      if (value.referenced) {
        value.referenced = false;
        entries.set(key, value);
        continue;
      }
      this.#onEvict?.();
      return;
    }
  }
}
