/**
 * The root workspace: where root keys live (spec api.md §5.1). A root key is a key of the root
 * workspace's key space whose `forWorkspaceId` names the workspace it manages; its permissions
 * are slugs granted in the root workspace. `bootstrapApi` prepares an empty database on first
 * start (root workspace, one workspace to manage, one root key holding every permission);
 * tests use `seedRootWorkspace` and `insertRootKey` directly.
 */
import type { Clock } from '../../core/clock.ts';
import type { Database } from '../../core/db/database.ts';
import { insertApi } from '../../core/db/queries/apis.ts';
import { insertKeySpace } from '../../core/db/queries/key-spaces.ts';
import { insertKey } from '../../core/db/queries/keys.ts';
import { addKeyPermissions, ensurePermissions } from '../../core/db/queries/permissions.ts';
import { insertWorkspace } from '../../core/db/queries/workspaces.ts';
import { newId } from '../../core/id.ts';
import { generateKey } from '../../core/keys/key-generator.ts';

/** Prefix of generated root keys (the reference's dashboard uses `unkey`). */
export const ROOT_KEY_PREFIX = 'kg_root';

/** Legacy actions by resource type (api.md §5.3), for "every permission". */
export const LEGACY_ACTIONS = {
  api: ['read_api', 'create_api', 'delete_api', 'update_api', 'create_key', 'update_key', 'delete_key', 'encrypt_key', 'decrypt_key', 'read_key', 'verify_key', 'read_analytics'],
  ratelimit: ['limit', 'create_namespace', 'read_namespace', 'update_namespace', 'delete_namespace', 'set_override', 'read_override', 'delete_override', 'list_overrides'],
  rbac: [
    'create_permission', 'update_permission', 'delete_permission', 'read_permission', 'create_role', 'update_role', 'delete_role', 'read_role',
    'add_permission_to_key', 'remove_permission_from_key', 'add_role_to_key', 'remove_role_from_key', 'add_permission_to_role', 'remove_permission_from_role',
  ],
  identity: ['create_identity', 'read_identity', 'update_identity', 'delete_identity'],
} as const;

/** Every permission a workspace admin root key holds: each `<type>.*.<action>` plus the URN admin grant. */
export function allRootKeyPermissions(workspaceId: string): string[] {
  const permissions: string[] = [];
  for (const [type, actions] of Object.entries(LEGACY_ACTIONS)) for (const action of actions) permissions.push(`${type}.*.${action}`);
  permissions.push(`unkey:v1:${workspaceId}:**#*`);
  return permissions;
}

/** Ids of the root workspace and the key space that holds root keys. */
export interface RootWorkspace {
  rootWorkspaceId: string;
  rootKeySpaceId: string;
  rootApiId: string;
}

/** Creates the root workspace with its key space and API. */
export async function seedRootWorkspace(db: Database, clock: Clock): Promise<RootWorkspace> {
  const rootWorkspaceId = newId('ws');
  const rootKeySpaceId = newId('ks');
  const rootApiId = newId('api');
  const nowMs = clock.nowMs();
  await db.transaction(async (tx) => {
    await insertWorkspace(tx, { id: rootWorkspaceId, name: 'keygate root', slug: 'keygate-root', createdAtMs: nowMs });
    await insertKeySpace(tx, { id: rootKeySpaceId, workspaceId: rootWorkspaceId, defaultPrefix: ROOT_KEY_PREFIX, createdAtMs: nowMs });
    await insertApi(tx, { id: rootApiId, workspaceId: rootWorkspaceId, name: 'root keys', keySpaceId: rootKeySpaceId, createdAtMs: nowMs });
  });
  return { rootWorkspaceId, rootKeySpaceId, rootApiId };
}

/** Options of {@link insertRootKey}. */
export interface NewRootKey {
  /** The workspace the key manages. */
  forWorkspaceId: string;
  permissions: readonly string[];
  name?: string;
  enabled?: boolean;
  expiresAtMs?: number;
}

/** Creates a root key with `permissions` (slugs created in the root workspace as needed); returns the plaintext once. */
export async function insertRootKey(db: Database, root: RootWorkspace, clock: Clock, rootKey: NewRootKey): Promise<{ key: string; keyId: string }> {
  const generated = generateKey({ prefix: ROOT_KEY_PREFIX });
  const keyId = newId('key');
  const nowMs = clock.nowMs();
  await db.transaction(async (tx) => {
    await insertKey(tx, {
      id: keyId,
      keySpaceId: root.rootKeySpaceId,
      workspaceId: root.rootWorkspaceId,
      hash: generated.hash,
      start: generated.start,
      forWorkspaceId: rootKey.forWorkspaceId,
      name: rootKey.name,
      enabled: rootKey.enabled,
      expiresAtMs: rootKey.expiresAtMs,
      createdAtMs: nowMs,
    });
    const permissions = await ensurePermissions(tx, root.rootWorkspaceId, rootKey.permissions, () => newId('perm'), nowMs);
    await addKeyPermissions(tx, { workspaceId: root.rootWorkspaceId, keyId, permissionIds: permissions.map((permission) => permission.id), nowMs });
  });
  return { key: generated.key, keyId };
}

/** What {@link bootstrapApi} did. */
export type BootstrapResult =
  | { created: false }
  | { created: true; workspaceId: string; rootKey: string; rootKeyId: string; root: RootWorkspace };

/**
 * First start: when the database holds no workspace at all, creates the root workspace, a
 * workspace named `default`, and a root key for it with every permission. Returns the plaintext
 * root key ONCE; on every later start (any workspace exists) it does nothing.
 */
export async function bootstrapApi(db: Database, clock: Clock): Promise<BootstrapResult> {
  const existing = await db.query<{ count: number | bigint | string }>('SELECT COUNT(*) AS `count` FROM `workspaces`');
  if (Number(existing[0]?.count ?? 0) > 0) return { created: false };
  const root = await seedRootWorkspace(db, clock);
  const workspaceId = newId('ws');
  await insertWorkspace(db, { id: workspaceId, name: 'default', slug: 'default', createdAtMs: clock.nowMs() });
  const { key, keyId } = await insertRootKey(db, root, clock, { forWorkspaceId: workspaceId, permissions: allRootKeyPermissions(workspaceId), name: 'bootstrap root key' });
  return { created: true, workspaceId, rootKey: key, rootKeyId: keyId, root };
}
