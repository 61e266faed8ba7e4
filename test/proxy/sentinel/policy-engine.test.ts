import t from 'tap';
import { Fault } from '../../../core/fault.ts';
import { PolicyEngine } from '../../../proxy/sentinel/policy-engine.ts';
import type { EvaluationResult } from '../../../proxy/sentinel/policy-engine.ts';
import { parsePolicies } from '../../../proxy/sentinel/policy/parse-policies.ts';
import type { PolicyExecutor } from '../../../proxy/sentinel/policy-executor.ts';
import { RequestView } from '../../../proxy/sentinel/request-view.ts';

const view = () => new RequestView({ requestId: 'req_1', method: 'GET', url: '/', headers: {}, clientIp: '127.0.0.1' });

/** An engine whose firewall policies run `behaviour[policy.id]` and record their order in `trail`. */
function engineWith(trail: string[], behaviour: Record<string, (id: string) => void | Promise<void>>): PolicyEngine {
  return new PolicyEngine({
    executors: {
      firewall: (policy): PolicyExecutor => ({ execute: () => { trail.push(policy.id); return behaviour[policy.id]?.(policy.id); } }),
      logging: (policy): PolicyExecutor => ({
        authenticates: true,
        execute: (_request, state) => { trail.push(policy.id); state.principal = { version: 'v1', subject: policy.id, type: 'API_KEY', source: {} }; },
      }),
    },
  });
}

const firewall = (id: string) => ({ id, enabled: true, firewall: { action: 'ACTION_DENY' } });

t.test('policies that all decide synchronously are evaluated without a promise', async (t) => {
  const trail: string[] = [];
  const set = await engineWith(trail, {}).compile(parsePolicies([firewall('a'), firewall('b')]));
  const result = set.evaluate(view(), 'ws_1');
  t.notOk(result instanceof Promise, 'a plain result');
  t.equal((result as EvaluationResult).fault, undefined);
  t.same(trail, ['a', 'b']);
});

t.test('after an executor that waits, the rest still run in list order and the first rejection stops them', async (t) => {
  const trail: string[] = [];
  const set = await engineWith(trail, {
    b: () => Promise.resolve(),
    c: () => { throw Fault.expected('err:frontline:client:firewall_denied', { publicMessage: 'no' }); },
  }).compile(parsePolicies([firewall('a'), firewall('b'), firewall('c'), firewall('d')]));
  const pending = set.evaluate(view(), 'ws_1');
  t.ok(pending instanceof Promise, 'a promise once an executor returned one');
  const { fault } = await pending;
  t.equal(fault?.code, 'err:frontline:client:firewall_denied');
  t.same(trail, ['a', 'b', 'c'], 'd never ran');
});

t.test('an executor that throws or rejects something else is a 500 result, never a throw', async (t) => {
  for (const [name, behaviour] of [
    ['throws', () => { throw new Error('boom'); }],
    ['rejects', () => Promise.reject(new Error('boom'))],
  ] as const) {
    const set = await engineWith([], { a: behaviour }).compile(parsePolicies([firewall('a')]));
    const { fault } = await set.evaluate(view(), 'ws_1');
    t.equal(fault?.code, 'err:frontline:platform:internal_server_error', name);
    t.equal(fault?.status, 500, name);
  }
});

t.test('a second authentication policy is skipped once a principal exists', async (t) => {
  const trail: string[] = [];
  const set = await engineWith(trail, {}).compile(parsePolicies([
    { id: 'first', enabled: true, logging: {} },
    { id: 'second', enabled: true, logging: {} },
  ]));
  const result = await set.evaluate(view(), 'ws_1');
  t.equal(result.state.principal?.subject, 'first');
  t.same(trail, ['first']);
});
