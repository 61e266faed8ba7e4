/**
 * `keygate vault` end to end: the real CLI in a child process, serving on a loopback port,
 * called with the remote client; `vault keygen`, `vault roll` and a restart on the same data
 * directory.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { RemoteVaultClient } from '../../core/vault-client.ts';

const keygatePath = new URL('../../bin/keygate.ts', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'keygate-vault-cli-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));

function runOnce(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [keygatePath, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const masterKey = runOnce(['vault', 'keygen']).stdout.trim();
const bearerToken = 'cli-token-' + Math.random().toString(36).slice(2);
const env = { KEYGATE_VAULT_MASTER_KEYS: masterKey, KEYGATE_VAULT_BEARER_TOKEN: bearerToken, KEYGATE_LOG_LEVEL: 'silent' };

async function startVault(): Promise<{ baseUrl: string; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, [keygatePath, 'vault', '--port', '0', '--data-dir', dataDir], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('vault did not start: ' + stderr)), 20_000);
    child.once('exit', () => reject(new Error('vault exited: ' + stderr)));
    createInterface({ input: child.stdout }).once('line', (text) => { clearTimeout(timer); resolve(text); });
  }).catch(async (err) => { await stop(); throw err; });
  const match = /^vault listening on (http:\/\/127\.0\.0\.1:\d+) \(storage: disk\)$/.exec(line);
  if (!match) {
    await stop();
    throw new Error('unexpected first line: ' + line);
  }
  return { baseUrl: match[1]!, stop };
}

t.test('keygen prints a master key in config form, different every time', async (t) => {
  t.match(masterKey, /^[A-Za-z0-9+/]+={0,2}$/);
  t.not(runOnce(['vault', 'keygen']).stdout.trim(), masterKey);
});

t.test('refuses to start without master keys or a bearer token', async (t) => {
  const noKeys = runOnce(['vault', '--port', '0', '--data-dir', dataDir], { KEYGATE_VAULT_BEARER_TOKEN: 'x', KEYGATE_VAULT_MASTER_KEYS: '' });
  t.equal(noKeys.status, 1);
  t.match(noKeys.stderr, /vault\.masterKeys is required/);
  const noToken = runOnce(['vault', '--port', '0', '--data-dir', dataDir], { KEYGATE_VAULT_MASTER_KEYS: masterKey });
  t.equal(noToken.status, 1);
  t.match(noToken.stderr, /vault\.bearerToken is required/);
  t.notMatch(noToken.stderr + noToken.stdout, masterKey.slice(0, 16), 'the master key is never printed');
});

t.test('serves Connect on --port, persists data keys in <data-dir>/vault, survives a restart, rolls', async (t) => {
  const first = await startVault();
  let client = new RemoteVaultClient({ baseUrl: first.baseUrl, bearerToken });
  let encrypted: string;
  let keyId: string;
  try {
    ({ encrypted, keyId } = await client.encrypt({ keyring: 'ws_cli', data: 'persisted secret' }));
    t.equal((await client.decrypt({ keyring: 'ws_cli', encrypted })).plaintext, 'persisted secret');
  } finally {
    await client.close();
    t.equal(await first.stop(), 0, 'SIGTERM drains and exits 0');
  }
  t.same(readdirSync(join(dataDir, 'vault', 'keyring', 'ws_cli')).sort(), ['LATEST', keyId]);

  const rolled = runOnce(['vault', 'roll', 'ws_cli', '--data-dir', dataDir], env);
  t.equal(rolled.status, 0, rolled.stderr);
  const newKeyId = /new data key (dek_\w+)/.exec(rolled.stdout)?.[1];
  t.ok(newKeyId);

  const second = await startVault();
  client = new RemoteVaultClient({ baseUrl: second.baseUrl, bearerToken });
  try {
    t.equal((await client.decrypt({ keyring: 'ws_cli', encrypted })).plaintext, 'persisted secret', 'old payload decrypts after a restart');
    t.equal((await client.encrypt({ keyring: 'ws_cli', data: 'x' })).keyId, newKeyId, 'new encryptions use the rolled key');
    const moved = await client.reEncrypt({ keyring: 'ws_cli', encrypted });
    t.equal(moved.keyId, newKeyId);
  } finally {
    await client.close();
    t.equal(await second.stop(), 0);
  }
  const rewrap = runOnce(['vault', 'rewrap', '--data-dir', dataDir], env);
  t.equal(rewrap.status, 0);
  t.match(rewrap.stdout, /re-wrapped 0/, 'nothing to re-wrap under the same master key');
});
