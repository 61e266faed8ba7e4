/**
 * `ratelimit.multiLimit` (spec api.md §3.9): 1–100 limit requests decided ALL-OR-NOTHING: costs
 * are consumed only when every item passes; each item reports its own check, and in a failed
 * batch a passing item reports its cost refunded. Namespaces, permissions and overrides are
 * resolved per item exactly as in `ratelimit.limit`.
 */
import { defineEndpoint } from '../../endpoint.ts';
import { array, boolean, integer, object, string } from '../../schema-builders.ts';
import { decide, limitRequestSchema, resolveLimit, type LimitRequestBody, type ResolvedLimit } from './limit.ts';

/** Most items of one multiLimit call. */
export const MAX_MULTI_LIMIT_ITEMS = 100;

/** The `ratelimit.multiLimit` endpoint. */
export const multiLimitEndpoint = defineEndpoint<LimitRequestBody[]>({
  operationId: 'ratelimit.multiLimit',
  summary: 'Check several rate limits at once, all-or-nothing.',
  request: array(limitRequestSchema, { minItems: 1, maxItems: MAX_MULTI_LIMIT_ITEMS }),
  response: object(
    {
      passed: boolean(),
      limits: array(object(
        { namespace: string(), identifier: string(), limit: integer(), remaining: integer(), reset: integer(), passed: boolean(), overrideId: string() },
        ['namespace', 'identifier', 'limit', 'remaining', 'reset', 'passed'],
      )),
    },
    ['passed', 'limits'],
  ),
  errorStatuses: [410],
  async handler(request) {
    const resolved: ResolvedLimit[] = [];
    for (const item of request.body) resolved.push(await resolveLimit(request, item));
    const decisions = await decide(request, resolved);
    const limits = decisions.map((decision, index) => {
      const item = resolved[index]!;
      const view: Record<string, unknown> = {
        namespace: item.request.namespace, identifier: item.request.identifier, limit: decision.limit,
        remaining: decision.remaining, reset: decision.resetMs, passed: decision.passed,
      };
      if (item.overrideId !== undefined) view['overrideId'] = item.overrideId;
      return view;
    });
    return { data: { passed: decisions.every((decision) => decision.passed), limits } };
  },
});
