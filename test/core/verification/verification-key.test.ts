import t from 'tap';
import type { KeyForVerification } from '../../../core/db/queries/find-key-for-verification.ts';
import { keyStatus } from '../../../core/verification/key-verifier.ts';
import { VerificationKey } from '../../../core/verification/verification-key.ts';

/** A row as `findKeyForVerification` returns it; fresh strings each call, like a database read. */
function row(overrides: Partial<KeyForVerification> = {}, keyOverrides: Partial<KeyForVerification['key']> = {}): KeyForVerification {
  const fresh = (text: string) => [...text].join('');
  return {
    key: { id: fresh('key_1'), keySpaceId: fresh('ks_1'), workspaceId: fresh('ws_1'), hash: 'h', start: 's', enabled: true, createdAtMs: 1, ...keyOverrides },
    keySpace: { id: fresh('ks_1'), workspaceId: 'ws_1', createdAtMs: 1 } as KeyForVerification['keySpace'],
    api: { id: fresh('api_1'), workspaceId: 'ws_1', name: 'a', keySpaceId: 'ks_1', authType: 'key', deleteProtection: false, createdAtMs: 1 },
    workspaceEnabled: true,
    ratelimits: [],
    directPermissions: [],
    rolePermissions: [],
    permissions: [],
    roles: [],
    ...overrides,
  };
}

const limit = (id: string, name: string, autoApply: boolean) => ({ id, name, limit: 10, durationMs: 1000, autoApply });

t.test('a key-level limit replaces the identity limit of the same name, in the identity order', async (t) => {
  const entry = new VerificationKey(row({
    identity: { id: 'id_1', workspaceId: 'ws_1', externalId: 'user', environment: 'default', createdAtMs: 1, ratelimits: [limit('rl_i1', 'shared', true), limit('rl_i2', 'both', true)] },
    ratelimits: [limit('rl_k1', 'both', false), limit('rl_k2', 'own', true)],
  }));
  t.same(entry.ratelimits.map((resolved) => [resolved.id, resolved.identifier]), [['rl_i1', 'id_1'], ['rl_k1', 'key_1'], ['rl_k2', 'key_1']]);
  t.same(entry.autoApplied.map((resolved) => resolved.id), ['rl_i1', 'rl_k2']);
  t.equal(entry.ratelimit('both')?.id, 'rl_k1');
  t.equal(entry.ratelimit('missing'), undefined);
});

t.test('keys without grants share the same empty containers and repeated ids are stored once', async (t) => {
  const first = new VerificationKey(row());
  const second = new VerificationKey(row());
  t.equal(first.permissionSet, second.permissionSet);
  t.equal(first.permissionSet.size, 0);
  t.equal(first.ratelimits, second.ratelimits);
  t.equal(first.autoApplied, first.ratelimits, 'no separate auto-applied array when every limit is auto-applied');
  t.equal(first.permissions, undefined);
  t.equal(first.roles, undefined);
  t.equal(first.workspaceId, 'ws_1');
  t.equal(first.apiId, 'api_1');
  t.equal(first.keySpaceId, 'ks_1');
  t.notOk('row' in first, 'the database row is not kept in the cache');
});

t.test('the stored status is computed once and expiry per call', async (t) => {
  t.equal(keyStatus(new VerificationKey(row({}, { enabled: false })), 0), 'DISABLED');
  t.equal(keyStatus(new VerificationKey(row({ workspaceEnabled: false })), 0), 'FORBIDDEN');
  t.equal(keyStatus(new VerificationKey(row({}, { forWorkspaceId: 'ws_gone' })), 0), 'NOT_FOUND');
  const api = { ...row().api, deletedAtMs: 5 };
  t.equal(keyStatus(new VerificationKey(row({ api })), 0), 'NOT_FOUND');
  const expiring = new VerificationKey(row({}, { expiresAtMs: 100 }));
  t.equal(keyStatus(expiring, 99), 'VALID');
  t.equal(keyStatus(expiring, 100), 'EXPIRED');
});

t.test('an empty name is omitted and the IP allow-list is parsed', async (t) => {
  const entry = new VerificationKey(row({ api: { ...row().api, ipWhitelist: ' 1.2.3.4, ,5.6.7.8' } }, { name: '' }));
  t.equal(entry.name, undefined);
  t.same([...entry.ipWhitelist!], ['1.2.3.4', '5.6.7.8']);
  t.equal(new VerificationKey(row({ api: { ...row().api, ipWhitelist: ' , ' } })).ipWhitelist, undefined);
});
