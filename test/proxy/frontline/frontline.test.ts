import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../../../core/log.ts';
import { Metrics } from '../../../core/metrics.ts';
import { IngressFrontline } from '../../../proxy/frontline/ingress-frontline.ts';
import { createTestCertificate } from '../../helpers/certificates.ts';
import { request, waitFor } from '../helpers.ts';
import type { EchoBody } from './helpers.ts';
import { handshake, httpsRequest, openTunnel, run, startEchoOrigin, tempDir } from './helpers.ts';

const files = tempDir();
const certs = join(files.dir, 'certs');
mkdirSync(certs);
const appCert = createTestCertificate({ hostnames: ['app.example.test'], dir: certs, name: 'app' });
const wildCert = createTestCertificate({ hostnames: ['*.wild.example.test'], dir: certs, name: 'wild' });
const origin = await startEchoOrigin('one');
const second = await startEchoOrigin('two');
const metrics = new Metrics();

const ingressFile = files.write('ingress.json', {
  frontline: {
    httpsPort: 0,
    httpPort: 0,
    certificates: [
      { certFile: 'certs/app.pem', keyFile: 'certs/app.key' },
      { certFile: 'certs/wild.pem', keyFile: 'certs/wild.key' },
    ],
    routes: [
      { host: 'app.example.test', upstreams: [origin.url] },
      { host: '*.wild.example.test', upstreams: [origin.url, second.url] },
    ],
  },
});
const logLines: string[] = [];
const logger = createLogger({ name: 'frontline', destination: { write: (line: string) => { logLines.push(line); } } });
const ingress = await IngressFrontline.start({ file: ingressFile, metrics, instanceId: 'fl_test', region: 'test-1', logger });
const httpsPort = ingress.addresses.https.port;
const httpPort = ingress.addresses.http!.port;

t.teardown(async () => {
  await ingress.close({ graceMs: 200 });
  await origin.close();
  await second.close();
  files.cleanup();
});

t.test('SNI picks the exact certificate, the one-label wildcard, and refuses unknown names', async (t) => {
  t.equal((await handshake(httpsPort, 'app.example.test')).altNames, 'DNS:app.example.test');
  t.equal((await handshake(httpsPort, 'API.wild.example.test')).altNames, 'DNS:*.wild.example.test', 'case-insensitive wildcard');
  await t.rejects(handshake(httpsPort, 'a.b.wild.example.test'), 'a wildcard covers one label only');
  await t.rejects(handshake(httpsPort, 'unknown.example.test'), 'unknown SNI fails the handshake');
  await t.rejects(handshake(httpsPort, undefined), 'no SNI fails the handshake without a default certificate');
});

t.test('openssl s_client sees the SNI certificate and negotiates ALPN h2 or http/1.1', async (t) => {
  const h2 = await run('openssl', ['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', 'app.example.test', '-alpn', 'h2,http/1.1']);
  t.match(h2.stdout, /subject=CN ?= ?app\.example\.test/);
  t.match(h2.stdout, /ALPN protocol: h2/);
  t.match(h2.stdout, /TLSv1\.3/, "TLS 1.3 is negotiated");
  const http1 = await run('openssl', ['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', 'x.wild.example.test', '-alpn', 'http/1.1']);
  t.match(http1.stdout, /subject=CN ?= ?\*\.wild\.example\.test/);
  t.match(http1.stdout, /ALPN protocol: http\/1\.1/);
  const unknown = await run('openssl', ['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', 'nobody.example.test']);
  t.notMatch(unknown.stdout, /subject=CN/, 'no certificate is served for an unknown name');
});

t.test('curl --http2 and --http1.1 reach the upstream through Frontline', async (t) => {
  for (const [flag, version] of [['--http2', '2'], ['--http1.1', '1.1']] as const) {
    const result = await run('curl', ['-sS', flag, '-k', '--resolve', `app.example.test:${httpsPort}:127.0.0.1`, '-H', 'X-Keygate-Principal: spoofed',
      '-w', '\n%{http_version} %{http_code}', `https://app.example.test:${httpsPort}/hello?x=1`]);
    t.equal(result.code, 0, result.stderr);
    const [body, status] = result.stdout.split('\n');
    t.equal(status, `${version} 200`, `curl ${flag}`);
    const echo = JSON.parse(body!) as EchoBody;
    t.equal(echo.url, '/hello?x=1');
    t.equal(echo.headers.host, `app.example.test:${httpsPort}`, 'the original Host (with port) goes upstream');
    t.equal(echo.headers['x-forwarded-proto'], 'https');
    t.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    t.equal(echo.headers['x-keygate-principal'], undefined, `internal headers are stripped over ${flag} too`);
  }
});

t.test('routes by Host lower-cased with the port stripped; an unknown host is a 404 config_not_found', async (t) => {
  const response = await httpsRequest(httpsPort, 'app.example.test', '/case', { headers: { host: 'APP.Example.TEST.:1234' } });
  t.equal(response.status, 200);
  t.equal(response.headers['x-keygate-frontline-id'], 'fl_test');
  t.equal(response.headers['x-keygate-region'], 'test-1');
  const missing = await httpsRequest(httpsPort, 'app.example.test', '/x', { headers: { host: 'other.example.test', accept: 'application/json' } });
  t.equal(missing.status, 404);
  const body = JSON.parse(missing.body) as { meta: { requestId: string }; error: { code: string } };
  t.equal(body.error.code, 'err:frontline:routing:config_not_found');
  t.match(body.meta.requestId, /^req_/);
  t.notOk(missing.headers['x-keygate-frontline-id'], 'routing errors carry no forwarding headers');
});

t.test('a wildcard route balances over its upstreams', async (t) => {
  const seen = new Set<string>();
  for (let index = 0; index < 4; index++) {
    const response = await httpsRequest(httpsPort, 'api.wild.example.test', '/');
    seen.add((JSON.parse(response.body) as EchoBody).origin);
  }
  t.same([...seen].sort(), ['one', 'two']);
});

t.test('every client X-Keygate-* header is stripped at the edge, including a spoofed hop count', async (t) => {
  const response = await httpsRequest(httpsPort, 'app.example.test', '/spoof', {
    headers: {
      'x-keygate-principal': '{"subject":"admin"}',
      'X-Keygate-Frontline-Hops': '1',
      'x-keygate-hop-signature': 'v1=forged',
      'x-keygate-parent-request-id': 'req_forged',
      'x-keygate-parent-frontline-id': 'fl_forged',
      'x-keygate-request-id': 'req_forged',
      'x-keygate-anything': 'yes',
      'x-forwarded-for': '6.6.6.6',
      'x-other': 'kept',
    },
  });
  const echo = JSON.parse(response.body) as EchoBody;
  const internal = Object.keys(echo.headers).filter((name) => name.startsWith('x-keygate-')).sort();
  t.same(internal, ['x-keygate-frontline-id', 'x-keygate-region', 'x-keygate-request-id'], 'only the headers Frontline sets itself');
  t.not(echo.headers['x-keygate-request-id'], 'req_forged');
  t.equal(echo.headers['x-keygate-frontline-id'], 'fl_test');
  t.equal(echo.headers['x-forwarded-for'], '127.0.0.1', 'a client X-Forwarded-For is replaced');
  t.equal(echo.headers['x-other'], 'kept');
  const rendered = await metrics.render();
  t.match(rendered, /keygate_frontline_hop_headers_rejected_total 1/);
});

t.test('health endpoints answer under the reserved path on every host and both listeners', async (t) => {
  const secure = await httpsRequest(httpsPort, 'app.example.test', '/_keygate/health/ready', { headers: { host: 'not-routed.example.test' } });
  t.equal(secure.status, 200);
  t.same(JSON.parse(secure.body), { status: 'ok' });
  const plain = await request(`http://127.0.0.1:${httpPort}/_keygate/health/live`, { headers: { host: 'anything' } });
  t.equal(plain.status, 200);
  const unknown = await httpsRequest(httpsPort, 'app.example.test', '/_keygate/nope');
  t.equal(unknown.status, 404, 'the reserved prefix is never proxied');
  t.notOk(unknown.body.includes('"origin"'));
});

t.test('the HTTP listener redirects to HTTPS with 308 and keeps path and query', async (t) => {
  const response = await request(`http://127.0.0.1:${httpPort}/a/b?c=d&e`, { method: 'POST', headers: { host: 'App.Example.Test:8080', 'content-length': '3' }, body: 'abc' });
  t.equal(response.status, 308);
  t.equal(response.headers.location, `https://app.example.test:${httpsPort}/a/b?c=d&e`);
  t.equal(response.headers.connection, 'close', 'a request body is not read: the connection closes');
  const evil = await request(`http://127.0.0.1:${httpPort}/`, { headers: { host: 'evil.test/@x' } });
  t.equal(evil.status, 400, 'a Host that is not a host name is not echoed into Location');
});

t.test('the HTTP listener answers ACME HTTP-01 challenges from the store', async (t) => {
  ingress.challenges.set('tok_en-1', 'tok_en-1.thumbprint', { host: 'app.example.test' });
  const served = await request(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/tok_en-1`, { headers: { host: 'app.example.test' } });
  t.equal(served.status, 200);
  t.equal(served.headers['content-type'], 'text/plain');
  t.equal(served.body, 'tok_en-1.thumbprint');
  const otherHost = await request(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/tok_en-1`, { headers: { host: 'other.test' } });
  t.equal(otherHost.status, 404, 'a token bound to a domain is not served for another');
  const unknown = await request(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/..%2F..%2Fetc%2Fpasswd`, { headers: { host: 'app.example.test', accept: 'application/json' } });
  t.equal(unknown.status, 404);
  t.match(unknown.body, /config_not_found/);
  const proxied = await httpsRequest(httpsPort, 'app.example.test', '/.well-known/acme-challenge/tok_en-1');
  t.equal((JSON.parse(proxied.body) as EchoBody).url, '/.well-known/acme-challenge/tok_en-1', 'on HTTPS the path goes to the app');
});

t.test('a certificate renewed on disk is served to new handshakes after a reload', async (t) => {
  const before = await handshake(httpsPort, 'app.example.test');
  const renewed = createTestCertificate({ hostnames: ['app.example.test'] });
  t.teardown(renewed.cleanup);
  copyFileSync(renewed.certFile, appCert.certFile);
  copyFileSync(renewed.keyFile, appCert.keyFile);
  const result = await ingress.reload();
  t.ok(result.applied);
  const after = await handshake(httpsPort, 'app.example.test');
  t.not(after.fingerprint, before.fingerprint);
  t.equal(after.fingerprint, new X509Certificate(renewed.cert).fingerprint256);
});

t.test('a config reload keeps an open WebSocket tunnel on an unchanged route and applies the changes', async (t) => {
  const tunnel = await openTunnel(httpsPort, 'app.example.test');
  t.teardown(() => tunnel.close());
  t.equal(await tunnel.send('hello'), 'one:hello');
  const third = await startEchoOrigin('three');
  t.teardown(() => third.close());
  files.write('ingress.json', {
    frontline: {
      httpsPort: 0,
      httpPort: 0,
      certificates: [
        { certFile: 'certs/app.pem', keyFile: 'certs/app.key' },
        { certFile: 'certs/wild.pem', keyFile: 'certs/wild.key' },
      ],
      routes: [
        { host: 'app.example.test', upstreams: [origin.url] },
        { host: '*.wild.example.test', upstreams: [third.url] },
        { host: 'new.wild.example.test', upstreams: [second.url] },
      ],
    },
  });
  const result = await ingress.reload();
  t.ok(result.applied);
  t.same(result.changed, ['*.wild.example.test']);
  t.same(result.added, ['new.wild.example.test']);
  t.equal(result.unchanged, 1);
  t.equal(await tunnel.send('still there'), 'one:still there', 'the tunnel survived the reload');
  t.equal((JSON.parse((await httpsRequest(httpsPort, 'x.wild.example.test', '/')).body) as EchoBody).origin, 'three');
  t.equal((JSON.parse((await httpsRequest(httpsPort, 'new.wild.example.test', '/')).body) as EchoBody).origin, 'two', 'exact beats wildcard');
});

t.test('an invalid edit is refused whole and the running configuration stays', async (t) => {
  const good = await httpsRequest(httpsPort, 'app.example.test', '/');
  t.equal(good.status, 200);
  files.write('ingress.json', { frontline: { routes: [{ host: 'app.example.test', upstreams: ['ftp://nope'] }] } });
  const result = await ingress.reload();
  t.notOk(result.applied);
  t.match(result.error?.publicMessage, /frontline\.routes\[0\]\.upstreams\[0\]/);
  t.equal((await httpsRequest(httpsPort, 'app.example.test', '/')).status, 200);
  t.equal((await handshake(httpsPort, 'x.wild.example.test')).altNames, 'DNS:*.wild.example.test', 'certificates kept too');
  t.match(await metrics.render(), /keygate_frontline_config_reloads_total\{outcome="failed"\} 1/);
});

t.test('the file is re-read when it changes on disk (watch mode)', async (t) => {
  const dir = tempDir();
  t.teardown(dir.cleanup);
  createTestCertificate({ hostnames: ['watch.example.test'], dir: dir.dir, name: 'watch' });
  const routes = (upstream: string) => ({
    frontline: { httpsPort: 0, httpPort: null, certificates: [{ certFile: 'watch.pem', keyFile: 'watch.key' }], routes: [{ host: 'watch.example.test', upstreams: [upstream] }] },
  });
  const file = dir.write('ingress.json', routes(origin.url));
  const reloads: boolean[] = [];
  const watched = await IngressFrontline.start({ file, metrics: new Metrics(), watch: true, watchDebounceMs: 20, onReload: (result) => reloads.push(result.applied) });
  t.teardown(() => watched.close({ graceMs: 100 }));
  const port = watched.addresses.https.port;
  t.equal(watched.addresses.http, undefined, 'httpPort null: no HTTP listener');
  t.equal((JSON.parse((await httpsRequest(port, 'watch.example.test', '/')).body) as EchoBody).origin, 'one');
  dir.write('ingress.json', routes(second.url));
  await waitFor(() => reloads.includes(true), 5_000, 'the reload after a file change');
  t.equal((JSON.parse((await httpsRequest(port, 'watch.example.test', '/')).body) as EchoBody).origin, 'two');
});

t.test('metrics count requests, redirects and challenges', async (t) => {
  const text = await metrics.render();
  t.match(text, /keygate_frontline_requests_total\{status_class="2xx",code=""\} \d+/);
  t.match(text, /keygate_frontline_requests_total\{status_class="4xx",code="err:frontline:routing:config_not_found"\} 1/);
  t.match(text, /keygate_frontline_https_redirects_total 1/);
  t.match(text, /keygate_frontline_acme_challenges_total\{outcome="served"\} 1/);
});

t.test('one access-log line per proxied request, without secrets, and none for health probes', async (t) => {
  logLines.length = 0;
  await httpsRequest(httpsPort, 'app.example.test', '/logged?token=x', { headers: { authorization: 'Bearer sk_secret_value' } });
  await httpsRequest(httpsPort, 'app.example.test', '/_keygate/health/live');
  await waitFor(() => logLines.length >= 1, 2_000, 'the access log line');
  t.equal(logLines.length, 1);
  const line = JSON.parse(logLines[0]!) as Record<string, unknown>;
  t.match(line, { msg: 'request', method: 'GET', host: 'app.example.test', path: '/logged', status: 200, upstream: origin.url, attempts: 1 });
  t.match(line['requestId'], /^req_/);
  t.notOk(logLines[0]!.includes('sk_secret_value'), 'headers are not logged');
  t.notOk(logLines[0]!.includes('token=x'), 'nor the query string');
});
