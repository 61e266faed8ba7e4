/**
 * `keys.createKey` (spec api.md §3.1): generates a key in an API's key space and returns the
 * plaintext once. Everything is written in ONE transaction: the key, its identity (upserted by
 * `externalId`), encrypted copy (recoverable keys, through Vault), rate limits, permissions
 * (unknown slugs are created), roles (must exist: 404 `role_not_found`) and the audit events
 * `key.create`, `authorization.connect_permission_and_key`, `authorization.connect_role_and_key`
 * sharing the request's correlation id.
 *
 * Permission: `api.<id>.create_key` | `api.*.create_key` | URN `keyspaces/<ks>#create_key`; without
 * it the answer is the 404 of a missing API. `recoverable` also needs `encrypt_key` (403), Vault
 * (412) and a key space that stores encrypted keys (412).
 */
import type { Database } from '../../../../core/db/database.ts';
import type { Api } from '../../../../core/db/queries/apis.ts';
import { insertEncryptedKey } from '../../../../core/db/queries/encrypted-keys.ts';
import { ensureIdentity } from '../../../../core/db/queries/identities.ts';
import { insertKey } from '../../../../core/db/queries/keys.ts';
import { addKeyPermissions, ensurePermissions } from '../../../../core/db/queries/permissions.ts';
import { insertRatelimits } from '../../../../core/db/queries/ratelimits.ts';
import { addKeyRoles, getRolesByNames } from '../../../../core/db/queries/roles.ts';
import { Fault } from '../../../../core/fault.ts';
import { newId } from '../../../../core/id.ts';
import { DEFAULT_KEY_BYTES, generateKey } from '../../../../core/keys/key-generator.ts';
import type { AuditEvent } from '../../audit-log.ts';
import { requirePermissions } from '../../authorization.ts';
import { defineEndpoint, type ApiRequest } from '../../endpoint.ts';
import { array, boolean, integer, object, string } from '../../schema-builders.ts';
import { keyCreditsInputSchema, MAX_EXPIRES_MS, metaSchema, ratelimitRequestSchema } from '../shared/schemas.ts';
import { apiPermission, loadApiOrNotFound } from '../shared/api-access.ts';

/** Attempts of the transaction when a generated id is already taken. */
export const CREATE_KEY_MAX_ATTEMPTS = 5;

/** Body of `keys.createKey`. */
export interface CreateKeyBody {
  apiId: string;
  prefix?: string;
  name?: string;
  byteLength?: number;
  externalId?: string;
  meta?: Record<string, unknown>;
  roles?: string[];
  permissions?: string[];
  expires?: number;
  credits?: { remaining: number | null; refill?: { interval: 'daily' | 'monthly'; amount: number; refillDay?: number } };
  ratelimits?: Array<{ name: string; limit: number; duration: number; autoApply?: boolean }>;
  enabled?: boolean;
  recoverable?: boolean;
}

/** The `keys.createKey` endpoint. */
export const createKeyEndpoint = defineEndpoint<CreateKeyBody>({
  operationId: 'keys.createKey',
  summary: 'Create a key in an API; the plaintext is returned once.',
  request: object({
    apiId: string({ minLength: 3, maxLength: 255, pattern: '^[a-zA-Z0-9_]+$' }),
    prefix: string({ minLength: 1, maxLength: 16, pattern: '^[a-zA-Z0-9_]+$' }),
    name: string({ minLength: 1, maxLength: 255 }),
    byteLength: integer({ minimum: 16, maximum: 255 }),
    externalId: string({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9_.-]+$' }),
    meta: metaSchema,
    roles: array(string({ minLength: 1, maxLength: 128 }), { maxItems: 100 }),
    permissions: array(string({ minLength: 1, maxLength: 128, pattern: '^[a-zA-Z0-9_:\\-\\.\\*]+$' }), { maxItems: 1000 }),
    expires: integer({ minimum: 0, maximum: MAX_EXPIRES_MS, description: 'Unix ms after which the key verifies as EXPIRED.' }),
    credits: keyCreditsInputSchema,
    ratelimits: array(ratelimitRequestSchema, { maxItems: 50 }),
    enabled: boolean(),
    recoverable: boolean('Store an encrypted copy (needs Vault) so getKey can return the plaintext later.'),
  }, ['apiId']),
  response: object({ keyId: string(), key: string({ description: 'The plaintext key: shown once, store it safely.' }) }, ['keyId', 'key']),
  errorStatuses: [404, 412],
  handler: createKey,
});

async function createKey(request: ApiRequest<CreateKeyBody>) {
  const { body, principal, deps } = request;
  validateCredits(body.credits);
  validateUniqueRatelimitNames(body.ratelimits);
  const workspaceId = principal.workspaceId;
  const { api, keySpace } = await loadApiOrNotFound(deps.db, principal, body.apiId, 'create_key');
  if (body.recoverable === true) {
    requirePermissions(principal, apiPermission(workspaceId, api.id, keySpace.id, 'encrypt_key'));
    if (deps.vault === undefined) {
      throw Fault.expected('err:unkey:application:precondition_failed', { publicMessage: 'Vault is not configured: recoverable keys cannot be stored.' });
    }
    if (!keySpace.storeEncryptedKeys) {
      throw Fault.expected('err:unkey:application:precondition_failed', { publicMessage: 'API does not support key encryption.' });
    }
  }
  const roleNames = [...new Set(body.roles ?? [])];
  const roles = await getRolesByNames(deps.db, workspaceId, roleNames);
  if (roles.length !== roleNames.length) {
    const known = new Set(roles.map((role) => role.name));
    const missing = roleNames.find((name) => !known.has(name))!;
    throw Fault.expected('err:unkey:data:role_not_found', { publicMessage: `Role '${missing}' was not found.` });
  }

  const generated = generateKey({ prefix: body.prefix ?? keySpace.defaultPrefix, byteLength: body.byteLength ?? keySpace.defaultBytes ?? DEFAULT_KEY_BYTES });
  const encrypted = body.recoverable === true ? await deps.vault!.encrypt({ keyring: workspaceId, data: generated.key }, { signal: request.ctx.signal }) : undefined;

  for (let attempt = 1; ; attempt++) {
    const keyId = newId('key');
    try {
      await deps.db.transaction((tx) => writeKey(tx, request, api, keySpace.id, keyId, generated, encrypted, roles));
      return { data: { keyId, key: generated.key } };
    } catch (err) {
      // Only a taken id is worth another attempt (ids are random); anything else is final.
      const retry = err instanceof Fault && err.code === 'err:keygate:database:conflict' && attempt < CREATE_KEY_MAX_ATTEMPTS;
      if (!retry) throw err;
    }
  }
}

async function writeKey(
  tx: Database,
  request: ApiRequest<CreateKeyBody>,
  api: Api,
  keySpaceId: string,
  keyId: string,
  generated: { hash: string; start: string },
  encrypted: { encrypted: string; keyId: string } | undefined,
  roles: ReadonlyArray<{ id: string; name: string }>,
): Promise<void> {
  const { body, principal, deps, audit } = request;
  const workspaceId = principal.workspaceId;
  const nowMs = deps.clock.nowMs();
  let identityId: string | undefined;
  if (body.externalId !== undefined) {
    const { identity } = await ensureIdentity(tx, { id: newId('id'), workspaceId, externalId: body.externalId, meta: {}, createdAtMs: nowMs });
    identityId = identity.id;
  }
  const refill = body.credits?.refill;
  await insertKey(tx, {
    id: keyId,
    keySpaceId,
    workspaceId,
    hash: generated.hash,
    start: generated.start,
    name: body.name,
    identityId,
    meta: body.meta,
    expiresAtMs: body.expires,
    enabled: body.enabled ?? true,
    remainingRequests: body.credits?.remaining ?? undefined,
    refillAmount: refill?.amount,
    refillDay: refill?.interval === 'monthly' ? refill.refillDay : undefined,
    createdAtMs: nowMs,
  });
  if (encrypted !== undefined) {
    await insertEncryptedKey(tx, { keyId, workspaceId, encrypted: encrypted.encrypted, encryptionKeyId: encrypted.keyId, createdAtMs: nowMs });
  }
  if (body.ratelimits !== undefined && body.ratelimits.length > 0) {
    await insertRatelimits(tx, body.ratelimits.map((limit) => ({
      id: newId('rl'), workspaceId, keyId, name: limit.name, limit: limit.limit, durationMs: limit.duration, autoApply: limit.autoApply ?? false, createdAtMs: nowMs,
    })));
  }
  const events: AuditEvent[] = [{
    event: 'key.create',
    description: `Created ${keyId} in ${api.id}`,
    targets: [{ type: 'key', id: keyId, ...(body.name === undefined ? {} : { name: body.name }) }, { type: 'api', id: api.id, name: api.name }],
  }];
  const permissions = await ensurePermissions(tx, workspaceId, body.permissions ?? [], () => newId('perm'), nowMs);
  if (permissions.length > 0) {
    await addKeyPermissions(tx, { workspaceId, keyId, permissionIds: permissions.map((permission) => permission.id), nowMs });
    for (const permission of permissions) {
      events.push({
        event: 'authorization.connect_permission_and_key',
        description: `Connected ${permission.slug} and ${keyId}`,
        targets: [{ type: 'key', id: keyId }, { type: 'permission', id: permission.id, name: permission.slug }],
      });
    }
  }
  if (roles.length > 0) {
    await addKeyRoles(tx, { workspaceId, keyId, roleIds: roles.map((role) => role.id), nowMs });
    for (const role of roles) {
      events.push({
        event: 'authorization.connect_role_and_key',
        description: `Connected ${role.name} and ${keyId}`,
        targets: [{ type: 'key', id: keyId }, { type: 'role', id: role.id, name: role.name }],
      });
    }
  }
  await deps.audit.write(tx, audit, events);
}

/** Checks the credit rules the schema cannot express (api.md §3.1): 400 `invalid_input`. */
function validateCredits(credits: CreateKeyBody['credits']): void {
  const refill = credits?.refill;
  if (refill === undefined) return;
  if (credits!.remaining === null) {
    throw invalid('credits.refill requires credits.remaining: a refill of an unlimited key means nothing.');
  }
  if (refill.interval === 'monthly' && refill.refillDay === undefined) {
    throw invalid('credits.refill.refillDay is required when credits.refill.interval is "monthly".');
  }
  if (refill.interval === 'daily' && refill.refillDay !== undefined) {
    throw invalid('credits.refill.refillDay applies only to monthly refills; remove it or use interval "monthly".');
  }
}

function validateUniqueRatelimitNames(ratelimits: CreateKeyBody['ratelimits']): void {
  if (ratelimits === undefined) return;
  const seen = new Set<string>();
  for (const limit of ratelimits) {
    if (seen.has(limit.name)) throw invalid(`ratelimits contains '${limit.name}' twice; names must be unique per key.`);
    seen.add(limit.name);
  }
}

function invalid(message: string): Fault {
  return Fault.expected('err:unkey:application:invalid_input', { publicMessage: message });
}
