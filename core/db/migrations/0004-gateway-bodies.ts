/**
 * Migration 4: captured bodies in the gateway's local request log (dataplane.md §7.3). Adds the
 * nullable `request_body` and `response_body` columns to `gateway_requests` (migration 3): the
 * start of each body as text, already redacted, present only when a Logging policy asked for it
 * (NULL otherwise, and for every row written before this migration).
 *
 * Bound: at most {@link GATEWAY_BODY_MAX_BYTES} UTF-8 bytes per column, MySQL's TEXT limit, which
 * SQLite mirrors with a CHECK. Sentinel captures 8 KiB per body by default; rendered as text with
 * secrets redacted and a truncation marker that stays far below the bound (even invalid UTF-8,
 * where each byte may become a 3-byte replacement character, stays under 25 KiB). The writer
 * (`LocalRequestLogSink`) cuts anything longer, so a larger configured capture never fails a batch.
 *
 * MySQL: one ALTER statement adds both columns, so the change is atomic there too (MySQL commits
 * DDL implicitly); SQLite runs its two statements inside the migration's transaction.
 */
import type { Migration } from '../migration.ts';

/** Most UTF-8 bytes stored per body column (MySQL TEXT holds 65 535 bytes). */
export const GATEWAY_BODY_MAX_BYTES = 65_535;

const BODY_COLUMNS = ['request_body', 'response_body'] as const;

/** Migration 4. */
export const migration0004: Migration = {
  version: 4,
  name: 'gateway-bodies',
  statements: {
    mysql: [`ALTER TABLE \`gateway_requests\` ${BODY_COLUMNS.map((column) => `ADD COLUMN \`${column}\` TEXT NULL`).join(', ')}`],
    // length() of a BLOB counts bytes, so the CHECK bounds UTF-8 bytes exactly as MySQL's TEXT does.
    sqlite: BODY_COLUMNS.map(
      (column) => `ALTER TABLE \`gateway_requests\` ADD COLUMN \`${column}\` TEXT CHECK (length(CAST(\`${column}\` AS BLOB)) <= ${GATEWAY_BODY_MAX_BYTES})`,
    ),
  },
};
