/**
 * Key spaces (the `key_auth` table): the set of keys behind one API, with its key-creation
 * defaults and whether recoverable keys may be stored.
 */
import type { Database, SqlRow } from '../database.ts';
import { selectColumns } from './sql-fragments.ts';
import { readBoolean, readNumber, readOptionalNumber, readOptionalString, prefixedColumns } from './row-values.ts';

/** A key space as stored. */
export interface KeySpace {
  id: string;
  workspaceId: string;
  storeEncryptedKeys: boolean;
  defaultPrefix?: string;
  /** Random bytes of new keys; `undefined` = 16. */
  defaultBytes?: number;
  createdAtMs: number;
  updatedAtMs?: number;
  deletedAtMs?: number;
}

/** Input of {@link insertKeySpace}. */
export interface NewKeySpace {
  id: string;
  workspaceId: string;
  storeEncryptedKeys?: boolean;
  defaultPrefix?: string;
  defaultBytes?: number;
  createdAtMs: number;
}

/** Changes of {@link updateKeySpace}: `undefined` = unchanged, `null` = cleared. */
export interface KeySpacePatch {
  storeEncryptedKeys?: boolean;
  defaultPrefix?: string | null;
  defaultBytes?: number | null;
}

/** Columns of `key_auth` that {@link mapKeySpace} reads. */
export const KEY_SPACE_COLUMNS = ['id', 'workspace_id', 'store_encrypted_keys', 'default_prefix', 'default_bytes', 'created_at_m', 'updated_at_m', 'deleted_at_m'] as const;

/** Maps a row (columns optionally under `prefix`) to a {@link KeySpace}. */
export function mapKeySpace(row: SqlRow, prefix = ''): KeySpace {
  const c = prefixedColumns(prefix, KEY_SPACE_COLUMNS);
  return {
    id: String(row[c.id]),
    workspaceId: String(row[c.workspace_id]),
    storeEncryptedKeys: readBoolean(row[c.store_encrypted_keys]),
    defaultPrefix: readOptionalString(row[c.default_prefix]),
    defaultBytes: readOptionalNumber(row[c.default_bytes], 'key_auth.default_bytes'),
    createdAtMs: readNumber(row[c.created_at_m], 'key_auth.created_at_m'),
    updatedAtMs: readOptionalNumber(row[c.updated_at_m], 'key_auth.updated_at_m'),
    deletedAtMs: readOptionalNumber(row[c.deleted_at_m], 'key_auth.deleted_at_m'),
  };
}

/** Inserts a key space; a taken id fails with `database:conflict`. */
export async function insertKeySpace(db: Database, keySpace: NewKeySpace): Promise<void> {
  await db.execute(
    'INSERT INTO `key_auth` (`id`, `workspace_id`, `store_encrypted_keys`, `default_prefix`, `default_bytes`, `created_at_m`) VALUES (?, ?, ?, ?, ?, ?)',
    [keySpace.id, keySpace.workspaceId, keySpace.storeEncryptedKeys ?? false, keySpace.defaultPrefix, keySpace.defaultBytes, keySpace.createdAtMs],
  );
}

/** The key space with this id in this workspace, or `undefined` (deleted ones only with `includeDeleted`). */
export async function getKeySpace(
  db: Database,
  workspaceId: string,
  id: string,
  options: { includeDeleted?: boolean } = {},
): Promise<KeySpace | undefined> {
  const rows = await db.query(
    `SELECT ${selectColumns('ks', KEY_SPACE_COLUMNS)} FROM \`key_auth\` ks WHERE ks.\`id\` = ? AND ks.\`workspace_id\` = ?` +
      (options.includeDeleted === true ? '' : ' AND ks.`deleted_at_m` IS NULL'),
    [id, workspaceId],
  );
  return rows[0] === undefined ? undefined : mapKeySpace(rows[0]);
}

/** Applies a patch to a live key space; false when there is none. */
export async function updateKeySpace(db: Database, workspaceId: string, id: string, patch: KeySpacePatch, nowMs: number): Promise<boolean> {
  const assignments: string[] = ['`updated_at_m` = ?'];
  const params: Array<string | number | boolean | null> = [nowMs];
  if (patch.storeEncryptedKeys !== undefined) (assignments.push('`store_encrypted_keys` = ?'), params.push(patch.storeEncryptedKeys));
  if (patch.defaultPrefix !== undefined) (assignments.push('`default_prefix` = ?'), params.push(patch.defaultPrefix));
  if (patch.defaultBytes !== undefined) (assignments.push('`default_bytes` = ?'), params.push(patch.defaultBytes));
  const result = await db.execute(
    `UPDATE \`key_auth\` SET ${assignments.join(', ')} WHERE \`id\` = ? AND \`workspace_id\` = ? AND \`deleted_at_m\` IS NULL`,
    [...params, id, workspaceId],
  );
  return result.affectedRows > 0;
}

/** Soft-deletes a live key space; false when there is none. */
export async function softDeleteKeySpace(db: Database, workspaceId: string, id: string, nowMs: number): Promise<boolean> {
  const result = await db.execute(
    'UPDATE `key_auth` SET `deleted_at_m` = ? WHERE `id` = ? AND `workspace_id` = ? AND `deleted_at_m` IS NULL',
    [nowMs, id, workspaceId],
  );
  return result.affectedRows > 0;
}
