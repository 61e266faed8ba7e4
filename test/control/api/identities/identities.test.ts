/** identities.* : create (409), get by id or externalId (masked 404), list (pagination, search), update, delete. */
import t from 'tap';
import { startApiHarness } from '../../../helpers/api-harness.ts';

const h = (await startApiHarness(t))!;
const admin = await h.createAdminRootKey();

t.test('create, get, update, delete an identity', async (t) => {
  const created = await h.call('identities.createIdentity', { externalId: 'user_42', meta: { plan: 'pro' }, ratelimits: [{ name: 'rps', limit: 5, duration: 1000 }] }, admin);
  t.equal(created.status, 200, created.text);
  const identityId = created.body.data.identityId;
  t.equal((await h.call('identities.createIdentity', { externalId: 'user_42' }, admin)).status, 409);
  const byExternal = await h.call('identities.getIdentity', { identity: 'user_42' }, admin);
  t.match(byExternal.body.data, { id: identityId, externalId: 'user_42', meta: { plan: 'pro' }, ratelimits: [{ name: 'rps', limit: 5, duration: 1000, autoApply: false }] });
  t.same((await h.call('identities.getIdentity', { identity: identityId }, admin)).body.data, byExternal.body.data);
  const updated = await h.call('identities.updateIdentity', { identity: identityId, meta: null, ratelimits: [] }, admin);
  t.same(updated.body.data, { id: identityId, externalId: 'user_42' }, 'meta cleared, limits removed, empty optionals omitted');
  t.equal((await h.call('identities.deleteIdentity', { identity: 'user_42' }, admin)).status, 200);
  t.equal((await h.call('identities.getIdentity', { identity: identityId }, admin)).status, 404);
  t.equal((await h.call('identities.createIdentity', { externalId: 'user_42' }, admin)).status, 200, 'externalId free again');
});

t.test('auth: 400 before auth, 401, 403 on create, masked 404 on get', async (t) => {
  t.equal((await h.call('identities.createIdentity', { externalId: 'bad id!' }, 'bogus')).status, 400);
  t.equal((await h.call('identities.createIdentity', { externalId: 'ok' }, 'bogus')).status, 401);
  const reader = await h.createRootKey(['identity.*.read_identity']);
  t.equal((await h.call('identities.createIdentity', { externalId: 'nope' }, reader)).status, 403);
  await h.call('identities.createIdentity', { externalId: 'secret' }, admin);
  const none = await h.createRootKey(['api.*.read_api']);
  const masked = await h.call('identities.getIdentity', { identity: 'secret' }, none);
  const missing = await h.call('identities.getIdentity', { identity: 'ghost' }, admin);
  t.equal(masked.status, 404);
  t.same(masked.body.error, missing.body.error);
});

t.test('list paginates by id and searches externalId', async (t) => {
  const other = await h.createWorkspace();
  const key = await h.createAdminRootKey(other);
  for (let index = 0; index < 5; index++) await h.call('identities.createIdentity', { externalId: `cust_${index}` }, key);
  await h.call('identities.createIdentity', { externalId: 'zz_other' }, key);
  const first = await h.call('identities.listIdentities', { limit: 4 }, key);
  t.equal(first.body.data.length, 4);
  t.same(Object.keys(first.body.pagination).sort(), ['cursor', 'hasMore']);
  const second = await h.call('identities.listIdentities', { limit: 4, cursor: first.body.pagination.cursor }, key);
  t.equal(second.body.data.length, 2);
  t.same(second.body.pagination, { hasMore: false }, 'no cursor on the last page');
  const found = await h.call('identities.listIdentities', { search: 'cust_' }, key);
  t.equal(found.body.data.length, 5, '_ is literal in search');
});
