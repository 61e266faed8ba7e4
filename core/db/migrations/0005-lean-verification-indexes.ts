/**
 * Migration 5: the local `key_verifications` table (migration 1) keeps one secondary index,
 * `(workspace_id, time)`, and drops `(workspace_id, key_space_id, time)` and `(key_id, time)`.
 *
 * Why: every verification (`keys.verifyKey`, and Sentinel's KeyAuth on every request) writes one
 * row, and each index costs a B-tree insert per row: with three indexes a row cost about 4 µs in
 * an in-memory SQLite and 12 µs in a WAL file, with one about 2 µs (bench notes of issue #5).
 * The table's reads (`listKeyVerifications`) always name the workspace and usually a time range,
 * which the kept index serves; a key or key-space filter is applied within that range. Analytics
 * at scale belongs to ClickHouse, where none of this applies.
 *
 * MySQL: one ALTER statement, so the change is atomic there too (DDL commits implicitly).
 */
import type { Migration } from '../migration.ts';

const DROPPED = ['key_verifications_workspace_id_key_space_id_time_idx', 'key_verifications_key_id_time_idx'] as const;

/** Migration 5. */
export const migration0005: Migration = {
  version: 5,
  name: 'lean-verification-indexes',
  statements: {
    mysql: [`ALTER TABLE \`key_verifications\` ${DROPPED.map((index) => `DROP INDEX \`${index}\``).join(', ')}`],
    sqlite: DROPPED.map((index) => `DROP INDEX IF EXISTS \`${index}\``),
  },
};
