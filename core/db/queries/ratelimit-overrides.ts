/**
 * Rate-limit overrides: per-identifier limit and duration inside a namespace that replace the
 * request's values. An identifier is exact, or a pattern where `*` matches any run of
 * characters; exact matches win, then the first matching pattern in creation order.
 */
import type { Database, SqlRow } from '../database.ts';
import { Fault } from '../../fault.ts';
import { onDuplicateUpdate, selectColumns } from './sql-fragments.ts';
import { checkInteger, pageSize, readNumber, readOptionalNumber, toPage, type Page } from './row-values.ts';

/** An override as stored. */
export interface RatelimitOverride {
  id: string;
  workspaceId: string;
  namespaceId: string;
  identifier: string;
  limit: number;
  durationMs: number;
  createdAtMs: number;
  updatedAtMs?: number;
  deletedAtMs?: number;
}

/** Input of {@link upsertRatelimitOverride}; `id` is used only when the identifier is new. */
export interface RatelimitOverrideInput {
  id: string;
  workspaceId: string;
  namespaceId: string;
  identifier: string;
  limit: number;
  durationMs: number;
  nowMs: number;
}

/** Most wildcard overrides {@link listWildcardRatelimitOverrides} returns per namespace. */
export const MAX_WILDCARD_OVERRIDES = 10_000;

/** Columns of `ratelimit_overrides` that {@link mapRatelimitOverride} reads. */
export const RATELIMIT_OVERRIDE_COLUMNS = ['id', 'workspace_id', 'namespace_id', 'identifier', 'limit', 'duration_ms', 'created_at_m', 'updated_at_m', 'deleted_at_m'] as const;

const SELECT_OVERRIDE = `SELECT ${selectColumns('o', RATELIMIT_OVERRIDE_COLUMNS)} FROM \`ratelimit_overrides\` o`;

/** Maps a row (columns optionally under `prefix`) to a {@link RatelimitOverride}. */
export function mapRatelimitOverride(row: SqlRow, prefix = ''): RatelimitOverride {
  return {
    id: String(row[prefix + 'id']),
    workspaceId: String(row[prefix + 'workspace_id']),
    namespaceId: String(row[prefix + 'namespace_id']),
    identifier: String(row[prefix + 'identifier']),
    limit: readNumber(row[prefix + 'limit'], 'ratelimit_overrides.limit'),
    durationMs: readNumber(row[prefix + 'duration_ms'], 'ratelimit_overrides.duration_ms'),
    createdAtMs: readNumber(row[prefix + 'created_at_m'], 'ratelimit_overrides.created_at_m'),
    updatedAtMs: readOptionalNumber(row[prefix + 'updated_at_m'], 'ratelimit_overrides.updated_at_m'),
    deletedAtMs: readOptionalNumber(row[prefix + 'deleted_at_m'], 'ratelimit_overrides.deleted_at_m'),
  };
}

/**
 * Creates or replaces the override of `(namespaceId, identifier)` (setOverride): an existing one
 * (even a deleted one, which comes back to life) keeps its id. Returns the override's id.
 */
export async function upsertRatelimitOverride(db: Database, override: RatelimitOverrideInput): Promise<string> {
  checkInteger(override.limit, 'limit');
  checkInteger(override.durationMs, 'duration');
  await db.execute(
    'INSERT INTO `ratelimit_overrides` (`id`, `workspace_id`, `namespace_id`, `identifier`, `limit`, `duration_ms`, `created_at_m`, `updated_at_m`, `deleted_at_m`) ' +
      'VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)' +
      onDuplicateUpdate(db.dialect, ['`namespace_id`', '`identifier`'], ['`limit`', '`duration_ms`', '`updated_at_m`', '`deleted_at_m`']),
    [override.id, override.workspaceId, override.namespaceId, override.identifier, override.limit, override.durationMs, override.nowMs, override.nowMs],
  );
  const rows = await db.query<{ id: string }>('SELECT `id` FROM `ratelimit_overrides` WHERE `namespace_id` = ? AND `identifier` = ?', [
    override.namespaceId,
    override.identifier,
  ]);
  const id = rows[0]?.id;
  if (id === undefined) throw new Fault('err:unkey:application:assertion_failed', { internalMessage: 'override vanished right after upsert' });
  return String(id);
}

/** The live override with this id in this workspace, or `undefined`. */
export async function getRatelimitOverrideById(db: Database, workspaceId: string, id: string): Promise<RatelimitOverride | undefined> {
  const rows = await db.query(`${SELECT_OVERRIDE} WHERE o.\`id\` = ? AND o.\`workspace_id\` = ? AND o.\`deleted_at_m\` IS NULL`, [id, workspaceId]);
  return rows[0] === undefined ? undefined : mapRatelimitOverride(rows[0]);
}

/** The live override whose identifier is exactly `identifier` (no pattern matching), or `undefined`. */
export async function getRatelimitOverrideByIdentifier(db: Database, namespaceId: string, identifier: string): Promise<RatelimitOverride | undefined> {
  const rows = await db.query(`${SELECT_OVERRIDE} WHERE o.\`namespace_id\` = ? AND o.\`identifier\` = ? AND o.\`deleted_at_m\` IS NULL`, [
    namespaceId,
    identifier,
  ]);
  return rows[0] === undefined ? undefined : mapRatelimitOverride(rows[0]);
}

/**
 * The namespace's live overrides whose identifier contains `*`, in creation order (the order
 * wildcard matching follows), at most {@link MAX_WILDCARD_OVERRIDES}.
 */
export async function listWildcardRatelimitOverrides(db: Database, namespaceId: string): Promise<RatelimitOverride[]> {
  const rows = await db.query(
    `${SELECT_OVERRIDE} WHERE o.\`namespace_id\` = ? AND o.\`deleted_at_m\` IS NULL AND o.\`identifier\` LIKE '%*%' ORDER BY o.\`pk\` LIMIT ?`,
    [namespaceId, MAX_WILDCARD_OVERRIDES],
  );
  return rows.map((row) => mapRatelimitOverride(row));
}

/** A page of the namespace's live overrides ordered by id, starting at `cursor` (inclusive). */
export async function listRatelimitOverrides(db: Database, namespaceId: string, options: { cursor?: string; limit?: number } = {}): Promise<Page<RatelimitOverride>> {
  const limit = pageSize(options.limit);
  const rows = await db.query(
    `${SELECT_OVERRIDE} WHERE o.\`namespace_id\` = ? AND o.\`deleted_at_m\` IS NULL AND o.\`id\` >= ? ORDER BY o.\`id\` LIMIT ?`,
    [namespaceId, options.cursor ?? '', limit + 1],
  );
  return toPage(rows.map((row) => mapRatelimitOverride(row)), limit);
}

/** Soft-deletes a live override; false when there is none. */
export async function softDeleteRatelimitOverride(db: Database, workspaceId: string, id: string, nowMs: number): Promise<boolean> {
  const result = await db.execute(
    'UPDATE `ratelimit_overrides` SET `deleted_at_m` = ? WHERE `id` = ? AND `workspace_id` = ? AND `deleted_at_m` IS NULL',
    [nowMs, id, workspaceId],
  );
  return result.affectedRows > 0;
}
