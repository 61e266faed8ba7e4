/**
 * Loading an API for a handler, with workspace scoping and existence masking (api.md §4.4, §5.3):
 * the API-level counterpart of `key-access.ts`. An API of another workspace, a deleted API and an
 * API the root key may not act on all produce the same fresh 404 `api_not_found`.
 */
import type { Database } from '../../../../core/db/database.ts';
import { getApiWithKeySpace, type Api } from '../../../../core/db/queries/apis.ts';
import type { KeySpace } from '../../../../core/db/queries/key-spaces.ts';
import { anyOf, type PermissionQuery } from '../../../../core/rbac/permission-query.ts';
import { legacyTuple, resourceUrn } from '../../../../core/rbac/required-permissions.ts';
import { requirePermissionsOrNotFound } from '../../authorization.ts';
import { notFound } from '../../not-found.ts';
import type { RootKeyPrincipal } from '../../root-key-auth.ts';

/** A live API and its key space. */
export interface ApiWithKeySpace {
  api: Api;
  keySpace: KeySpace;
}

/** `api.{*,<apiId>}.<action>` OR the URN `keyspaces/<keySpaceId>#<action>`. */
export function apiPermission(workspaceId: string, apiId: string, keySpaceId: string, action: string): PermissionQuery {
  return anyOf(legacyTuple('api', apiId, action), resourceUrn(workspaceId, `keyspaces/${keySpaceId}`, action));
}

/**
 * Loads the API and checks `requirement(found)` (default: the API's `action` permission); both a
 * missing API and a missing permission throw the same fresh 404.
 */
export async function loadApiOrNotFound(
  db: Database,
  principal: RootKeyPrincipal,
  apiId: string,
  action: string,
  requirement?: (found: ApiWithKeySpace) => PermissionQuery,
): Promise<ApiWithKeySpace> {
  const found = await getApiWithKeySpace(db, principal.workspaceId, apiId);
  if (found === undefined) throw notFound.api();
  const required = requirement === undefined
    ? apiPermission(principal.workspaceId, found.api.id, found.keySpace.id, action)
    : requirement(found);
  requirePermissionsOrNotFound(principal, required, notFound.api);
  return found;
}
