/**
 * `permissions.deleteRole`: deletes a role (by id or name) and its grants. Requires
 * `rbac.*.delete_role` (403). Writes `role.delete`; keys that held it are dropped from every
 * node's verification cache.
 */
import { deleteRole } from '../../../../core/db/queries/roles.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { object, string } from '../../schema-builders.ts';
import { invalidateKeyHashes } from '../shared/invalidate.ts';
import { keyHashesWithRole, loadRole, requireRbac } from '../shared/rbac-access.ts';
import { emptySchema } from '../shared/schemas.ts';

/** Body of `permissions.deleteRole`. */
export interface DeleteRoleBody {
  role: string;
}

/** The `permissions.deleteRole` endpoint. */
export const deleteRoleEndpoint = defineEndpoint<DeleteRoleBody>({
  operationId: 'permissions.deleteRole',
  summary: 'Delete a role and its grants.',
  request: object({ role: string({ minLength: 1, maxLength: 255 }) }, ['role']),
  response: emptySchema,
  errorStatuses: [404],
  async handler({ body, principal, deps, audit }) {
    requireRbac(principal, 'delete_role');
    const role = await loadRole(deps.db, principal.workspaceId, body.role);
    const hashes = await keyHashesWithRole(deps.db, role.id);
    await deps.db.transaction(async (tx) => {
      if (!(await deleteRole(tx, principal.workspaceId, role.id))) throw notFound.role();
      await deps.audit.write(tx, audit, [{ event: 'role.delete', description: `Deleted ${role.id} (${role.name})`, targets: [{ type: 'role', id: role.id, name: role.name }] }]);
    });
    await invalidateKeyHashes(deps, hashes);
    return { data: {} };
  },
});
