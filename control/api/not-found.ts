/**
 * The API's "not found" faults, built FRESH on every call (spec api.md §4.4, pitfall §14.15).
 * A handler that must hide a resource from a caller without permission throws the very same
 * fault a missing resource produces: same code, title and detail, and never a wrapped
 * permission error (whose message would name permissions and ids).
 */
import { Fault } from '../../core/fault.ts';

/** One builder per resource; each returns a new expected fault (no stack) with the reference's wording. */
export const notFound = {
  api: (): Fault => Fault.expected('err:unkey:data:api_not_found', { publicMessage: 'The specified API was not found.' }),
  key: (): Fault => Fault.expected('err:unkey:data:key_not_found', { publicMessage: 'The specified key was not found.' }),
  keySpace: (): Fault => Fault.expected('err:unkey:data:key_space_not_found', { publicMessage: 'The specified key space was not found.' }),
  identity: (): Fault => Fault.expected('err:unkey:data:identity_not_found', { publicMessage: 'The specified identity was not found.' }),
  permission: (): Fault => Fault.expected('err:unkey:data:permission_not_found', { publicMessage: 'The specified permission was not found.' }),
  role: (): Fault => Fault.expected('err:unkey:data:role_not_found', { publicMessage: 'The specified role was not found.' }),
  ratelimitNamespace: (): Fault => Fault.expected('err:unkey:data:ratelimit_namespace_not_found', { publicMessage: 'The specified ratelimit namespace was not found.' }),
  ratelimitOverride: (): Fault => Fault.expected('err:unkey:data:ratelimit_override_not_found', { publicMessage: 'The specified ratelimit override was not found.' }),
  migration: (): Fault => Fault.expected('err:unkey:data:migration_not_found', { publicMessage: 'The specified migration was not found.' }),
} as const;
