/**
 * keys.updateKey / deleteKey / updateCredits / grants / rerollKey / migrateKeys through the full
 * middleware stack on SQLite: 200, 400, 401, masked 404, 403 and 404 paths.
 */
import t from 'tap';
import { insertKeyMigration } from '../../../../core/db/queries/key-migrations.ts';
import { getKeyById } from '../../../../core/db/queries/keys.ts';
import { listAuditLogs } from '../../../../core/db/queries/audit-logs.ts';
import { sha256Hex } from '../../../../core/keys/key-migration.ts';
import { startApiHarness } from '../../../helpers/api-harness.ts';

const h = (await startApiHarness(t))!;
const admin = await h.createAdminRootKey();
const { apiId } = await h.seedApi();
const verifier = await h.createRootKey(['api.*.verify_key']);
const verify = (key: string, extra: Record<string, unknown> = {}) => h.call('keys.verifyKey', { key, ...extra }, verifier).then((res) => res.body.data);

t.test('updateKey: omitted keeps, value replaces, null clears; cache is invalidated', async (t) => {
  const { key, keyId } = await h.seedKey({ apiId, name: 'before', meta: { a: 1 }, remaining: 5 });
  t.equal((await verify(key)).name, 'before', 'cached with the old name');
  const res = await h.call('keys.updateKey', { keyId, name: null, meta: { b: 2 }, externalId: 'user_1', ratelimits: [{ name: 'rps', limit: 10, duration: 1000, autoApply: true }] }, admin);
  t.equal(res.status, 200, res.text);
  t.same(res.body.data, {});
  const after = await verify(key);
  t.equal(after.name, undefined, 'name cleared and no stale cache');
  t.same(after.meta, { b: 2 });
  t.equal(after.identity.externalId, 'user_1');
  t.equal(after.credits, 3, 'credits untouched by the update (two verifications spent two)');
  const first = (await getKeyById(h.db, keyId))!;
  t.equal(first.remainingRequests !== undefined, true);
  const rl = await h.db.query<{ id: string }>('SELECT `id` FROM `ratelimits` WHERE `key_id` = ?', [keyId]);
  await h.call('keys.updateKey', { keyId, ratelimits: [{ name: 'rps', limit: 20, duration: 1000 }, { name: 'daily', limit: 100, duration: 86_400_000 }] }, admin);
  const rl2 = await h.db.query<{ id: string; name: string; limit: number }>('SELECT `id`, `name`, `limit` FROM `ratelimits` WHERE `key_id` = ? ORDER BY `name`', [keyId]);
  t.equal(rl2.length, 2);
  t.equal(rl2.find((row) => row.name === 'rps')!.id, rl[0]!.id, 'a kept name keeps its id');
  const credits = await h.call('keys.updateKey', { keyId, credits: null }, admin);
  t.equal(credits.status, 200);
  t.equal((await verify(key)).credits, undefined, 'credits null = unlimited');
  t.ok((await listAuditLogs(h.db, { workspaceId: h.workspaceId, event: 'key.update' })).length >= 3);
});

t.test('updateKey: 400 paths, 401, masked 404', async (t) => {
  const { keyId } = await h.seedKey({ apiId });
  t.equal((await h.call('keys.updateKey', { keyId, bogus: 1 }, admin)).status, 400, 'closed schema');
  t.equal((await h.call('keys.updateKey', { keyId, credits: { refill: { interval: 'monthly', amount: 5 } } }, admin)).status, 400, 'refill on an unlimited key');
  t.equal((await h.call('keys.updateKey', { keyId, credits: { remaining: 5, refill: { interval: 'monthly', amount: 5 } } }, admin)).status, 400, 'monthly without refillDay');
  t.equal((await h.call('keys.updateKey', { keyId }, 'bogus')).status, 401);
  const reader = await h.createRootKey(['api.*.read_key']);
  const masked = await h.call('keys.updateKey', { keyId, name: 'x' }, reader);
  const missing = await h.call('keys.updateKey', { keyId: 'key_missing', name: 'x' }, admin);
  t.equal(masked.status, 404);
  t.same(masked.body.error, missing.body.error, 'no permission looks exactly like not found');
  t.equal((await h.call('keys.updateKey', { keyId, roles: ['nope'] }, admin)).status, 404, 'unknown role');
});

t.test('deleteKey: soft then verify NOT_FOUND; permanent removes the row', async (t) => {
  const soft = await h.seedKey({ apiId });
  t.equal((await verify(soft.key)).code, 'VALID');
  t.equal((await h.call('keys.deleteKey', { keyId: soft.keyId }, admin)).status, 200);
  t.equal((await verify(soft.key)).code, 'NOT_FOUND', 'revoked at once, cache invalidated');
  t.equal((await h.call('keys.deleteKey', { keyId: soft.keyId }, admin)).status, 404, 'already deleted');
  const hard = await h.seedKey({ apiId });
  t.equal((await h.call('keys.deleteKey', { keyId: hard.keyId, permanent: true }, admin)).status, 200);
  t.equal(await getKeyById(h.db, hard.keyId, { includeDeleted: true }), undefined);
  const noRight = await h.createRootKey(['api.*.update_key']);
  t.equal((await h.call('keys.deleteKey', { keyId: (await h.seedKey({ apiId })).keyId }, noRight)).status, 404);
});

t.test('updateCredits: set/increment/decrement, floor at 0, 400 on unlimited, set null clears refill', async (t) => {
  const { key, keyId } = await h.seedKey({ apiId, remaining: 3, refillAmount: 10 });
  t.equal((await verify(key)).credits, 2);
  let res = await h.call('keys.updateCredits', { keyId, operation: 'increment', value: 5 }, admin);
  t.same(res.body.data, { remaining: 7, refill: { interval: 'daily', amount: 10 } }, 'spent credit landed before the increment');
  res = await h.call('keys.updateCredits', { keyId, operation: 'decrement', value: 100 }, admin);
  t.equal(res.body.data.remaining, 0, 'floors at 0');
  t.equal((await verify(key)).code, 'USAGE_EXCEEDED', 'counter reloaded');
  res = await h.call('keys.updateCredits', { keyId, operation: 'set', value: 2 }, admin);
  t.equal(res.body.data.remaining, 2);
  t.equal((await verify(key)).credits, 1);
  t.equal((await h.call('keys.updateCredits', { keyId, operation: 'increment' }, admin)).status, 400, 'value required');
  res = await h.call('keys.updateCredits', { keyId, operation: 'set', value: null }, admin);
  t.same(res.body.data, { remaining: null }, 'unlimited, refill cleared');
  t.equal((await h.call('keys.updateCredits', { keyId, operation: 'decrement', value: 1 }, admin)).status, 400, 'unlimited key');
  t.equal((await h.call('keys.updateCredits', { keyId, operation: 'double', value: 1 }, admin)).status, 400);
});

t.test('permissions and roles on keys: add/remove/set, auth table, auto-create rule', async (t) => {
  const { key, keyId } = await h.seedKey({ apiId });
  let res = await h.call('keys.addPermissions', { keyId, permissions: ['docs.read', 'docs.write'] }, admin);
  t.equal(res.status, 200, res.text);
  t.same(res.body.data.map((p: { slug: string }) => p.slug), ['docs.read', 'docs.write']);
  t.equal((await verify(key, { permissions: 'docs.write' })).valid, true, 'cache invalidated');
  res = await h.call('keys.removePermissions', { keyId, permissions: ['docs.write'] }, admin);
  t.same(res.body.data.map((p: { slug: string }) => p.slug), ['docs.read']);
  t.equal((await verify(key, { permissions: 'docs.write' })).code, 'INSUFFICIENT_PERMISSIONS');
  res = await h.call('keys.setPermissions', { keyId, permissions: [] }, admin);
  t.same(res.body.data, []);

  const limited = await h.createRootKey(['api.*.update_key', 'rbac.*.add_permission_to_key']);
  t.equal((await h.call('keys.addPermissions', { keyId, permissions: ['docs.read'] }, limited)).status, 200, 'existing slug needs no create right');
  const create = await h.call('keys.addPermissions', { keyId, permissions: ['brand.new'] }, limited);
  t.equal(create.status, 403, 'creating a slug needs rbac.*.create_permission');
  t.equal((await h.call('keys.removePermissions', { keyId, permissions: ['docs.read'] }, limited)).status, 403, 'remove needs its own right');
  t.equal((await h.call('keys.addPermissions', { keyId, permissions: ['docs.read'] }, await h.createRootKey(['rbac.*.add_permission_to_key']))).status, 404, 'masked without update_key');

  t.equal((await h.call('permissions.createRole', { name: 'editor', permissions: ['docs.edit'] }, admin)).status, 200);
  res = await h.call('keys.addRoles', { keyId, roles: ['editor'] }, admin);
  t.equal(res.status, 200, res.text);
  t.match(res.body.data, [{ name: 'editor', permissions: [{ slug: 'docs.edit' }] }]);
  t.equal((await verify(key, { permissions: 'docs.edit' })).valid, true);
  t.equal((await h.call('keys.addRoles', { keyId, roles: ['ghost'] }, admin)).status, 404);
  res = await h.call('keys.setRoles', { keyId, roles: [] }, admin);
  t.same(res.body.data, []);
  t.equal((await h.call('keys.removeRoles', { keyId, roles: [] }, admin)).status, 400, 'remove needs at least one');
});

t.test('rerollKey: the new key keeps everything; the old one expires after the grace period', async (t) => {
  const { key, keyId } = await h.seedKey({ apiId, prefix: 'sk', name: 'svc', meta: { tier: 'gold' }, remaining: 50, permissions: ['a.b'], externalId: 'reroll_user', ratelimits: [{ name: 'rps', limit: 5, durationMs: 1000, autoApply: false }] });
  const res = await h.call('keys.rerollKey', { keyId, expiration: 60_000 }, admin);
  t.equal(res.status, 200, res.text);
  t.match(res.body.data.key, /^sk_/);
  const fresh = await verify(res.body.data.key, { permissions: 'a.b', ratelimits: [{ name: 'rps' }] });
  t.match(fresh, { valid: true, name: 'svc', meta: { tier: 'gold' }, credits: 49, identity: { externalId: 'reroll_user' } });
  t.equal((await verify(key)).valid, true, 'old key still works during the grace period');
  h.clock.advance(60_001);
  t.equal((await verify(key)).code, 'EXPIRED');
  t.equal((await h.call('keys.rerollKey', { keyId: 'key_nope', expiration: 0 }, admin)).status, 404);
  t.equal((await h.call('keys.rerollKey', { keyId }, admin)).status, 400);
});

t.test('migrateKeys: imports foreign sha256 hashes, re-hashed on first verify with the migration id', async (t) => {
  await insertKeyMigration(h.db, { id: 'mig_test', workspaceId: h.workspaceId, algorithm: 'sha256', createdAtMs: h.clock.nowMs() });
  const raw = 'legacy_abcdefghijklmnop';
  const res = await h.call('keys.migrateKeys', { migrationId: 'mig_test', apiId, keys: [{ hash: sha256Hex(raw), name: 'legacy', credits: { remaining: 10 } }, { hash: 'not-a-sha' }] }, admin);
  t.equal(res.status, 200, res.text);
  t.equal(res.body.data.migrated.length, 1);
  t.same(res.body.data.failed, ['not-a-sha']);
  t.equal((await verify(raw)).code, 'NOT_FOUND', 'without the migration id');
  t.match(await verify(raw, { migrationId: 'mig_test' }), { valid: true, name: 'legacy', credits: 9 });
  t.match(await verify(raw), { valid: true }, 'stored under our hash afterwards');
  const again = await h.call('keys.migrateKeys', { migrationId: 'mig_test', apiId, keys: [{ hash: sha256Hex('legacy_other') }, { hash: sha256Hex('legacy_other') }] }, admin);
  t.equal(again.body.data.failed.length, 1, 'duplicate hash fails');
  t.equal((await h.call('keys.migrateKeys', { migrationId: 'mig_nope', apiId, keys: [{ hash: sha256Hex('x') }] }, admin)).status, 404);
  t.equal((await h.call('keys.migrateKeys', { migrationId: 'mig_test', apiId, keys: [] }, admin)).status, 400);
});
