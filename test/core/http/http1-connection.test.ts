/**
 * keygate's own HTTP/1.1 request path (`core/http/http1-connection.ts`) over real sockets and
 * raw bytes: what it parses itself, what it hands to node:http (answered exactly as node:http
 * answers it, compared side by side), its bounds and timeouts, and its responses on the wire.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import t from 'tap';
import type { Test } from 'tap';
import type { HttpServerOptions } from '../../../core/http/http-server.ts';
import type { RequestContext } from '../../../core/http/request-context.ts';
import { deferred, testServer, waitFor } from './helpers.ts';
import { RawConnection } from './raw-http1-client.ts';
import type { RawResponse } from './raw-http1-client.ts';

const HOST = '127.0.0.1';

/** An echo server (GET/POST/PUT on `/echo` and `/items/:id`) listening on port 0. */
async function echoServer(t: Test, options: HttpServerOptions = {}) {
  const made = testServer(options);
  const echo = (ctx: RequestContext) => ({
    body: { method: ctx.method, url: ctx.req?.url ?? ctx.exchange?.url, params: ctx.params, headers: ctx.headers, body: ctx.rawBody.toString('latin1') },
  });
  for (const method of ['GET', 'POST', 'PUT'] as const) {
    made.server.route(method, '/echo', echo);
    made.server.route(method, '/items/:id', echo);
  }
  made.server.route('POST', '/digest', (ctx) => ({ body: { bytes: ctx.rawBody.length, sha256: createHash('sha256').update(ctx.rawBody).digest('hex') } }));
  const { port } = await made.server.listen({ port: 0, host: HOST });
  t.teardown(() => made.server.close());
  return { ...made, port };
}

/** A raw connection closed at the end of the test. */
async function open(t: Test, port: number): Promise<RawConnection> {
  const connection = await RawConnection.open(port, HOST);
  t.teardown(() => connection.destroy());
  return connection;
}

function echoed(response: RawResponse): { method: string; url: string; params: Record<string, string>; headers: Record<string, string>; body: string } {
  return JSON.parse(response.body.toString('utf8'));
}

const GET_ECHO = 'GET /echo HTTP/1.1\r\nhost: a\r\n\r\n';

t.test('answers several requests in turn on one keep-alive connection', async (t) => {
  const { port } = await echoServer(t);
  const connection = await open(t, port);
  for (let index = 0; index < 3; index++) {
    await connection.write(`GET /items/i${index} HTTP/1.1\r\nhost: a\r\n\r\n`);
    const response = await connection.response();
    t.equal(response.status, 200);
    t.equal(response.headers.connection, 'keep-alive');
    t.equal(echoed(response).params.id, `i${index}`);
  }
  t.notOk(connection.ended, 'the connection stays open');
});

t.test('answers two pipelined requests sent in one write, in order', async (t) => {
  const { port } = await echoServer(t);
  const connection = await open(t, port);
  await connection.write('GET /echo?n=1 HTTP/1.1\r\nhost: a\r\n\r\nPOST /echo?n=2 HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello');
  const first = echoed(await connection.response());
  const second = echoed(await connection.response());
  t.same([first.url, second.url], ['/echo?n=1', '/echo?n=2']);
  t.equal(second.body, 'hello');
});

t.test('answers every one of many pipelined requests (more than the pipelined-bytes bound) in order', async (t) => {
  const { port } = await echoServer(t);
  const connection = await open(t, port);
  const count = 3000;
  let bytes = '';
  for (let index = 0; index < count; index++) bytes += `GET /items/${index} HTTP/1.1\r\nhost: a\r\n\r\n`;
  t.ok(bytes.length > 64 * 1024, `${bytes.length} bytes pipelined`);
  await connection.write(bytes);
  let inOrder = 0;
  for (let index = 0; index < count; index++) {
    if (echoed(await connection.response()).params.id === String(index)) inOrder++;
  }
  t.equal(inOrder, count);
});

t.test('parses a head and body split byte by byte, and split across writes', async (t) => {
  const { port } = await echoServer(t);
  const request = 'POST /echo HTTP/1.1\r\nhost: a\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n\r\nhello world';
  const byteByByte = await open(t, port);
  for (const byte of Buffer.from(request)) await byteByByte.write(Buffer.from([byte]));
  const one = echoed(await byteByByte.response());
  t.equal(one.body, 'hello world');
  t.equal(one.headers['content-type'], 'text/plain');

  const acrossWrites = await open(t, port);
  for (const piece of ['POST /echo HTTP/1.1\r\nho', 'st: a\r\ncontent-length: 11\r', '\n\r\nhel', 'lo w', 'orld']) await acrossWrites.write(piece);
  t.equal(echoed(await acrossWrites.response()).body, 'hello world');
  await acrossWrites.write(GET_ECHO);
  t.equal((await acrossWrites.response()).status, 200, 'the connection continues after a body gathered from several reads');
});

t.test('takes a 1 MiB body within the limit whole', async (t) => {
  const { port } = await echoServer(t);
  const body = Buffer.alloc(1024 * 1024);
  for (let index = 0; index < body.length; index++) body[index] = (index * 7919) & 0xff;
  const connection = await open(t, port);
  await connection.write(`POST /digest HTTP/1.1\r\nhost: a\r\ncontent-length: ${body.length}\r\n\r\n`);
  await connection.write(body);
  const response = await connection.response();
  t.same(JSON.parse(response.body.toString()), { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
});

/**
 * Requests outside keygate's subset: each is written to a server of each parser; both must give
 * the same statuses and close (or not) alike, and `expected` pins what that is.
 */
const HAND_OFF_CASES: Array<{ name: string; bytes: string; statuses: number[]; closed: boolean; check?: (t: Test, responses: RawResponse[]) => void }> = [
  {
    name: 'a chunked POST reaches the handler with its whole body, and the connection continues',
    bytes: 'POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n' + GET_ECHO,
    statuses: [200, 200],
    closed: false,
    check: (t, responses) => t.equal(echoed(responses[0]!).body, 'hello world'),
  },
  {
    name: '`expect: 100-continue` gets 100 Continue, then the answer',
    bytes: 'POST /echo HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\nhi',
    statuses: [100, 200],
    closed: false,
    check: (t, responses) => t.equal(echoed(responses[1]!).body, 'hi'),
  },
  { name: 'HTTP/1.0 is answered and then closed', bytes: 'GET /echo HTTP/1.0\r\nhost: a\r\n\r\n', statuses: [200], closed: true },
  { name: 'a request without host gets 400', bytes: 'GET /echo HTTP/1.1\r\n\r\n', statuses: [400], closed: true },
  { name: 'a duplicate content-length gets 400', bytes: 'POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!', statuses: [400], closed: true },
  {
    name: 'content-length with transfer-encoding (smuggling) gets 400, and the smuggled request is never answered',
    bytes: 'POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n' + GET_ECHO,
    statuses: [400],
    closed: true,
  },
  { name: 'an obs-fold header line gets 400', bytes: 'GET /echo HTTP/1.1\r\nhost: a\r\nx-a: b\r\n c\r\n\r\n', statuses: [400], closed: true },
  { name: 'a control character in a header value gets 400', bytes: 'GET /echo HTTP/1.1\r\nhost: a\r\nx-a: b\x01c\r\n\r\n', statuses: [400], closed: true },
  {
    name: 'an absolute-form target is routed as node:http routes it (its raw url)',
    bytes: 'GET http://a/echo HTTP/1.1\r\nhost: a\r\n\r\n' + GET_ECHO,
    statuses: [404, 200],
    closed: false,
  },
  { name: 'bare-LF line endings get 400', bytes: 'GET /echo HTTP/1.1\nhost: a\n\n', statuses: [400], closed: true },
  {
    name: 'a fast request then, on the same connection, one that needs hand-off: both answered',
    bytes: GET_ECHO + 'POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    statuses: [200, 200],
    closed: false,
    check: (t, responses) => t.equal(echoed(responses[1]!).body, 'ok'),
  },
  {
    name: 'a connection token list other than close (`closed`) does not close the connection',
    bytes: 'GET /echo HTTP/1.1\r\nhost: a\r\nconnection: closed\r\n\r\n' + GET_ECHO,
    statuses: [200, 200],
    closed: false,
  },
];

for (const handOff of HAND_OFF_CASES) {
  t.test(`hand-off, answered as node:http answers it: ${handOff.name}`, async (t) => {
    for (const http1Parser of ['keygate', 'node'] as const) {
      const { port } = await echoServer(t, { http1Parser });
      const connection = await open(t, port);
      await connection.write(handOff.bytes);
      const responses: RawResponse[] = [];
      for (const _status of handOff.statuses) responses.push(await connection.response());
      t.same(responses.map((response) => response.status), handOff.statuses, `${http1Parser}: statuses`);
      handOff.check?.(t, responses);
      if (handOff.closed) {
        await connection.waitClosed();
        t.pass(`${http1Parser}: closed`);
      } else {
        await connection.write(GET_ECHO);
        t.equal((await connection.response()).status, 200, `${http1Parser}: the connection continues`);
      }
    }
  });
}

t.test('a fast request followed by a hand-off one in a later write: both answered', async (t) => {
  const { port } = await echoServer(t);
  const connection = await open(t, port);
  await connection.write(GET_ECHO);
  t.equal((await connection.response()).status, 200);
  await connection.write('POST /echo HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 3\r\n\r\n');
  t.equal((await connection.response()).status, 100);
  await connection.write('abc');
  t.equal(echoed(await connection.response()).body, 'abc');
});

t.test('a header section over maxHeaderBytes gets 431 and the connection is closed', async (t) => {
  const { port } = await echoServer(t, { maxHeaderBytes: 1024 });
  const complete = await open(t, port);
  await complete.write(`GET /echo HTTP/1.1\r\nhost: a\r\nx-big: ${'b'.repeat(2048)}\r\n\r\n`);
  t.equal((await complete.response()).status, 431);
  await complete.waitClosed();
  const endless = await open(t, port);
  await endless.write(`GET /echo HTTP/1.1\r\nhost: a\r\nx-big: ${'b'.repeat(2048)}`);
  t.equal((await endless.response()).status, 431, 'also before the end of the head arrives');
  await endless.waitClosed();
});

t.test('headers trickled slower than headersTimeoutMs get 408 and the connection is closed', async (t) => {
  for (const http1Parser of ['keygate', 'node'] as const) {
    const { port } = await echoServer(t, { http1Parser, headersTimeoutMs: 150, keepAliveTimeoutMs: 5_000 });
    const connection = await open(t, port);
    await connection.write('GET /echo HTTP/1.1\r\nhost: a\r\n');
    // One header line every 20 ms: the socket is never idle, the head never completes.
    let line = 0;
    const trickle = setInterval(() => {
      if (!connection.ended) connection.socket.write(`x-${line++}: y\r\n`);
    }, 20);
    t.teardown(() => clearInterval(trickle));
    await connection.waitClosed(5_000);
    clearInterval(trickle);
    const responses = connection.received.toString('latin1');
    t.match(responses, /^HTTP\/1\.1 408 /, `${http1Parser}: 408`);
  }
});

t.test('a body trickled slower than requestReceiveTimeoutMs gets 408 and the connection is closed', async (t) => {
  for (const http1Parser of ['keygate', 'node'] as const) {
    const { port } = await echoServer(t, { http1Parser, headersTimeoutMs: 100, requestReceiveTimeoutMs: 200, keepAliveTimeoutMs: 5_000 });
    const connection = await open(t, port);
    await connection.write('POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 100000\r\n\r\n');
    // One byte every 20 ms: the socket is never idle, the body never completes.
    const trickle = setInterval(() => {
      if (!connection.ended) connection.socket.write('x');
    }, 20);
    t.teardown(() => clearInterval(trickle));
    await connection.waitClosed(5_000);
    clearInterval(trickle);
    t.match(connection.received.toString('latin1'), /^HTTP\/1\.1 408 /, `${http1Parser}: 408`);
  }
});

t.test('an idle keep-alive connection is closed after keepAliveTimeoutMs', async (t) => {
  for (const http1Parser of ['keygate', 'node'] as const) {
    const { port } = await echoServer(t, { http1Parser, keepAliveTimeoutMs: 100 });
    const connection = await open(t, port);
    await connection.write(GET_ECHO);
    const response = await connection.response();
    t.equal(response.headers.connection, 'keep-alive');
    await connection.waitClosed(5_000);
    t.equal(connection.unreadBytes.length, 0, `${http1Parser}: closed without another byte`);
  }
});

t.test('`connection: close` from the client: the response says close and the socket ends', async (t) => {
  for (const http1Parser of ['keygate', 'node'] as const) {
    const { port } = await echoServer(t, { http1Parser });
    const connection = await open(t, port);
    await connection.write('GET /echo HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n' + GET_ECHO);
    const response = await connection.response();
    t.equal(response.headers.connection?.toLowerCase(), 'close', `${http1Parser}: connection: close`);
    await connection.waitClosed();
    t.equal(connection.unreadBytes.length, 0, `${http1Parser}: the pipelined request after it is not answered`);
  }
});

t.test('a handler header value with CR/LF gives 500 and injects nothing', async (t) => {
  for (const http1Parser of ['keygate', 'node'] as const) {
    const { server, port } = await echoServer(t, { http1Parser });
    server.route('GET', '/inject', () => ({ headers: { 'x-note': 'a\r\nset-cookie: evil=1' }, body: 'ok' }));
    const connection = await open(t, port);
    await connection.write('GET /inject HTTP/1.1\r\nhost: a\r\n\r\n');
    const response = await connection.response();
    t.equal(response.status, 500, `${http1Parser}: 500`);
    t.match(connection.received.toString('latin1'), /^HTTP\/1\.1 500 Internal Server Error\r\n/, `${http1Parser}: the 500's own reason phrase`);
    t.notOk(/evil/.test(connection.received.toString('latin1')), `${http1Parser}: nothing of the value reached the wire`);
    await connection.write(GET_ECHO);
    t.equal((await connection.response()).status, 200, `${http1Parser}: the connection is still usable`);
  }
});

t.test('HEAD gets content-length but no body, and the next request on the connection still parses', async (t) => {
  for (const http1Parser of ['keygate', 'node'] as const) {
    const { port } = await echoServer(t, { http1Parser });
    const connection = await open(t, port);
    await connection.write('HEAD /echo HTTP/1.1\r\nhost: a\r\n\r\n' + GET_ECHO);
    const head = await connection.response({ head: true });
    t.equal(head.status, 200);
    t.ok(Number(head.headers['content-length']) > 0, `${http1Parser}: content-length of the GET body`);
    const next = await connection.response();
    t.equal(next.status, 200, `${http1Parser}: the next response starts right after the HEAD head`);
    t.equal(echoed(next).method, 'GET');
  }
});

t.test('a response header value with latin1 characters is written as latin1 octets', async (t) => {
  const { server, port } = await echoServer(t);
  server.route('GET', '/latin1', () => ({ headers: { 'x-name': 'café' }, body: Buffer.from('ok') }));
  const connection = await open(t, port);
  await connection.write('GET /latin1 HTTP/1.1\r\nhost: a\r\n\r\n');
  const response = await connection.response();
  t.equal(response.headers['x-name'], 'café', 'é is the one octet 0xE9, as node:http writes header values');
  t.equal(response.body.toString(), 'ok');
});

t.test('a response header value outside latin1 gives 500, as on node:http, instead of a mangled octet', async (t) => {
  for (const http1Parser of ['keygate', 'node'] as const) {
    const { server, port } = await echoServer(t, { http1Parser });
    server.route('GET', '/euro', () => ({ headers: { 'x-price': '5 €' }, body: 'ok' }));
    const connection = await open(t, port);
    await connection.write('GET /euro HTTP/1.1\r\nhost: a\r\n\r\n');
    t.equal((await connection.response()).status, 500, `${http1Parser}: 500`);
  }
});

t.test('every response carries a valid date header', async (t) => {
  const { port } = await echoServer(t);
  const connection = await open(t, port);
  await connection.write(GET_ECHO + 'GET /nope HTTP/1.1\r\nhost: a\r\n\r\n');
  for (const response of [await connection.response(), await connection.response()]) {
    t.ok(response.headers.date !== undefined && !Number.isNaN(Date.parse(response.headers.date)), `date: ${response.headers.date}`);
  }
});

t.test('a client half-close with a request in flight is logged as 499', async (t) => {
  for (const http1Parser of ['keygate', 'node'] as const) {
    const { server, port, accessLines } = await echoServer(t, { http1Parser });
    const started = deferred();
    const release = deferred();
    server.route('GET', '/slow', async () => {
      started.resolve();
      await release.promise;
      return { body: 'late' };
    });
    const connection = await open(t, port);
    await connection.write('GET /slow HTTP/1.1\r\nhost: a\r\n\r\n');
    await started.promise;
    connection.end();
    await connection.waitClosed();
    release.resolve();
    await waitFor(() => accessLines().length === 1, 2_000, 'the access line');
    t.equal(accessLines()[0]!.status, 499, `${http1Parser}: 499`);
    t.equal(connection.received.length, 0, `${http1Parser}: nothing was answered`);
  }
});

t.test('close() drains: an idle connection is closed at once, an in-flight one is answered with connection: close', async (t) => {
  for (const http1Parser of ['keygate', 'node'] as const) {
    const { server, port } = await echoServer(t, { http1Parser });
    const started = deferred();
    const release = deferred();
    server.route('GET', '/slow', async () => {
      started.resolve();
      await release.promise;
      return { body: 'done' };
    });
    const idle = await open(t, port);
    await idle.write(GET_ECHO);
    await idle.response();
    const busy = await open(t, port);
    await busy.write('GET /slow HTTP/1.1\r\nhost: a\r\n\r\n');
    await started.promise;
    const closing = server.close();
    await idle.waitClosed();
    t.pass(`${http1Parser}: the idle connection was closed while a request was still in flight`);
    release.resolve();
    const response = await busy.response();
    t.equal(response.status, 200);
    t.equal(response.headers.connection?.toLowerCase(), 'close', `${http1Parser}: the in-flight answer says close`);
    await busy.waitClosed();
    await closing;
  }
});

/** Connects, sends one GET for `path`, and returns the socket (paused: nothing is read until resumed). */
async function pausedGet(t: Test, port: number, path: string): Promise<{ socket: Socket; received: () => number; closed: Promise<void> }> {
  const socket = connect(port, HOST);
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  let receivedBytes = 0;
  socket.on('data', (chunk: Buffer) => {
    receivedBytes += chunk.length;
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.pause();
  socket.write(`GET ${path} HTTP/1.1\r\nhost: a\r\n\r\n`);
  return { socket, received: () => receivedBytes, closed };
}

const LARGE_BODY_BYTES = 16 * 1024 * 1024;

t.test('a reader that takes nothing of a response for two idle periods is disconnected (slow-read bound)', async (t) => {
  const { server, port } = await echoServer(t, { keepAliveTimeoutMs: 100 });
  server.route('GET', '/large', () => ({ body: Buffer.alloc(LARGE_BODY_BYTES, 'x') }));
  const reader = await pausedGet(t, port, '/large');
  await waitFor(() => server.openHttp1Connections === 0, 5_000, 'the server to drop the stalled connection');
  reader.socket.resume();
  await reader.closed;
  t.ok(reader.received() < LARGE_BODY_BYTES, `the stalled reader was cut off (${reader.received()} bytes read)`);
});

t.test('a slow reader that keeps taking bytes receives the whole response, however long it takes', async (t) => {
  const { server, port } = await echoServer(t, { keepAliveTimeoutMs: 200 });
  server.route('GET', '/large', () => ({ body: Buffer.alloc(LARGE_BODY_BYTES, 'x') }));
  const reader = await pausedGet(t, port, '/large');
  // Pauses longer than one idle period (200 ms) and shorter than two, with progress in between.
  while (reader.received() < LARGE_BODY_BYTES) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    reader.socket.resume();
    await new Promise((resolve) => setTimeout(resolve, 5));
    reader.socket.pause();
    if (reader.socket.destroyed) break;
  }
  // (Once the body is out, the connection may close for keep-alive idleness: that is not checked.)
  t.ok(reader.received() > LARGE_BODY_BYTES, `the head and all ${LARGE_BODY_BYTES} body bytes arrived (${reader.received()})`);
});

t.test('a client that sends requests but never reads gets no more answers than the socket can hold (write backpressure)', async (t) => {
  const { server, port } = await echoServer(t);
  let handled = 0;
  server.route('GET', '/bulky', () => {
    handled++;
    return { body: Buffer.alloc(16 * 1024, 'y') };
  });
  const socket = connect(port, HOST);
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  socket.on('error', () => {});
  socket.pause(); // never reads
  const requestCount = 5_000; // 80 MB of responses if all were answered
  socket.write('GET /bulky HTTP/1.1\r\nhost: a\r\n\r\n'.repeat(requestCount));
  // Wait until the server stops answering (the count holds still), bounded.
  let last = -1;
  const deadline = Date.now() + 10_000;
  while (handled !== last && Date.now() < deadline) {
    last = handled;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  t.ok(handled > 0, `some requests were answered (${handled})`);
  t.ok(handled < requestCount / 4, `answering stopped while the client read nothing: ${handled} of ${requestCount} answered`);
  socket.resume();
  await waitFor(() => handled === requestCount, 20_000, 'every request to be answered once the client reads');
  t.pass('every request was answered once the client read');
});

t.test('silence inside a request is allowed up to the request deadlines, not just the idle timeout', async (t) => {
  const { port } = await echoServer(t, { keepAliveTimeoutMs: 100, headersTimeoutMs: 2_000, requestReceiveTimeoutMs: 3_000 });
  const pause = () => new Promise((resolve) => setTimeout(resolve, 350));
  const head = await open(t, port);
  await head.write('GET /echo HTTP/1.1\r\nho');
  await pause();
  await head.write('st: a\r\n\r\n');
  t.equal((await head.response()).status, 200, 'a head that paused for three idle periods is answered');
  const body = await open(t, port);
  await body.write('POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\n\r\nab');
  await pause();
  await body.write('cd');
  const answered = await body.response();
  t.equal(answered.status, 200, 'a body that paused for three idle periods is answered');
  t.equal(echoed(answered).body, 'abcd');
});

t.test('a client half-close after its request still gets what was already answered, whole', async (t) => {
  const { server, port } = await echoServer(t);
  const bodyBytes = 1024 * 1024;
  server.route('GET', '/big', () => ({ body: Buffer.alloc(bodyBytes, 'z') }));
  const socket = connect(port, HOST);
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
  });
  const closed = once(socket, 'close');
  socket.end('GET /big HTTP/1.1\r\nhost: a\r\n\r\n');
  await closed;
  t.ok(received > bodyBytes, `the whole response arrived before the close (${received} bytes)`);
});
