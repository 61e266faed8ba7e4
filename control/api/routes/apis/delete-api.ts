/**
 * `apis.deleteApi` (spec api.md §3.8): soft-deletes an API and its key space, so none of its
 * keys verify any more. 412 `protected_resource` while delete protection is on. Requires
 * `api.{*,<apiId>}.delete_api` (or the URN `keyspaces/<ks>#delete_api`); otherwise the same 404
 * as a missing API. Writes `api.delete`; the API's keys are dropped from every node's cache.
 */
import { softDeleteApi } from '../../../../core/db/queries/apis.ts';
import { Fault } from '../../../../core/fault.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { object } from '../../schema-builders.ts';
import { invalidateKeyHashes } from '../shared/invalidate.ts';
import { emptySchema, idSchema } from '../shared/schemas.ts';
import { loadApiOrNotFound } from '../shared/api-access.ts';

/** Most cached keys dropped by name after a delete; beyond it, the cache's fresh window converges. */
export const MAX_INVALIDATED_KEYS_PER_API_DELETE = 100_000;

/** Body of `apis.deleteApi`. */
export interface DeleteApiBody {
  apiId: string;
}

/** The `apis.deleteApi` endpoint. */
export const deleteApiEndpoint = defineEndpoint<DeleteApiBody>({
  operationId: 'apis.deleteApi',
  summary: 'Delete an API and with it every key it holds.',
  request: object({ apiId: idSchema() }, ['apiId']),
  response: emptySchema,
  errorStatuses: [404, 412],
  async handler({ body, principal, deps, audit }) {
    const workspaceId = principal.workspaceId;
    const found = await loadApiOrNotFound(deps.db, principal, body.apiId, 'delete_api');
    if (found.api.deleteProtection) {
      throw Fault.expected('err:unkey:application:protected_resource', { publicMessage: 'The API is protected from deletion; turn delete protection off first.' });
    }
    await deps.db.transaction(async (tx) => {
      if (!(await softDeleteApi(tx, workspaceId, found.api.id, deps.clock.nowMs()))) throw notFound.api();
      await deps.audit.write(tx, audit, [{
        event: 'api.delete',
        description: `Deleted ${found.api.id}`,
        targets: [{ type: 'api', id: found.api.id, name: found.api.name }, { type: 'keySpace', id: found.keySpace.id }],
      }]);
    });
    const rows = await deps.db.query<{ hash: string }>('SELECT `hash` FROM `keys` WHERE `key_auth_id` = ? LIMIT ?', [found.keySpace.id, MAX_INVALIDATED_KEYS_PER_API_DELETE]);
    await invalidateKeyHashes(deps, rows.map((row) => String(row.hash)));
    return { data: {} };
  },
});
