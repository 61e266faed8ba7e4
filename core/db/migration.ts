/**
 * `Migration`: one numbered schema change with its SQL for both dialects, and `createTable`,
 * which renders one table declaration to both, so the two schemas cannot drift apart.
 *
 * Rendering rules:
 * - MySQL gets `CREATE TABLE IF NOT EXISTS` with its indexes and foreign keys inline, so each
 *   table appears atomically (MySQL commits DDL implicitly and has no `CREATE INDEX IF NOT
 *   EXISTS`): a migration interrupted half way can simply be run again.
 * - SQLite gets a STRICT table (types enforced), CHECKs that mirror MySQL's VARCHAR lengths, and
 *   separate `CREATE INDEX IF NOT EXISTS` statements; its DDL runs inside one transaction.
 * - MySQL tables use utf8mb4 with the binary collation: ids, hashes, slugs and names compare
 *   case-sensitively on both engines, exactly as SQLite's default BINARY collation does.
 */
import type { SqlDialect } from './database.ts';

/** One numbered migration. Versions start at 1 and increase by one; never edit a released one. */
export interface Migration {
  /** 1, 2, 3 … */
  readonly version: number;
  /** Kebab-case name; with the version it forms the id `0001-api-service`. */
  readonly name: string;
  /** Statements per dialect, run in order. */
  readonly statements: Readonly<Record<SqlDialect, readonly string[]>>;
}

/** The id of a migration as stored and reported: `0001-api-service`. */
export function migrationId(migration: Pick<Migration, 'version' | 'name'>): string {
  return `${String(migration.version).padStart(4, '0')}-${migration.name}`;
}

/**
 * Column types, mapped per dialect:
 * `pk` auto-increment surrogate key · `id` varchar(64) · `bigint` 64-bit integer (ms timestamps,
 * counters) · `int` 32-bit integer · `bool` 0/1 · `double` · `varchar(n)` · `text` (≤64 KiB) ·
 * `json` (text holding JSON, ≤16 MiB).
 */
export type ColumnType = 'pk' | 'id' | 'bigint' | 'int' | 'bool' | 'double' | `varchar(${number})` | 'text' | 'json';

/** One column of a {@link TableDefinition}. */
export interface ColumnDefinition {
  readonly name: string;
  readonly type: ColumnType;
  /** Columns are NOT NULL unless this is true. */
  readonly nullable?: boolean;
  /** A literal default (number, boolean or string). */
  readonly default?: number | boolean | string;
  /** A STORED generated column computed from this SQL expression (valid on both engines). */
  readonly generatedAs?: string;
}

/** An index; `unique` makes it a unique constraint. */
export interface IndexDefinition {
  readonly columns: readonly string[];
  readonly unique?: boolean;
}

/** A foreign key from `columns` to `table(referencedColumns)`. */
export interface ForeignKeyDefinition {
  readonly columns: readonly string[];
  readonly table: string;
  readonly referencedColumns: readonly string[];
  readonly onDelete?: 'CASCADE' | 'SET NULL' | 'RESTRICT';
}

/** A table declaration rendered to both dialects by {@link createTable}. */
export interface TableDefinition {
  readonly name: string;
  readonly columns: readonly ColumnDefinition[];
  /** Composite primary key; a `pk` column is the primary key when this is absent. */
  readonly primaryKey?: readonly string[];
  readonly indexes?: readonly IndexDefinition[];
  readonly foreignKeys?: readonly ForeignKeyDefinition[];
  /** Table CHECK constraints in SQL valid on both engines. */
  readonly checks?: readonly string[];
}

/** Renders a table declaration to the statements of both dialects (called at import time). */
export function createTable(table: TableDefinition): Record<SqlDialect, string[]> {
  return { mysql: [renderMysqlTable(table)], sqlite: renderSqliteTable(table) };
}

/** Concatenates the per-dialect statements of several {@link createTable} results, in order. */
export function joinStatements(parts: readonly Record<SqlDialect, readonly string[]>[]): Record<SqlDialect, string[]> {
  return { mysql: parts.flatMap((part) => part.mysql), sqlite: parts.flatMap((part) => part.sqlite) };
}

function quote(identifier: string): string {
  // Backticks quote identifiers on both engines (SQLite accepts them for MySQL compatibility).
  return '`' + identifier + '`';
}

function columnList(columns: readonly string[]): string {
  return columns.map(quote).join(', ');
}

function indexName(table: string, index: IndexDefinition): string {
  return `${table}_${index.columns.join('_')}_${index.unique === true ? 'unique' : 'idx'}`;
}

function literal(value: number | boolean | string): string {
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'number') return String(value);
  return `'${value.replaceAll("'", "''")}'`;
}

function varcharLength(type: ColumnType): number | undefined {
  const match = /^varchar\((\d+)\)$/.exec(type);
  return match === null ? (type === 'id' ? 64 : undefined) : Number(match[1]);
}

function mysqlType(type: ColumnType): string {
  switch (type) {
    case 'pk': return 'BIGINT UNSIGNED';
    case 'id': return 'VARCHAR(64)';
    case 'bigint': return 'BIGINT';
    case 'int': return 'INT';
    case 'bool': return 'TINYINT(1)';
    case 'double': return 'DOUBLE';
    case 'text': return 'TEXT';
    case 'json': return 'MEDIUMTEXT';
    default: return type.toUpperCase();
  }
}

function sqliteType(type: ColumnType): string {
  switch (type) {
    case 'pk':
    case 'bigint':
    case 'int':
    case 'bool':
      return 'INTEGER';
    case 'double':
      return 'REAL';
    default:
      return 'TEXT';
  }
}

function renderMysqlColumn(column: ColumnDefinition): string {
  let sql = `${quote(column.name)} ${mysqlType(column.type)}`;
  if (column.generatedAs !== undefined) return `${sql} GENERATED ALWAYS AS (${column.generatedAs}) STORED`;
  if (column.type === 'pk') return `${sql} NOT NULL AUTO_INCREMENT`;
  if (column.nullable !== true) sql += ' NOT NULL';
  if (column.default !== undefined) sql += ` DEFAULT ${literal(column.default)}`;
  return sql;
}

function renderMysqlTable(table: TableDefinition): string {
  const lines = table.columns.map(renderMysqlColumn);
  const primaryKey = table.primaryKey ?? table.columns.filter((column) => column.type === 'pk').map((column) => column.name);
  if (primaryKey.length > 0) lines.push(`PRIMARY KEY (${columnList(primaryKey)})`);
  for (const index of table.indexes ?? []) {
    lines.push(`${index.unique === true ? 'UNIQUE KEY' : 'KEY'} ${quote(indexName(table.name, index))} (${columnList(index.columns)})`);
  }
  for (const foreignKey of table.foreignKeys ?? []) lines.push(renderForeignKey(table.name, foreignKey, true));
  for (const check of table.checks ?? []) lines.push(`CHECK (${check})`);
  return `CREATE TABLE IF NOT EXISTS ${quote(table.name)} (\n  ${lines.join(',\n  ')}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`;
}

function renderForeignKey(tableName: string, foreignKey: ForeignKeyDefinition, named: boolean): string {
  // MySQL needs constraint names unique per database; SQLite does not name them.
  const name = named ? `CONSTRAINT ${quote(`${tableName}_${foreignKey.columns.join('_')}_fk`)} ` : '';
  const onDelete = foreignKey.onDelete === undefined ? '' : ` ON DELETE ${foreignKey.onDelete}`;
  return `${name}FOREIGN KEY (${columnList(foreignKey.columns)}) REFERENCES ${quote(foreignKey.table)} (${columnList(foreignKey.referencedColumns)})${onDelete}`;
}

function renderSqliteColumn(column: ColumnDefinition, compositePrimaryKey: boolean): string {
  let sql = `${quote(column.name)} ${sqliteType(column.type)}`;
  if (column.generatedAs !== undefined) return `${sql} GENERATED ALWAYS AS (${column.generatedAs}) STORED`;
  // INTEGER PRIMARY KEY aliases the rowid: auto-assigned, like AUTO_INCREMENT.
  if (column.type === 'pk' && !compositePrimaryKey) return `${sql} PRIMARY KEY`;
  if (column.nullable !== true) sql += ' NOT NULL';
  if (column.default !== undefined) sql += ` DEFAULT ${literal(column.default)}`;
  const maxLength = varcharLength(column.type);
  if (maxLength !== undefined) sql += ` CHECK (length(${quote(column.name)}) <= ${maxLength})`;
  if (column.type === 'bool') sql += ` CHECK (${quote(column.name)} IN (0, 1))`;
  return sql;
}

function renderSqliteTable(table: TableDefinition): string[] {
  const composite = table.primaryKey !== undefined;
  const lines = table.columns.map((column) => renderSqliteColumn(column, composite));
  if (table.primaryKey !== undefined) lines.push(`PRIMARY KEY (${columnList(table.primaryKey)})`);
  for (const foreignKey of table.foreignKeys ?? []) lines.push(renderForeignKey(table.name, foreignKey, false));
  for (const check of table.checks ?? []) lines.push(`CHECK (${check})`);
  const statements = [`CREATE TABLE IF NOT EXISTS ${quote(table.name)} (\n  ${lines.join(',\n  ')}\n) STRICT`];
  for (const index of table.indexes ?? []) {
    statements.push(
      `CREATE ${index.unique === true ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${quote(indexName(table.name, index))} ON ${quote(table.name)} (${columnList(index.columns)})`,
    );
  }
  return statements;
}
