/**
 * Keys: API keys and root keys (a root key has `forWorkspaceId`). Only the hash of a key is
 * stored (base64 sha256 of the whole key string, api.md §6); `start` is its visible prefix.
 * Every lookup skips soft-deleted keys unless asked otherwise.
 */
import type { Database, SqlParam, SqlRow } from '../database.ts';
import { selectColumns } from './sql-fragments.ts';
import {
  checkInteger,
  pageSize,
  readBoolean,
  readJsonObject,
  readNumber,
  readOptionalNumber,
  readOptionalString,
  toPage,
  writeJson,
  type JsonObject,
  type Page,
  prefixedColumns,
} from './row-values.ts';

/** A key as stored (never the plaintext). */
export interface Key {
  id: string;
  keySpaceId: string;
  workspaceId: string;
  hash: string;
  start: string;
  /** Set only on root keys: the workspace this key manages. */
  forWorkspaceId?: string;
  name?: string;
  identityId?: string;
  meta?: JsonObject;
  expiresAtMs?: number;
  enabled: boolean;
  /** Credits left; `undefined` = unlimited. */
  remainingRequests?: number;
  /** `undefined` with `refillAmount` set = daily refill; 1..31 = monthly on that day. */
  refillDay?: number;
  refillAmount?: number;
  lastRefillAtMs?: number;
  lastUsedAtMs?: number;
  pendingMigrationId?: string;
  createdAtMs: number;
  updatedAtMs?: number;
  deletedAtMs?: number;
}

/** Input of {@link insertKey}: a {@link Key} without what only use sets; `enabled` defaults to true. */
export interface NewKey extends Omit<Key, 'enabled' | 'lastRefillAtMs' | 'lastUsedAtMs' | 'updatedAtMs' | 'deletedAtMs'> {
  enabled?: boolean;
}

/** Changes of {@link updateKey}: `undefined` = unchanged, `null` = cleared. */
export interface KeyPatch {
  hash?: string;
  start?: string;
  name?: string | null;
  identityId?: string | null;
  meta?: JsonObject | null;
  expiresAtMs?: number | null;
  enabled?: boolean;
  remainingRequests?: number | null;
  refillDay?: number | null;
  refillAmount?: number | null;
  lastRefillAtMs?: number | null;
  pendingMigrationId?: string | null;
}

/** Columns of `keys` that {@link mapKey} reads. */
export const KEY_COLUMNS = [
  'id', 'key_auth_id', 'workspace_id', 'hash', 'start', 'for_workspace_id', 'name', 'identity_id', 'meta',
  'expires_at_m', 'enabled', 'remaining_requests', 'refill_day', 'refill_amount', 'last_refill_at_m',
  'last_used_at_m', 'pending_migration_id', 'created_at_m', 'updated_at_m', 'deleted_at_m',
] as const;

// Patch field → column; `meta` is serialised to JSON on the way.
const PATCH_COLUMNS: Record<keyof KeyPatch, string> = {
  hash: 'hash',
  start: 'start',
  name: 'name',
  identityId: 'identity_id',
  meta: 'meta',
  expiresAtMs: 'expires_at_m',
  enabled: 'enabled',
  remainingRequests: 'remaining_requests',
  refillDay: 'refill_day',
  refillAmount: 'refill_amount',
  lastRefillAtMs: 'last_refill_at_m',
  pendingMigrationId: 'pending_migration_id',
};

/** Maps a row (columns optionally under `prefix`) to a {@link Key}. */
export function mapKey(row: SqlRow, prefix = ''): Key {
  const c = prefixedColumns(prefix, KEY_COLUMNS);
  return {
    id: String(row[c.id]),
    keySpaceId: String(row[c.key_auth_id]),
    workspaceId: String(row[c.workspace_id]),
    hash: String(row[c.hash]),
    start: String(row[c.start]),
    forWorkspaceId: readOptionalString(row[c.for_workspace_id]),
    name: readOptionalString(row[c.name]),
    identityId: readOptionalString(row[c.identity_id]),
    meta: readJsonObject(row[c.meta], 'keys.meta'),
    expiresAtMs: readOptionalNumber(row[c.expires_at_m], 'keys.expires_at_m'),
    enabled: readBoolean(row[c.enabled]),
    remainingRequests: readOptionalNumber(row[c.remaining_requests], 'keys.remaining_requests'),
    refillDay: readOptionalNumber(row[c.refill_day], 'keys.refill_day'),
    refillAmount: readOptionalNumber(row[c.refill_amount], 'keys.refill_amount'),
    lastRefillAtMs: readOptionalNumber(row[c.last_refill_at_m], 'keys.last_refill_at_m'),
    lastUsedAtMs: readOptionalNumber(row[c.last_used_at_m], 'keys.last_used_at_m'),
    pendingMigrationId: readOptionalString(row[c.pending_migration_id]),
    createdAtMs: readNumber(row[c.created_at_m], 'keys.created_at_m'),
    updatedAtMs: readOptionalNumber(row[c.updated_at_m], 'keys.updated_at_m'),
    deletedAtMs: readOptionalNumber(row[c.deleted_at_m], 'keys.deleted_at_m'),
  };
}

/**
 * Inserts a key. A taken id or hash fails with `database:conflict` (createKey retries on a
 * taken id); a missing key space, workspace or identity also fails with `database:conflict`.
 */
export async function insertKey(db: Database, key: NewKey): Promise<void> {
  checkInteger(key.remainingRequests, 'credits.remaining');
  checkInteger(key.refillAmount, 'credits.refill.amount');
  checkInteger(key.expiresAtMs, 'expires');
  await db.execute(
    'INSERT INTO `keys` (`id`, `key_auth_id`, `workspace_id`, `hash`, `start`, `for_workspace_id`, `name`, `identity_id`, `meta`, ' +
      '`expires_at_m`, `enabled`, `remaining_requests`, `refill_day`, `refill_amount`, `pending_migration_id`, `created_at_m`) ' +
      'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    [
      key.id, key.keySpaceId, key.workspaceId, key.hash, key.start, key.forWorkspaceId, key.name, key.identityId,
      writeJson(key.meta), key.expiresAtMs, key.enabled ?? true, key.remainingRequests, key.refillDay, key.refillAmount,
      key.pendingMigrationId, key.createdAtMs,
    ],
  );
}

/** Options of {@link getKeyById}. */
export interface GetKeyOptions {
  /** Only a key of this workspace is returned (workspace scoping of the API service). */
  workspaceId?: string;
  /** Also return a soft-deleted key. */
  includeDeleted?: boolean;
}

/** The key with this id, or `undefined`. */
export async function getKeyById(db: Database, keyId: string, options: GetKeyOptions = {}): Promise<Key | undefined> {
  let sql = `SELECT ${selectColumns('k', KEY_COLUMNS)} FROM \`keys\` k WHERE k.\`id\` = ?`;
  const params: SqlParam[] = [keyId];
  if (options.workspaceId !== undefined) (sql += ' AND k.`workspace_id` = ?'), params.push(options.workspaceId);
  if (options.includeDeleted !== true) sql += ' AND k.`deleted_at_m` IS NULL';
  const rows = await db.query(sql, params);
  return rows[0] === undefined ? undefined : mapKey(rows[0]);
}

/** The live key with this hash, or `undefined`. */
export async function getKeyByHash(db: Database, hash: string): Promise<Key | undefined> {
  const rows = await db.query(`SELECT ${selectColumns('k', KEY_COLUMNS)} FROM \`keys\` k WHERE k.\`hash\` = ? AND k.\`deleted_at_m\` IS NULL`, [hash]);
  return rows[0] === undefined ? undefined : mapKey(rows[0]);
}

/** Applies a patch to a live key and stamps `updated_at_m`; false when there is none. */
export async function updateKey(db: Database, keyId: string, patch: KeyPatch, nowMs: number): Promise<boolean> {
  checkInteger(patch.remainingRequests, 'credits.remaining');
  checkInteger(patch.refillAmount, 'credits.refill.amount');
  checkInteger(patch.expiresAtMs, 'expires');
  const assignments: string[] = ['`updated_at_m` = ?'];
  const params: SqlParam[] = [nowMs];
  for (const field of Object.keys(PATCH_COLUMNS) as Array<keyof KeyPatch>) {
    const value = patch[field];
    if (value === undefined) continue;
    assignments.push(`\`${PATCH_COLUMNS[field]}\` = ?`);
    params.push(field === 'meta' ? writeJson(value) : (value as SqlParam));
  }
  const result = await db.execute(
    `UPDATE \`keys\` SET ${assignments.join(', ')} WHERE \`id\` = ? AND \`deleted_at_m\` IS NULL`,
    [...params, keyId],
  );
  return result.affectedRows > 0;
}

/** Soft-deletes a live key (verification then answers NOT_FOUND); false when there is none. */
export async function softDeleteKey(db: Database, keyId: string, nowMs: number): Promise<boolean> {
  const result = await db.execute('UPDATE `keys` SET `deleted_at_m` = ? WHERE `id` = ? AND `deleted_at_m` IS NULL', [nowMs, keyId]);
  return result.affectedRows > 0;
}

/**
 * Deletes a key row for good, with its rate limits, permission and role grants and encrypted
 * copy (foreign keys cascade); false when there was none.
 */
export async function hardDeleteKey(db: Database, keyId: string): Promise<boolean> {
  const result = await db.execute('DELETE FROM `keys` WHERE `id` = ?', [keyId]);
  return result.affectedRows > 0;
}

/** Options of {@link listKeysByKeySpace}. */
export interface ListKeysOptions {
  /** Id of the first key of the page (inclusive), from a previous page's `nextCursor`. */
  cursor?: string;
  /** Page size, 1..1000, default 100. */
  limit?: number;
  /** Only the keys of this identity. */
  identityId?: string;
}

/**
 * A page of a key space's live keys ordered by id: fetches `limit + 1` rows with `id >= cursor`,
 * and the extra row's id becomes `nextCursor` (api.md §2 pagination).
 */
export async function listKeysByKeySpace(db: Database, keySpaceId: string, options: ListKeysOptions = {}): Promise<Page<Key>> {
  const limit = pageSize(options.limit);
  let sql = `SELECT ${selectColumns('k', KEY_COLUMNS)} FROM \`keys\` k WHERE k.\`key_auth_id\` = ? AND k.\`deleted_at_m\` IS NULL AND k.\`id\` >= ?`;
  const params: SqlParam[] = [keySpaceId, options.cursor ?? ''];
  if (options.identityId !== undefined) (sql += ' AND k.`identity_id` = ?'), params.push(options.identityId);
  const rows = await db.query(sql + ' ORDER BY k.`id` LIMIT ?', [...params, limit + 1]);
  return toPage(rows.map((row) => mapKey(row)), limit);
}

/**
 * Spends `cost` credits only if the key has at least that many left: one atomic statement, the
 * fallback when the shared counter store is down. True when spent; false when the key is
 * unlimited, missing or short of credits.
 */
export async function spendKeyCreditsIfSufficient(db: Database, keyId: string, cost: number): Promise<boolean> {
  checkInteger(cost, 'credits.cost');
  const result = await db.execute(
    'UPDATE `keys` SET `remaining_requests` = `remaining_requests` - ? WHERE `id` = ? AND `deleted_at_m` IS NULL AND `remaining_requests` >= ?',
    [cost, keyId, cost],
  );
  return result.affectedRows > 0;
}

/**
 * Replays a spend already decided elsewhere (the counter store): subtracts `cost`, flooring at
 * 0, and leaves unlimited keys alone. False when the key is missing.
 */
export async function applyKeyCreditsSpend(db: Database, keyId: string, cost: number): Promise<boolean> {
  checkInteger(cost, 'credits.cost');
  const result = await db.execute(
    'UPDATE `keys` SET `remaining_requests` = CASE WHEN `remaining_requests` >= ? THEN `remaining_requests` - ? ELSE 0 END ' +
      'WHERE `id` = ? AND `remaining_requests` IS NOT NULL',
    [cost, cost, keyId],
  );
  return result.affectedRows > 0;
}

/** Moves `last_used_at_m` forward to `usedAtMs` (never backwards); false when nothing changed. */
export async function markKeyUsed(db: Database, keyId: string, usedAtMs: number): Promise<boolean> {
  const result = await db.execute(
    'UPDATE `keys` SET `last_used_at_m` = ? WHERE `id` = ? AND (`last_used_at_m` IS NULL OR `last_used_at_m` < ?)',
    [usedAtMs, keyId, usedAtMs],
  );
  return result.affectedRows > 0;
}
