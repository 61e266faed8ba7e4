/**
 * `findKeyForVerification`: everything the verification engine needs about one key, by hash, in
 * two statements sent together (one round trip of latency on MySQL, where they run on two
 * pooled connections at once). It is the cache-miss path of every verification (api.md §7.2).
 *
 * Statement 1 joins the key with its key space, API, workspace, the root key's target workspace
 * and its live identity. Statement 2 is a UNION of the key's rate limits, its identity's rate
 * limits, its direct permission slugs, its role names and its roles' permission slugs, each row
 * tagged with its kind. Both look the key up by hash (the unique index), so neither waits for
 * the other.
 */
import { Fault } from '../../fault.ts';
import type { Database, SqlRow } from '../database.ts';
import { API_COLUMNS, mapApi, type Api } from './apis.ts';
import { IDENTITY_COLUMNS, mapIdentity, type Identity } from './identities.ts';
import { KEY_COLUMNS, mapKey, type Key } from './keys.ts';
import { KEY_SPACE_COLUMNS, mapKeySpace, type KeySpace } from './key-spaces.ts';
import { selectColumns } from './sql-fragments.ts';
import { readBoolean, readNumber } from './row-values.ts';

/** A rate limit as the verification engine uses it. */
export interface VerificationRatelimit {
  id: string;
  name: string;
  limit: number;
  durationMs: number;
  autoApply: boolean;
}

/** What {@link findKeyForVerification} returns for a live key. */
export interface KeyForVerification {
  key: Key;
  keySpace: KeySpace;
  /** The API of the key space; check `api.deletedAtMs` (a deleted API answers NOT_FOUND). */
  api: Api;
  /** False when the key's workspace is disabled (FORBIDDEN). */
  workspaceEnabled: boolean;
  /**
   * For a root key (`key.forWorkspaceId` set): the workspace it manages, or `undefined` when that
   * workspace is missing or deleted (the key then answers NOT_FOUND).
   */
  forWorkspace?: { id: string; enabled: boolean };
  /** The key's identity when it has a live one, with the identity's shared rate limits. */
  identity?: Identity & { ratelimits: VerificationRatelimit[] };
  /** The key's own rate limits, by name. */
  ratelimits: VerificationRatelimit[];
  /** Slugs granted to the key directly, sorted. */
  directPermissions: string[];
  /** Slugs granted through the key's roles, sorted, without duplicates. */
  rolePermissions: string[];
  /** All slugs the key holds (direct ∪ via roles), sorted, without duplicates. */
  permissions: string[];
  /** Names of the key's roles, sorted. */
  roles: string[];
}

const KEY_HASH_MATCH = 'k.`hash` = ? AND k.`deleted_at_m` IS NULL';

const MAIN_SQL = `SELECT ${selectColumns('k', KEY_COLUMNS, 'k_')},
       ${selectColumns('ks', KEY_SPACE_COLUMNS, 'ks_')},
       ${selectColumns('a', API_COLUMNS, 'a_')},
       w.\`enabled\` AS \`workspace_enabled\`,
       fw.\`id\` AS \`for_workspace_id\`, fw.\`enabled\` AS \`for_workspace_enabled\`,
       ${selectColumns('i', IDENTITY_COLUMNS, 'i_')}
  FROM \`keys\` k
  JOIN \`key_auth\` ks ON ks.\`id\` = k.\`key_auth_id\`
  JOIN \`apis\` a ON a.\`key_auth_id\` = k.\`key_auth_id\`
  JOIN \`workspaces\` w ON w.\`id\` = k.\`workspace_id\` AND w.\`deleted_at_m\` IS NULL
  LEFT JOIN \`workspaces\` fw ON fw.\`id\` = k.\`for_workspace_id\` AND fw.\`deleted_at_m\` IS NULL
  LEFT JOIN \`identities\` i ON i.\`id\` = k.\`identity_id\` AND i.\`deleted_at_m\` IS NULL
 WHERE ${KEY_HASH_MATCH}`;

const GRANTS_SQL = `SELECT 'key_ratelimit' AS \`kind\`, r.\`id\` AS \`id\`, r.\`name\` AS \`name\`, r.\`limit\` AS \`limit\`, r.\`duration_ms\` AS \`duration_ms\`, r.\`auto_apply\` AS \`auto_apply\`
  FROM \`ratelimits\` r JOIN \`keys\` k ON r.\`key_id\` = k.\`id\` WHERE ${KEY_HASH_MATCH}
UNION ALL
SELECT 'identity_ratelimit', r.\`id\`, r.\`name\`, r.\`limit\`, r.\`duration_ms\`, r.\`auto_apply\`
  FROM \`ratelimits\` r
  JOIN \`keys\` k ON r.\`identity_id\` = k.\`identity_id\`
  JOIN \`identities\` i ON i.\`id\` = k.\`identity_id\` AND i.\`deleted_at_m\` IS NULL
 WHERE ${KEY_HASH_MATCH}
UNION ALL
SELECT 'permission', p.\`id\`, p.\`slug\`, NULL, NULL, NULL
  FROM \`keys_permissions\` kp
  JOIN \`keys\` k ON kp.\`key_id\` = k.\`id\`
  JOIN \`permissions\` p ON p.\`id\` = kp.\`permission_id\`
 WHERE ${KEY_HASH_MATCH}
UNION ALL
SELECT 'role', ro.\`id\`, ro.\`name\`, NULL, NULL, NULL
  FROM \`keys_roles\` kr
  JOIN \`keys\` k ON kr.\`key_id\` = k.\`id\`
  JOIN \`roles\` ro ON ro.\`id\` = kr.\`role_id\`
 WHERE ${KEY_HASH_MATCH}
UNION ALL
SELECT 'role_permission', p.\`id\`, p.\`slug\`, NULL, NULL, NULL
  FROM \`keys_roles\` kr
  JOIN \`keys\` k ON kr.\`key_id\` = k.\`id\`
  JOIN \`roles_permissions\` rp ON rp.\`role_id\` = kr.\`role_id\`
  JOIN \`permissions\` p ON p.\`id\` = rp.\`permission_id\`
 WHERE ${KEY_HASH_MATCH}
ORDER BY \`kind\`, \`name\``;

/** Most keys {@link findKeysForVerification} loads in one call (a list page is at most 100). */
export const MAX_KEYS_PER_VERIFICATION_BATCH = 1_000;

const NO_RATELIMITS: VerificationRatelimit[] = Object.freeze([]) as unknown as VerificationRatelimit[];
const NO_STRINGS: string[] = Object.freeze([]) as unknown as string[];

const BATCH_MAIN_SQL_PREFIX = MAIN_SQL.slice(0, MAIN_SQL.lastIndexOf('WHERE')) + 'WHERE k.`deleted_at_m` IS NULL AND k.`hash` IN ';
const BATCH_GRANTS_BRANCHES = GRANTS_SQL.replace(/\nORDER BY `kind`, `name`$/, '')
  .split('\nUNION ALL\n')
  // Every branch also names the key it belongs to, so one result serves the whole batch.
  .map((branch) => branch.replace(/^SELECT ('\w+')(?: AS `kind`)?, /, (_match, kind: string) => `SELECT k.\`hash\` AS \`key_hash\`, ${kind} AS \`kind\`, `));

/**
 * The live key with this hash and everything verification needs about it, or `undefined` when
 * there is no live key with that hash or its workspace is deleted. Database failures propagate
 * (the cache must not store them as "not found"). Called per key-cache miss: it allocates little
 * beyond the result (shared empties, no sorting or sets for keys without grants).
 */
export async function findKeyForVerification(db: Database, hash: string): Promise<KeyForVerification | undefined> {
  const [mainRows, grantRows] = await Promise.all([db.query(MAIN_SQL, [hash]), db.query(GRANTS_SQL, [hash, hash, hash, hash, hash])]);
  const row = mainRows[0];
  return row === undefined ? undefined : assemble(row, grantRows, 0, grantRows.length);
}

/**
 * {@link findKeyForVerification} for many hashes in two statements (apis.listKeys: one round trip
 * per page instead of two per key). Returns the live keys found, by hash; missing hashes are
 * absent. At most {@link MAX_KEYS_PER_VERIFICATION_BATCH} distinct hashes (more is a Fault).
 */
export async function findKeysForVerification(db: Database, hashes: readonly string[]): Promise<Map<string, KeyForVerification>> {
  const unique = [...new Set(hashes)];
  const found = new Map<string, KeyForVerification>();
  if (unique.length === 0) return found;
  if (unique.length > MAX_KEYS_PER_VERIFICATION_BATCH) {
    throw new Fault('err:unkey:application:invalid_input', { internalMessage: `findKeysForVerification: ${unique.length} hashes, at most ${MAX_KEYS_PER_VERIFICATION_BATCH}` });
  }
  const placeholders = `(${unique.map(() => '?').join(', ')})`;
  const grantsSql = BATCH_GRANTS_BRANCHES.map((branch) => branch.replace(KEY_HASH_MATCH, `k.\`hash\` IN ${placeholders} AND k.\`deleted_at_m\` IS NULL`)).join('\nUNION ALL\n')
    + '\nORDER BY `key_hash`, `kind`, `name`';
  const grantParams: string[] = [];
  for (let branch = 0; branch < BATCH_GRANTS_BRANCHES.length; branch++) grantParams.push(...unique);
  const [mainRows, grantRows] = await Promise.all([db.query(BATCH_MAIN_SQL_PREFIX + placeholders, unique), db.query(grantsSql, grantParams)]);
  // Grant rows arrive grouped by key hash: each key gets its slice.
  const slices = new Map<string, { start: number; end: number }>();
  for (let index = 0; index < grantRows.length; index++) {
    const keyHash = String(grantRows[index]!.key_hash);
    const slice = slices.get(keyHash);
    if (slice === undefined) slices.set(keyHash, { start: index, end: index + 1 });
    else slice.end = index + 1;
  }
  for (const row of mainRows) {
    const keyHash = String(row.k_hash);
    const slice = slices.get(keyHash);
    found.set(keyHash, assemble(row, grantRows, slice?.start ?? 0, slice?.end ?? 0));
  }
  return found;
}

/** Builds the result from the main row and the grant rows `[start, end)` (ordered by kind, then name). */
function assemble(row: SqlRow, grantRows: readonly SqlRow[], start: number, end: number): KeyForVerification {
  let keyRatelimits = NO_RATELIMITS;
  let identityRatelimits = NO_RATELIMITS;
  let directPermissions = NO_STRINGS;
  let rolePermissions = NO_STRINGS;
  let roles = NO_STRINGS;
  for (let index = start; index < end; index++) {
    const grant = grantRows[index]!;
    switch (grant.kind) {
      case 'key_ratelimit':
        if (keyRatelimits === NO_RATELIMITS) keyRatelimits = [];
        keyRatelimits.push(mapGrantRatelimit(grant));
        break;
      case 'identity_ratelimit':
        if (identityRatelimits === NO_RATELIMITS) identityRatelimits = [];
        identityRatelimits.push(mapGrantRatelimit(grant));
        break;
      case 'permission':
        if (directPermissions === NO_STRINGS) directPermissions = [];
        directPermissions.push(String(grant.name));
        break;
      case 'role':
        if (roles === NO_STRINGS) roles = [];
        roles.push(String(grant.name));
        break;
      case 'role_permission':
        if (rolePermissions === NO_STRINGS) rolePermissions = [];
        rolePermissions.push(String(grant.name));
        break;
    }
  }

  const key = mapKey(row, 'k_');
  const identity = row.i_id === null || row.i_id === undefined ? undefined : { ...mapIdentity(row, 'i_'), ratelimits: identityRatelimits };
  const forWorkspace =
    row.for_workspace_id === null || row.for_workspace_id === undefined
      ? undefined
      : { id: String(row.for_workspace_id), enabled: readBoolean(row.for_workspace_enabled) };
  directPermissions = sortedUnique(directPermissions);
  rolePermissions = sortedUnique(rolePermissions);
  return {
    key,
    keySpace: mapKeySpace(row, 'ks_'),
    api: mapApi(row, 'a_'),
    workspaceEnabled: readBoolean(row.workspace_enabled),
    forWorkspace,
    identity,
    ratelimits: keyRatelimits,
    directPermissions,
    rolePermissions,
    permissions: rolePermissions.length === 0 ? directPermissions : directPermissions.length === 0 ? rolePermissions : sortedUnique([...directPermissions, ...rolePermissions]),
    roles: roles.length > 1 ? roles.sort() : roles,
  };
}

/** Sorted (code-unit order, as the API always answered) without duplicates; a list of 0 or 1 is returned as is. */
function sortedUnique(values: string[]): string[] {
  if (values.length <= 1) return values;
  values.sort();
  let kept = 1;
  for (let index = 1; index < values.length; index++) if (values[index] !== values[kept - 1]) values[kept++] = values[index]!;
  values.length = kept;
  return values;
}
function mapGrantRatelimit(row: SqlRow): VerificationRatelimit {
  return {
    id: String(row.id),
    name: String(row.name),
    limit: readNumber(row.limit, 'ratelimits.limit'),
    durationMs: readNumber(row.duration_ms, 'ratelimits.duration_ms'),
    autoApply: readBoolean(row.auto_apply),
  };
}
