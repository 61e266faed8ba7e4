/**
 * `permissions.setRolePermissions`: makes a role's permissions exactly the given slugs (missing
 * ones are created; that needs `rbac.*.create_permission`). Requires
 * `rbac.*.add_permission_to_role` AND `rbac.*.remove_permission_from_role` (403). Returns the
 * role's resulting permissions; keys holding the role are dropped from every node's cache.
 */
import { addRolePermissions, listRolePermissions, removeRolePermissions } from '../../../../core/db/queries/roles.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { array, object } from '../../schema-builders.ts';
import { invalidateKeyHashes } from '../shared/invalidate.ts';
import { keyHashesWithRole, loadRole, requireRbac } from '../shared/rbac-access.ts';
import { findPermissions, resolveOrCreatePermissions } from '../shared/rbac-lookup.ts';
import { idSchema, permissionResponseSchema, permissionSlugSchema } from '../shared/schemas.ts';
import { permissionView } from '../shared/views.ts';

/** Body of `permissions.setRolePermissions`. */
export interface SetRolePermissionsBody {
  roleId: string;
  permissions: string[];
}

/** The `permissions.setRolePermissions` endpoint. */
export const setRolePermissionsEndpoint = defineEndpoint<SetRolePermissionsBody>({
  operationId: 'permissions.setRolePermissions',
  summary: "Replace a role's permissions.",
  request: object({ roleId: idSchema(), permissions: array(permissionSlugSchema, { maxItems: 1000 }) }, ['roleId', 'permissions']),
  response: array(permissionResponseSchema),
  errorStatuses: [404],
  async handler({ body, principal, deps, audit }) {
    requireRbac(principal, 'add_permission_to_role');
    requireRbac(principal, 'remove_permission_from_role');
    const workspaceId = principal.workspaceId;
    const role = await loadRole(deps.db, workspaceId, body.roleId);
    const data = await deps.db.transaction(async (tx) => {
      const nowMs = deps.clock.nowMs();
      if ((await findPermissions(tx, workspaceId, body.permissions)).missing.length > 0) requireRbac(principal, 'create_permission');
      const { permissions } = await resolveOrCreatePermissions(tx, workspaceId, body.permissions, nowMs);
      const wanted = new Set(permissions.map((permission) => permission.id));
      const current = await listRolePermissions(tx, role.id);
      await removeRolePermissions(tx, role.id, current.filter((permission) => !wanted.has(permission.id)).map((permission) => permission.id));
      await addRolePermissions(tx, { workspaceId, roleId: role.id, permissionIds: [...wanted], nowMs });
      await deps.audit.write(tx, audit, [{
        event: 'role.update',
        description: `Set the permissions of ${role.id}: ${permissions.map((permission) => permission.slug).join(', ') || 'none'}`,
        targets: [{ type: 'role', id: role.id, name: role.name }, ...permissions.map((permission) => ({ type: 'permission', id: permission.id, name: permission.slug }))],
      }]);
      return (await listRolePermissions(tx, role.id)).map(permissionView);
    });
    await invalidateKeyHashes(deps, await keyHashesWithRole(deps.db, role.id));
    return { data };
  },
});
