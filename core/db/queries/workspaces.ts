/**
 * Workspaces (tenants) and their limits. A disabled workspace fails every verification of its
 * keys with FORBIDDEN; a deleted one is treated as absent.
 */
import type { Database, SqlRow } from '../database.ts';
import { onDuplicateUpdate, selectColumns } from './sql-fragments.ts';
import { readBoolean, readNumber, readOptionalNumber, readOptionalString } from './row-values.ts';

/** A workspace as stored. */
export interface Workspace {
  id: string;
  name: string;
  orgId?: string;
  slug?: string;
  enabled: boolean;
  deleteProtection: boolean;
  createdAtMs: number;
  updatedAtMs?: number;
  deletedAtMs?: number;
}

/** Input of {@link insertWorkspace}; `enabled` defaults to true. */
export interface NewWorkspace {
  id: string;
  name: string;
  orgId?: string;
  slug?: string;
  enabled?: boolean;
  deleteProtection?: boolean;
  createdAtMs: number;
}

/** Per-workspace limits (api.md §5.2): `undefined` = no throttle, 0 = every request throttled. */
export interface WorkspaceLimits {
  workspaceId: string;
  apiRequestsCountMaxPerMinute?: number;
}

/** Columns of `workspaces` in the order {@link mapWorkspace} reads them. */
export const WORKSPACE_COLUMNS = ['id', 'name', 'org_id', 'slug', 'enabled', 'delete_protection', 'created_at_m', 'updated_at_m', 'deleted_at_m'] as const;

/** Maps a row (columns optionally under `prefix`) to a {@link Workspace}. */
export function mapWorkspace(row: SqlRow, prefix = ''): Workspace {
  return {
    id: String(row[prefix + 'id']),
    name: String(row[prefix + 'name']),
    orgId: readOptionalString(row[prefix + 'org_id']),
    slug: readOptionalString(row[prefix + 'slug']),
    enabled: readBoolean(row[prefix + 'enabled']),
    deleteProtection: readBoolean(row[prefix + 'delete_protection']),
    createdAtMs: readNumber(row[prefix + 'created_at_m'], 'workspaces.created_at_m'),
    updatedAtMs: readOptionalNumber(row[prefix + 'updated_at_m'], 'workspaces.updated_at_m'),
    deletedAtMs: readOptionalNumber(row[prefix + 'deleted_at_m'], 'workspaces.deleted_at_m'),
  };
}

/** Inserts a workspace; a taken id, org id or slug fails with `database:conflict`. */
export async function insertWorkspace(db: Database, workspace: NewWorkspace): Promise<void> {
  await db.execute(
    'INSERT INTO `workspaces` (`id`, `name`, `org_id`, `slug`, `enabled`, `delete_protection`, `created_at_m`) VALUES (?, ?, ?, ?, ?, ?, ?)',
    [workspace.id, workspace.name, workspace.orgId, workspace.slug, workspace.enabled ?? true, workspace.deleteProtection ?? false, workspace.createdAtMs],
  );
}

/** The workspace with this id, or `undefined`; deleted ones only with `includeDeleted`. */
export async function getWorkspace(db: Database, id: string, options: { includeDeleted?: boolean } = {}): Promise<Workspace | undefined> {
  const rows = await db.query(
    `SELECT ${selectColumns('w', WORKSPACE_COLUMNS)} FROM \`workspaces\` w WHERE w.\`id\` = ?` +
      (options.includeDeleted === true ? '' : ' AND w.`deleted_at_m` IS NULL'),
    [id],
  );
  return rows[0] === undefined ? undefined : mapWorkspace(rows[0]);
}

/** Enables or disables a live workspace; false when there is none. */
export async function setWorkspaceEnabled(db: Database, id: string, enabled: boolean, nowMs: number): Promise<boolean> {
  const result = await db.execute('UPDATE `workspaces` SET `enabled` = ?, `updated_at_m` = ? WHERE `id` = ? AND `deleted_at_m` IS NULL', [enabled, nowMs, id]);
  return result.affectedRows > 0;
}

/** Soft-deletes a live workspace; false when there is none. */
export async function softDeleteWorkspace(db: Database, id: string, nowMs: number): Promise<boolean> {
  const result = await db.execute('UPDATE `workspaces` SET `deleted_at_m` = ? WHERE `id` = ? AND `deleted_at_m` IS NULL', [nowMs, id]);
  return result.affectedRows > 0;
}

/** The workspace's limits, or `undefined` when none were ever set (no throttle). */
export async function getWorkspaceLimits(db: Database, workspaceId: string): Promise<WorkspaceLimits | undefined> {
  const rows = await db.query('SELECT `workspace_id`, `api_requests_count_max_per_minute` FROM `limits` WHERE `workspace_id` = ?', [workspaceId]);
  const row = rows[0];
  if (row === undefined) return undefined;
  return {
    workspaceId: String(row.workspace_id),
    apiRequestsCountMaxPerMinute: readOptionalNumber(row.api_requests_count_max_per_minute, 'limits.api_requests_count_max_per_minute'),
  };
}

/** Creates or replaces the workspace's limits; `null` removes the throttle. */
export async function setWorkspaceLimits(
  db: Database,
  limits: { workspaceId: string; apiRequestsCountMaxPerMinute: number | null; nowMs: number },
): Promise<void> {
  await db.execute(
    'INSERT INTO `limits` (`workspace_id`, `api_requests_count_max_per_minute`, `created_at_m`, `updated_at_m`) VALUES (?, ?, ?, ?)' +
      onDuplicateUpdate(db.dialect, ['`workspace_id`'], ['`api_requests_count_max_per_minute`', '`updated_at_m`']),
    [limits.workspaceId, limits.apiRequestsCountMaxPerMinute, limits.nowMs, limits.nowMs],
  );
}
