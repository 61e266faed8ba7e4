/**
 * `identities.getIdentity` (spec api.md §3.10): an identity by `id_…` id or externalId, with its
 * rate limits. Requires `identity.*.read_identity`; otherwise the same 404 as a missing identity.
 */
import { listRatelimits } from '../../../../core/db/queries/ratelimits.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { object, string } from '../../schema-builders.ts';
import { loadIdentityOrNotFound } from '../shared/identity-access.ts';
import { identityResponseSchema } from '../shared/schemas.ts';
import { identityView } from '../shared/views.ts';

/** Body of `identities.getIdentity`. */
export interface GetIdentityBody {
  identity: string;
}

/** The `identities.getIdentity` endpoint. */
export const getIdentityEndpoint = defineEndpoint<GetIdentityBody>({
  operationId: 'identities.getIdentity',
  summary: 'Get an identity by id or externalId.',
  request: object({ identity: string({ minLength: 1, maxLength: 255, description: 'The `id_…` id or the externalId.' }) }, ['identity']),
  response: identityResponseSchema,
  errorStatuses: [404],
  async handler({ body, principal, deps }) {
    const identity = await loadIdentityOrNotFound(deps.db, principal, body.identity, 'read_identity');
    return { data: identityView(identity, await listRatelimits(deps.db, { identityId: identity.id })) };
  },
});
