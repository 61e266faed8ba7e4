/**
 * `ratelimit.setOverride` (spec api.md §3.9): upserts the override of `(namespace, identifier)`
 * (an existing one keeps its id); `identifier` may be a wildcard pattern (`premium_*`). The
 * namespace must exist (404; never auto-created), 410 when deleted. Requires
 * `ratelimit.{*,<nsId>}.set_override`, else the same 404 as a missing namespace. Writes
 * `ratelimit.set_override`; the namespace is dropped from every node's cache.
 */
import { upsertRatelimitOverride } from '../../../../core/db/queries/ratelimit-overrides.ts';
import { newId } from '../../../../core/id.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { integer, object, string } from '../../schema-builders.ts';
import { invalidateNamespace, namespaceForOverrides } from '../shared/ratelimit-namespaces.ts';

/** Body of `ratelimit.setOverride`. */
export interface SetOverrideBody {
  namespace: string;
  identifier: string;
  limit: number;
  duration: number;
}

/** The `ratelimit.setOverride` endpoint. */
export const setOverrideEndpoint = defineEndpoint<SetOverrideBody>({
  operationId: 'ratelimit.setOverride',
  summary: 'Create or replace the override of an identifier (or wildcard pattern) in a namespace.',
  request: object(
    {
      namespace: string({ minLength: 1, maxLength: 512 }),
      identifier: string({ minLength: 1, maxLength: 512 }),
      limit: integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
      duration: integer({ minimum: 1000, maximum: 2_592_000_000 }),
    },
    ['namespace', 'identifier', 'limit', 'duration'],
  ),
  response: object({ overrideId: string() }, ['overrideId']),
  errorStatuses: [404, 410],
  async handler({ body, principal, deps, audit }) {
    const { namespace } = await namespaceForOverrides(deps, principal, body.namespace, 'set_override');
    const overrideId = await deps.db.transaction(async (tx) => {
      const id = await upsertRatelimitOverride(tx, {
        id: newId('rlor'), workspaceId: principal.workspaceId, namespaceId: namespace.id, identifier: body.identifier,
        limit: body.limit, durationMs: body.duration, nowMs: deps.clock.nowMs(),
      });
      await deps.audit.write(tx, audit, [{
        event: 'ratelimit.set_override',
        description: `Set ${id} on ${namespace.id} for '${body.identifier}': ${body.limit} per ${body.duration} ms`,
        targets: [{ type: 'ratelimitOverride', id, name: body.identifier }, { type: 'ratelimitNamespace', id: namespace.id, name: namespace.name }],
      }]);
      return id;
    });
    await invalidateNamespace(deps, namespace);
    return { data: { overrideId } };
  },
});
