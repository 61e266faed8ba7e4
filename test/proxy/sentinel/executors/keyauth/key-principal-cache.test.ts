import t from 'tap';
import type { VerificationResult } from '../../../../../core/verification/interface.ts';
import { KeyPrincipalCache } from '../../../../../proxy/sentinel/executors/keyauth/key-principal-cache.ts';
import { freezeWithHeader, principalFromVerification, serializePrincipal } from '../../../../../proxy/sentinel/principal.ts';

const meta = { org: 'acme', city: 'Zürich' };
const identity = { id: 'id_1', externalId: 'user_1', meta: { tier: 'gold' } };
// One entry's lists: the verifier hands out the cached entry's own arrays on every call.
const roles = ['admin'];
const permissions = ['read'];
const result = (overrides: Partial<VerificationResult> = {}): VerificationResult => ({
  valid: true, code: 'VALID', keyId: 'key_1', name: 'k', meta, enabled: true, roles, permissions, identity, ...overrides,
});

t.test('reuses one frozen principal while the verification answer is the same', async (t) => {
  const cache = new KeyPrincipalCache();
  const first = cache.principalFor(result(), 'ks_1');
  const second = cache.principalFor(result(), 'ks_1');
  t.equal(second, first);
  t.ok(Object.isFrozen(first) && Object.isFrozen(first.source) && Object.isFrozen(first.source.key));
  t.same(first, principalFromVerification(result(), 'ks_1'), 'same content as an uncached principal');
});

t.test('builds a new principal when any input changes', async (t) => {
  const cache = new KeyPrincipalCache();
  const base = cache.principalFor(result(), 'ks_1');
  const variants: Array<[string, VerificationResult, string]> = [
    ['key space', result(), 'ks_2'],
    ['name', result({ name: 'other' }), 'ks_1'],
    ['credits', result({ credits: 5 }), 'ks_1'],
    ['expires', result({ expires: 123 }), 'ks_1'],
    ['meta (a reloaded entry)', result({ meta: { ...meta } }), 'ks_1'],
    ['roles', result({ roles: ['admin'] }), 'ks_1'],
    ['permissions', result({ permissions: ['read', 'write'] }), 'ks_1'],
    ['identity', result({ identity: { ...identity, externalId: 'user_2' } }), 'ks_1'],
  ];
  for (const [what, changed, keySpaceId] of variants) {
    const principal = cache.principalFor(changed, keySpaceId);
    t.not(principal, base, what);
    t.same(principal, principalFromVerification(changed, keySpaceId), `${what}: content matches`);
  }
});

t.test('stays bounded: clears when full', async (t) => {
  const cache = new KeyPrincipalCache(2);
  const first = cache.principalFor(result({ keyId: 'a' }), 'ks');
  cache.principalFor(result({ keyId: 'b' }), 'ks');
  cache.principalFor(result({ keyId: 'c' }), 'ks');
  t.not(cache.principalFor(result({ keyId: 'a' }), 'ks'), first, 'a was dropped when the cache filled');
});

t.test('serializes a cached principal the same as a fresh one, non-ASCII escaped', async (t) => {
  const cache = new KeyPrincipalCache();
  const principal = cache.principalFor(result(), 'ks_1');
  const header = serializePrincipal(principal);
  t.equal(serializePrincipal(principal), header, 'remembered');
  t.equal(header, serializePrincipal(principalFromVerification(result(), 'ks_1')), 'same as unfrozen');
  t.match(header, /Z\\u00fcrich/);
  t.notMatch(header, /[^\x00-\x7e]/);
  t.same(JSON.parse(header), JSON.parse(JSON.stringify(principal)));
});

t.test('freezeWithHeader: the header is computed once, stored out of JSON\'s and keys\' sight, on a frozen principal', async (t) => {
  const fresh = principalFromVerification(result(), 'ks_1');
  const expected = serializePrincipal(principalFromVerification(result(), 'ks_1'));
  const shared = freezeWithHeader(fresh);
  t.equal(shared, fresh, 'the same object, frozen');
  t.ok(Object.isFrozen(shared));
  t.same(Object.keys(shared), Object.keys(principalFromVerification(result(), 'ks_1')), 'no new enumerable key');
  t.equal(JSON.stringify(shared), JSON.stringify(principalFromVerification(result(), 'ks_1')), 'JSON does not see the stored header');
  t.equal(serializePrincipal(shared), expected);
  // Read back, not recomputed: a principal changed behind the freeze (its nested source is not
  // frozen here) still yields the header it was frozen with.
  (shared.source.key as { keyId: string }).keyId = 'key_changed';
  t.equal(serializePrincipal(shared), expected, 'read from the object, not serialised again');
});
