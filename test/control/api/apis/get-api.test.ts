import t from 'tap';
import { startApiHarness } from '../../../helpers/api-harness.ts';

t.test('apis.getApi', async (t) => {
  const h = (await startApiHarness(t))!;
  const { apiId } = await h.seedApi({ name: 'orders' });

  t.test('200: returns id and name with api.*.read_api', async (t) => {
    const rootKey = await h.createRootKey(['api.*.read_api']);
    const res = await h.call('apis.getApi', { apiId }, rootKey);
    t.equal(res.status, 200, res.text);
    t.same(res.body.data, { id: apiId, name: 'orders' });
  });

  t.test('200: with the API-specific tuple', async (t) => {
    const rootKey = await h.createRootKey([`api.${apiId}.read_api`]);
    t.equal((await h.call('apis.getApi', { apiId }, rootKey)).status, 200);
  });

  t.test('400: bad apiId', async (t) => {
    const rootKey = await h.createRootKey(['api.*.read_api']);
    t.equal((await h.call('apis.getApi', { apiId: 'a' }, rootKey)).status, 400);
    t.equal((await h.call('apis.getApi', { apiId: 'api with spaces' }, rootKey)).status, 400);
  });

  t.test('401: unknown root key', async (t) => {
    t.equal((await h.call('apis.getApi', { apiId }, 'kg_root_nope')).status, 401);
  });

  t.test('404 hides existence: a root key without read_api gets the exact 404 of a missing API', async (t) => {
    const rootKey = await h.createRootKey([`api.api_other.read_api`]);
    const masked = await h.call('apis.getApi', { apiId }, rootKey);
    const missing = await h.call('apis.getApi', { apiId: 'api_doesnotexist' }, await h.createRootKey(['api.*.read_api']));
    t.equal(masked.status, 404);
    t.equal(missing.status, 404);
    t.same(masked.body.error, missing.body.error, 'same title, detail, status and type');
  });

  t.test('404: an API of another workspace is not found', async (t) => {
    const otherWorkspace = await h.createWorkspace();
    const other = await h.seedApi({ workspaceId: otherWorkspace });
    const rootKey = await h.createRootKey(['api.*.read_api']);
    const res = await h.call('apis.getApi', { apiId: other.apiId }, rootKey);
    t.equal(res.status, 404);
    t.equal(res.body.error.type, 'https://unkey.com/docs/errors/unkey/data/api_not_found');
  });
});
