/**
 * `permissions.deletePermission`: deletes a permission (by id or slug) and every grant of it.
 * Requires `rbac.*.delete_permission` (403). Writes `permission.delete`; keys that held it are
 * dropped from every node's verification cache.
 */
import { deletePermission } from '../../../../core/db/queries/permissions.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { object, string } from '../../schema-builders.ts';
import { invalidateKeyHashes } from '../shared/invalidate.ts';
import { keyHashesWithPermission, loadPermission, requireRbac } from '../shared/rbac-access.ts';
import { emptySchema } from '../shared/schemas.ts';

/** Body of `permissions.deletePermission`. */
export interface DeletePermissionBody {
  permission: string;
}

/** The `permissions.deletePermission` endpoint. */
export const deletePermissionEndpoint = defineEndpoint<DeletePermissionBody>({
  operationId: 'permissions.deletePermission',
  summary: 'Delete a permission and its grants.',
  request: object({ permission: string({ minLength: 1, maxLength: 512 }) }, ['permission']),
  response: emptySchema,
  errorStatuses: [404],
  async handler({ body, principal, deps, audit }) {
    requireRbac(principal, 'delete_permission');
    const permission = await loadPermission(deps.db, principal.workspaceId, body.permission);
    const hashes = await keyHashesWithPermission(deps.db, permission.id);
    await deps.db.transaction(async (tx) => {
      if (!(await deletePermission(tx, principal.workspaceId, permission.id))) throw notFound.permission();
      await deps.audit.write(tx, audit, [{ event: 'permission.delete', description: `Deleted ${permission.id} (${permission.slug})`, targets: [{ type: 'permission', id: permission.id, name: permission.slug }] }]);
    });
    await invalidateKeyHashes(deps, hashes);
    return { data: {} };
  },
});
