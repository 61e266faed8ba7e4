/**
 * `keys.updateKey` (spec api.md §3.4): a partial update with three states per field:
 * omitted = unchanged, a value = replace, `null` = clear (only the nullable fields: name,
 * externalId, meta, expires, credits, credits.remaining, credits.refill). Arrays replace fully:
 * `ratelimits` by name (names already present keep their `rl_` id), `roles` (must exist, else
 * 404 `role_not_found`) and `permissions` (missing slugs are created, as in createKey).
 *
 * Requires `update_key` on the key's API (else the same 404 as a missing key). One transaction
 * with the audit event `key.update`; after commit the key is dropped from every node's cache and,
 * when credits changed, its credits counter is reset (before and after the write).
 */
import { ensureIdentity } from '../../../../core/db/queries/identities.ts';
import { updateKey, type KeyPatch } from '../../../../core/db/queries/keys.ts';
import { setKeyPermissions } from '../../../../core/db/queries/permissions.ts';
import { replaceRatelimits } from '../../../../core/db/queries/ratelimits.ts';
import { setKeyRoles } from '../../../../core/db/queries/roles.ts';
import { Fault } from '../../../../core/fault.ts';
import { newId } from '../../../../core/id.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { array, boolean, integer, nullable, object, string } from '../../schema-builders.ts';
import { invalidateKeyHashes } from '../shared/invalidate.ts';
import { loadKeyOrNotFound } from '../shared/key-access.ts';
import { resolveOrCreatePermissions, resolveRoles } from '../shared/rbac-lookup.ts';
import {
  emptySchema, externalIdSchema, idSchema, MAX_CREDITS, MAX_EXPIRES_MS, metaSchema, permissionSlugSchema, ratelimitListSchema,
  refillSchema, roleNameSchema,
} from '../shared/schemas.ts';

/** A rate limit as requests carry it. */
export interface RatelimitInput {
  name: string;
  limit: number;
  duration: number;
  autoApply?: boolean;
}

/** A refill schedule as requests carry it. */
export interface RefillInput {
  interval: 'daily' | 'monthly';
  amount: number;
  refillDay?: number;
}

/** Body of `keys.updateKey`. */
export interface UpdateKeyBody {
  keyId: string;
  name?: string | null;
  externalId?: string | null;
  meta?: Record<string, unknown> | null;
  expires?: number | null;
  credits?: { remaining?: number | null; refill?: RefillInput | null } | null;
  ratelimits?: RatelimitInput[];
  enabled?: boolean;
  roles?: string[];
  permissions?: string[];
}

/** The `keys.updateKey` endpoint. */
export const updateKeyEndpoint = defineEndpoint<UpdateKeyBody>({
  operationId: 'keys.updateKey',
  summary: 'Update a key: omitted fields stay, values replace, null clears.',
  request: object(
    {
      keyId: idSchema(),
      name: nullable(string({ minLength: 1, maxLength: 255 })),
      externalId: nullable(externalIdSchema),
      meta: nullable(metaSchema),
      expires: nullable(integer({ minimum: 0, maximum: MAX_EXPIRES_MS })),
      credits: nullable(object({ remaining: nullable(integer({ minimum: 0, maximum: MAX_CREDITS })), refill: nullable(refillSchema) })),
      ratelimits: ratelimitListSchema,
      enabled: boolean(),
      roles: array(roleNameSchema, { maxItems: 100 }),
      permissions: array(permissionSlugSchema, { maxItems: 1000 }),
    },
    ['keyId'],
  ),
  response: emptySchema,
  errorStatuses: [404],
  async handler({ body, principal, deps, audit }) {
    const { key } = await loadKeyOrNotFound(deps.db, principal, body.keyId, 'update_key');
    const workspaceId = principal.workspaceId;
    const nowMs = deps.clock.nowMs();
    const patch: KeyPatch = {};
    if (body.name !== undefined) patch.name = body.name;
    if (body.meta !== undefined) patch.meta = body.meta;
    if (body.expires !== undefined) patch.expiresAtMs = body.expires;
    if (body.enabled !== undefined) patch.enabled = body.enabled;
    const creditsChanged = body.credits !== undefined;
    if (body.credits !== undefined) applyCredits(patch, body.credits, key.remainingRequests);

    if (creditsChanged) await deps.usageLimiter.reset(key.id);
    await deps.db.transaction(async (tx) => {
      if (body.externalId !== undefined) {
        patch.identityId = body.externalId === null
          ? null
          : (await ensureIdentity(tx, { id: newId('id'), workspaceId, externalId: body.externalId, createdAtMs: nowMs })).identity.id;
      }
      if (!(await updateKey(tx, key.id, patch, nowMs))) throw notFound.key();
      if (body.ratelimits !== undefined) {
        await replaceRatelimits(tx, workspaceId, { keyId: key.id }, body.ratelimits.map((limit) => ({
          id: newId('rl'), name: limit.name, limit: limit.limit, durationMs: limit.duration, autoApply: limit.autoApply ?? false,
        })), nowMs);
      }
      if (body.roles !== undefined) {
        const roles = await resolveRoles(tx, workspaceId, body.roles);
        await setKeyRoles(tx, { workspaceId, keyId: key.id, roleIds: roles.map((role) => role.id), nowMs });
      }
      if (body.permissions !== undefined) {
        const { permissions } = await resolveOrCreatePermissions(tx, workspaceId, body.permissions, nowMs);
        await setKeyPermissions(tx, { workspaceId, keyId: key.id, permissionIds: permissions.map((permission) => permission.id), nowMs });
      }
      const changedFields = Object.keys(body).filter((field) => field !== 'keyId');
      await deps.audit.write(tx, audit, [{
        event: 'key.update',
        description: `Updated ${key.id}: ${changedFields.join(', ') || 'nothing'}`,
        targets: [{ type: 'key', id: key.id }],
        meta: { fields: changedFields },
      }]);
    });
    if (creditsChanged) await deps.usageLimiter.reset(key.id);
    await invalidateKeyHashes(deps, [key.hash]);
    return { data: {} };
  },
});

/**
 * Maps the credits field onto the patch: null = unlimited without refill; `remaining` null =
 * unlimited (the refill goes too); a refill needs finite credits and, when monthly, a day.
 */
function applyCredits(patch: KeyPatch, credits: NonNullable<UpdateKeyBody['credits']> | null, currentRemaining: number | undefined): void {
  if (credits === null || credits.remaining === null) {
    if (credits !== null && credits.refill !== undefined && credits.refill !== null) {
      throw invalid('credits.refill needs finite credits: credits.remaining must not be null.');
    }
    patch.remainingRequests = null;
    patch.refillAmount = null;
    patch.refillDay = null;
    return;
  }
  if (credits.remaining !== undefined) patch.remainingRequests = credits.remaining;
  if (credits.refill === null) {
    patch.refillAmount = null;
    patch.refillDay = null;
  } else if (credits.refill !== undefined) {
    const finite = credits.remaining !== undefined || currentRemaining !== undefined;
    if (!finite) throw invalid('credits.refill needs finite credits: set credits.remaining as well.');
    patch.refillAmount = credits.refill.amount;
    patch.refillDay = refillDayOf(credits.refill);
  }
}

/** The stored refill day: NULL for daily; the day (required) for monthly. */
export function refillDayOf(refill: RefillInput): number | null {
  // A daily refill has no day; a stray refillDay is ignored rather than rejected.
  if (refill.interval === 'daily') return null;
  if (refill.refillDay === undefined) throw invalid('credits.refill.refillDay is required for a monthly refill.');
  return refill.refillDay;
}

function invalid(message: string): Fault {
  return Fault.expected('err:unkey:application:invalid_input', { publicMessage: message, errors: [] });
}
