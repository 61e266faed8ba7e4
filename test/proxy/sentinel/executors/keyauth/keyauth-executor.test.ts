import t from 'tap';
import type { VerificationResult, VerifyKeyInput, VerifyKeyOptions } from '../../../../../core/verification/interface.ts';
import { createKeyAuthExecutor } from '../../../../../proxy/sentinel/executors/keyauth/keyauth-executor.ts';
import type { GatewayKeyVerifier, KeySpaceResolver } from '../../../../../proxy/sentinel/executors/keyauth/keyauth-executor.ts';
import { parsePolicies } from '../../../../../proxy/sentinel/policy/parse-policies.ts';
import { serializePrincipal } from '../../../../../proxy/sentinel/principal.ts';
import { hashKey } from '../../../../../core/keys/key-hash.ts';
import { freshState, rejection, requestView } from '../helpers.ts';

/** A verifier that answers from a table keyed by (key, keySpaceId), honouring the interface's scoping. */
class TableVerifier implements GatewayKeyVerifier {
  readonly calls: Array<{ input: VerifyKeyInput; options: VerifyKeyOptions }> = [];
  readonly #answers: Map<string, VerificationResult>;
  constructor(answers: Record<string, VerificationResult>) {
    this.#answers = new Map(Object.entries(answers));
  }
  /** Changes the answer for `key@keySpaceId` (undefined: NOT_FOUND from now on). */
  answer(keyAtKeySpace: string, result: VerificationResult | undefined): void {
    if (result === undefined) this.#answers.delete(keyAtKeySpace);
    else this.#answers.set(keyAtKeySpace, result);
  }
  async verify(input: VerifyKeyInput, options: VerifyKeyOptions): Promise<VerificationResult> {
    this.calls.push({ input, options });
    return this.#answers.get(`${input.key}@${options.keySpaceId}`) ?? { valid: false, code: 'NOT_FOUND' };
  }
}

const resolver: KeySpaceResolver = {
  async keySpace(id) { return id.startsWith('ks_') ? { workspaceId: 'ws_1', keySpaceId: id } : undefined; },
  async api(id) { return id === 'api_1' ? { workspaceId: 'ws_1', keySpaceId: 'ks_api' } : undefined; },
};

const policy = (keyauth: unknown) => parsePolicies([{ id: 'auth', enabled: true, keyauth }])[0]!;

t.test('maps every verification outcome to the gateway status of spec §5.5', async (t) => {
  const verifier = new TableVerifier({
    'good@ks_1': { valid: true, code: 'VALID', keyId: 'key_1', name: 'k', meta: { org: 'acmé' }, credits: 0, identity: { id: 'id_1', externalId: 'user_1' }, ratelimits: [{ id: 'r', name: 'r', limit: 10, duration: 1000, autoApply: true, reset: 1_700_000_001_000, remaining: 9, exceeded: false }] },
    'perm@ks_1': { valid: false, code: 'INSUFFICIENT_PERMISSIONS', keyId: 'key_2' },
    'limited@ks_1': { valid: false, code: 'RATE_LIMITED', keyId: 'key_3', ratelimits: [{ id: 'r', name: 'r', limit: 1, duration: 1000, autoApply: true, reset: 1_700_000_001_000, remaining: 0, exceeded: true }] },
    'empty@ks_1': { valid: false, code: 'USAGE_EXCEEDED', keyId: 'key_4' },
    'off@ks_1': { valid: false, code: 'DISABLED', keyId: 'key_5' },
    'other@ks_api': { valid: true, code: 'VALID', keyId: 'key_6' },
  });
  const executor = await createKeyAuthExecutor(policy({ keyspaces: ['ks_1'], apiIds: ['api_1'], permissionQuery: 'a.read OR b.write', credits: 0 }), verifier, resolver);
  const missing = await rejection(() => executor.execute(requestView('/'), freshState()));
  t.equal(missing.code, 'err:frontline:client:missing_credentials');
  t.equal(missing.status, 401);
  const cases: Array<[string, string, number]> = [
    ['unknown', 'err:frontline:client:invalid_key', 401],
    ['off', 'err:frontline:client:invalid_key', 401],
    ['perm', 'err:frontline:client:insufficient_permissions', 403],
    ['limited', 'err:frontline:client:rate_limited', 429],
    ['empty', 'err:frontline:client:usage_exceeded', 429],
  ];
  for (const [key, code, status] of cases) {
    const state = freshState();
    const fault = await rejection(() => executor.execute(requestView('/', { authorization: `Bearer ${key}` }), state));
    t.equal(fault.code, code, key);
    t.equal(fault.status, status, key);
    if (key === 'limited') t.match(state.rateLimit, { passed: false, remaining: 0 }, 'rate-limit headers also on the 429');
  }
  const state = freshState();
  await executor.execute(requestView('/', { authorization: 'bearer good' }), state);
  t.equal(state.principal!.subject, 'user_1');
  t.match(state.rateLimit, { remaining: 9, passed: true });
  const header = serializePrincipal(state.principal!);
  t.equal(header, '{"version":"v1","subject":"user_1","type":"API_KEY","identity":{"externalId":"user_1","meta":{}},"source":{"key":{"keyId":"key_1","keySpaceId":"ks_1","name":"k","credits":0,"meta":{"org":"acm\\u00e9"}}}}');
  t.same(JSON.parse(header).source.key.meta, { org: 'acmé' }, 'non-ASCII escaped, still valid JSON');
  const call = verifier.calls.find((entry) => entry.input.key === 'good')!;
  t.same(call.input.credits, { cost: 0 });
  t.equal(call.input.permissions, 'a.read OR b.write');
  t.same(call.options.workspaceId, 'ws_1');
  const viaApi = freshState();
  await executor.execute(requestView('/', { authorization: 'Bearer other' }), viaApi);
  t.equal(viaApi.principal!.source.key!.keySpaceId, 'ks_api', 'keys of an API named by apiIds are accepted');
});

t.test('finds the key in a header with a prefix or in a query parameter, first location wins', async (t) => {
  const verifier = new TableVerifier({ 'k1@ks_1': { valid: true, code: 'VALID', keyId: 'key_1' } });
  const executor = await createKeyAuthExecutor(policy({ keyspaces: ['ks_1'], locations: [{ header: { name: 'X-Api-Key', stripPrefix: 'Key ' } }, { queryParam: { name: 'key' } }] }), verifier, resolver);
  await executor.execute(requestView('/', { 'x-api-key': 'key k1' }), freshState());
  await executor.execute(requestView('/?key=k1'), freshState());
  t.equal((await rejection(() => executor.execute(requestView('/', { authorization: 'Bearer k1' }), freshState()))).code, 'err:frontline:client:missing_credentials', 'bearer is not a configured location');
  t.equal((await rejection(() => executor.execute(requestView('/', { 'x-api-key': 'k1' }), freshState()))).code, 'err:frontline:client:missing_credentials', 'prefix required');
});

t.test('a verifier failure is a 500, and a bad permission query is rejected at compile time', async (t) => {
  const broken: GatewayKeyVerifier = { verify: async () => { throw new Error('database down'); } };
  const executor = await createKeyAuthExecutor(policy({ keyspaces: ['ks_1'] }), broken, resolver);
  const fault = await rejection(() => executor.execute(requestView('/', { authorization: 'Bearer x' }), freshState()));
  t.equal(fault.code, 'err:frontline:platform:internal_server_error');
  const compileFault = await rejection(() => createKeyAuthExecutor(policy({ keyspaces: ['ks_1'], permissionQuery: 'a AND (b' }), broken, resolver));
  t.equal(compileFault.status, 422);
});

t.test('a key the verifier decides synchronously passes without a promise; the same outcomes either way', async (t) => {
  const answers: Record<string, VerificationResult> = {
    'good@ks_2': { valid: true, code: 'VALID', keyId: 'key_1' },
    'off@ks_1': { valid: false, code: 'DISABLED', keyId: 'key_5' },
  };
  const calls: string[] = [];
  const syncVerifier: GatewayKeyVerifier = {
    verify: async () => { throw new Error('verify must not be called when verifyNow exists'); },
    verifyNow: (input, options) => {
      calls.push(`${input.key}@${options.keySpaceId}`);
      return answers[`${input.key}@${options.keySpaceId}`] ?? { valid: false, code: 'NOT_FOUND' };
    },
  };
  const executor = await createKeyAuthExecutor(policy({ keyspaces: ['ks_1', 'ks_2'] }), syncVerifier, resolver);
  const state = freshState();
  t.equal(executor.execute(requestView('/', { authorization: 'Bearer good' }), state), undefined, 'decided synchronously');
  t.equal(state.principal!.source.key!.keySpaceId, 'ks_2', 'after asking the first key space');
  t.same(calls, ['good@ks_1', 'good@ks_2']);
  t.equal((await rejection(() => executor.execute(requestView('/', { authorization: 'Bearer off' }), freshState()))).code, 'err:frontline:client:invalid_key', 'a disabled key is rejected on the synchronous path too');
  t.equal((await rejection(() => executor.execute(requestView('/', { authorization: 'Bearer unknown' }), freshState()))).code, 'err:frontline:client:invalid_key');

  // Mixed: the first key space answers synchronously, the second only later.
  const mixed: GatewayKeyVerifier = {
    verify: async () => { throw new Error('unused'); },
    verifyNow: (input, options) => options.keySpaceId === 'ks_1' ? { valid: false, code: 'NOT_FOUND' } : Promise.resolve(answers[`${input.key}@${options.keySpaceId}`] ?? { valid: false, code: 'NOT_FOUND' }),
  };
  const mixedExecutor = await createKeyAuthExecutor(policy({ keyspaces: ['ks_1', 'ks_2'] }), mixed, resolver);
  const later = freshState();
  const pending = mixedExecutor.execute(requestView('/', { authorization: 'Bearer good' }), later);
  t.ok(pending instanceof Promise, 'continues asynchronously once an answer waits');
  await pending;
  t.equal(later.principal!.source.key!.keySpaceId, 'ks_2');
});

t.test('a verifier that throws synchronously or rejects later is a 500 either way, never an invalid key', async (t) => {
  for (const [name, verifyNow] of [
    ['throws', () => { throw new Error('database down'); }],
    ['rejects', () => Promise.reject(new Error('database down'))],
  ] as const) {
    const verifier: GatewayKeyVerifier = { verify: async () => { throw new Error('unused'); }, verifyNow };
    const executor = await createKeyAuthExecutor(policy({ keyspaces: ['ks_1'] }), verifier, resolver);
    const fault = await rejection(() => executor.execute(requestView('/', { authorization: 'Bearer x' }), freshState()));
    t.equal(fault.code, 'err:frontline:platform:internal_server_error', name);
    t.equal(fault.status, 500, name);
  }
});

t.test('hands the verifier the hash of each request\'s own key, remembered per found key and never mixed between keys', async (t) => {
  const answers: Record<string, VerificationResult> = { 'a@ks_1': { valid: true, code: 'VALID', keyId: 'key_a' }, 'b@ks_1': { valid: true, code: 'VALID', keyId: 'key_b' } };
  const verifier = new TableVerifier(answers);
  const executor = await createKeyAuthExecutor(policy({ keyspaces: ['ks_1'] }), verifier, resolver);
  const sent = ['a', 'a', 'b', 'nope', 'a', 'b', 'nope', 'A', 'a ', 'b'];
  const principals = new Map<string, unknown>();
  for (const key of sent) {
    const state = freshState();
    try {
      await executor.execute(requestView('/', { authorization: `Bearer ${key}` }), state);
    } catch {
      t.ok(!(`${key}@ks_1` in answers), `only unknown keys are refused (${JSON.stringify(key)})`);
      continue;
    }
    t.equal(state.principal!.source.key!.keyId, `key_${key}`, `${key}: its own principal`);
    if (principals.has(key)) t.equal(state.principal, principals.get(key), `${key}: the remembered principal`);
    principals.set(key, state.principal);
  }
  t.same(verifier.calls.map((call) => [call.input.key, call.options.keyHash]), sent.map((key) => [key, hashKey(key)]), 'every request carries the hash of its own key');

  // A key that is no longer found (deleted) is forgotten: when it comes back, it starts afresh.
  const before = principals.get('a');
  verifier.answer('a@ks_1', undefined);
  t.equal((await rejection(() => executor.execute(requestView('/', { authorization: 'Bearer a' }), freshState()))).code, 'err:frontline:client:invalid_key');
  verifier.answer('a@ks_1', answers['a@ks_1']);
  const state = freshState();
  await executor.execute(requestView('/', { authorization: 'Bearer a' }), state);
  t.not(state.principal, before, 'a new entry, so a new principal');
  t.same(state.principal, before, 'with the same content');
  t.equal(verifier.calls.at(-1)!.options.keyHash, hashKey('a'));
});
