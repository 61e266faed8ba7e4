/**
 * Roles (a name unique per workspace): bundles of permissions granted to keys. A key holds the
 * union of its direct permissions and those of its roles.
 */
import type { Database, SqlParam, SqlRow } from '../database.ts';
import { mapPermission, PERMISSION_COLUMNS, type Permission } from './permissions.ts';
import { onDuplicateIgnore, quoteColumns, selectColumns } from './sql-fragments.ts';
import { pageSize, placeholders, readNumber, readOptionalNumber, readOptionalString, toPage, type Page } from './row-values.ts';

/** A role as stored. */
export interface Role {
  id: string;
  workspaceId: string;
  name: string;
  description?: string;
  createdAtMs: number;
  updatedAtMs?: number;
}

/** Input of {@link insertRole}. */
export interface NewRole {
  id: string;
  workspaceId: string;
  name: string;
  description?: string;
  createdAtMs: number;
}

/** Columns of `roles` that {@link mapRole} reads. */
export const ROLE_COLUMNS = ['id', 'workspace_id', 'name', 'description', 'created_at_m', 'updated_at_m'] as const;

const SELECT_ROLE = `SELECT ${selectColumns('ro', ROLE_COLUMNS)} FROM \`roles\` ro`;

/** Maps a row (columns optionally under `prefix`) to a {@link Role}. */
export function mapRole(row: SqlRow, prefix = ''): Role {
  return {
    id: String(row[prefix + 'id']),
    workspaceId: String(row[prefix + 'workspace_id']),
    name: String(row[prefix + 'name']),
    description: readOptionalString(row[prefix + 'description']),
    createdAtMs: readNumber(row[prefix + 'created_at_m'], 'roles.created_at_m'),
    updatedAtMs: readOptionalNumber(row[prefix + 'updated_at_m'], 'roles.updated_at_m'),
  };
}

/** Inserts a role; a name taken in the workspace fails with `database:conflict`. */
export async function insertRole(db: Database, role: NewRole): Promise<void> {
  await db.execute('INSERT INTO `roles` (`id`, `workspace_id`, `name`, `description`, `created_at_m`) VALUES (?, ?, ?, ?, ?)', [
    role.id,
    role.workspaceId,
    role.name,
    role.description,
    role.createdAtMs,
  ]);
}

/** The role with this id in this workspace, or `undefined`. */
export async function getRoleById(db: Database, workspaceId: string, id: string): Promise<Role | undefined> {
  const rows = await db.query(`${SELECT_ROLE} WHERE ro.\`id\` = ? AND ro.\`workspace_id\` = ?`, [id, workspaceId]);
  return rows[0] === undefined ? undefined : mapRole(rows[0]);
}

/** The role with this name in this workspace, or `undefined`. */
export async function getRoleByName(db: Database, workspaceId: string, name: string): Promise<Role | undefined> {
  const rows = await db.query(`${SELECT_ROLE} WHERE ro.\`workspace_id\` = ? AND ro.\`name\` = ?`, [workspaceId, name]);
  return rows[0] === undefined ? undefined : mapRole(rows[0]);
}

/** The roles with these names (those that exist), ordered by name; createKey 404s on the rest. */
export async function getRolesByNames(db: Database, workspaceId: string, names: readonly string[]): Promise<Role[]> {
  if (names.length === 0) return [];
  const rows = await db.query(`${SELECT_ROLE} WHERE ro.\`workspace_id\` = ? AND ro.\`name\` IN (${placeholders(names.length)}) ORDER BY ro.\`name\``, [
    workspaceId,
    ...names,
  ]);
  return rows.map((row) => mapRole(row));
}

/** A page of the workspace's roles ordered by id, starting at `cursor` (inclusive). */
export async function listRoles(db: Database, workspaceId: string, options: { cursor?: string; limit?: number } = {}): Promise<Page<Role>> {
  const limit = pageSize(options.limit);
  const rows = await db.query(`${SELECT_ROLE} WHERE ro.\`workspace_id\` = ? AND ro.\`id\` >= ? ORDER BY ro.\`id\` LIMIT ?`, [
    workspaceId,
    options.cursor ?? '',
    limit + 1,
  ]);
  return toPage(rows.map((row) => mapRole(row)), limit);
}

/** Deletes a role and its grants (to keys, of permissions); false when there was none. */
export async function deleteRole(db: Database, workspaceId: string, id: string): Promise<boolean> {
  const result = await db.execute('DELETE FROM `roles` WHERE `id` = ? AND `workspace_id` = ?', [id, workspaceId]);
  return result.affectedRows > 0;
}

/** The permissions of a role, ordered by slug. */
export async function listRolePermissions(db: Database, roleId: string): Promise<Permission[]> {
  const rows = await db.query(
    `SELECT ${selectColumns('p', PERMISSION_COLUMNS)} FROM \`permissions\` p
       JOIN \`roles_permissions\` rp ON rp.\`permission_id\` = p.\`id\` WHERE rp.\`role_id\` = ? ORDER BY p.\`slug\``,
    [roleId],
  );
  return rows.map((row) => mapPermission(row));
}

/** Adds permissions to a role; ones it already has are kept (idempotent). */
export async function addRolePermissions(
  db: Database,
  grant: { workspaceId: string; roleId: string; permissionIds: readonly string[]; nowMs: number },
): Promise<void> {
  await insertLinks(db, 'roles_permissions', ['role_id', 'permission_id'], grant.roleId, grant.permissionIds, grant.workspaceId, grant.nowMs);
}

/** Removes permissions from a role; returns how many it had. */
export async function removeRolePermissions(db: Database, roleId: string, permissionIds: readonly string[]): Promise<number> {
  return deleteLinks(db, 'roles_permissions', ['role_id', 'permission_id'], roleId, permissionIds);
}

/** The roles granted to a key, ordered by name. */
export async function listKeyRoles(db: Database, keyId: string): Promise<Role[]> {
  const rows = await db.query(`${SELECT_ROLE} JOIN \`keys_roles\` kr ON kr.\`role_id\` = ro.\`id\` WHERE kr.\`key_id\` = ? ORDER BY ro.\`name\``, [keyId]);
  return rows.map((row) => mapRole(row));
}

/** Grants roles to a key; roles it already has are kept (idempotent). */
export async function addKeyRoles(db: Database, grant: { workspaceId: string; keyId: string; roleIds: readonly string[]; nowMs: number }): Promise<void> {
  await insertLinks(db, 'keys_roles', ['key_id', 'role_id'], grant.keyId, grant.roleIds, grant.workspaceId, grant.nowMs);
}

/** Revokes roles from a key; returns how many it had. */
export async function removeKeyRoles(db: Database, keyId: string, roleIds: readonly string[]): Promise<number> {
  return deleteLinks(db, 'keys_roles', ['key_id', 'role_id'], keyId, roleIds);
}

/** Makes the key's roles exactly `roleIds`, in a transaction. */
export async function setKeyRoles(db: Database, grant: { workspaceId: string; keyId: string; roleIds: readonly string[]; nowMs: number }): Promise<void> {
  await db.transaction(async (tx) => {
    const current = (await listKeyRoles(tx, grant.keyId)).map((role) => role.id);
    const wanted = new Set(grant.roleIds);
    await removeKeyRoles(tx, grant.keyId, current.filter((id) => !wanted.has(id)));
    await addKeyRoles(tx, grant);
  });
}

async function insertLinks(
  db: Database,
  table: string,
  [ownerColumn, targetColumn]: [string, string],
  ownerId: string,
  targetIds: readonly string[],
  workspaceId: string,
  nowMs: number,
): Promise<void> {
  const ids = [...new Set(targetIds)];
  if (ids.length === 0) return;
  const columns = quoteColumns([ownerColumn, targetColumn, 'workspace_id', 'created_at_m']);
  await db.execute(
    `INSERT INTO \`${table}\` (${columns.join(', ')}) VALUES ${ids.map(() => '(?, ?, ?, ?)').join(', ')}` +
      onDuplicateIgnore(db.dialect, [columns[0]!, columns[1]!], columns[0]!),
    ids.flatMap((targetId): SqlParam[] => [ownerId, targetId, workspaceId, nowMs]),
  );
}

async function deleteLinks(db: Database, table: string, [ownerColumn, targetColumn]: [string, string], ownerId: string, targetIds: readonly string[]): Promise<number> {
  if (targetIds.length === 0) return 0;
  const result = await db.execute(`DELETE FROM \`${table}\` WHERE \`${ownerColumn}\` = ? AND \`${targetColumn}\` IN (${placeholders(targetIds.length)})`, [
    ownerId,
    ...targetIds,
  ]);
  return result.affectedRows;
}
