/**
 * The analytics sink contract: where the verification engine reports one event per
 * verification (spec api.md §7 step 12). `record` is called on the hot path and must never
 * block or throw; implementations buffer and write in batches.
 */
import type { KeyVerificationEvent } from '../db/queries/key-verifications.ts';

export type { KeyVerificationEvent };

/** Receives verification events. Implementations: `LocalVerificationSink` (the local table), `NullVerificationSink`. */
export interface VerificationEventSink {
  /** Buffers one event; never blocks, never throws (a full buffer drops and counts). Called per verification. */
  record(event: KeyVerificationEvent): void;
  /** Writes everything buffered now. Resolves when written (or dropped after a failed write). */
  flush(): Promise<void>;
  /** Flushes and stops the timer. Idempotent. */
  close(): Promise<void>;
}

/** A sink that discards everything: for embedders and benchmarks that do not want analytics. */
export class NullVerificationSink implements VerificationEventSink {
  /** Events discarded so far. */
  recorded = 0;

  record(): void {
    this.recorded++;
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}
