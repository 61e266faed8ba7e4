/**
 * Shared pieces of the permissions.* routes: the requirement `rbac.*.<action>` (or its URN
 * `rbac/*#<action>`), checked BEFORE any lookup (a workspace-wide right, so a 403 reveals
 * nothing about a particular resource); lookups by id or slug/name; and the keys whose cached
 * entries embed a permission or role (to invalidate after a change).
 */
import type { Database } from '../../../../core/db/database.ts';
import { getPermissionById, getPermissionBySlug, type Permission } from '../../../../core/db/queries/permissions.ts';
import { getRoleById, getRoleByName, type Role } from '../../../../core/db/queries/roles.ts';
import { anyOf, perm, type PermissionQuery } from '../../../../core/rbac/permission-query.ts';
import { resourceUrn } from '../../../../core/rbac/required-permissions.ts';
import { requirePermissions } from '../../authorization.ts';
import { notFound } from '../../not-found.ts';
import type { RootKeyPrincipal } from '../../root-key-auth.ts';

/** Most key hashes collected for one invalidation; beyond it entries converge by expiry. */
export const MAX_KEYS_INVALIDATED_PER_CHANGE = 100_000;

/** `rbac.*.<action>` OR the URN `rbac/*#<action>`. */
export function rbacPermission(workspaceId: string, action: string): PermissionQuery {
  return anyOf(perm(`rbac.*.${action}`), resourceUrn(workspaceId, 'rbac/*', action));
}

/** Throws 403 unless the root key holds `rbac.*.<action>`. */
export function requireRbac(principal: RootKeyPrincipal, action: string): void {
  requirePermissions(principal, rbacPermission(principal.workspaceId, action));
}

/** The permission named by id or slug, or 404. */
export async function loadPermission(db: Database, workspaceId: string, permission: string): Promise<Permission> {
  const found = (await getPermissionById(db, workspaceId, permission)) ?? (await getPermissionBySlug(db, workspaceId, permission));
  if (found === undefined) throw notFound.permission();
  return found;
}

/** The role named by id or name, or 404. */
export async function loadRole(db: Database, workspaceId: string, role: string): Promise<Role> {
  const found = (await getRoleById(db, workspaceId, role)) ?? (await getRoleByName(db, workspaceId, role));
  if (found === undefined) throw notFound.role();
  return found;
}

/** Hashes of live keys holding the permission directly or through a role. */
export async function keyHashesWithPermission(db: Database, permissionId: string): Promise<string[]> {
  const rows = await db.query<{ hash: string }>(
    'SELECT k.`hash` FROM `keys` k WHERE k.`deleted_at_m` IS NULL AND (k.`id` IN (SELECT `key_id` FROM `keys_permissions` WHERE `permission_id` = ?) ' +
      'OR k.`id` IN (SELECT kr.`key_id` FROM `keys_roles` kr JOIN `roles_permissions` rp ON rp.`role_id` = kr.`role_id` WHERE rp.`permission_id` = ?)) LIMIT ?',
    [permissionId, permissionId, MAX_KEYS_INVALIDATED_PER_CHANGE],
  );
  return rows.map((row) => String(row.hash));
}

/** Hashes of live keys holding the role. */
export async function keyHashesWithRole(db: Database, roleId: string): Promise<string[]> {
  const rows = await db.query<{ hash: string }>(
    'SELECT k.`hash` FROM `keys` k JOIN `keys_roles` kr ON kr.`key_id` = k.`id` WHERE kr.`role_id` = ? AND k.`deleted_at_m` IS NULL LIMIT ?',
    [roleId, MAX_KEYS_INVALIDATED_PER_CHANGE],
  );
  return rows.map((row) => String(row.hash));
}
