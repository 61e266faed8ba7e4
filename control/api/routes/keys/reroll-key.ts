/**
 * `keys.rerollKey` (spec api.md §1): issues a replacement key that keeps every attribute of the
 * original (name, meta, identity, expiry, enabled, credits and refill, rate limits, direct
 * permissions, roles, and an encrypted copy when the original was recoverable), and makes the
 * original expire `expiration` ms from now (never later than it already would).
 *
 * Requires `create_key` on the key's API (or the key's URN); otherwise the same 404 as a missing
 * key. One transaction with `key.create` and `key.update` audit events; the old key is dropped
 * from every node's cache after commit.
 */
import { getEncryptedKey, insertEncryptedKey } from '../../../../core/db/queries/encrypted-keys.ts';
import { getKeySpace } from '../../../../core/db/queries/key-spaces.ts';
import { insertKey, updateKey } from '../../../../core/db/queries/keys.ts';
import { addKeyPermissions, listKeyPermissions } from '../../../../core/db/queries/permissions.ts';
import { insertRatelimits, listRatelimits } from '../../../../core/db/queries/ratelimits.ts';
import { addKeyRoles, listKeyRoles } from '../../../../core/db/queries/roles.ts';
import { Fault } from '../../../../core/fault.ts';
import { newId } from '../../../../core/id.ts';
import { DEFAULT_KEY_BYTES, generateKey } from '../../../../core/keys/key-generator.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { integer, object, string } from '../../schema-builders.ts';
import { invalidateKeyHashes } from '../shared/invalidate.ts';
import { loadKeyOrNotFound } from '../shared/key-access.ts';
import { idSchema, MAX_EXPIRES_MS } from '../shared/schemas.ts';

/** Body of `keys.rerollKey`. */
export interface RerollKeyBody {
  keyId: string;
  /** Grace period of the old key, in ms (0 = it stops working now). */
  expiration: number;
}

/** The `keys.rerollKey` endpoint. */
export const rerollKeyEndpoint = defineEndpoint<RerollKeyBody>({
  operationId: 'keys.rerollKey',
  summary: 'Replace a key with a new one that keeps its configuration; the old one expires after a grace period.',
  request: object({ keyId: idSchema(), expiration: integer({ minimum: 0, maximum: MAX_EXPIRES_MS, description: 'Grace period of the old key, in ms.' }) }, ['keyId', 'expiration']),
  response: object({ keyId: string(), key: string() }, ['keyId', 'key']),
  errorStatuses: [404, 412],
  async handler({ body, principal, deps, audit }) {
    const { key: old } = await loadKeyOrNotFound(deps.db, principal, body.keyId, 'create_key');
    const workspaceId = principal.workspaceId;
    const keySpace = await getKeySpace(deps.db, workspaceId, old.keySpaceId);
    if (keySpace === undefined) throw notFound.key();
    const separator = old.start.lastIndexOf('_');
    const prefix = separator > 0 ? old.start.slice(0, separator) : undefined;
    const generated = generateKey({ prefix, byteLength: keySpace.defaultBytes ?? DEFAULT_KEY_BYTES });
    const encryptedOld = await getEncryptedKey(deps.db, workspaceId, old.id);
    let encrypted: { encrypted: string; keyId: string } | undefined;
    if (encryptedOld !== undefined) {
      if (deps.vault === undefined) {
        throw Fault.expected('err:unkey:application:precondition_failed', { publicMessage: 'The key is recoverable, but no Vault is configured to encrypt its replacement.' });
      }
      encrypted = await deps.vault.encrypt({ keyring: workspaceId, data: generated.key });
    }
    const newKeyId = newId('key');
    const nowMs = deps.clock.nowMs();
    const oldExpiresAtMs = Math.min(nowMs + body.expiration, old.expiresAtMs ?? Number.MAX_SAFE_INTEGER);
    await deps.db.transaction(async (tx) => {
      await insertKey(tx, {
        id: newKeyId, keySpaceId: old.keySpaceId, workspaceId, hash: generated.hash, start: generated.start, name: old.name,
        identityId: old.identityId, meta: old.meta, expiresAtMs: old.expiresAtMs, enabled: old.enabled,
        remainingRequests: old.remainingRequests, refillDay: old.refillDay, refillAmount: old.refillAmount, createdAtMs: nowMs,
      });
      const ratelimits = await listRatelimits(tx, { keyId: old.id });
      await insertRatelimits(tx, ratelimits.map((limit) => ({
        id: newId('rl'), workspaceId, keyId: newKeyId, name: limit.name, limit: limit.limit, durationMs: limit.durationMs, autoApply: limit.autoApply, createdAtMs: nowMs,
      })));
      await addKeyPermissions(tx, { workspaceId, keyId: newKeyId, permissionIds: (await listKeyPermissions(tx, old.id)).map((permission) => permission.id), nowMs });
      await addKeyRoles(tx, { workspaceId, keyId: newKeyId, roleIds: (await listKeyRoles(tx, old.id)).map((role) => role.id), nowMs });
      if (encrypted !== undefined) {
        await insertEncryptedKey(tx, { keyId: newKeyId, workspaceId, encrypted: encrypted.encrypted, encryptionKeyId: encrypted.keyId, createdAtMs: nowMs });
      }
      if (!(await updateKey(tx, old.id, { expiresAtMs: oldExpiresAtMs }, nowMs))) throw notFound.key();
      await deps.audit.write(tx, audit, [
        { event: 'key.create', description: `Created ${newKeyId} by rerolling ${old.id}`, targets: [{ type: 'key', id: newKeyId }, { type: 'key', id: old.id }] },
        { event: 'key.update', description: `${old.id} expires at ${new Date(oldExpiresAtMs).toISOString()} (rerolled)`, targets: [{ type: 'key', id: old.id }], meta: { expires: oldExpiresAtMs } },
      ]);
    });
    await invalidateKeyHashes(deps, [old.hash]);
    return { data: { keyId: newKeyId, key: generated.key } };
  },
});
