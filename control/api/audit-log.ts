/**
 * `AuditWriter`: writes the audit events of one mutation in the caller's transaction (spec
 * api.md §9: `key.create`, `api.create`, `authorization.connect_permission_and_key`, …). Every
 * event of one request shares a correlation id (the request id) and the actor (the root key).
 */
import type { Clock } from '../../core/clock.ts';
import type { Database } from '../../core/db/database.ts';
import { insertAuditLogs, type AuditActor, type AuditTarget } from '../../core/db/queries/audit-logs.ts';
import { newId } from '../../core/id.ts';

/** Who is acting and from where: built once per request by the API service. */
export interface AuditContext {
  readonly workspaceId: string;
  readonly actor: AuditActor;
  /** One id for every event of the request (the request id). */
  readonly correlationId: string;
  readonly remoteIp?: string;
  readonly userAgent?: string;
}

/** One event to record. */
export interface AuditEvent {
  /** e.g. `key.create`. */
  event: string;
  description: string;
  targets: AuditTarget[];
  meta?: Record<string, unknown>;
}

/** Builds and writes audit rows; stateless apart from the clock. */
export class AuditWriter {
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Writes `events` with `tx` (call it inside the mutation's transaction). No-op for an empty list. */
  async write(tx: Database, context: AuditContext, events: readonly AuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    const timeMs = this.#clock.nowMs();
    await insertAuditLogs(tx, events.map((event) => ({
      id: newId('log'),
      workspaceId: context.workspaceId,
      event: event.event,
      timeMs,
      description: event.description,
      actor: context.actor,
      remoteIp: context.remoteIp,
      userAgent: context.userAgent,
      meta: event.meta,
      targets: event.targets,
      correlationId: context.correlationId,
    })));
  }
}
