/**
 * `identities.listIdentities` (spec api.md §1): a page of the workspace's live identities ordered
 * by id (`cursor` = id of the first item, inclusive), optionally only those whose externalId
 * contains `search`. Requires `identity.*.read_identity` (403: a list reveals no single resource).
 */
import type { SqlParam } from '../../../../core/db/database.ts';
import { IDENTITY_COLUMNS, mapIdentity } from '../../../../core/db/queries/identities.ts';
import { listRatelimits } from '../../../../core/db/queries/ratelimits.ts';
import { requirePermissions } from '../../authorization.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { array, object, string } from '../../schema-builders.ts';
import { identityPermission } from '../shared/identity-access.ts';
import { cursorSchema, identityResponseSchema, listLimitSchema } from '../shared/schemas.ts';
import { identityView, type IdentityView } from '../shared/views.ts';

/** Body of `identities.listIdentities`. */
export interface ListIdentitiesBody {
  limit?: number;
  cursor?: string;
  search?: string;
}

/** The `identities.listIdentities` endpoint. */
export const listIdentitiesEndpoint = defineEndpoint<ListIdentitiesBody>({
  operationId: 'identities.listIdentities',
  summary: "List the workspace's identities, paginated.",
  request: object({ limit: listLimitSchema(), cursor: cursorSchema, search: string({ minLength: 1, maxLength: 255 }) }),
  response: array(identityResponseSchema),
  paginated: true,
  async handler({ body, principal, deps }) {
    const workspaceId = principal.workspaceId;
    requirePermissions(principal, identityPermission(workspaceId, '*', 'read_identity'));
    const limit = body.limit ?? 100;
    let sql = `SELECT ${IDENTITY_COLUMNS.map((column) => `\`${column}\``).join(', ')} FROM \`identities\` WHERE \`workspace_id\` = ? AND \`deleted_at_m\` IS NULL AND \`id\` >= ?`;
    const params: SqlParam[] = [workspaceId, body.cursor ?? ''];
    if (body.search !== undefined) {
      // LIKE metacharacters in the search text are literal.
      sql += " AND `external_id` LIKE ? ESCAPE '!'";
      params.push('%' + body.search.replace(/[!%_]/g, (character) => '!' + character) + '%');
    }
    const rows = (await deps.db.query(sql + ' ORDER BY `id` LIMIT ?', [...params, limit + 1])).map((row) => mapIdentity(row));
    const items = rows.slice(0, limit);
    const data: IdentityView[] = [];
    for (const identity of items) data.push(identityView(identity, await listRatelimits(deps.db, { identityId: identity.id })));
    return rows.length > limit ? { data, pagination: { hasMore: true, cursor: rows[limit]!.id } } : { data, pagination: { hasMore: false } };
  },
});
