/**
 * Resolving the permission slugs and role names a request names, in the caller's workspace.
 * Roles may also be named by their `role_…` id, permissions by their `perm_…` id.
 */
import type { Database } from '../../../../core/db/database.ts';
import { ensurePermissions, getPermissionById, getPermissionsBySlugs, type Permission } from '../../../../core/db/queries/permissions.ts';
import { getRoleById, getRolesByNames, type Role } from '../../../../core/db/queries/roles.ts';
import { Fault } from '../../../../core/fault.ts';
import { newId } from '../../../../core/id.ts';

/** Every named role, by name or id; throws 404 `role_not_found` naming the first unknown one. */
export async function resolveRoles(db: Database, workspaceId: string, names: readonly string[]): Promise<Role[]> {
  const unique = [...new Set(names)];
  const found = new Map((await getRolesByNames(db, workspaceId, unique)).map((role) => [role.name, role]));
  const roles: Role[] = [];
  for (const name of unique) {
    const role = found.get(name) ?? (name.startsWith('role_') ? await getRoleById(db, workspaceId, name) : undefined);
    if (role === undefined) throw Fault.expected('err:unkey:data:role_not_found', { publicMessage: `Role '${name}' was not found.` });
    if (!roles.some((existing) => existing.id === role.id)) roles.push(role);
  }
  return roles;
}

/** The named permissions (slugs or `perm_…` ids) that exist, and the slugs that do not. */
export async function findPermissions(db: Database, workspaceId: string, names: readonly string[]): Promise<{ found: Permission[]; missing: string[] }> {
  const unique = [...new Set(names)];
  const bySlug = new Map((await getPermissionsBySlugs(db, workspaceId, unique)).map((permission) => [permission.slug, permission]));
  const found: Permission[] = [];
  const missing: string[] = [];
  for (const name of unique) {
    const permission = bySlug.get(name) ?? (name.startsWith('perm_') ? await getPermissionById(db, workspaceId, name) : undefined);
    if (permission === undefined) missing.push(name);
    else if (!found.some((existing) => existing.id === permission.id)) found.push(permission);
  }
  return { found, missing };
}

/** The named permissions, creating missing slugs (name = slug). Returns them and the created ones. */
export async function resolveOrCreatePermissions(
  db: Database,
  workspaceId: string,
  names: readonly string[],
  nowMs: number,
): Promise<{ permissions: Permission[]; created: Permission[] }> {
  const { found, missing } = await findPermissions(db, workspaceId, names);
  if (missing.length === 0) return { permissions: found, created: [] };
  const created = await ensurePermissions(db, workspaceId, missing, () => newId('perm'), nowMs);
  return { permissions: [...found, ...created], created: created.filter((permission) => permission.createdAtMs === nowMs) };
}

/** Throws 404 `permission_not_found` naming the first missing slug. */
export function permissionNotFound(slug: string): Fault {
  return Fault.expected('err:unkey:data:permission_not_found', { publicMessage: `Permission '${slug}' was not found.` });
}
