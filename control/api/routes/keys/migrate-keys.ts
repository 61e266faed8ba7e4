/**
 * `keys.migrateKeys` (spec api.md §1, §6): imports keys hashed by another system into an API.
 * Each key is stored under its foreign hash with `pending_migration_id` set; on its first
 * verification with the `migrationId`, the verifier finds it by the foreign hash and re-stores
 * it under keygate's own hash (core/verification). The migration (its algorithm) must exist in
 * the caller's workspace (404 `migration_not_found`). Both supported algorithms store a hex
 * SHA-256, so anything else is rejected per key (listed in `failed`), as are hashes already taken.
 *
 * Requires `create_key` on the API; otherwise the same 404 as a missing API. Identities are
 * upserted from `externalId`, missing permission slugs created, unknown roles 404.
 */
import { ensureIdentity } from '../../../../core/db/queries/identities.ts';
import { getKeyMigration } from '../../../../core/db/queries/key-migrations.ts';
import { getKeyByHash, insertKey } from '../../../../core/db/queries/keys.ts';
import { addKeyPermissions } from '../../../../core/db/queries/permissions.ts';
import { insertRatelimits } from '../../../../core/db/queries/ratelimits.ts';
import { addKeyRoles } from '../../../../core/db/queries/roles.ts';
import { Fault } from '../../../../core/fault.ts';
import { newId } from '../../../../core/id.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { array, boolean, integer, object, string } from '../../schema-builders.ts';
import {
  externalIdSchema, idSchema, keyCreditsInputSchema, MAX_EXPIRES_MS, metaSchema, permissionSlugSchema, ratelimitListSchema, roleNameSchema,
} from '../shared/schemas.ts';
import { resolveOrCreatePermissions, resolveRoles } from '../shared/rbac-lookup.ts';
import { refillDayOf, type RatelimitInput, type RefillInput } from './update-key.ts';
import { loadApiOrNotFound } from '../shared/api-access.ts';

/** Most keys one call imports. */
export const MAX_MIGRATE_KEYS_PER_CALL = 100;

/** One key to import. */
export interface MigrateKeyInput {
  hash: string;
  name?: string;
  externalId?: string;
  meta?: Record<string, unknown>;
  roles?: string[];
  permissions?: string[];
  expires?: number;
  enabled?: boolean;
  credits?: { remaining: number | null; refill?: RefillInput };
  ratelimits?: RatelimitInput[];
}

/** Body of `keys.migrateKeys`. */
export interface MigrateKeysBody {
  migrationId: string;
  apiId: string;
  keys: MigrateKeyInput[];
}

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

/** The `keys.migrateKeys` endpoint. */
export const migrateKeysEndpoint = defineEndpoint<MigrateKeysBody>({
  operationId: 'keys.migrateKeys',
  summary: 'Import keys hashed elsewhere; they are re-hashed on their first verification.',
  request: object(
    {
      migrationId: string({ minLength: 1, maxLength: 256 }),
      apiId: idSchema(),
      keys: array(object(
        {
          hash: string({ minLength: 1, maxLength: 256 }),
          name: string({ minLength: 1, maxLength: 255 }),
          externalId: externalIdSchema,
          meta: metaSchema,
          roles: array(roleNameSchema, { maxItems: 100 }),
          permissions: array(permissionSlugSchema, { maxItems: 1000 }),
          expires: integer({ minimum: 0, maximum: MAX_EXPIRES_MS }),
          enabled: boolean(),
          credits: keyCreditsInputSchema,
          ratelimits: ratelimitListSchema,
        },
        ['hash'],
      ), { minItems: 1, maxItems: MAX_MIGRATE_KEYS_PER_CALL }),
    },
    ['migrationId', 'apiId', 'keys'],
  ),
  response: object(
    { migrated: array(object({ hash: string(), keyId: string() }, ['hash', 'keyId'])), failed: array(string()) },
    ['migrated', 'failed'],
  ),
  errorStatuses: [404],
  async handler({ body, principal, deps, audit }) {
    const workspaceId = principal.workspaceId;
    const found = await loadApiOrNotFound(deps.db, principal, body.apiId, 'create_key');
    if ((await getKeyMigration(deps.db, workspaceId, body.migrationId)) === undefined) throw notFound.migration();
    for (const key of body.keys) {
      if (key.credits?.refill !== undefined) {
        if (key.credits.remaining === null) throw invalid('credits.refill needs finite credits: credits.remaining must not be null.');
        refillDayOf(key.credits.refill);
      }
    }
    const migrated: Array<{ hash: string; keyId: string }> = [];
    const failed: string[] = [];
    const nowMs = deps.clock.nowMs();
    await deps.db.transaction(async (tx) => {
      const seen = new Set<string>();
      for (const input of body.keys) {
        const hash = input.hash.toLowerCase();
        if (!HEX_SHA256.test(hash) || seen.has(hash) || (await getKeyByHash(tx, hash)) !== undefined) {
          failed.push(input.hash);
          continue;
        }
        seen.add(hash);
        const keyId = newId('key');
        const identityId = input.externalId === undefined
          ? undefined
          : (await ensureIdentity(tx, { id: newId('id'), workspaceId, externalId: input.externalId, createdAtMs: nowMs })).identity.id;
        await insertKey(tx, {
          id: keyId, keySpaceId: found.keySpace.id, workspaceId, hash, start: '', name: input.name, identityId, meta: input.meta,
          expiresAtMs: input.expires, enabled: input.enabled, remainingRequests: input.credits?.remaining ?? undefined,
          refillAmount: input.credits?.refill?.amount, refillDay: input.credits?.refill === undefined ? undefined : (refillDayOf(input.credits.refill) ?? undefined),
          pendingMigrationId: body.migrationId, createdAtMs: nowMs,
        });
        if (input.ratelimits !== undefined && input.ratelimits.length > 0) {
          await insertRatelimits(tx, input.ratelimits.map((limit) => ({
            id: newId('rl'), workspaceId, keyId, name: limit.name, limit: limit.limit, durationMs: limit.duration, autoApply: limit.autoApply ?? false, createdAtMs: nowMs,
          })));
        }
        if (input.permissions !== undefined && input.permissions.length > 0) {
          const { permissions } = await resolveOrCreatePermissions(tx, workspaceId, input.permissions, nowMs);
          await addKeyPermissions(tx, { workspaceId, keyId, permissionIds: permissions.map((permission) => permission.id), nowMs });
        }
        if (input.roles !== undefined && input.roles.length > 0) {
          const roles = await resolveRoles(tx, workspaceId, input.roles);
          await addKeyRoles(tx, { workspaceId, keyId, roleIds: roles.map((role) => role.id), nowMs });
        }
        migrated.push({ hash: input.hash, keyId });
      }
      await deps.audit.write(tx, audit, migrated.map((item) => ({
        event: 'key.create',
        description: `Imported ${item.keyId} (migration ${body.migrationId})`,
        targets: [{ type: 'key', id: item.keyId }, { type: 'api', id: found.api.id }],
        meta: { migrationId: body.migrationId },
      })));
    });
    return { data: { migrated, failed } };
  },
});

function invalid(message: string): Fault {
  return Fault.expected('err:unkey:application:invalid_input', { publicMessage: message, errors: [] });
}
