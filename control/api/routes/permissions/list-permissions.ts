/**
 * `permissions.listPermissions`: a page of the workspace's permissions ordered by id (`cursor` =
 * id of the first item), optionally those whose slug or name contains `search`.
 * Requires `rbac.*.read_permission` (403).
 */
import type { SqlParam } from '../../../../core/db/database.ts';
import { mapPermission, PERMISSION_COLUMNS } from '../../../../core/db/queries/permissions.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { array, object, string } from '../../schema-builders.ts';
import { requireRbac } from '../shared/rbac-access.ts';
import { cursorSchema, listLimitSchema, permissionResponseSchema } from '../shared/schemas.ts';
import { permissionView } from '../shared/views.ts';
import { likeContains } from '../shared/sql-search.ts';

/** Body of `permissions.listPermissions`. */
export interface ListPermissionsBody {
  cursor?: string;
  limit?: number;
  search?: string;
}

/** The `permissions.listPermissions` endpoint. */
export const listPermissionsEndpoint = defineEndpoint<ListPermissionsBody>({
  operationId: 'permissions.listPermissions',
  summary: "List the workspace's permissions, paginated.",
  request: object({ cursor: cursorSchema, limit: listLimitSchema(), search: string({ minLength: 1, maxLength: 255 }) }),
  response: array(permissionResponseSchema),
  paginated: true,
  async handler({ body, principal, deps }) {
    requireRbac(principal, 'read_permission');
    const limit = body.limit ?? 100;
    let sql = `SELECT ${PERMISSION_COLUMNS.map((column) => `\`${column}\``).join(', ')} FROM \`permissions\` WHERE \`workspace_id\` = ? AND \`id\` >= ?`;
    const params: SqlParam[] = [principal.workspaceId, body.cursor ?? ''];
    if (body.search !== undefined) (sql += " AND (`slug` LIKE ? ESCAPE '!' OR `name` LIKE ? ESCAPE '!')"), params.push(likeContains(body.search), likeContains(body.search));
    const rows = (await deps.db.query(sql + ' ORDER BY `id` LIMIT ?', [...params, limit + 1])).map((row) => mapPermission(row));
    const data = rows.slice(0, limit).map(permissionView);
    return rows.length > limit ? { data, pagination: { hasMore: true, cursor: rows[limit]!.id } } : { data, pagination: { hasMore: false } };
  },
});
