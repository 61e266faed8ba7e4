/**
 * Black-box conformance with the official SDK (`@unkey/api` 2.5.1) over a real socket: the SDK
 * parses every response with zod, so a missing required field, a `null` where it expects an
 * omitted field, or a malformed error envelope fails these tests. Flows of endpoints that are
 * not registered yet are skipped with a note.
 */
import { Unkey } from '@unkey/api';
import * as errors from '@unkey/api/models/errors';
import t from 'tap';
import { apiEndpoints } from '../../../control/api/routes/index.ts';
import { startApiHarness } from '../../helpers/api-harness.ts';

const served = new Set(apiEndpoints.map((endpoint) => endpoint.operationId));
const skipUnless = (...operations: string[]) => {
  const missing = operations.filter((operation) => !served.has(operation));
  return missing.length === 0 ? false : `not served yet: ${missing.join(', ')}`;
};

t.test('the official SDK drives keygate', async (t) => {
  const h = (await startApiHarness(t))!;
  const serverURL = await h.listen();
  const rootKey = await h.createAdminRootKey();
  const unkey = new Unkey({ rootKey, serverURL, retryConfig: { strategy: 'none' } });

  const created = await unkey.apis.createApi({ name: 'sdk-api' });
  const apiId = created.data.apiId;
  t.match(created.meta.requestId, /^req_/);

  t.test('apis.getApi', async (t) => {
    const res = await unkey.apis.getApi({ apiId });
    t.same(res.data, { id: apiId, name: 'sdk-api' });
  });

  t.test('keys: create with everything, verify, get, whoami', async (t) => {
    const key = await unkey.keys.createKey({
      apiId, prefix: 'sdk', name: 'full', externalId: 'sdk_user', meta: { plan: 'pro' },
      permissions: ['docs.read'], expires: h.clock.nowMs() + 3_600_000,
      credits: { remaining: 10, refill: { interval: 'daily', amount: 10 } },
      ratelimits: [{ name: 'requests', limit: 5, duration: 60_000, autoApply: true }],
    });
    t.match(key.data.key, /^sdk_/);
    const verified = await unkey.keys.verifyKey({ key: key.data.key, permissions: 'docs.read', tags: ['a=b'] });
    t.match(verified.data, {
      valid: true, code: 'VALID', keyId: key.data.keyId, name: 'full', credits: 9,
      identity: { externalId: 'sdk_user' }, permissions: ['docs.read'],
      ratelimits: [{ name: 'requests', remaining: 4, exceeded: false }],
    });
    // Spent credits reach the database by write-back; flushed here so getKey reads them.
    await h.deps.usageLimiter.flush();
    const got = await unkey.keys.getKey({ keyId: key.data.keyId });
    t.match(got.data, { keyId: key.data.keyId, name: 'full', credits: { remaining: 9, refill: { interval: 'daily', amount: 10 } } });
    const whoami = await unkey.keys.whoami({ key: key.data.key });
    t.equal(whoami.data.keyId, key.data.keyId);
  });

  t.test('keys.verifyKey: NOT_FOUND, INSUFFICIENT_PERMISSIONS, RATE_LIMITED, USAGE_EXCEEDED parse', async (t) => {
    t.same((await unkey.keys.verifyKey({ key: 'sdk_nothing' })).data, { valid: false, code: 'NOT_FOUND' });
    const key = await unkey.keys.createKey({ apiId, credits: { remaining: 1 }, ratelimits: [{ name: 'tight', limit: 1, duration: 60_000 }] });
    t.equal((await unkey.keys.verifyKey({ key: key.data.key, permissions: 'x' })).data.code, 'INSUFFICIENT_PERMISSIONS');
    t.equal((await unkey.keys.verifyKey({ key: key.data.key, ratelimits: [{ name: 'tight' }] })).data.code, 'VALID');
    const limited = await unkey.keys.verifyKey({ key: key.data.key, ratelimits: [{ name: 'tight' }] });
    t.equal(limited.data.code, 'RATE_LIMITED');
    t.ok(limited.data.ratelimits?.[0]?.exceeded);
    t.equal((await unkey.keys.verifyKey({ key: key.data.key })).data.code, 'USAGE_EXCEEDED');
  });

  t.test('errors arrive as the SDK\'s typed errors', async (t) => {
    await t.rejects(unkey.apis.getApi({ apiId: 'api_missing' }), errors.NotFoundErrorResponse);
    const bad = new Unkey({ rootKey: 'kg_root_bogus', serverURL, retryConfig: { strategy: 'none' } });
    await t.rejects(bad.apis.getApi({ apiId }), errors.UnauthorizedErrorResponse);
    const weak = new Unkey({ rootKey: await h.createRootKey(['api.*.read_api']), serverURL, retryConfig: { strategy: 'none' } });
    await t.rejects(weak.apis.createApi({ name: 'nope' }), errors.ForbiddenErrorResponse);
    await t.rejects(unkey.keys.createKey({ apiId, roles: ['ghost'] }), errors.NotFoundErrorResponse);
    await t.rejects(unkey.keys.verifyKey({ key: 'x', permissions: 'a AND' }), errors.BadRequestErrorResponse);
    const key = await unkey.keys.createKey({ apiId });
    // The SDK does not model a 412 for verifyKey: it surfaces as its generic APIError with the status.
    const precondition = await unkey.keys.verifyKey({ key: key.data.key, ratelimits: [{ name: 'unknown' }] }).then(() => undefined, (err: unknown) => err);
    t.ok(precondition instanceof errors.APIError, 'rejected with the SDK\'s APIError');
    t.equal((precondition as errors.APIError).statusCode, 412);
  });

  t.test('keys: update, credits, delete', { skip: skipUnless('keys.updateKey', 'keys.updateCredits', 'keys.deleteKey') }, async (t) => {
    const key = await unkey.keys.createKey({ apiId, credits: { remaining: 5 } });
    await unkey.keys.updateKey({ keyId: key.data.keyId, name: 'renamed', enabled: false });
    t.match((await unkey.keys.verifyKey({ key: key.data.key })).data, { code: 'DISABLED', name: 'renamed' });
    const credits = await unkey.keys.updateCredits({ keyId: key.data.keyId, operation: 'set', value: 50 });
    t.equal(credits.data.remaining, 50);
    await unkey.keys.deleteKey({ keyId: key.data.keyId });
    t.equal((await unkey.keys.verifyKey({ key: key.data.key })).data.code, 'NOT_FOUND');
  });

  t.test('apis.listKeys paginates', { skip: skipUnless('apis.listKeys') }, async (t) => {
    const listApi = (await unkey.apis.createApi({ name: 'list-api' })).data.apiId;
    for (let index = 0; index < 3; index++) await unkey.keys.createKey({ apiId: listApi });
    const first = (await unkey.apis.listKeys({ apiId: listApi, limit: 2 })).result;
    t.equal(first.data.length, 2);
    t.equal(first.pagination?.hasMore, true);
    const second = (await unkey.apis.listKeys({ apiId: listApi, limit: 2, cursor: first.pagination!.cursor! })).result;
    t.equal(second.data.length, 1);
    t.equal(second.pagination?.hasMore, false);
  });

  t.test('ratelimit.limit and overrides', { skip: skipUnless('ratelimit.limit', 'ratelimit.setOverride') }, async (t) => {
    const first = await unkey.ratelimit.limit({ namespace: 'sdk.ns', identifier: 'u1', limit: 1, duration: 60_000 });
    t.equal(first.data.success, true);
    t.equal((await unkey.ratelimit.limit({ namespace: 'sdk.ns', identifier: 'u1', limit: 1, duration: 60_000 })).data.success, false);
    const override = await unkey.ratelimit.setOverride({ namespace: 'sdk.ns', identifier: 'vip', limit: 100, duration: 60_000 });
    t.match(override.data.overrideId, /^rlor_/);
  });

  t.test('identities and permissions', { skip: skipUnless('identities.createIdentity', 'identities.getIdentity', 'permissions.createRole') }, async (t) => {
    const identity = await unkey.identities.createIdentity({ externalId: 'sdk_identity', meta: { a: 1 } });
    t.match(identity.data.identityId, /^id_/);
    const got = await unkey.identities.getIdentity({ identity: 'sdk_identity' });
    t.equal(got.data.externalId, 'sdk_identity');
    const role = await unkey.permissions.createRole({ name: 'sdk-role' });
    t.match(role.data.roleId, /^role_/);
  });
});
