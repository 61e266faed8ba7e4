/**
 * APIs: the named, workspace-scoped front of a key space (one API ↔ one key space), with its
 * IP allow-list and delete protection.
 */
import type { Database, SqlRow } from '../database.ts';
import { mapKeySpace, KEY_SPACE_COLUMNS, type KeySpace } from './key-spaces.ts';
import { selectColumns } from './sql-fragments.ts';
import { pageSize, readBoolean, readNumber, readOptionalNumber, readOptionalString, toPage, type Page, prefixedColumns } from './row-values.ts';

/** An API as stored. */
export interface Api {
  id: string;
  workspaceId: string;
  name: string;
  /** The key space holding this API's keys. */
  keySpaceId: string;
  /** Comma-separated allowed client IPs; `undefined` = any. */
  ipWhitelist?: string;
  authType: string;
  deleteProtection: boolean;
  createdAtMs: number;
  updatedAtMs?: number;
  deletedAtMs?: number;
}

/** Input of {@link insertApi}. */
export interface NewApi {
  id: string;
  workspaceId: string;
  name: string;
  keySpaceId: string;
  ipWhitelist?: string;
  deleteProtection?: boolean;
  createdAtMs: number;
}

/** Changes of {@link updateApi}: `undefined` = unchanged, `null` = cleared. */
export interface ApiPatch {
  name?: string;
  ipWhitelist?: string | null;
  deleteProtection?: boolean;
}

/** Columns of `apis` that {@link mapApi} reads. */
export const API_COLUMNS = ['id', 'workspace_id', 'name', 'key_auth_id', 'ip_whitelist', 'auth_type', 'delete_protection', 'created_at_m', 'updated_at_m', 'deleted_at_m'] as const;

/** Maps a row (columns optionally under `prefix`) to an {@link Api}. */
export function mapApi(row: SqlRow, prefix = ''): Api {
  const c = prefixedColumns(prefix, API_COLUMNS);
  return {
    id: String(row[c.id]),
    workspaceId: String(row[c.workspace_id]),
    name: String(row[c.name]),
    keySpaceId: String(row[c.key_auth_id]),
    ipWhitelist: readOptionalString(row[c.ip_whitelist]),
    authType: String(row[c.auth_type]),
    deleteProtection: readBoolean(row[c.delete_protection]),
    createdAtMs: readNumber(row[c.created_at_m], 'apis.created_at_m'),
    updatedAtMs: readOptionalNumber(row[c.updated_at_m], 'apis.updated_at_m'),
    deletedAtMs: readOptionalNumber(row[c.deleted_at_m], 'apis.deleted_at_m'),
  };
}

/** Inserts an API; its key space must exist (else `database:conflict`), and may back only one API. */
export async function insertApi(db: Database, api: NewApi): Promise<void> {
  await db.execute(
    'INSERT INTO `apis` (`id`, `workspace_id`, `name`, `key_auth_id`, `ip_whitelist`, `delete_protection`, `created_at_m`) VALUES (?, ?, ?, ?, ?, ?, ?)',
    [api.id, api.workspaceId, api.name, api.keySpaceId, api.ipWhitelist, api.deleteProtection ?? false, api.createdAtMs],
  );
}

/** The API with this id in this workspace, or `undefined` (deleted ones only with `includeDeleted`). */
export async function getApi(db: Database, workspaceId: string, apiId: string, options: { includeDeleted?: boolean } = {}): Promise<Api | undefined> {
  const rows = await db.query(
    `SELECT ${selectColumns('a', API_COLUMNS)} FROM \`apis\` a WHERE a.\`id\` = ? AND a.\`workspace_id\` = ?` +
      (options.includeDeleted === true ? '' : ' AND a.`deleted_at_m` IS NULL'),
    [apiId, workspaceId],
  );
  return rows[0] === undefined ? undefined : mapApi(rows[0]);
}

/** A live API together with its key space, in one round trip (createKey, listKeys). */
export async function getApiWithKeySpace(db: Database, workspaceId: string, apiId: string): Promise<{ api: Api; keySpace: KeySpace } | undefined> {
  const rows = await db.query(
    `SELECT ${selectColumns('a', API_COLUMNS, 'api_')}, ${selectColumns('ks', KEY_SPACE_COLUMNS, 'ks_')}
       FROM \`apis\` a JOIN \`key_auth\` ks ON ks.\`id\` = a.\`key_auth_id\`
      WHERE a.\`id\` = ? AND a.\`workspace_id\` = ? AND a.\`deleted_at_m\` IS NULL AND ks.\`deleted_at_m\` IS NULL`,
    [apiId, workspaceId],
  );
  const row = rows[0];
  return row === undefined ? undefined : { api: mapApi(row, 'api_'), keySpace: mapKeySpace(row, 'ks_') };
}

/** A page of the workspace's live APIs ordered by id, starting at `cursor` (inclusive). */
export async function listApis(db: Database, workspaceId: string, options: { cursor?: string; limit?: number } = {}): Promise<Page<Api>> {
  const limit = pageSize(options.limit);
  const rows = await db.query(
    `SELECT ${selectColumns('a', API_COLUMNS)} FROM \`apis\` a
      WHERE a.\`workspace_id\` = ? AND a.\`deleted_at_m\` IS NULL AND a.\`id\` >= ? ORDER BY a.\`id\` LIMIT ?`,
    [workspaceId, options.cursor ?? '', limit + 1],
  );
  return toPage(rows.map((row) => mapApi(row)), limit);
}

/** Applies a patch to a live API; false when there is none. */
export async function updateApi(db: Database, workspaceId: string, apiId: string, patch: ApiPatch, nowMs: number): Promise<boolean> {
  const assignments: string[] = ['`updated_at_m` = ?'];
  const params: Array<string | number | boolean | null> = [nowMs];
  if (patch.name !== undefined) (assignments.push('`name` = ?'), params.push(patch.name));
  if (patch.ipWhitelist !== undefined) (assignments.push('`ip_whitelist` = ?'), params.push(patch.ipWhitelist));
  if (patch.deleteProtection !== undefined) (assignments.push('`delete_protection` = ?'), params.push(patch.deleteProtection));
  const result = await db.execute(
    `UPDATE \`apis\` SET ${assignments.join(', ')} WHERE \`id\` = ? AND \`workspace_id\` = ? AND \`deleted_at_m\` IS NULL`,
    [...params, apiId, workspaceId],
  );
  return result.affectedRows > 0;
}

/**
 * Soft-deletes a live API and its key space together (so its keys stop verifying); false when
 * there is none. Delete protection is the caller's check.
 */
export async function softDeleteApi(db: Database, workspaceId: string, apiId: string, nowMs: number): Promise<boolean> {
  return db.transaction(async (tx) => {
    const api = await getApi(tx, workspaceId, apiId);
    if (api === undefined) return false;
    await tx.execute('UPDATE `apis` SET `deleted_at_m` = ? WHERE `id` = ? AND `deleted_at_m` IS NULL', [nowMs, apiId]);
    await tx.execute('UPDATE `key_auth` SET `deleted_at_m` = ? WHERE `id` = ? AND `deleted_at_m` IS NULL', [nowMs, api.keySpaceId]);
    return true;
  });
}
