/**
 * Logging executor (dataplane.md §5.9): never rejects; ORs its capture flags into the request's
 * log capture, so several matching Logging policies add up. The capture itself (bounded bodies,
 * redaction) is done by `request-log.ts` when the exchange is over.
 */
import type { Policy } from '../../policy/policy-types.ts';
import type { EvaluationState, PolicyExecutor } from '../../policy-executor.ts';

/** Creates the executor of a logging policy (called at compile time). */
export function createLoggingExecutor(policy: Policy): PolicyExecutor {
  const flags = policy.logging!;
  return {
    execute(_request, state: EvaluationState) {
      const log = state.log;
      log.requestHeaders ||= flags.requestHeaders;
      log.responseHeaders ||= flags.responseHeaders;
      log.requestBody ||= flags.requestBody;
      log.responseBody ||= flags.responseBody;
      log.query ||= flags.query;
    },
  };
}
