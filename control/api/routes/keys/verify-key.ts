/**
 * `keys.verifyKey` (spec api.md §3.2, §7): always 200 with the outcome in `data.valid` and
 * `data.code`; runs the shared verification engine (`core/verification/key-verifier.ts`).
 * The root key must hold `verify_key` on the key's API (`api.<id>.verify_key`, `api.*.verify_key`
 * or a URN covering `keyspaces/<ks>/keys/<keyId>#verify_key`); otherwise, and for keys of another
 * workspace, the answer is `{valid:false, code:"NOT_FOUND"}` (existence masking, §14.3).
 * HTTP errors: 400 (body, permission-query syntax), 401/403 (root key), 412 (unknown rate-limit name).
 */
import { VERIFICATION_CODES, type VerifyKeyInput } from '../../../../core/verification/interface.ts';
import type { VerificationKeyView } from '../../../../core/verification/interface.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { array, boolean, integer, object, string } from '../../schema-builders.ts';
import { identityResponseSchema, metaSchema } from '../shared/schemas.ts';

/** The `keys.verifyKey` endpoint. */
export const verifyKeyEndpoint = defineEndpoint<VerifyKeyInput>({
  operationId: 'keys.verifyKey',
  summary: 'Verify a key: validity, permissions, rate limits and credits. Always 200; see data.code.',
  request: object({
    key: string({ minLength: 1, maxLength: 512, description: 'The key exactly as the user sent it, prefix included.' }),
    tags: array(string({ minLength: 1, maxLength: 512 }), { maxItems: 20 }),
    permissions: string({ minLength: 1, maxLength: 1000, description: 'Permission query, e.g. "(a.read OR a.write) AND b.view".' }),
    credits: object({ cost: integer({ minimum: 0, maximum: 1_000_000_000_000 }) }, ['cost']),
    ratelimits: array(object({
      name: string({ minLength: 3, maxLength: 255 }),
      cost: integer({ minimum: 0 }),
      limit: integer({ minimum: 0 }),
      duration: integer({ minimum: 0 }),
    }, ['name']), { maxItems: 50 }),
    migrationId: string({ minLength: 1, maxLength: 256 }),
  }, ['key']),
  response: object({
    valid: boolean(),
    code: string({ enum: VERIFICATION_CODES }),
    keyId: string(), name: string(), meta: metaSchema, expires: integer(), credits: integer(), enabled: boolean(),
    permissions: array(string()), roles: array(string()), identity: identityResponseSchema,
    ratelimits: array(object({
      id: string(), name: string(), limit: integer(), duration: integer(), reset: integer({ description: 'Absolute Unix ms when the window ends.' }),
      remaining: integer(), exceeded: boolean(), autoApply: boolean(),
    }, ['id', 'name', 'limit', 'duration', 'reset', 'remaining', 'exceeded', 'autoApply'])),
  }, ['valid', 'code']),
  errorStatuses: [412],
  handler({ body, principal, deps, requestId, clientIp, ctx }) {
    const permissions = principal.permissions;
    const workspaceId = principal.workspaceId;
    // Cheapest checks first: the common grants are exact strings.
    const authorize = (key: VerificationKeyView): boolean =>
      permissions.has('api.*.verify_key') ||
      permissions.has(`api.${key.apiId}.verify_key`) ||
      permissions.has(`unkey:v1:${workspaceId}:keyspaces/${key.keySpaceId}/keys/${key.keyId}#verify_key`);
    // verifyNow answers a cached key without a promise (the common case); it throws what
    // verify would reject with.
    const data = deps.keyVerifier.verifyNow(body, {
      workspaceId,
      authorize,
      clientIp,
      requestId,
      // The kernel's arrival time (performance.now()), so the event's latency covers the whole request.
      startedAtMs: ctx.startedAtMs,
    });
    return data instanceof Promise ? data.then((settled) => ({ data: settled })) : { data };
  },
});
