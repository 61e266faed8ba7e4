import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import tls from 'node:tls';
import { request, startOrigin } from '../helpers.ts';
import type { EchoBody } from './helpers.ts';
import { httpsRequest, startEchoOrigin, tempDir } from './helpers.ts';
import { createTestCertificate } from '../../helpers/certificates.ts';

const keygatePath = new URL('../../../bin/keygate.ts', import.meta.url).pathname;
const env = { ...process.env, KEYGATE_LOG_LEVEL: 'silent', KEYGATE_CONFIG: '' };

const files = tempDir();
mkdirSync(join(files.dir, 'certs'));
createTestCertificate({ hostnames: ['cli.example.test'], dir: join(files.dir, 'certs'), name: 'cli' });
t.teardown(files.cleanup);

interface RunningFrontline {
  httpsPort: number;
  httpPort: number;
  lines: string[];
  stderr: () => string;
  signal(name: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

async function startCli(args: readonly string[], extraEnv: Record<string, string> = {}): Promise<RunningFrontline> {
  const child = spawn(process.execPath, [keygatePath, 'frontline', ...args], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const stderrLines: string[] = [];
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk;
    stderrLines.push(...chunk.toString().split('\n').filter((line) => line !== ''));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  void exited.then(() => clearTimeout(killer));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', () => reject(new Error(`frontline exited early: ${stderr}`)));
  });
  const match = /https:\/\/127\.0\.0\.1:(\d+)/.exec(first);
  if (match === null) throw new Error(`unexpected first line: ${first}`);
  const httpMatch = /http:\/\/127\.0\.0\.1:(\d+)/.exec(first);
  return { httpsPort: Number(match[1]), httpPort: httpMatch === null ? 0 : Number(httpMatch[1]), lines: stderrLines, stderr: () => stderr, signal: (name) => child.kill(name), exited };
}

t.test('an invalid ingress file fails at start with the path of the bad field', async (t) => {
  const file = files.write('bad.json', { frontline: { routes: [{ host: 'cli.example.test', upstreams: ['http://127.0.0.1:1', 'ftp://x'] }] } });
  const result = spawnSync(process.execPath, [keygatePath, 'frontline', '--config', file], { env, encoding: 'utf8', timeout: 20_000 });
  t.equal(result.status, 1);
  t.match(result.stderr, /frontline\.routes\[0\]\.upstreams\[1\]/);
});

t.test('keygate frontline serves the ingress file, reloads on SIGHUP and drains on SIGTERM', async (t) => {
  const origin = await startEchoOrigin('first');
  const replacement = await startEchoOrigin('second');
  // An origin that answers only when told, to hold a request in flight across SIGTERM.
  let release: (() => void) | undefined;
  let arrived!: () => void;
  const slowArrived = new Promise<void>((resolve) => { arrived = resolve; });
  const slow = await startOrigin((_req, res) => {
    release = () => res.end('slow done');
    arrived();
  });
  const slowUrl = slow.url;
  t.teardown(async () => { await origin.close(); await replacement.close(); await slow.close(); });

  const ingress = (upstream: string) => ({
    frontline: {
      httpsPort: 0, httpPort: 0,
      certificates: [{ certFile: 'certs/cli.pem', keyFile: 'certs/cli.key' }],
      routes: [{ host: 'cli.example.test', upstreams: [upstream] }, { host: 'slow.cli.example.test', upstreams: [slowUrl] }],
    },
  });
  const file = files.write('ingress.json', ingress(origin.url));
  const running = await startCli(['--config', file]);
  const first = await httpsRequest(running.httpsPort, 'cli.example.test', '/x');
  t.equal((JSON.parse(first.body) as EchoBody).origin, 'first');

  // SIGHUP: re-read (watching is on too; either way the new upstream must be used).
  files.write('ingress.json', ingress(replacement.url));
  running.signal('SIGHUP');
  const deadline = Date.now() + 10_000;
  let origin2 = '';
  while (origin2 !== 'second') {
    if (Date.now() > deadline) throw new Error(`no reload: ${running.stderr()}`);
    origin2 = (JSON.parse((await httpsRequest(running.httpsPort, 'cli.example.test', '/x')).body) as EchoBody).origin;
  }
  t.pass('the new upstream is used after SIGHUP');
  t.match(running.stderr(), /configuration reloaded/);

  // SIGTERM with a request in flight: it completes, then the process exits 0.
  const inFlight = httpsRequest(running.httpsPort, 'cli.example.test', '/slow', { headers: { host: 'slow.cli.example.test' } });
  await slowArrived;
  running.signal('SIGTERM');
  const draining = Date.now() + 10_000;
  while (!running.stderr().includes('draining')) {
    if (Date.now() > draining) throw new Error('no drain message');
    await new Promise((resolve) => setImmediate(resolve));
  }
  release!();
  const finished = await inFlight;
  t.equal(finished.status, 200);
  t.equal(finished.body, 'slow done', 'the in-flight request finished during the drain');
  t.equal(await running.exited, 0);
  await t.rejects(httpsRequest(running.httpsPort, 'cli.example.test', '/x'), 'nothing listens after the drain');
});

t.test('keygate frontline --db reads routes from the database and stops on SIGTERM', async (t) => {
  const dbFile = join(files.dir, 'frontline.db');
  const running = await startCli(['--db', dbFile, '--frontline-https-port', '0', '--frontline-http-port', '0']);
  t.match(running.stderr(), /applied migration 0002-frontline/);
  const ready = await request(`http://127.0.0.1:${running.httpPort}/_keygate/health/ready`);
  t.equal(ready.status, 200);
  const redirect = await request(`http://127.0.0.1:${running.httpPort}/x`, { headers: { host: 'db.example.test' } });
  t.equal(redirect.status, 308);
  running.signal('SIGTERM');
  t.equal(await running.exited, 0);
});

t.test('frontline.engine picks the forwarding engine of the worker threads, and an unknown engine is refused at start', async (t) => {
  const origin = await startEchoOrigin('engine');
  t.teardown(() => origin.close());
  const file = files.write('engine.json', {
    frontline: {
      httpsPort: 0, httpPort: 0,
      certificates: [{ certFile: 'certs/cli.pem', keyFile: 'certs/cli.key' }],
      routes: [{ host: 'cli.example.test', upstreams: [origin.url] }],
    },
  });
  // What tells the engines apart on the wire: undici asks for keep-alive in a Connection
  // header, the raw engine relies on HTTP/1.1's default and sends none.
  const upstreamConnectionHeaders = async (args: readonly string[]): Promise<Set<string>> => {
    const running = await startCli(['--config', file, '--workers', '2', ...args]);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const response = await httpsRequest(running.httpsPort, 'cli.example.test', '/engine');
      seen.add(String((JSON.parse(response.body) as EchoBody).headers.connection));
    }
    running.signal('SIGTERM');
    t.equal(await running.exited, 0);
    return seen;
  };
  t.same([...await upstreamConnectionHeaders([])], ['undefined'], 'the raw engine by default');
  t.same([...await upstreamConnectionHeaders(['--frontline-engine', 'undici'])], ['keep-alive'], '--frontline-engine undici');

  const refused = spawnSync(process.execPath, [keygatePath, 'frontline', '--config', file, '--frontline-engine', 'fast'], { env, encoding: 'utf8', timeout: 20_000 });
  t.equal(refused.status, 1);
  t.match(refused.stderr, /frontline\.engine/);
  t.match(refused.stderr, /raw, undici/);
});

t.test('frontline.http1Parser picks who parses HTTP/1.1 on the HTTPS listener, in the main thread and in workers, and an unknown parser is refused at start', async (t) => {
  const origin = await startEchoOrigin('parser');
  t.teardown(() => origin.close());
  const file = files.write('parser.json', {
    frontline: {
      httpsPort: 0, httpPort: 0,
      certificates: [{ certFile: 'certs/cli.pem', keyFile: 'certs/cli.key' }],
      routes: [{ host: 'cli.example.test', upstreams: [origin.url] }],
    },
  });
  // What tells the parsers apart on the wire: keygate's path writes its keep-alive headers in
  // lower case (`connection`, `keep-alive`), node:http writes `Connection` and `Keep-Alive`.
  // Several connections, so that with two workers both threads answer.
  const keepAliveHeaderNames = async (args: readonly string[], extraEnv: Record<string, string> = {}): Promise<Set<string>> => {
    const running = await startCli(['--config', file, ...args], extraEnv);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const head = await rawHttp1Head(running.httpsPort, 'cli.example.test', '/parser');
      t.match(head, /^HTTP\/1\.1 200 /);
      const names = head.split('\r\n').slice(1).map((line) => line.slice(0, line.indexOf(':')))
        .filter((name) => name.toLowerCase() === 'connection' || name.toLowerCase() === 'keep-alive');
      seen.add(names.join(','));
    }
    running.signal('SIGTERM');
    t.equal(await running.exited, 0);
    return seen;
  };
  t.same([...await keepAliveHeaderNames(['--workers', '2'])], ['connection,keep-alive'], 'keygate\'s parser by default (worker threads)');
  t.same([...await keepAliveHeaderNames(['--workers', '2', '--frontline-http1-parser', 'node'])], ['Connection,Keep-Alive'], '--frontline-http1-parser node (worker threads)');
  t.same([...await keepAliveHeaderNames(['--workers', '1'], { KEYGATE_FRONTLINE_HTTP1_PARSER: 'node' })], ['Connection,Keep-Alive'], 'KEYGATE_FRONTLINE_HTTP1_PARSER=node (main thread)');

  const refused = spawnSync(process.execPath, [keygatePath, 'frontline', '--config', file, '--frontline-http1-parser', 'fast'], { env, encoding: 'utf8', timeout: 20_000 });
  t.equal(refused.status, 1);
  t.match(refused.stderr, /frontline\.http1Parser/);
  t.match(refused.stderr, /keygate, node/);
});

/**
 * Sends one GET over TLS with ALPN http/1.1 and resolves the response head exactly as written
 * (header names keep their case), then closes the connection. Rejects after 10 s without a head.
 */
function rawHttp1Head(port: number, host: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: host, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false });
    let received = '';
    const finish = (error: Error | undefined): void => {
      socket.destroy();
      if (error === undefined) resolve(received.slice(0, received.indexOf('\r\n\r\n')));
      else reject(error);
    };
    socket.setTimeout(10_000, () => finish(new Error(`no response head: ${JSON.stringify(received)}`)));
    socket.once('error', finish);
    socket.once('end', () => finish(new Error(`closed before the head: ${JSON.stringify(received)}`)));
    socket.once('secureConnect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n\r\n')) finish(undefined);
    });
  });
}
