/**
 * `ratelimit.limit` (spec api.md §3.9, pitfalls §14.7, §14.18–19): one sliding-window check of
 * `(namespace, identifier)`. The namespace is named by name or `rlns_` id and auto-created by
 * name with `ratelimit.*.create_namespace` (403 without); a deleted one is 410. Requires
 * `ratelimit.{*,<nsId>}.limit` (403). An override (exact identifier first, then the most specific
 * wildcard) REPLACES limit and duration. Counters are keyed by namespace id, so renaming a
 * namespace never resets them. `reset` is the absolute end of the current window (Unix ms).
 */
import type { RateLimitDecision } from '../../../../core/ratelimit/interface.ts';
import { requirePermissions } from '../../authorization.ts';
import type { ApiRequest } from '../../endpoint.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { boolean, integer, object, string, type JsonSchema } from '../../schema-builders.ts';
import { namespaceForLimit, namespacePermission } from '../shared/ratelimit-namespaces.ts';

/** One limit request (also an item of `ratelimit.multiLimit`). */
export interface LimitRequestBody {
  namespace: string;
  identifier: string;
  limit: number;
  duration: number;
  cost?: number;
}

/** Schema of one limit request. */
export const limitRequestSchema: JsonSchema = object(
  {
    namespace: string({ minLength: 1, maxLength: 512, description: 'Namespace name or `rlns_…` id.' }),
    identifier: string({ minLength: 1, maxLength: 512 }),
    limit: integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    duration: integer({ minimum: 1000, maximum: 2_592_000_000, description: 'Window in ms.' }),
    cost: integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  },
  ['namespace', 'identifier', 'limit', 'duration'],
);

/** A request resolved to its counter: the limit after override, and the override's id. */
export interface ResolvedLimit {
  request: LimitRequestBody;
  namespaceId: string;
  limit: number;
  durationMs: number;
  overrideId?: string;
}

/** Resolves namespace, permission and override of one request (see file comment). */
export async function resolveLimit(request: ApiRequest<unknown>, body: LimitRequestBody): Promise<ResolvedLimit> {
  const { principal, deps, audit } = request;
  const found = await namespaceForLimit(deps, principal, audit, body.namespace);
  requirePermissions(principal, namespacePermission(principal.workspaceId, found.namespace.id, 'limit'));
  const override = found.overrides.resolve(body.identifier);
  return override === undefined
    ? { request: body, namespaceId: found.namespace.id, limit: body.limit, durationMs: body.duration }
    : { request: body, namespaceId: found.namespace.id, limit: override.limit, durationMs: override.durationMs, overrideId: override.id };
}

/** Decides resolved limits as one all-or-nothing batch. */
export function decide(request: ApiRequest<unknown>, resolved: readonly ResolvedLimit[]): Promise<RateLimitDecision[]> {
  return request.deps.rateLimiter.limit(resolved.map((item) => ({
    workspaceId: request.principal.workspaceId,
    namespace: item.namespaceId,
    identifier: item.request.identifier,
    limit: item.limit,
    durationMs: item.durationMs,
    cost: item.request.cost ?? 1,
  })));
}

/** The `ratelimit.limit` endpoint. */
export const limitEndpoint = defineEndpoint<LimitRequestBody>({
  operationId: 'ratelimit.limit',
  summary: 'Check and consume a rate limit for an identifier.',
  request: limitRequestSchema,
  response: object(
    { limit: integer(), remaining: integer(), reset: integer({ description: 'Absolute Unix ms at which the window ends.' }), success: boolean(), overrideId: string() },
    ['limit', 'remaining', 'reset', 'success'],
  ),
  errorStatuses: [410],
  async handler(request) {
    const resolved = await resolveLimit(request, request.body);
    const [decision] = await decide(request, [resolved]);
    const data: Record<string, unknown> = { limit: decision!.limit, remaining: decision!.remaining, reset: decision!.resetMs, success: decision!.passed };
    if (resolved.overrideId !== undefined) data['overrideId'] = resolved.overrideId;
    return { data };
  },
});
