import t from 'tap';
import { listAuditLogs } from '../../../../core/db/queries/audit-logs.ts';
import { getEncryptedKey } from '../../../../core/db/queries/encrypted-keys.ts';
import { getKeyById } from '../../../../core/db/queries/keys.ts';
import { addRolePermissions, insertRole } from '../../../../core/db/queries/roles.ts';
import { ensurePermissions } from '../../../../core/db/queries/permissions.ts';
import { newId } from '../../../../core/id.ts';
import { hashKey } from '../../../../core/keys/key-hash.ts';
import { createInProcessVault } from '../../../../vault/in-process-vault.ts';
import { startApiHarness } from '../../../helpers/api-harness.ts';

t.test('keys.createKey', async (t) => {
  const vault = createInProcessVault();
  t.teardown(() => vault.close());
  const h = (await startApiHarness(t, { vault }))!;
  const { apiId } = await h.seedApi({ defaultPrefix: 'dflt' });
  const rootKey = await h.createRootKey(['api.*.create_key', 'api.*.verify_key']);
  const roleId = newId('role');
  await insertRole(h.db, { id: roleId, workspaceId: h.workspaceId, name: 'admin', createdAtMs: h.clock.nowMs() });
  const [rolePermission] = await ensurePermissions(h.db, h.workspaceId, ['admin.all'], () => newId('perm'), h.clock.nowMs());
  await addRolePermissions(h.db, { workspaceId: h.workspaceId, roleId, permissionIds: [rolePermission!.id], nowMs: h.clock.nowMs() });

  t.test('200: minimal key uses the key space prefix, verifies, and stores only the hash', async (t) => {
    const res = await h.call('keys.createKey', { apiId }, rootKey);
    t.equal(res.status, 200, res.text);
    t.match(res.body.data, { keyId: /^key_/, key: /^dflt_[1-9A-HJ-NP-Za-km-z]{20,}$/ });
    const stored = await getKeyById(h.db, res.body.data.keyId);
    t.equal(stored?.hash, hashKey(res.body.data.key));
    t.equal(stored?.start, res.body.data.key.slice(0, 'dflt_'.length + 4));
    const verified = await h.call('keys.verifyKey', { key: res.body.data.key }, rootKey);
    t.match(verified.body.data, { valid: true, keyId: res.body.data.keyId });
  });

  t.test('200: everything at once, in one transaction with audit events sharing one correlation id', async (t) => {
    const res = await h.call('keys.createKey', {
      apiId, prefix: 'sk', name: 'full', byteLength: 32, externalId: 'user_1', meta: { plan: 'pro' },
      roles: ['admin'], permissions: ['documents.read', 'documents.write'], expires: h.clock.nowMs() + 86_400_000,
      credits: { remaining: 100, refill: { interval: 'monthly', amount: 100, refillDay: 31 } },
      ratelimits: [{ name: 'requests', limit: 10, duration: 60_000, autoApply: true }],
      enabled: true,
    }, rootKey);
    t.equal(res.status, 200, res.text);
    t.match(res.body.data.key, /^sk_/);
    const verified = (await h.call('keys.verifyKey', { key: res.body.data.key, permissions: 'documents.write AND admin.all' }, rootKey)).body.data;
    t.match(verified, {
      valid: true, name: 'full', meta: { plan: 'pro' }, credits: 99, roles: ['admin'],
      permissions: ['admin.all', 'documents.read', 'documents.write'],
      identity: { externalId: 'user_1' },
      ratelimits: [{ name: 'requests', limit: 10, remaining: 9, autoApply: true }],
    });
    const stored = await getKeyById(h.db, res.body.data.keyId);
    t.equal(stored?.refillDay, 31);
    t.equal(stored?.refillAmount, 100);
    const events = await listAuditLogs(h.db, { workspaceId: h.workspaceId, correlationId: res.body.meta.requestId });
    t.same(events.map((event) => event.event).sort(), [
      'authorization.connect_permission_and_key', 'authorization.connect_permission_and_key', 'authorization.connect_role_and_key', 'key.create',
    ]);
  });

  t.test('200: an existing externalId links the same identity', async (t) => {
    const a = await h.call('keys.createKey', { apiId, externalId: 'user_same' }, rootKey);
    const b = await h.call('keys.createKey', { apiId, externalId: 'user_same' }, rootKey);
    const keyA = await getKeyById(h.db, a.body.data.keyId);
    const keyB = await getKeyById(h.db, b.body.data.keyId);
    t.ok(keyA?.identityId);
    t.equal(keyA?.identityId, keyB?.identityId);
  });

  t.test('200: recoverable keys are stored encrypted and can be decrypted', async (t) => {
    const encryptedApi = await h.seedApi({ storeEncryptedKeys: true });
    const root = await h.createRootKey(['api.*.create_key', 'api.*.encrypt_key']);
    const res = await h.call('keys.createKey', { apiId: encryptedApi.apiId, recoverable: true }, root);
    t.equal(res.status, 200, res.text);
    const encrypted = await getEncryptedKey(h.db, h.workspaceId, res.body.data.keyId);
    t.ok(encrypted);
    t.not(encrypted!.encrypted.includes(res.body.data.key), true, 'the plaintext is not stored');
    const decrypted = await vault.decrypt({ keyring: h.workspaceId, encrypted: encrypted!.encrypted });
    t.equal(decrypted.plaintext, res.body.data.key);
  });

  t.test('400: schema and credit rules', async (t) => {
    for (const body of [
      { apiId, byteLength: 8 },
      { apiId, prefix: 'has-dash' },
      { apiId, credits: { refill: { interval: 'daily', amount: 1 } } },
      { apiId, credits: { remaining: null, refill: { interval: 'daily', amount: 1 } } },
      { apiId, credits: { remaining: 5, refill: { interval: 'monthly', amount: 1 } } },
      { apiId, ratelimits: [{ name: 'short', limit: 1, duration: 10 }] },
      { apiId, ratelimits: [{ name: 'dup', limit: 1, duration: 1000 }, { name: 'dup', limit: 2, duration: 1000 }] },
      { apiId, expires: 5_000_000_000_000 },
      { apiId, unknown: true },
    ]) {
      const res = await h.call('keys.createKey', body, rootKey);
      t.equal(res.status, 400, JSON.stringify(body));
    }
  });

  t.test('401: unknown root key', async (t) => {
    t.equal((await h.call('keys.createKey', { apiId }, 'kg_root_none')).status, 401);
  });

  t.test('403: recoverable without encrypt_key; 412 without store_encrypted_keys or without Vault', async (t) => {
    const encryptedApi = await h.seedApi({ storeEncryptedKeys: true });
    const noEncrypt = await h.call('keys.createKey', { apiId: encryptedApi.apiId, recoverable: true }, rootKey);
    t.equal(noEncrypt.status, 403);
    const root = await h.createRootKey(['api.*.create_key', 'api.*.encrypt_key']);
    const unsupported = await h.call('keys.createKey', { apiId, recoverable: true }, root);
    t.equal(unsupported.status, 412);
    t.match(unsupported.body.error.detail, /does not support key encryption/);
    const noVault = (await startApiHarness(t))!;
    const noVaultApi = await noVault.seedApi({ storeEncryptedKeys: true });
    const noVaultRoot = await noVault.createRootKey(['api.*.create_key', 'api.*.encrypt_key']);
    t.equal((await noVault.call('keys.createKey', { apiId: noVaultApi.apiId, recoverable: true }, noVaultRoot)).status, 412);
  });

  t.test('404: a missing API; the same 404 when the root key may not create keys there; unknown role', async (t) => {
    const missing = await h.call('keys.createKey', { apiId: 'api_missing' }, rootKey);
    t.equal(missing.status, 404);
    const otherApiRoot = await h.createRootKey(['api.api_other.create_key']);
    const masked = await h.call('keys.createKey', { apiId }, otherApiRoot);
    t.equal(masked.status, 404);
    t.same(masked.body.error, missing.body.error, 'identical to a missing API');
    const role = await h.call('keys.createKey', { apiId, roles: ['ghost'] }, rootKey);
    t.equal(role.status, 404);
    t.equal(role.body.error.type, 'https://unkey.com/docs/errors/unkey/data/role_not_found');
  });
});
