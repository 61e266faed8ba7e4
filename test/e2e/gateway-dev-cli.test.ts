/**
 * `keygate dev --config ingress.json` runs the API and the gateway (Frontline + Sentinel) in one
 * process: spawned as the real CLI, it prints what listens where, and a key created through its
 * API opens the route while a missing or unknown key is refused; the request-log row lands in
 * the local `gateway_requests` table.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { openDatabase } from '../../core/db/database.ts';
import type { EchoBody } from '../proxy/frontline/helpers.ts';
import { httpsRequest, startEchoOrigin, tempDir } from '../proxy/frontline/helpers.ts';
import { pollUntil, reserveLoopbackPort, startKeygate } from './keygate-process.ts';

t.test('keygate dev --config puts key auth in front of a local service', async (t) => {
  const files = tempDir();
  t.teardown(() => files.cleanup());
  const origin = await startEchoOrigin('service');
  t.teardown(() => origin.close());
  const dataDir = join(files.dir, 'data');

  // First start: no gateway yet; the root key is printed, an API and a key are created.
  const first = await startKeygate(t, 'dev-first', ['dev', '--data-dir', dataDir, '--port', String(await reserveLoopbackPort())]);
  const rootKey = /root key: (\S+)/.exec(first.output())![1]!;
  await pollUntil('the no-gateway hint', 10_000, async () => (first.output().includes('gateway: not started') ? true : undefined));
  const api = await first.call('apis.createApi', { name: 'service' }, rootKey);
  t.equal(api.status, 200);
  const apiId = api.body.data.apiId as string;
  const created = await first.call('keys.createKey', { apiId, prefix: 'sk' }, rootKey);
  t.equal(created.status, 200);
  const key = created.body.data.key as string;
  t.equal(await first.stop(), 0);

  const config = join(files.dir, 'ingress.json');
  writeFileSync(config, JSON.stringify({
    frontline: { httpsPort: 0, httpPort: null, routes: [{ host: 'localhost', upstreams: [origin.url], policies: [{ id: 'keys', name: 'keys', enabled: true, match: [], keyauth: { apiIds: [apiId] } }] }] },
    sentinel: { mode: 'two-hop' },
  }));
  const dev = await startKeygate(t, 'dev-gateway', ['dev', '--config', config, '--data-dir', dataDir, '--port', String(await reserveLoopbackPort())]);
  const port = await pollUntil('the gateway to listen', 15_000, async () => {
    const match = /gateway \(two-hop\): frontline listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(dev.output());
    return match === null ? undefined : Number(match[1]);
  });
  t.match(dev.output(), /gateway: sentinel listening on http:\/\/127\.0\.0\.1:\d+/, 'prints where Sentinel listens');
  t.match(dev.output(), /gateway: route localhost → http:\/\/127\.0\.0\.1:\d+ \(policies: keys\)/, 'prints each route and its policies');
  t.match(dev.output(), /self-signed certificate/, 'a dev certificate was made for the route hosts');

  const missing = await httpsRequest(port, 'localhost', '/hello', { headers: { accept: 'application/json' } });
  t.equal(missing.status, 401);
  t.equal(JSON.parse(missing.body).error.code, 'err:frontline:client:missing_credentials');
  t.equal((await httpsRequest(port, 'localhost', '/hello', { headers: { authorization: 'Bearer sk_unknown_000000000000' } })).status, 401);
  const ok = await httpsRequest(port, 'localhost', '/hello', { headers: { authorization: `Bearer ${key}` } });
  t.equal(ok.status, 200);
  const seen = JSON.parse(ok.body) as EchoBody;
  t.equal(seen.url, '/hello');
  t.equal(JSON.parse(seen.headers['x-keygate-principal'] as string).subject, created.body.data.keyId, 'the service sees the principal');
  t.equal(await dev.stop(), 0, 'stops cleanly on SIGTERM (the request log is flushed)');

  const db = await openDatabase(join(dataDir, 'keygate.db'), { dataDir });
  t.teardown(() => db.close());
  const rows = await db.query<{ path: string; response_status: number; method: string }>('SELECT path, response_status, method FROM gateway_requests');
  t.same(rows.map((row) => [row.method, row.path, Number(row.response_status)]), [['GET', '/hello', 200]], 'one row for the request that reached the service');
});
