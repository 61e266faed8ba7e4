/**
 * The usage-limiter (credits) contract (spec api.md §7 step 11, pitfalls §14.10–11): an atomic
 * "decrement if sufficient" on a key's remaining credits. The counter is initialised from the
 * database on first use and the consumed amounts flow back to the database asynchronously.
 */
import { Fault } from '../fault.ts';

/** The outcome of one consume. */
export interface UsageDecision {
  /** True when the cost was covered (and consumed). Cost 0 is valid even at 0 remaining. */
  readonly valid: boolean;
  /** Credits left after this call; null = unlimited (or unknown after a fail-open). */
  readonly remaining: number | null;
}

/** Reads a key's remaining credits from the database; null = unlimited. Called on a counter miss. */
export type LoadRemaining = (keyId: string) => Promise<number | null>;

/** Credits consumed from one key since the last write-back. */
export interface ConsumedCredits {
  readonly keyId: string;
  readonly consumed: number;
}

/**
 * Writes consumed credits to the database, e.g.
 * `UPDATE keys SET remaining_requests = GREATEST(remaining_requests - ?, 0) WHERE id = ?`
 * (never below 0, never touching unlimited keys). A rejection keeps the batch queued for retry.
 */
export type PersistConsumedCredits = (batch: readonly ConsumedCredits[]) => Promise<void>;

/** What to do when the counter store (Redis) fails. */
export type UsageFailureMode = 'closed' | 'open';

/**
 * Default for credits: fail CLOSED (throw `Fault(service_unavailable)`), because credits are
 * money: an outage must not hand out free usage. Rate limits default to open.
 */
export const DEFAULT_USAGE_FAILURE_MODE: UsageFailureMode = 'closed';

/** A usage limiter; safe to call concurrently. Every implementation passes one shared suite. */
export interface UsageLimiter {
  /**
   * Consumes `cost` (integer ≥ 0) credits of `keyId` if that many remain. Unlimited keys are never
   * decremented. Called once per verification that passed every other check. Throws
   * `Fault(invalid_input)` on a bad cost and `Fault(service_unavailable)` when failing closed.
   */
  consume(keyId: string, cost: number, loadRemaining: LoadRemaining): Promise<UsageDecision>;
  /**
   * Drops the key's counter so the next consume reloads from the database; pending write-backs of
   * this key are flushed first. Call it after updateCredits / updateKey changed the database.
   */
  reset(keyId: string): Promise<void>;
  /** Writes every pending consumed amount now. */
  flush(): Promise<void>;
  /** Flushes and stops the write-back timer. */
  close(): Promise<void>;
}

/** Largest cost of one call (the verifyKey schema's bound). */
export const MAX_CREDIT_COST = 1_000_000_000_000;

/** Throws `Fault(invalid_input)` unless `cost` is an integer in 0..{@link MAX_CREDIT_COST}. */
export function assertCreditCost(cost: number): void {
  if (!Number.isSafeInteger(cost) || cost < 0 || cost > MAX_CREDIT_COST) {
    throw Fault.expected('err:unkey:application:invalid_input', { publicMessage: `credits cost must be an integer between 0 and ${MAX_CREDIT_COST}.` });
  }
}
