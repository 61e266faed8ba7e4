/**
 * The six grant operations on a key (spec api.md §3.7): add / remove / set its direct
 * permissions or its roles. One implementation, declared as six endpoints by the route files.
 *
 * Authorization (§5.3): the key's URN `update_key`, OR `api.{*,<apiId>}.update_key` AND
 * `rbac.*.add_<x>_to_key` (add), `rbac.*.remove_<x>_from_key` (remove), both (set). A caller
 * without `update_key` on the key gets the same 404 as for a missing key; one that may update it
 * but lacks the rbac permission gets 403 naming it. Adding a permission slug that does not exist
 * creates it only with `rbac.*.create_permission` (else 403); unknown roles are 404.
 */
import type { Permission } from '../../../../core/db/queries/permissions.ts';
import { addKeyPermissions, listKeyPermissions, removeKeyPermissions, setKeyPermissions } from '../../../../core/db/queries/permissions.ts';
import { addKeyRoles, listKeyRoles, listRolePermissions, removeKeyRoles, setKeyRoles, type Role } from '../../../../core/db/queries/roles.ts';
import { allOf, anyOf, perm, type PermissionQuery } from '../../../../core/rbac/permission-query.ts';
import { legacyTuple, resourceUrn } from '../../../../core/rbac/required-permissions.ts';
import { requirePermissions } from '../../authorization.ts';
import { defineEndpoint, type Endpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { array, object } from '../../schema-builders.ts';
import { invalidateKeyHashes } from './invalidate.ts';
import { findKeyWithApi, keyPermission } from './key-access.ts';
import { findPermissions, permissionNotFound, resolveOrCreatePermissions, resolveRoles } from './rbac-lookup.ts';
import { idSchema, permissionResponseSchema, permissionSlugSchema, roleNameSchema, roleResponseSchema } from './schemas.ts';
import { permissionView, roleView, type PermissionView, type RoleView } from './views.ts';

/** What is granted. */
export type GrantKind = 'permissions' | 'roles';
/** How the key's grants change. */
export type GrantOperation = 'add' | 'remove' | 'set';

/** Body of the permission operations. */
export interface KeyPermissionsBody {
  keyId: string;
  permissions: string[];
}

/** Body of the role operations. */
export interface KeyRolesBody {
  keyId: string;
  roles: string[];
}

const VERBS: Record<GrantOperation, string> = { add: 'Add', remove: 'Remove', set: 'Set' };

/** Declares the endpoint `keys.<operation><Kind>`. Called once per route file at module load. */
export function keyGrantEndpoint(kind: 'permissions', operation: GrantOperation): Endpoint<KeyPermissionsBody>;
export function keyGrantEndpoint(kind: 'roles', operation: GrantOperation): Endpoint<KeyRolesBody>;
export function keyGrantEndpoint(kind: GrantKind, operation: GrantOperation): Endpoint<KeyPermissionsBody> | Endpoint<KeyRolesBody> {
  const title = kind === 'permissions' ? 'Permissions' : 'Roles';
  const items = kind === 'permissions' ? permissionSlugSchema : roleNameSchema;
  return defineEndpoint<KeyPermissionsBody & KeyRolesBody>({
    operationId: `keys.${operation}${title}`,
    summary: `${VERBS[operation]} the ${kind} granted directly to a key; returns the key's resulting ${kind}.`,
    request: object({ keyId: idSchema(), [kind]: array(items, { minItems: operation === 'set' ? 0 : 1, maxItems: 1000 }) }, ['keyId', kind]),
    response: array(kind === 'permissions' ? permissionResponseSchema : roleResponseSchema),
    errorStatuses: [404],
    async handler({ body, principal, deps, audit }) {
      const found = await findKeyWithApi(deps.db, principal.workspaceId, body.keyId);
      if (found === undefined || !principal.permissions.satisfies(keyPermission(principal, found, 'update_key'))) throw notFound.key();
      requirePermissions(principal, grantRequirement(principal.workspaceId, found.apiId, found.key.keySpaceId, found.key.id, kind, operation));
      const names = kind === 'permissions' ? body.permissions : body.roles;
      const workspaceId = principal.workspaceId;
      const keyId = found.key.id;
      const data = await deps.db.transaction(async (tx) => {
        const nowMs = deps.clock.nowMs();
        let targetIds: string[];
        let targets: Array<{ type: string; id: string; name: string }>;
        if (kind === 'permissions') {
          const resolved = operation === 'remove' ? await existingPermissions(tx, workspaceId, names) : await resolvePermissionsFor(tx, workspaceId, names, nowMs, principal);
          targetIds = resolved.permissions.map((permission) => permission.id);
          targets = resolved.permissions.map((permission) => ({ type: 'permission', id: permission.id, name: permission.slug }));
          if (operation === 'add') await addKeyPermissions(tx, { workspaceId, keyId, permissionIds: targetIds, nowMs });
          else if (operation === 'remove') await removeKeyPermissions(tx, keyId, targetIds);
          else await setKeyPermissions(tx, { workspaceId, keyId, permissionIds: targetIds, nowMs });
        } else {
          const roles = await resolveRoles(tx, workspaceId, names);
          targetIds = roles.map((role) => role.id);
          targets = roles.map((role) => ({ type: 'role', id: role.id, name: role.name }));
          if (operation === 'add') await addKeyRoles(tx, { workspaceId, keyId, roleIds: targetIds, nowMs });
          else if (operation === 'remove') await removeKeyRoles(tx, keyId, targetIds);
          else await setKeyRoles(tx, { workspaceId, keyId, roleIds: targetIds, nowMs });
        }
        const singular = kind === 'permissions' ? 'permission' : 'role';
        const event = operation === 'remove' ? `authorization.disconnect_${singular}_and_key` : `authorization.connect_${singular}_and_key`;
        await deps.audit.write(tx, audit, targets.map((target) => ({
          event,
          description: `${operation === 'remove' ? 'Disconnected' : 'Connected'} ${target.id} ${operation === 'remove' ? 'from' : 'and'} ${keyId}`,
          targets: [target, { type: 'key', id: keyId }],
        })));
        return kind === 'permissions' ? (await listKeyPermissions(tx, keyId)).map(permissionView) : await rolesWithPermissions(tx, await listKeyRoles(tx, keyId));
      });
      await invalidateKeyHashes(deps, [found.key.hash]);
      return { data };
    },
  }) as Endpoint<KeyPermissionsBody> | Endpoint<KeyRolesBody>;
}

function grantRequirement(workspaceId: string, apiId: string, keySpaceId: string, keyId: string, kind: GrantKind, operation: GrantOperation): PermissionQuery {
  const singular = kind === 'permissions' ? 'permission' : 'role';
  const add = perm(`rbac.*.add_${singular}_to_key`);
  const remove = perm(`rbac.*.remove_${singular}_from_key`);
  const rbac = operation === 'add' ? add : operation === 'remove' ? remove : allOf(add, remove);
  return anyOf(resourceUrn(workspaceId, `keyspaces/${keySpaceId}/keys/${keyId}`, 'update_key'), allOf(legacyTuple('api', apiId, 'update_key'), rbac));
}

async function resolvePermissionsFor(
  tx: Parameters<typeof findPermissions>[0],
  workspaceId: string,
  names: readonly string[],
  nowMs: number,
  principal: Parameters<typeof requirePermissions>[0],
): Promise<{ permissions: Permission[] }> {
  const { missing } = await findPermissions(tx, workspaceId, names);
  // Creating permissions is its own right: checked only when something would be created.
  if (missing.length > 0) requirePermissions(principal, anyOf(perm('rbac.*.create_permission'), resourceUrn(workspaceId, 'rbac/permissions/*', 'create_permission')));
  return resolveOrCreatePermissions(tx, workspaceId, names, nowMs);
}

async function existingPermissions(tx: Parameters<typeof findPermissions>[0], workspaceId: string, names: readonly string[]): Promise<{ permissions: Permission[] }> {
  const { found, missing } = await findPermissions(tx, workspaceId, names);
  if (missing.length > 0) throw permissionNotFound(missing[0]!);
  return { permissions: found };
}

async function rolesWithPermissions(tx: Parameters<typeof listRolePermissions>[0], roles: readonly Role[]): Promise<RoleView[]> {
  const views: RoleView[] = [];
  for (const role of roles) views.push(roleView(role, await listRolePermissions(tx, role.id)));
  return views;
}

/** Re-exported for route tests that compare shapes. */
export type { PermissionView };
