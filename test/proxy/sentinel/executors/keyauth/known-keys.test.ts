import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import t from 'tap';
import type { VerificationResult } from '../../../../../core/verification/interface.ts';
import { KnownKeys } from '../../../../../proxy/sentinel/executors/keyauth/known-keys.ts';
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
  const cache = new KnownKeys();
  const known = cache.remember('sk_1', 'hash_1');
  const first = cache.principalFor(known, result(), 'ks_1');
  const second = cache.principalFor(cache.get('sk_1')!, result(), 'ks_1');
  t.equal(second, first);
  t.ok(Object.isFrozen(first) && Object.isFrozen(first.source) && Object.isFrozen(first.source.key));
  t.same(first, principalFromVerification(result(), 'ks_1'), 'same content as an uncached principal');
});

t.test('builds a new principal when any input changes', async (t) => {
  const cache = new KnownKeys();
  const known = cache.remember('sk_1', 'hash_1');
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
    const base = cache.principalFor(known, result(), 'ks_1');
    const principal = cache.principalFor(known, changed, keySpaceId);
    t.not(principal, base, what);
    t.same(principal, principalFromVerification(changed, keySpaceId), `${what}: content matches`);
    t.equal(cache.principalFor(known, changed, keySpaceId), principal, `${what}: then reused`);
  }
});

t.test('remembers keys by their exact characters, forgets, and stays bounded: clears when full', async (t) => {
  const cache = new KnownKeys(2);
  const a = cache.remember('sk_a', 'hash_a');
  t.equal(cache.get('sk_a'), a);
  t.equal(cache.get('sk_a')!.hash, 'hash_a');
  t.equal(cache.get('SK_A'), undefined, 'case matters');
  t.equal(cache.get('sk_a '), undefined, 'no trimming');
  cache.remember('sk_b', 'hash_b');
  t.equal(cache.size, 2);
  cache.remember('sk_c', 'hash_c');
  t.equal(cache.size, 1, 'cleared when full, then the new key');
  t.equal(cache.get('sk_a'), undefined, 'a was dropped when the map filled');
  t.equal(cache.get('sk_c')!.hash, 'hash_c');
  cache.forget('sk_c');
  t.equal(cache.get('sk_c'), undefined);
  t.equal(cache.size, 0);
});

t.test('a remembered key does not keep the request head it was sliced from alive', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const cache = new KnownKeys();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let index = 0; index < 200; index++) {
    // As the HTTP/1.1 parser makes them: the value a slice of the head, the key a slice of the value.
    const head = `GET / HTTP/1.1\r\nauthorization: Bearer sk_${String(index).padStart(32, '0')}\r\n${'x'.repeat(100_000)}${index}`;
    const value = head.slice(head.indexOf('Bearer'), head.indexOf('\r\n', 20));
    cache.remember(value.slice(7), `hash_${index}`);
  }
  gc();
  const grownBytes = process.memoryUsage().heapUsed - before;
  // 200 heads of 100 kB would be 20 MB; 200 short keys are a few kB.
  t.ok(grownBytes < 5_000_000, `heap grew by ${grownBytes} bytes`);
  t.equal(cache.get(`sk_${String(7).padStart(32, '0')}`)!.hash, 'hash_7', 'the copy has the same characters');
});

t.test('serializes a cached principal the same as a fresh one, non-ASCII escaped', async (t) => {
  const cache = new KnownKeys();
  const principal = cache.principalFor(cache.remember('sk_1', 'hash_1'), result(), 'ks_1');
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
