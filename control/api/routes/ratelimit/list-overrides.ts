/**
 * `ratelimit.listOverrides` (spec api.md §3.9): a page of a namespace's overrides ordered by id
 * (default page size 10). Requires `ratelimit.{*,<nsId>}.read_override` (or `list_overrides`),
 * else the namespace's 404; 410 for a deleted namespace.
 */
import { listRatelimitOverrides } from '../../../../core/db/queries/ratelimit-overrides.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { array, object, string } from '../../schema-builders.ts';
import { namespaceForOverrides } from '../shared/ratelimit-namespaces.ts';
import { cursorSchema, listLimitSchema } from '../shared/schemas.ts';
import { ratelimitOverrideSchema } from './get-override.ts';

/** Default page size of listOverrides (api.md §2). */
export const DEFAULT_LIST_OVERRIDES_LIMIT = 10;

/** Body of `ratelimit.listOverrides`. */
export interface ListOverridesBody {
  namespace: string;
  cursor?: string;
  limit?: number;
}

/** The `ratelimit.listOverrides` endpoint. */
export const listOverridesEndpoint = defineEndpoint<ListOverridesBody>({
  operationId: 'ratelimit.listOverrides',
  summary: "List a namespace's overrides, paginated.",
  request: object({ namespace: string({ minLength: 1, maxLength: 512 }), cursor: cursorSchema, limit: listLimitSchema(DEFAULT_LIST_OVERRIDES_LIMIT) }, ['namespace']),
  response: array(ratelimitOverrideSchema),
  paginated: true,
  errorStatuses: [404, 410],
  async handler({ body, principal, deps }) {
    const { namespace } = await namespaceForOverrides(deps, principal, body.namespace, ['read_override', 'list_overrides']);
    const page = await listRatelimitOverrides(deps.db, namespace.id, { cursor: body.cursor, limit: body.limit ?? DEFAULT_LIST_OVERRIDES_LIMIT });
    const data = page.items.map((override) => ({ overrideId: override.id, identifier: override.identifier, limit: override.limit, duration: override.durationMs }));
    return page.nextCursor === undefined ? { data, pagination: { hasMore: false } } : { data, pagination: { hasMore: true, cursor: page.nextCursor } };
  },
});
