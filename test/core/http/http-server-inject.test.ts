import t from 'tap';
import { Fault } from '../../../core/fault.ts';
import type { Middleware } from '../../../core/http/interface.ts';
import type { RequestContext } from '../../../core/http/request-context.ts';
import { deferred, requestCount, testServer } from './helpers.ts';

const REQUEST_ID = /^req_[A-Za-z0-9]{9}$/;

interface Envelope {
  meta: { requestId: string };
  error: { title: string; detail: string; status: number; type: string; errors?: unknown[] };
}

t.test('routes exact paths and :params, and answers 404 and 405 as fault envelopes', async (t) => {
  const { server } = testServer();
  server.route('POST', '/v2/keys.verifyKey', () => ({ body: { valid: true } }));
  server.route('GET', '/v1/items/:id', (ctx) => ({ body: { id: ctx.params.id, q: ctx.query.get('q') } }));

  const exact = await server.inject({ method: 'POST', url: '/v2/keys.verifyKey', body: {} });
  t.equal(exact.status, 200);
  t.same(exact.json(), { valid: true });
  t.equal(exact.headers['content-type'], 'application/json', 'an object body is sent as JSON');

  const param = await server.inject({ method: 'GET', url: '/v1/items/itm%201?q=x' });
  t.same(param.json(), { id: 'itm 1', q: 'x' });

  const missing = await server.inject({ method: 'GET', url: '/v2/nope' });
  t.equal(missing.status, 404);
  t.equal(missing.json<Envelope>().error.type, 'https://unkey.com/docs/errors/unkey/application/not_found');

  const wrongMethod = await server.inject({ method: 'GET', url: '/v2/keys.verifyKey' });
  t.equal(wrongMethod.status, 405);
  t.equal(wrongMethod.headers.allow, 'POST');
  t.equal(wrongMethod.json<Envelope>().error.title, 'Method Not Allowed');
});

t.test('middlewares run in order: server-wide, then route, then handler, unwinding in reverse', async (t) => {
  const { server } = testServer();
  const order: string[] = [];
  const named = (name: string): Middleware => async (ctx, next) => {
    order.push(`${name}:in`);
    const reply = await next(ctx);
    order.push(`${name}:out`);
    return { ...reply, headers: { ...reply.headers, [`x-${name}`]: '1' } };
  };
  server.use(named('a'));
  server.use(named('b'));
  server.route('GET', '/ordered', () => {
    order.push('handler');
    return { body: 'ok' };
  }, { middleware: [named('route')] });
  const response = await server.inject({ method: 'GET', url: '/ordered' });
  t.same(order, ['a:in', 'b:in', 'route:in', 'handler', 'route:out', 'b:out', 'a:out']);
  t.equal(response.headers['x-a'], '1');
  t.equal(response.headers['x-route'], '1');
  t.equal(response.headers['content-type'], 'text/plain; charset=utf-8');

  order.length = 0;
  const unmatched = await server.inject({ method: 'GET', url: '/elsewhere' });
  t.equal(unmatched.status, 404);
  t.same(order, ['a:in', 'b:in'], 'server-wide middlewares see unmatched requests; the 404 is thrown inside them');

  t.throws(() => server.use(named('late')), { code: 'err:keygate:http:invalid_registration' }, 'use() after the chain is composed');
  server.route('GET', '/late-route', () => ({ body: 'late' }));
  t.equal((await server.inject({ method: 'GET', url: '/late-route' })).body, 'late', 'routes may still be added');
});

t.test('a middleware can answer early, and its faults are translated like a handler\'s', async (t) => {
  const { server } = testServer();
  let handlerCalls = 0;
  server.use((ctx, next) => {
    if (ctx.headers.authorization === undefined) throw Fault.expected('err:unkey:authentication:missing', { publicMessage: 'Authorization header missing.' });
    if (ctx.headers.authorization === 'Bearer early') return { status: 202, body: { early: true } };
    ctx.state.principal = 'root';
    return next(ctx);
  });
  server.route('GET', '/protected', (ctx) => {
    handlerCalls++;
    return { body: { principal: ctx.state.principal } };
  });
  const missing = await server.inject({ method: 'GET', url: '/protected' });
  t.equal(missing.status, 400);
  t.equal(missing.json<Envelope>().error.detail, 'Authorization header missing.');
  t.equal((await server.inject({ method: 'GET', url: '/protected', headers: { Authorization: 'Bearer early' } })).status, 202);
  t.same((await server.inject({ method: 'GET', url: '/protected', headers: { authorization: 'Bearer x' } })).json(), { principal: 'root' });
  t.equal(handlerCalls, 1);
});

t.test('a fault becomes the API envelope with its code\'s status, title and type; 400s carry errors[]', async (t) => {
  const { server } = testServer();
  server.route('GET', '/api-missing', () => {
    throw Fault.expected('err:unkey:data:api_not_found', { publicMessage: 'The specified API was not found.', internalMessage: 'api api_123 missing in ws_9' });
  });
  server.route('GET', '/invalid', () => {
    throw Fault.expected('err:unkey:application:invalid_input', {
      publicMessage: 'apiId must be at least 3 characters.',
      errors: [{ location: '/properties/apiId/minLength', message: 'too short', fix: 'send a longer apiId' }],
    });
  });
  server.route('GET', '/invalid-plain', () => {
    throw Fault.expected('err:unkey:authentication:malformed');
  });

  const notFound = await server.inject({ method: 'GET', url: '/api-missing' });
  t.equal(notFound.status, 404);
  const body = notFound.json<Envelope>();
  t.same(Object.keys(body), ['meta', 'error']);
  t.match(body.meta.requestId, REQUEST_ID);
  t.same(body.error, {
    title: 'Not Found',
    detail: 'The specified API was not found.',
    status: 404,
    type: 'https://unkey.com/docs/errors/unkey/data/api_not_found',
  }, 'no errors[] outside 400, and no internal message');
  t.notMatch(notFound.body, 'ws_9');

  const invalid = await server.inject({ method: 'GET', url: '/invalid' });
  t.equal(invalid.status, 400);
  t.same(invalid.json<Envelope>().error, {
    title: 'Bad Request',
    detail: 'apiId must be at least 3 characters.',
    status: 400,
    type: 'https://unkey.com/docs/errors/unkey/application/invalid_input',
    errors: [{ location: '/properties/apiId/minLength', message: 'too short', fix: 'send a longer apiId' }],
  });
  t.same((await server.inject({ method: 'GET', url: '/invalid-plain' })).json<Envelope>().error.errors, [], 'a 400 without details has errors: []');
});

t.test('unknown errors become a masked 500 unexpected_error, logged with the internal message', async (t) => {
  const { server, lines } = testServer();
  server.route('GET', '/boom', () => {
    throw new Error('connection to db-7.internal:3306 refused (password=hunter2)');
  });
  server.route('GET', '/async-boom', async () => {
    await Promise.resolve();
    throw new TypeError('undefined is not a function');
  });
  const response = await server.inject({ method: 'GET', url: '/boom' });
  t.equal(response.status, 500);
  const body = response.json<Envelope>();
  t.equal(body.error.type, 'https://unkey.com/docs/errors/unkey/application/unexpected_error');
  t.equal(body.error.title, 'Internal Server Error');
  t.notMatch(response.body, 'db-7', 'the internal message never reaches the client');
  t.notMatch(response.body, 'hunter2');
  const errorLine = lines.find((line) => line.msg === 'request failed' && line.requestId === body.meta.requestId);
  t.ok(errorLine, 'the failure is logged with the request id');
  t.match(String(errorLine?.internalMessage), 'db-7.internal');
  t.equal((await server.inject({ method: 'GET', url: '/async-boom' })).status, 500);
});

t.test('Accept: application/problem+json labels the error body with that content type', async (t) => {
  const { server } = testServer();
  server.route('GET', '/missing-key', () => {
    throw Fault.expected('err:unkey:data:key_not_found');
  });
  const problem = await server.inject({ method: 'GET', url: '/missing-key', headers: { accept: 'application/problem+json' } });
  t.equal(problem.status, 404);
  t.equal(problem.headers['content-type'], 'application/problem+json');
  t.equal(problem.json<Envelope>().error.status, 404, 'same body');
  const plain = await server.inject({ method: 'GET', url: '/missing-key' });
  t.equal(plain.headers['content-type'], 'application/json');
});

t.test('every request gets a fresh req_ id; a client-sent id is never trusted', async (t) => {
  const { server, accessLines } = testServer();
  const seen: string[] = [];
  server.route('GET', '/id', (ctx) => {
    seen.push(ctx.requestId);
    return { body: { meta: { requestId: ctx.requestId } } };
  });
  server.route('GET', '/fail', () => {
    throw Fault.expected('err:unkey:authorization:forbidden');
  });
  const first = await server.inject({ method: 'GET', url: '/id', headers: { 'x-request-id': 'req_attacker', 'request-id': 'req_attacker' } });
  const second = await server.inject({ method: 'GET', url: '/id' });
  const failed = await server.inject({ method: 'GET', url: '/fail', headers: { 'x-request-id': 'req_attacker' } });
  for (const id of [...seen, failed.json<Envelope>().meta.requestId]) t.match(id, REQUEST_ID);
  t.not(seen[0], 'req_attacker');
  t.not(seen[0], seen[1]);
  t.equal(first.json<{ meta: { requestId: string } }>().meta.requestId, seen[0]);
  t.notMatch(failed.body, 'req_attacker');
  t.same(accessLines().map((line) => line.requestId), [seen[0], seen[1], failed.json<Envelope>().meta.requestId], 'the access log uses the same ids');
  void second;
});

t.test('the access log writes one line per request and skips liveness and metrics paths', async (t) => {
  const { server, accessLines } = testServer();
  server.route('GET', '/v2/liveness', () => ({ body: { data: { message: 'OK' } } }));
  server.route('GET', '/metrics', () => ({ body: '' }));
  server.route('GET', '/quiet', () => ({ body: '' }), { accessLog: false });
  server.route('POST', '/v2/keys.verifyKey', () => ({ body: {} }));
  await server.inject({ method: 'GET', url: '/v2/liveness' });
  await server.inject({ method: 'GET', url: '/metrics' });
  await server.inject({ method: 'GET', url: '/quiet' });
  await server.inject({ method: 'POST', url: '/v2/keys.verifyKey?x=1', body: { key: 'sk_123' } });
  const lines = accessLines();
  t.equal(lines.length, 1);
  const line = lines[0]!;
  t.equal(line.method, 'POST');
  t.equal(line.path, '/v2/keys.verifyKey', 'the path without the query string');
  t.equal(line.status, 200);
  t.type(line.latencyMs, 'number');
  t.ok((line.latencyMs as number) >= 0);
  t.notMatch(JSON.stringify(line), 'sk_123', 'the body is not logged');
});

t.test('metrics count requests by method, route pattern and status', async (t) => {
  const { server, metrics } = testServer();
  server.route('GET', '/v1/items/:id', () => ({ body: {} }));
  await server.inject({ method: 'GET', url: '/v1/items/a' });
  await server.inject({ method: 'GET', url: '/v1/items/b' });
  await server.inject({ method: 'GET', url: '/nowhere' });
  await server.inject({ method: 'BREW', url: '/nowhere' });
  t.equal(await requestCount(metrics, { method: 'GET', route: '/v1/items/:id', status: '200' }), 2, 'labelled by pattern, not by path');
  t.equal(await requestCount(metrics, { method: 'GET', route: '(unmatched)', status: '404' }), 1);
  t.equal(await requestCount(metrics, { method: 'OTHER', route: '(unmatched)', status: '404' }), 1, 'unknown methods share one label');
  const rendered = await metrics.render();
  t.match(rendered, 'keygate_http_request_duration_seconds_count{method="GET",route="/v1/items/:id",status="200"} 2');
});

t.test('ctx.json() parses once and caches; invalid or empty JSON is a 400 request_body_unreadable', async (t) => {
  const { server } = testServer();
  server.route('POST', '/echo', (ctx) => {
    const first = ctx.json<{ a: number }>();
    t.equal(ctx.json(), first, 'the second call returns the cached object');
    return { body: { a: first.a, bytes: ctx.rawBody.length } };
  });
  t.same((await server.inject({ method: 'POST', url: '/echo', body: { a: 1 } })).json(), { a: 1, bytes: 7 });
  for (const body of ['{"a":', '']) {
    const response = await server.inject({ method: 'POST', url: '/echo', body });
    t.equal(response.status, 400, JSON.stringify(body));
    t.equal(response.json<Envelope>().error.type, 'https://unkey.com/docs/errors/user/bad_request/request_body_unreadable');
  }
});

t.test('reply bodies: objects as JSON, strings as text, bytes as octets, custom content types kept', async (t) => {
  const { server } = testServer();
  server.route('GET', '/text', () => ({ body: 'héllo' }));
  server.route('GET', '/bytes', () => ({ body: Buffer.from([1, 2, 3]) }));
  server.route('GET', '/custom', () => ({ status: 201, headers: { 'content-type': 'application/vnd.keygate+json' }, body: { ok: true } }));
  server.route('GET', '/empty', () => ({ status: 204 }));
  const text = await server.inject({ method: 'GET', url: '/text' });
  t.equal(text.headers['content-type'], 'text/plain; charset=utf-8');
  t.equal(text.headers['content-length'], '6', 'byte length, not string length');
  t.equal((await server.inject({ method: 'GET', url: '/bytes' })).headers['content-type'], 'application/octet-stream');
  const custom = await server.inject({ method: 'GET', url: '/custom' });
  t.equal(custom.status, 201);
  t.equal(custom.headers['content-type'], 'application/vnd.keygate+json');
  const empty = await server.inject({ method: 'GET', url: '/empty' });
  t.equal(empty.status, 204);
  t.equal(empty.headers['content-length'], undefined, 'a 204 announces no body');
});

t.test('a handler past its deadline gets 408 request_timeout and its signal aborts', async (t) => {
  const { server, accessLines } = testServer({ requestTimeoutMs: 40 });
  const aborted = deferred<unknown>();
  server.route('GET', '/slow', (ctx) => new Promise((resolve) => {
    ctx.signal.addEventListener('abort', () => {
      aborted.resolve(ctx.signal.reason);
      // A late result is dropped: the 408 was already sent.
      resolve({ body: 'too late' });
    });
  }));
  server.route('GET', '/slower-route', () => new Promise(() => {}), { timeoutMs: 20 });
  const response = await server.inject({ method: 'GET', url: '/slow' });
  t.equal(response.status, 408);
  t.equal(response.json<Envelope>().error.type, 'https://unkey.com/docs/errors/user/bad_request/request_timeout');
  const reason = await aborted.promise;
  t.ok(reason instanceof Fault && reason.code === 'err:user:bad_request:request_timeout');
  t.equal((await server.inject({ method: 'GET', url: '/slower-route' })).status, 408, 'a route can set its own deadline');
  t.same(accessLines().map((line) => line.status), [408, 408], 'one access line per request, with the 408');
  t.equal(server.inFlight, 0);
});

t.test('an injected body over the limit is a 413 request_body_too_large', async (t) => {
  const { server } = testServer({ maxBodyBytes: 16 });
  let handlerCalls = 0;
  server.route('POST', '/upload', () => {
    handlerCalls++;
    return { body: {} };
  });
  server.route('POST', '/small', () => ({ body: {} }), { maxBodyBytes: 4 });
  const tooLarge = await server.inject({ method: 'POST', url: '/upload', body: 'x'.repeat(17) });
  t.equal(tooLarge.status, 413);
  t.equal(tooLarge.json<Envelope>().error.type, 'https://unkey.com/docs/errors/user/bad_request/request_body_too_large');
  t.equal((await server.inject({ method: 'POST', url: '/upload', body: 'x'.repeat(16) })).status, 200, 'exactly the limit is fine');
  t.equal((await server.inject({ method: 'POST', url: '/small', body: '12345' })).status, 413, 'a route can lower the limit');
  t.equal(handlerCalls, 1);
});

t.test('an injected abort fires the handler\'s signal and is recorded as 499', async (t) => {
  const { server, accessLines, metrics } = testServer();
  const started = deferred();
  let seenReason: unknown;
  server.route('GET', '/wait', (ctx: RequestContext) => new Promise((resolve, reject) => {
    ctx.signal.addEventListener('abort', () => {
      seenReason = ctx.signal.reason;
      reject(ctx.signal.reason);
    });
    started.resolve();
    void resolve;
  }));
  const controller = new AbortController();
  const pending = server.inject({ method: 'GET', url: '/wait', signal: controller.signal });
  await started.promise;
  controller.abort();
  t.ok(seenReason instanceof Fault && seenReason.code === 'err:user:bad_request:client_closed_request');
  t.same(accessLines().map((line) => line.status), [499]);
  t.equal(await requestCount(metrics, { method: 'GET', route: '/wait', status: '499' }), 1);
  t.equal(server.inFlight, 0);
  void pending;
});

t.test('a custom errorBody replaces the envelope', async (t) => {
  const { server } = testServer({
    errorBody: (fault, requestId) => ({ status: fault.status, headers: { 'x-error-code': fault.code }, body: `error ${fault.code} (${requestId})` }),
  });
  const response = await server.inject({ method: 'GET', url: '/none' });
  t.equal(response.status, 404);
  t.equal(response.headers['x-error-code'], 'err:unkey:application:not_found');
  t.match(response.body, /^error err:unkey:application:not_found \(req_[A-Za-z0-9]{9}\)$/);
});

t.test('setResponseHeader applies to success and error replies alike', async (t) => {
  const { server } = testServer();
  server.use((ctx, next) => {
    ctx.setResponseHeader('RateLimit-Limit', '100');
    return next(ctx);
  });
  server.route('GET', '/ok', () => ({ body: {} }));
  t.equal((await server.inject({ method: 'GET', url: '/ok' })).headers['ratelimit-limit'], '100');
  t.equal((await server.inject({ method: 'GET', url: '/missing' })).headers['ratelimit-limit'], '100');
});

t.test('ctx.log is a child logger that carries the request id', async (t) => {
  const { server, lines } = testServer();
  server.route('GET', '/logs', (ctx) => {
    ctx.log.info({ body: { key: 'sk_live_secret' } }, 'handler line');
    return { body: { requestId: ctx.requestId } };
  });
  const { requestId } = (await server.inject({ method: 'GET', url: '/logs' })).json<{ requestId: string }>();
  const line = lines.find((candidate) => candidate.msg === 'handler line');
  t.equal(line?.requestId, requestId);
  t.same(line?.body, { key: '[redacted]' });
});
