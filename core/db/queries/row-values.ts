/**
 * Readers and writers for column values, shared by the query modules: they turn the engines'
 * raw values (0/1, NULL, bigint, JSON text) into the typed shapes the rest of keygate sees
 * (booleans, `undefined`, numbers, parsed objects), and check values on the way in.
 */
import { Fault } from '../../fault.ts';
import type { Database, SqlParam } from '../database.ts';

/** Most rows one multi-row INSERT carries; larger batches are split (bounds packet size). */
export const MAX_ROWS_PER_INSERT = 500;
/** Default page size of the list functions. */
export const DEFAULT_PAGE_SIZE = 100;
/** Largest page size the list functions accept. */
export const MAX_PAGE_SIZE = 1_000;

/** A JSON object as stored in a `json` column. */
export type JsonObject = Record<string, unknown>;

/** One page of a cursor-paginated list: `nextCursor` is the id of the first row of the next page. */
export interface Page<T> {
  items: T[];
  /** Present only when there is a next page; pass it back as `cursor` (inclusive). */
  nextCursor?: string;
}

/** A column value as a boolean (engines store 0/1). */
export function readBoolean(value: unknown): boolean {
  return value === 1 || value === true || value === 1n || value === '1';
}

/**
 * A column value as a number. Throws `assertion_failed` when the stored integer is beyond
 * ±2^53 (only possible when something other than keygate wrote it): rounding it silently would
 * be worse, for example for a credit balance.
 */
export function readNumber(value: unknown, column: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint' || typeof value === 'string') {
    const number = Number(value);
    // An integer must be exact; a fractional value (a DECIMAL string) only finite.
    const exact = typeof value === 'string' && !/^-?\d+$/.test(value) ? Number.isFinite(number) : Number.isSafeInteger(number);
    if (exact) return number;
  }
  throw new Fault('err:unkey:application:assertion_failed', {
    internalMessage: `column ${column} holds ${typeof value} ${String(value)}, not a number keygate can represent exactly`,
  });
}

/** A nullable numeric column: NULL becomes `undefined`. */
export function readOptionalNumber(value: unknown, column: string): number | undefined {
  return value === null || value === undefined ? undefined : readNumber(value, column);
}

/** A nullable text column: NULL becomes `undefined`. */
export function readOptionalString(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

/** A JSON object column: NULL (or corrupt text, reported as a fault) becomes `undefined`. */
export function readJsonObject(value: unknown, column: string): JsonObject | undefined {
  const parsed = readJson(value, column);
  if (parsed === undefined) return undefined;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw corrupt(column, 'is not a JSON object');
  }
  return parsed as JsonObject;
}

/** A JSON array column; NULL becomes an empty array. */
export function readJsonArray<T = unknown>(value: unknown, column: string): T[] {
  const parsed = readJson(value, column);
  if (parsed === undefined) return [];
  if (!Array.isArray(parsed)) throw corrupt(column, 'is not a JSON array');
  return parsed as T[];
}

function readJson(value: unknown, column: string): unknown {
  if (value === null || value === undefined) return undefined;
  try {
    return JSON.parse(String(value));
  } catch {
    throw corrupt(column, 'is not valid JSON');
  }
}

function corrupt(column: string, what: string): Fault {
  return new Fault('err:unkey:application:assertion_failed', { internalMessage: `column ${column} ${what}` });
}

/** JSON text for a `json` column: `null` clears it, `undefined` stays `undefined` (unchanged). */
export function writeJson(value: unknown): string | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  return JSON.stringify(value);
}

/**
 * Checks that an integer is exact in a JS number before it is written: a value beyond 2^53 has
 * already been rounded by whatever produced it. Throws `invalid_input` naming the field.
 */
export function checkInteger(value: number | null | undefined, field: string): void {
  if (value === null || value === undefined || Number.isSafeInteger(value)) return;
  throw Fault.expected('err:unkey:application:invalid_input', {
    publicMessage: `${field} must be an integer between -(2^53-1) and 2^53-1.`,
  });
}

/** `?, ?, ?` for `count` parameters. */
export function placeholders(count: number): string {
  return count === 0 ? '' : '?' + ', ?'.repeat(count - 1);
}

/** Clamps a requested page size to 1..{@link MAX_PAGE_SIZE}, defaulting to {@link DEFAULT_PAGE_SIZE}. */
export function pageSize(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_PAGE_SIZE;
  return Math.min(MAX_PAGE_SIZE, Math.max(1, Math.trunc(limit)));
}

/** Splits fetched `limit + 1` rows into a page and the cursor of the next one. */
export function toPage<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  if (rows.length <= limit) return { items: rows };
  return { items: rows.slice(0, limit), nextCursor: rows[limit]!.id };
}

/**
 * Inserts many rows with one statement per {@link MAX_ROWS_PER_INSERT} rows; `columns` are
 * quoted identifiers in order, `values(row)` returns the row's parameters in the same order.
 * Returns the number of rows written.
 */
export async function insertMany<T>(
  db: Database,
  table: string,
  columns: readonly string[],
  rows: readonly T[],
  values: (row: T) => readonly SqlParam[],
): Promise<number> {
  let written = 0;
  for (let start = 0; start < rows.length; start += MAX_ROWS_PER_INSERT) {
    const chunk = rows.slice(start, start + MAX_ROWS_PER_INSERT);
    const params: SqlParam[] = [];
    for (const row of chunk) params.push(...values(row));
    written += (await db.execute(insertSql(table, columns, chunk.length), params)).affectedRows;
  }
  return written;
}

/**
 * The SQL of a multi-row INSERT, built once per (table, columns, row count) and then the same
 * string object: batch writers send the same shape again and again, and a reused string keeps its
 * hash, so the engines' statement caches find it without rebuilding or re-hashing kilobytes of
 * placeholders per batch. Per batch; bounded (a handful of tables, row counts 1…MAX_ROWS_PER_INSERT).
 */
function insertSql(table: string, columns: readonly string[], rowCount: number): string {
  const head = `INSERT INTO ${table} (${columns.join(', ')}) VALUES `;
  let byCount = insertSqlCache.get(head);
  if (byCount === undefined) {
    if (insertSqlCache.size >= MAX_CACHED_INSERT_SHAPES) insertSqlCache.clear();
    insertSqlCache.set(head, byCount = []);
  }
  let sql = byCount[rowCount];
  if (sql === undefined) {
    const rowPlaceholders = `(${placeholders(columns.length)})`;
    sql = head + new Array(rowCount).fill(rowPlaceholders).join(', ');
    byCount[rowCount] = sql;
  }
  return sql;
}

/** Distinct INSERT heads (table + columns) kept by {@link insertSql}; the code has a handful. */
const MAX_CACHED_INSERT_SHAPES = 64;
/** {@link insertSql}'s statements by INSERT head, then by row count. */
const insertSqlCache = new Map<string, string[]>();

const prefixedColumnTables = new WeakMap<readonly string[], Map<string, Record<string, string>>>();

/**
 * `{ column: prefix + column }` for a table's columns, built once per (table, prefix) and shared:
 * a row mapper that reads `row[names.id]` instead of `row[prefix + 'id']` allocates no temporary
 * string per column (the key-verification cache miss maps ~50 columns per key). Called per row;
 * `columns` must be a module constant (the tables are keyed by its identity).
 */
export function prefixedColumns<C extends string>(prefix: string, columns: readonly C[]): Readonly<Record<C, string>> {
  let byPrefix = prefixedColumnTables.get(columns);
  if (byPrefix === undefined) {
    byPrefix = new Map();
    prefixedColumnTables.set(columns, byPrefix);
  }
  let table = byPrefix.get(prefix);
  if (table === undefined) {
    table = {};
    for (const column of columns) table[column] = prefix + column;
    byPrefix.set(prefix, table);
  }
  return table as Record<C, string>;
}
