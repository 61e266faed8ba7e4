/**
 * Session resumption across listeners that share one port (`SO_REUSEPORT`), as worker threads
 * do: each listener has its own `CertificateStore` and its own copy of one ticket key set (made
 * from a snapshot, as a worker gets it), and the kernel picks the listener per connection.
 */
import t from 'tap';
import type { Test } from 'tap';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { HttpPeer } from '../../../proxy/http-peer.ts';
import { CertificateStore } from '../../../proxy/tls/certificate-store.ts';
import { SessionTicketKeys } from '../../../proxy/tls/session-ticket-keys.ts';
import { createTestCertificate } from '../../helpers/certificates.ts';
import { startOrigin, startProxy } from '../helpers.ts';
import { handshake } from './resumption-client.ts';

const certificate = createTestCertificate({ hostnames: ['app.example.com'] });
t.teardown(() => certificate.cleanup());
const SERVERNAME = 'app.example.com';
/** Resumption attempts per check: with two listeners, all landing on one has probability 2^-39. */
const ATTEMPTS = 40;

interface Listener {
  port: number;
  store: CertificateStore;
  keys: SessionTicketKeys;
  resumed: number;
  full: number;
}

/** Two TLS listeners on one port, wired as `createListener` does, plus `attachServer`. */
async function twoListeners(t: Test, makeKeys: () => SessionTicketKeys, withDefaultCertificate = false): Promise<[Listener, Listener]> {
  const listeners: Listener[] = [];
  let port = 0;
  for (let index = 0; index < 2; index++) {
    const keys = makeKeys();
    const store = new CertificateStore({ ticketKeys: keys, ...(withDefaultCertificate ? { defaultCertificate: certificate } : {}) });
    store.add(certificate);
    const server = http2.createSecureServer({ ...store.serverOptions(['http/1.1']), allowHTTP1: true }, (_req, res) => res.end('ok'));
    t.equal(store.attachServer(server), true, 'this Node supports rotating ticket keys');
    const listener: Listener = { port: 0, store, keys, resumed: 0, full: 0 };
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.isSessionReused()) listener.resumed++;
      else listener.full++;
    });
    await new Promise<void>((resolve) => server.listen({ port, host: '127.0.0.1', reusePort: true }, resolve));
    port = (server.address() as AddressInfo).port;
    listener.port = port;
    listeners.push(listener);
    t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); store.close(); }));
  }
  return listeners as [Listener, Listener];
}

/** `count` resumptions with `session`; returns how many were resumed. */
async function resumeMany(port: number, session: Buffer, count: number, maxVersion?: 'TLSv1.2' | 'TLSv1.3', sendSni = true): Promise<number> {
  let reused = 0;
  for (let attempt = 0; attempt < count; attempt++) {
    const result = await handshake(port, { ...(sendSni ? { servername: SERVERNAME } : {}), session, ...(maxVersion === undefined ? {} : { maxVersion }) });
    if (result.reused) reused++;
  }
  return reused;
}

/** A session issued by the listeners (full handshake). */
async function freshSession(port: number, maxVersion?: 'TLSv1.2' | 'TLSv1.3'): Promise<Buffer> {
  const result = await handshake(port, { servername: SERVERNAME, ...(maxVersion === undefined ? {} : { maxVersion }) });
  if (result.session === undefined) throw new Error('the server issued no session ticket');
  return result.session;
}

for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
  t.test(`${maxVersion}: a session resumes on whichever listener accepts it when they share one key set`, async (t) => {
    const main = SessionTicketKeys.generate();
    const [a, b] = await twoListeners(t, () => new SessionTicketKeys(main.snapshot()));
    const session = await freshSession(a.port, maxVersion);
    t.equal(await resumeMany(a.port, session, ATTEMPTS, maxVersion), ATTEMPTS, 'every attempt resumed');
    t.ok(a.resumed > 0 && b.resumed > 0, `both listeners resumed sessions (${a.resumed} + ${b.resumed})`);
  });
}

t.test('TLSv1.3: every resumed connection hands out a fresh ticket, so a client that uses each ticket once resumes every time', async (t) => {
  // RFC 8446 §C.4: TLS 1.3 clients should not reuse a ticket; OpenSSL clients (wrk, curl)
  // resume with the newest one. A resumed connection without a new ticket would leave such a
  // client with none, and every other connection would be a full handshake. (TLS 1.2 tickets
  // are reused as they are: the test above covers them.)
  const main = SessionTicketKeys.generate();
  const [a, b] = await twoListeners(t, () => new SessionTicketKeys(main.snapshot()));
  let session = await freshSession(a.port, 'TLSv1.3');
  let resumed = 0;
  for (let attempt = 0; attempt < 10; attempt++) {
    const result = await handshake(a.port, { servername: SERVERNAME, session, maxVersion: 'TLSv1.3' });
    if (result.reused) resumed++;
    if (result.session === undefined) {
      t.fail(`connection ${attempt} (resumed: ${result.reused}) issued no ticket`);
      break;
    }
    session = result.session;
  }
  t.equal(resumed, 10, 'each connection resumed with the ticket of the one before');
  t.equal(a.full + b.full, 1, 'only the first connection was a full handshake');
});

t.test('control: listeners with their own keys (the old default) do not resume each other\'s sessions', async (t) => {
  const [a, b] = await twoListeners(t, () => SessionTicketKeys.generate());
  const session = await freshSession(a.port);
  const reused = await resumeMany(a.port, session, ATTEMPTS);
  t.ok(reused < ATTEMPTS, `only the issuing listener resumed (${reused} of ${ATTEMPTS})`);
  t.ok(a.full + b.full > 1, 'the other listener did full handshakes');
});

t.test('after one rotation an old ticket is still accepted everywhere; after two it is not', async (t) => {
  const main = SessionTicketKeys.generate();
  const [a, b] = await twoListeners(t, () => new SessionTicketKeys(main.snapshot()));
  const oldSession = await freshSession(a.port);

  const first = main.rotate();
  a.keys.replace(first);
  b.keys.replace(first);
  t.equal(await resumeMany(a.port, oldSession, ATTEMPTS), ATTEMPTS, 'a ticket under the previous key resumes on every listener');
  t.ok(a.resumed > 0 && b.resumed > 0, 'on both listeners');
  const newerSession = await freshSession(a.port);

  const second = main.rotate();
  a.keys.replace(second);
  b.keys.replace(second);
  t.equal(await resumeMany(a.port, oldSession, 10), 0, 'a ticket older than two intervals gets a full handshake');
  t.equal(await resumeMany(a.port, newerSession, 10), 10, 'a ticket from the last interval still resumes');
});

t.test('a listener that has not applied a rotation yet still accepts tickets under the new key', async (t) => {
  const main = SessionTicketKeys.generate();
  const [a, b] = await twoListeners(t, () => new SessionTicketKeys(main.snapshot()));
  const rotated = main.rotate();
  a.keys.replace(rotated);
  // `b` lags behind: tickets `a` now issues (under the new current key) must still resume on `b`.
  const reusedBefore = b.resumed;
  let session: Buffer | undefined;
  let reused = 0;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const result = await handshake(a.port, { servername: SERVERNAME, ...(session === undefined ? {} : { session }) });
    if (session !== undefined && result.reused) reused++;
    session ??= result.session;
  }
  t.equal(reused, ATTEMPTS - 1, 'every resumption attempt resumed');
  t.ok(b.resumed > reusedBefore, 'including on the listener that had not rotated');
});

t.test('clients without SNI (default certificate) resume across listeners and follow rotations', async (t) => {
  const main = SessionTicketKeys.generate();
  const [a, b] = await twoListeners(t, () => new SessionTicketKeys(main.snapshot()), true);
  const session = (await handshake(a.port, {})).session;
  if (session === undefined) throw new Error('no session issued');
  t.equal(await resumeMany(a.port, session, ATTEMPTS, undefined, false), ATTEMPTS, 'every attempt resumed');
  t.ok(a.resumed > 0 && b.resumed > 0, `on both listeners (${a.resumed} + ${b.resumed})`);
  for (let rotation = 0; rotation < 2; rotation++) {
    const keys = main.rotate();
    a.keys.replace(keys);
    b.keys.replace(keys);
  }
  t.equal(await resumeMany(a.port, session, 10, undefined, false), 0, 'two rotations later the ticket is refused');
});

t.test('two ProxyServers on one port (the real listener) resume each other\'s sessions', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('origin'));
  t.teardown(() => origin.close());
  const main = SessionTicketKeys.generate();
  const first = new CertificateStore({ ticketKeys: new SessionTicketKeys(main.snapshot()) });
  const second = new CertificateStore({ ticketKeys: new SessionTicketKeys(main.snapshot()) });
  first.add(certificate);
  second.add(certificate);
  const hooks = { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) };
  const one = await startProxy({ hooks }, { protocol: 'https', certificates: first, reusePort: true });
  const two = await startProxy({ hooks }, { protocol: 'https', certificates: second, reusePort: true, port: one.port });
  t.teardown(async () => { await one.proxy.close({ graceMs: 100 }); await two.proxy.close({ graceMs: 100 }); first.close(); second.close(); });
  const session = await freshSession(one.port);
  t.equal(await resumeMany(one.port, session, ATTEMPTS), ATTEMPTS, 'every attempt resumed');
});
