/**
 * The gateway end to end over real sockets, client → Frontline (TLS) → [Sentinel] → origin, in
 * both modes side by side: the same cases through one hop (policies inside Frontline's request)
 * and two hops (Frontline → Sentinel over keep-alive HTTP/1.1), with the REAL verification engine
 * of the API (`KeyVerifier` on SQLite, keys seeded through the API harness). Results must be
 * identical, request ids aside.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { MemoryRateLimiter } from '../../core/ratelimit/memory.ts';
import { DatabaseKeySpaceResolver } from '../../proxy/sentinel/executors/keyauth/database-key-space-resolver.ts';
import { Gateway } from '../../proxy/sentinel/gateway.ts';
import type { GatewayMode } from '../../proxy/sentinel/gateway.ts';
import { PolicyEngine } from '../../proxy/sentinel/policy-engine.ts';
import type { GatewayRequestRow } from '../../proxy/sentinel/request-log.ts';
import { startApiHarness } from '../helpers/api-harness.ts';
import { createTestCertificate } from '../helpers/certificates.ts';
import type { EchoBody } from '../proxy/frontline/helpers.ts';
import { httpsRequest, startEchoOrigin, tempDir } from '../proxy/frontline/helpers.ts';

const HOST = 'app.gateway.test';

t.test('one-hop and two-hop give identical answers for every policy outcome', async (t) => {
  // SQLite in memory: the harness is always available (undefined only for MariaDB/Redis).
  const h = (await startApiHarness(t))!;
  const { apiId } = await h.seedApi();
  const { key, keyId } = await h.seedKey({ apiId, meta: { plan: 'pro' } });
  const origin = await startEchoOrigin('origin');
  t.teardown(() => origin.close());
  const files = tempDir();
  t.teardown(() => files.cleanup());
  mkdirSync(join(files.dir, 'certs'));
  createTestCertificate({ hostnames: [HOST], dir: join(files.dir, 'certs'), name: 'app' });
  const ingressFile = files.write('ingress.json', {
    frontline: {
      httpsPort: 0,
      httpPort: null,
      certificates: [{ certFile: 'certs/app.pem', keyFile: 'certs/app.key' }],
      routes: [{
        host: HOST,
        upstreams: [origin.url],
        policies: [
          { id: 'deny-admin', name: 'firewall', enabled: true, match: [{ path: { path: { prefix: '/admin' } } }], firewall: { action: 'ACTION_DENY' } },
          { id: 'per-ip', name: 'rate limit', enabled: true, match: [{ path: { path: { prefix: '/limited' } } }], ratelimit: { limit: 2, windowMs: 60_000, identifiers: [{ remoteIp: {} }] } },
          { id: 'keys', name: 'keys', enabled: true, match: [{ path: { path: { prefix: '/public' } }, negate: true }], keyauth: { apiIds: [apiId] } },
        ],
      }],
    },
  });

  async function runCases(mode: GatewayMode): Promise<{ results: Record<string, unknown>; rows: GatewayRequestRow[] }> {
    const limiter = new MemoryRateLimiter({ clock: h.clock });
    const engine = new PolicyEngine({ rateLimiter: limiter, keyVerifier: h.deps.keyVerifier, keySpaceResolver: new DatabaseKeySpaceResolver(h.db), clock: h.clock });
    const rows: GatewayRequestRow[] = [];
    const gateway = await Gateway.start({ mode, engine, clock: h.clock, requestLog: { record: (row) => rows.push(row) }, ingress: { file: ingressFile, instanceId: 'fl_test', region: 'test-1' } });
    try {
      if (mode === 'two-hop') t.ok(gateway.sentinelAddress !== undefined, 'two-hop runs a Sentinel listener');
      const port = gateway.ingress.addresses.https.port;
      const send = async (path: string, headers: Record<string, string> = {}) => {
        const res = await httpsRequest(port, HOST, path, { headers: { accept: 'application/json', ...headers } });
        const json = res.headers['content-type']?.includes('json') ? JSON.parse(res.body) : res.body;
        const seen = res.status === 200 ? (json as EchoBody).headers : undefined;
        const requestIds = String(res.headers['x-keygate-request-id'] ?? '');
        return {
          status: res.status,
          error: res.status === 200 ? undefined : (json as { error: unknown }).error,
          hasRequestId: /^req_/.test(requestIds),
          bodyRequestIdMatches: res.status === 200 || requestIds.includes((json as { meta: { requestId: string } }).meta.requestId),
          frontline: res.headers['x-keygate-frontline-id'],
          rateLimit: ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'retry-after'].map((name) => res.headers[name]),
          principal: seen?.['x-keygate-principal'] === undefined ? undefined : JSON.parse(seen['x-keygate-principal'] as string),
          deploymentHeaderAtOrigin: seen?.['x-keygate-deployment-id'],
        };
      };
      const results = {
        allowed: await send('/private', { authorization: `Bearer ${key}` }),
        spoofedPrincipal: await send('/private', { authorization: `Bearer ${key}`, 'x-keygate-principal': '{"subject":"admin"}', 'x-keygate-deployment-id': 'static:other' }),
        publicSpoofed: await send('/public/x', { 'x-keygate-principal': '{"subject":"admin"}' }),
        firewall: await send('/admin/users', { authorization: `Bearer ${key}` }),
        missingKey: await send('/private'),
        invalidKey: await send('/private', { authorization: 'Bearer sk_not_a_real_key_000000' }),
        limited1: await send('/limited', { authorization: `Bearer ${key}`, 'x-forwarded-for': '10.0.0.1' }),
        limited2: await send('/limited', { authorization: `Bearer ${key}`, 'x-forwarded-for': '10.0.0.2' }),
        limited3: await send('/limited', { authorization: `Bearer ${key}`, 'x-forwarded-for': '10.0.0.3' }),
        unknownHost: await httpsRequest(port, HOST, '/x', { headers: { host: 'nothing.gateway.test', accept: 'application/json' } }).then((res) => res.status),
      };
      return { results, rows };
    } finally {
      await gateway.close({ graceMs: 100 });
      await limiter.close();
    }
  }

  const oneHop = await runCases('one-hop');
  const twoHop = await runCases('two-hop');
  const r = oneHop.results as Record<string, any>;
  t.equal(r.allowed.status, 200);
  t.same(r.allowed.principal, { version: 'v1', subject: keyId, type: 'API_KEY', source: { key: { keyId, keySpaceId: r.allowed.principal?.source?.key?.keySpaceId, meta: { plan: 'pro' } } } }, 'principal header from the real verifier');
  t.ok(String(r.allowed.principal.source.key.keySpaceId).length > 0);
  t.same(r.spoofedPrincipal.principal, r.allowed.principal, 'a client principal is replaced by the authenticated one');
  t.equal(r.spoofedPrincipal.deploymentHeaderAtOrigin, undefined, 'the deployment header never reaches the origin');
  t.equal(r.publicSpoofed.status, 200);
  t.equal(r.publicSpoofed.principal, undefined, 'a client principal is stripped when no policy authenticated');
  t.equal(r.firewall.status, 403);
  t.equal(r.firewall.error.code, 'err:frontline:client:firewall_denied');
  t.equal(r.missingKey.status, 401);
  t.equal(r.missingKey.error.code, 'err:frontline:client:missing_credentials');
  t.equal(r.invalidKey.status, 401);
  t.equal(r.invalidKey.error.code, 'err:frontline:client:invalid_key');
  t.same(r.limited1.rateLimit.slice(0, 2), ['2', '1']);
  t.equal(r.limited2.status, 200);
  t.equal(r.limited3.status, 429, 'a spoofed X-Forwarded-For does not give a client a new bucket');
  t.equal(r.limited3.error.code, 'err:frontline:client:rate_limited');
  t.equal(r.limited3.rateLimit[1], '0');
  t.ok(Number(r.limited3.rateLimit[3]) >= 1, 'Retry-After on the 429');
  t.equal(r.unknownHost, 404);
  for (const [name, result] of Object.entries(r)) {
    if (typeof result !== 'object') continue;
    t.ok(result.hasRequestId && result.bodyRequestIdMatches, `${name}: X-Keygate-Request-Id present and matching the error body`);
    t.equal(result.frontline, 'fl_test', `${name}: answered through Frontline`);
  }
  t.same(twoHop.results, oneHop.results, 'two-hop answers exactly as one-hop');
  const summarize = (rows: GatewayRequestRow[]) => rows.map((row) => [row.method, row.host, row.path, row.responseStatus, row.deploymentId, row.instanceAddress]);
  t.same(summarize(twoHop.rows), summarize(oneHop.rows), 'the same request-log rows in both modes');
  t.equal(oneHop.rows.length, 5, 'one row per request that reached the origin (none for rejections)');
});
