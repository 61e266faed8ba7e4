/**
 * `identities.deleteIdentity` (spec api.md §1): soft-deletes an identity; its externalId becomes
 * free again, and its keys verify without it (no identity, no shared limits). Requires
 * `identity.*.delete_identity`; otherwise the same 404 as a missing identity. Writes
 * `identity.delete`; the identity's keys are dropped from every node's verification cache.
 */
import { softDeleteIdentity } from '../../../../core/db/queries/identities.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { object, string } from '../../schema-builders.ts';
import { loadIdentityOrNotFound } from '../shared/identity-access.ts';
import { invalidateKeyHashes, keyHashesOfIdentity } from '../shared/invalidate.ts';
import { emptySchema } from '../shared/schemas.ts';

/** Body of `identities.deleteIdentity`. */
export interface DeleteIdentityBody {
  identity: string;
}

/** The `identities.deleteIdentity` endpoint. */
export const deleteIdentityEndpoint = defineEndpoint<DeleteIdentityBody>({
  operationId: 'identities.deleteIdentity',
  summary: 'Delete an identity.',
  request: object({ identity: string({ minLength: 1, maxLength: 255 }) }, ['identity']),
  response: emptySchema,
  errorStatuses: [404],
  async handler({ body, principal, deps, audit }) {
    const identity = await loadIdentityOrNotFound(deps.db, principal, body.identity, 'delete_identity');
    await deps.db.transaction(async (tx) => {
      if (!(await softDeleteIdentity(tx, principal.workspaceId, identity.id, deps.clock.nowMs()))) throw notFound.identity();
      await deps.audit.write(tx, audit, [{ event: 'identity.delete', description: `Deleted ${identity.id}`, targets: [{ type: 'identity', id: identity.id, name: identity.externalId }] }]);
    });
    await invalidateKeyHashes(deps, await keyHashesOfIdentity(deps, identity.id));
    return { data: {} };
  },
});
