import t from 'tap';
import { listKeyVerifications } from '../../../../core/db/queries/key-verifications.ts';
import { insertKeyMigration } from '../../../../core/db/queries/key-migrations.ts';
import { getKeyById, insertKey, updateKey } from '../../../../core/db/queries/keys.ts';
import { insertRatelimits } from '../../../../core/db/queries/ratelimits.ts';
import { setWorkspaceEnabled } from '../../../../core/db/queries/workspaces.ts';
import { newId } from '../../../../core/id.ts';
import { hashKey } from '../../../../core/keys/key-hash.ts';
import { sha256Hex } from '../../../../core/keys/key-migration.ts';
import { KEY_CACHE_NAME } from '../../../../core/verification/key-verifier.ts';
import { startApiHarness } from '../../../helpers/api-harness.ts';

const VARIANTS = [
  { label: 'SQLite, in-process counters', options: {} },
  { label: 'MariaDB, Redis counters', options: { engine: 'mysql', redis: true } },
] as const;

for (const variant of VARIANTS) t.test(`keys.verifyKey (${variant.label})`, async (t) => {
  const h = await startApiHarness(t, variant.options);
  if (h === undefined) {
    t.plan(0, 'MariaDB or Redis not reachable; CI=true makes this a failure');
    return;
  }
  const { apiId, keySpaceId } = await h.seedApi();
  const rootKey = await h.createRootKey(['api.*.verify_key']);
  const verify = (body: Record<string, unknown>, key = rootKey, headers?: Record<string, string>) => h.call('keys.verifyKey', body, key, headers);

  t.test('VALID with the key\'s details; empty optionals are omitted', async (t) => {
    const { key, keyId } = await h.seedKey({ apiId, name: 'alice', meta: { plan: 'pro' } });
    const res = await verify({ key });
    t.equal(res.status, 200, res.text);
    t.same(res.body.data, { valid: true, code: 'VALID', keyId, name: 'alice', meta: { plan: 'pro' }, enabled: true });
  });

  t.test('NOT_FOUND carries nothing but valid and code', async (t) => {
    const res = await verify({ key: 'sk_doesnotexist' });
    t.equal(res.status, 200);
    t.same(res.body.data, { valid: false, code: 'NOT_FOUND' });
  });

  t.test('a key of another workspace is NOT_FOUND and leaves no analytics event', async (t) => {
    const otherWorkspace = await h.createWorkspace();
    const other = await h.seedApi({ workspaceId: otherWorkspace });
    const { key, keyId } = await h.seedKey({ apiId: other.apiId, workspaceId: otherWorkspace });
    t.same((await verify({ key })).body.data, { valid: false, code: 'NOT_FOUND' });
    await h.deps.analytics.flush();
    t.same(await listKeyVerifications(h.db, { workspaceId: otherWorkspace, keyId }), []);
  });

  t.test('a root key scoped to another API gets NOT_FOUND; its own API tuple or a URN grant verifies', async (t) => {
    const { key } = await h.seedKey({ apiId });
    const otherApiRoot = await h.createRootKey(['api.api_other.verify_key']);
    t.same((await verify({ key }, otherApiRoot)).body.data, { valid: false, code: 'NOT_FOUND' });
    const ownApiRoot = await h.createRootKey([`api.${apiId}.verify_key`]);
    t.equal((await verify({ key }, ownApiRoot)).body.data.code, 'VALID');
    const urnRoot = await h.createRootKey([`unkey:v1:${h.workspaceId}:keyspaces/${keySpaceId}/keys/*#verify_key`]);
    t.equal((await verify({ key }, urnRoot)).body.data.code, 'VALID');
  });

  t.test('DISABLED and EXPIRED still carry details', async (t) => {
    const disabled = await h.seedKey({ apiId, enabled: false });
    t.match((await verify({ key: disabled.key })).body.data, { valid: false, code: 'DISABLED', keyId: disabled.keyId, enabled: false });
    const expiresAtMs = h.clock.nowMs() + 60_000;
    const expiring = await h.seedKey({ apiId, expiresAtMs });
    t.match((await verify({ key: expiring.key })).body.data, { valid: true, expires: expiresAtMs });
    h.clock.advance(60_000);
    t.match((await verify({ key: expiring.key })).body.data, { valid: false, code: 'EXPIRED', keyId: expiring.keyId });
  });

  t.test('rejects a revoked key once the invalidation is published, even though it is cached', async (t) => {
    const { key, keyId } = await h.seedKey({ apiId });
    t.equal((await verify({ key })).body.data.code, 'VALID');
    await updateKey(h.db, keyId, { enabled: false }, h.clock.nowMs());
    t.equal((await verify({ key })).body.data.code, 'VALID', 'served from the cache until invalidated');
    await h.deps.invalidation.publish({ cache: KEY_CACHE_NAME, keys: [hashKey(key)] });
    t.equal((await verify({ key })).body.data.code, 'DISABLED');
  });

  t.test('a disabled workspace answers FORBIDDEN', async (t) => {
    const workspaceId = await h.createWorkspace();
    const api = await h.seedApi({ workspaceId });
    const { key } = await h.seedKey({ apiId: api.apiId, workspaceId });
    const root = await h.createRootKey(['api.*.verify_key'], { workspaceId });
    t.equal((await verify({ key }, root)).body.data.code, 'VALID');
    await setWorkspaceEnabled(h.db, workspaceId, false, h.clock.nowMs());
    h.deps.keyVerifier.invalidate(hashKey(key));
    t.equal((await verify({ key }, root)).body.data.code, 'FORBIDDEN');
  });

  t.test('IP allow-list: FORBIDDEN from an unlisted address, VALID from a listed one', async (t) => {
    const listed = await h.seedApi({ ipWhitelist: '10.1.1.1, 127.0.0.1' });
    const unlisted = await h.seedApi({ ipWhitelist: '10.1.1.1' });
    const good = await h.seedKey({ apiId: listed.apiId });
    const bad = await h.seedKey({ apiId: unlisted.apiId });
    t.equal((await verify({ key: good.key })).body.data.code, 'VALID');
    t.equal((await verify({ key: bad.key })).body.data.code, 'FORBIDDEN');
    // X-Forwarded-For is not trusted unless configured: a client cannot claim a listed address.
    t.equal((await verify({ key: bad.key }, rootKey, { 'x-forwarded-for': '10.1.1.1' })).body.data.code, 'FORBIDDEN');
  });

  t.test('permission queries: exact matching, AND/OR, no wildcard expansion, syntax errors are 400', async (t) => {
    const { key } = await h.seedKey({ apiId, permissions: ['documents.read', 'documents.*', 'billing:admin'] });
    t.match((await verify({ key, permissions: 'documents.read' })).body.data, { code: 'VALID', permissions: ['billing:admin', 'documents.*', 'documents.read'] });
    t.equal((await verify({ key, permissions: 'documents.write' })).body.data.code, 'INSUFFICIENT_PERMISSIONS');
    t.equal((await verify({ key, permissions: 'documents.write OR billing:admin' })).body.data.code, 'VALID');
    t.equal((await verify({ key, permissions: 'documents.read AND (documents.write or billing:admin)' })).body.data.code, 'VALID');
    t.equal((await verify({ key, permissions: 'documents.read AND documents.write' })).body.data.code, 'INSUFFICIENT_PERMISSIONS');
    const wildcard = await h.seedKey({ apiId, permissions: ['documents.*'] });
    t.equal((await verify({ key: wildcard.key, permissions: 'documents.read' })).body.data.code, 'INSUFFICIENT_PERMISSIONS', 'documents.* is a literal');
    const syntax = await verify({ key, permissions: 'documents.read AND' });
    t.equal(syntax.status, 400);
    t.equal(syntax.body.error.type, 'https://unkey.com/docs/errors/user/bad_request/permissions_query_syntax_error');
    const unknownKeySyntax = await verify({ key: 'sk_unknown', permissions: '(' });
    t.equal(unknownKeySyntax.status, 400, 'a malformed query is 400 whatever the key');
  });

  t.test('auto-applied rate limit: counts down, reset is absolute, then RATE_LIMITED', async (t) => {
    const { key, keyId } = await h.seedKey({ apiId, ratelimits: [{ name: 'requests', limit: 2, durationMs: 60_000, autoApply: true }] });
    const first = (await verify({ key })).body.data;
    t.equal(first.code, 'VALID');
    t.equal(first.ratelimits.length, 1);
    t.match(first.ratelimits[0], { name: 'requests', limit: 2, duration: 60_000, remaining: 1, exceeded: false, autoApply: true });
    t.ok(first.ratelimits[0].reset > h.clock.nowMs() && first.ratelimits[0].reset <= h.clock.nowMs() + 60_000, 'reset is an absolute time in the window');
    t.equal((await verify({ key })).body.data.ratelimits[0].remaining, 0);
    const limited = (await verify({ key })).body.data;
    t.match(limited, { valid: false, code: 'RATE_LIMITED', keyId });
    t.equal(limited.ratelimits[0].exceeded, true);
    h.clock.advance(120_000);
    t.equal((await verify({ key })).body.data.code, 'VALID', 'a later window passes again');
  });

  t.test('requested limits: unknown name is 412, ad hoc needs both limit and duration, all-or-nothing', async (t) => {
    const { key } = await h.seedKey({ apiId, ratelimits: [{ name: 'heavy', limit: 1, durationMs: 60_000, autoApply: false }, { name: 'light', limit: 100, durationMs: 60_000, autoApply: false }] });
    const unknown = await verify({ key, ratelimits: [{ name: 'nope' }] });
    t.equal(unknown.status, 412);
    t.equal((await verify({ key, ratelimits: [{ name: 'nope', limit: 5 }] })).status, 412, 'limit alone is not ad hoc');
    const adHoc = (await verify({ key, ratelimits: [{ name: 'adhoc', limit: 5, duration: 1000 }] })).body.data;
    t.match(adHoc.ratelimits, [{ id: '', name: 'adhoc', limit: 5, remaining: 4, autoApply: false }]);
    t.equal((await verify({ key, ratelimits: [{ name: 'heavy' }, { name: 'light' }] })).body.data.code, 'VALID');
    const failed = (await verify({ key, ratelimits: [{ name: 'light' }, { name: 'heavy' }] })).body.data;
    t.equal(failed.code, 'RATE_LIMITED');
    t.match(failed.ratelimits, [{ name: 'light', exceeded: false }, { name: 'heavy', exceeded: true }]);
    const afterFailure = (await verify({ key, ratelimits: [{ name: 'light', cost: 0 }] })).body.data;
    t.equal(afterFailure.ratelimits[0].remaining, 99, 'the failed batch consumed nothing from light (only the first call did)');
  });

  t.test('identity limits are shared by every key of the identity', async (t) => {
    const first = await h.seedKey({ apiId, externalId: 'user_shared' });
    await insertRatelimits(h.db, [{ id: newId('rl'), workspaceId: h.workspaceId, identityId: first.identityId!, name: 'per_user', limit: 1, durationMs: 60_000, autoApply: true, createdAtMs: h.clock.nowMs() }]);
    const second = await h.seedKey({ apiId, externalId: 'user_shared' });
    const firstResult = (await verify({ key: first.key })).body.data;
    t.equal(firstResult.code, 'VALID');
    t.match(firstResult.identity, { id: first.identityId, externalId: 'user_shared', ratelimits: [{ name: 'per_user', limit: 1 }] });
    t.equal((await verify({ key: second.key })).body.data.code, 'RATE_LIMITED', 'the second key shares the identity counter');
  });

  t.test('credits: default cost 1, custom cost, exceeded, cost 0 at 0, never charged after a failed check', async (t) => {
    const { key, keyId } = await h.seedKey({ apiId, remaining: 3, permissions: ['a'] });
    t.match((await verify({ key })).body.data, { code: 'VALID', credits: 2 });
    t.match((await verify({ key, credits: { cost: 2 } })).body.data, { code: 'VALID', credits: 0 });
    t.match((await verify({ key })).body.data, { valid: false, code: 'USAGE_EXCEEDED', credits: 0 });
    t.match((await verify({ key, credits: { cost: 0 } })).body.data, { valid: true, code: 'VALID', credits: 0 });
    const second = await h.seedKey({ apiId, remaining: 1, permissions: ['a'], ratelimits: [{ name: 'once', limit: 1, durationMs: 60_000, autoApply: true }] });
    t.equal((await verify({ key: second.key, permissions: 'b' })).body.data.code, 'INSUFFICIENT_PERMISSIONS');
    t.equal((await verify({ key: second.key })).body.data.code, 'VALID', 'the permission failure charged neither the limit nor a credit');
    t.equal((await verify({ key: second.key, credits: { cost: 0 } })).body.data.code, 'RATE_LIMITED');
    await h.deps.usageLimiter.flush();
    t.equal((await getKeyById(h.db, keyId))?.remainingRequests, 0, 'consumed credits are written back');
    t.equal((await getKeyById(h.db, second.keyId))?.remainingRequests, 0);
  });

  t.test('events are recorded per verification with outcome, tags and spent credits; last_used_at moves forward', async (t) => {
    const { key, keyId } = await h.seedKey({ apiId, remaining: 10 });
    await verify({ key, tags: ['path=/v1'], credits: { cost: 3 } });
    h.clock.advance(1000);
    await verify({ key, permissions: 'missing' });
    await h.deps.analytics.flush();
    const events = await listKeyVerifications(h.db, { workspaceId: h.workspaceId, keyId });
    t.same(events.map((event) => [event.outcome, event.spentCredits]).sort(), [['INSUFFICIENT_PERMISSIONS', 0], ['VALID', 3]]);
    t.same(events.find((event) => event.outcome === 'VALID')?.tags, ['path=/v1']);
    t.equal((await getKeyById(h.db, keyId))?.lastUsedAtMs, h.clock.nowMs());
  });

  t.test('migration: a key imported with a foreign hash verifies once migrationId is given, then by our hash', async (t) => {
    const migrationId = newId('mig');
    await insertKeyMigration(h.db, { id: migrationId, workspaceId: h.workspaceId, algorithm: 'sha256', createdAtMs: h.clock.nowMs() });
    const rawKey = 'legacy_abcdefghijklmnop';
    const keyId = newId('key');
    await insertKey(h.db, { id: keyId, keySpaceId, workspaceId: h.workspaceId, hash: sha256Hex(rawKey), start: 'legacy_', pendingMigrationId: migrationId, createdAtMs: h.clock.nowMs() });
    t.equal((await verify({ key: rawKey })).body.data.code, 'NOT_FOUND', 'without migrationId the foreign hash is not looked up');
    t.match((await verify({ key: rawKey, migrationId })).body.data, { code: 'VALID', keyId });
    const stored = await getKeyById(h.db, keyId);
    t.equal(stored?.hash, hashKey(rawKey));
    t.equal(stored?.pendingMigrationId, undefined);
    t.match((await verify({ key: rawKey })).body.data, { code: 'VALID', keyId });
  });

  t.test('400 on a malformed body even with a bogus root key; 401 and 403 for root keys', async (t) => {
    t.equal((await verify({ key: '' }, 'bogus')).status, 400);
    t.equal((await verify({ key: 'x', extra: true }, 'bogus')).status, 400);
    t.equal((await verify({ key: 'x', ratelimits: [{ name: 'ab' }] }, 'bogus')).status, 400);
    t.equal((await verify({ key: 'x' }, 'bogus')).status, 401);
    const disabled = await h.createRootKey(['api.*.verify_key'], { enabled: false });
    t.equal((await verify({ key: 'x' }, disabled)).status, 403);
  });
});
