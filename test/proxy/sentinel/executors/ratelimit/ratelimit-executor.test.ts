import t from 'tap';
import { TestClock } from '../../../../../core/clock.ts';
import { MemoryRateLimiter } from '../../../../../core/ratelimit/memory.ts';
import { compileIdentifier } from '../../../../../proxy/sentinel/executors/ratelimit/rate-limit-identifier.ts';
import { createRateLimitExecutor } from '../../../../../proxy/sentinel/executors/ratelimit/ratelimit-executor.ts';
import { parsePolicies } from '../../../../../proxy/sentinel/policy/parse-policies.ts';
import { rateLimitHeaderPairs } from '../../../../../proxy/sentinel/rate-limit-headers.ts';
import { freshState, rejection, requestView } from '../helpers.ts';

const policy = (ratelimit: unknown) => parsePolicies([{ id: 'rl', enabled: true, ratelimit }])[0]!;

t.test('limits per remote IP, reports the most restrictive headers, and denies with 429 and Retry-After', async (t) => {
  const clock = new TestClock(1_700_000_000_000);
  const limiter = new MemoryRateLimiter({ clock });
  t.teardown(() => limiter.close());
  const executor = createRateLimitExecutor(policy({ limit: 2, windowMs: 60_000, identifiers: [{ remoteIp: {} }] }), limiter);
  const first = freshState();
  await executor.execute(requestView('/'), first);
  t.match(first.rateLimit, { limit: 2, remaining: 1, passed: true });
  await executor.execute(requestView('/'), freshState());
  const third = freshState();
  const fault = await rejection(() => executor.execute(requestView('/'), third));
  t.equal(fault.code, 'err:frontline:client:rate_limited');
  t.equal(fault.status, 429);
  t.equal(third.rateLimit!.passed, false);
  const headers = Object.fromEntries(rateLimitHeaderPairs(third.rateLimit!, clock.nowMs()));
  t.equal(headers['x-ratelimit-remaining'], '0');
  t.equal(headers['x-ratelimit-reset'], String(Math.ceil(third.rateLimit!.resetMs / 1000)), 'reset in Unix seconds');
  t.ok(Number(headers['retry-after']) >= 1);
  // Another client IP has its own counter.
  await executor.execute(requestView('/', {}, { clientIp: '198.51.100.1' }), freshState());
});

t.test('an identifier that cannot be resolved is a 429, never a pass', async (t) => {
  const limiter = new MemoryRateLimiter();
  t.teardown(() => limiter.close());
  const executor = createRateLimitExecutor(policy({ limit: 100, windowMs: 1000, identifiers: [{ header: { name: 'X-Tenant' } }] }), limiter);
  const fault = await rejection(() => executor.execute(requestView('/'), freshState()));
  t.equal(fault.code, 'err:frontline:client:rate_limited');
  t.match(fault.publicMessage, /configuration error/);
});

t.test('compound identifiers escape their parts and mark missing ones unknown', async (t) => {
  const state = freshState();
  const two = compileIdentifier(policy({ limit: 1, windowMs: 1000, identifiers: [{ header: { name: 'x-a' } }, { header: { name: 'x-b' } }] }).ratelimit!.identifiers);
  t.not(two(requestView('/', { 'x-a': 'a:b', 'x-b': 'c' }), state), two(requestView('/', { 'x-a': 'a', 'x-b': 'b:c' }), state));
  t.equal(two(requestView('/', { 'x-b': 'v' }), state), 'unknown:v');
  t.equal(two(requestView('/'), state), '');
  const subject = compileIdentifier(policy({ limit: 1, windowMs: 1000, identifiers: [{ principalField: { path: 'source.key.meta.org' } }] }).ratelimit!.identifiers);
  state.principal = { version: 'v1', subject: 'user_1', type: 'API_KEY', source: { key: { keyId: 'k', keySpaceId: 'ks', meta: { org: 'acme' } } } };
  t.equal(subject(requestView('/'), state), 'acme');
});

t.test('the same identifier in two workspaces counts on two counters', async (t) => {
  const limiter = new MemoryRateLimiter({ clock: new TestClock(1_700_000_000_000) });
  t.teardown(() => limiter.close());
  const executor = createRateLimitExecutor(policy({ limit: 1, windowMs: 60_000, identifiers: [{ header: { name: 'x-tenant' } }] }), limiter);
  const inWorkspace = (workspaceId: string) => ({ ...freshState(), workspaceId });
  const tenant = () => requestView('/', { 'x-tenant': 'acme' });
  t.equal(executor.execute(tenant(), inWorkspace('ws_a')), undefined, 'the in-process limiter decides synchronously');
  await executor.execute(tenant(), inWorkspace('ws_b'));
  t.equal((await rejection(() => executor.execute(tenant(), inWorkspace('ws_a')))).code, 'err:frontline:client:rate_limited', 'ws_a spent its one request');
  t.equal((await rejection(() => executor.execute(tenant(), inWorkspace('ws_b')))).code, 'err:frontline:client:rate_limited', 'ws_b too, separately');
});
