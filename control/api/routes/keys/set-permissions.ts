/**
 * `keys.setPermissions` (spec api.md §3.7, auth table §5.3): see `../shared/key-grants.ts` for the
 * semantics, authorization and audit events shared by the six grant operations.
 */
import { keyGrantEndpoint } from '../shared/key-grants.ts';

/** The `keys.setPermissions` endpoint. */
export const setPermissionsEndpoint = keyGrantEndpoint('permissions', 'set');
