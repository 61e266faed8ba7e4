/**
 * Permissions (a slug unique per workspace) and their direct grants to keys. Slugs are matched
 * as exact, case-sensitive strings (api.md §7.9): `documents.*` is just a slug.
 */
import type { Database, SqlParam, SqlRow } from '../database.ts';
import { onDuplicateIgnore, quoteColumns, selectColumns } from './sql-fragments.ts';
import { pageSize, placeholders, readNumber, readOptionalNumber, readOptionalString, toPage, type Page } from './row-values.ts';

/** A permission as stored. */
export interface Permission {
  id: string;
  workspaceId: string;
  name: string;
  slug: string;
  description?: string;
  createdAtMs: number;
  updatedAtMs?: number;
}

/** Input of {@link insertPermission}. */
export interface NewPermission {
  id: string;
  workspaceId: string;
  name: string;
  slug: string;
  description?: string;
  createdAtMs: number;
}

/** Columns of `permissions` that {@link mapPermission} reads. */
export const PERMISSION_COLUMNS = ['id', 'workspace_id', 'name', 'slug', 'description', 'created_at_m', 'updated_at_m'] as const;

const SELECT_PERMISSION = `SELECT ${selectColumns('p', PERMISSION_COLUMNS)} FROM \`permissions\` p`;

/** Maps a row (columns optionally under `prefix`) to a {@link Permission}. */
export function mapPermission(row: SqlRow, prefix = ''): Permission {
  return {
    id: String(row[prefix + 'id']),
    workspaceId: String(row[prefix + 'workspace_id']),
    name: String(row[prefix + 'name']),
    slug: String(row[prefix + 'slug']),
    description: readOptionalString(row[prefix + 'description']),
    createdAtMs: readNumber(row[prefix + 'created_at_m'], 'permissions.created_at_m'),
    updatedAtMs: readOptionalNumber(row[prefix + 'updated_at_m'], 'permissions.updated_at_m'),
  };
}

/** Inserts a permission; a slug taken in the workspace fails with `database:conflict`. */
export async function insertPermission(db: Database, permission: NewPermission): Promise<void> {
  await db.execute(
    'INSERT INTO `permissions` (`id`, `workspace_id`, `name`, `slug`, `description`, `created_at_m`) VALUES (?, ?, ?, ?, ?, ?)',
    [permission.id, permission.workspaceId, permission.name, permission.slug, permission.description, permission.createdAtMs],
  );
}

/** The permission with this id in this workspace, or `undefined`. */
export async function getPermissionById(db: Database, workspaceId: string, id: string): Promise<Permission | undefined> {
  const rows = await db.query(`${SELECT_PERMISSION} WHERE p.\`id\` = ? AND p.\`workspace_id\` = ?`, [id, workspaceId]);
  return rows[0] === undefined ? undefined : mapPermission(rows[0]);
}

/** The permission with this slug in this workspace, or `undefined`. */
export async function getPermissionBySlug(db: Database, workspaceId: string, slug: string): Promise<Permission | undefined> {
  const rows = await db.query(`${SELECT_PERMISSION} WHERE p.\`workspace_id\` = ? AND p.\`slug\` = ?`, [workspaceId, slug]);
  return rows[0] === undefined ? undefined : mapPermission(rows[0]);
}

/** The permissions with these slugs (those that exist), ordered by slug. */
export async function getPermissionsBySlugs(db: Database, workspaceId: string, slugs: readonly string[]): Promise<Permission[]> {
  if (slugs.length === 0) return [];
  const rows = await db.query(
    `${SELECT_PERMISSION} WHERE p.\`workspace_id\` = ? AND p.\`slug\` IN (${placeholders(slugs.length)}) ORDER BY p.\`slug\``,
    [workspaceId, ...slugs],
  );
  return rows.map((row) => mapPermission(row));
}

/**
 * The permissions with these slugs, creating the missing ones (name = slug) with ids from
 * `newId` (createKey auto-creates unknown slugs, api.md §14.22). Safe against a concurrent
 * creator of the same slug. Returns every permission, ordered by slug.
 */
export async function ensurePermissions(
  db: Database,
  workspaceId: string,
  slugs: readonly string[],
  newId: () => string,
  nowMs: number,
): Promise<Permission[]> {
  const unique = [...new Set(slugs)];
  if (unique.length === 0) return [];
  const existing = new Set((await getPermissionsBySlugs(db, workspaceId, unique)).map((permission) => permission.slug));
  const missing = unique.filter((slug) => !existing.has(slug));
  if (missing.length > 0) {
    const columns = quoteColumns(['id', 'workspace_id', 'name', 'slug', 'created_at_m']);
    const rows = missing.map((slug): SqlParam[] => [newId(), workspaceId, slug, slug, nowMs]);
    await db.execute(
      `INSERT INTO \`permissions\` (${columns.join(', ')}) VALUES ${rows.map(() => '(?, ?, ?, ?, ?)').join(', ')}` +
        onDuplicateIgnore(db.dialect, ['`workspace_id`', '`slug`'], '`slug`'),
      rows.flat(),
    );
  }
  return getPermissionsBySlugs(db, workspaceId, unique);
}

/** A page of the workspace's permissions ordered by id, starting at `cursor` (inclusive). */
export async function listPermissions(db: Database, workspaceId: string, options: { cursor?: string; limit?: number } = {}): Promise<Page<Permission>> {
  const limit = pageSize(options.limit);
  const rows = await db.query(`${SELECT_PERMISSION} WHERE p.\`workspace_id\` = ? AND p.\`id\` >= ? ORDER BY p.\`id\` LIMIT ?`, [
    workspaceId,
    options.cursor ?? '',
    limit + 1,
  ]);
  return toPage(rows.map((row) => mapPermission(row)), limit);
}

/** Deletes a permission and every grant of it (keys and roles); false when there was none. */
export async function deletePermission(db: Database, workspaceId: string, id: string): Promise<boolean> {
  const result = await db.execute('DELETE FROM `permissions` WHERE `id` = ? AND `workspace_id` = ?', [id, workspaceId]);
  return result.affectedRows > 0;
}

/** The permissions granted directly to a key, ordered by slug. */
export async function listKeyPermissions(db: Database, keyId: string): Promise<Permission[]> {
  const rows = await db.query(
    `${SELECT_PERMISSION} JOIN \`keys_permissions\` kp ON kp.\`permission_id\` = p.\`id\` WHERE kp.\`key_id\` = ? ORDER BY p.\`slug\``,
    [keyId],
  );
  return rows.map((row) => mapPermission(row));
}

/** Grants permissions to a key; grants it already has are kept (idempotent). */
export async function addKeyPermissions(
  db: Database,
  grant: { workspaceId: string; keyId: string; permissionIds: readonly string[]; nowMs: number },
): Promise<void> {
  const ids = [...new Set(grant.permissionIds)];
  if (ids.length === 0) return;
  const columns = quoteColumns(['key_id', 'permission_id', 'workspace_id', 'created_at_m']);
  await db.execute(
    `INSERT INTO \`keys_permissions\` (${columns.join(', ')}) VALUES ${ids.map(() => '(?, ?, ?, ?)').join(', ')}` +
      onDuplicateIgnore(db.dialect, ['`key_id`', '`permission_id`'], '`key_id`'),
    ids.flatMap((permissionId): SqlParam[] => [grant.keyId, permissionId, grant.workspaceId, grant.nowMs]),
  );
}

/** Revokes direct grants from a key; returns how many existed. */
export async function removeKeyPermissions(db: Database, keyId: string, permissionIds: readonly string[]): Promise<number> {
  if (permissionIds.length === 0) return 0;
  const result = await db.execute(
    `DELETE FROM \`keys_permissions\` WHERE \`key_id\` = ? AND \`permission_id\` IN (${placeholders(permissionIds.length)})`,
    [keyId, ...permissionIds],
  );
  return result.affectedRows;
}

/** Makes the key's direct grants exactly `permissionIds`, in a transaction. */
export async function setKeyPermissions(
  db: Database,
  grant: { workspaceId: string; keyId: string; permissionIds: readonly string[]; nowMs: number },
): Promise<void> {
  await db.transaction(async (tx) => {
    const current = (await listKeyPermissions(tx, grant.keyId)).map((permission) => permission.id);
    const wanted = new Set(grant.permissionIds);
    await removeKeyPermissions(tx, grant.keyId, current.filter((id) => !wanted.has(id)));
    await addKeyPermissions(tx, grant);
  });
}

