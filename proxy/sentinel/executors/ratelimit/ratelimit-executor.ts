/**
 * RateLimit executor (dataplane.md §5.6): one counter per (workspace, policy id, identifier)
 * through core/ratelimit's `RateLimiter` (memory or Redis), `limit` per `windowMs`, cost 1. The
 * result joins the request's `X-RateLimit-*` headers (most restrictive wins); a denial is 429
 * `err:frontline:client:rate_limited` with `Retry-After`. An identifier that cannot be resolved
 * is also 429 (never a pass, never a 500).
 */
import { Fault } from '../../../../core/fault.ts';
import type { RateLimitDecision, RateLimiter, RateLimitRequest } from '../../../../core/ratelimit/interface.ts';
import { MemoryRateLimiter, type PreparedRateLimit } from '../../../../core/ratelimit/memory.ts';
import type { Policy } from '../../policy/policy-types.ts';
import type { EvaluationState, PolicyExecutor } from '../../policy-executor.ts';
import { moreRestrictive } from '../../rate-limit-headers.ts';
import type { RequestView } from '../../request-view.ts';
import { compileIdentifier } from './rate-limit-identifier.ts';

/** Requests remembered per RateLimit policy, by identifier; the map is cleared when full. */
export const MAX_CACHED_RATE_LIMIT_REQUESTS = 10_000;

/** Creates the executor of a rate-limit policy (called at compile time). */
export function createRateLimitExecutor(policy: Policy, rateLimiter: RateLimiter): PolicyExecutor {
  const config = policy.ratelimit!;
  const identify = compileIdentifier(config.identifiers);
  const namespace = policy.id;
  // The plain in-process limiter decides synchronously: call `limitPreparedNow` and return no promise,
  // so the engine awaits nothing. Only when `limit` is not overridden (a subclass keeps its own behaviour).
  const syncLimiter = rateLimiter instanceof MemoryRateLimiter && rateLimiter.limit === MemoryRateLimiter.prototype.limit ? rateLimiter : undefined;
  // One frozen request per identifier: a returning caller (a key's subject, an IP) reuses it, and
  // a limiter can then reuse its counter key instead of building and hashing it again. With the
  // in-process limiter the request is kept prepared (see `MemoryRateLimiter.prepare`): it carries
  // its counter, so a returning caller costs this one map lookup and none in the limiter.
  const requests = new Map<string, PreparedRateLimit>();

  const requestFor = (request: RequestView, state: EvaluationState): PreparedRateLimit => {
    const identifier = identify(request, state);
    const cached = requests.get(identifier);
    if (cached !== undefined && cached.request.workspaceId === state.workspaceId) return cached;
    if (identifier === '') {
      throw Fault.expected('err:frontline:client:rate_limited', {
        publicMessage: 'Rate limit configuration error: no identifier could be resolved for this request.',
        internalMessage: `rate-limit policy ${namespace}: identifier unresolved`,
      });
    }
    const fresh: RateLimitRequest = Object.freeze({ workspaceId: state.workspaceId, namespace, identifier, limit: config.limit, durationMs: config.windowMs, cost: 1 });
    const ready = syncLimiter !== undefined ? syncLimiter.prepare(fresh) : { request: fresh };
    if (cached === undefined && requests.size >= MAX_CACHED_RATE_LIMIT_REQUESTS) requests.clear();
    requests.set(identifier, ready);
    return ready;
  };

  const apply = (limitRequest: RateLimitRequest, decision: RateLimitDecision, state: EvaluationState): void => {
    // The decision has the outcome's fields; it is read only, so it is kept as is.
    if (moreRestrictive(state.rateLimit, decision)) state.rateLimit = decision;
    if (!decision.passed) {
      throw Fault.expected('err:frontline:client:rate_limited', { publicMessage: 'Rate limit exceeded.', internalMessage: `rate-limit policy ${namespace} denied ${limitRequest.identifier}` });
    }
  };

  if (syncLimiter !== undefined) {
    return {
      execute(request: RequestView, state: EvaluationState): void {
        const ready = requestFor(request, state);
        apply(ready.request, syncLimiter.limitPreparedNow(ready), state);
      },
    };
  }
  return {
    async execute(request: RequestView, state: EvaluationState) {
      const limitRequest = requestFor(request, state).request;
      const [decision] = await rateLimiter.limit([limitRequest]);
      apply(limitRequest, decision!, state);
    },
  };
}
