/** ratelimit.*: auto-create with permission (403 without), by name or id, overrides (exact first, wildcard), 410, multiLimit all-or-nothing. */
import t from 'tap';
import { softDeleteRatelimitNamespace, getRatelimitNamespaceByName } from '../../../../core/db/queries/ratelimit-namespaces.ts';
import { startApiHarness } from '../../../helpers/api-harness.ts';

const h = (await startApiHarness(t))!;
const admin = await h.createAdminRootKey();

t.test('limit: auto-create, counts, absolute reset, namespace by id keeps the counter', async (t) => {
  const noCreate = await h.createRootKey(['ratelimit.*.limit']);
  t.equal((await h.call('ratelimit.limit', { namespace: 'api', identifier: 'u1', limit: 2, duration: 60_000 }, noCreate)).status, 403, 'auto-create needs create_namespace');
  const first = await h.call('ratelimit.limit', { namespace: 'api', identifier: 'u1', limit: 2, duration: 60_000 }, admin);
  t.equal(first.status, 200, first.text);
  t.match(first.body.data, { success: true, limit: 2, remaining: 1 });
  t.ok(first.body.data.reset > h.clock.nowMs() && first.body.data.reset <= h.clock.nowMs() + 60_000, 'reset is an absolute time');
  const namespace = (await getRatelimitNamespaceByName(h.db, h.workspaceId, 'api'))!;
  t.match((await h.call('ratelimit.limit', { namespace: namespace.id, identifier: 'u1', limit: 2, duration: 60_000 }, noCreate)).body.data, { success: true, remaining: 0 });
  t.match((await h.call('ratelimit.limit', { namespace: 'api', identifier: 'u1', limit: 2, duration: 60_000 }, admin)).body.data, { success: false, remaining: 0 });
  t.equal((await h.call('ratelimit.limit', { namespace: 'api', identifier: 'u1', limit: 2, duration: 999 }, admin)).status, 400);
  t.equal((await h.call('ratelimit.limit', { namespace: 'api', identifier: 'u1', limit: 2, duration: 1000 }, 'bogus')).status, 401);
});

t.test('overrides: set/get/list/delete, exact beats wildcard, replaces limit and duration', async (t) => {
  await h.call('ratelimit.limit', { namespace: 'ovr', identifier: 'x', limit: 1, duration: 1000 }, admin);
  t.equal((await h.call('ratelimit.setOverride', { namespace: 'missing_ns', identifier: 'a', limit: 1, duration: 1000 }, admin)).status, 404, 'never auto-created');
  const wildcard = await h.call('ratelimit.setOverride', { namespace: 'ovr', identifier: 'premium_*', limit: 100, duration: 60_000 }, admin);
  t.equal(wildcard.status, 200, wildcard.text);
  const exact = await h.call('ratelimit.setOverride', { namespace: 'ovr', identifier: 'premium_vip', limit: 1000, duration: 60_000 }, admin);
  const again = await h.call('ratelimit.setOverride', { namespace: 'ovr', identifier: 'premium_vip', limit: 500, duration: 60_000 }, admin);
  t.equal(again.body.data.overrideId, exact.body.data.overrideId, 'upsert keeps the id');
  t.match((await h.call('ratelimit.limit', { namespace: 'ovr', identifier: 'premium_joe', limit: 1, duration: 1000 }, admin)).body.data, { limit: 100, remaining: 99, overrideId: wildcard.body.data.overrideId });
  t.match((await h.call('ratelimit.limit', { namespace: 'ovr', identifier: 'premium_vip', limit: 1, duration: 1000 }, admin)).body.data, { limit: 500, overrideId: exact.body.data.overrideId });
  t.same((await h.call('ratelimit.getOverride', { namespace: 'ovr', identifier: 'premium_vip' }, admin)).body.data, { overrideId: exact.body.data.overrideId, identifier: 'premium_vip', limit: 500, duration: 60_000 });
  t.equal((await h.call('ratelimit.getOverride', { namespace: 'ovr', identifier: 'premium_joe' }, admin)).status, 404, 'get is exact');
  const list = await h.call('ratelimit.listOverrides', { namespace: 'ovr', limit: 1 }, admin);
  t.equal(list.body.data.length, 1);
  t.equal(list.body.pagination.hasMore, true);
  t.equal((await h.call('ratelimit.deleteOverride', { namespace: 'ovr', identifier: 'premium_vip' }, admin)).status, 200);
  t.match((await h.call('ratelimit.limit', { namespace: 'ovr', identifier: 'premium_vip', limit: 1, duration: 1000 }, admin)).body.data, { limit: 100 }, 'falls back to the wildcard at once');
  const masked = await h.call('ratelimit.getOverride', { namespace: 'ovr', identifier: 'premium_*' }, await h.createRootKey(['ratelimit.*.limit']));
  t.equal(masked.status, 404);
});

t.test('a deleted namespace answers 410', async (t) => {
  await h.call('ratelimit.limit', { namespace: 'gone', identifier: 'x', limit: 1, duration: 1000 }, admin);
  const namespace = (await getRatelimitNamespaceByName(h.db, h.workspaceId, 'gone'))!;
  await softDeleteRatelimitNamespace(h.db, h.workspaceId, namespace.id, h.clock.nowMs());
  h.clock.advance(61_000); // past the namespace cache's fresh window
  h.clock.advance(86_400_001);
  t.equal((await h.call('ratelimit.limit', { namespace: 'gone', identifier: 'x', limit: 1, duration: 1000 }, admin)).status, 410);
  t.equal((await h.call('ratelimit.setOverride', { namespace: 'gone', identifier: 'x', limit: 1, duration: 1000 }, admin)).status, 410);
});

t.test('multiLimit is all-or-nothing', async (t) => {
  const ok = await h.call('ratelimit.multiLimit', [
    { namespace: 'm', identifier: 'a', limit: 5, duration: 60_000 },
    { namespace: 'm', identifier: 'b', limit: 1, duration: 60_000 },
  ], admin);
  t.equal(ok.status, 200, ok.text);
  t.equal(ok.body.data.passed, true);
  const fail = await h.call('ratelimit.multiLimit', [
    { namespace: 'm', identifier: 'a', limit: 5, duration: 60_000 },
    { namespace: 'm', identifier: 'b', limit: 1, duration: 60_000 },
  ], admin);
  t.equal(fail.body.data.passed, false);
  t.match(fail.body.data.limits, [{ namespace: 'm', identifier: 'a', passed: true, remaining: 4 }, { identifier: 'b', passed: false }], 'a refunded');
  t.equal((await h.call('ratelimit.multiLimit', [], admin)).status, 400);
});
