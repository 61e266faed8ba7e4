/**
 * `keys.deleteKey` (spec api.md §3.6): soft delete by default (verification then answers
 * NOT_FOUND), `permanent: true` removes the row with its limits, grants and encrypted copy.
 * Requires `delete_key` on the key's API (or the key's URN); otherwise the same 404 as a missing
 * key. Writes `key.delete` and drops the key from every node's verification cache after commit.
 */
import { hardDeleteKey, softDeleteKey } from '../../../../core/db/queries/keys.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { boolean, object } from '../../schema-builders.ts';
import { invalidateKeyHashes } from '../shared/invalidate.ts';
import { loadKeyOrNotFound } from '../shared/key-access.ts';
import { emptySchema, idSchema } from '../shared/schemas.ts';

/** Body of `keys.deleteKey`. */
export interface DeleteKeyBody {
  keyId: string;
  permanent?: boolean;
}

/** The `keys.deleteKey` endpoint. */
export const deleteKeyEndpoint = defineEndpoint<DeleteKeyBody>({
  operationId: 'keys.deleteKey',
  summary: 'Delete a key (soft by default, or permanently).',
  request: object({ keyId: idSchema('The key to delete.'), permanent: boolean('Remove the row for good instead of marking it deleted.') }, ['keyId']),
  response: emptySchema,
  errorStatuses: [404],
  async handler({ body, principal, deps, audit }) {
    const { key } = await loadKeyOrNotFound(deps.db, principal, body.keyId, 'delete_key');
    const permanent = body.permanent === true;
    await deps.db.transaction(async (tx) => {
      const deleted = permanent ? await hardDeleteKey(tx, key.id) : await softDeleteKey(tx, key.id, deps.clock.nowMs());
      if (!deleted) throw notFound.key();
      await deps.audit.write(tx, audit, [{
        event: 'key.delete',
        description: `${permanent ? 'Permanently deleted' : 'Deleted'} ${key.id}`,
        targets: [{ type: 'key', id: key.id }],
        meta: { permanent },
      }]);
    });
    await invalidateKeyHashes(deps, [key.hash]);
    return { data: {} };
  },
});
