/**
 * `identities.createIdentity` (spec api.md §3.10): an identity named by the customer's
 * `externalId` (409 `identity_already_exists` while a live one has it), with meta and shared rate
 * limits. Requires `identity.*.create_identity` (403 otherwise: nothing to hide). Writes
 * `identity.create` in the same transaction.
 */
import { insertIdentity } from '../../../../core/db/queries/identities.ts';
import { insertRatelimits } from '../../../../core/db/queries/ratelimits.ts';
import { Fault } from '../../../../core/fault.ts';
import { newId } from '../../../../core/id.ts';
import { requirePermissions } from '../../authorization.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { object, string } from '../../schema-builders.ts';
import { identityPermission } from '../shared/identity-access.ts';
import { externalIdSchema, metaSchema, ratelimitListSchema } from '../shared/schemas.ts';
import type { RatelimitInput } from '../keys/update-key.ts';

/** Largest serialized `meta`, in bytes (api.md §3.10). */
export const MAX_IDENTITY_META_BYTES = 1_000_000;

/** Body of `identities.createIdentity`. */
export interface CreateIdentityBody {
  externalId: string;
  meta?: Record<string, unknown>;
  ratelimits?: RatelimitInput[];
}

/** The `identities.createIdentity` endpoint. */
export const createIdentityEndpoint = defineEndpoint<CreateIdentityBody>({
  operationId: 'identities.createIdentity',
  summary: 'Create an identity (the owner of keys, with shared rate limits).',
  request: object({ externalId: externalIdSchema, meta: metaSchema, ratelimits: ratelimitListSchema }, ['externalId']),
  response: object({ identityId: string() }, ['identityId']),
  errorStatuses: [409],
  async handler({ body, principal, deps, audit }) {
    const workspaceId = principal.workspaceId;
    requirePermissions(principal, identityPermission(workspaceId, '*', 'create_identity'));
    checkMetaSize(body.meta);
    const identityId = newId('id');
    const nowMs = deps.clock.nowMs();
    try {
      await deps.db.transaction(async (tx) => {
        await insertIdentity(tx, { id: identityId, workspaceId, externalId: body.externalId, meta: body.meta, createdAtMs: nowMs });
        await insertRatelimits(tx, (body.ratelimits ?? []).map((limit) => ({
          id: newId('rl'), workspaceId, identityId, name: limit.name, limit: limit.limit, durationMs: limit.duration, autoApply: limit.autoApply ?? false, createdAtMs: nowMs,
        })));
        await deps.audit.write(tx, audit, [{ event: 'identity.create', description: `Created ${identityId}`, targets: [{ type: 'identity', id: identityId, name: body.externalId }] }]);
      });
    } catch (err) {
      if (err instanceof Fault && err.code === 'err:keygate:database:conflict') {
        // Either the external id is taken or two limits share a name.
        const names = (body.ratelimits ?? []).map((limit) => limit.name);
        if (new Set(names).size !== names.length) throw Fault.expected('err:unkey:application:invalid_input', { publicMessage: 'ratelimits must have unique names.', errors: [] });
        throw Fault.expected('err:unkey:data:identity_already_exists', { publicMessage: `An identity with externalId '${body.externalId}' already exists.` });
      }
      throw err;
    }
    return { data: { identityId } };
  },
});

/** Throws 400 when the serialized meta exceeds {@link MAX_IDENTITY_META_BYTES}. */
export function checkMetaSize(meta: Record<string, unknown> | undefined | null): void {
  if (meta === undefined || meta === null) return;
  if (Buffer.byteLength(JSON.stringify(meta)) > MAX_IDENTITY_META_BYTES) {
    throw Fault.expected('err:unkey:application:invalid_input', { publicMessage: `meta must serialize to at most ${MAX_IDENTITY_META_BYTES} bytes.`, errors: [] });
  }
}
