/**
 * `keys.getKey` (spec api.md §3.3): a key of the caller's workspace by id, as `KeyResponseData`.
 * Needs `read_key` on its API (`api.<id>.read_key`, `api.*.read_key`, or URN
 * `keyspaces/<ks>/keys/<keyId>#read_key`), else the 404 of a missing key. `decrypt: true` also
 * needs `decrypt_key` (403: the caller may already read the key) and Vault (412), and returns
 * `plaintext` when the key was created recoverable.
 */
import type { KeyForVerification } from '../../../../core/db/queries/find-key-for-verification.ts';
import { findKeyForVerification } from '../../../../core/db/queries/find-key-for-verification.ts';
import { getEncryptedKey } from '../../../../core/db/queries/encrypted-keys.ts';
import { getKeyById } from '../../../../core/db/queries/keys.ts';
import { Fault } from '../../../../core/fault.ts';
import { anyOf } from '../../../../core/rbac/permission-query.ts';
import { legacyTuple, resourceUrn } from '../../../../core/rbac/required-permissions.ts';
import { requirePermissions, requirePermissionsOrNotFound } from '../../authorization.ts';
import { defineEndpoint, type ApiRequest } from '../../endpoint.ts';
import { keyResponseData, type KeyResponseData } from '../../key-response.ts';
import { notFound } from '../../not-found.ts';
import { boolean, object, string } from '../../schema-builders.ts';
import { keyResponseDataSchema } from '../shared/schemas.ts';

/** Body of `keys.getKey`. */
export interface GetKeyBody {
  keyId: string;
  decrypt?: boolean;
}

/** The `keys.getKey` endpoint. */
export const getKeyEndpoint = defineEndpoint<GetKeyBody>({
  operationId: 'keys.getKey',
  summary: 'Get a key by id (optionally with its plaintext when recoverable).',
  request: object({ keyId: string({ minLength: 3, maxLength: 255, pattern: '^[a-zA-Z0-9_]+$' }), decrypt: boolean() }, ['keyId']),
  response: keyResponseDataSchema,
  errorStatuses: [404, 412],
  async handler(request) {
    const { body, principal, deps } = request;
    const key = await getKeyById(deps.db, body.keyId, { workspaceId: principal.workspaceId });
    const row = key === undefined ? undefined : await findKeyForVerification(deps.db, key.hash);
    if (row === undefined || row.key.forWorkspaceId !== undefined) throw notFound.key();
    return { data: await authorizedKeyResponse(request, row, body.decrypt === true) };
  },
});

/**
 * Checks `read_key` (masked 404) and, for `decrypt`, `decrypt_key`, then builds the response.
 * Shared by getKey and whoami. Throws `notFound.key()` for a deleted API or key space.
 */
export async function authorizedKeyResponse(request: ApiRequest<unknown>, row: KeyForVerification, decrypt: boolean): Promise<KeyResponseData> {
  const { principal, deps } = request;
  const workspaceId = principal.workspaceId;
  if (row.key.workspaceId !== workspaceId || row.api.deletedAtMs !== undefined || row.keySpace.deletedAtMs !== undefined) throw notFound.key();
  const keyPath = `keyspaces/${row.keySpace.id}/keys/${row.key.id}`;
  requirePermissionsOrNotFound(principal, anyOf(legacyTuple('api', row.api.id, 'read_key'), resourceUrn(workspaceId, keyPath, 'read_key')), notFound.key);
  if (!decrypt) return keyResponseData(row);
  requirePermissions(principal, anyOf(legacyTuple('api', row.api.id, 'decrypt_key'), resourceUrn(workspaceId, keyPath, 'decrypt_key')));
  if (deps.vault === undefined) {
    throw Fault.expected('err:unkey:application:precondition_failed', { publicMessage: 'Vault is not configured: keys cannot be decrypted.' });
  }
  const encrypted = await getEncryptedKey(deps.db, workspaceId, row.key.id);
  if (encrypted === undefined) return keyResponseData(row);
  const { plaintext } = await deps.vault.decrypt({ keyring: workspaceId, encrypted: encrypted.encrypted }, { signal: request.ctx.signal });
  return keyResponseData(row, plaintext);
}
