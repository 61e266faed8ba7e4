import t from 'tap';
import { createInProcessVault } from '../../../../vault/in-process-vault.ts';
import { startApiHarness } from '../../../helpers/api-harness.ts';

t.test('keys.getKey and keys.whoami', async (t) => {
  const vault = createInProcessVault();
  t.teardown(() => vault.close());
  const h = (await startApiHarness(t, { vault }))!;
  const { apiId, keySpaceId } = await h.seedApi({ storeEncryptedKeys: true });
  const admin = await h.createAdminRootKey();
  const reader = await h.createRootKey(['api.*.read_key']);
  const created = await h.call('keys.createKey', {
    apiId, name: 'svc', meta: { team: 'a' }, externalId: 'owner_1', permissions: ['p.read'],
    credits: { remaining: 5, refill: { interval: 'daily', amount: 5 } },
    ratelimits: [{ name: 'rlx', limit: 3, duration: 1000 }], recoverable: true,
  }, admin);
  t.equal(created.status, 200, created.text);
  const { keyId, key } = created.body.data;

  t.test('200: KeyResponseData with optionals omitted rather than null', async (t) => {
    const res = await h.call('keys.getKey', { keyId }, reader);
    t.equal(res.status, 200, res.text);
    t.match(res.body.data, {
      keyId, enabled: true, name: 'svc', meta: { team: 'a' }, permissions: ['p.read'],
      credits: { remaining: 5, refill: { interval: 'daily', amount: 5 } },
      identity: { externalId: 'owner_1' }, ratelimits: [{ name: 'rlx', limit: 3, duration: 1000, autoApply: false }],
    });
    t.equal(res.body.data.plaintext, undefined);
    t.notOk(res.text.includes('null'), 'no null anywhere');
    t.notOk('roles' in res.body.data, 'empty roles omitted');
  });

  t.test('200: decrypt returns the plaintext with decrypt_key', async (t) => {
    const res = await h.call('keys.getKey', { keyId, decrypt: true }, admin);
    t.equal(res.body.data.plaintext, key);
    const noDecrypt = await h.call('keys.getKey', { keyId, decrypt: true }, reader);
    t.equal(noDecrypt.status, 403);
  });

  t.test('200: whoami finds the key by its plaintext', async (t) => {
    const res = await h.call('keys.whoami', { key }, reader);
    t.equal(res.status, 200, res.text);
    t.equal(res.body.data.keyId, keyId);
  });

  t.test('400: malformed bodies', async (t) => {
    t.equal((await h.call('keys.getKey', {}, reader)).status, 400);
    t.equal((await h.call('keys.getKey', { keyId, decrypt: 'yes' }, reader)).status, 400);
    t.equal((await h.call('keys.whoami', { key: '' }, reader)).status, 400);
  });

  t.test('401: unknown root key', async (t) => {
    t.equal((await h.call('keys.getKey', { keyId }, 'kg_root_x')).status, 401);
    t.equal((await h.call('keys.whoami', { key }, 'kg_root_x')).status, 401);
  });

  t.test('404 hides existence: without read_key the answer equals a missing key\'s', async (t) => {
    const missing = await h.call('keys.getKey', { keyId: 'key_missing' }, reader);
    t.equal(missing.status, 404);
    t.equal(missing.body.error.type, 'https://unkey.com/docs/errors/unkey/data/key_not_found');
    const noRead = await h.createRootKey(['api.api_other.read_key']);
    const masked = await h.call('keys.getKey', { keyId }, noRead);
    t.same(masked.body.error, missing.body.error);
    const maskedWhoami = await h.call('keys.whoami', { key }, noRead);
    t.same(maskedWhoami.body.error, missing.body.error);
    const urn = await h.createRootKey([`unkey:v1:${h.workspaceId}:keyspaces/${keySpaceId}/keys/*#read_key`]);
    t.equal((await h.call('keys.getKey', { keyId }, urn)).status, 200, 'a URN grant covers it');
  });

  t.test('404: a key of another workspace, and a root key, are not found', async (t) => {
    const otherWorkspace = await h.createWorkspace();
    const otherRoot = await h.createRootKey(['api.*.read_key'], { workspaceId: otherWorkspace });
    t.equal((await h.call('keys.getKey', { keyId }, otherRoot)).status, 404);
    t.equal((await h.call('keys.whoami', { key }, otherRoot)).status, 404);
    t.equal((await h.call('keys.whoami', { key: reader }, reader)).status, 404, 'root keys are not readable through whoami');
  });
});
