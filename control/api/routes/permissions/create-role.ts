/**
 * `permissions.createRole` (spec api.md §3.10): a role with a name unique in the workspace (409
 * `role_already_exists`), optionally with permission slugs (missing ones are created; that needs
 * `rbac.*.create_permission` too). Requires `rbac.*.create_role` (403). Writes `role.create` and
 * `authorization.connect_role_and_permission` events.
 */
import { addRolePermissions, getRoleByName, insertRole } from '../../../../core/db/queries/roles.ts';
import { Fault } from '../../../../core/fault.ts';
import { newId } from '../../../../core/id.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { array, object, string } from '../../schema-builders.ts';
import { findPermissions, resolveOrCreatePermissions } from '../shared/rbac-lookup.ts';
import { requireRbac } from '../shared/rbac-access.ts';
import { permissionSlugSchema } from '../shared/schemas.ts';

/** Body of `permissions.createRole`. */
export interface CreateRoleBody {
  name: string;
  description?: string;
  permissions?: string[];
}

/** The `permissions.createRole` endpoint. */
export const createRoleEndpoint = defineEndpoint<CreateRoleBody>({
  operationId: 'permissions.createRole',
  summary: 'Create a role, optionally with permissions.',
  request: object({ name: string({ minLength: 1, maxLength: 128 }), description: string({ maxLength: 512 }), permissions: array(permissionSlugSchema, { maxItems: 1000 }) }, ['name']),
  response: object({ roleId: string() }, ['roleId']),
  errorStatuses: [409],
  async handler({ body, principal, deps, audit }) {
    requireRbac(principal, 'create_role');
    const workspaceId = principal.workspaceId;
    const roleId = newId('role');
    const nowMs = deps.clock.nowMs();
    try {
      await deps.db.transaction(async (tx) => {
        await insertRole(tx, { id: roleId, workspaceId, name: body.name, description: body.description, createdAtMs: nowMs });
        const slugs = body.permissions ?? [];
        if ((await findPermissions(tx, workspaceId, slugs)).missing.length > 0) requireRbac(principal, 'create_permission');
        const { permissions } = await resolveOrCreatePermissions(tx, workspaceId, slugs, nowMs);
        await addRolePermissions(tx, { workspaceId, roleId, permissionIds: permissions.map((permission) => permission.id), nowMs });
        await deps.audit.write(tx, audit, [
          { event: 'role.create', description: `Created ${roleId} (${body.name})`, targets: [{ type: 'role', id: roleId, name: body.name }] },
          ...permissions.map((permission) => ({
            event: 'authorization.connect_role_and_permission',
            description: `Connected ${roleId} and ${permission.id}`,
            targets: [{ type: 'role', id: roleId, name: body.name }, { type: 'permission', id: permission.id, name: permission.slug }],
          })),
        ]);
      });
    } catch (err) {
      if (err instanceof Fault && err.code === 'err:keygate:database:conflict' && (await getRoleByName(deps.db, workspaceId, body.name)) !== undefined) {
        throw Fault.expected('err:unkey:data:role_already_exists', { publicMessage: `A role named '${body.name}' already exists.` });
      }
      throw err;
    }
    return { data: { roleId } };
  },
});
