/**
 * The workspace throttle of protected routes (api.md §5.2): `limits.api_requests_count_max_per_minute`
 * NULL = no throttle, N = N requests per 60 s window with RateLimit-* headers on every response
 * (success and error), 429 `workspace_rate_limited` + Retry-After on denial, 0 = always 429, and
 * fail open when the limiter or the limits lookup fails.
 */
import t from 'tap';
import { setWorkspaceLimits } from '../../../core/db/queries/workspaces.ts';
import { Fault } from '../../../core/fault.ts';
import { WORKSPACE_LIMITS_CACHE_NAME } from '../../../control/api/workspace-throttle.ts';
import { startApiHarness, type ApiHarness } from '../../helpers/api-harness.ts';

async function setLimit(h: ApiHarness, workspaceId: string, perMinute: number | null): Promise<void> {
  await setWorkspaceLimits(h.db, { workspaceId, apiRequestsCountMaxPerMinute: perMinute, nowMs: h.clock.nowMs() });
  await h.deps.invalidation.publish({ cache: WORKSPACE_LIMITS_CACHE_NAME, keys: [workspaceId] });
}

const verifyBody = { key: 'sk_not_a_key' };

t.test('no limits row or NULL: no throttle and no RateLimit headers', async (t) => {
  const h = (await startApiHarness(t))!;
  const rootKey = await h.createRootKey(['api.*.verify_key']);
  for (let index = 0; index < 5; index++) {
    const res = await h.call('keys.verifyKey', verifyBody, rootKey);
    t.equal(res.status, 200);
    t.equal(res.headers['ratelimit-limit'], undefined);
  }
  await setLimit(h, h.workspaceId, null);
  const res = await h.call('keys.verifyKey', verifyBody, rootKey);
  t.equal(res.status, 200, 'NULL means no throttle');
  t.equal(res.headers['ratelimit-limit'], undefined);
});

t.test('N per minute: headers on every response, 429 with Retry-After past N, a new window allows again', async (t) => {
  const h = (await startApiHarness(t))!;
  const rootKey = await h.createRootKey(['api.*.verify_key', 'api.*.read_api']);
  await setLimit(h, h.workspaceId, 3);
  const remaining: string[] = [];
  for (let index = 0; index < 2; index++) {
    const res = await h.call('keys.verifyKey', verifyBody, rootKey);
    t.equal(res.status, 200);
    t.equal(res.headers['ratelimit-limit'], '3');
    remaining.push(res.headers['ratelimit-remaining']!);
    const resetSeconds = Number(res.headers['ratelimit-reset']);
    t.ok(resetSeconds >= 0 && resetSeconds <= 60, `RateLimit-Reset is in seconds (${resetSeconds})`);
  }
  const notFound = await h.call('apis.getApi', { apiId: 'api_missing' }, rootKey);
  t.equal(notFound.status, 404, 'an error reply of the handler');
  t.equal(notFound.headers['ratelimit-limit'], '3', 'still carries the throttle headers');
  remaining.push(notFound.headers['ratelimit-remaining']!);
  t.same(remaining, ['2', '1', '0']);

  const denied = await h.call('keys.verifyKey', verifyBody, rootKey);
  t.equal(denied.status, 429);
  t.equal(denied.body.error.type, 'https://unkey.com/docs/errors/user/too_many_requests/workspace_rate_limited');
  t.equal(denied.headers['ratelimit-remaining'], '0');
  t.ok(Number(denied.headers['retry-after']) >= 0 && Number(denied.headers['retry-after']) <= 60, 'Retry-After in seconds');
  t.equal(denied.headers['retry-after'], denied.headers['ratelimit-reset']);

  const otherWorkspace = await h.createWorkspace();
  const otherKey = await h.createRootKey(['api.*.verify_key'], { workspaceId: otherWorkspace });
  t.equal((await h.call('keys.verifyKey', verifyBody, otherKey)).status, 200, 'another workspace has its own budget');

  h.clock.advance(120_000);
  const later = await h.call('keys.verifyKey', verifyBody, rootKey);
  t.equal(later.status, 200, 'allowed again two windows later');
  t.equal(later.headers['ratelimit-remaining'], '2');
});

t.test('0 means every request is throttled; unauthenticated requests are not counted', async (t) => {
  const h = (await startApiHarness(t))!;
  const rootKey = await h.createRootKey(['api.*.verify_key']);
  await setLimit(h, h.workspaceId, 0);
  const res = await h.call('keys.verifyKey', verifyBody, rootKey);
  t.equal(res.status, 429);
  t.equal(res.headers['ratelimit-limit'], '0');
  t.ok(res.headers['retry-after'] !== undefined);
  const anonymous = await h.call('keys.verifyKey', verifyBody, 'sk_wrong_root_key');
  t.equal(anonymous.status, 401, 'authentication comes first');
  t.equal(anonymous.headers['ratelimit-limit'], undefined);
});

t.test('fails open when the limiter or the limits lookup fails', async (t) => {
  const h = (await startApiHarness(t))!;
  const rootKey = await h.createRootKey(['api.*.verify_key']);
  await setLimit(h, h.workspaceId, 1);
  t.equal((await h.call('keys.verifyKey', verifyBody, rootKey)).status, 200);
  t.equal((await h.call('keys.verifyKey', verifyBody, rootKey)).status, 429, 'the budget is spent');
  const limiter = h.deps.rateLimiter;
  const original = limiter.limit;
  limiter.limit = async () => {
    throw new Fault('err:unkey:application:service_unavailable', { internalMessage: 'counter store down' });
  };
  const res = await h.call('keys.verifyKey', verifyBody, rootKey);
  t.equal(res.status, 200, 'a failing limiter lets the request through');
  t.equal(res.headers['ratelimit-limit'], undefined, 'without claiming a count');
  limiter.limit = original;

  await h.db.execute('DROP TABLE `limits`');
  await h.deps.invalidation.publish({ cache: WORKSPACE_LIMITS_CACHE_NAME, keys: [h.workspaceId] });
  t.equal((await h.call('keys.verifyKey', verifyBody, rootKey)).status, 200, 'a failing limits lookup lets the request through');
});
