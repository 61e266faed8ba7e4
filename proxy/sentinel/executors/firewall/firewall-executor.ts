/**
 * Firewall executor (dataplane.md §5.7): a matching request with action `ACTION_DENY` is rejected
 * with 403 `err:frontline:client:firewall_denied` ("Forbidden") before anything after it runs;
 * any other action is a no-op (forward compatible).
 */
import { Fault } from '../../../../core/fault.ts';
import type { Policy } from '../../policy/policy-types.ts';
import type { PolicyExecutor } from '../../policy-executor.ts';

/** Creates the executor of a firewall policy (called at compile time). */
export function createFirewallExecutor(policy: Policy): PolicyExecutor {
  if (policy.firewall?.action !== 'ACTION_DENY') return { execute() {} };
  const policyId = policy.id;
  return {
    execute() {
      throw Fault.expected('err:frontline:client:firewall_denied', { publicMessage: 'Forbidden', internalMessage: `denied by firewall policy ${policyId}` });
    },
  };
}
