/**
 * `keygate certificates import` (run in process through the dispatcher): the private key is
 * stored only as a Vault payload under the workspace's keyring, and a Frontline in database mode
 * that decrypts through the real Vault (same master key and storage) completes a TLS handshake
 * with the imported certificate and proxies the request. Also: the remote Vault path, renewal,
 * and every refusal stores nothing.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { runCli } from '../../../bin/cli.ts';
import type { CliIo } from '../../../bin/command.ts';
import { openDatabase } from '../../../core/db/database.ts';
import { newId } from '../../../core/id.ts';
import { Metrics } from '../../../core/metrics.ts';
import { createDatabaseCertificateLoader, DatabaseRouteStore } from '../../../proxy/frontline/database-route-store.ts';
import { Frontline } from '../../../proxy/frontline/frontline.ts';
import { CertificateStore } from '../../../proxy/tls/certificate-store.ts';
import { createInProcessVault } from '../../../vault/in-process-vault.ts';
import { generateMasterKey } from '../../../vault/keyring/master-keys.ts';
import { createVaultHttpServer } from '../../../vault/service/vault-http-server.ts';
import { openStorage } from '../../../vault/storage/open-storage.ts';
import { createTestCertificate } from '../../helpers/certificates.ts';
import type { TestCertificate } from '../../helpers/certificates.ts';
import { handshake, httpsRequest, startEchoOrigin } from '../../proxy/frontline/helpers.ts';
import type { EchoBody } from '../../proxy/frontline/helpers.ts';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[], env: Record<string, string>, cwd: string): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (text) => { stdout += text; }, stderr: (text) => { stderr += text; }, env, cwd };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

/** The base64 body of a PEM key, the part that must never appear anywhere in clear. */
function keyBody(pem: string): string {
  return pem.split('\n').filter((line) => line !== '' && !line.startsWith('-----')).join('');
}

/** The longest base64 line of the key: enough to recognise it inside any file. */
function keyFingerprintLine(pem: string): string {
  return pem.split('\n').filter((line) => !line.startsWith('-----')).sort((a, b) => b.length - a.length)[0]!;
}

/** A temporary working directory with a SQLite database and a Vault storage directory. */
function workspaceDir(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-certs-import-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const masterKey = generateMasterKey();
  const vaultDir = join(dir, 'vault-data');
  const dbFile = join(dir, 'keygate.db');
  const env = { KEYGATE_VAULT_MASTER_KEYS: masterKey, KEYGATE_VAULT_STORAGE: vaultDir, KEYGATE_LOG_LEVEL: 'silent' };
  const certs: TestCertificate[] = [];
  t.teardown(() => certs.forEach((cert) => cert.cleanup()));
  return {
    dir, masterKey, vaultDir, dbFile, env,
    cert(hostnames: string[], keyType?: 'ec' | 'rsa') {
      const cert = createTestCertificate({ hostnames, ...(keyType === undefined ? {} : { keyType }) });
      certs.push(cert);
      return cert;
    },
    importArgs(hostname: string, cert: TestCertificate, workspace = 'ws_certs', extra: string[] = []) {
      return ['certificates', 'import', '--hostname', hostname, '--cert', cert.certFile, '--key', cert.keyFile, '--workspace', workspace, '--db', dbFile, ...extra];
    },
  };
}

async function certificateRows(dbFile: string) {
  const db = await openDatabase(dbFile);
  try {
    return await db.query<{ id: string; hostname: string; workspace_id: string; certificate: string; encrypted_private_key: string; updated_at_m: unknown }>(
      'SELECT `id`, `hostname`, `workspace_id`, `certificate`, `encrypted_private_key`, `updated_at_m` FROM `certificates` ORDER BY `hostname`',
    );
  } finally {
    await db.close();
  }
}

t.test('an imported certificate is served by a Frontline in database mode that decrypts through the Vault', async (t) => {
  const w = workspaceDir(t);
  const exact = w.cert(['shop.import.test']);
  const wildcard = w.cert(['*.wild.import.test'], 'rsa');

  const first = await run(w.importArgs('Shop.Import.Test', exact), w.env, w.dir);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, /^imported certificate cert_\w+ for shop\.import\.test \(workspace ws_certs, valid until \d{4}-/);
  const second = await run(w.importArgs('*.wild.import.test', wildcard), w.env, w.dir);
  t.equal(second.code, 0, second.stderr);

  for (const [cert, output] of [[exact, first], [wildcard, second]] as const) {
    t.notOk((output.stdout + output.stderr).includes(keyFingerprintLine(cert.key)), 'the key is never printed');
  }
  const rows = await certificateRows(w.dbFile);
  t.same(rows.map((row) => [row.hostname, row.workspace_id]), [['*.wild.import.test', 'ws_certs'], ['shop.import.test', 'ws_certs']]);
  for (const row of rows) {
    t.notMatch(row.certificate, /PRIVATE KEY/, 'the certificate column holds certificates only');
    t.notMatch(row.encrypted_private_key, /PRIVATE KEY|-----/, 'the key column holds a Vault payload, not PEM');
  }
  // Nothing on disk holds the key in clear: not the database, not the Vault's storage.
  const stored = [readFileSync(w.dbFile)];
  for (const entry of readdirSync(w.vaultDir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) stored.push(readFileSync(join(entry.parentPath, entry.name)));
  }
  t.ok(stored.length >= 3, 'the database and the keyring\'s data key objects were written');
  for (const cert of [exact, wildcard]) {
    const line = keyFingerprintLine(cert.key);
    const der = Buffer.from(keyBody(cert.key), 'base64');
    const pkcs8 = createPrivateKey(cert.key).export({ type: 'pkcs8', format: 'der' });
    t.ok(stored.every((bytes) => !bytes.includes(line) && !bytes.includes(der) && !bytes.includes(pkcs8)), 'no stored file contains the key in any form');
  }

  // Frontline in database mode, with the real Vault on the same master key and storage.
  const storage = await openStorage(w.vaultDir);
  t.teardown(() => storage.close());
  const vault = createInProcessVault({ masterKeys: [w.masterKey], storage });
  const db = await openDatabase(w.dbFile);
  t.teardown(() => db.close());
  const origin = await startEchoOrigin('imported');
  t.teardown(() => origin.close());
  for (const host of ['shop.import.test', 'api.wild.import.test']) {
    await db.execute(
      'INSERT INTO `frontline_routes` (`id`, `host`, `upstreams`, `peers`, `protocol`, `created_at_m`) VALUES (?, ?, ?, ?, ?, ?)',
      [newId('route'), host, JSON.stringify([origin.url]), '[]', 'http1', Date.now()],
    );
  }
  const loaderFailures: string[] = [];
  const frontline = new Frontline({
    routes: new DatabaseRouteStore({ db }),
    certificates: new CertificateStore({
      loader: createDatabaseCertificateLoader(db, async (encrypted, keyring) => (await vault.decrypt({ keyring, encrypted })).plaintext),
      onError: (fault) => loaderFailures.push(fault.code),
    }),
    metrics: new Metrics(),
  });
  const { https } = await frontline.listen({ httpsPort: 0 });
  t.teardown(() => frontline.close({ graceMs: 100 }));

  t.equal((await handshake(https.port, 'shop.import.test')).fingerprint, new X509Certificate(exact.cert).fingerprint256, 'the exact host gets its imported certificate');
  t.equal((await handshake(https.port, 'api.wild.import.test')).fingerprint, new X509Certificate(wildcard.cert).fingerprint256, 'a wildcard import covers its subdomains');
  const response = await httpsRequest(https.port, 'shop.import.test', '/through-frontline');
  t.equal(response.status, 200);
  t.equal((JSON.parse(response.body) as EchoBody).url, '/through-frontline');
  t.same(loaderFailures, [], 'every stored key decrypted');

  // The payload is bound to the workspace keyring: decrypting it as another workspace fails.
  await t.rejects(vault.decrypt({ keyring: 'ws_other', encrypted: rows[0]!.encrypted_private_key }), { code: /^err:vault:/ });
});

t.test('importing again for the same host and workspace replaces the certificate; another workspace is refused', async (t) => {
  const w = workspaceDir(t);
  const original = w.cert(['renew.import.test']);
  const renewed = w.cert(['renew.import.test']);
  t.equal((await run(w.importArgs('renew.import.test', original), w.env, w.dir)).code, 0);
  const replaced = await run(w.importArgs('renew.import.test', renewed), w.env, w.dir);
  t.equal(replaced.code, 0, replaced.stderr);
  t.match(replaced.stdout, /^replaced certificate/);
  const rows = await certificateRows(w.dbFile);
  t.equal(rows.length, 1);
  t.equal(new X509Certificate(rows[0]!.certificate).fingerprint256, new X509Certificate(renewed.cert).fingerprint256);
  t.not(rows[0]!.updated_at_m, null);

  const taken = await run(w.importArgs('renew.import.test', w.cert(['renew.import.test']), 'ws_intruder'), w.env, w.dir);
  t.equal(taken.code, 1);
  t.match(taken.stderr, /belongs to another workspace/);
  const after = await certificateRows(w.dbFile);
  t.same(after, rows, 'the row is untouched');
});

t.test('a remote Vault (vault.url + bearer token) encrypts the key', async (t) => {
  const w = workspaceDir(t);
  const vault = createInProcessVault();
  const bearerToken = 'certs-' + Math.random().toString(36).slice(2);
  const server = createVaultHttpServer({ service: vault, bearerToken });
  const address = await server.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => server.close());
  const cert = w.cert(['remote.import.test']);
  const env = { KEYGATE_VAULT_URL: `http://127.0.0.1:${address.port}`, KEYGATE_VAULT_BEARER_TOKEN: bearerToken };

  const wrongToken = await run(w.importArgs('remote.import.test', cert), { ...env, KEYGATE_VAULT_BEARER_TOKEN: 'wrong' }, w.dir);
  t.equal(wrongToken.code, 1, 'a Vault that refuses the token fails the import');
  const ok = await run(w.importArgs('remote.import.test', cert), env, w.dir);
  t.equal(ok.code, 0, ok.stderr);
  const [row] = await certificateRows(w.dbFile);
  const { plaintext } = await vault.decrypt({ keyring: 'ws_certs', encrypted: row!.encrypted_private_key });
  t.same(createPrivateKey(plaintext).export({ type: 'pkcs8', format: 'der' }), createPrivateKey(cert.key).export({ type: 'pkcs8', format: 'der' }),
    'the payload decrypts to the imported key');
});

t.test('a combined PEM file: only its certificate blocks are stored', async (t) => {
  const w = workspaceDir(t);
  const cert = w.cert(['combined.import.test']);
  const combinedFile = join(w.dir, 'combined.pem');
  writeFileSync(combinedFile, cert.key + cert.cert);
  const result = await run(['certificates', 'import', '--hostname', 'combined.import.test', '--cert', combinedFile, '--key', cert.keyFile, '--workspace', 'ws_certs', '--db', w.dbFile], w.env, w.dir);
  t.equal(result.code, 0, result.stderr);
  const [row] = await certificateRows(w.dbFile);
  t.notOk(row!.certificate.includes(keyFingerprintLine(cert.key)), 'the key that sat in the certificate file is not stored in clear');
  t.equal(new X509Certificate(row!.certificate).fingerprint256, new X509Certificate(cert.cert).fingerprint256);
});

t.test('refusals exit non-zero, name the problem without the key, and store nothing', async (t) => {
  const w = workspaceDir(t);
  const cert = w.cert(['refuse.import.test']);
  const other = w.cert(['refuse.import.test']);
  const garbage = join(w.dir, 'garbage.pem');
  writeFileSync(garbage, 'not a pem file');
  const cases: Array<{ name: string; args: string[]; env?: Record<string, string>; code: number; stderr: RegExp }> = [
    { name: 'a key of another certificate', args: ['--hostname', 'refuse.import.test', '--cert', cert.certFile, '--key', other.keyFile, '--workspace', 'ws_certs'], code: 1, stderr: /does not belong to the certificate/ },
    { name: 'a host name the certificate does not cover', args: ['--hostname', 'elsewhere.import.test', '--cert', cert.certFile, '--key', cert.keyFile, '--workspace', 'ws_certs'], code: 1, stderr: /does not cover elsewhere\.import\.test/ },
    { name: 'a wildcard the certificate does not list', args: ['--hostname', '*.import.test', '--cert', cert.certFile, '--key', cert.keyFile, '--workspace', 'ws_certs'], code: 1, stderr: /does not cover/ },
    { name: 'a key file that is not a key', args: ['--hostname', 'refuse.import.test', '--cert', cert.certFile, '--key', garbage, '--workspace', 'ws_certs'], code: 1, stderr: /not an unencrypted PEM private key/ },
    { name: 'a certificate file that is not one', args: ['--hostname', 'refuse.import.test', '--cert', cert.keyFile, '--key', cert.keyFile, '--workspace', 'ws_certs'], code: 1, stderr: /no PEM CERTIFICATE block/ },
    { name: 'a missing file', args: ['--hostname', 'refuse.import.test', '--cert', join(w.dir, 'absent.pem'), '--key', cert.keyFile, '--workspace', 'ws_certs'], code: 1, stderr: /cannot read the certificate file .*ENOENT/ },
    { name: 'no Vault configured', args: ['--hostname', 'refuse.import.test', '--cert', cert.certFile, '--key', cert.keyFile, '--workspace', 'ws_certs'], env: { KEYGATE_LOG_LEVEL: 'silent' }, code: 1, stderr: /needs a Vault/ },
    { name: 'a memory Vault, whose data key would die with the process', args: ['--hostname', 'refuse.import.test', '--cert', cert.certFile, '--key', cert.keyFile, '--workspace', 'ws_certs'], env: { ...w.env, KEYGATE_VAULT_STORAGE: 'memory:' }, code: 1, stderr: /memory:/ },
    { name: 'a missing flag', args: ['--hostname', 'refuse.import.test', '--cert', cert.certFile, '--workspace', 'ws_certs'], code: 2, stderr: /needs --key/ },
    { name: 'a bad host name', args: ['--hostname', 'a..b', '--cert', cert.certFile, '--key', cert.keyFile, '--workspace', 'ws_certs'], code: 2, stderr: /is not a host name/ },
    { name: 'a workspace that is not an id', args: ['--hostname', 'refuse.import.test', '--cert', cert.certFile, '--key', cert.keyFile, '--workspace', '../etc'], code: 2, stderr: /--workspace must be a workspace id/ },
  ];
  for (const testCase of cases) {
    const result = await run(['certificates', 'import', ...testCase.args, '--db', w.dbFile], testCase.env ?? w.env, w.dir);
    t.equal(result.code, testCase.code, `${testCase.name}: exit ${testCase.code}`);
    t.match(result.stderr, testCase.stderr, testCase.name);
    t.notOk((result.stdout + result.stderr).includes(keyFingerprintLine(cert.key)) || (result.stdout + result.stderr).includes(keyFingerprintLine(other.key)), `${testCase.name}: no key material in the output`);
  }
  const db = await openDatabase(w.dbFile);
  try {
    const tables = await db.query<{ name: string }>("SELECT `name` FROM `sqlite_master` WHERE `type` = 'table' AND `name` = 'certificates'");
    const count = tables.length === 0 ? 0 : (await db.query('SELECT `id` FROM `certificates`')).length;
    t.equal(count, 0, 'nothing was stored');
  } finally {
    await db.close();
  }
  const bare = await run(['certificates'], w.env, w.dir);
  t.equal(bare.code, 2, 'the group alone is a usage error');
});
