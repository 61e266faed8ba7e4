/**
 * The few SQL fragments that differ between the engines, and column-list builders shared by
 * the query modules. Identifiers are quoted with backticks, which both engines accept
 * (`keys` and `limit` are reserved words in MySQL).
 */
import type { SqlDialect } from '../database.ts';

/**
 * Suffix of an INSERT that skips rows whose unique key already exists, and only those: MySQL's
 * `INSERT IGNORE` would also swallow foreign-key and length errors, so a no-op update is used.
 * `anyColumn` is one column of the insert (quoted) for that no-op.
 */
export function onDuplicateIgnore(dialect: SqlDialect, conflictColumns: readonly string[], anyColumn: string): string {
  return dialect === 'sqlite'
    ? ` ON CONFLICT (${conflictColumns.join(', ')}) DO NOTHING`
    : ` ON DUPLICATE KEY UPDATE ${anyColumn} = ${anyColumn}`;
}

/**
 * Suffix of an INSERT that, when the unique key already exists, overwrites `updateColumns`
 * (quoted) with the values the INSERT carried.
 */
export function onDuplicateUpdate(dialect: SqlDialect, conflictColumns: readonly string[], updateColumns: readonly string[]): string {
  return dialect === 'sqlite'
    ? ` ON CONFLICT (${conflictColumns.join(', ')}) DO UPDATE SET ${updateColumns.map((column) => `${column} = excluded.${column}`).join(', ')}`
    : ` ON DUPLICATE KEY UPDATE ${updateColumns.map((column) => `${column} = VALUES(${column})`).join(', ')}`;
}

/** `alias.\`column\` AS \`prefixcolumn\`, …` for selecting a joined table's columns under a prefix. */
export function selectColumns(alias: string, columns: readonly string[], prefix = ''): string {
  return columns.map((column) => `${alias}.\`${column}\` AS \`${prefix}${column}\``).join(', ');
}

/** `` `a`, `b` `` for an INSERT column list. */
export function quoteColumns(columns: readonly string[]): string[] {
  return columns.map((column) => `\`${column}\``);
}
