/**
 * The framework's buffered request bodies (`ProxySession.readBody`), body captures for the
 * logging phase, and request ids adopted from a trusted previous hop.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { Fault } from '../../core/fault.ts';
import type { ProxyHooks } from '../../proxy/hooks.ts';
import { HttpPeer } from '../../proxy/http-peer.ts';
import type { CapturedBody, ProxySession } from '../../proxy/proxy-session.ts';
import { forEachEngine, request, startOrigin, startProxy } from './helpers.ts';
import type { TestOrigin } from './helpers.ts';

interface Seen { method: string; headers: http.IncomingHttpHeaders; body: string }

async function bodyOrigin(t: { teardown(fn: () => unknown): void }): Promise<{ origin: TestOrigin; seen: Seen[] }> {
  const seen: Seen[] = [];
  const origin = await startOrigin((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({ method: req.method!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.setHeader('content-type', 'text/plain');
      res.end(`echo:${Buffer.concat(chunks).toString('utf8')}`);
    });
  });
  t.teardown(() => origin.close());
  return { origin, seen };
}

/** A loopback port nobody listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Sends a chunked body (no content-length) over a fresh connection. */
function chunkedPost(url: string, parts: string[], headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    for (const part of parts) req.write(part);
    req.end();
  });
}

forEachEngine(t, (t, engine) => {
  t.test('a request phase reads the body; the buffered bytes are forwarded with a content-length', async (t) => {
    const { origin, seen } = await bodyOrigin(t);
    const readInFilter: string[] = [];
    const hooks: ProxyHooks<object> = {
      newCtx: () => ({}),
      async requestFilter(session) {
        readInFilter.push((await session.readBody(1024)).toString('utf8'));
        // A second read shares the same bytes.
        readInFilter.push((await session.readBody(1024)).toString('utf8'));
        return 'continue' as const;
      },
      upstreamPeer: () => new HttpPeer(origin.url),
    };
    const { proxy, url } = await startProxy({ engine, hooks });
    t.teardown(() => proxy.close({ graceMs: 0 }));
    const res = await chunkedPost(url, ['{"a":', '1}']);
    t.equal(res.status, 200);
    t.equal(res.body, 'echo:{"a":1}');
    t.same(readInFilter, ['{"a":1}', '{"a":1}']);
    t.equal(seen[0]!.headers['content-length'], '7', 'the upstream gets a content-length for the buffered body');
    t.equal(seen[0]!.headers['transfer-encoding'], undefined);
    const empty = await request(url, { method: 'GET' });
    t.equal(empty.status, 200);
    t.equal(readInFilter[2], '', 'a request without a body reads as empty');
  });

  t.test('a body over the limit is refused with 413 and never reaches the upstream', async (t) => {
    const { origin, seen } = await bodyOrigin(t);
    const hooks: ProxyHooks<object> = {
      newCtx: () => ({}),
      async requestFilter(session) {
        await session.readBody(8);
        return 'continue' as const;
      },
      upstreamPeer: () => new HttpPeer(origin.url),
    };
    const { proxy, url } = await startProxy({ engine, hooks });
    t.teardown(() => proxy.close({ graceMs: 0 }));
    const declared = await request(url, { method: 'POST', body: 'x'.repeat(100), headers: { accept: 'application/json' } });
    t.equal(declared.status, 413);
    t.equal(JSON.parse(declared.body).error.code, 'err:user:bad_request:request_body_too_large');
    t.equal(declared.headers.connection, 'close', 'the unread rest of the body ends the connection');
    const chunked = await chunkedPost(url, ['12345', '67890'], { accept: 'application/json' });
    t.equal(chunked.status, 413);
    t.equal(seen.length, 0);
  });

  t.test('a buffered body is sent again to the next peer after a refused connection', async (t) => {
    const { origin, seen } = await bodyOrigin(t);
    const dead = await deadPort();
    const hooks: ProxyHooks<object> = {
      newCtx: () => ({}),
      async requestFilter(session) {
        await session.readBody(1024);
        return 'continue' as const;
      },
      upstreamPeer: () => [new HttpPeer(`http://127.0.0.1:${dead}`), new HttpPeer(origin.url)],
    };
    const { proxy, url } = await startProxy({ engine, hooks });
    t.teardown(() => proxy.close({ graceMs: 0 }));
    const res = await request(url, { method: 'POST', body: 'payload' });
    t.equal(res.status, 200);
    t.equal(seen[0]!.body, 'payload');
  });

  t.test('readBody outside the request phases is refused, not silently wrong', async (t) => {
    const { origin } = await bodyOrigin(t);
    let late: unknown;
    const hooks: ProxyHooks<object> = {
      newCtx: () => ({}),
      upstreamPeer: () => new HttpPeer(origin.url),
      responseFilter(session) {
        return session.readBody(10).then(() => undefined, (err: unknown) => { late = err; });
      },
    };
    const { proxy, url } = await startProxy({ engine, hooks });
    t.teardown(() => proxy.close({ graceMs: 0 }));
    const res = await request(url, { method: 'POST', body: 'abc' });
    t.equal(res.status, 200);
    t.ok(late instanceof Fault, 'a Fault for a read after forwarding started');
  });

  t.test('captureBodies keeps the first bytes of both bodies for the logging phase', async (t) => {
    const { origin, seen } = await bodyOrigin(t);
    const captured: { request?: CapturedBody; response?: CapturedBody }[] = [];
    const hooks: ProxyHooks<object> = {
      newCtx: () => ({}),
      requestFilter(session) {
        session.captureBodies({ requestMaxBytes: 4, responseMaxBytes: 6 });
        return 'continue' as const;
      },
      upstreamPeer: () => new HttpPeer(origin.url),
      logging(session: ProxySession) {
        captured.push({ request: session.capturedRequestBody, response: session.capturedResponseBody });
      },
    };
    const { proxy, url } = await startProxy({ engine, hooks });
    t.teardown(() => proxy.close({ graceMs: 0 }));
    const res = await chunkedPost(url, ['hello ', 'world']);
    t.equal(res.body, 'echo:hello world', 'the streamed body is forwarded whole');
    t.equal(seen[0]!.body, 'hello world');
    await new Promise((resolve) => setImmediate(resolve));
    const [entry] = captured;
    t.equal(entry!.request!.bytes.toString(), 'hell');
    t.equal(entry!.request!.totalBytes, 11);
    t.equal(entry!.request!.truncated, true);
    t.equal(entry!.response!.bytes.toString(), 'echo:h');
    t.equal(entry!.response!.totalBytes, 16);
  });

  t.test('the request id of a trusted previous hop is adopted, anyone else gets a new one', async (t) => {
    const { origin, seen } = await bodyOrigin(t);
    const hooks: ProxyHooks<object> = { newCtx: () => ({}), upstreamPeer: () => new HttpPeer(origin.url) };
    const trusting = await startProxy({ engine, hooks, adoptRequestIdFrom: ['127.0.0.1'] });
    t.teardown(() => trusting.proxy.close({ graceMs: 0 }));
    const other = await startProxy({ engine, hooks, adoptRequestIdFrom: ['10.1.2.3'] });
    t.teardown(() => other.proxy.close({ graceMs: 0 }));

    const adopted = await request(trusting.url, { headers: { 'x-keygate-request-id': 'req_fromfront' } });
    t.equal(adopted.headers['x-keygate-request-id'], 'req_fromfront', 'one id, once, on the response');
    t.equal(seen[0]!.headers['x-keygate-request-id'], 'req_fromfront', 'and upstream');
    const malformed = await request(trusting.url, { headers: { 'x-keygate-request-id': 'bad id with spaces' } });
    t.match(malformed.headers['x-keygate-request-id'], /^req_[A-Za-z0-9]{9}$/, 'a malformed id is replaced');
    const untrusted = await request(other.url, { headers: { 'x-keygate-request-id': 'req_fromfront' } });
    t.match(untrusted.headers['x-keygate-request-id'], /^req_[A-Za-z0-9]{9}$/, 'an untrusted peer cannot choose the id');
    t.not(seen[2]!.headers['x-keygate-request-id'], 'req_fromfront');
  });
});
