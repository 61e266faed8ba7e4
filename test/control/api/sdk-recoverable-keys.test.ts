/**
 * Recoverable keys end to end through the official SDK (`@unkey/api`) over a real socket, with
 * the API's Vault either in process or a real `keygate vault` child process reached over the
 * Connect RPC (RemoteVaultClient): createKey recoverable → getKey decrypt returns the created
 * plaintext, apis.listKeys decrypt, rerollKey of a recoverable key keeps it recoverable, and the
 * 412s when the key space does not store encrypted keys or no Vault is configured.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Unkey } from '@unkey/api';
import * as errors from '@unkey/api/models/errors';
import t from 'tap';
import type { Test } from 'tap';
import { insertEncryptedKey } from '../../../core/db/queries/encrypted-keys.ts';
import { RemoteVaultClient } from '../../../core/vault-client.ts';
import type { VaultClient } from '../../../core/vault-client.ts';
import { createInProcessVault } from '../../../vault/in-process-vault.ts';
import { generateMasterKey } from '../../../vault/keyring/master-keys.ts';
import { startApiHarness } from '../../helpers/api-harness.ts';
import type { ApiHarness } from '../../helpers/api-harness.ts';

const keygatePath = new URL('../../../bin/keygate.ts', import.meta.url).pathname;
/** Bound on the child's start (process start plus imports on a loaded 2-core machine). */
const VAULT_START_TIMEOUT_MS = 30_000;
/** Bound on the child's graceful exit before it is killed. */
const VAULT_STOP_TIMEOUT_MS = 10_000;

/** The HTTP status of the SDK error the call rejects with; undefined when it succeeds or fails otherwise. */
async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  const err = await promise.then(() => undefined, (caught: unknown) => caught);
  return err instanceof errors.UnkeyError ? err.statusCode : undefined;
}

/** The whole recoverable-key flow through the SDK against `h` (which has a Vault). */
async function recoverableFlow(t: Test, h: ApiHarness): Promise<void> {
  const serverURL = await h.listen();
  const unkey = new Unkey({ rootKey: await h.createAdminRootKey(), serverURL, retryConfig: { strategy: 'none' } });
  const { apiId } = await h.seedApi({ storeEncryptedKeys: true, name: 'recoverable' });

  const created = await unkey.keys.createKey({ apiId, prefix: 'rec', name: 'first', recoverable: true });
  const { keyId, key } = created.data;
  t.match(key, /^rec_/);

  const stored = await h.db.query<{ encrypted: string; encryption_key_id: string }>(
    'SELECT `encrypted`, `encryption_key_id` FROM `encrypted_keys` WHERE `key_id` = ?', [keyId],
  );
  t.equal(stored.length, 1, 'one encrypted copy is stored');
  t.notOk(stored[0]!.encrypted.includes(key.slice(4)), 'the stored copy is not the plaintext');
  t.match(stored[0]!.encryption_key_id, /^dek_/, 'the data key id is stored with it');

  const decrypted = await unkey.keys.getKey({ keyId, decrypt: true });
  t.equal(decrypted.data.plaintext, key, 'getKey with decrypt returns the plaintext that createKey returned');
  const plain = await unkey.keys.getKey({ keyId });
  t.equal(plain.data.plaintext, undefined, 'no plaintext without decrypt');
  t.equal((await unkey.keys.verifyKey({ key })).data.valid, true, 'the recoverable key verifies');

  const notRecoverable = await unkey.keys.createKey({ apiId, prefix: 'rec', name: 'second' });
  t.equal((await unkey.keys.getKey({ keyId: notRecoverable.data.keyId, decrypt: true })).data.plaintext, undefined,
    'a key created without recoverable has no plaintext even with decrypt');

  const listed = (await unkey.apis.listKeys({ apiId, decrypt: true })).result;
  const plaintexts = new Map(listed.data.map((item) => [item.keyId, item.plaintext]));
  t.equal(plaintexts.size, 2);
  t.equal(plaintexts.get(keyId), key, 'listKeys decrypt returns the recoverable key\'s plaintext');
  t.equal(plaintexts.get(notRecoverable.data.keyId), undefined, 'and none for the other key');
  const listedPlain = (await unkey.apis.listKeys({ apiId })).result;
  t.ok(listedPlain.data.every((item) => item.plaintext === undefined), 'listKeys without decrypt returns no plaintext');

  const rerolled = await unkey.keys.rerollKey({ keyId, expiration: 60_000 });
  t.not(rerolled.data.key, key);
  t.equal((await unkey.keys.getKey({ keyId: rerolled.data.keyId, decrypt: true })).data.plaintext, rerolled.data.key,
    'the replacement of a recoverable key is recoverable too');
  t.equal((await unkey.keys.getKey({ keyId, decrypt: true })).data.plaintext, key, 'the original still decrypts during its grace period');
  t.equal((await unkey.keys.verifyKey({ key: rerolled.data.key })).data.valid, true);

  const reader = new Unkey({ rootKey: await h.createRootKey(['api.*.read_key', 'api.*.read_api']), serverURL, retryConfig: { strategy: 'none' } });
  await t.rejects(reader.keys.getKey({ keyId, decrypt: true }), errors.ForbiddenErrorResponse, 'decrypt needs decrypt_key');
  await t.rejects(reader.apis.listKeys({ apiId, decrypt: true }), errors.ForbiddenErrorResponse, 'listKeys decrypt needs decrypt_key');

  const { apiId: plainApiId } = await h.seedApi({ storeEncryptedKeys: false, name: 'not recoverable' });
  t.equal(await statusOf(unkey.keys.createKey({ apiId: plainApiId, recoverable: true })), 412,
    '412 when the key space does not store encrypted keys');
  t.equal((await h.db.query('SELECT `id` FROM `keys` WHERE `key_auth_id` = (SELECT `key_auth_id` FROM `apis` WHERE `id` = ?)', [plainApiId])).length, 0,
    'and no key was created');
}

t.test('recoverable keys through the SDK with an in-process Vault', async (t) => {
  const vault = createInProcessVault();
  t.teardown(() => vault.close());
  const h = (await startApiHarness(t, { vault }))!;
  await recoverableFlow(t, h);
});

t.test('recoverable keys through the SDK with a real `keygate vault` over Connect', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keygate-sdk-vault-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const bearerToken = 'sdk-vault-' + Math.random().toString(36).slice(2);
  const child = await startVaultChild(dataDir, { KEYGATE_VAULT_MASTER_KEYS: generateMasterKey(), KEYGATE_VAULT_BEARER_TOKEN: bearerToken });
  // Safety net when an assertion throws; the normal path stops it below and checks the exit code.
  t.teardown(() => child.stop());
  const vault: VaultClient = new RemoteVaultClient({ baseUrl: child.baseUrl, bearerToken });
  t.teardown(() => vault.close());
  t.same(await vault.liveness(), { status: 'ok' }, 'the child answers Liveness');
  const h = (await startApiHarness(t, { vault }))!;
  await recoverableFlow(t, h);
  t.ok(existsSync(join(dataDir, 'vault', 'keyring', h.workspaceId, 'LATEST')),
    'the data key of the workspace keyring lives in the child\'s data directory');

  const wrongToken = new RemoteVaultClient({ baseUrl: child.baseUrl, bearerToken: 'wrong' });
  t.teardown(() => wrongToken.close());
  const h2 = (await startApiHarness(t, { vault: wrongToken }))!;
  const unkey = new Unkey({ rootKey: await h2.createAdminRootKey(), serverURL: await h2.listen(), retryConfig: { strategy: 'none' } });
  const { apiId } = await h2.seedApi({ storeEncryptedKeys: true });
  const status = await statusOf(unkey.keys.createKey({ apiId, recoverable: true }));
  t.not(status, undefined, 'createKey fails when the Vault refuses the API');
  // The Vault refusing the API's own token is the API's server error, never the caller's 401.
  t.equal(status, 500, `a Vault that refuses the API's token is a server error, not the caller's 401 (got ${status})`);
  t.equal((await h2.db.query('SELECT `id` FROM `keys` WHERE `key_auth_id` = (SELECT `key_auth_id` FROM `apis` WHERE `id` = ?)', [apiId])).length, 0,
    'and no key was created without its encrypted copy');
  await wrongToken.close();
  await vault.close();
  t.equal(await child.stop(), 0, 'the vault child drains on SIGTERM and exits 0');
});

t.test('412 for every recoverable operation when no Vault is configured', async (t) => {
  const h = (await startApiHarness(t))!;
  const serverURL = await h.listen();
  const unkey = new Unkey({ rootKey: await h.createAdminRootKey(), serverURL, retryConfig: { strategy: 'none' } });
  const { apiId } = await h.seedApi({ storeEncryptedKeys: true });
  t.equal(await statusOf(unkey.keys.createKey({ apiId, recoverable: true })), 412, 'createKey recoverable');
  const { keyId } = (await unkey.keys.createKey({ apiId })).data;
  t.equal(await statusOf(unkey.keys.getKey({ keyId, decrypt: true })), 412, 'getKey decrypt');
  t.equal(await statusOf(unkey.apis.listKeys({ apiId, decrypt: true })), 412, 'listKeys decrypt');
  // A key made recoverable while a Vault was configured, now served by a node without one.
  await insertEncryptedKey(h.db, { keyId, workspaceId: h.workspaceId, encrypted: 'AAAA', encryptionKeyId: 'dek_gone', createdAtMs: h.clock.nowMs() });
  t.equal(await statusOf(unkey.keys.rerollKey({ keyId, expiration: 0 })), 412, 'rerollKey of a recoverable key');
  t.equal((await unkey.keys.getKey({ keyId })).data.keyId, keyId, 'reading without decrypt still works');
});

/** Starts `keygate vault --port 0` as a child process and waits for its listening line. */
async function startVaultChild(dataDir: string, env: Record<string, string>): Promise<{ baseUrl: string; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, [keygatePath, 'vault', '--port', '0', '--data-dir', dataDir], {
    env: { ...process.env, ...env, KEYGATE_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stopping: Promise<number | null> | undefined;
  const stop = (): Promise<number | null> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), VAULT_STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    })();
    return stopping;
  };
  const lines = createInterface({ input: child.stdout });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('vault did not start: ' + stderr)), VAULT_START_TIMEOUT_MS);
      child.once('exit', () => { clearTimeout(timer); reject(new Error('vault exited: ' + stderr)); });
      lines.once('line', (text) => { clearTimeout(timer); resolve(text); });
    });
    const match = /^vault listening on (http:\/\/127\.0\.0\.1:\d+) \(storage: disk\)$/.exec(line);
    if (match === null) throw new Error('unexpected first line: ' + line);
    return { baseUrl: match[1]!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
