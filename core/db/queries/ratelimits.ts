/**
 * Named rate limits attached to a key or to an identity (shared by all of its keys). The
 * verification engine applies `autoApply` ones on every request and the others by name.
 */
import type { Database, SqlParam, SqlRow } from '../database.ts';
import { quoteColumns, selectColumns } from './sql-fragments.ts';
import { checkInteger, insertMany, readBoolean, readNumber, readOptionalNumber, readOptionalString } from './row-values.ts';

/** A rate limit as stored; exactly one of `keyId` and `identityId` is set. */
export interface Ratelimit {
  id: string;
  workspaceId: string;
  keyId?: string;
  identityId?: string;
  name: string;
  limit: number;
  durationMs: number;
  autoApply: boolean;
  createdAtMs: number;
  updatedAtMs?: number;
}

/** The owner of rate limits: a key or an identity. */
export type RatelimitOwner = { keyId: string; identityId?: undefined } | { identityId: string; keyId?: undefined };

/** Input of {@link insertRatelimits}. */
export type NewRatelimit = Omit<Ratelimit, 'updatedAtMs'>;

/** One wanted limit of {@link replaceRatelimits}; `id` is used only if the name is new. */
export type WantedRatelimit = Pick<Ratelimit, 'id' | 'name' | 'limit' | 'durationMs' | 'autoApply'>;

/** Columns of `ratelimits` that {@link mapRatelimit} reads. */
export const RATELIMIT_COLUMNS = ['id', 'workspace_id', 'key_id', 'identity_id', 'name', 'limit', 'duration_ms', 'auto_apply', 'created_at_m', 'updated_at_m'] as const;

const INSERT_COLUMNS = ['id', 'workspace_id', 'key_id', 'identity_id', 'name', 'limit', 'duration_ms', 'auto_apply', 'created_at_m'];

/** Maps a row (columns optionally under `prefix`) to a {@link Ratelimit}. */
export function mapRatelimit(row: SqlRow, prefix = ''): Ratelimit {
  return {
    id: String(row[prefix + 'id']),
    workspaceId: String(row[prefix + 'workspace_id']),
    keyId: readOptionalString(row[prefix + 'key_id']),
    identityId: readOptionalString(row[prefix + 'identity_id']),
    name: String(row[prefix + 'name']),
    limit: readNumber(row[prefix + 'limit'], 'ratelimits.limit'),
    durationMs: readNumber(row[prefix + 'duration_ms'], 'ratelimits.duration_ms'),
    autoApply: readBoolean(row[prefix + 'auto_apply']),
    createdAtMs: readNumber(row[prefix + 'created_at_m'], 'ratelimits.created_at_m'),
    updatedAtMs: readOptionalNumber(row[prefix + 'updated_at_m'], 'ratelimits.updated_at_m'),
  };
}

/** Inserts rate limits in one statement; a name taken on the same owner fails with `database:conflict`. */
export async function insertRatelimits(db: Database, ratelimits: readonly NewRatelimit[]): Promise<void> {
  for (const ratelimit of ratelimits) checkRatelimitValues(ratelimit);
  await insertMany(db, '`ratelimits`', quoteColumns(INSERT_COLUMNS), ratelimits, (ratelimit) => [
    ratelimit.id, ratelimit.workspaceId, ratelimit.keyId, ratelimit.identityId, ratelimit.name, ratelimit.limit,
    ratelimit.durationMs, ratelimit.autoApply, ratelimit.createdAtMs,
  ]);
}

/** The rate limits of a key or an identity, ordered by name. */
export async function listRatelimits(db: Database, owner: RatelimitOwner): Promise<Ratelimit[]> {
  const [column, value] = ownerColumn(owner);
  const rows = await db.query(`SELECT ${selectColumns('r', RATELIMIT_COLUMNS)} FROM \`ratelimits\` r WHERE r.\`${column}\` = ? ORDER BY r.\`name\``, [value]);
  return rows.map((row) => mapRatelimit(row));
}

/**
 * Makes the owner's limits exactly `wanted` (updateKey/updateIdentity semantics): names already
 * present keep their id and get the new values, new names are inserted with the given id, and
 * names not wanted are deleted. Runs in a transaction (a savepoint inside one). Returns the
 * resulting limits.
 */
export async function replaceRatelimits(
  db: Database,
  workspaceId: string,
  owner: RatelimitOwner,
  wanted: readonly WantedRatelimit[],
  nowMs: number,
): Promise<Ratelimit[]> {
  return db.transaction(async (tx) => {
    const [column, value] = ownerColumn(owner);
    const existing = new Map((await listRatelimits(tx, owner)).map((ratelimit) => [ratelimit.name, ratelimit]));
    const wantedNames = new Set(wanted.map((ratelimit) => ratelimit.name));
    const obsolete = [...existing.values()].filter((ratelimit) => !wantedNames.has(ratelimit.name));
    for (const ratelimit of obsolete) await tx.execute('DELETE FROM `ratelimits` WHERE `id` = ?', [ratelimit.id]);
    const inserts: NewRatelimit[] = [];
    for (const ratelimit of wanted) {
      checkRatelimitValues(ratelimit);
      const current = existing.get(ratelimit.name);
      if (current === undefined) {
        inserts.push({ ...ratelimit, workspaceId, keyId: owner.keyId, identityId: owner.identityId, createdAtMs: nowMs });
      } else {
        await tx.execute(
          `UPDATE \`ratelimits\` SET \`limit\` = ?, \`duration_ms\` = ?, \`auto_apply\` = ?, \`updated_at_m\` = ? WHERE \`id\` = ? AND \`${column}\` = ?`,
          [ratelimit.limit, ratelimit.durationMs, ratelimit.autoApply, nowMs, current.id, value] satisfies SqlParam[],
        );
      }
    }
    if (inserts.length > 0) await insertRatelimits(tx, inserts);
    return listRatelimits(tx, owner);
  });
}

/** Deletes every rate limit of the owner; returns how many were deleted. */
export async function deleteRatelimits(db: Database, owner: RatelimitOwner): Promise<number> {
  const [column, value] = ownerColumn(owner);
  return (await db.execute(`DELETE FROM \`ratelimits\` WHERE \`${column}\` = ?`, [value])).affectedRows;
}

function ownerColumn(owner: RatelimitOwner): ['key_id' | 'identity_id', string] {
  return owner.keyId !== undefined ? ['key_id', owner.keyId] : ['identity_id', owner.identityId];
}

function checkRatelimitValues(ratelimit: Pick<Ratelimit, 'limit' | 'durationMs'>): void {
  checkInteger(ratelimit.limit, 'ratelimits.limit');
  checkInteger(ratelimit.durationMs, 'ratelimits.duration');
}
