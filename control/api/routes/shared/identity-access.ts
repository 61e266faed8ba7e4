/**
 * Identity lookups shared by the identities.* routes: by `id_…` id or by externalId, in the
 * caller's workspace, and the permission each action needs: `identity.*.<action>` or the URN
 * `identities/<id>#<action>` (`identities/*` for collection-wide actions).
 */
import type { Database } from '../../../../core/db/database.ts';
import { getIdentityByExternalId, getIdentityById, type Identity } from '../../../../core/db/queries/identities.ts';
import { anyOf, perm, type PermissionQuery } from '../../../../core/rbac/permission-query.ts';
import { resourceUrn } from '../../../../core/rbac/required-permissions.ts';
import { requirePermissionsOrNotFound } from '../../authorization.ts';
import { notFound } from '../../not-found.ts';
import type { RootKeyPrincipal } from '../../root-key-auth.ts';

/** `identity.*.<action>` OR the URN for one identity (or all with `*`). */
export function identityPermission(workspaceId: string, identityId: string, action: string): PermissionQuery {
  return anyOf(perm(`identity.*.${action}`), perm(`identity.${identityId}.${action}`), resourceUrn(workspaceId, `identities/${identityId}`, action));
}

/** The live identity named by id or externalId (an id match wins), or `undefined`. */
export async function findIdentity(db: Database, workspaceId: string, identity: string): Promise<Identity | undefined> {
  return (await getIdentityById(db, workspaceId, identity)) ?? (await getIdentityByExternalId(db, workspaceId, identity));
}

/** Finds the identity and checks the action; both failures are the same fresh 404. */
export async function loadIdentityOrNotFound(db: Database, principal: RootKeyPrincipal, identity: string, action: string): Promise<Identity> {
  const found = await findIdentity(db, principal.workspaceId, identity);
  if (found === undefined) throw notFound.identity();
  requirePermissionsOrNotFound(principal, identityPermission(principal.workspaceId, found.id, action), notFound.identity);
  return found;
}
