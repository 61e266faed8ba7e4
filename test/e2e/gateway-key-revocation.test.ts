/**
 * A key disabled or deleted through the API is rejected by the gateway: at once when the API and
 * the gateway share the verifier's cache and its invalidation bus (one process, as `keygate dev`
 * runs them), and within the cache's freshness window when the invalidation never arrives (a
 * write made elsewhere). Real sockets: client → Frontline (TLS, one hop) → origin.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { updateKey } from '../../core/db/queries/keys.ts';
import { MemoryRateLimiter } from '../../core/ratelimit/memory.ts';
import { DatabaseKeySpaceResolver } from '../../proxy/sentinel/executors/keyauth/database-key-space-resolver.ts';
import { Gateway } from '../../proxy/sentinel/gateway.ts';
import { PolicyEngine } from '../../proxy/sentinel/policy-engine.ts';
import { startApiHarness } from '../helpers/api-harness.ts';
import { createTestCertificate } from '../helpers/certificates.ts';
import { httpsRequest, startEchoOrigin, tempDir } from '../proxy/frontline/helpers.ts';

const HOST = 'keys.gateway.test';
const FRESH_MS = 5_000;

t.test('keys revoked through the API stop working at the gateway', async (t) => {
  // SQLite in memory: the harness is always available (undefined only for MariaDB/Redis).
  const h = (await startApiHarness(t, { cacheFreshMs: FRESH_MS }))!;
  const admin = await h.createAdminRootKey();
  const { apiId } = await h.seedApi();
  const origin = await startEchoOrigin('origin');
  t.teardown(() => origin.close());
  const files = tempDir();
  t.teardown(() => files.cleanup());
  mkdirSync(join(files.dir, 'certs'));
  createTestCertificate({ hostnames: [HOST], dir: join(files.dir, 'certs'), name: 'app' });
  const limiter = new MemoryRateLimiter({ clock: h.clock });
  t.teardown(() => limiter.close());
  // The gateway's KeyAuth runs on the API's own verifier: one cache, bound to the API's bus.
  const engine = new PolicyEngine({ rateLimiter: limiter, keyVerifier: h.deps.keyVerifier, keySpaceResolver: new DatabaseKeySpaceResolver(h.db), clock: h.clock });
  const gateway = await Gateway.start({
    engine, clock: h.clock,
    ingress: {
      config: {
        httpsPort: 0, httpPort: undefined, certificateDir: undefined, acmeChallengeDir: undefined,
        certificates: [{ certFile: join(files.dir, 'certs/app.pem'), keyFile: join(files.dir, 'certs/app.key') }],
        routes: [{ host: HOST, upstreams: [origin.url], peers: [], protocol: 'http1', policies: [{ id: 'keys', name: 'keys', enabled: true, match: [], keyauth: { apiIds: [apiId] } }] }],
      },
    },
  });
  t.teardown(() => gateway.close({ graceMs: 100 }));
  const port = gateway.ingress.addresses.https.port;
  const statusWith = async (key: string) => (await httpsRequest(port, HOST, '/', { headers: { authorization: `Bearer ${key}` } })).status;

  t.test('disabled through keys.updateKey: rejected on the very next request (invalidation bus)', async (t) => {
    const { key, keyId } = await h.seedKey({ apiId });
    t.equal(await statusWith(key), 200, 'valid, and now cached');
    t.equal((await h.call('keys.updateKey', { keyId, enabled: false }, admin)).status, 200);
    t.equal(await statusWith(key), 401, 'no stale window: the cache entry was dropped');
    t.equal((await h.call('keys.updateKey', { keyId, enabled: true }, admin)).status, 200);
    t.equal(await statusWith(key), 200, 're-enabled works at once too');
  });

  t.test('deleted through keys.deleteKey: rejected on the very next request', async (t) => {
    const { key, keyId } = await h.seedKey({ apiId });
    t.equal(await statusWith(key), 200);
    t.equal((await h.call('keys.deleteKey', { keyId }, admin)).status, 200);
    t.equal(await statusWith(key), 401);
  });

  t.test('without an invalidation: served from cache while fresh, rejected once the freshness window passed', async (t) => {
    const { key, keyId } = await h.seedKey({ apiId });
    t.equal(await statusWith(key), 200);
    // A write the bus never reports (another node, a manual SQL change).
    await updateKey(h.db, keyId, { enabled: false }, h.clock.nowMs());
    t.equal(await statusWith(key), 200, 'still fresh: the cached entry answers');
    h.clock.advance(FRESH_MS + 1);
    // Stale-while-revalidate: at most the request that triggers the refresh sees the old entry.
    const statuses: number[] = [];
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const status = await statusWith(key);
      statuses.push(status);
      if (status === 401) break;
    }
    t.equal(statuses.at(-1), 401, 'rejected after the freshness window');
    t.ok(statuses.length <= 2, `at most one stale answer while revalidating (got ${statuses.join(', ')})`);
  });
});
