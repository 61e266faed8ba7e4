/**
 * Key-verification events in the local table: the analytics sink of a node without ClickHouse.
 * Written in batches by the analytics buffer (many rows per statement), read by the analytics API.
 */
import type { Database, SqlParam, SqlRow } from '../database.ts';
import { quoteColumns } from './sql-fragments.ts';
import { insertMany, readJsonArray, readNumber, readOptionalString } from './row-values.ts';

/** One verification outcome, as the verification engine reports it (api.md §7.12). */
export interface KeyVerificationEvent {
  requestId: string;
  timeMs: number;
  workspaceId: string;
  keySpaceId: string;
  keyId: string;
  identityId?: string;
  externalId?: string;
  /** VALID, NOT_FOUND, RATE_LIMITED, … */
  outcome: string;
  tags: string[];
  /** Credits charged by this call (0 unless actually charged). */
  spentCredits: number;
  latencyMs: number;
  region: string;
}

const COLUMNS = [
  'request_id', 'time', 'workspace_id', 'key_space_id', 'key_id', 'identity_id', 'external_id', 'outcome', 'tags',
  'spent_credits', 'latency_ms', 'region',
];

/** Writes events, up to 500 per statement; returns how many were written. */
export async function insertKeyVerifications(db: Database, events: readonly KeyVerificationEvent[]): Promise<number> {
  return insertMany(db, '`key_verifications`', quoteColumns(COLUMNS), events, (event): SqlParam[] => [
    event.requestId, event.timeMs, event.workspaceId, event.keySpaceId, event.keyId, event.identityId, event.externalId,
    event.outcome, JSON.stringify(event.tags), event.spentCredits, event.latencyMs, event.region,
  ]);
}

/** Filters of {@link listKeyVerifications}; the time range is `[sinceMs, untilMs)`. */
export interface KeyVerificationQuery {
  workspaceId: string;
  keySpaceId?: string;
  keyId?: string;
  sinceMs?: number;
  untilMs?: number;
  /** Most events returned, oldest first; default 1000, at most 10000. */
  limit?: number;
}

/** The workspace's events in a time range, oldest first. */
export async function listKeyVerifications(db: Database, query: KeyVerificationQuery): Promise<KeyVerificationEvent[]> {
  let sql = `SELECT ${quoteColumns(COLUMNS).join(', ')} FROM \`key_verifications\` WHERE \`workspace_id\` = ?`;
  const params: SqlParam[] = [query.workspaceId];
  if (query.keySpaceId !== undefined) (sql += ' AND `key_space_id` = ?'), params.push(query.keySpaceId);
  if (query.keyId !== undefined) (sql += ' AND `key_id` = ?'), params.push(query.keyId);
  if (query.sinceMs !== undefined) (sql += ' AND `time` >= ?'), params.push(query.sinceMs);
  if (query.untilMs !== undefined) (sql += ' AND `time` < ?'), params.push(query.untilMs);
  const limit = Math.min(10_000, Math.max(1, query.limit ?? 1_000));
  const rows = await db.query(sql + ' ORDER BY `time`, `pk` LIMIT ?', [...params, limit]);
  return rows.map(mapEvent);
}

function mapEvent(row: SqlRow): KeyVerificationEvent {
  return {
    requestId: String(row.request_id),
    timeMs: readNumber(row.time, 'key_verifications.time'),
    workspaceId: String(row.workspace_id),
    keySpaceId: String(row.key_space_id),
    keyId: String(row.key_id),
    identityId: readOptionalString(row.identity_id),
    externalId: readOptionalString(row.external_id),
    outcome: String(row.outcome),
    tags: readJsonArray<string>(row.tags, 'key_verifications.tags'),
    spentCredits: readNumber(row.spent_credits, 'key_verifications.spent_credits'),
    latencyMs: readNumber(row.latency_ms, 'key_verifications.latency_ms'),
    region: String(row.region),
  };
}
