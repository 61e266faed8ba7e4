/**
 * Rate-limit namespaces for the ratelimit.* routes: lookup by name or id through the namespace
 * cache of `ApiCaches` (namespace + compiled overrides, see ratelimit-namespace-cache.ts) with 410
 * for a deleted namespace; auto-creation for `ratelimit.limit`; permission builders.
 */
import type { Database } from '../../../../core/db/database.ts';
import { findRatelimitNamespace, getRatelimitNamespaceByName, insertRatelimitNamespace, type RatelimitNamespace } from '../../../../core/db/queries/ratelimit-namespaces.ts';
import { mapRatelimitOverride, RATELIMIT_OVERRIDE_COLUMNS, type RatelimitOverride } from '../../../../core/db/queries/ratelimit-overrides.ts';
import { Fault } from '../../../../core/fault.ts';
import { newId } from '../../../../core/id.ts';
import { anyOf, perm, type PermissionQuery } from '../../../../core/rbac/permission-query.ts';
import { resourceUrn } from '../../../../core/rbac/required-permissions.ts';
import { OverrideResolver } from '../../../../core/ratelimit/override-resolver.ts';
import type { AuditContext } from '../../audit-log.ts';
import type { ApiDependencies } from '../../dependencies.ts';
import { notFound } from '../../not-found.ts';
import { RATELIMIT_NAMESPACE_CACHE_NAME, type CachedNamespace } from '../../ratelimit-namespace-cache.ts';
import type { RootKeyPrincipal } from '../../root-key-auth.ts';
import { publishOrDrop } from './invalidate.ts';

/** Most overrides loaded per namespace. */
export const MAX_OVERRIDES_PER_NAMESPACE = 10_000;

/** The namespace named by id or name (deleted ones included), through the cache. */
export async function lookupNamespace(deps: ApiDependencies, workspaceId: string, nameOrId: string): Promise<CachedNamespace | undefined> {
  return deps.caches.ratelimitNamespaces.get(`${workspaceId}:${nameOrId}`, async () => {
    const namespace = await findRatelimitNamespace(deps.db, workspaceId, nameOrId);
    return namespace === undefined ? undefined : { namespace, overrides: new OverrideResolver(await loadOverrides(deps.db, namespace.id)) };
  });
}

/** Drops the namespace's cache entries (by name and id) on every node. Called after commit. */
export async function invalidateNamespace(deps: ApiDependencies, namespace: RatelimitNamespace): Promise<void> {
  const keys = [`${namespace.workspaceId}:${namespace.id}`, `${namespace.workspaceId}:${namespace.name}`];
  await publishOrDrop(deps, RATELIMIT_NAMESPACE_CACHE_NAME, keys, () => deps.caches.ratelimitNamespaces.remove(keys));
}

/** 410 `ratelimit_namespace_gone`. */
export function namespaceGone(): Fault {
  return Fault.expected('err:unkey:data:ratelimit_namespace_gone', { publicMessage: 'The ratelimit namespace was deleted.' });
}

/** `ratelimit.{*,<nsId>}.<action>` OR the URN `ratelimit/namespaces/<nsId>#<action>`. */
export function namespacePermission(workspaceId: string, namespaceId: string, action: string | readonly string[]): PermissionQuery {
  const actions = typeof action === 'string' ? [action] : action;
  return anyOf(...actions.flatMap((name) => [
    perm(`ratelimit.*.${name}`), perm(`ratelimit.${namespaceId}.${name}`), resourceUrn(workspaceId, `ratelimit/namespaces/${namespaceId}`, name),
  ]));
}

/**
 * The live namespace for an override operation: missing → 404, deleted → 410, no permission →
 * the same 404 as a missing namespace. Overrides never auto-create namespaces.
 */
export async function namespaceForOverrides(deps: ApiDependencies, principal: RootKeyPrincipal, nameOrId: string, action: string | readonly string[]): Promise<CachedNamespace> {
  const found = await lookupNamespace(deps, principal.workspaceId, nameOrId);
  if (found === undefined) throw notFound.ratelimitNamespace();
  if (!principal.permissions.satisfies(namespacePermission(principal.workspaceId, found.namespace.id, action))) throw notFound.ratelimitNamespace();
  if (found.namespace.deletedAtMs !== undefined) throw namespaceGone();
  return found;
}

/**
 * The namespace for `ratelimit.limit`: found (410 when deleted), or created by name when the root
 * key holds `ratelimit.*.create_namespace` (403 otherwise). A concurrent creator of the same name
 * is not an error: its namespace is used.
 */
export async function namespaceForLimit(deps: ApiDependencies, principal: RootKeyPrincipal, audit: AuditContext, nameOrId: string): Promise<CachedNamespace> {
  const workspaceId = principal.workspaceId;
  let found = await lookupNamespace(deps, workspaceId, nameOrId);
  if (found === undefined) {
    const createRight = anyOf(perm('ratelimit.*.create_namespace'), resourceUrn(workspaceId, 'ratelimit/namespaces/*', 'create_namespace'));
    if (!principal.permissions.satisfies(createRight)) {
      throw Fault.expected('err:unkey:authorization:insufficient_permissions', {
        publicMessage: 'The namespace does not exist, and creating it needs ratelimit.*.create_namespace.',
      });
    }
    await createNamespace(deps, audit, workspaceId, nameOrId);
    // Published on the bus (the cache is bound with publishLocalRemovals): every node may hold
    // the same "no such namespace" entry.
    deps.caches.ratelimitNamespaces.remove(`${workspaceId}:${nameOrId}`);
    found = await lookupNamespace(deps, workspaceId, nameOrId);
    if (found === undefined) throw new Fault('err:unkey:application:assertion_failed', { internalMessage: 'namespace vanished right after create' });
  }
  if (found.namespace.deletedAtMs !== undefined) throw namespaceGone();
  return found;
}

async function createNamespace(deps: ApiDependencies, audit: AuditContext, workspaceId: string, name: string): Promise<void> {
  const id = newId('rlns');
  try {
    await deps.db.transaction(async (tx) => {
      await insertRatelimitNamespace(tx, { id, workspaceId, name, createdAtMs: deps.clock.nowMs() });
      await deps.audit.write(tx, audit, [{ event: 'ratelimitNamespace.create', description: `Created ${id} (${name})`, targets: [{ type: 'ratelimitNamespace', id, name }] }]);
    });
  } catch (err) {
    if (err instanceof Fault && err.code === 'err:keygate:database:conflict' && (await getRatelimitNamespaceByName(deps.db, workspaceId, name)) !== undefined) return;
    throw err;
  }
}

async function loadOverrides(db: Database, namespaceId: string): Promise<RatelimitOverride[]> {
  const rows = await db.query(
    `SELECT ${RATELIMIT_OVERRIDE_COLUMNS.map((column) => `\`${column}\``).join(', ')} FROM \`ratelimit_overrides\` WHERE \`namespace_id\` = ? AND \`deleted_at_m\` IS NULL ORDER BY \`pk\` LIMIT ?`,
    [namespaceId, MAX_OVERRIDES_PER_NAMESPACE],
  );
  return rows.map((row) => mapRatelimitOverride(row));
}
