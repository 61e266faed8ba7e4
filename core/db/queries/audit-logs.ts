/**
 * Audit logs: one row per mutation event (`key.create`, `api.delete`, …), written in the same
 * transaction as the change it records (api.md §9). Events of one request share a correlation id.
 */
import type { Database, SqlParam, SqlRow } from '../database.ts';
import { quoteColumns } from './sql-fragments.ts';
import { insertMany, readJsonArray, readJsonObject, readNumber, readOptionalString, type JsonObject } from './row-values.ts';

/** Who did it (a root key, a user, the system). */
export interface AuditActor {
  type: string;
  id: string;
  name?: string;
  meta?: JsonObject;
}

/** What it was done to. */
export interface AuditTarget {
  type: string;
  id: string;
  name?: string;
  meta?: JsonObject;
}

/** One audit event; `bucket` defaults to `unkey_mutations`, `source` to `platform`. */
export interface AuditLogEntry {
  id: string;
  workspaceId: string;
  bucket?: string;
  source?: string;
  event: string;
  timeMs: number;
  description: string;
  actor: AuditActor;
  remoteIp?: string;
  userAgent?: string;
  meta?: JsonObject;
  targets: AuditTarget[];
  correlationId?: string;
}

const COLUMNS = [
  'id', 'workspace_id', 'bucket', 'source', 'event', 'time', 'description', 'actor_type', 'actor_id', 'actor_name',
  'actor_meta', 'remote_ip', 'user_agent', 'meta', 'targets', 'correlation_id',
];

/** Writes audit events, many per statement; returns how many were written. */
export async function insertAuditLogs(db: Database, entries: readonly AuditLogEntry[]): Promise<number> {
  return insertMany(db, '`audit_logs`', quoteColumns(COLUMNS), entries, (entry): SqlParam[] => [
    entry.id, entry.workspaceId, entry.bucket ?? 'unkey_mutations', entry.source ?? 'platform', entry.event, entry.timeMs,
    entry.description, entry.actor.type, entry.actor.id, entry.actor.name,
    entry.actor.meta === undefined ? null : JSON.stringify(entry.actor.meta), entry.remoteIp, entry.userAgent,
    entry.meta === undefined ? null : JSON.stringify(entry.meta), JSON.stringify(entry.targets), entry.correlationId,
  ]);
}

/** Filters of {@link listAuditLogs}. */
export interface AuditLogQuery {
  workspaceId: string;
  event?: string;
  correlationId?: string;
  /** Most entries returned, newest first; default 100, at most 1000. */
  limit?: number;
}

/** The workspace's audit events, newest first. */
export async function listAuditLogs(db: Database, query: AuditLogQuery): Promise<AuditLogEntry[]> {
  let sql = `SELECT ${quoteColumns(COLUMNS).join(', ')} FROM \`audit_logs\` WHERE \`workspace_id\` = ?`;
  const params: SqlParam[] = [query.workspaceId];
  if (query.event !== undefined) (sql += ' AND `event` = ?'), params.push(query.event);
  if (query.correlationId !== undefined) (sql += ' AND `correlation_id` = ?'), params.push(query.correlationId);
  const limit = Math.min(1_000, Math.max(1, query.limit ?? 100));
  const rows = await db.query(sql + ' ORDER BY `time` DESC, `pk` DESC LIMIT ?', [...params, limit]);
  return rows.map(mapAuditLog);
}

function mapAuditLog(row: SqlRow): AuditLogEntry {
  return {
    id: String(row.id),
    workspaceId: String(row.workspace_id),
    bucket: String(row.bucket),
    source: String(row.source),
    event: String(row.event),
    timeMs: readNumber(row.time, 'audit_logs.time'),
    description: String(row.description),
    actor: {
      type: String(row.actor_type),
      id: String(row.actor_id),
      name: readOptionalString(row.actor_name),
      meta: readJsonObject(row.actor_meta, 'audit_logs.actor_meta'),
    },
    remoteIp: readOptionalString(row.remote_ip),
    userAgent: readOptionalString(row.user_agent),
    meta: readJsonObject(row.meta, 'audit_logs.meta'),
    targets: readJsonArray<AuditTarget>(row.targets, 'audit_logs.targets'),
    correlationId: readOptionalString(row.correlation_id),
  };
}
