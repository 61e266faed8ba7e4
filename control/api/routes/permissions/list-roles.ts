/**
 * `permissions.listRoles`: a page of the workspace's roles (with their permissions) ordered by
 * id, optionally those whose name contains `search`. Requires `rbac.*.read_role` (403).
 */
import type { SqlParam } from '../../../../core/db/database.ts';
import { listRolePermissions, mapRole, ROLE_COLUMNS } from '../../../../core/db/queries/roles.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { array, object, string } from '../../schema-builders.ts';
import { requireRbac } from '../shared/rbac-access.ts';
import { cursorSchema, listLimitSchema, roleResponseSchema } from '../shared/schemas.ts';
import { likeContains } from '../shared/sql-search.ts';
import { roleView, type RoleView } from '../shared/views.ts';

/** Body of `permissions.listRoles`. */
export interface ListRolesBody {
  limit?: number;
  cursor?: string;
  search?: string;
}

/** The `permissions.listRoles` endpoint. */
export const listRolesEndpoint = defineEndpoint<ListRolesBody>({
  operationId: 'permissions.listRoles',
  summary: "List the workspace's roles, paginated.",
  request: object({ limit: listLimitSchema(), cursor: cursorSchema, search: string({ minLength: 1, maxLength: 255 }) }),
  response: array(roleResponseSchema),
  paginated: true,
  async handler({ body, principal, deps }) {
    requireRbac(principal, 'read_role');
    const limit = body.limit ?? 100;
    let sql = `SELECT ${ROLE_COLUMNS.map((column) => `\`${column}\``).join(', ')} FROM \`roles\` WHERE \`workspace_id\` = ? AND \`id\` >= ?`;
    const params: SqlParam[] = [principal.workspaceId, body.cursor ?? ''];
    if (body.search !== undefined) (sql += " AND `name` LIKE ? ESCAPE '!'"), params.push(likeContains(body.search));
    const rows = (await deps.db.query(sql + ' ORDER BY `id` LIMIT ?', [...params, limit + 1])).map((row) => mapRole(row));
    const data: RoleView[] = [];
    for (const role of rows.slice(0, limit)) data.push(roleView(role, await listRolePermissions(deps.db, role.id)));
    return rows.length > limit ? { data, pagination: { hasMore: true, cursor: rows[limit]!.id } } : { data, pagination: { hasMore: false } };
  },
});
