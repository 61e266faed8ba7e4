/**
 * `apis.listKeys` (spec api.md §3.8): a page of an API's live keys as KeyResponseData, ordered
 * by id; `cursor` is the id of the first key of the page (inclusive), `externalId` filters by
 * identity, `decrypt` adds `plaintext` for recoverable keys through Vault (one bulk call).
 *
 * Requires `read_key` AND `read_api` on the API (URN: `keyspaces/<ks>#read_key` …); without
 * them the same 404 as a missing API. `decrypt` also needs `decrypt_key` (403) and a Vault (412).
 * `revalidateKeysCache` drops the listed keys from every node's verification cache.
 */
import { getEncryptedKeys } from '../../../../core/db/queries/encrypted-keys.ts';
import { findKeysForVerification } from '../../../../core/db/queries/find-key-for-verification.ts';
import { getIdentityByExternalId } from '../../../../core/db/queries/identities.ts';
import { listKeysByKeySpace } from '../../../../core/db/queries/keys.ts';
import { Fault } from '../../../../core/fault.ts';
import { allOf } from '../../../../core/rbac/permission-query.ts';
import { requirePermissions } from '../../authorization.ts';
import type { ApiDependencies } from '../../dependencies.ts';
import { defineEndpoint } from '../../endpoint.ts';
import { keyResponseData, type KeyResponseData } from '../../key-response.ts';
import { array, boolean, object } from '../../schema-builders.ts';
import { invalidateKeyHashes } from '../shared/invalidate.ts';
import { cursorSchema, externalIdSchema, idSchema, keyResponseDataSchema, listLimitSchema } from '../shared/schemas.ts';
import { apiPermission, loadApiOrNotFound, type ApiWithKeySpace } from '../shared/api-access.ts';

/** Body of `apis.listKeys`. */
export interface ListKeysBody {
  apiId: string;
  limit?: number;
  cursor?: string;
  externalId?: string;
  decrypt?: boolean;
  revalidateKeysCache?: boolean;
}

/** The `apis.listKeys` endpoint. */
export const listKeysEndpoint = defineEndpoint<ListKeysBody>({
  operationId: 'apis.listKeys',
  summary: "List an API's keys, paginated.",
  request: object(
    {
      apiId: idSchema(), limit: listLimitSchema(), cursor: cursorSchema, externalId: externalIdSchema,
      decrypt: boolean('Include the plaintext of recoverable keys.'), revalidateKeysCache: boolean('Drop the listed keys from the verification caches.'),
    },
    ['apiId'],
  ),
  response: array(keyResponseDataSchema),
  paginated: true,
  errorStatuses: [404, 412],
  async handler({ body, principal, deps }) {
    const workspaceId = principal.workspaceId;
    const action = (found: ApiWithKeySpace, name: string) => apiPermission(workspaceId, found.api.id, found.keySpace.id, name);
    const found = await loadApiOrNotFound(deps.db, principal, body.apiId, 'read_key', (api) => allOf(action(api, 'read_key'), action(api, 'read_api')));
    const decrypt = body.decrypt === true;
    if (decrypt) {
      requirePermissions(principal, action(found, 'decrypt_key'));
      if (deps.vault === undefined) throw Fault.expected('err:unkey:application:precondition_failed', { publicMessage: 'Decrypting keys needs a Vault, and none is configured.' });
    }
    let identityId: string | undefined;
    if (body.externalId !== undefined) {
      const identity = await getIdentityByExternalId(deps.db, workspaceId, body.externalId);
      if (identity === undefined) return { data: [], pagination: { hasMore: false } };
      identityId = identity.id;
    }
    const page = await listKeysByKeySpace(deps.db, found.keySpace.id, { cursor: body.cursor, limit: body.limit ?? 100, identityId });
    const plaintexts = decrypt ? await decryptAll(deps, workspaceId, page.items.map((key) => key.id)) : new Map<string, string>();
    // One batch for the page (two statements), not two queries per key.
    const rows = await findKeysForVerification(deps.db, page.items.map((key) => key.hash));
    const data: KeyResponseData[] = [];
    for (const key of page.items) {
      const row = rows.get(key.hash);
      if (row !== undefined) data.push(keyResponseData(row, plaintexts.get(key.id)));
    }
    if (body.revalidateKeysCache === true) await invalidateKeyHashes(deps, page.items.map((key) => key.hash));
    return page.nextCursor === undefined ? { data, pagination: { hasMore: false } } : { data, pagination: { hasMore: true, cursor: page.nextCursor } };
  },
});

async function decryptAll(deps: ApiDependencies, workspaceId: string, keyIds: string[]): Promise<Map<string, string>> {
  const encrypted = await getEncryptedKeys(deps.db, workspaceId, keyIds);
  if (encrypted.size === 0 || deps.vault === undefined) return new Map();
  const items: Record<string, string> = {};
  for (const [keyId, row] of encrypted) items[keyId] = row.encrypted;
  const result = await deps.vault.decryptBulk({ keyring: workspaceId, items });
  return new Map(Object.entries(result.items));
}
