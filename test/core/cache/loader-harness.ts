/**
 * Test helpers for the SWR cache: a loader whose calls the test resolves or rejects by hand, in
 * any order, and a way to let pending promise callbacks run without sleeping.
 */

/** One call of a {@link ControlledLoader}: the key it was asked for and how to settle it. */
export interface PendingLoad<V> {
  key: string;
  resolve(value: V | undefined): void;
  reject(err: unknown): void;
}

/** A loader whose every call stays pending until the test settles it. */
export class ControlledLoader<V> {
  /** Calls not settled yet, oldest first. */
  readonly pending: PendingLoad<V>[] = [];
  /** Every key ever asked for, in order. */
  readonly calls: string[] = [];

  /** The function to hand to the cache. */
  readonly load = (key: string): Promise<V | undefined> => {
    this.calls.push(key);
    return new Promise<V | undefined>((resolve, reject) => {
      const pending: PendingLoad<V> = {
        key,
        resolve: (value) => { this.#drop(pending); resolve(value); },
        reject: (err) => { this.#drop(pending); reject(err); },
      };
      this.pending.push(pending);
    });
  };

  /** Resolves the oldest pending call (it must exist) and lets its callbacks run. */
  async resolveNext(value: V | undefined): Promise<void> {
    const next = this.pending[0];
    if (next === undefined) throw new Error('no pending load');
    next.resolve(value);
    await settle();
  }

  /** Rejects the oldest pending call (it must exist) and lets its callbacks run. */
  async rejectNext(err: unknown): Promise<void> {
    const next = this.pending[0];
    if (next === undefined) throw new Error('no pending load');
    next.reject(err);
    await settle();
  }

  #drop(pending: PendingLoad<V>): void {
    const index = this.pending.indexOf(pending);
    if (index >= 0) this.pending.splice(index, 1);
  }
}

/** Lets every queued promise callback run (one macrotask turn); no timers, no sleeping. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
