/**
 * The key-management endpoints beyond create/verify/get (keys.*, apis.listKeys/deleteApi,
 * identities.*, permissions.*, ratelimit.*), in the order of the OpenAPI document; spread into
 * `apiEndpoints` by `index.ts`.
 */
import type { Endpoint } from '../endpoint.ts';
import { deleteApiEndpoint } from './apis/delete-api.ts';
import { listKeysEndpoint } from './apis/list-keys.ts';
import { createIdentityEndpoint } from './identities/create-identity.ts';
import { deleteIdentityEndpoint } from './identities/delete-identity.ts';
import { getIdentityEndpoint } from './identities/get-identity.ts';
import { listIdentitiesEndpoint } from './identities/list-identities.ts';
import { updateIdentityEndpoint } from './identities/update-identity.ts';
import { addPermissionsEndpoint } from './keys/add-permissions.ts';
import { addRolesEndpoint } from './keys/add-roles.ts';
import { deleteKeyEndpoint } from './keys/delete-key.ts';
import { migrateKeysEndpoint } from './keys/migrate-keys.ts';
import { removePermissionsEndpoint } from './keys/remove-permissions.ts';
import { removeRolesEndpoint } from './keys/remove-roles.ts';
import { rerollKeyEndpoint } from './keys/reroll-key.ts';
import { setPermissionsEndpoint } from './keys/set-permissions.ts';
import { setRolesEndpoint } from './keys/set-roles.ts';
import { updateCreditsEndpoint } from './keys/update-credits.ts';
import { updateKeyEndpoint } from './keys/update-key.ts';
import { createPermissionEndpoint } from './permissions/create-permission.ts';
import { createRoleEndpoint } from './permissions/create-role.ts';
import { deletePermissionEndpoint } from './permissions/delete-permission.ts';
import { deleteRoleEndpoint } from './permissions/delete-role.ts';
import { getPermissionEndpoint } from './permissions/get-permission.ts';
import { getRoleEndpoint } from './permissions/get-role.ts';
import { listPermissionsEndpoint } from './permissions/list-permissions.ts';
import { listRolesEndpoint } from './permissions/list-roles.ts';
import { setRolePermissionsEndpoint } from './permissions/set-role-permissions.ts';
import { deleteOverrideEndpoint } from './ratelimit/delete-override.ts';
import { getOverrideEndpoint } from './ratelimit/get-override.ts';
import { limitEndpoint } from './ratelimit/limit.ts';
import { listOverridesEndpoint } from './ratelimit/list-overrides.ts';
import { multiLimitEndpoint } from './ratelimit/multi-limit.ts';
import { setOverrideEndpoint } from './ratelimit/set-override.ts';

/** The management endpoints (see the file comment). */
export const managementEndpoints: readonly Endpoint[] = [
  // apis
  listKeysEndpoint, deleteApiEndpoint,
  // keys
  updateKeyEndpoint, deleteKeyEndpoint, updateCreditsEndpoint,
  addPermissionsEndpoint, removePermissionsEndpoint, setPermissionsEndpoint,
  addRolesEndpoint, removeRolesEndpoint, setRolesEndpoint,
  rerollKeyEndpoint, migrateKeysEndpoint,
  // identities
  createIdentityEndpoint, getIdentityEndpoint, listIdentitiesEndpoint, updateIdentityEndpoint, deleteIdentityEndpoint,
  // permissions and roles
  createPermissionEndpoint, getPermissionEndpoint, listPermissionsEndpoint, deletePermissionEndpoint,
  createRoleEndpoint, getRoleEndpoint, listRolesEndpoint, deleteRoleEndpoint, setRolePermissionsEndpoint,
  // ratelimit
  limitEndpoint, multiLimitEndpoint, setOverrideEndpoint, getOverrideEndpoint, listOverridesEndpoint, deleteOverrideEndpoint,
] as readonly Endpoint[];
