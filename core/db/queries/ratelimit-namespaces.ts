/**
 * Rate-limit namespaces of the standalone `ratelimit.limit` API: a name unique per workspace
 * (even after deletion, so a deleted name answers 410 instead of being silently recreated).
 */
import type { Database, SqlRow } from '../database.ts';
import { selectColumns } from './sql-fragments.ts';
import { pageSize, readNumber, readOptionalNumber, toPage, type Page } from './row-values.ts';

/** A namespace as stored. */
export interface RatelimitNamespace {
  id: string;
  workspaceId: string;
  name: string;
  createdAtMs: number;
  updatedAtMs?: number;
  deletedAtMs?: number;
}

/** Input of {@link insertRatelimitNamespace}. */
export interface NewRatelimitNamespace {
  id: string;
  workspaceId: string;
  name: string;
  createdAtMs: number;
}

/** Columns of `ratelimit_namespaces` that {@link mapRatelimitNamespace} reads. */
export const RATELIMIT_NAMESPACE_COLUMNS = ['id', 'workspace_id', 'name', 'created_at_m', 'updated_at_m', 'deleted_at_m'] as const;

const SELECT_NAMESPACE = `SELECT ${selectColumns('n', RATELIMIT_NAMESPACE_COLUMNS)} FROM \`ratelimit_namespaces\` n`;

/** Maps a row (columns optionally under `prefix`) to a {@link RatelimitNamespace}. */
export function mapRatelimitNamespace(row: SqlRow, prefix = ''): RatelimitNamespace {
  return {
    id: String(row[prefix + 'id']),
    workspaceId: String(row[prefix + 'workspace_id']),
    name: String(row[prefix + 'name']),
    createdAtMs: readNumber(row[prefix + 'created_at_m'], 'ratelimit_namespaces.created_at_m'),
    updatedAtMs: readOptionalNumber(row[prefix + 'updated_at_m'], 'ratelimit_namespaces.updated_at_m'),
    deletedAtMs: readOptionalNumber(row[prefix + 'deleted_at_m'], 'ratelimit_namespaces.deleted_at_m'),
  };
}

/** Inserts a namespace; a name taken in the workspace (even by a deleted one) fails with `database:conflict`. */
export async function insertRatelimitNamespace(db: Database, namespace: NewRatelimitNamespace): Promise<void> {
  await db.execute('INSERT INTO `ratelimit_namespaces` (`id`, `workspace_id`, `name`, `created_at_m`) VALUES (?, ?, ?, ?)', [
    namespace.id,
    namespace.workspaceId,
    namespace.name,
    namespace.createdAtMs,
  ]);
}

/**
 * The namespace whose id or name is `nameOrId` in this workspace (an id match wins), deleted ones
 * included so the caller can answer 410; `undefined` when none.
 */
export async function findRatelimitNamespace(db: Database, workspaceId: string, nameOrId: string): Promise<RatelimitNamespace | undefined> {
  const rows = await db.query(
    `${SELECT_NAMESPACE} WHERE n.\`workspace_id\` = ? AND (n.\`id\` = ? OR n.\`name\` = ?) ORDER BY CASE WHEN n.\`id\` = ? THEN 0 ELSE 1 END LIMIT 1`,
    [workspaceId, nameOrId, nameOrId, nameOrId],
  );
  return rows[0] === undefined ? undefined : mapRatelimitNamespace(rows[0]);
}

/** The namespace with this id in this workspace (deleted included), or `undefined`. */
export async function getRatelimitNamespaceById(db: Database, workspaceId: string, id: string): Promise<RatelimitNamespace | undefined> {
  const rows = await db.query(`${SELECT_NAMESPACE} WHERE n.\`workspace_id\` = ? AND n.\`id\` = ?`, [workspaceId, id]);
  return rows[0] === undefined ? undefined : mapRatelimitNamespace(rows[0]);
}

/** The namespace with this name in this workspace (deleted included), or `undefined`. */
export async function getRatelimitNamespaceByName(db: Database, workspaceId: string, name: string): Promise<RatelimitNamespace | undefined> {
  const rows = await db.query(`${SELECT_NAMESPACE} WHERE n.\`workspace_id\` = ? AND n.\`name\` = ?`, [workspaceId, name]);
  return rows[0] === undefined ? undefined : mapRatelimitNamespace(rows[0]);
}

/** A page of the workspace's live namespaces ordered by id, starting at `cursor` (inclusive). */
export async function listRatelimitNamespaces(db: Database, workspaceId: string, options: { cursor?: string; limit?: number } = {}): Promise<Page<RatelimitNamespace>> {
  const limit = pageSize(options.limit);
  const rows = await db.query(
    `${SELECT_NAMESPACE} WHERE n.\`workspace_id\` = ? AND n.\`deleted_at_m\` IS NULL AND n.\`id\` >= ? ORDER BY n.\`id\` LIMIT ?`,
    [workspaceId, options.cursor ?? '', limit + 1],
  );
  return toPage(rows.map((row) => mapRatelimitNamespace(row)), limit);
}

/** Soft-deletes a live namespace; false when there is none. */
export async function softDeleteRatelimitNamespace(db: Database, workspaceId: string, id: string, nowMs: number): Promise<boolean> {
  const result = await db.execute(
    'UPDATE `ratelimit_namespaces` SET `deleted_at_m` = ? WHERE `id` = ? AND `workspace_id` = ? AND `deleted_at_m` IS NULL',
    [nowMs, id, workspaceId],
  );
  return result.affectedRows > 0;
}
