/**
 * `ratelimit.deleteOverride` (spec api.md §3.9): soft-deletes the override of an exact
 * identifier. Requires `ratelimit.{*,<nsId>}.delete_override`, else the namespace's 404; 404
 * `ratelimit_override_not_found` when there is none; 410 for a deleted namespace. Writes
 * `ratelimit.delete_override`; the namespace is dropped from every node's cache.
 */
import { getRatelimitOverrideByIdentifier, softDeleteRatelimitOverride } from '../../../../core/db/queries/ratelimit-overrides.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { object, string } from '../../schema-builders.ts';
import { invalidateNamespace, namespaceForOverrides } from '../shared/ratelimit-namespaces.ts';
import { emptySchema } from '../shared/schemas.ts';
import type { OverrideAddressBody } from './get-override.ts';

/** The `ratelimit.deleteOverride` endpoint. */
export const deleteOverrideEndpoint = defineEndpoint<OverrideAddressBody>({
  operationId: 'ratelimit.deleteOverride',
  summary: 'Delete the override of an identifier (exact match).',
  request: object({ namespace: string({ minLength: 1, maxLength: 512 }), identifier: string({ minLength: 1, maxLength: 512 }) }, ['namespace', 'identifier']),
  response: emptySchema,
  errorStatuses: [404, 410],
  async handler({ body, principal, deps, audit }) {
    const { namespace } = await namespaceForOverrides(deps, principal, body.namespace, 'delete_override');
    const override = await getRatelimitOverrideByIdentifier(deps.db, namespace.id, body.identifier);
    if (override === undefined) throw notFound.ratelimitOverride();
    await deps.db.transaction(async (tx) => {
      if (!(await softDeleteRatelimitOverride(tx, principal.workspaceId, override.id, deps.clock.nowMs()))) throw notFound.ratelimitOverride();
      await deps.audit.write(tx, audit, [{
        event: 'ratelimit.delete_override',
        description: `Deleted ${override.id} ('${override.identifier}') from ${namespace.id}`,
        targets: [{ type: 'ratelimitOverride', id: override.id, name: override.identifier }, { type: 'ratelimitNamespace', id: namespace.id, name: namespace.name }],
      }]);
    });
    await invalidateNamespace(deps, namespace);
    return { data: {} };
  },
});
