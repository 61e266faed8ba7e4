import { once } from 'node:events';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import t from 'tap';
import { Fault } from '../../../core/fault.ts';
import type { HttpServerOptions } from '../../../core/http/http-server.ts';
import { deferred, requestCount, send, testServer as baseTestServer, waitFor } from './helpers.ts';

const HOST = '127.0.0.1';

// Every guarantee here holds for both HTTP/1.1 request paths: keygate's own parser (the default)
// and node:http's.
for (const http1Parser of ['keygate', 'node'] as const) {
  const testServer = (options: HttpServerOptions = {}) => baseTestServer({ http1Parser, ...options });

  t.test(`${http1Parser}: serves routes over a real socket on port 0: exact, params, 404, 405, envelope, HEAD`, async (t) => {
    const { server } = testServer();
    server.route('POST', '/v2/keys.verifyKey', (ctx) => ({ body: { got: ctx.json(), from: ctx.remoteAddress } }));
    server.route('GET', '/v1/items/:id', (ctx) => ({ body: { id: ctx.params.id } }));
    const { port } = await server.listen({ port: 0, host: HOST });
    t.teardown(() => server.close());
    t.ok(port > 0);

    const verified = await send(port, { method: 'POST', path: '/v2/keys.verifyKey', headers: { 'content-type': 'application/json' }, body: '{"key":"sk_1"}' });
    t.equal(verified.status, 200);
    t.same(JSON.parse(verified.body), { got: { key: 'sk_1' }, from: HOST });
    t.equal(verified.headers['content-type'], 'application/json');
    t.equal(verified.headers['x-request-id'], undefined, 'the request id lives in the body only, as in the reference');

    t.same(JSON.parse((await send(port, { path: '/v1/items/itm_7' })).body), { id: 'itm_7' });
    const head = await send(port, { method: 'HEAD', path: '/v1/items/itm_7' });
    t.equal(head.status, 200);
    t.equal(head.body, '');

    const missing = await send(port, { path: '/nope', headers: { accept: 'application/problem+json' } });
    t.equal(missing.status, 404);
    t.equal(missing.headers['content-type'], 'application/problem+json');
    t.match(JSON.parse(missing.body), { meta: { requestId: /^req_[A-Za-z0-9]{9}$/ }, error: { status: 404, title: 'Not Found' } });

    const wrongMethod = await send(port, { method: 'DELETE', path: '/v2/keys.verifyKey' });
    t.equal(wrongMethod.status, 405);
    t.equal(wrongMethod.headers.allow, 'POST');
  });

  t.test(`${http1Parser}: a declared oversize body gets 413 without being read, and the connection is closed`, async (t) => {
    const { server } = testServer({ maxBodyBytes: 1024 });
    let handlerCalls = 0;
    server.route('POST', '/upload', () => {
      handlerCalls++;
      return { body: {} };
    });
    const { port } = await server.listen({ port: 0, host: HOST });
    t.teardown(() => server.close());
    const response = await rawUpload(port, { 'content-length': String(64 * 1024 * 1024) });
    t.match(response.head, /^HTTP\/1\.1 413 /);
    t.match(response.head, /connection: close/i);
    t.match(response.body, 'request_body_too_large');
    t.ok(response.closedByServer, 'the server closed the connection');
    t.ok(response.bytesFlushed < 24 * 1024 * 1024, `the server stopped reading (client flushed ${response.bytesFlushed} of ${64 * 1024 * 1024} bytes)`);
    t.equal(handlerCalls, 0);
  });

  t.test(`${http1Parser}: a chunked body is refused as soon as it passes the limit, and reading stops there`, async (t) => {
    const { server } = testServer({ maxBodyBytes: 16 * 1024 });
    server.route('POST', '/upload', () => ({ body: {} }));
    const { port } = await server.listen({ port: 0, host: HOST });
    t.teardown(() => server.close());
    const response = await rawUpload(port, { 'transfer-encoding': 'chunked' });
    t.match(response.head, /^HTTP\/1\.1 413 /);
    t.ok(response.closedByServer);
    t.ok(response.bytesFlushed < 24 * 1024 * 1024, `the server stopped reading (client flushed ${response.bytesFlushed} bytes)`);

    const withinLimit = await send(port, { method: 'POST', path: '/upload', body: 'x'.repeat(16 * 1024) });
    t.equal(withinLimit.status, 200, 'a body of exactly the limit is accepted');
  });

  t.test(`${http1Parser}: a handler past the deadline gets 408 over a socket`, async (t) => {
    const { server } = testServer({ requestTimeoutMs: 30 });
    server.route('GET', '/hang', () => new Promise(() => {}));
    const { port } = await server.listen({ port: 0, host: HOST });
    t.teardown(() => server.close());
    const response = await send(port, { path: '/hang' });
    t.equal(response.status, 408);
    t.match(JSON.parse(response.body), { error: { status: 408, title: 'Request Timeout' } });
  });

  t.test(`${http1Parser}: a client that goes away aborts the handler's signal and is logged as 499`, async (t) => {
    const { server, accessLines } = testServer();
    const started = deferred();
    const aborted = deferred<unknown>();
    server.route('GET', '/long', (ctx) => new Promise((_resolve, reject) => {
      ctx.signal.addEventListener('abort', () => {
        aborted.resolve(ctx.signal.reason);
        reject(new Error('handler observed the abort'));
      });
      started.resolve();
    }));
    const { port } = await server.listen({ port: 0, host: HOST });
    t.teardown(() => server.close());
    const req = request({ host: HOST, port, path: '/long', agent: false });
    req.on('error', () => {});
    req.end();
    await started.promise;
    req.destroy();
    const reason = await aborted.promise;
    t.ok(reason instanceof Fault && reason.code === 'err:user:bad_request:client_closed_request', 'the signal carries a client_closed_request fault');
    await waitFor(() => accessLines().length === 1, 2_000, 'the access line');
    t.equal(accessLines()[0]!.status, 499);
    t.equal(server.inFlight, 0);
  });

  t.test(`${http1Parser}: close() drains: it waits for the in-flight request, refuses new connections, then resolves`, async (t) => {
    const { server } = testServer();
    const started = deferred();
    const release = deferred();
    server.route('GET', '/slow', async () => {
      started.resolve();
      await release.promise;
      return { body: { done: true } };
    });
    const { port } = await server.listen({ port: 0, host: HOST });
    const inFlight = send(port, { path: '/slow' });
    await started.promise;

    let closed = false;
    const closing = server.close().then(() => {
      closed = true;
    });
    t.ok(server.draining);
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(port, HOST);
      socket.on('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    t.equal(refused, 'ECONNREFUSED', 'new connections are refused while draining');
    t.notOk(closed, 'close() waits for the in-flight request');

    release.resolve();
    const response = await inFlight;
    t.equal(response.status, 200);
    t.same(JSON.parse(response.body), { done: true });
    t.equal(response.headers.connection, 'close', 'a response while draining closes its connection');
    await closing;
    t.ok(closed);
    t.equal(server.inFlight, 0);
  });

  t.test(`${http1Parser}: close() closes idle keep-alive connections, and gives up on a stuck request after drainTimeoutMs`, async (t) => {
    const { server, lines } = testServer({ drainTimeoutMs: 50 });
    server.route('GET', '/fast', () => ({ body: 'ok' }));
    server.route('GET', '/stuck', () => new Promise(() => {}));
    const { port } = await server.listen({ port: 0, host: HOST });
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    t.teardown(() => agent.destroy());
    const keptAlive = await new Promise<{ status: number; socketClosed: Promise<unknown> }>((resolve, reject) => {
      const req = request({ host: HOST, port, path: '/fast', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, socketClosed: once(req.socket!, 'close') }));
      });
      req.on('error', reject);
      req.end();
    });
    t.equal(keptAlive.status, 200);
    const stuck = request({ host: HOST, port, path: '/stuck', agent: false });
    const stuckOutcome = new Promise<string>((resolve) => {
      stuck.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      stuck.on('response', (res) => resolve(String(res.statusCode)));
    });
    stuck.end();
    await waitFor(() => server.inFlight === 1, 2_000, 'the stuck request to arrive');
    await server.close();
    await keptAlive.socketClosed;
    t.pass('the idle keep-alive connection was closed');
    t.equal(await stuckOutcome, 'ECONNRESET', 'the stuck request was cut off after the drain timeout');
    t.ok(lines.some((line) => line.msg === 'drain timeout: closing with requests in flight'));
  });

  t.test(`${http1Parser}: handle can be mounted on a node:http server made elsewhere`, async (t) => {
    const { server } = testServer();
    server.route('GET', '/mounted', () => ({ body: { mounted: true } }));
    const external = createServer(server.handle);
    await new Promise<void>((resolve) => external.listen(0, HOST, resolve));
    t.teardown(() => new Promise<void>((resolve) => external.close(() => resolve())));
    const response = await send((external.address() as AddressInfo).port, { path: '/mounted' });
    t.same(JSON.parse(response.body), { mounted: true });
  });

  t.test(`${http1Parser}: listen() on a busy port rejects with listen_failed`, async (t) => {
    const first = testServer().server;
    const { port } = await first.listen({ port: 0, host: HOST });
    t.teardown(() => first.close());
    const second = testServer().server;
    await t.rejects(second.listen({ port, host: HOST }), { code: 'err:keygate:http:listen_failed' });
    await second.close();
  });

  t.test(`${http1Parser}: request counts reach the metric at every scrape, also after close`, async (t) => {
    const { server, metrics } = testServer();
    server.route('GET', '/counted', () => ({ body: 'ok' }));
    const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
    const labels = { method: 'GET', route: '/counted', status: '200' };
    await send(port, { path: '/counted' });
    await send(port, { path: '/counted' });
    t.equal(await requestCount(metrics, labels), 2);
    await send(port, { path: '/counted' });
    t.equal(await requestCount(metrics, labels), 3, 'counts are added once, never twice');
    await server.close();
    t.equal(await requestCount(metrics, labels), 3);
  });

  t.test(`${http1Parser}: a plain reply is written with content-type and content-length only`, async (t) => {
    const { server } = testServer();
    server.route('GET', '/plain', () => ({ body: { hello: 'wörld' } }));
    server.route('GET', '/empty', () => ({ status: 204, body: 'ignored' }));
    const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
    t.teardown(() => server.close());
    const plain = await send(port, { path: '/plain' });
    t.equal(plain.headers['content-type'], 'application/json');
    t.equal(plain.headers['content-length'], String(Buffer.byteLength(plain.body)));
    t.same(JSON.parse(plain.body), { hello: 'wörld' });
    const empty = await send(port, { path: '/empty' });
    t.equal(empty.status, 204);
    t.equal(empty.headers['content-length'], undefined);
    t.equal(empty.body, '');
  });
}

/**
 * Sends a POST with `headers` and then up to 64 MiB of body in 64 KiB chunks (waiting for each
 * write to flush), until the server answers and closes. Returns the response and how many body
 * bytes the client managed to flush into the connection.
 */
async function rawUpload(port: number, headers: Record<string, string>): Promise<{ head: string; body: string; bytesFlushed: number; closedByServer: boolean }> {
  const socket = connect(port, HOST);
  await once(socket, 'connect');
  const chunked = headers['transfer-encoding'] === 'chunked';
  const headerLines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.write(`POST /upload HTTP/1.1\r\nhost: ${HOST}\r\n${headerLines}\r\n`);
  let received = '';
  let closedByServer = false;
  let stop = false;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  socket.on('error', () => {
    stop = true;
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => {
    stop = true;
    resolve();
  }));
  socket.on('end', () => {
    closedByServer = true;
    stop = true;
  });
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const frame = chunked ? Buffer.concat([Buffer.from(chunk.length.toString(16) + '\r\n'), chunk, Buffer.from('\r\n')]) : chunk;
  let bytesFlushed = 0;
  for (let sent = 0; sent < 64 * 1024 * 1024 && !stop; sent += chunk.length) {
    const flushed = await new Promise<boolean>((resolve) => socket.write(frame, (err) => resolve(!err)));
    if (!flushed) break;
    bytesFlushed += chunk.length;
  }
  if (!stop) socket.end();
  await closed;
  const split = received.indexOf('\r\n\r\n');
  // An RST after the FIN still means the server ended it; the response arriving first is what counts.
  closedByServer ||= received.length > 0;
  return { head: received.slice(0, split), body: received.slice(split + 4), bytesFlushed, closedByServer };
}
