/**
 * `TransactionHandle`: the engine-independent part of a transaction (or savepoint) handle, which
 * both engines' handles call: it refuses statements once the transaction has ended or while a
 * nested one runs, and runs a nested transaction as a numbered savepoint, released on success
 * and rolled back on failure.
 */
import { Fault } from '../fault.ts';
import type { Database } from './database.ts';

/** How an engine starts, releases and rolls back a savepoint (its SQL differs per engine). */
export interface SavepointControl {
  /** Creates the savepoint; may be synchronous. Fails with the engine's Fault. */
  begin(savepoint: string): Promise<unknown> | void;
  /** Releases the savepoint after the nested work succeeded. */
  release(savepoint: string): Promise<unknown> | void;
  /** Rolls back to the savepoint and never fails: the original error matters more. */
  rollbackQuietly(savepoint: string): Promise<unknown> | void;
}

/** A handle that can be spent when its transaction ends. */
export interface FinishableDatabase extends Database {
  /** Marks the handle as spent. */
  finish(): void;
}

/** The usable/spent state of one transaction handle at nesting `depth` (0 = the outer one). */
export class TransactionHandle {
  readonly depth: number;
  #finished = false;
  #childActive = false;

  constructor(depth: number) {
    this.depth = depth;
  }

  /** Marks the handle as spent: a statement sent after commit/rollback would run outside it. */
  finish(): void {
    this.#finished = true;
  }

  /** Called before every statement; throws `assertion_failed` when the handle may not be used. */
  assertUsable(): void {
    if (this.#finished || this.#childActive) {
      throw new Fault('err:unkey:application:assertion_failed', {
        internalMessage: this.#finished
          ? 'a transaction handle was used after its transaction ended'
          : 'a transaction handle was used while its nested transaction was running; use the nested handle',
      });
    }
  }

  /**
   * Runs `fn` in a savepoint on a child handle made by `createChild(depth + 1)`; rejects with
   * `fn`'s error after rolling back to the savepoint.
   */
  async nested<T>(
    control: SavepointControl,
    createChild: (depth: number) => FinishableDatabase,
    fn: (tx: Database) => Promise<T>,
  ): Promise<T> {
    this.assertUsable();
    const savepoint = `keygate_savepoint_${this.depth + 1}`;
    await control.begin(savepoint);
    const child = createChild(this.depth + 1);
    this.#childActive = true;
    try {
      const result = await fn(child);
      child.finish();
      await control.release(savepoint);
      return result;
    } catch (err) {
      child.finish();
      await control.rollbackQuietly(savepoint);
      throw err;
    } finally {
      this.#childActive = false;
    }
  }
}
