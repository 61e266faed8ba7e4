/**
 * KeyAuth naming an API that did not exist when the policy compiled: the id is resolved again
 * at request time (at most once per interval, one lookup at a time), so the API works once it
 * exists instead of refusing every key until a restart.
 */
import t from 'tap';
import { TestClock } from '../../../../../core/clock.ts';
import type { VerificationResult, VerifyKeyInput, VerifyKeyOptions } from '../../../../../core/verification/interface.ts';
import { createKeyAuthExecutor } from '../../../../../proxy/sentinel/executors/keyauth/keyauth-executor.ts';
import type { KeySpaceResolver, KeySpaceTarget } from '../../../../../proxy/sentinel/executors/keyauth/keyauth-executor.ts';
import { parsePolicies } from '../../../../../proxy/sentinel/policy/parse-policies.ts';
import { freshState, rejection, requestView } from '../helpers.ts';

/** Keys by key space; an API appears in the resolver only once `created` holds it. */
function setup() {
  const created = new Map<string, KeySpaceTarget>();
  let lookups = 0;
  let failNext = false;
  const resolver: KeySpaceResolver = {
    async keySpace() { return undefined; },
    async api(apiId) {
      lookups++;
      if (failNext) {
        failNext = false;
        throw new Error('database unavailable');
      }
      return created.get(apiId);
    },
  };
  const keys = new Map<string, string>([['sk_old', 'ks_old'], ['sk_new', 'ks_new']]);
  const verifier = {
    async verify(input: VerifyKeyInput, options: VerifyKeyOptions): Promise<VerificationResult> {
      return keys.get(input.key) === options.keySpaceId
        ? { valid: true, code: 'VALID', keyId: `key_${input.key}` } as VerificationResult
        : { valid: false, code: 'NOT_FOUND' };
    },
  };
  created.set('api_old', { workspaceId: 'ws', keySpaceId: 'ks_old' });
  return { created, resolver, verifier, lookups: () => lookups, failOnce: () => { failNext = true; } };
}

const policy = parsePolicies([{ id: 'auth', enabled: true, keyauth: { apiIds: ['api_old', 'api_new'] } }])[0]!;
const withKey = (key: string) => requestView('/x', { authorization: `Bearer ${key}` });

t.test('an API created after the policy loaded is found at request time', async (t) => {
  const clock = new TestClock(1_000_000);
  const s = setup();
  const executor = await createKeyAuthExecutor(policy, s.verifier, s.resolver, { clock, unresolvedRetryMs: 5_000 });
  t.equal(s.lookups(), 2, 'both ids looked up at compile time');
  const before = await rejection(() => executor.execute(withKey('sk_new'), freshState()));
  t.equal(before.code, 'err:frontline:client:invalid_key', 'unknown while the API does not exist');
  t.equal(s.lookups(), 3, 'the first unknown key may look again at once');

  s.created.set('api_new', { workspaceId: 'ws', keySpaceId: 'ks_new' });
  const stillCooling = await rejection(() => executor.execute(withKey('sk_new'), freshState()));
  t.equal(stillCooling.code, 'err:frontline:client:invalid_key', 'within the interval no new lookup runs');
  t.equal(s.lookups(), 3);

  clock.advance(5_000);
  const state = freshState();
  await executor.execute(withKey('sk_new'), state);
  t.equal(state.principal?.subject, 'key_sk_new', 'the key of the new API is accepted');
  t.equal(s.lookups(), 4);
  clock.advance(60_000);
  await executor.execute(withKey('sk_new'), freshState());
  await rejection(() => executor.execute(withKey('sk_nothing'), freshState()));
  t.equal(s.lookups(), 4, 'once every id is resolved, nothing is looked up again');
});

t.test('known keys never wait for a lookup, and a failing lookup is retried later', async (t) => {
  const clock = new TestClock(1_000_000);
  const s = setup();
  const executor = await createKeyAuthExecutor(policy, s.verifier, s.resolver, { clock, unresolvedRetryMs: 5_000 });
  const state = freshState();
  await executor.execute(withKey('sk_old'), state);
  t.equal(state.principal?.subject, 'key_sk_old');
  t.equal(s.lookups(), 2, 'a key of a known API causes no lookup');

  s.failOnce();
  s.created.set('api_new', { workspaceId: 'ws', keySpaceId: 'ks_new' });
  const failed = await rejection(() => executor.execute(withKey('sk_new'), freshState()));
  t.equal(failed.code, 'err:frontline:client:invalid_key', 'a database error during the lookup is not a 500 for the known targets');
  clock.advance(5_000);
  // Concurrent bad keys share one lookup.
  await Promise.all([1, 2, 3].map(() => executor.execute(withKey('sk_new'), freshState())));
  t.equal(s.lookups(), 4, 'one lookup for three concurrent requests');
});
