/**
 * Cache invalidation after a committed write: publishes on the bus, which drops the entries on
 * this node before it resolves and then on every peer (api-common design). When the bus refuses
 * (closed), the local entries are still dropped so this node never serves what it just changed.
 */
import { KEY_CACHE_NAME } from '../../../../core/verification/key-verifier.ts';
import type { ApiDependencies } from '../../dependencies.ts';

/** Drops cached verification entries of these key hashes everywhere. Called after commit; never throws. */
export async function invalidateKeyHashes(deps: ApiDependencies, hashes: readonly string[]): Promise<void> {
  if (hashes.length === 0) return;
  await publishOrDrop(deps, KEY_CACHE_NAME, hashes, () => deps.caches.keysByHash.remove(hashes));
}

/** Keys of every live key of the identity (their cached entries embed the identity). */
export async function keyHashesOfIdentity(deps: ApiDependencies, identityId: string): Promise<string[]> {
  const rows = await deps.db.query<{ hash: string }>('SELECT `hash` FROM `keys` WHERE `identity_id` = ? AND `deleted_at_m` IS NULL LIMIT 100000', [identityId]);
  return rows.map((row) => String(row.hash));
}

/** Publishes an invalidation; on failure runs `dropLocally` and logs. Never throws. */
export async function publishOrDrop(deps: ApiDependencies, cache: string, keys: readonly string[], dropLocally: () => void): Promise<void> {
  try {
    await deps.invalidation.publish({ cache, keys });
  } catch (err) {
    dropLocally();
    deps.logger.warn({ err, cache }, 'publishing a cache invalidation failed; dropped locally only');
  }
}
