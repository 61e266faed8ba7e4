/**
 * `ratelimit.getOverride` (spec api.md §3.9): the override whose identifier is EXACTLY the given
 * one (no pattern matching). Requires `ratelimit.{*,<nsId>}.read_override`, else the namespace's
 * 404; 404 `ratelimit_override_not_found` when there is none; 410 for a deleted namespace.
 */
import { getRatelimitOverrideByIdentifier } from '../../../../core/db/queries/ratelimit-overrides.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { notFound } from '../../not-found.ts';
import { integer, object, string } from '../../schema-builders.ts';
import { namespaceForOverrides } from '../shared/ratelimit-namespaces.ts';

/** Body of `ratelimit.getOverride` and `ratelimit.deleteOverride`. */
export interface OverrideAddressBody {
  namespace: string;
  identifier: string;
}

/** RatelimitOverride on the wire. */
export const ratelimitOverrideSchema = object(
  { overrideId: string(), identifier: string(), limit: integer(), duration: integer() },
  ['overrideId', 'identifier', 'limit', 'duration'],
);

/** The `ratelimit.getOverride` endpoint. */
export const getOverrideEndpoint = defineEndpoint<OverrideAddressBody>({
  operationId: 'ratelimit.getOverride',
  summary: 'Get the override of an identifier (exact match).',
  request: object({ namespace: string({ minLength: 1, maxLength: 512 }), identifier: string({ minLength: 1, maxLength: 512 }) }, ['namespace', 'identifier']),
  response: ratelimitOverrideSchema,
  errorStatuses: [404, 410],
  async handler({ body, principal, deps }) {
    const { namespace } = await namespaceForOverrides(deps, principal, body.namespace, 'read_override');
    const override = await getRatelimitOverrideByIdentifier(deps.db, namespace.id, body.identifier);
    if (override === undefined) throw notFound.ratelimitOverride();
    return { data: { overrideId: override.id, identifier: override.identifier, limit: override.limit, duration: override.durationMs } };
  },
});
