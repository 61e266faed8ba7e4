/**
 * `AsyncMutex`: a first-come-first-served lock for async work. The SQLite engine has one
 * connection, so a transaction that awaits between statements must keep every other caller
 * out until it commits or rolls back; this lock does that without blocking the event loop.
 */
export class AsyncMutex {
  #locked = false;
  readonly #waiters: Array<() => void> = [];

  /** True while someone holds the lock. */
  get locked(): boolean {
    return this.#locked;
  }

  /** Number of callers waiting for the lock. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Resolves once the caller holds the lock. The returned function releases it and must be
   * called exactly once (in a `finally`); a second call is ignored.
   */
  async acquire(): Promise<() => void> {
    if (this.#locked) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    } else {
      this.#locked = true;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#release();
    };
  }

  #release(): void {
    const next = this.#waiters.shift();
    // Ownership passes straight to the next waiter, so nobody can slip in between.
    if (next === undefined) this.#locked = false;
    else next();
  }
}
