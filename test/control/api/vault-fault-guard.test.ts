/**
 * Vault failures reach API callers as server errors, never as the Vault's own 401/404/400
 * (which an SDK would read as "your root key is wrong" or "no such key"): non-retryable vault
 * faults become 500 unexpected_error, retryable ones 500 service_unavailable, with the vault
 * fault kept as the internal cause.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { insertEncryptedKey } from '../../../core/db/queries/encrypted-keys.ts';
import { Fault, type FaultCode } from '../../../core/fault.ts';
import { RemoteVaultClient } from '../../../core/vault-client.ts';
import { apiFaultOfVaultError } from '../../../control/api/vault-fault-guard.ts';
import { createInProcessVault } from '../../../vault/in-process-vault.ts';
import { startApiHarness } from '../../helpers/api-harness.ts';

const cases: Array<[FaultCode, boolean, FaultCode]> = [
  ['err:vault:auth:unauthenticated', false, 'err:unkey:application:unexpected_error'],
  ['err:vault:keyring:dek_not_found', false, 'err:unkey:application:unexpected_error'],
  ['err:vault:crypto:malformed_payload', false, 'err:unkey:application:unexpected_error'],
  ['err:vault:crypto:decryption_failed', false, 'err:unkey:application:unexpected_error'],
  ['err:vault:request:invalid_argument', false, 'err:unkey:application:unexpected_error'],
  ['err:vault:service:unavailable', true, 'err:unkey:application:service_unavailable'],
  ['err:vault:storage:unavailable', true, 'err:unkey:application:service_unavailable'],
];

t.test('every vault fault maps to a 500, retryable ones to service_unavailable, the cause kept', async (t) => {
  for (const [code, retryable, expected] of cases) {
    const vaultFault = new Fault(code, { retryable, source: 'upstream', internalMessage: 'detail' });
    const mapped = apiFaultOfVaultError(vaultFault);
    t.ok(mapped instanceof Fault);
    const fault = mapped as Fault;
    t.equal(fault.code, expected, code);
    t.equal(fault.status, 500, `${code} is a server error`);
    t.equal(fault.retryable, retryable);
    t.equal(fault.cause, vaultFault, 'the vault fault is the internal cause');
    t.match(fault.internalMessage, code);
  }
  const own = new Fault('err:unkey:application:precondition_failed');
  t.equal(apiFaultOfVaultError(own), own, 'faults of the API itself pass unchanged');
  const plain = new Error('x');
  t.equal(apiFaultOfVaultError(plain), plain);
});

t.test('getKey decrypt of a copy under an unknown data key is a 500, not the vault\'s 404', async (t) => {
  const vault = createInProcessVault();
  t.teardown(() => vault.close());
  const h = (await startApiHarness(t, { vault }))!;
  const admin = await h.createAdminRootKey();
  const { apiId } = await h.seedApi({ storeEncryptedKeys: true });
  const { keyId } = await h.seedKey({ apiId });
  const { keyId: corruptedKeyId } = await h.seedKey({ apiId });
  await insertEncryptedKey(h.db, { keyId, workspaceId: h.workspaceId, encrypted: 'AAAA', encryptionKeyId: 'dek_gone', createdAtMs: h.clock.nowMs() });
  const unknownDek = await h.call('keys.getKey', { keyId, decrypt: true }, admin);
  t.equal(unknownDek.status, 500, unknownDek.text);
  t.equal(unknownDek.body.error.type, 'https://unkey.com/docs/errors/unkey/application/unexpected_error');

  // A real copy, then corrupted in the database: the vault answers a 400-class fault.
  const real = await vault.encrypt({ keyring: h.workspaceId, data: 'plaintext' });
  await insertEncryptedKey(h.db, { keyId: corruptedKeyId, workspaceId: h.workspaceId, encrypted: real.encrypted.slice(0, -8) + 'AAAAAAAA', encryptionKeyId: real.keyId, createdAtMs: h.clock.nowMs() });
  const corrupted = await h.call('keys.getKey', { keyId: corruptedKeyId, decrypt: true }, admin);
  t.equal(corrupted.status, 500, corrupted.text);
  const listed = await h.call('apis.listKeys', { apiId, decrypt: true }, admin);
  t.equal(listed.status, 500, 'listKeys decrypt too');
});

t.test('an unreachable vault is a retryable 500 service_unavailable for createKey', async (t) => {
  // A port that was just free: nothing listens there any more.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const vault = new RemoteVaultClient({ baseUrl: `http://127.0.0.1:${port}`, bearerToken: 'token', timeoutMs: 2_000 });
  t.teardown(() => vault.close());
  const h = (await startApiHarness(t, { vault }))!;
  const admin = await h.createAdminRootKey();
  const { apiId } = await h.seedApi({ storeEncryptedKeys: true });
  const res = await h.call('keys.createKey', { apiId, recoverable: true }, admin);
  t.equal(res.status, 500, res.text);
  t.equal(res.body.error.type, 'https://unkey.com/docs/errors/unkey/application/service_unavailable');
  t.equal((await h.db.query('SELECT `id` FROM `keys` WHERE `key_auth_id` = (SELECT `key_auth_id` FROM `apis` WHERE `id` = ?)', [apiId])).length, 0,
    'no key was created without its encrypted copy');
});
