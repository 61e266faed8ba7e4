import http from 'node:http';
import http2 from 'node:http2';
import t from 'tap';
import { MemoryRateLimiter } from '../../../core/ratelimit/memory.ts';
import type { VerificationResult, VerifyKeyInput, VerifyKeyOptions } from '../../../core/verification/interface.ts';
import { PolicyEngine } from '../../../proxy/sentinel/policy-engine.ts';
import type { GatewayRequestRow } from '../../../proxy/sentinel/request-log.ts';
import { SentinelHooks } from '../../../proxy/sentinel/sentinel-hooks.ts';
import type { SentinelCtx } from '../../../proxy/sentinel/sentinel-hooks.ts';
import { StaticDeploymentResolver } from '../../../proxy/sentinel/static-deployments.ts';
import { refusedPort, request, startOrigin, startProxy } from '../helpers.ts';

/** Answers VALID for `good` in ks_1, NOT_FOUND otherwise (the real engine is covered by core tests). */
const verifier = {
  async verify(input: VerifyKeyInput, options: VerifyKeyOptions): Promise<VerificationResult> {
    if (input.key === 'good' && options.keySpaceId === 'ks_1') return { valid: true, code: 'VALID', keyId: 'key_1', meta: { plan: 'pro' } };
    return { valid: false, code: 'NOT_FOUND' };
  },
};

t.test('origin ← sentinel ← client over real sockets', async (t) => {
  const seen: http.IncomingHttpHeaders[] = [];
  const origin = await startOrigin((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`origin ${req.url}`);
  });
  t.teardown(() => origin.close());
  const deadPort = await refusedPort();
  const limiter = new MemoryRateLimiter();
  t.teardown(() => limiter.close());
  const engine = new PolicyEngine({
    rateLimiter: limiter,
    keyVerifier: verifier,
    keySpaceResolver: { keySpace: async (id) => ({ workspaceId: 'ws_1', keySpaceId: id }), api: async () => undefined },
  });
  const resolver = await StaticDeploymentResolver.create([{
    host: 'app.test',
    // The first instance refuses connections: it is ejected and the request retried on the origin.
    upstreams: [`http://127.0.0.1:${deadPort}`, origin.url],
    policies: [
      { id: 'deny-admin', name: 'fw', enabled: true, match: [{ path: { path: { prefix: '/admin' } } }], firewall: { action: 'ACTION_DENY' } },
      { id: 'schema', name: 'oa', enabled: true, match: [{ path: { path: { prefix: '/v1' } } }], openapi: { spec: { openapi: '3.0.3', paths: { '/v1/items': { get: { parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer', maximum: 100 } }] } } } } } },
      { id: 'keys', name: 'keys', enabled: true, match: [{ path: { path: { prefix: '/public' } }, negate: true }], keyauth: { keyspaces: ['ks_1'] } },
      { id: 'per-key', name: 'rl', enabled: true, ratelimit: { limit: 3, windowMs: 60_000, identifiers: [{ authenticatedSubject: {} }, { remoteIp: {} }] } },
    ],
  }], engine);
  const rows: GatewayRequestRow[] = [];
  const hooks = new SentinelHooks({ deployments: resolver, requestLog: { record: (row) => rows.push(row) } });
  const { proxy, url } = await startProxy<SentinelCtx>({ hooks });
  t.teardown(() => proxy.close({ graceMs: 100 }));
  const send = (path: string, headers: Record<string, string> = {}) => request(url + path, { headers: { host: 'app.test', accept: 'application/json', ...headers } });

  const denied = await send('/%61dmin/x', { authorization: 'Bearer good' });
  t.equal(denied.status, 403, 'firewall denies the encoded path too');
  t.equal(JSON.parse(denied.body).error.code, 'err:frontline:client:firewall_denied');

  const missing = await send('/private');
  t.equal(missing.status, 401);
  t.same(JSON.parse(missing.body).error.code, 'err:frontline:client:missing_credentials');
  t.ok(JSON.parse(missing.body).meta.requestId.startsWith('req_'));
  t.equal((await send('/private', { authorization: 'Bearer bad' })).status, 401);

  const ok = await send('/private', { authorization: 'Bearer good', 'x-keygate-principal': '{"subject":"admin"}' });
  t.equal(ok.status, 200);
  t.equal(ok.body, 'origin /private');
  t.equal(ok.headers['x-ratelimit-limit'], '3');
  t.equal(ok.headers['x-ratelimit-remaining'], '2');
  t.equal(ok.headers['retry-after'], undefined, 'Retry-After only on a denial');
  const principal = JSON.parse(seen.at(-1)!['x-keygate-principal'] as string);
  t.same(principal, { version: 'v1', subject: 'key_1', type: 'API_KEY', source: { key: { keyId: 'key_1', keySpaceId: 'ks_1', meta: { plan: 'pro' } } } }, 'the spoofed principal was replaced');

  const publicPath = await send('/public/x', { 'x-keygate-principal': '{"subject":"admin"}' });
  t.equal(publicPath.status, 200, 'negated match skips KeyAuth');
  t.equal(seen.at(-1)!['x-keygate-principal'], undefined, 'a client copy never reaches the upstream');

  await send('/private', { authorization: 'Bearer good' });
  await send('/private', { authorization: 'Bearer good' });
  const limited = await send('/private', { authorization: 'Bearer good' });
  t.equal(limited.status, 429);
  t.equal(JSON.parse(limited.body).error.code, 'err:frontline:client:rate_limited');
  t.equal(limited.headers['x-ratelimit-remaining'], '0');
  t.ok(Number(limited.headers['retry-after']) >= 1);

  const invalid = await send('/v1/items?limit=500', { authorization: 'Bearer good' });
  t.equal(invalid.status, 400);
  t.match(JSON.parse(invalid.body).error.message, /query parameter "limit": must be <= 100/);
  t.equal((await send('/v1/nothing')).status, 400, 'unknown operations are rejected');

  t.equal((await request(url + '/x', { headers: { host: 'other.test' } })).status, 404, 'unknown host');
  const forwarded = rows.filter((row) => row.responseStatus === 200);
  t.ok(forwarded.length >= 2, 'a request-log row per proxied request');
  t.equal(rows.some((row) => row.responseStatus === 403), false, 'no row for policy rejections');
  t.equal(forwarded[0]!.instanceAddress, `127.0.0.1:${origin.port}`, 'the row names the instance that served');
});

t.test('KeyAuth over HTTP/2: requests on one session with different keys are each verified with their own key', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('origin'));
  t.teardown(() => origin.close());
  const engine = new PolicyEngine({
    keyVerifier: verifier,
    keySpaceResolver: { keySpace: async (id) => ({ workspaceId: 'ws_1', keySpaceId: id }), api: async () => undefined },
  });
  const resolver = await StaticDeploymentResolver.create([{
    host: 'app.test', upstreams: [origin.url],
    policies: [{ id: 'keys', name: 'keys', enabled: true, keyauth: { keyspaces: ['ks_1'] } }],
  }], engine);
  const { proxy, port } = await startProxy<SentinelCtx>({ hooks: new SentinelHooks({ deployments: resolver }) }, { protocol: 'h2c' });
  t.teardown(() => proxy.close({ graceMs: 100 }));
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.teardown(() => session.close());
  const status = (key: string) => new Promise<number>((resolve, reject) => {
    const stream = session.request({ ':path': '/private', ':authority': 'app.test', authorization: `Bearer ${key}` });
    stream.on('response', (headers) => resolve(Number(headers[':status'])));
    stream.on('error', reject);
    stream.resume();
    stream.end();
  });
  const statuses: number[] = [];
  for (const key of ['good', 'bad', 'good', 'good', 'bad']) statuses.push(await status(key));
  t.same(statuses, [200, 401, 200, 200, 401], 'one session, the answer of each request\'s own key');
});
