import t from 'tap';
import { Fault } from '../../../core/fault.ts';
import { compileMatch } from '../../../proxy/sentinel/match/compile-match.ts';
import { SafeRegex, vetRegex } from '../../../proxy/sentinel/match/safe-regex.ts';
import { parsePolicies } from '../../../proxy/sentinel/policy/parse-policies.ts';
import { PolicyCodec } from '../../../proxy/sentinel/policy/policy-codec.ts';
import { RequestView, normalizePath } from '../../../proxy/sentinel/request-view.ts';

function view(url: string, headers: Record<string, string | string[]> = {}, method = 'GET', distinct?: Record<string, string[]>): RequestView {
  return new RequestView({ requestId: 'req_1', method, url, headers, clientIp: '127.0.0.1', ...(distinct ? { headersDistinct: distinct } : {}) });
}

function faultOf(fn: () => unknown): Fault {
  try {
    fn();
  } catch (err) {
    if (err instanceof Fault) return err;
    throw err;
  }
  throw new Error('expected a Fault');
}

t.test('a policy document round-trips through protobuf bytes unchanged', async (t) => {
  const policies = parsePolicies({ policies: [
    { id: 'auth', name: 'keys', enabled: true, match: [{ path: { path: { prefix: '/api' } } }, { header: { name: 'X-Skip', present: true }, negate: true }],
      keyauth: { keyspaces: ['ks_1'], locations: [{ bearer: {} }, { header: { name: 'X-Key', strip_prefix: 'Key ' } }], ratelimits: [{ name: 'r', limit: '5', duration: 60000 }], credits: 2 } },
    { id: 'rl', name: 'rl', enabled: true, type: 'dashboard-extra', ratelimit: { limit: 10, window_ms: '1000', identifiers: [{ remoteIp: {} }, { principalField: { path: 'source.key.meta.org' } }] } },
    { id: 'fw', name: 'fw', firewall: { action: 'ACTION_DENY' } },
    { id: 'oa', name: 'oa', enabled: true, openapi: { spec: { openapi: '3.0.0', paths: {} } } },
    { id: 'jwt', name: 'jwt', enabled: true, jwtauth: { jwksUri: 'http://127.0.0.1/jwks', audiences: ['x'], clockSkewMs: 1000 } },
    { id: 'log', name: 'log', enabled: true, logging: { requestHeaders: true } },
  ] });
  t.equal(policies.length, 6);
  t.equal(policies[2]!.enabled, false, 'an absent enabled counts as disabled');
  t.equal(policies[0]!.keyauth!.locations[1]!.header!.name, 'x-key', 'snake_case accepted, header names lower-cased');
  t.equal(policies[1]!.ratelimit!.windowMs, 1000, 'int64 as a string accepted');
  const codec = new PolicyCodec();
  const bytes = codec.encode(policies);
  t.same(codec.decode(bytes), policies);
  t.same(parsePolicies('{}'), []);
  t.same(parsePolicies(''), []);
  t.same(parsePolicies(null), []);
});

t.test('bad policy documents are rejected with the path of every offending field', async (t) => {
  const fault = faultOf(() => parsePolicies({ policies: [
    { id: 'ok', firewall: {} },
    { id: 'two', firewall: {}, keyauth: { keyspaces: ['k'] } },
    { id: 'rl', ratelimit: { limit: 0, windowMs: 5, identifiers: [{ header: {} }] } },
    { id: 'ka', keyauth: { keyspaces: [] } },
    { id: 'ok', logging: { query: 'yes' } },
  ] }));
  t.equal(fault.code, 'err:frontline:config:invalid_configuration');
  t.equal(fault.status, 422);
  const locations = fault.errors!.map((error) => error.location);
  t.same(locations, [
    'policies[1]',
    'policies[2].ratelimit.limit',
    'policies[2].ratelimit.windowMs',
    'policies[2].ratelimit.identifiers[0].header.name',
    'policies[3].keyauth.keyspaces',
    'policies[4].logging.query',
    'policies[4].id',
  ]);
  t.match(fault.publicMessage, /policies\[1\]: exactly one configuration is allowed/);
  t.equal(faultOf(() => parsePolicies('{nope')).errors![0]!.location, 'policies');
});

t.test('catastrophic regexes are rejected when saved', async (t) => {
  for (const pattern of ['(a+)+$', '(a*)*b', '(a|aa)*c', '(.*a){20}', '^(\\w+\\s?)*$', '(x+x+)+y', '(a)\\1', '(?=a)a', '(?<!a)b', '(?<name>a)\\k<name>']) {
    t.ok(vetRegex(pattern), `rejects ${pattern}`);
    const fault = faultOf(() => parsePolicies([{ id: 'p', firewall: {}, match: [{ path: { path: { regex: pattern } } }] }]));
    t.equal(fault.errors![0]!.location, 'policies[0].match[0].path.path.regex');
  }
  for (const pattern of ['^/api/v[0-9]+/users', '(\\d+)?x', '^/(foo|bar)/', '[a-z]+\\.json$', '(?:ab)+c']) {
    t.equal(vetRegex(pattern), undefined, `accepts ${pattern}`);
  }
});

t.test('accepted regexes run on the linear-time engine, or on bounded input when case-insensitive', async (t) => {
  const linear = new SafeRegex('^(a|b)?[a-z]*$', false);
  t.equal(linear.linear, true);
  t.equal(linear.test('a'.repeat(100_000) + '!'), false, 'a long hostile input completes and does not match');
  const folded = new SafeRegex('^/ADMIN', true, 16);
  t.equal(folded.linear, false);
  t.equal(folded.test('/admin/x'), true);
  t.equal(folded.test('/x'.repeat(100) + '/admin'), false, 'input beyond the bound is cut');
});

t.test('paths are normalised before matching, so a firewall prefix cannot be bypassed', async (t) => {
  const admin = compileMatch(parsePolicies([{ id: 'p', firewall: {}, match: [{ path: { path: { prefix: '/admin' } } }] }])[0]!.match);
  for (const url of ['/admin', '/%61dmin', '//admin', '/x/../admin', '/./admin/', '/admin?x=1']) t.equal(admin(view(url)), true, url);
  t.equal(admin(view('/public')), false);
  t.equal(normalizePath('/a/%2e%2e/b'), '/b');
  t.equal(normalizePath('/%zz'), '/%zz', 'an undecodable escape is kept');
});

t.test('match semantics: AND, methods, header lines, query occurrences, presence, negation, ignoreCase', async (t) => {
  const compile = (match: unknown[]) => compileMatch(parsePolicies([{ id: 'p', firewall: {}, match }])[0]!.match);
  const both = compile([{ method: { methods: ['post', 'PUT'] } }, { path: { path: { exact: '/x' } } }]);
  t.equal(both(view('/x', {}, 'POST')), true);
  t.equal(both(view('/x', {}, 'GET')), false);
  t.equal(both(view('/y', {}, 'PUT')), false);
  const headerValue = compile([{ header: { name: 'X-Tenant', value: { exact: 'b' } } }]);
  t.equal(headerValue(view('/', { 'x-tenant': 'a, b' }, 'GET', { 'x-tenant': ['a', 'b'] })), true, 'per header line');
  t.equal(headerValue(view('/', { 'x-tenant': 'a, b' })), false, 'a comma-joined value is not split');
  t.equal(compile([{ header: { name: 'x-a' } }])(view('/', {})), false, 'no condition means present');
  t.equal(compile([{ header: { name: 'x-a', present: false } }])(view('/', {})), true);
  const query = compile([{ queryParam: { name: 'Mode', value: { prefix: 'de', ignoreCase: true } } }]);
  t.equal(query(view('/?Mode=x&Mode=DEBUG')), true, 'any occurrence');
  t.equal(query(view('/?mode=debug')), false, 'query names are case-sensitive');
  t.equal(compile([{ path: { path: { prefix: '/internal' } }, negate: true }])(view('/internal/a')), false);
  t.equal(compile([{ path: { path: { regex: 'v[0-9]+' } } }])(view('/api/v2/x')), true, 'regexes are unanchored');
  t.equal(compile([])(view('/')), true);
});
