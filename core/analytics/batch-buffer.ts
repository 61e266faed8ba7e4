/**
 * `BatchBuffer`: the bounded, batching buffer under every analytics and request-log writer
 * (local verification sink, local request-log sink, ClickHouse batch writer). Items are held in
 * memory (at most `maxBufferedItems`; beyond it, or after `close`, new items are dropped and
 * counted) and handed to `writeBatch` in batches of at most `batchSize`: as soon as `batchSize`
 * items wait, every `flushIntervalMs` (an unref'd timer), and on `close`. A batch whose write
 * throws is dropped and counted, never retried: the buffer must never grow without bound or slow
 * down the request that produced the item. Only one write runs at a time.
 */

/** What a {@link BatchBuffer} does with one batch. */
export interface BatchBufferOptions<Item> {
  /** Most items held; beyond it new items are dropped and counted (0 drops everything). */
  maxBufferedItems: number;
  /** Items per write; clamped to 1..maxBufferedItems. Reaching it starts a flush without waiting for the timer. */
  batchSize: number;
  /** Longest time an item waits, in ms; 0 disables the timer (flush by size and on close only). */
  flushIntervalMs: number;
  /**
   * Writes one batch, called at flush time. Resolves true when written, false when the batch was
   * deliberately dropped (counted as dropped, not as a failed batch, and not reported); a
   * rejection drops the batch, counts a failed batch and calls `onBatchFailed`.
   */
  writeBatch(batch: Item[]): Promise<boolean>;
  /** Called after a failed write (to log it); must not throw. */
  onBatchFailed?: (err: unknown, batch: readonly Item[]) => void;
  /** Counts dropped items (buffer full, closed, or in a failed or dropped batch). */
  droppedCounter?: { inc(value?: number): void };
}

/** What happened to recorded items. */
export interface BatchBufferStats {
  /** Items accepted into the buffer. */
  recorded: number;
  /** Items in batches that `writeBatch` wrote. */
  written: number;
  /** Items lost: buffer full, buffer closed, or in a failed or dropped batch. */
  dropped: number;
  /** Batches whose write rejected. */
  failedBatches: number;
}

/** Bounded in-memory batcher; see the file comment. */
export class BatchBuffer<Item> {
  readonly #maxBufferedItems: number;
  readonly #batchSize: number;
  readonly #writeBatch: (batch: Item[]) => Promise<boolean>;
  readonly #onBatchFailed: ((err: unknown, batch: readonly Item[]) => void) | undefined;
  readonly #droppedCounter: { inc(value?: number): void } | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #stats: BatchBufferStats = { recorded: 0, written: 0, dropped: 0, failedBatches: 0 };
  #buffer: Item[] = [];
  #flushing: Promise<void> | undefined;
  #closed = false;

  constructor(options: BatchBufferOptions<Item>) {
    this.#maxBufferedItems = options.maxBufferedItems;
    this.#batchSize = Math.max(1, Math.min(options.batchSize, options.maxBufferedItems));
    this.#writeBatch = options.writeBatch;
    this.#onBatchFailed = options.onBatchFailed;
    this.#droppedCounter = options.droppedCounter;
    if (options.flushIntervalMs > 0) {
      this.#timer = setInterval(() => void this.flush(), options.flushIntervalMs);
      // A buffer must not keep a process alive on its own.
      this.#timer.unref();
    }
  }

  /** A copy of the counters. */
  get stats(): BatchBufferStats {
    return { ...this.#stats };
  }

  /** Items waiting to be written. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Buffers one item: O(1), never throws, never waits. Called per request. */
  record(item: Item): void {
    if (this.#closed || this.#buffer.length >= this.#maxBufferedItems) {
      this.#drop(1);
      return;
    }
    this.#stats.recorded++;
    this.#buffer.push(item);
    if (this.#buffer.length >= this.#batchSize && this.#flushing === undefined) void this.flush();
  }

  /** Writes everything buffered now; one writer at a time (a flush asked for during a write runs after it). Never rejects. */
  flush(): Promise<void> {
    const previous = this.#flushing ?? Promise.resolve();
    const tracked: Promise<void> = previous.then(() => this.#writeBuffered()).finally(() => {
      if (this.#flushing === tracked) this.#flushing = undefined;
    });
    this.#flushing = tracked;
    return tracked;
  }

  /** Stops the timer and writes the rest; later records are dropped. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return this.#flushing;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.flush();
  }

  async #writeBuffered(): Promise<void> {
    let first = true;
    while (this.#buffer.length > 0) {
      // Between batches, let requests run: a synchronous writer (SQLite) would otherwise hold the
      // event loop for the whole backlog at once.
      if (!first) await new Promise<void>((resolve) => setImmediate(resolve));
      first = false;
      const batch = this.#buffer.splice(0, this.#batchSize);
      try {
        if (await this.#writeBatch(batch)) this.#stats.written += batch.length;
        else this.#drop(batch.length);
      } catch (err) {
        // Bounded: a failed batch is dropped, not retried forever (the buffer would only grow).
        this.#stats.failedBatches++;
        this.#drop(batch.length);
        this.#onBatchFailed?.(err, batch);
      }
    }
  }

  #drop(items: number): void {
    if (items === 0) return;
    this.#stats.dropped += items;
    this.#droppedCounter?.inc(items);
  }
}
