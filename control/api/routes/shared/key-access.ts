/**
 * Loading a key for a key-management handler, with workspace scoping and existence masking
 * (api.md §4.4, §5.3): a key of another workspace, a deleted key, a key whose API is deleted,
 * and a key the root key may not act on all produce the same fresh 404 `key_not_found`.
 */
import type { Database } from '../../../../core/db/database.ts';
import { getKeyById, type Key } from '../../../../core/db/queries/keys.ts';
import { anyOf, type PermissionQuery } from '../../../../core/rbac/permission-query.ts';
import { legacyTuple, resourceUrn } from '../../../../core/rbac/required-permissions.ts';
import { requirePermissionsOrNotFound } from '../../authorization.ts';
import { notFound } from '../../not-found.ts';
import type { RootKeyPrincipal } from '../../root-key-auth.ts';

/** A live key with the id of its live API. */
export interface KeyWithApi {
  key: Key;
  apiId: string;
}

/** The key with this id in the caller's workspace whose API is live, or `undefined`. */
export async function findKeyWithApi(db: Database, workspaceId: string, keyId: string): Promise<KeyWithApi | undefined> {
  const key = await getKeyById(db, keyId, { workspaceId });
  if (key === undefined) return undefined;
  const rows = await db.query<{ id: string }>(
    'SELECT `id` FROM `apis` WHERE `key_auth_id` = ? AND `workspace_id` = ? AND `deleted_at_m` IS NULL',
    [key.keySpaceId, workspaceId],
  );
  const apiId = rows[0]?.id;
  return apiId === undefined ? undefined : { key, apiId: String(apiId) };
}

/** `api.{*,<apiId>}.<action>` OR the URN `keyspaces/<ks>/keys/<keyId>#<action>`. */
export function keyPermission(principal: RootKeyPrincipal, found: KeyWithApi, action: string): PermissionQuery {
  return anyOf(
    legacyTuple('api', found.apiId, action),
    resourceUrn(principal.workspaceId, `keyspaces/${found.key.keySpaceId}/keys/${found.key.id}`, action),
  );
}

/**
 * Loads the key and checks `requirement(found)` (default: the key's `action` permission);
 * both a missing key and a missing permission throw the same fresh 404.
 */
export async function loadKeyOrNotFound(
  db: Database,
  principal: RootKeyPrincipal,
  keyId: string,
  action: string,
  requirement?: (found: KeyWithApi) => PermissionQuery,
): Promise<KeyWithApi> {
  const found = await findKeyWithApi(db, principal.workspaceId, keyId);
  if (found === undefined) throw notFound.key();
  requirePermissionsOrNotFound(principal, requirement === undefined ? keyPermission(principal, found, action) : requirement(found), notFound.key);
  return found;
}
