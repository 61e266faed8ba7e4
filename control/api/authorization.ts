/**
 * Root-key authorization for handlers (spec api.md §5.3, §4.4). A handler builds its requirement
 * with `anyOf / allOf / legacyTuple / resourceUrn` (core/rbac) and calls one of these:
 * - {@link requirePermissions}: 403 naming what is missing; for resources whose existence the
 *   caller may know (collection-level actions like creating an API).
 * - {@link requirePermissionsOrNotFound}: the resource's own fresh 404 (existence masking);
 *   for everything addressed by id.
 */
import { Fault } from '../../core/fault.ts';
import { formatPermissionQuery, type PermissionQuery } from '../../core/rbac/permission-query.ts';
import type { RootKeyPrincipal } from './root-key-auth.ts';

/** Throws 403 `insufficient_permissions` (detail names the requirement) unless the root key satisfies it. */
export function requirePermissions(principal: RootKeyPrincipal, requirement: PermissionQuery): void {
  if (principal.permissions.satisfies(requirement)) return;
  throw Fault.expected('err:unkey:authorization:insufficient_permissions', {
    publicMessage: `The root key lacks the required permissions; it needs: ${formatPermissionQuery(requirement)}.`,
  });
}

/**
 * Throws `notFound()` (a freshly built 404, identical to the real one) unless the root key
 * satisfies the requirement. Called after the resource was found, before anything about it is
 * revealed or changed.
 */
export function requirePermissionsOrNotFound(principal: RootKeyPrincipal, requirement: PermissionQuery, notFound: () => Fault): void {
  if (!principal.permissions.satisfies(requirement)) throw notFound();
}
