/**
 * The gateway end to end over real sockets, client → Frontline (TLS) → [Sentinel] → origin, in
 * three wirings side by side (one hop; two hops over keep-alive HTTP/1.1; two hops over h2c):
 * JWTAuth against a JWKS server on 127.0.0.1 whose key rotates, OpenAPI rejections and an
 * accepted JSON body, instance ejection and retry past a refusing instance, body logging with
 * redaction, one request id end to end, per-policy metrics, and a Sentinel that ignores
 * `X-Keygate-Deployment-Id` from an untrusted address. Answers must be identical in every wiring.
 */
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { JWK } from 'jose';
import t from 'tap';
import { Fault } from '../../core/fault.ts';
import { Metrics } from '../../core/metrics.ts';
import { readIngressFile } from '../../proxy/frontline/ingress-config.ts';
import { Gateway } from '../../proxy/sentinel/gateway.ts';
import type { GatewayOptions } from '../../proxy/sentinel/gateway.ts';
import { PolicyEngine } from '../../proxy/sentinel/policy-engine.ts';
import type { GatewayRequestRow } from '../../proxy/sentinel/request-log.ts';
import { createTestCertificate } from '../helpers/certificates.ts';
import { httpsRequest, tempDir } from '../proxy/frontline/helpers.ts';
import { request, startOrigin } from '../proxy/helpers.ts';

const JWT_HOST = 'jwt.gw.test';
const OPENAPI_HOST = 'openapi.gw.test';
const RETRY_HOST = 'retry.gw.test';
const LOG_HOST = 'log.gw.test';
const ISSUER = 'https://issuer.gw.test';

const OPENAPI_SPEC = {
  openapi: '3.0.3',
  info: { title: 'items', version: '1' },
  paths: {
    '/items': {
      get: { parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer', maximum: 100 } }] },
      post: {
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, count: { type: 'integer' } }, additionalProperties: false } } },
        },
      },
    },
  },
};

interface OriginSeen { url: string; method: string; headers: http.IncomingHttpHeaders; body: string }

async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

t.test('JWTAuth, OpenAPI, retry, logging and request ids answer the same in one hop, two hops and over h2c', async (t) => {
  // The origin echoes what it received, body included.
  const seen: OriginSeen[] = [];
  const origin = await startOrigin((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const entry = { url: req.url!, method: req.method!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(entry);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ echo: entry.body, principal: req.headers['x-keygate-principal'], requestId: req.headers['x-keygate-request-id'] }));
    });
  });
  t.teardown(() => origin.close());

  // A JWKS server whose key set the test rotates.
  const first = await generateKeyPair('RS256', { extractable: true });
  const second = await generateKeyPair('RS256', { extractable: true });
  const jwk = async (key: Parameters<typeof exportJWK>[0], kid: string): Promise<JWK> => ({ ...(await exportJWK(key)), kid, alg: 'RS256', use: 'sig' });
  let jwks: JWK[] = [await jwk(first.publicKey, 'k1')];
  let jwksFetches = 0;
  const jwksServer = await startOrigin((_req, res) => {
    jwksFetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: jwks }));
  });
  t.teardown(() => jwksServer.close());
  const token = (key: Parameters<SignJWT['sign']>[0], kid: string, claims: Record<string, unknown> = {}, audience = 'gateway') => new SignJWT({ scope: 'read', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid }).setIssuer(ISSUER).setAudience(audience).setSubject('user_42').setIssuedAt().setExpirationTime('5m').sign(key);
  const tokens = {
    first: await token(first.privateKey, 'k1'),
    second: await token(second.privateKey, 'k2'),
    wrongAudience: await token(first.privateKey, 'k1', {}, 'someone-else'),
  };

  const dead = await deadPort();
  const files = tempDir();
  t.teardown(() => files.cleanup());
  mkdirSync(join(files.dir, 'certs'));
  createTestCertificate({ hostnames: [JWT_HOST, OPENAPI_HOST, RETRY_HOST, LOG_HOST], dir: join(files.dir, 'certs'), name: 'gw' });
  const ingressFile = files.write('ingress.json', {
    frontline: {
      httpsPort: 0,
      httpPort: null,
      certificates: [{ certFile: 'certs/gw.pem', keyFile: 'certs/gw.key' }],
      routes: [
        { host: JWT_HOST, upstreams: [origin.url], policies: [{ id: 'jwt', name: 'jwt', enabled: true, match: [], jwtauth: { jwksUri: `${jwksServer.url}/.well-known/jwks.json`, issuer: ISSUER, audiences: ['gateway'], algorithms: ['RS256'] } }] },
        { host: OPENAPI_HOST, upstreams: [origin.url], policies: [{ id: 'schema', name: 'openapi', enabled: true, match: [], openapi: { spec: OPENAPI_SPEC } }] },
        // The first instance refuses connections: it is ejected and the request retried on the next.
        { host: RETRY_HOST, upstreams: [`http://127.0.0.1:${dead}`, origin.url] },
        { host: LOG_HOST, upstreams: [origin.url], policies: [{ id: 'log', name: 'log', enabled: true, match: [], logging: { requestBody: true, responseBody: true, requestHeaders: true } }] },
      ],
    },
  });

  type Wiring = { name: string; mode: GatewayOptions['mode']; sentinelProtocol?: 'http1' | 'h2c' };
  async function runCases(wiring: Wiring) {
    seen.length = 0;
    jwks = [await jwk(first.publicKey, 'k1')];
    const metrics = new Metrics();
    const engine = new PolicyEngine({ metrics, jwt: { jwksCooldownMs: 0 } });
    const rows: GatewayRequestRow[] = [];
    const gateway = await Gateway.start({
      mode: wiring.mode, ...(wiring.sentinelProtocol === undefined ? {} : { sentinelProtocol: wiring.sentinelProtocol }),
      engine, metrics, ejectMs: 60_000, requestLog: { record: (row) => rows.push(row) },
      ingress: { file: ingressFile, instanceId: 'fl_test', region: 'test-1' },
    });
    try {
      const port = gateway.ingress.addresses.https.port;
      const send = async (host: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) => {
        const res = await httpsRequest(port, host, path, { ...options, headers: { accept: 'application/json', ...options.headers } });
        const json = JSON.parse(res.body);
        return {
          status: res.status,
          error: res.status === 200 ? undefined : { code: json.error.code, message: json.error.message },
          echo: res.status === 200 ? json.echo : undefined,
          principal: res.status === 200 && json.principal !== undefined ? JSON.parse(json.principal) : undefined,
          requestId: res.headers['x-keygate-request-id'],
          originRequestId: res.status === 200 ? json.requestId : undefined,
        };
      };
      const bearer = (value: string) => ({ authorization: `Bearer ${value}` });
      const results: Record<string, Awaited<ReturnType<typeof send>>> = {};
      results.jwtFirstKey = await send(JWT_HOST, '/me', { headers: bearer(tokens.first) });
      results.jwtMissing = await send(JWT_HOST, '/me');
      results.jwtWrongAudience = await send(JWT_HOST, '/me', { headers: bearer(tokens.wrongAudience) });
      results.jwtUnknownKidBeforeRotation = await send(JWT_HOST, '/me', { headers: bearer(tokens.second) });
      jwks = [await jwk(second.publicKey, 'k2')]; // the issuer rotates its key
      results.jwtRotatedKey = await send(JWT_HOST, '/me', { headers: bearer(tokens.second) });
      results.openapiAccepted = await send(OPENAPI_HOST, '/items', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"pen","count":2}' });
      results.openapiQueryOk = await send(OPENAPI_HOST, '/items?limit=10');
      results.openapiBadParameter = await send(OPENAPI_HOST, '/items?limit=1000');
      results.openapiBadJson = await send(OPENAPI_HOST, '/items', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":' });
      results.openapiSchemaViolation = await send(OPENAPI_HOST, '/items', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"pen","count":"two"}' });
      results.openapiMissingBody = await send(OPENAPI_HOST, '/items', { method: 'POST', headers: { 'content-type': 'application/json' } });
      results.openapiUnknownOperation = await send(OPENAPI_HOST, '/orders');
      results.openapiWrongMethod = await send(OPENAPI_HOST, '/items', { method: 'DELETE' });
      for (let index = 0; index < 4; index++) results[`retry${index}`] = await send(RETRY_HOST, `/r${index}`);
      results.logged = await send(LOG_HOST, '/log', { method: 'POST', headers: { authorization: 'Bearer sk_secret_value_123', 'content-type': 'application/json' }, body: '{"token":"sk_secret_value_123","note":"hello"}' });

      const scraped = await metrics.render();
      const ejections = Number(/^keygate_sentinel_instance_ejections_total (\d+)/m.exec(scraped)?.[1] ?? 'NaN');
      const originSaw = seen.map((entry) => ({ url: entry.url, body: entry.body }));
      return { results, rows: [...rows], scraped, ejections, originSaw, sentinelAddress: gateway.sentinelAddress };
    } finally {
      await gateway.close({ graceMs: 100 });
    }
  }

  const oneHop = await runCases({ name: 'one-hop', mode: 'one-hop' });
  const twoHop = await runCases({ name: 'two-hop', mode: 'two-hop' });
  const h2c = await runCases({ name: 'two-hop h2c', mode: 'two-hop', sentinelProtocol: 'h2c' });
  const r = oneHop.results;

  t.equal(r.jwtFirstKey!.status, 200, 'a token signed by the published key passes');
  t.equal(r.jwtFirstKey!.principal.subject, 'user_42');
  t.equal(r.jwtFirstKey!.principal.type, 'JWT');
  t.equal(r.jwtMissing!.status, 401);
  t.equal(r.jwtMissing!.error!.code, 'err:frontline:client:missing_credentials');
  t.equal(r.jwtWrongAudience!.status, 401);
  t.equal(r.jwtWrongAudience!.error!.code, 'err:frontline:client:invalid_token');
  t.equal(r.jwtUnknownKidBeforeRotation!.status, 401, 'a kid the issuer does not publish is refused');
  t.equal(r.jwtRotatedKey!.status, 200, 'after the rotation the new kid is fetched and accepted');

  t.equal(r.openapiAccepted!.status, 200);
  t.equal(r.openapiAccepted!.echo, '{"name":"pen","count":2}', 'the validated body reaches the origin intact');
  t.equal(r.openapiQueryOk!.status, 200);
  for (const name of ['openapiBadParameter', 'openapiBadJson', 'openapiSchemaViolation', 'openapiMissingBody', 'openapiUnknownOperation', 'openapiWrongMethod']) {
    t.equal(r[name]!.status, 400, `${name}: 400`);
    t.equal(r[name]!.error!.code, 'err:frontline:client:openapi_validation_failed', `${name}: openapi_validation_failed`);
  }
  t.match(r.openapiBadParameter!.error!.message, /query parameter "limit": must be <= 100/);
  t.match(r.openapiBadJson!.error!.message, /not valid JSON/);
  t.match(r.openapiSchemaViolation!.error!.message, /body\/count: must be integer/);
  t.match(r.openapiMissingBody!.error!.message, /request body is required/);
  t.match(r.openapiUnknownOperation!.error!.message, /no operation matches GET \/orders/);
  t.match(r.openapiWrongMethod!.error!.message, /method DELETE is not allowed/);

  for (let index = 0; index < 4; index++) t.equal(r[`retry${index}`]!.status, 200, `retry${index}: served despite the refusing instance`);
  for (const run of [oneHop, twoHop, h2c]) t.equal(run.ejections, 1, 'the refusing instance is ejected once and then tried last');

  t.equal(r.logged!.status, 200);
  const loggedRow = oneHop.rows.find((row) => row.path === '/log')!;
  t.equal(loggedRow.requestBody, '{"token":"[REDACTED]","note":"hello"}', 'the request body is logged with the key redacted');
  t.equal(loggedRow.responseBody, JSON.parse(JSON.stringify(loggedRow.responseBody)), 'a response body is logged');
  t.match(loggedRow.responseBody, /"echo":"\{\\"token\\":\\"\[REDACTED\]\\"/);
  t.ok(loggedRow.requestHeaders.includes('authorization: [REDACTED]'));

  t.match(oneHop.scraped, /keygate_sentinel_policy_decisions_total\{policy="jwt",type="jwtauth",outcome="success"\} 2/);
  t.match(oneHop.scraped, /keygate_sentinel_policy_decisions_total\{policy="jwt",type="jwtauth",outcome="rejected"\} 3/);
  t.match(oneHop.scraped, /keygate_sentinel_policy_decisions_total\{policy="schema",type="openapi",outcome="rejected"\} 6/);

  // One request id end to end: the client's response, the origin and the log row agree.
  for (const run of [oneHop, twoHop, h2c]) {
    for (const [name, result] of Object.entries(run.results)) {
      t.match(result.requestId, /^req_[A-Za-z0-9]+$/, `${name}: a single request id`);
      if (result.status === 200) t.equal(result.originRequestId, result.requestId, `${name}: the origin saw the same id`);
    }
    const row = run.rows.find((entry) => entry.path === '/log')!;
    t.equal(row.requestId, run.results.logged!.requestId, 'the log row carries the same id');
  }

  const comparable = (run: typeof oneHop) => Object.fromEntries(Object.entries(run.results).map(([name, result]) => [name, { ...result, requestId: undefined, originRequestId: undefined }]));
  t.same(comparable(twoHop), comparable(oneHop), 'two hops over HTTP/1.1 answer exactly as one hop');
  t.same(comparable(h2c), comparable(oneHop), 'two hops over h2c answer exactly as one hop');
  t.same(twoHop.originSaw, oneHop.originSaw, 'the origin sees the same requests and bodies');
  t.same(h2c.originSaw, oneHop.originSaw, 'the origin sees the same requests and bodies over h2c');
  t.ok(twoHop.sentinelAddress !== undefined && h2c.sentinelAddress !== undefined);
});

t.test('Sentinel believes X-Keygate-Deployment-Id only from a trusted Frontline address', async (t) => {
  const origin = await startOrigin((req, res) => {
    req.resume();
    req.on('end', () => res.end(`origin saw ${req.headers.host}`));
  });
  t.teardown(() => origin.close());
  const files = tempDir();
  t.teardown(() => files.cleanup());
  mkdirSync(join(files.dir, 'certs'));
  createTestCertificate({ hostnames: ['open.gw.test', 'closed.gw.test'], dir: join(files.dir, 'certs'), name: 'gw' });
  const config = {
    frontline: {
      httpsPort: 0, httpPort: null, certificates: [{ certFile: 'certs/gw.pem', keyFile: 'certs/gw.key' }],
      routes: [
        { host: 'open.gw.test', upstreams: [origin.url] },
        { host: 'closed.gw.test', upstreams: [origin.url], policies: [{ id: 'deny', name: 'deny', enabled: true, match: [], firewall: { action: 'ACTION_DENY' } }] },
      ],
    },
  };
  const ingressFile = files.write('ingress.json', config);
  const directToSentinel = async (trustedFrontlines: string[]) => {
    const gateway = await Gateway.start({ mode: 'two-hop', engine: new PolicyEngine(), trustedFrontlines, ingress: { file: ingressFile, instanceId: 'fl_test' } });
    try {
      const sentinel = `http://127.0.0.1:${gateway.sentinelAddress!.port}`;
      // Host names the denied route; the header tries to pick the open one.
      const res = await request(`${sentinel}/x`, { headers: { host: 'closed.gw.test', 'x-keygate-deployment-id': 'static:open.gw.test', accept: 'application/json' } });
      const viaFrontline = await httpsRequest(gateway.ingress.addresses.https.port, 'open.gw.test', '/y');
      return { direct: res.status, viaFrontline: viaFrontline.status };
    } finally {
      await gateway.close({ graceMs: 100 });
    }
  };
  const trusted = await directToSentinel(['127.0.0.1']);
  t.equal(trusted.direct, 200, 'from a trusted Frontline address the header picks the deployment');
  const untrusted = await directToSentinel(['10.9.9.9']);
  t.equal(untrusted.direct, 403, 'from an untrusted address the header is ignored: the Host route (firewall) applies');
  t.equal(untrusted.viaFrontline, 200, 'routing by Host still works when the Frontline is not trusted');
});

t.test('a bad policy in the ingress file is refused when the file is read, with the path of the field', async (t) => {
  const files = tempDir();
  t.teardown(() => files.cleanup());
  const file = files.write('ingress.json', {
    frontline: {
      httpsPort: 0, httpPort: null,
      routes: [
        { host: 'a.gw.test', upstreams: ['http://127.0.0.1:9'] },
        { host: 'b.gw.test', upstreams: ['http://127.0.0.1:9'], policies: [{ id: 'ok', enabled: true, firewall: { action: 'ACTION_DENY' } }, { id: 'rl', enabled: true, ratelimit: { limit: -1, windowMs: 1000, identifiers: [{ remoteIp: {} }] } }] },
      ],
    },
  });
  const failure = await readIngressFile(file).then(() => undefined, (err: unknown) => err);
  t.ok(failure instanceof Fault, 'rejected with a Fault');
  const locations = (failure as Fault).errors?.map((detail) => detail.location) ?? [];
  t.ok(locations.some((location) => location.startsWith('frontline.routes[1].policies[1].ratelimit.limit')), `the path names the field: ${locations.join(', ')}`);
});
