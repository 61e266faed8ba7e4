/**
 * Identities: the owner of keys, named by the customer's own `externalId` (unique among the
 * live identities of a workspace), with metadata and shared rate limits.
 */
import { Fault } from '../../fault.ts';
import type { Database, SqlRow } from '../database.ts';
import { selectColumns } from './sql-fragments.ts';
import { pageSize, readJsonObject, readNumber, readOptionalNumber, toPage, writeJson, type JsonObject, type Page, prefixedColumns } from './row-values.ts';

/** An identity as stored. */
export interface Identity {
  id: string;
  workspaceId: string;
  externalId: string;
  environment: string;
  meta?: JsonObject;
  createdAtMs: number;
  updatedAtMs?: number;
  deletedAtMs?: number;
}

/** Input of {@link insertIdentity}; `environment` defaults to `default`. */
export interface NewIdentity {
  id: string;
  workspaceId: string;
  externalId: string;
  environment?: string;
  meta?: JsonObject;
  createdAtMs: number;
}

/** Changes of {@link updateIdentity}: `undefined` = unchanged, `null` = cleared. */
export interface IdentityPatch {
  externalId?: string;
  meta?: JsonObject | null;
}

/** Columns of `identities` that {@link mapIdentity} reads. */
export const IDENTITY_COLUMNS = ['id', 'workspace_id', 'external_id', 'environment', 'meta', 'created_at_m', 'updated_at_m', 'deleted_at_m'] as const;

/** Maps a row (columns optionally under `prefix`) to an {@link Identity}. */
export function mapIdentity(row: SqlRow, prefix = ''): Identity {
  const c = prefixedColumns(prefix, IDENTITY_COLUMNS);
  return {
    id: String(row[c.id]),
    workspaceId: String(row[c.workspace_id]),
    externalId: String(row[c.external_id]),
    environment: String(row[c.environment]),
    meta: readJsonObject(row[c.meta], 'identities.meta'),
    createdAtMs: readNumber(row[c.created_at_m], 'identities.created_at_m'),
    updatedAtMs: readOptionalNumber(row[c.updated_at_m], 'identities.updated_at_m'),
    deletedAtMs: readOptionalNumber(row[c.deleted_at_m], 'identities.deleted_at_m'),
  };
}

const SELECT_IDENTITY = `SELECT ${selectColumns('i', IDENTITY_COLUMNS)} FROM \`identities\` i`;

/** Inserts an identity; a live identity with the same external id fails with `database:conflict`. */
export async function insertIdentity(db: Database, identity: NewIdentity): Promise<void> {
  await db.execute(
    'INSERT INTO `identities` (`id`, `workspace_id`, `external_id`, `environment`, `meta`, `created_at_m`) VALUES (?, ?, ?, ?, ?, ?)',
    [identity.id, identity.workspaceId, identity.externalId, identity.environment ?? 'default', writeJson(identity.meta), identity.createdAtMs],
  );
}

/** The live identity with this id in this workspace, or `undefined`. */
export async function getIdentityById(db: Database, workspaceId: string, id: string): Promise<Identity | undefined> {
  const rows = await db.query(`${SELECT_IDENTITY} WHERE i.\`id\` = ? AND i.\`workspace_id\` = ? AND i.\`deleted_at_m\` IS NULL`, [id, workspaceId]);
  return rows[0] === undefined ? undefined : mapIdentity(rows[0]);
}

/** The live identity with this external id in this workspace, or `undefined`. */
export async function getIdentityByExternalId(db: Database, workspaceId: string, externalId: string): Promise<Identity | undefined> {
  const rows = await db.query(
    `${SELECT_IDENTITY} WHERE i.\`workspace_id\` = ? AND i.\`external_id\` = ? AND i.\`deleted_at_m\` IS NULL`,
    [workspaceId, externalId],
  );
  return rows[0] === undefined ? undefined : mapIdentity(rows[0]);
}

/**
 * The live identity with this external id, created from `identity` when there is none (the
 * createKey/updateKey `externalId` upsert). A concurrent creator winning the race is not an
 * error: its identity is returned.
 */
export async function ensureIdentity(db: Database, identity: NewIdentity): Promise<{ identity: Identity; created: boolean }> {
  const existing = await getIdentityByExternalId(db, identity.workspaceId, identity.externalId);
  if (existing !== undefined) return { identity: existing, created: false };
  try {
    await insertIdentity(db, identity);
  } catch (err) {
    if (!(err instanceof Fault && err.code === 'err:keygate:database:conflict')) throw err;
    const winner = await getIdentityByExternalId(db, identity.workspaceId, identity.externalId);
    if (winner !== undefined) return { identity: winner, created: false };
    throw err;
  }
  const created = await getIdentityById(db, identity.workspaceId, identity.id);
  if (created === undefined) throw new Fault('err:unkey:application:assertion_failed', { internalMessage: 'identity vanished right after insert' });
  return { identity: created, created: true };
}

/** Applies a patch to a live identity; false when there is none. */
export async function updateIdentity(db: Database, workspaceId: string, id: string, patch: IdentityPatch, nowMs: number): Promise<boolean> {
  const assignments: string[] = ['`updated_at_m` = ?'];
  const params: Array<string | number | null> = [nowMs];
  if (patch.externalId !== undefined) (assignments.push('`external_id` = ?'), params.push(patch.externalId));
  if (patch.meta !== undefined) (assignments.push('`meta` = ?'), params.push(writeJson(patch.meta) ?? null));
  const result = await db.execute(
    `UPDATE \`identities\` SET ${assignments.join(', ')} WHERE \`id\` = ? AND \`workspace_id\` = ? AND \`deleted_at_m\` IS NULL`,
    [...params, id, workspaceId],
  );
  return result.affectedRows > 0;
}

/**
 * Soft-deletes a live identity; its external id becomes free for a new identity, and any number
 * of deleted identities may share it. False when there is none.
 */
export async function softDeleteIdentity(db: Database, workspaceId: string, id: string, nowMs: number): Promise<boolean> {
  const result = await db.execute(
    'UPDATE `identities` SET `deleted_at_m` = ? WHERE `id` = ? AND `workspace_id` = ? AND `deleted_at_m` IS NULL',
    [nowMs, id, workspaceId],
  );
  return result.affectedRows > 0;
}

/** A page of the workspace's live identities ordered by id, starting at `cursor` (inclusive). */
export async function listIdentities(db: Database, workspaceId: string, options: { cursor?: string; limit?: number } = {}): Promise<Page<Identity>> {
  const limit = pageSize(options.limit);
  const rows = await db.query(
    `${SELECT_IDENTITY} WHERE i.\`workspace_id\` = ? AND i.\`deleted_at_m\` IS NULL AND i.\`id\` >= ? ORDER BY i.\`id\` LIMIT ?`,
    [workspaceId, options.cursor ?? '', limit + 1],
  );
  return toPage(rows.map((row) => mapIdentity(row)), limit);
}
