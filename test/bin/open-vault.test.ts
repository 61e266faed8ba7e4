/**
 * `openVault`: one reading of `vault.*` for every command. Remote with vault.url (a bearer token
 * required), in process over vault.masterKeys + vault.storage (relative directories from the
 * working directory; what it encrypts survives a reopen), none without either; `memory:` is
 * refused where ciphertexts must outlive the process; close is idempotent.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openVault } from '../../bin/open-vault.ts';
import { loadConfig } from '../../core/config/load-config.ts';
import { generateMasterKey } from '../../vault/keyring/master-keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'keygate-open-vault-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function config(env: Record<string, string>) {
  return loadConfig({ env: { KEYGATE_CONFIG: '', ...env }, argv: [], cwd: dir });
}

t.test('no vault.url and no master keys: no Vault', async (t) => {
  t.equal(await openVault(config({}), dir), undefined);
});

t.test('vault.url without a bearer token is a config error; with one, a remote client', async (t) => {
  await t.rejects(openVault(config({ KEYGATE_VAULT_URL: 'http://127.0.0.1:1' }), dir), { code: 'err:keygate:config:invalid', message: /vault\.bearerToken/ });
  const remote = await openVault(config({ KEYGATE_VAULT_URL: 'http://127.0.0.1:1', KEYGATE_VAULT_BEARER_TOKEN: 'token' }), dir);
  t.equal(remote?.kind, 'remote');
  t.match(remote?.summary, /^vault: remote http:\/\/127\.0\.0\.1:1/);
  t.notMatch(remote?.summary, /token/, 'the token is not in the summary');
  await remote?.close();
  await remote?.close();
});

t.test('master keys: an in-process Vault on the storage directory, relative to the working directory', async (t) => {
  const env = { KEYGATE_VAULT_MASTER_KEYS: generateMasterKey(), KEYGATE_VAULT_STORAGE: 'vault-relative' };
  const first = await openVault(config(env), dir);
  t.equal(first?.kind, 'in-process');
  t.match(first?.summary, /storage: disk/);
  const { encrypted } = await first!.client.encrypt({ keyring: 'ws_open', data: 'secret' });
  await first!.close();
  await first!.close();
  t.ok(existsSync(join(dir, 'vault-relative', 'keyring', 'ws_open')), 'the data key is stored under the working directory');
  const second = await openVault(config(env), dir);
  t.teardown(() => second?.close());
  t.equal((await second!.client.decrypt({ keyring: 'ws_open', encrypted })).plaintext, 'secret', 'a reopened Vault decrypts it');
});

t.test('memory: storage is refused when ciphertexts must outlive the process', async (t) => {
  const env = { KEYGATE_VAULT_MASTER_KEYS: generateMasterKey(), KEYGATE_VAULT_STORAGE: 'memory:' };
  await t.rejects(openVault(config(env), dir, { requireDurableStorage: true }), { code: 'err:keygate:config:invalid', message: /memory:/ });
  const memory = await openVault(config(env), dir);
  t.equal(memory?.kind, 'in-process');
  await memory?.close();
});
