/**
 * `permissions.createPermission` (spec api.md §3.10): a permission with a slug unique in the
 * workspace (409 `permission_already_exists`). Requires `rbac.*.create_permission` (403).
 * Writes `permission.create`.
 */
import { getPermissionBySlug, insertPermission } from '../../../../core/db/queries/permissions.ts';
import { Fault } from '../../../../core/fault.ts';
import { newId } from '../../../../core/id.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { object, string } from '../../schema-builders.ts';
import { requireRbac } from '../shared/rbac-access.ts';
import { permissionSlugSchema } from '../shared/schemas.ts';

/** Body of `permissions.createPermission`. */
export interface CreatePermissionBody {
  name: string;
  slug: string;
  description?: string;
}

/** The `permissions.createPermission` endpoint. */
export const createPermissionEndpoint = defineEndpoint<CreatePermissionBody>({
  operationId: 'permissions.createPermission',
  summary: 'Create a permission.',
  request: object({ name: string({ minLength: 1, maxLength: 512 }), slug: permissionSlugSchema, description: string({ maxLength: 512 }) }, ['name', 'slug']),
  response: object({ permissionId: string() }, ['permissionId']),
  errorStatuses: [409],
  async handler({ body, principal, deps, audit }) {
    requireRbac(principal, 'create_permission');
    const workspaceId = principal.workspaceId;
    const permissionId = newId('perm');
    try {
      await deps.db.transaction(async (tx) => {
        await insertPermission(tx, { id: permissionId, workspaceId, name: body.name, slug: body.slug, description: body.description, createdAtMs: deps.clock.nowMs() });
        await deps.audit.write(tx, audit, [{ event: 'permission.create', description: `Created ${permissionId} (${body.slug})`, targets: [{ type: 'permission', id: permissionId, name: body.slug }] }]);
      });
    } catch (err) {
      if (err instanceof Fault && err.code === 'err:keygate:database:conflict' && (await getPermissionBySlug(deps.db, workspaceId, body.slug)) !== undefined) {
        throw Fault.expected('err:unkey:data:permission_already_exists', { publicMessage: `A permission with slug '${body.slug}' already exists.` });
      }
      throw err;
    }
    return { data: { permissionId } };
  },
});
