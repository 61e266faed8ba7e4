/**
 * `keygate frontline` as a real process: `--workers 2` serves one ingress from two threads on
 * shared ports (both answer, SIGHUP reloads each, /metrics sums them, SIGTERM exits 0), and the
 * database mode decrypts certificate keys with an in-process Vault (vault.masterKeys +
 * vault.storage), not only a remote one.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import type { Test } from 'tap';
import { runCli } from '../../../bin/cli.ts';
import type { CliIo } from '../../../bin/command.ts';
import { openDatabase } from '../../../core/db/database.ts';
import { newId } from '../../../core/id.ts';
import { generateMasterKey } from '../../../vault/keyring/master-keys.ts';
import { createTestCertificate } from '../../helpers/certificates.ts';
import { request } from '../../proxy/helpers.ts';
import { handshake, httpsRequest, startEchoOrigin, tempDir } from '../../proxy/frontline/helpers.ts';
import type { EchoBody } from '../../proxy/frontline/helpers.ts';

const keygatePath = new URL('../../../bin/keygate.ts', import.meta.url).pathname;
/** Bound on requests sent while waiting for the second worker to answer one. */
const MAX_SPREAD_REQUESTS = 200;

const files = tempDir();
t.teardown(files.cleanup);

interface RunningCli {
  stdoutLines: string[];
  stderr: () => string;
  signal(name: NodeJS.Signals): void;
  exited: Promise<number | null>;
  /** The first stdout line that matches, waiting for it (bounded). */
  line(pattern: RegExp): Promise<RegExpExecArray>;
}

function startCli(t: Test, args: readonly string[], env: Record<string, string>): RunningCli {
  const child = spawn(process.execPath, [keygatePath, 'frontline', ...args], {
    env: { ...process.env, KEYGATE_CONFIG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: files.dir,
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk; });
  const stdoutLines: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdoutLines.push(line);
    for (const wake of waiters) wake();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  void exited.then(() => clearTimeout(killer));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    stdoutLines, stderr: () => stderr, signal: (name) => child.kill(name), exited,
    async line(pattern) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        for (const line of stdoutLines) {
          const match = pattern.exec(line);
          if (match !== null) return match;
        }
        if (child.exitCode !== null) throw new Error(`frontline exited: ${stderr}`);
        if (Date.now() > deadline) throw new Error(`no line ${pattern} in ${stdoutLines.join('\n')}\n${stderr}`);
        await new Promise<void>((resolve) => {
          const wake = (): void => { waiters.delete(wake); clearTimeout(timer); resolve(); };
          const timer = setTimeout(wake, 200);
          waiters.add(wake);
        });
      }
    },
  };
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Worker ids of the access-log lines (`"msg":"request"`) printed so far. */
function answeringWorkers(lines: readonly string[]): Set<number> {
  const workers = new Set<number>();
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; worker?: number };
    if (entry.msg === 'request' && typeof entry.worker === 'number') workers.add(entry.worker);
  }
  return workers;
}

t.test('--workers 2: both threads serve the shared port, SIGHUP reloads each, /metrics sums them, SIGTERM exits 0', async (t) => {
  const certDir = join(files.dir, 'certs');
  mkdirSync(certDir, { recursive: true });
  createTestCertificate({ hostnames: ['workers.example.test'], dir: certDir, name: 'workers' });
  const first = await startEchoOrigin('first');
  const second = await startEchoOrigin('second');
  t.teardown(async () => { await first.close(); await second.close(); });
  const ingress = (upstream: string) => ({
    frontline: {
      httpsPort: 0, httpPort: 0, metricsPort: 0,
      certificates: [{ certFile: 'certs/workers.pem', keyFile: 'certs/workers.key' }],
      routes: [{ host: 'workers.example.test', upstreams: [upstream] }],
    },
  });
  const file = files.write('workers.json', ingress(first.url));
  const cli = startCli(t, ['--config', file, '--workers', '2', '--log-level', 'info'], {});
  const listening = await cli.line(/frontline listening on https:\/\/127\.0\.0\.1:(\d+) and http:\/\/127\.0\.0\.1:(\d+) \(1 routes, 2 worker threads\)/);
  const httpsPort = Number(listening[1]);
  const httpPort = Number(listening[2]);
  const metricsPort = Number((await cli.line(/frontline metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);

  // Every request on a fresh connection: the kernel picks a worker per connection.
  let sent = 0;
  while (answeringWorkers(cli.stdoutLines).size < 2) {
    if (sent >= MAX_SPREAD_REQUESTS) throw new Error(`only workers ${[...answeringWorkers(cli.stdoutLines)]} answered ${sent} requests`);
    const response = await httpsRequest(httpsPort, 'workers.example.test', `/spread/${sent}`);
    if (response.status !== 200) throw new Error(`request ${sent} answered ${response.status}`);
    sent++;
    // Access-log lines arrive asynchronously from the worker threads: let them in now and then.
    if (sent % 10 === 0) await until(() => cli.stdoutLines.filter((line) => line.includes('"msg":"request"')).length >= sent, 'access log lines');
  }
  t.equal(answeringWorkers(cli.stdoutLines).size, 2, `two different worker threads answered (after ${sent} requests)`);
  await until(() => cli.stdoutLines.filter((line) => line.includes('"msg":"request"')).length >= sent, 'every access log line');
  const redirect = await request(`http://127.0.0.1:${httpPort}/x`, { headers: { host: 'workers.example.test' } });
  t.equal(redirect.status, 308, 'the shared HTTP listener redirects');

  const metrics = await request(`http://127.0.0.1:${metricsPort}/metrics`);
  t.equal(metrics.status, 200);
  const counted = metrics.body.split('\n')
    .filter((line) => line.startsWith('keygate_frontline_requests_total{'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  t.equal(counted, sent, 'the metrics listener sums the requests of both workers');

  // SIGHUP goes to every worker: each reports its reload, and both then use the new upstream.
  files.write('workers.json', ingress(second.url));
  cli.signal('SIGHUP');
  await until(() => new Set([...cli.stderr().matchAll(/frontline worker (\d+): configuration reloaded/g)].map((match) => match[1])).size === 2, 'a reload report from each worker');
  const origins = new Set<string>();
  for (let index = 0; index < 20; index++) {
    origins.add((JSON.parse((await httpsRequest(httpsPort, 'workers.example.test', '/after-reload')).body) as EchoBody).origin);
  }
  t.same([...origins], ['second'], 'every worker uses the reloaded upstream');

  cli.signal('SIGTERM');
  t.equal(await cli.exited, 0, 'SIGTERM drains every worker and exits 0');
  t.match(cli.stderr(), /SIGTERM received, draining/);
  await t.rejects(httpsRequest(httpsPort, 'workers.example.test', '/x'), 'nothing listens after the drain');
});

t.test('--workers 0 is refused as a config error', async (t) => {
  let stderr = '';
  const io: CliIo = { stdout: () => {}, stderr: (text) => { stderr += text; }, env: { KEYGATE_LOG_LEVEL: 'silent' }, cwd: files.dir };
  const file = files.write('zero.json', { frontline: { httpsPort: 0, httpPort: 0, routes: [] } });
  t.equal(await runCli(['frontline', '--config', file, '--workers', '0'], io), 1);
  t.match(stderr, /frontline\.workers/);
});

t.test('--db with vault.masterKeys: certificate keys are decrypted by an in-process Vault', async (t) => {
  const dir = join(files.dir, 'db-mode');
  mkdirSync(dir);
  const cert = createTestCertificate({ hostnames: ['db.workers.example.test'], dir, name: 'db' });
  const dbFile = join(dir, 'keygate.db');
  const env = { KEYGATE_VAULT_MASTER_KEYS: generateMasterKey(), KEYGATE_VAULT_STORAGE: join(dir, 'vault'), KEYGATE_LOG_LEVEL: 'silent' };
  let importErr = '';
  const io: CliIo = { stdout: () => {}, stderr: (text) => { importErr += text; }, env, cwd: dir };
  const imported = await runCli(['certificates', 'import', '--hostname', 'db.workers.example.test', '--cert', cert.certFile, '--key', cert.keyFile, '--workspace', 'ws_db', '--db', dbFile], io);
  t.equal(imported, 0, importErr);
  const origin = await startEchoOrigin('db-origin');
  t.teardown(() => origin.close());
  const db = await openDatabase(dbFile);
  try {
    await db.execute(
      'INSERT INTO `frontline_routes` (`id`, `host`, `upstreams`, `peers`, `protocol`, `created_at_m`) VALUES (?, ?, ?, ?, ?, ?)',
      [newId('route'), 'db.workers.example.test', JSON.stringify([origin.url]), '[]', 'http1', Date.now()],
    );
  } finally {
    await db.close();
  }

  const cli = startCli(t, ['--db', dbFile, '--frontline-https-port', '0', '--frontline-http-port', '0'], env);
  const listening = await cli.line(/frontline listening on https:\/\/127\.0\.0\.1:(\d+) .*vault: in process \(storage: disk\)/);
  const httpsPort = Number(listening[1]);
  t.equal((await handshake(httpsPort, 'db.workers.example.test')).fingerprint, new X509Certificate(cert.cert).fingerprint256, 'the imported certificate is served');
  const response = await httpsRequest(httpsPort, 'db.workers.example.test', '/from-db');
  t.equal(response.status, 200);
  t.equal((JSON.parse(response.body) as EchoBody).origin, 'db-origin');
  cli.signal('SIGTERM');
  t.equal(await cli.exited, 0);
  t.notMatch(cli.stderr(), /cannot be decrypted/);
});
