/** `permissions.getRole` (spec api.md §3.10): by id or name, with its permissions. Requires `rbac.*.read_role` (403). */
import { listRolePermissions } from '../../../../core/db/queries/roles.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { object, string } from '../../schema-builders.ts';
import { loadRole, requireRbac } from '../shared/rbac-access.ts';
import { roleResponseSchema } from '../shared/schemas.ts';
import { roleView } from '../shared/views.ts';

/** Body of `permissions.getRole`. */
export interface GetRoleBody {
  role: string;
}

/** The `permissions.getRole` endpoint. */
export const getRoleEndpoint = defineEndpoint<GetRoleBody>({
  operationId: 'permissions.getRole',
  summary: 'Get a role by id or name.',
  request: object({ role: string({ minLength: 1, maxLength: 255 }) }, ['role']),
  response: roleResponseSchema,
  errorStatuses: [404],
  async handler({ body, principal, deps }) {
    requireRbac(principal, 'read_role');
    const role = await loadRole(deps.db, principal.workspaceId, body.role);
    return { data: roleView(role, await listRolePermissions(deps.db, role.id)) };
  },
});
