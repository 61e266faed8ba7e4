/**
 * Key migrations: a workspace's import of keys hashed by another system, named by the algorithm
 * used to find them on first verification (api.md §6).
 */
import type { Database } from '../database.ts';
import { readNumber } from './row-values.ts';

/** The hash algorithms a migration may use. */
export type KeyMigrationAlgorithm = 'sha256' | 'github.com/seamapi/prefixed-api-key';

/** A key migration as stored. */
export interface KeyMigration {
  id: string;
  workspaceId: string;
  algorithm: KeyMigrationAlgorithm;
  createdAtMs: number;
}

/** Inserts a key migration; a taken id fails with `database:conflict`. */
export async function insertKeyMigration(db: Database, migration: KeyMigration): Promise<void> {
  await db.execute('INSERT INTO `key_migrations` (`id`, `workspace_id`, `algorithm`, `created_at_m`) VALUES (?, ?, ?, ?)', [
    migration.id,
    migration.workspaceId,
    migration.algorithm,
    migration.createdAtMs,
  ]);
}

/** The key migration with this id in this workspace, or `undefined`. */
export async function getKeyMigration(db: Database, workspaceId: string, id: string): Promise<KeyMigration | undefined> {
  const rows = await db.query('SELECT `id`, `workspace_id`, `algorithm`, `created_at_m` FROM `key_migrations` WHERE `id` = ? AND `workspace_id` = ?', [
    id,
    workspaceId,
  ]);
  const row = rows[0];
  if (row === undefined) return undefined;
  return {
    id: String(row.id),
    workspaceId: String(row.workspace_id),
    algorithm: String(row.algorithm) as KeyMigrationAlgorithm,
    createdAtMs: readNumber(row.created_at_m, 'key_migrations.created_at_m'),
  };
}
