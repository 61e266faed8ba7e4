/**
 * `apis.createApi` (spec api.md §3.8): creates an API and its key space in one transaction,
 * with the audit event `api.create`. Requires `api.*.create_api` (or the URN
 * `keyspaces/*#create_keyspace`); a missing permission is a plain 403 (nothing to hide).
 */
import { insertApi } from '../../../../core/db/queries/apis.ts';
import { insertKeySpace } from '../../../../core/db/queries/key-spaces.ts';
import { newId } from '../../../../core/id.ts';
import { anyOf } from '../../../../core/rbac/permission-query.ts';
import { legacyTuple, resourceUrn } from '../../../../core/rbac/required-permissions.ts';
import { requirePermissions } from '../../authorization.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { object, string } from '../../schema-builders.ts';

/** Body of `apis.createApi`. */
export interface CreateApiBody {
  name: string;
}

/** The `apis.createApi` endpoint. */
export const createApiEndpoint = defineEndpoint<CreateApiBody>({
  operationId: 'apis.createApi',
  summary: 'Create an API (a namespace for keys).',
  request: object({ name: string({ minLength: 3, maxLength: 255, description: 'A name for humans, e.g. "payments-production".' }) }, ['name']),
  response: object({ apiId: string({ description: 'The new API id (`api_…`).' }) }, ['apiId']),
  async handler({ body, principal, deps, audit }) {
    requirePermissions(principal, anyOf(legacyTuple('api', '*', 'create_api'), resourceUrn(principal.workspaceId, 'keyspaces/*', 'create_keyspace')));
    const apiId = newId('api');
    const keySpaceId = newId('ks');
    const nowMs = deps.clock.nowMs();
    await deps.db.transaction(async (tx) => {
      await insertKeySpace(tx, { id: keySpaceId, workspaceId: principal.workspaceId, createdAtMs: nowMs });
      await insertApi(tx, { id: apiId, workspaceId: principal.workspaceId, name: body.name, keySpaceId, createdAtMs: nowMs });
      await deps.audit.write(tx, audit, [{
        event: 'api.create',
        description: `Created ${apiId}`,
        targets: [{ type: 'api', id: apiId, name: body.name }, { type: 'keySpace', id: keySpaceId }],
      }]);
    });
    return { data: { apiId } };
  },
});
