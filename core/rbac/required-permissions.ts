/**
 * Builders for what handlers require of a root key (spec api.md §5.3, per-endpoint table):
 * the legacy tuple for the specific resource OR'd with its literal `*` form, and URN forms.
 * Example (verifyKey): `anyOf(legacyTuple('api', apiId, 'verify_key'),
 * resourceUrn(ws, `keyspaces/${ks}/keys/${keyId}`, 'verify_key'))`.
 */
import { anyOf, perm, type PermissionQuery } from './permission-query.ts';
import { RESOURCE_PERMISSION_SCHEME } from './resource-permission.ts';

/** The resource types of legacy tuples. */
export type LegacyResourceType = 'api' | 'ratelimit' | 'rbac' | 'identity' | 'project' | 'app' | 'environment' | 'portal' | 'workspace';

/**
 * `<type>.*.<action>` OR `<type>.<id>.<action>`. The `*` here is a literal string the root key
 * must hold, not a wildcard. Pass `resourceId` `'*'` (or omit it) for collection-wide actions.
 */
export function legacyTuple(resourceType: LegacyResourceType, resourceId: string | undefined, action: string): PermissionQuery {
  const wildcard = perm(`${resourceType}.*.${action}`);
  if (resourceId === undefined || resourceId === '*') return wildcard;
  return anyOf(wildcard, perm(`${resourceType}.${resourceId}.${action}`));
}

/** `unkey:v1:<ws>:<path>#<action>`: a concrete URN requirement, matched by the key's URN patterns. */
export function resourceUrn(workspaceId: string, path: string, action: string): PermissionQuery {
  return perm(`${RESOURCE_PERMISSION_SCHEME}${workspaceId}:${path}#${action}`);
}
