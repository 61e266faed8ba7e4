/** `permissions.getPermission` (spec api.md §3.10): by id or slug. Requires `rbac.*.read_permission` (403). */
import { defineEndpoint } from '../../endpoint.ts';
import { object, string } from '../../schema-builders.ts';
import { loadPermission, requireRbac } from '../shared/rbac-access.ts';
import { permissionResponseSchema } from '../shared/schemas.ts';
import { permissionView } from '../shared/views.ts';

/** Body of `permissions.getPermission`. */
export interface GetPermissionBody {
  permission: string;
}

/** The `permissions.getPermission` endpoint. */
export const getPermissionEndpoint = defineEndpoint<GetPermissionBody>({
  operationId: 'permissions.getPermission',
  summary: 'Get a permission by id or slug.',
  request: object({ permission: string({ minLength: 1, maxLength: 512 }) }, ['permission']),
  response: permissionResponseSchema,
  errorStatuses: [404],
  async handler({ body, principal, deps }) {
    requireRbac(principal, 'read_permission');
    return { data: permissionView(await loadPermission(deps.db, principal.workspaceId, body.permission)) };
  },
});
