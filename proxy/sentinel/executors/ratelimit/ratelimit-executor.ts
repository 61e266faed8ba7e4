/**
 * RateLimit executor (dataplane.md §5.6): one counter per (workspace, policy id, identifier)
 * through core/ratelimit's `RateLimiter` (memory or Redis), `limit` per `windowMs`, cost 1. The
 * result joins the request's `X-RateLimit-*` headers (most restrictive wins); a denial is 429
 * `err:frontline:client:rate_limited` with `Retry-After`. An identifier that cannot be resolved
 * is also 429 (never a pass, never a 500).
 */
import { Fault } from '../../../../core/fault.ts';
import type { RateLimitDecision, RateLimiter, RateLimitRequest } from '../../../../core/ratelimit/interface.ts';
import { MemoryRateLimiter } from '../../../../core/ratelimit/memory.ts';
import type { Policy } from '../../policy/policy-types.ts';
import type { EvaluationState, PolicyExecutor } from '../../policy-executor.ts';
import { moreRestrictive } from '../../rate-limit-headers.ts';
import type { RequestView } from '../../request-view.ts';
import { compileIdentifier } from './rate-limit-identifier.ts';

/** Creates the executor of a rate-limit policy (called at compile time). */
export function createRateLimitExecutor(policy: Policy, rateLimiter: RateLimiter): PolicyExecutor {
  const config = policy.ratelimit!;
  const identify = compileIdentifier(config.identifiers);
  const namespace = policy.id;
  // The plain in-process limiter decides synchronously: call `limitNow` and return no promise, so
  // the engine awaits nothing. Only when `limit` is not overridden (a subclass keeps its own behaviour).
  const syncLimiter = rateLimiter instanceof MemoryRateLimiter && rateLimiter.limit === MemoryRateLimiter.prototype.limit ? rateLimiter : undefined;

  const requestFor = (request: RequestView, state: EvaluationState): RateLimitRequest => {
    const identifier = identify(request, state);
    if (identifier === '') {
      throw Fault.expected('err:frontline:client:rate_limited', {
        publicMessage: 'Rate limit configuration error: no identifier could be resolved for this request.',
        internalMessage: `rate-limit policy ${namespace}: identifier unresolved`,
      });
    }
    return { workspaceId: state.workspaceId, namespace, identifier, limit: config.limit, durationMs: config.windowMs, cost: 1 };
  };

  const apply = (limitRequest: RateLimitRequest, decision: RateLimitDecision, state: EvaluationState): void => {
    const outcome = { limit: decision.limit, remaining: decision.remaining, resetMs: decision.resetMs, passed: decision.passed };
    if (moreRestrictive(state.rateLimit, outcome)) state.rateLimit = outcome;
    if (!decision.passed) {
      throw Fault.expected('err:frontline:client:rate_limited', { publicMessage: 'Rate limit exceeded.', internalMessage: `rate-limit policy ${namespace} denied ${limitRequest.identifier}` });
    }
  };

  if (syncLimiter !== undefined) {
    return {
      execute(request: RequestView, state: EvaluationState): void {
        const limitRequest = requestFor(request, state);
        apply(limitRequest, syncLimiter.limitNow([limitRequest])[0]!, state);
      },
    };
  }
  return {
    async execute(request: RequestView, state: EvaluationState) {
      const limitRequest = requestFor(request, state);
      const [decision] = await rateLimiter.limit([limitRequest]);
      apply(limitRequest, decision!, state);
    },
  };
}
