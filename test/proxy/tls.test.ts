import t from 'tap';
import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { HttpPeer } from '../../proxy/http-peer.ts';
import { CertificateStore } from '../../proxy/tls/certificate-store.ts';
import { createTestCertificate } from '../helpers/certificates.ts';
import { startOrigin, startProxy, waitFor } from './helpers.ts';

const exact = createTestCertificate({ hostnames: ['app.example.com'] });
const wildcard = createTestCertificate({ hostnames: ['*.example.com'] });
const fallback = createTestCertificate({ hostnames: ['default.invalid'] });
t.teardown(() => { exact.cleanup(); wildcard.cleanup(); fallback.cleanup(); });

/** Handshakes with `servername` and returns the served certificate's first DNS name and the ALPN result. */
async function handshake(port: number, servername: string | undefined, alpn: string[] = ['http/1.1'], session?: Buffer): Promise<{ name: string; alpn: string | false | null; reused: boolean; session?: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername, ALPNProtocols: alpn, rejectUnauthorized: false, session });
    let ticket: Buffer | undefined;
    socket.on('session', (value: Buffer) => { ticket = value; });
    socket.once('secureConnect', () => {
      const name = String(socket.getPeerX509Certificate()?.subjectAltName ?? '');
      const result = { name: name.replace(/^DNS:/, ''), alpn: socket.alpnProtocol, reused: socket.isSessionReused() };
      // TLS 1.3 tickets arrive after the handshake: read one response byte worth of time.
      socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      socket.on('data', () => {});
      socket.once('close', () => resolve({ ...result, session: ticket }));
    });
    socket.once('error', reject);
  });
}

async function tlsProxy(t: { teardown(fn: () => unknown): void }, store: CertificateStore): Promise<number> {
  const origin = await startOrigin((req, res) => res.end(`origin saw ${req.headers['x-forwarded-proto']} ${req.headers.host}`));
  const { proxy, port } = await startProxy({ hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) } }, { protocol: 'https', certificates: store });
  t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); store.close(); });
  return port;
}

t.test('SNI picks the exact certificate, then the one-label wildcard; an unknown name fails the handshake', async (t) => {
  const store = new CertificateStore();
  store.add({ cert: exact.cert, key: exact.key });
  store.add({ cert: wildcard.cert, key: wildcard.key });
  const port = await tlsProxy(t, store);
  t.equal((await handshake(port, 'app.example.com')).name, 'app.example.com');
  t.equal((await handshake(port, 'APP.example.com')).name, 'app.example.com', 'server names are case-insensitive');
  t.equal((await handshake(port, 'api.example.com')).name, '*.example.com');
  await t.rejects(handshake(port, 'deep.api.example.com'), 'a wildcard covers one label only');
  await t.rejects(handshake(port, 'unknown.test'), 'an unknown name fails the handshake');
  await t.rejects(handshake(port, undefined), 'no SNI and no default certificate fails');
});

t.test('a default certificate answers unknown names and clients without SNI', async (t) => {
  const store = new CertificateStore({ defaultCertificate: { cert: fallback.cert, key: fallback.key } });
  store.add({ cert: exact.cert, key: exact.key });
  const port = await tlsProxy(t, store);
  t.equal((await handshake(port, 'app.example.com')).name, 'app.example.com');
  t.equal((await handshake(port, 'unknown.test')).name, 'default.invalid');
  t.equal((await handshake(port, undefined)).name, 'default.invalid');
});

t.test('ALPN negotiates h2 and http/1.1, and both are proxied with X-Forwarded-Proto https', async (t) => {
  const store = new CertificateStore();
  store.add({ cert: exact.cert, key: exact.key });
  const port = await tlsProxy(t, store);
  t.equal((await handshake(port, 'app.example.com', ['h2', 'http/1.1'])).alpn, 'h2');
  t.equal((await handshake(port, 'app.example.com', ['http/1.1'])).alpn, 'http/1.1');

  const client = http2.connect(`https://127.0.0.1:${port}`, { servername: 'app.example.com', ca: exact.cert, checkServerIdentity: () => undefined });
  t.teardown(() => client.close());
  const h2Body = await new Promise<string>((resolve, reject) => {
    const stream = client.request({ ':path': '/over-h2', ':authority': 'app.example.com' });
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => { text += chunk; });
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
  t.equal(h2Body, 'origin saw https app.example.com');

  const h1Body = await new Promise<string>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/over-h1', servername: 'app.example.com', ca: exact.cert, checkServerIdentity: () => undefined, headers: { host: 'app.example.com' }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
  t.equal(h1Body, 'origin saw https app.example.com');
});

t.test('TLS sessions resume, and TLS below 1.2 is refused', async (t) => {
  const store = new CertificateStore();
  store.add({ cert: exact.cert, key: exact.key });
  store.add({ cert: wildcard.cert, key: wildcard.key });
  const port = await tlsProxy(t, store);
  const first = await handshake(port, 'api.example.com');
  t.equal(first.reused, false);
  t.ok(first.session, 'a session ticket was issued');
  const second = await handshake(port, 'api.example.com', ['http/1.1'], first.session);
  t.equal(second.reused, true, 'the second handshake resumed the session');
  await t.rejects(new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'app.example.com', maxVersion: 'TLSv1.1', minVersion: 'TLSv1', rejectUnauthorized: false });
    socket.once('secureConnect', () => { socket.destroy(); resolve(undefined); });
    socket.once('error', reject);
  }), 'TLS 1.1 fails');
});

t.test('certificates in a watched directory are hot reloaded without a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-certdir-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(exact.certFile, join(dir, 'app.pem'));
  copyFileSync(exact.keyFile, join(dir, 'app.key'));
  const store = new CertificateStore({ watchDebounceMs: 20 });
  const first = await store.watchDirectory(dir);
  t.same(first.errors, []);
  const port = await tlsProxy(t, store);
  t.equal((await handshake(port, 'app.example.com')).name, 'app.example.com');
  await t.rejects(handshake(port, 'new.example.com'));

  // A renewal written the usual way: new files, then an atomic rename over the old names.
  const renewed = createTestCertificate({ hostnames: ['app.example.com', 'new.example.com'] });
  t.teardown(() => renewed.cleanup());
  copyFileSync(renewed.keyFile, join(dir, 'app.key.tmp'));
  copyFileSync(renewed.certFile, join(dir, 'app.pem.tmp'));
  renameSync(join(dir, 'app.key.tmp'), join(dir, 'app.key'));
  renameSync(join(dir, 'app.pem.tmp'), join(dir, 'app.pem'));
  await waitFor(() => store.lookup('new.example.com') !== undefined, 5_000, 'the watcher to reload');
  t.equal((await handshake(port, 'new.example.com')).name, 'app.example.com, DNS:new.example.com');
});

t.test('the loader is asked once per name under concurrency, and misses are cached briefly', async (t) => {
  let calls = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => { release = resolve; });
  const store = new CertificateStore({
    loader: async (name) => {
      calls++;
      await gate;
      return name === 'db.example.com' ? { cert: exact.cert, key: exact.key } : undefined;
    },
  });
  const port = await tlsProxy(t, store);
  const pending = [handshake(port, 'db.example.com'), handshake(port, 'db.example.com'), handshake(port, 'db.example.com')];
  await waitFor(() => calls >= 1, 2_000, 'the loader');
  release();
  const results = await Promise.all(pending);
  t.same(results.map((result) => result.name), ['app.example.com', 'app.example.com', 'app.example.com']);
  t.equal(calls, 1, 'one load for three concurrent handshakes');
  await t.rejects(handshake(port, 'missing.example.com'));
  await t.rejects(handshake(port, 'missing.example.com'));
  t.equal(calls, 2, 'the second miss was answered from the negative cache');
});

t.test('an h2c listener serves HTTP/2 with prior knowledge', async (t) => {
  const origin = await startOrigin((req, res) => res.end(`h2c ok ${req.headers.host}`));
  const { proxy, port } = await startProxy({ hooks: { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) } }, { protocol: 'h2c' });
  t.teardown(async () => { await proxy.close({ graceMs: 100 }); await origin.close(); });
  const client = http2.connect(`http://127.0.0.1:${port}`);
  t.teardown(() => client.close());
  const body = await new Promise<string>((resolve, reject) => {
    const stream = client.request({ ':path': '/', ':authority': 'svc.internal' });
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => { text += chunk; });
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
  t.equal(body, 'h2c ok svc.internal');
});
