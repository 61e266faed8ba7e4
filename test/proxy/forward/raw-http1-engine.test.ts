import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawHttp1Engine } from '../../../proxy/forward/raw-http1-engine.ts';
import { HttpPeer } from '../../../proxy/http-peer.ts';
import { request, startOrigin, startProxy, waitFor } from '../helpers.ts';

/** A raw TCP origin that answers each request head with `respond(head)` (for malformed upstreams). */
async function startRawOrigin(respond: (head: string, socket: net.Socket) => void): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        respond(head, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => { for (const socket of sockets) socket.destroy(); server.close(() => resolve()); }),
  };
}

async function proxyTo(t: TapTest, upstream: string | HttpPeer, engine = new RawHttp1Engine(), options: Record<string, unknown> = {}) {
  const peer = typeof upstream === 'string' ? new HttpPeer(upstream) : upstream;
  const started = await startProxy({ engine, ...options, hooks: { newCtx: () => ({}), upstreamPeer: () => peer } });
  t.teardown(async () => { await started.proxy.close({ graceMs: 100 }); await engine.destroy(); });
  return { ...started, engine, peer };
}

type TapTest = { teardown(fn: () => unknown): void };

t.test('reuses one kept-alive upstream connection for sequential requests', async (t) => {
  const origin = await startOrigin((req, res) => { req.resume(); res.end(`seen ${req.url}`); });
  let upstreamConnections = 0;
  origin.server.on('connection', () => upstreamConnections++);
  t.teardown(() => origin.close());
  const { url, engine, peer } = await proxyTo(t, origin.url);
  for (let i = 0; i < 5; i++) {
    const response = await request(url, { path: `/n${i}` });
    t.equal(response.body, `seen /n${i}`);
  }
  t.equal(upstreamConnections, 1);
  t.equal(engine.idleCount(peer), 1);
});

t.test('streams request bodies with and without Content-Length, and chunked responses back', async (t) => {
  const origin = await startOrigin((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      res.write(`${req.headers['transfer-encoding'] ?? 'length'}:`);
      res.end(Buffer.concat(chunks));
    });
  });
  t.teardown(() => origin.close());
  const { url } = await proxyTo(t, origin.url);
  const withLength = await request(url, { method: 'POST', body: 'x'.repeat(100_000) });
  t.equal(withLength.body, `length:${'x'.repeat(100_000)}`);
  const chunked = await request(url, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'streamed' });
  t.equal(chunked.body, 'chunked:streamed');
});

t.test('an upstream response with both Content-Length and Transfer-Encoding becomes a 502, and the socket is not reused', async (t) => {
  const origin = await startRawOrigin((_head, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled');
  });
  t.teardown(() => origin.close());
  const { url, engine, peer } = await proxyTo(t, `http://127.0.0.1:${origin.port}`);
  const response = await request(url, { headers: { accept: 'application/json' } });
  t.equal(response.status, 502);
  t.equal(JSON.parse(response.body).error.code, 'err:frontline:upstream:bad_gateway');
  t.equal(engine.idleCount(peer), 0);
});

t.test('bytes after a complete response (a split response) close the connection instead of answering the next request', async (t) => {
  const origin = await startRawOrigin((_head, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled');
  });
  t.teardown(() => origin.close());
  const { url } = await proxyTo(t, `http://127.0.0.1:${origin.port}`);
  t.equal((await request(url)).body, 'ok');
  t.equal((await request(url)).body, 'ok', 'the second request got its own answer, not the injected one');
  t.equal(origin.connections(), 2);
});

t.test('an upstream that closes mid-body cuts the downstream response short (never a clean end)', async (t) => {
  const origin = await startRawOrigin((_head, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part'); });
  t.teardown(() => origin.close());
  const { url } = await proxyTo(t, `http://127.0.0.1:${origin.port}`);
  await t.rejects(request(url), 'the client sees an aborted response');
});

t.test('a close-delimited response is relayed in full and its connection is not reused', async (t) => {
  const origin = await startRawOrigin((_head, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end'); });
  t.teardown(() => origin.close());
  const { url, engine, peer } = await proxyTo(t, `http://127.0.0.1:${origin.port}`);
  t.equal((await request(url)).body, 'until the end');
  t.equal(engine.idleCount(peer), 0);
});

t.test('a refused connection falls through to the next candidate peer; with none left it is a 503', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('second'));
  t.teardown(() => origin.close());
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadPort = (closed.address() as net.AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const engine = new RawHttp1Engine();
  const peers = [new HttpPeer(`http://127.0.0.1:${deadPort}`), new HttpPeer(origin.url)];
  const { proxy, url } = await startProxy({ engine, hooks: { newCtx: () => ({}), upstreamPeer: () => peers } });
  t.teardown(async () => { await proxy.close({ graceMs: 100 }); await engine.destroy(); });
  t.equal((await request(url)).body, 'second');
  const { url: deadUrl } = await proxyTo(t, `http://127.0.0.1:${deadPort}`);
  t.equal((await request(deadUrl)).status, 503);
});

t.test('no response head within headersTimeoutMs is a 504', async (t) => {
  const origin = await startRawOrigin(() => {});
  t.teardown(() => origin.close());
  const { url } = await proxyTo(t, `http://127.0.0.1:${origin.port}`, new RawHttp1Engine(), { headersTimeoutMs: 100 });
  t.equal((await request(url)).status, 504);
});

t.test('a header value with CR/LF set by a hook is refused, never written upstream', async (t) => {
  const origin = await startRawOrigin((_head, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  t.teardown(() => origin.close());
  const engine = new RawHttp1Engine();
  const peer = new HttpPeer(`http://127.0.0.1:${origin.port}`);
  const { proxy, url } = await startProxy({ engine, hooks: {
    newCtx: () => ({}), upstreamPeer: () => peer,
    upstreamRequestFilter: (_session, upstream) => { upstream.headers['x-injected'] = 'a\r\nGET /admin HTTP/1.1'; },
  } });
  t.teardown(async () => { await proxy.close({ graceMs: 100 }); await engine.destroy(); });
  t.equal((await request(url)).status, 502);
  t.equal(origin.connections(), 0);
});

t.test('closes an idle kept-alive upstream connection once its idle time is up, then connects anew', async (t) => {
  let upstreamConnections = 0;
  const origin = await startOrigin((_req, res) => res.end('ok'), (server) => server.on('connection', () => upstreamConnections++));
  t.teardown(() => origin.close());
  const { url, engine, peer } = await proxyTo(t, origin.url, new RawHttp1Engine({ idleTimeoutMs: 200, maxIdleTimeoutMs: 200 }));
  t.equal((await request(url)).body, 'ok');
  t.equal(engine.idleCount(peer), 1, 'kept alive right after the response');
  await waitFor(() => engine.connectionCount(peer) === 0, 3_000, 'the idle connection to be closed');
  t.equal((await request(url)).body, 'ok');
  t.equal(upstreamConnections, 2, 'the next request opened a new connection');
});

t.test("a server's Keep-Alive hint shortens the idle time to one second less than the hint", async (t) => {
  const origin = await startOrigin((_req, res) => res.end('ok'), (server) => { server.keepAliveTimeout = 2_500; });
  t.teardown(() => origin.close());
  const { url, engine, peer } = await proxyTo(t, origin.url, new RawHttp1Engine({ idleTimeoutMs: 60_000 }));
  const response = await request(url);
  t.equal(response.body, 'ok');
  t.equal(engine.idleCount(peer), 1, 'kept alive right after the response');
  await waitFor(() => engine.connectionCount(peer) === 0, 3_000, 'the connection to be closed before the server\'s 2 s');
});

t.test('bounds sockets per peer and queues the rest', async (t) => {
  const origin = await startOrigin((_req, res) => setImmediate(() => res.end('ok')));
  let upstreamConnections = 0;
  origin.server.on('connection', () => upstreamConnections++);
  t.teardown(() => origin.close());
  const { url } = await proxyTo(t, origin.url, new RawHttp1Engine({ maxConnectionsPerPeer: 2 }));
  const responses = await Promise.all(Array.from({ length: 10 }, () => request(url)));
  t.same(responses.map((r) => r.body), Array(10).fill('ok'));
  t.ok(upstreamConnections <= 2, `${upstreamConnections} upstream connections`);
});

t.test('a full queue answers 503 at once', async (t) => {
  const origin = await startRawOrigin(() => {}); // never answers: the one socket stays busy
  t.teardown(() => origin.close());
  const { url } = await proxyTo(t, `http://127.0.0.1:${origin.port}`, new RawHttp1Engine({ maxConnectionsPerPeer: 1, maxQueuedPerPeer: 1 }), { headersTimeoutMs: 2_000 });
  const first = request(url).catch(() => undefined);
  const second = request(url).catch(() => undefined);
  const deadline = Date.now() + 2_000;
  while (origin.connections() < 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  t.equal((await request(url)).status, 503);
  await Promise.all([first, second]);
});

t.test('forwards HEAD and 204/304 without waiting for a body', async (t) => {
  const origin = await startOrigin((req, res) => {
    if (req.url === '/empty') { res.writeHead(204); res.end(); return; }
    res.writeHead(200, { 'content-length': '1000' });
    res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(1000));
  });
  t.teardown(() => origin.close());
  const { url } = await proxyTo(t, origin.url);
  const head = await request(url, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], '1000');
  t.equal((await request(url, { path: '/empty' })).status, 204);
  t.equal((await request(url)).body.length, 1000, 'the kept-alive connection is still in step');
});

t.test('speaks TLS to https peers and verifies their certificate', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'raw-engine-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  const cert = readFileSync(join(dir, 'cert.pem'));
  const server = https.createServer({ cert, key: readFileSync(join(dir, 'key.pem')) }, (_req, res) => res.end('secure'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const port = (server.address() as net.AddressInfo).port;
  const { url } = await proxyTo(t, new HttpPeer(`https://127.0.0.1:${port}`, { servername: 'localhost', ca: cert }));
  t.equal((await request(url)).body, 'secure');
  const { url: untrustedUrl } = await proxyTo(t, new HttpPeer(`https://127.0.0.1:${port}`, { servername: 'localhost' }));
  t.equal((await request(untrustedUrl)).status, 502, 'an untrusted certificate fails the request');
});
