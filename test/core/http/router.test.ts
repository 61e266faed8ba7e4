import t from 'tap';
import { Fault } from '../../../core/fault.ts';
import { Router } from '../../../core/http/router.ts';

function buildRouter(): Router<string> {
  const router = new Router<string>();
  router.add('POST', '/v2/keys.verifyKey', 'verify');
  router.add('GET', '/v2/liveness', 'liveness');
  router.add('GET', '/v1/items/:id', 'getItem');
  router.add('DELETE', '/v1/items/:id', 'deleteItem');
  router.add('GET', '/v1/items/special', 'special');
  router.add('GET', '/v1/projects/:projectId/items/:itemId', 'projectItem');
  return router;
}

const cases: { method: string; path: string; kind: string; value?: string; params?: Record<string, string>; allow?: string }[] = [
  { method: 'POST', path: '/v2/keys.verifyKey', kind: 'found', value: 'verify', params: {} },
  { method: 'GET', path: '/v2/liveness', kind: 'found', value: 'liveness', params: {} },
  { method: 'HEAD', path: '/v2/liveness', kind: 'found', value: 'liveness', params: {} },
  { method: 'GET', path: '/v2/keys.verifyKey', kind: 'method_not_allowed', allow: 'POST' },
  { method: 'GET', path: '/v2/keys.verifykey', kind: 'not_found' },
  { method: 'GET', path: '/v2/liveness/', kind: 'not_found' },
  { method: 'GET', path: '/v1/items/itm_1', kind: 'found', value: 'getItem', params: { id: 'itm_1' } },
  { method: 'DELETE', path: '/v1/items/itm_1', kind: 'found', value: 'deleteItem', params: { id: 'itm_1' } },
  { method: 'GET', path: '/v1/items/a%2Fb%20c', kind: 'found', value: 'getItem', params: { id: 'a/b c' } },
  { method: 'GET', path: '/v1/items/%E0%A4%A', kind: 'found', value: 'getItem', params: { id: '%E0%A4%A' } },
  { method: 'GET', path: '/v1/items/special', kind: 'found', value: 'special', params: {} },
  { method: 'PUT', path: '/v1/items/itm_1', kind: 'method_not_allowed', allow: 'GET, DELETE, HEAD' },
  { method: 'GET', path: '/v1/items/', kind: 'not_found' },
  { method: 'GET', path: '/v1/items/a/b', kind: 'not_found' },
  { method: 'GET', path: '/v1/projects/prj_1/items/itm_2', kind: 'found', value: 'projectItem', params: { projectId: 'prj_1', itemId: 'itm_2' } },
  { method: 'GET', path: '/', kind: 'not_found' },
];

t.test('matches exact paths, parameters, 405 and 404 (table)', async (t) => {
  const router = buildRouter();
  for (const testCase of cases) {
    const match = router.find(testCase.method, testCase.path);
    const label = `${testCase.method} ${testCase.path}`;
    t.equal(match.kind, testCase.kind, label);
    if (match.kind === 'found') {
      t.equal(match.value, testCase.value, label);
      t.same(match.params, testCase.params, label);
    }
    if (match.kind === 'method_not_allowed') t.equal(match.allow, testCase.allow, label);
  }
});

t.test('an exact path lookup returns the same prebuilt result every time (no allocation)', async (t) => {
  const router = buildRouter();
  t.equal(router.find('POST', '/v2/keys.verifyKey'), router.find('POST', '/v2/keys.verifyKey'));
});

t.test('rejects duplicate routes and malformed patterns at registration', async (t) => {
  const router = buildRouter();
  const invalid = { code: 'err:keygate:http:invalid_registration' };
  t.throws(() => router.add('POST', '/v2/keys.verifyKey', 'again'), invalid);
  t.throws(() => router.add('GET', '/v1/items/:id', 'again'), invalid);
  t.throws(() => router.add('GET', 'no-slash', 'x'), invalid);
  t.throws(() => router.add('GET', '/a/:1bad', 'x'), invalid);
  t.throws(() => router.add('GET', '/a/:id/b/:id', 'x'), invalid);
  try {
    router.add('GET', '/v2/liveness', 'again');
  } catch (err) {
    t.ok(err instanceof Fault);
  }
});
