/**
 * `CreditsRefillJob`: refills the credits of keys that have a refill schedule (spec api.md §7
 * "Refill", pitfall §14.11). A refill SETS `remaining` to the refill amount (it never adds), and
 * only when the key holds less than that amount:
 * - daily keys (`refill_day` NULL) refill once per UTC day;
 * - monthly keys refill on their `refill_day`; a day the month does not have (31 in April, 29–31
 *   in February) fires on the month's last day instead.
 *
 * Idempotent and safe on several nodes at once: each key's UPDATE repeats the whole condition and
 * requires `last_refill_at_m` to be before today's UTC midnight, so a key is refilled at most
 * once per day whoever runs the job, and only the node whose UPDATE changed the row writes the
 * audit event. Unlike the reference, the credits counter of a refilled key is reset, so the new
 * balance is visible at once instead of after the counter's TTL.
 */
import { systemClock, type Clock } from '../../../core/clock.ts';
import type { UsageLimiter } from '../../../core/credits/interface.ts';
import type { Database, SqlParam } from '../../../core/db/database.ts';
import { insertAuditLogs, type AuditLogEntry } from '../../../core/db/queries/audit-logs.ts';
import { newId } from '../../../core/id.ts';
import type { Logger } from '../../../core/log.ts';

/** How often a started job looks for keys to refill, in ms (the work is idempotent per day). */
export const DEFAULT_CREDITS_REFILL_INTERVAL_MS = 15 * 60_000;
/** Keys read and refilled per transaction. */
export const DEFAULT_CREDITS_REFILL_BATCH_SIZE = 500;
/** Most keys one run refills; the rest wait for the next run (bounds one run's duration). */
export const DEFAULT_CREDITS_REFILL_MAX_KEYS_PER_RUN = 1_000_000;

/** The audit actor of refills: the system, not a root key. */
export const CREDITS_REFILL_ACTOR = { type: 'system', id: 'credits_refill', name: 'credits refill job' } as const;

/** Options of {@link CreditsRefillJob}. */
export interface CreditsRefillJobOptions {
  db: Database;
  clock?: Clock;
  /** When given, each refilled key's counter is reset before and after its row changes. */
  usageLimiter?: UsageLimiter;
  logger?: Logger;
  intervalMs?: number;
  batchSize?: number;
  maxKeysPerRun?: number;
}

/** What one run did. */
export interface CreditsRefillRunResult {
  /** Keys whose remaining credits were set to their refill amount, by this run. */
  refilledKeyIds: string[];
  /** UTC day the run refilled for, `YYYY-MM-DD`. */
  day: string;
}

/** Refills credits on a schedule; `runOnce` does one pass, `start` repeats it every `intervalMs`. */
export class CreditsRefillJob {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #usageLimiter: UsageLimiter | undefined;
  readonly #logger: Logger | undefined;
  readonly #intervalMs: number;
  readonly #batchSize: number;
  readonly #maxKeysPerRun: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<CreditsRefillRunResult> | undefined;

  constructor(options: CreditsRefillJobOptions) {
    this.#db = options.db;
    this.#clock = options.clock ?? systemClock;
    this.#usageLimiter = options.usageLimiter;
    this.#logger = options.logger;
    this.#intervalMs = options.intervalMs ?? DEFAULT_CREDITS_REFILL_INTERVAL_MS;
    this.#batchSize = options.batchSize ?? DEFAULT_CREDITS_REFILL_BATCH_SIZE;
    this.#maxKeysPerRun = options.maxKeysPerRun ?? DEFAULT_CREDITS_REFILL_MAX_KEYS_PER_RUN;
  }

  /**
   * Runs once now, then every `intervalMs` until {@link stop}. Errors are logged, never thrown
   * (the next run retries). The timer does not keep the process alive.
   */
  start(): void {
    if (this.#timer !== undefined) return;
    const tick = (): void => {
      this.runOnce().catch((err: unknown) => this.#logger?.error({ err }, 'credits refill run failed'));
    };
    this.#timer = setInterval(tick, this.#intervalMs);
    this.#timer.unref();
    tick();
  }

  /** Stops the timer and waits for a run in progress. Idempotent. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /**
   * Refills every key due today (UTC, from the clock). Concurrent calls on one node share one
   * run. Rejects with the database's Fault when it fails; keys refilled before that stay refilled.
   */
  runOnce(): Promise<CreditsRefillRunResult> {
    if (this.#running !== undefined) return this.#running;
    const run = this.#run().finally(() => {
      this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  async #run(): Promise<CreditsRefillRunResult> {
    const nowMs = this.#clock.nowMs();
    const schedule = refillSchedule(nowMs);
    const refilledKeyIds: string[] = [];
    let afterId = '';
    while (refilledKeyIds.length < this.#maxKeysPerRun) {
      const limit = Math.min(this.#batchSize, this.#maxKeysPerRun - refilledKeyIds.length);
      const candidates = await this.#db.query<{ id: string; workspace_id: string }>(
        `SELECT \`id\`, \`workspace_id\` FROM \`keys\` WHERE ${DUE_CONDITION} AND \`id\` > ? ORDER BY \`id\` LIMIT ?`,
        [...schedule.params, afterId, limit],
      );
      if (candidates.length === 0) break;
      afterId = String(candidates[candidates.length - 1]!.id);
      const refilled = await this.#refill(candidates.map((row) => ({ id: String(row.id), workspaceId: String(row.workspace_id) })), schedule, nowMs);
      refilledKeyIds.push(...refilled);
      if (candidates.length < limit) break;
    }
    if (refilledKeyIds.length > 0) this.#logger?.info({ refilled: refilledKeyIds.length, day: schedule.day }, 'credits refilled');
    return { refilledKeyIds, day: schedule.day };
  }

  async #refill(keys: Array<{ id: string; workspaceId: string }>, schedule: RefillSchedule, nowMs: number): Promise<string[]> {
    // Pending consumption must land before the new value is written, or it would be subtracted from it.
    if (this.#usageLimiter !== undefined) for (const key of keys) await this.#usageLimiter.reset(key.id);
    const refilled = await this.#db.transaction(async (tx) => {
      const done: Array<{ id: string; workspaceId: string }> = [];
      for (const key of keys) {
        const result = await tx.execute(
          `UPDATE \`keys\` SET \`remaining_requests\` = \`refill_amount\`, \`last_refill_at_m\` = ?, \`updated_at_m\` = ? WHERE \`id\` = ? AND ${DUE_CONDITION}`,
          [nowMs, nowMs, key.id, ...schedule.params],
        );
        if (result.affectedRows > 0) done.push(key);
      }
      const correlationId = newId('req');
      await insertAuditLogs(tx, done.map((key): AuditLogEntry => ({
        id: newId('log'),
        workspaceId: key.workspaceId,
        event: 'key.update',
        timeMs: nowMs,
        description: `Refilled the credits of ${key.id} (${schedule.day})`,
        actor: { ...CREDITS_REFILL_ACTOR },
        targets: [{ type: 'key', id: key.id }],
        correlationId,
      })));
      return done;
    });
    // …and the counter reloads the refilled value on its next use.
    if (this.#usageLimiter !== undefined) for (const key of refilled) await this.#usageLimiter.reset(key.id);
    return refilled.map((key) => key.id);
  }
}

/** When keys are due: the parameters of {@link DUE_CONDITION} for one UTC day. */
export interface RefillSchedule {
  day: string;
  params: SqlParam[];
}

// A key is due when it has a schedule, finite credits below the refill amount, was not refilled
// since today's UTC midnight, and is daily, or monthly on today, or monthly on a day this month
// lacks while today is the month's last day.
const DUE_CONDITION =
  '`deleted_at_m` IS NULL AND `refill_amount` IS NOT NULL AND `remaining_requests` IS NOT NULL ' +
  'AND `remaining_requests` < `refill_amount` AND (`last_refill_at_m` IS NULL OR `last_refill_at_m` < ?) ' +
  'AND (`refill_day` IS NULL OR `refill_day` = ? OR (? = 1 AND `refill_day` > ?))';

/** The UTC day of `nowMs` and whether it is the last day of its month. */
export function refillSchedule(nowMs: number): RefillSchedule {
  const now = new Date(nowMs);
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth();
  const dayOfMonth = now.getUTCDate();
  const startOfDayMs = Date.UTC(year, month, dayOfMonth);
  const daysInMonth = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const isLastDay = dayOfMonth === daysInMonth ? 1 : 0;
  return { day: new Date(startOfDayMs).toISOString().slice(0, 10), params: [startOfDayMs, dayOfMonth, isLastDay, dayOfMonth] };
}
