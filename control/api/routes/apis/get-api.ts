/**
 * `apis.getApi` (spec api.md §3.8): `{id, name}` of an API of the caller's workspace. Requires
 * `api.<id>.read_api` or `api.*.read_api` (or the URN `keyspaces/<ks>#read_api`); without it the
 * answer is the same 404 as for a missing API (existence masking).
 */
import { getApi } from '../../../../core/db/queries/apis.ts';
import { requirePermissionsOrNotFound } from '../../authorization.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { object, string } from '../../schema-builders.ts';
import { apiPermission } from '../shared/api-access.ts';

/** Body of `apis.getApi`. */
export interface GetApiBody {
  apiId: string;
}

/** The `apis.getApi` endpoint. */
export const getApiEndpoint = defineEndpoint<GetApiBody>({
  operationId: 'apis.getApi',
  summary: 'Get an API by id.',
  request: object({ apiId: string({ minLength: 3, maxLength: 255, pattern: '^[a-zA-Z0-9_]+$' }) }, ['apiId']),
  response: object({ id: string(), name: string() }, ['id', 'name']),
  errorStatuses: [404],
  async handler({ body, principal, deps }) {
    const api = await getApi(deps.db, principal.workspaceId, body.apiId);
    if (api === undefined) throw notFound.api();
    requirePermissionsOrNotFound(principal, apiPermission(principal.workspaceId, api.id, api.keySpaceId, 'read_api'), notFound.api);
    return { data: { id: api.id, name: api.name } };
  },
});
