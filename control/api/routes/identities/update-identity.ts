/**
 * `identities.updateIdentity` (spec api.md §1, §3.10): replaces `meta` (when given; null clears
 * it) and/or the rate limits (full replacement by name; names kept keep their `rl_` id).
 * Requires `identity.*.update_identity`; otherwise the same 404 as a missing identity. Writes
 * `identity.update`; the keys of the identity are dropped from every node's verification cache,
 * since their cached entries embed the identity and its limits.
 */
import { getIdentityById, updateIdentity } from '../../../../core/db/queries/identities.ts';
import { listRatelimits, replaceRatelimits } from '../../../../core/db/queries/ratelimits.ts';
import { newId } from '../../../../core/id.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { nullable, object, string } from '../../schema-builders.ts';
import { loadIdentityOrNotFound } from '../shared/identity-access.ts';
import { invalidateKeyHashes, keyHashesOfIdentity } from '../shared/invalidate.ts';
import { identityResponseSchema, metaSchema, ratelimitListSchema } from '../shared/schemas.ts';
import { identityView } from '../shared/views.ts';
import type { RatelimitInput } from '../keys/update-key.ts';
import { checkMetaSize } from './create-identity.ts';

/** Body of `identities.updateIdentity`. */
export interface UpdateIdentityBody {
  identity: string;
  meta?: Record<string, unknown> | null;
  ratelimits?: RatelimitInput[];
}

/** The `identities.updateIdentity` endpoint. */
export const updateIdentityEndpoint = defineEndpoint<UpdateIdentityBody>({
  operationId: 'identities.updateIdentity',
  summary: "Replace an identity's meta and/or rate limits.",
  request: object({ identity: string({ minLength: 1, maxLength: 255 }), meta: nullable(metaSchema), ratelimits: ratelimitListSchema }, ['identity']),
  response: identityResponseSchema,
  errorStatuses: [404],
  async handler({ body, principal, deps, audit }) {
    const workspaceId = principal.workspaceId;
    const identity = await loadIdentityOrNotFound(deps.db, principal, body.identity, 'update_identity');
    checkMetaSize(body.meta);
    const nowMs = deps.clock.nowMs();
    const result = await deps.db.transaction(async (tx) => {
      if (!(await updateIdentity(tx, workspaceId, identity.id, body.meta === undefined ? {} : { meta: body.meta }, nowMs))) throw notFound.identity();
      if (body.ratelimits !== undefined) {
        await replaceRatelimits(tx, workspaceId, { identityId: identity.id }, body.ratelimits.map((limit) => ({
          id: newId('rl'), name: limit.name, limit: limit.limit, durationMs: limit.duration, autoApply: limit.autoApply ?? false,
        })), nowMs);
      }
      await deps.audit.write(tx, audit, [{ event: 'identity.update', description: `Updated ${identity.id}`, targets: [{ type: 'identity', id: identity.id, name: identity.externalId }] }]);
      const updated = await getIdentityById(tx, workspaceId, identity.id);
      if (updated === undefined) throw notFound.identity();
      return identityView(updated, await listRatelimits(tx, { identityId: identity.id }));
    });
    await invalidateKeyHashes(deps, await keyHashesOfIdentity(deps, identity.id));
    return { data: result };
  },
});
