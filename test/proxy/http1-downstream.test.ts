/**
 * The proxy's HTTP/1.1 downstream on keygate's own request path (`proxy/http1-downstream.ts`):
 * which requests it serves and which it hands to node:http, and what it puts on the wire
 * (framing, trailers, connection management, back-pressure, failures), over real loopback sockets.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type { Socket } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import type { Test } from 'tap';
import type { Fault } from '../../core/fault.ts';
import type { ProxyHooks } from '../../proxy/hooks.ts';
import { HttpPeer } from '../../proxy/http-peer.ts';
import { HTTP1_DOWNSTREAM_MAX_INLINE_BODY_BYTES, Http1DownstreamRequest } from '../../proxy/http1-downstream.ts';
import type { ProxySession } from '../../proxy/proxy-session.ts';
import { CertificateStore } from '../../proxy/tls/certificate-store.ts';
import { RawConnection } from '../core/http/raw-http1-client.ts';
import { createTestCertificate } from '../helpers/certificates.ts';
import type { TestOrigin } from './helpers.ts';
import { forEachEngine, startOrigin, startProxy, waitFor } from './helpers.ts';

/** Which downstream object a request arrived as. */
type RequestKind = 'keygate' | 'node' | 'h2' | 'other';

/** What the hooks of a test proxy saw: the request kind per request, and the fault of each finished one. */
interface Seen {
  kinds: RequestKind[];
  faults: (Fault | undefined)[];
  sessions: ProxySession[];
}

function newSeen(): Seen {
  return { kinds: [], faults: [], sessions: [] };
}

function kindOf(session: ProxySession): RequestKind {
  const req = session.req;
  if (req instanceof Http1DownstreamRequest) return 'keygate';
  if (req instanceof http.IncomingMessage) return 'node';
  if (req instanceof http2.Http2ServerRequest) return 'h2';
  return 'other';
}

/** Hooks forwarding to `origin` that record into `seen`; `extra` adds or replaces phases. */
function recordingHooks(origin: TestOrigin, seen: Seen, extra: Partial<ProxyHooks<object>> = {}): ProxyHooks<object> {
  return {
    newCtx: () => ({}),
    earlyRequestFilter: (session) => {
      seen.kinds.push(kindOf(session));
      seen.sessions.push(session);
    },
    upstreamPeer: () => new HttpPeer(origin.url),
    logging: (_session, fault) => { seen.faults.push(fault); },
    ...extra,
  };
}

/** A raw client connection, destroyed at the end of the test. */
async function openRaw(t: Test, port: number): Promise<RawConnection> {
  const connection = await RawConnection.open(port);
  t.teardown(() => connection.destroy());
  return connection;
}

/** An origin that answers with what it received: method, url, framing headers, body length and digest. */
async function echoOrigin(t: Test): Promise<TestOrigin> {
  const origin = await startOrigin((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({
        method: req.method,
        url: req.url,
        contentLength: req.headers['content-length'] ?? null,
        transferEncoding: req.headers['transfer-encoding'] ?? null,
        forwardedProto: req.headers['x-forwarded-proto'] ?? null,
        bodyBytes: body.length,
        bodyDigest: digest(body),
        bodyStart: body.subarray(0, 32).toString('latin1'),
      }));
    });
  });
  t.teardown(() => origin.close());
  return origin;
}

interface Echo {
  method: string;
  url: string;
  contentLength: string | null;
  transferEncoding: string | null;
  forwardedProto: string | null;
  bodyBytes: number;
  bodyDigest: string;
  bodyStart: string;
}

function digest(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A body whose every byte depends on its offset, so a lost, repeated or reordered slice shows. */
function patternedBytes(length: number, seed = 0): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let index = 0; index < length; index++) bytes[index] = (index * 31 + seed + (index >>> 16)) & 0xff;
  return bytes;
}

/** One chunked response decoded strictly (every size line, CRLF and the trailer section checked). */
interface ChunkedResponse {
  head: string;
  body: Buffer;
  /** Trailer lines as sent, e.g. `x-digest: abc`. */
  trailers: string[];
  /** Offset just after the response (where a next response would start). */
  end: number;
}

/**
 * Decodes the chunked response that starts at `bytes[0]`. Returns undefined while it is incomplete;
 * throws on any framing error (a stray byte, a bad size line, a missing CRLF).
 */
function decodeChunkedResponse(bytes: Buffer): ChunkedResponse | undefined {
  const headEnd = bytes.indexOf('\r\n\r\n');
  if (headEnd === -1) return undefined;
  const head = bytes.toString('latin1', 0, headEnd);
  if (!/\r\ntransfer-encoding: chunked(\r\n|$)/i.test(head)) throw new Error(`not a chunked response: ${head}`);
  const parts: Buffer[] = [];
  let offset = headEnd + 4;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', offset);
    if (lineEnd === -1) return undefined;
    const sizeLine = bytes.toString('latin1', offset, lineEnd);
    if (!/^[0-9a-f]+$/i.test(sizeLine)) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine)}`);
    const size = parseInt(sizeLine, 16);
    offset = lineEnd + 2;
    if (size === 0) break;
    if (bytes.length < offset + size + 2) return undefined;
    parts.push(bytes.subarray(offset, offset + size));
    if (bytes[offset + size] !== 13 || bytes[offset + size + 1] !== 10) throw new Error('chunk data not followed by CRLF');
    offset += size + 2;
  }
  const trailers: string[] = [];
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', offset);
    if (lineEnd === -1) return undefined;
    const line = bytes.toString('latin1', offset, lineEnd);
    offset = lineEnd + 2;
    if (line === '') break;
    trailers.push(line);
  }
  return { head, body: Buffer.concat(parts), trailers, end: offset };
}

/** Header lines of a raw head named `name` (any case). */
function headLines(head: string, name: string): string[] {
  return head.split('\r\n').slice(1).filter((line) => line.toLowerCase().startsWith(`${name}:`));
}

t.test('a plain GET runs on the keygate path by default, on node:http with http1Parser node', async (t) => {
  const origin = await startOrigin((req, res) => res.end(`origin ${req.method} ${req.url}`));
  t.teardown(() => origin.close());
  for (const parser of ['keygate', 'node'] as const) {
    const seen = newSeen();
    const { proxy, port } = await startProxy({ hooks: recordingHooks(origin, seen) }, parser === 'keygate' ? {} : { http1Parser: 'node' });
    t.teardown(() => proxy.close({ graceMs: 100 }));
    const connection = await openRaw(t, port);
    await connection.write('GET /plain?x=1 HTTP/1.1\r\nHost: app.test\r\n\r\n');
    const response = await connection.response();
    t.equal(response.status, 200, `${parser}: status`);
    t.equal(response.body.toString(), 'origin GET /plain?x=1', `${parser}: body`);
    t.same(seen.kinds, [parser], `${parser}: the request object`);
  }
});

t.test('the keygate response is an EventEmitter: a hook\'s finish and close listeners run after the logging phase, and close alone when the client leaves', async (t) => {
  const origin = await startOrigin((req, res) => {
    if (req.url === '/slow') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part one');
      return; // Never ends: only the client leaving ends this exchange.
    }
    res.end('ok');
  });
  t.teardown(() => origin.close());
  const events: string[] = [];
  const seen = newSeen();
  const hooks = recordingHooks(origin, seen, {
    requestFilter: (session) => {
      const res = session.res!;
      events.push(`${session.path} emitter ${res instanceof EventEmitter}`);
      const emitter = res as unknown as EventEmitter;
      emitter.on('finish', () => events.push(`${session.path} finish`));
      emitter.on('close', () => events.push(`${session.path} close, finished ${res.writableFinished}`));
      return 'continue';
    },
    logging: (session, fault) => {
      seen.faults.push(fault);
      events.push(`${session.path} logging ${fault?.status ?? 'ok'}`);
    },
  });
  const { proxy, port } = await startProxy({ hooks });
  t.teardown(() => proxy.close({ graceMs: 100 }));

  const connection = await openRaw(t, port);
  await connection.write('GET /done HTTP/1.1\r\nHost: app.test\r\n\r\n');
  t.equal((await connection.response()).body.toString(), 'ok');
  await waitFor(() => events.length === 4, 5_000, 'the events of /done');
  t.same(events, ['/done emitter true', '/done finish', '/done logging ok', '/done close, finished true'], 'finish, then the framework\'s close (logging), then the hook\'s close');
  t.same(seen.kinds, ['keygate'], 'served on the keygate path');

  events.length = 0;
  const leaving = await openRaw(t, port);
  await leaving.write('GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await waitFor(() => leaving.received.includes('part one'), 5_000, 'the first body bytes');
  leaving.destroy();
  await waitFor(() => events.length === 3, 5_000, 'the events of /slow');
  t.same(events, ['/slow emitter true', '/slow logging 499', '/slow close, finished false'], 'no finish; the framework\'s close, then the hook\'s');
});

t.test('request bodies: small ones are read inline and forwarded with a length; large and chunked ones go to node:http whole', async (t) => {
  const origin = await echoOrigin(t);
  const seen = newSeen();
  const { proxy, port } = await startProxy({ hooks: recordingHooks(origin, seen) });
  t.teardown(() => proxy.close({ graceMs: 100 }));

  t.test('a small content-length body, its bytes split over several reads', async (t) => {
    const body = Buffer.from('{"hello":"small body"}');
    const connection = await openRaw(t, port);
    await connection.write(`POST /small HTTP/1.1\r\nHost: app.test\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    await connection.write(body.subarray(0, 5));
    await connection.write(body.subarray(5));
    const echo = JSON.parse((await connection.response()).body.toString()) as Echo;
    t.equal(echo.method, 'POST');
    t.equal(echo.contentLength, String(body.length), 'forwarded with its content-length');
    t.equal(echo.transferEncoding, null, 'not chunked upstream');
    t.equal(echo.bodyDigest, digest(body));
    t.equal(seen.kinds.at(-1), 'keygate');
  });

  t.test(`a body of exactly ${HTTP1_DOWNSTREAM_MAX_INLINE_BODY_BYTES} bytes stays on the keygate path`, async (t) => {
    const body = patternedBytes(HTTP1_DOWNSTREAM_MAX_INLINE_BODY_BYTES, 1);
    const connection = await openRaw(t, port);
    await connection.write(Buffer.concat([Buffer.from(`POST /limit HTTP/1.1\r\nHost: app.test\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
    const echo = JSON.parse((await connection.response()).body.toString()) as Echo;
    t.equal(echo.contentLength, String(body.length));
    t.equal(echo.bodyDigest, digest(body));
    t.equal(seen.kinds.at(-1), 'keygate');
  });

  t.test('a body one byte over the inline limit is handed to node:http and arrives whole', async (t) => {
    const body = patternedBytes(HTTP1_DOWNSTREAM_MAX_INLINE_BODY_BYTES + 1, 2);
    const connection = await openRaw(t, port);
    await connection.write(`POST /large HTTP/1.1\r\nHost: app.test\r\nContent-Length: ${body.length}\r\n\r\n`);
    await connection.write(body);
    const echo = JSON.parse((await connection.response()).body.toString()) as Echo;
    t.equal(echo.contentLength, String(body.length));
    t.equal(echo.bodyBytes, body.length);
    t.equal(echo.bodyDigest, digest(body));
    t.equal(seen.kinds.at(-1), 'node');
  });

  t.test('a 1 MB body is handed to node:http and streamed whole', async (t) => {
    const body = patternedBytes(1024 * 1024, 3);
    const connection = await openRaw(t, port);
    await connection.write(Buffer.concat([Buffer.from(`PUT /big HTTP/1.1\r\nHost: app.test\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
    const echo = JSON.parse((await connection.response()).body.toString()) as Echo;
    t.equal(echo.method, 'PUT');
    t.equal(echo.bodyBytes, body.length);
    t.equal(echo.bodyDigest, digest(body));
    t.equal(seen.kinds.at(-1), 'node');
  });

  t.test('a chunked body after a fast request is handed to node:http, arrives whole, and the connection stays with node:http', async (t) => {
    const connection = await openRaw(t, port);
    await connection.write('GET /before HTTP/1.1\r\nHost: app.test\r\n\r\n');
    t.equal((JSON.parse((await connection.response()).body.toString()) as Echo).url, '/before');
    t.equal(seen.kinds.at(-1), 'keygate');
    await connection.write('POST /chunked HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    await connection.write('6\r\n world\r\n0\r\n\r\n');
    const echo = JSON.parse((await connection.response()).body.toString()) as Echo;
    t.equal(echo.bodyBytes, 11);
    t.equal(echo.bodyStart, 'hello world');
    t.equal(seen.kinds.at(-1), 'node');
    await connection.write('GET /next HTTP/1.1\r\nHost: app.test\r\n\r\n');
    const next = JSON.parse((await connection.response()).body.toString()) as Echo;
    t.equal(next.url, '/next');
    t.equal(seen.kinds.at(-1), 'node', 'the rest of a handed-off connection is node:http\'s');
  });
});

forEachEngine(t, (t, engine) => {
  t.test('a streamed upstream response goes out chunked with its trailers, and the connection is reusable', async (t) => {
    const origin = await startOrigin((req, res) => {
      if (req.url === '/after') {
        res.end('after');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-digest' });
      res.write('first ');
      setImmediate(() => {
        res.write('second');
        res.addTrailers({ 'x-digest': 'abc123' });
        res.end();
      });
    });
    t.teardown(() => origin.close());
    const { proxy, port } = await startProxy({ engine, hooks: recordingHooks(origin, newSeen()) });
    t.teardown(() => proxy.close({ graceMs: 100 }));

    const connection = await openRaw(t, port);
    await connection.write('GET /stream HTTP/1.1\r\nHost: app.test\r\n\r\n');
    let decoded: ChunkedResponse | undefined;
    await waitFor(() => (decoded = decodeChunkedResponse(connection.received)) !== undefined, 5_000, 'the chunked response');
    const response = decoded!;
    t.equal(headLines(response.head, 'transfer-encoding').length, 1, 'one transfer-encoding header');
    t.same(headLines(response.head, 'content-length'), [], 'no content-length');
    t.equal(response.body.toString(), 'first second');
    t.same(response.trailers.map((line) => line.toLowerCase()), ['x-digest: abc123'], 'the trailer follows the last chunk');
    t.equal(connection.received.length, response.end, 'nothing after the response');

    await connection.write('GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n');
    await waitFor(() => connection.received.length > response.end && connection.received.includes('after', response.end), 5_000, 'the next response');
    const next = connection.received.subarray(response.end).toString('latin1');
    t.match(next, /^HTTP\/1\.1 200 OK\r\n/, 'the next response starts right after the trailers');
    t.match(next, /\r\n\r\nafter$/);
  });

  t.test('a declared zero length in any spelling (content-length: 00) is an empty body, forwarded or read', async (t) => {
    const origin = await echoOrigin(t);
    for (const readBody of [false, true]) {
      const seen = newSeen();
      const hooks = recordingHooks(origin, seen, readBody ? { requestFilter: async (session) => { t.equal((await session.readBody(1024)).length, 0); return 'continue' as const; } } : {});
      const { proxy, port } = await startProxy({ engine, hooks });
      t.teardown(() => proxy.close({ graceMs: 100 }));
      const connection = await openRaw(t, port);
      for (const length of ['00', '0']) {
        await connection.write(`POST /zero HTTP/1.1\r\nHost: app.test\r\nContent-Length: ${length}\r\n\r\n`);
        const response = await connection.response();
        t.equal(response.status, 200, `content-length ${length}, readBody ${readBody}: answered`);
        const echo = JSON.parse(response.body.toString()) as Echo;
        t.equal(echo.bodyBytes, 0);
        t.equal(echo.contentLength, '0', 'forwarded with a zero length');
      }
      t.same(seen.kinds, ['keygate', 'keygate']);
      t.same(seen.faults, [undefined, undefined]);
    }
  });

  t.test('HEAD, 204 and 304 responses carry no body and no chunked framing', async (t) => {
    const origin = await startOrigin((req, res) => {
      if (req.url === '/204') res.writeHead(204).end();
      else if (req.url === '/304') res.writeHead(304, { etag: '"v1"' }).end();
      else if (req.url === '/after') res.end('after');
      else {
        // Streamed (no content-length); node drops the body of a HEAD answer.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('streamed');
        res.end();
      }
    });
    t.teardown(() => origin.close());
    const { proxy, port } = await startProxy({ engine, hooks: recordingHooks(origin, newSeen()) });
    t.teardown(() => proxy.close({ graceMs: 100 }));

    const connection = await openRaw(t, port);
    for (const [method, path, status] of [['HEAD', '/resource', 200], ['GET', '/204', 204], ['GET', '/304', 304]] as const) {
      await connection.write(`${method} ${path} HTTP/1.1\r\nHost: app.test\r\n\r\n`);
      const response = await connection.response({ head: method === 'HEAD' });
      t.equal(response.status, status, `${method} ${path}: status`);
      t.equal(response.headers['transfer-encoding'], undefined, `${method} ${path}: not chunked`);
      t.equal(response.headers.connection, 'keep-alive', `${method} ${path}: keep-alive`);
    }
    // A stray body or last-chunk byte of any of them would stand before this response's status line.
    await connection.write('GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n');
    const after = await connection.response();
    t.equal(after.status, 200);
    t.equal(after.body.toString(), 'after');
    t.equal(connection.unreadBytes.length, 0, 'no stray bytes');
  });

  t.test('a client that disconnects mid-response aborts the upstream request and is logged as client closed', async (t) => {
    let upstreamClosed = false;
    const origin = await startOrigin((req, res) => {
      if (req.url === '/ok') {
        res.end('ok');
        return;
      }
      req.socket.once('close', () => { upstreamClosed = true; });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part one');
      // Never ends: only the client leaving ends this exchange.
    });
    t.teardown(() => origin.close());
    const seen = newSeen();
    const { proxy, port } = await startProxy({ engine, hooks: recordingHooks(origin, seen) });
    t.teardown(() => proxy.close({ graceMs: 100 }));

    const connection = await openRaw(t, port);
    await connection.write('GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n');
    await waitFor(() => connection.received.includes('part one'), 5_000, 'the first body bytes');
    connection.destroy();
    await waitFor(() => upstreamClosed && seen.faults.length === 1, 5_000, 'the upstream abort and the logging phase');
    t.equal(seen.faults[0]?.code, 'err:user:bad_request:client_closed_request');
    t.equal(seen.faults[0]?.status, 499);

    const again = await openRaw(t, port);
    await again.write('GET /ok HTTP/1.1\r\nHost: app.test\r\n\r\n');
    t.equal((await again.response()).body.toString(), 'ok', 'the proxy still serves');
  });

  t.test('an upstream failure after the head was sent cuts the downstream connection (no clean end)', async (t) => {
    const origin = await startOrigin((req, res) => {
      res.writeHead(200, req.url === '/with-length' ? { 'content-length': '1000' } : { 'content-type': 'text/plain' });
      res.write('partial');
      setImmediate(() => res.socket?.destroy());
    });
    t.teardown(() => origin.close());
    const seen = newSeen();
    const { proxy, port } = await startProxy({ engine, hooks: recordingHooks(origin, seen) });
    t.teardown(() => proxy.close({ graceMs: 100 }));

    const chunked = await openRaw(t, port);
    await chunked.write('GET /streamed HTTP/1.1\r\nHost: app.test\r\n\r\n');
    await chunked.waitClosed();
    const text = chunked.received.toString('latin1');
    t.match(text, /^HTTP\/1\.1 200 OK\r\n/, 'the head went out');
    t.match(text, /\r\ntransfer-encoding: chunked\r\n/);
    t.match(text, /partial/, 'the first bytes went out');
    t.notMatch(text, /\r\n0\r\n/, 'no last chunk: the body is visibly incomplete');
    t.equal(decodeChunkedResponse(chunked.received), undefined, 'the chunked body never completes');

    const withLength = await openRaw(t, port);
    await withLength.write('GET /with-length HTTP/1.1\r\nHost: app.test\r\n\r\n');
    await withLength.waitClosed();
    const response = await withLength.response();
    t.equal(response.headers['content-length'], '1000');
    t.equal(response.truncated, true, 'fewer bytes than the declared length, then the close');
    await waitFor(() => seen.faults.length === 2, 5_000, 'both requests logged');
    t.ok(seen.faults.every((fault) => fault !== undefined), 'both are logged with a fault');
  });

  t.test('back-pressure: 20 MB streamed to a client that stops, then reads slowly, arrives whole without piling up in the proxy', async (t) => {
    const totalBytes = 20 * 1024 * 1024;
    const sliceBytes = 64 * 1024;
    const body = patternedBytes(totalBytes, 7);
    let sentBytes = 0;
    let downstream: Socket | undefined;
    let maxBufferedBytes = 0;
    const origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const pump = (): void => {
        while (sentBytes < totalBytes) {
          const slice = body.subarray(sentBytes, sentBytes + sliceBytes);
          sentBytes += slice.length;
          if (!res.write(slice)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    t.teardown(() => origin.close());
    const seen = newSeen();
    const hooks = recordingHooks(origin, seen, {
      earlyRequestFilter: (session) => {
        seen.kinds.push(kindOf(session));
        downstream = session.req.socket as Socket;
      },
    });
    const { proxy, port } = await startProxy({ engine, hooks });
    t.teardown(() => proxy.close({ graceMs: 100 }));

    // The proxy's own buffer towards the client, sampled throughout: with back-pressure it stays
    // near one upstream read's worth; without, it takes what the kernel buffers cannot.
    const sampler = setInterval(() => { maxBufferedBytes = Math.max(maxBufferedBytes, downstream?.writableLength ?? 0); }, 2);
    t.teardown(() => clearInterval(sampler));
    const client = net.connect(port, '127.0.0.1');
    t.teardown(() => client.destroy());
    await once(client, 'connect');
    client.pause();
    client.write('GET /big HTTP/1.1\r\nHost: app.test\r\n\r\n');
    // The client reads nothing until the origin has been held still for 300 ms (or sent everything).
    const deadline = Date.now() + 10_000;
    let last = -1;
    let stableSince = Date.now();
    while (Date.now() - stableSince < 300 && Date.now() < deadline) {
      if (sentBytes !== last) {
        last = sentBytes;
        stableSince = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    t.same(seen.kinds, ['keygate']);
    t.ok(downstream !== undefined, 'the downstream socket is sampled');
    t.ok(maxBufferedBytes < 4 * 1024 * 1024, `the proxy buffered at most ${(maxBufferedBytes / 1048576).toFixed(2)} MB for the stalled client`);

    // Then a slow reader: one read per timer tick.
    const chunks: Buffer[] = [];
    let receivedBytes = 0;
    let decoded: ChunkedResponse | undefined;
    const complete = new Promise<void>((resolve, reject) => {
      client.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        receivedBytes += chunk.length;
        client.pause();
        setTimeout(() => client.resume(), 0);
        if (receivedBytes > totalBytes) {
          try {
            decoded = decodeChunkedResponse(Buffer.concat(chunks));
          } catch (err) {
            reject(err as Error);
          }
          if (decoded !== undefined) resolve();
        }
      });
      client.once('close', () => reject(new Error(`closed after ${receivedBytes} bytes`)));
    });
    client.resume();
    await complete;
    clearInterval(sampler);
    t.equal(decoded!.body.length, totalBytes, 'every byte arrived');
    t.ok(decoded!.body.equals(body), 'in order and intact');
    t.ok(maxBufferedBytes < 4 * 1024 * 1024, `the proxy buffered at most ${(maxBufferedBytes / 1048576).toFixed(2)} MB for the slow reader`);
  });
});

t.test('response head: date, keep-alive with its timeout; a client connection: close is answered and closed', async (t) => {
  const origin = await startOrigin((_req, res) => {
    res.sendDate = false;
    res.end('hello');
  });
  t.teardown(() => origin.close());
  const { proxy, port } = await startProxy({ hooks: recordingHooks(origin, newSeen()) }, { idleTimeoutMs: 7_000 });
  t.teardown(() => proxy.close({ graceMs: 100 }));

  const keepAlive = await openRaw(t, port);
  await keepAlive.write('GET /one HTTP/1.1\r\nHost: app.test\r\n\r\n');
  const first = await keepAlive.response();
  t.equal(first.body.toString(), 'hello');
  t.equal(headLines(first.head, 'date').length, 1, 'one date header, added by the proxy');
  t.match(first.headers.date, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/, 'IMF-fixdate');
  t.ok(Math.abs(Date.parse(first.headers.date!) - Date.now()) < 5_000, 'the current date');
  t.equal(first.headers.connection, 'keep-alive');
  t.equal(first.headers['keep-alive'], 'timeout=7', 'the idle timeout in seconds');
  await keepAlive.write('GET /two HTTP/1.1\r\nHost: app.test\r\n\r\n');
  t.equal((await keepAlive.response()).body.toString(), 'hello', 'the connection is reused');
  t.equal(keepAlive.ended, false, 'and stays open');

  const closing = await openRaw(t, port);
  await closing.write('GET /bye HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n');
  const last = await closing.response();
  t.equal(last.body.toString(), 'hello');
  t.equal(last.headers.connection, 'close');
  t.equal(last.headers['keep-alive'], undefined);
  await closing.waitClosed(2_000);
  t.pass('the proxy closed the connection after the response');
});

t.test('a whole response with a body of up to 16 KiB leaves in one socket write; a larger one in several; binary bytes arrive intact', async (t) => {
  const bodyOf = (size: number): Buffer => Buffer.from(Array.from({ length: size }, (_, index) => (index * 7) & 0xff));
  const origin = await startOrigin((req, res) => {
    const body = bodyOf(Number(req.url!.slice(1)));
    res.setHeader('content-length', body.length);
    res.end(body);
  });
  t.teardown(() => origin.close());
  // Every socket write of a response, recorded per request (the spy is installed on the request's socket).
  const writes: (string | Uint8Array)[][] = [];
  const hooks = recordingHooks(origin, newSeen(), {
    earlyRequestFilter: (session) => {
      const socket = session.req.socket as Socket & { spied?: boolean };
      const mine: (string | Uint8Array)[] = [];
      writes.push(mine);
      if (socket.spied === true) {
        (socket as unknown as { current: typeof mine }).current = mine;
        return;
      }
      socket.spied = true;
      (socket as unknown as { current: typeof mine }).current = mine;
      const write = socket.write;
      socket.write = function (this: Socket, chunk: string | Uint8Array, ...rest: unknown[]) {
        (socket as unknown as { current: typeof mine }).current.push(chunk);
        return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
      } as typeof socket.write;
    },
  });
  const { proxy, port } = await startProxy({ hooks });
  t.teardown(() => proxy.close({ graceMs: 100 }));
  const connection = await openRaw(t, port);
  for (const size of [1, 11, 16 * 1024, 16 * 1024 + 1, 100_000]) {
    await connection.write(`GET /${size} HTTP/1.1\r\nHost: app.test\r\n\r\n`);
    const response = await connection.response();
    t.equal(digest(response.body), digest(bodyOf(size)), `${size} bytes: the body arrives intact`);
    const written = writes.at(-1)!;
    const total = written.reduce((sum, chunk) => sum + Buffer.byteLength(chunk as string), 0);
    t.ok(total > size, `${size} bytes: head and body were written through the socket`);
    if (size <= 16 * 1024) {
      t.equal(written.length, 1, `${size} bytes: one write`);
      t.equal(Buffer.from(written[0]!).subarray(-size).equals(bodyOf(size)), true, `${size} bytes: the write ends with the body`);
    } else {
      t.ok(written.length >= 2, `${size} bytes: the head and the body are written separately`);
    }
  }
});

t.test('an idle keep-alive connection is closed after the listener\'s idle timeout', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('hello'));
  t.teardown(() => origin.close());
  const seen = newSeen();
  const { proxy, port } = await startProxy({ hooks: recordingHooks(origin, seen) }, { idleTimeoutMs: 200 });
  t.teardown(() => proxy.close({ graceMs: 100 }));
  const connection = await openRaw(t, port);
  await connection.write('GET / HTTP/1.1\r\nHost: app.test\r\n\r\n');
  t.equal((await connection.response()).headers.connection, 'keep-alive');
  const idleSinceMs = Date.now();
  await connection.waitClosed(3_000);
  t.ok(Date.now() - idleSinceMs >= 150, 'not before the idle timeout');
  t.same(seen.kinds, ['keygate']);
});

t.test('a connection header set by a response hook is the only one sent, and close in it closes the connection', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('hello'));
  t.teardown(() => origin.close());
  const { proxy, port } = await startProxy({
    hooks: recordingHooks(origin, newSeen(), { responseFilter: (session, response) => { if (session.path === '/close') response.headers.connection = 'close'; } }),
  });
  t.teardown(() => proxy.close({ graceMs: 100 }));

  const connection = await openRaw(t, port);
  await connection.write('GET /close HTTP/1.1\r\nHost: app.test\r\n\r\n');
  const response = await connection.response();
  t.equal(response.body.toString(), 'hello');
  t.same(headLines(response.head, 'connection'), ['connection: close'], 'one connection header: the hook\'s');
  t.same(headLines(response.head, 'keep-alive'), []);
  await connection.waitClosed(2_000);
  t.pass('the connection was closed after the response');
});

t.test('header names a hook writes in capitals are sent lower-case, and its Date replaces the proxy\'s', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('hello'));
  t.teardown(() => origin.close());
  const { proxy, port } = await startProxy({
    hooks: recordingHooks(origin, newSeen(), {
      responseFilter: (_session, response) => {
        delete response.headers.date;
        response.headers.Date = 'Sun, 06 Nov 1994 08:49:37 GMT';
        response.headers['X-Hook'] = 'yes';
      },
    }),
  });
  t.teardown(() => proxy.close({ graceMs: 100 }));

  const connection = await openRaw(t, port);
  await connection.write('GET / HTTP/1.1\r\nHost: app.test\r\n\r\n');
  const response = await connection.response();
  t.equal(response.body.toString(), 'hello');
  t.same(headLines(response.head, 'date'), ['date: Sun, 06 Nov 1994 08:49:37 GMT'], 'one date header: the hook\'s');
  t.same(headLines(response.head, 'x-hook'), ['x-hook: yes']);
  t.notMatch(response.head, /^X-Hook:/m, 'written lower-case');
});

t.test('headers added with addResponseHeader follow the upstream\'s lines, a repeated name keeps both, and an added connection: close closes', async (t) => {
  const origin = await startOrigin((_req, res) => {
    res.setHeader('x-tag', 'from-origin');
    res.end('hello');
  });
  t.teardown(() => origin.close());
  const { proxy, port } = await startProxy({
    hooks: recordingHooks(origin, newSeen(), {
      requestFilter: (session) => {
        session.addResponseHeader('X-Tag', 'from-proxy');
        session.addResponseHeader('x-ratelimit-limit', '10');
        if (session.path === '/close') session.addResponseHeader('connection', 'close');
        return 'continue';
      },
    }),
  });
  t.teardown(() => proxy.close({ graceMs: 100 }));

  const connection = await openRaw(t, port);
  await connection.write('GET / HTTP/1.1\r\nHost: app.test\r\n\r\n');
  const response = await connection.response();
  t.equal(response.body.toString(), 'hello');
  t.same(headLines(response.head, 'x-tag'), ['x-tag: from-origin', 'x-tag: from-proxy'], 'the upstream value first, the added one after it');
  t.same(headLines(response.head, 'x-ratelimit-limit'), ['x-ratelimit-limit: 10']);
  t.equal(headLines(response.head, 'x-keygate-request-id').length, 1, 'one request id');
  t.same(headLines(response.head, 'connection'), ['connection: keep-alive']);

  await connection.write('GET /close HTTP/1.1\r\nHost: app.test\r\n\r\n');
  const closing = await connection.response();
  t.same(headLines(closing.head, 'connection'), ['connection: close'], 'the added connection header is the only one');
  await connection.waitClosed(2_000);
  t.pass('the connection was closed after the response');
});

t.test('pipelined requests on one connection are answered in order', async (t) => {
  const arrived: string[] = [];
  const origin = await startOrigin((req, res) => {
    arrived.push(req.url!);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const answer = `${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`.trim();
      // Set for HEAD too (node leaves it out there): the proxy must pass it on and send no body.
      res.setHeader('content-length', Buffer.byteLength(answer));
      // The first answer comes late: a proxy answering out of order would put the second one first.
      if (req.url === '/first') setTimeout(() => res.end(answer), 30);
      else res.end(answer);
    });
  });
  t.teardown(() => origin.close());
  const seen = newSeen();
  const { proxy, port } = await startProxy({ hooks: recordingHooks(origin, seen) });
  t.teardown(() => proxy.close({ graceMs: 100 }));

  const connection = await openRaw(t, port);
  await connection.write(
    'GET /first HTTP/1.1\r\nHost: app.test\r\n\r\n'
    + 'POST /second HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\n\r\nbody'
    + 'HEAD /third HTTP/1.1\r\nHost: app.test\r\n\r\n'
    + 'DELETE /fourth HTTP/1.1\r\nHost: app.test\r\n\r\n'
    // Outside the fast subset: the connection goes to node:http from here on, in order.
    + 'POST /fifth HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n0\r\n\r\n'
    + 'GET /sixth HTTP/1.1\r\nHost: app.test\r\n\r\n',
  );
  const bodies: string[] = [];
  bodies.push((await connection.response()).body.toString());
  bodies.push((await connection.response()).body.toString());
  const head = await connection.response({ head: true });
  t.equal(head.headers['content-length'], String('HEAD /third'.length), 'the HEAD answer keeps its length');
  bodies.push((await connection.response()).body.toString());
  bodies.push((await connection.response()).body.toString());
  bodies.push((await connection.response()).body.toString());
  t.same(bodies, ['GET /first', 'POST /second body', 'DELETE /fourth', 'POST /fifth chunk', 'GET /sixth']);
  t.same(arrived, ['/first', '/second', '/third', '/fourth', '/fifth', '/sixth']);
  t.same(seen.kinds, ['keygate', 'keygate', 'keygate', 'keygate', 'node', 'node']);
  t.equal(connection.unreadBytes.length, 0);
});

t.test('ProxyServer.close() closes an idle keep-alive connection at once and lets an in-flight one finish with connection: close', async (t) => {
  let finishSlow: (() => void) | undefined;
  const origin = await startOrigin((req, res) => {
    if (req.url === '/slow') finishSlow = () => res.end('slow done');
    else res.end('fast');
  });
  t.teardown(() => origin.close());
  const seen = newSeen();
  const { proxy, port } = await startProxy({ hooks: recordingHooks(origin, seen) });
  t.teardown(() => proxy.close({ graceMs: 100 }));

  const idle = await openRaw(t, port);
  await idle.write('GET /warm HTTP/1.1\r\nHost: app.test\r\n\r\n');
  const warm = await idle.response();
  t.equal(warm.headers.connection, 'keep-alive');
  const busy = await openRaw(t, port);
  await busy.write('GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await waitFor(() => finishSlow !== undefined, 5_000, 'the slow request to reach the origin');
  t.same(seen.kinds, ['keygate', 'keygate']);

  let closed = false;
  const closing = proxy.close({ graceMs: 10_000 }).then(() => { closed = true; });
  await idle.waitClosed(1_000);
  t.pass('the idle connection was closed within a second');
  t.equal(busy.closed, false, 'the in-flight connection is still open');
  t.equal(closed, false, 'close() waits for the in-flight request');
  finishSlow!();
  const response = await busy.response();
  t.equal(response.status, 200);
  t.equal(response.body.toString(), 'slow done');
  t.equal(response.headers.connection, 'close', 'the in-flight response tells the client to close');
  await busy.waitClosed(2_000);
  await closing;
  t.equal(closed, true);
});

t.test('https: ALPN http/1.1 (and no ALPN) run on the keygate path, ALPN h2 on node:http2; all answer', async (t) => {
  const certificate = createTestCertificate({ hostnames: ['app.example.com'] });
  t.teardown(() => certificate.cleanup());
  const store = new CertificateStore();
  store.add({ cert: certificate.cert, key: certificate.key });
  t.teardown(() => store.close());
  const origin = await echoOrigin(t);
  const seen = newSeen();
  const { proxy, port } = await startProxy({ hooks: recordingHooks(origin, seen) }, { protocol: 'https', certificates: store });
  t.teardown(() => proxy.close({ graceMs: 100 }));
  const tlsOptions = { host: '127.0.0.1', port, servername: 'app.example.com', ca: certificate.cert, checkServerIdentity: () => undefined, agent: false } as const;

  const http1 = (path: string, options: https.RequestOptions & Pick<ConnectionOptions, 'ALPNProtocols'> & { body?: string[] } = {}): Promise<{ alpn: string | false | null; echo: Echo }> => new Promise((resolve, reject) => {
    const req = https.request({ ...tlsOptions, path, ...options, headers: { host: 'app.example.com', ...options.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ alpn: (res.socket as TLSSocket).alpnProtocol, echo: JSON.parse(Buffer.concat(chunks).toString()) as Echo }));
    });
    req.on('error', reject);
    for (const part of options.body ?? []) req.write(part);
    req.end();
  });

  const withAlpn = await http1('/h1-alpn', { ALPNProtocols: ['http/1.1'] });
  t.equal(withAlpn.alpn, 'http/1.1');
  t.equal(withAlpn.echo.url, '/h1-alpn');
  t.equal(withAlpn.echo.forwardedProto, 'https', 'the session sees the TLS socket');
  t.equal(seen.kinds.at(-1), 'keygate', 'ALPN http/1.1: keygate path');

  const withoutAlpn = await http1('/h1-plain');
  t.equal(withoutAlpn.alpn, false);
  t.equal(withoutAlpn.echo.url, '/h1-plain');
  t.equal(seen.kinds.at(-1), 'keygate', 'no ALPN: keygate path');

  const small = await http1('/h1-post', { method: 'POST', ALPNProtocols: ['http/1.1'], headers: { 'content-length': '11' }, body: ['hello world'] });
  t.equal(small.echo.bodyStart, 'hello world');
  t.equal(seen.kinds.at(-1), 'keygate', 'a small body over TLS: keygate path');

  const chunked = await http1('/h1-chunked', { method: 'POST', ALPNProtocols: ['http/1.1'], headers: { 'transfer-encoding': 'chunked' }, body: ['hello ', 'over tls'] });
  t.equal(chunked.echo.bodyStart, 'hello over tls', 'a chunked body over TLS is handed off and arrives whole');
  t.equal(seen.kinds.at(-1), 'node');

  const client = http2.connect(`https://127.0.0.1:${port}`, { servername: 'app.example.com', ca: certificate.cert, checkServerIdentity: () => undefined });
  t.teardown(() => client.close());
  const h2Echo = await new Promise<Echo>((resolve, reject) => {
    const stream = client.request({ ':path': '/over-h2', ':authority': 'app.example.com' });
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => { text += chunk; });
    stream.on('end', () => resolve(JSON.parse(text) as Echo));
    stream.on('error', reject);
  });
  t.equal(h2Echo.url, '/over-h2');
  t.equal(h2Echo.forwardedProto, 'https');
  t.equal(seen.kinds.at(-1), 'h2', 'ALPN h2: node:http2');
  t.equal(seen.faults.length, 5);
  t.ok(seen.faults.every((fault) => fault === undefined), 'no request failed');
});

t.test('a hook adding an invalid response header value neither crashes the process nor puts the bytes on the wire', async (t) => {
  const origin = await startOrigin((req, res) => res.end(`origin ${req.url}`));
  t.teardown(() => origin.close());
  const seen = newSeen();
  const { proxy, port } = await startProxy({
    hooks: recordingHooks(origin, seen, {
      requestFilter: (session) => {
        if (session.path === '/bad-forwarded' || session.path === '/bad-respond') session.addResponseHeader('x-bad', 'value\r\ninjected: yes');
        if (session.path === '/bad-respond') return session.respond(200, 'answered by the hook');
        return 'continue';
      },
    }),
  });
  t.teardown(() => proxy.close({ graceMs: 100 }));

  for (const path of ['/bad-forwarded', '/bad-respond']) {
    const connection = await openRaw(t, port);
    await connection.write(`GET ${path} HTTP/1.1\r\nHost: app.test\r\n\r\n`);
    // As on node:http, the head cannot be written: the connection is cut.
    await connection.waitClosed(2_000);
    const text = connection.received.toString('latin1');
    t.notMatch(text, /injected/i, `${path}: the injected header is not on the wire`);
    t.notMatch(text, /x-bad/i, `${path}: nor the invalid header`);
  }
  await waitFor(() => seen.faults.length === 2, 5_000, 'both requests logged');
  t.ok(seen.faults.every((fault) => fault !== undefined), 'both are logged as failures');
  t.same(seen.kinds, ['keygate', 'keygate']);

  const healthy = await openRaw(t, port);
  await healthy.write('GET /fine HTTP/1.1\r\nHost: app.test\r\n\r\n');
  t.equal((await healthy.response()).body.toString(), 'origin /fine', 'the proxy still serves');
});
