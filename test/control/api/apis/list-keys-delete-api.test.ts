/** apis.listKeys (pagination, externalId, masked 404) and apis.deleteApi (412 protected, keys stop verifying). */
import t from 'tap';
import { updateApi } from '../../../../core/db/queries/apis.ts';
import { startApiHarness } from '../../../helpers/api-harness.ts';

const h = (await startApiHarness(t))!;
const admin = await h.createAdminRootKey();

t.test('listKeys paginates with a cursor and filters by externalId', async (t) => {
  const { apiId } = await h.seedApi();
  for (let index = 0; index < 5; index++) await h.seedKey({ apiId, externalId: index < 2 ? 'alice' : 'bob', remaining: index });
  const first = await h.call('apis.listKeys', { apiId, limit: 3 }, admin);
  t.equal(first.status, 200, first.text);
  t.equal(first.body.data.length, 3);
  t.equal(first.body.pagination.hasMore, true);
  const second = await h.call('apis.listKeys', { apiId, limit: 3, cursor: first.body.pagination.cursor }, admin);
  t.equal(second.body.data.length, 2);
  t.same(second.body.pagination, { hasMore: false });
  t.equal(second.body.data[0].keyId, first.body.pagination.cursor, 'the cursor is the first key of the next page');
  const alice = await h.call('apis.listKeys', { apiId, externalId: 'alice' }, admin);
  t.equal(alice.body.data.length, 2);
  t.match(alice.body.data[0], { identity: { externalId: 'alice' }, credits: { remaining: Number } });
  t.same((await h.call('apis.listKeys', { apiId, externalId: 'nobody' }, admin)).body.data, [], 'unknown externalId: empty page');
  const reader = await h.createRootKey(['api.*.read_key']);
  const masked = await h.call('apis.listKeys', { apiId }, reader);
  t.equal(masked.status, 404, 'read_key without read_api');
  t.same(masked.body.error, (await h.call('apis.listKeys', { apiId: 'api_missing' }, admin)).body.error);
  t.equal((await h.call('apis.listKeys', { apiId, decrypt: true }, admin)).status, 412, 'no vault');
  t.equal((await h.call('apis.listKeys', { apiId, limit: 101 }, admin)).status, 400);
});

t.test('deleteApi: 412 while protected, then keys stop verifying', async (t) => {
  const { apiId } = await h.seedApi();
  const { key } = await h.seedKey({ apiId });
  const verifier = await h.createRootKey(['api.*.verify_key']);
  t.equal((await h.call('keys.verifyKey', { key }, verifier)).body.data.valid, true);
  await updateApi(h.db, h.workspaceId, apiId, { deleteProtection: true }, h.clock.nowMs());
  t.equal((await h.call('apis.deleteApi', { apiId }, admin)).status, 412);
  await updateApi(h.db, h.workspaceId, apiId, { deleteProtection: false }, h.clock.nowMs());
  t.equal((await h.call('apis.deleteApi', { apiId }, await h.createRootKey(['api.*.read_api']))).status, 404, 'masked');
  t.equal((await h.call('apis.deleteApi', { apiId }, admin)).status, 200);
  t.equal((await h.call('keys.verifyKey', { key }, verifier)).body.data.code, 'NOT_FOUND');
  t.equal((await h.call('apis.deleteApi', { apiId }, admin)).status, 404);
});
