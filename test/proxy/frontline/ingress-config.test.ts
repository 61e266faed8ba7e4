import t from 'tap';
import { Fault } from '../../../core/fault.ts';
import { INGRESS_DEFAULTS, parseIngressConfig, readIngressFile } from '../../../proxy/frontline/ingress-config.ts';
import { RouteTable } from '../../../proxy/frontline/route-table.ts';
import { tempDir } from './helpers.ts';

t.test('the issue example parses, with defaults and paths relative to the file', async (t) => {
  const dir = tempDir();
  t.teardown(dir.cleanup);
  const file = dir.write('ingress.json', {
    log: { level: 'debug' },
    frontline: {
      httpsPort: 8443, httpPort: 8080,
      certificates: [{ certFile: 'certs/app.pem', keyFile: '/abs/app.key' }],
      routes: [{ host: 'App.Example.com.', upstreams: ['http://127.0.0.1:9000'] }],
    },
  });
  const config = await readIngressFile(file);
  t.equal(config.httpsPort, 8443);
  t.equal(config.httpPort, 8080);
  t.same(config.certificates, [{ certFile: `${dir.dir}/certs/app.pem`, keyFile: '/abs/app.key' }]);
  t.same(config.routes, [{ host: 'app.example.com', upstreams: ['http://127.0.0.1:9000'], peers: [], protocol: 'http1', policies: [] }]);
  const minimal = parseIngressConfig({ routes: [] }, { baseDir: '/' });
  t.equal(minimal.httpsPort, INGRESS_DEFAULTS.httpsPort);
  t.equal(minimal.httpPort, INGRESS_DEFAULTS.httpPort);
  t.equal(parseIngressConfig({ routes: [], httpPort: null }, { baseDir: '/' }).httpPort, undefined, 'null disables the HTTP listener');
});

const invalidCases: Array<[string, unknown, string[]]> = [
  ['routes missing', {}, ['frontline.routes']],
  ['route not an object', { routes: ['app.example.com'] }, ['frontline.routes[0]']],
  ['host with a port', { routes: [{ host: 'app.example.com:443', upstreams: ['http://a:1'] }] }, ['frontline.routes[0].host']],
  ['wildcard in the middle', { routes: [{ host: 'a.*.example.com', upstreams: ['http://a:1'] }] }, ['frontline.routes[0].host']],
  ['bare wildcard', { routes: [{ host: '*', upstreams: ['http://a:1'] }] }, ['frontline.routes[0].host']],
  ['upstream scheme', { routes: [{ host: 'a.example.com', upstreams: ['http://ok:1', 'ftp://x'] }] }, ['frontline.routes[0].upstreams[1]']],
  ['upstream with a path', { routes: [{ host: 'a.example.com', upstreams: ['http://x:1/api'] }] }, ['frontline.routes[0].upstreams[0]']],
  ['no upstreams', { routes: [{ host: 'a.example.com', upstreams: [] }] }, ['frontline.routes[0].upstreams']],
  ['upstreams missing', { routes: [{ host: 'a.example.com' }] }, ['frontline.routes[0].upstreams']],
  ['duplicate host', { routes: [{ host: 'a.example.com', upstreams: ['x:1'] }, { host: 'A.example.com', upstreams: ['x:2'] }] }, ['frontline.routes[1].host']],
  ['unknown route key', { routes: [{ host: 'a.example.com', upstreams: ['x:1'], upstream: 'x' }] }, ['frontline.routes[0].upstream']],
  ['bad protocol', { routes: [{ host: 'a.example.com', upstreams: ['x:1'], protocol: 'h3' }] }, ['frontline.routes[0].protocol']],
  ['port out of range', { httpsPort: 70000, routes: [] }, ['frontline.httpsPort']],
  ['port as text', { httpPort: '80', routes: [] }, ['frontline.httpPort']],
  ['certificate without key', { certificates: [{ certFile: 'a.pem' }], routes: [] }, ['frontline.certificates[0].keyFile']],
  ['several problems at once', { httpsPort: -1, routes: [{ host: '', upstreams: ['x:1'] }, { host: 'b.example.com', upstreams: 'x:1' }] },
    ['frontline.httpsPort', 'frontline.routes[0].host', 'frontline.routes[1].upstreams']],
];

for (const [name, section, locations] of invalidCases) {
  t.test(`rejects ${name}, naming the path of the bad field`, async (t) => {
    const fault = await t.rejects(async () => parseIngressConfig(section, { baseDir: '/', source: 'ingress.json' })) as unknown as Fault;
    t.ok(fault instanceof Fault);
    t.equal(fault.code, 'err:keygate:config:invalid');
    t.same(fault.errors?.map((problem) => problem.location), locations);
    for (const location of locations) t.match(fault.publicMessage, location);
    t.match(fault.publicMessage, /in ingress\.json/);
  });
}

t.test('a missing file and a file without a frontline object are distinct errors', async (t) => {
  const dir = tempDir();
  t.teardown(dir.cleanup);
  await t.rejects(readIngressFile(`${dir.dir}/nope.json`), { code: 'err:keygate:config:file_not_found' });
  await t.rejects(readIngressFile(dir.write('bad.json', '{"frontline": ')), { code: 'err:keygate:config:invalid', publicMessage: /not valid JSON/ });
  await t.rejects(readIngressFile(dir.write('other.json', { server: {} })), { code: 'err:keygate:config:invalid', publicMessage: /frontline/ });
});

t.test('the route table matches exact hosts first, then one wildcard label, never deeper', async (t) => {
  const table = new RouteTable([
    { host: 'app.example.com', upstreams: ['http://127.0.0.1:1'], peers: [], protocol: 'http1', policies: [] },
    { host: '*.example.com', upstreams: ['http://127.0.0.1:2', 'http://127.0.0.1:3'], peers: [], protocol: 'http1', policies: [] },
  ]);
  t.equal(table.lookup('app.example.com')?.host, 'app.example.com');
  t.equal(table.lookup('api.example.com')?.host, '*.example.com');
  t.equal(table.lookup('a.b.example.com'), undefined);
  t.equal(table.lookup('example.com'), undefined);
  t.equal(table.lookup(''), undefined);
  const wildcard = table.lookup('x.example.com')!;
  const firsts = [0, 1, 2, 3].map(() => wildcard.candidates(true)[0]!.port);
  t.same(firsts, [2, 3, 2, 3], 'round-robin over the upstreams');
  t.same(wildcard.candidates(true).map((peer) => peer.port), [2, 3], 'the other upstreams follow as connect-failure fallbacks');
});

t.test('a rebuilt table reuses unchanged routes and replaces changed ones', async (t) => {
  const route = (host: string, port: number) => ({ host, upstreams: [`http://127.0.0.1:${port}`], peers: [], protocol: 'http1' as const, policies: [] });
  const first = new RouteTable([route('a.example.com', 1), route('b.example.com', 2)]);
  const second = new RouteTable([route('a.example.com', 1), route('b.example.com', 3)], { previous: first });
  t.equal(second.get('a.example.com'), first.get('a.example.com'));
  t.not(second.get('b.example.com'), first.get('b.example.com'));
});

t.test('a route with peers lists them after the local upstreams, and leaves them out past the hop limit', async (t) => {
  const table = new RouteTable([{ host: 'a.example.com', upstreams: ['http://127.0.0.1:1'], peers: ['https://peer.example.com:8443'], protocol: 'http1', policies: [] }]);
  const route = table.lookup('a.example.com')!;
  t.same(route.candidates(true).map((peer) => peer.origin), ['http://127.0.0.1:1', 'https://peer.example.com:8443']);
  t.same(route.candidates(false).map((peer) => peer.origin), ['http://127.0.0.1:1']);
  t.equal(route.remoteOnly, false);
});

t.test('the keygate config loader accepts the ingress file and routes given as JSON in the environment', async (t) => {
  const { loadConfig } = await import('../../../core/config/load-config.ts');
  const dir = tempDir();
  t.teardown(dir.cleanup);
  const file = dir.write('ingress.json', {
    log: { level: 'warn' },
    frontline: {
      httpsPort: 8443, httpPort: 8080, region: 'eu-1',
      certificates: [{ certFile: 'certs/app.pem', keyFile: 'certs/app.key' }],
      routes: [{ host: 'app.example.com', upstreams: ['http://127.0.0.1:9000'] }],
    },
  });
  const config = loadConfig({ file, env: {} });
  t.equal(config.frontline.region, 'eu-1');
  t.same(config.frontline.certificates, [{ certFile: `${dir.dir}/certs/app.pem`, keyFile: `${dir.dir}/certs/app.key` }]);
  t.same(config.frontline.routes, [{ host: 'app.example.com', upstreams: ['http://127.0.0.1:9000'] }]);
  const fromEnv = loadConfig({ env: { KEYGATE_FRONTLINE_ROUTES: '[{"host":"b.example.com","upstreams":["x:1"]}]' } });
  t.same(fromEnv.frontline.routes, [{ host: 'b.example.com', upstreams: ['x:1'] }]);
  t.throws(() => loadConfig({ env: { KEYGATE_FRONTLINE_ROUTES: 'not json' } }), { code: 'err:keygate:config:invalid' });
  t.throws(() => loadConfig({ file: dir.write('typo.json', { frontline: { route: [] } }), env: {} }), { code: 'err:keygate:config:invalid' }, 'an unknown key in the section is caught by the config loader');
});
