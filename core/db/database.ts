/**
 * The database contract shared by every part of keygate, and `openDatabase`, which picks the
 * engine from a URL: SQLite (`node:sqlite`, the embedded default) or MySQL/MariaDB (`mysql2`).
 * Both engines take the same SQL with `?` placeholders and hand back plain row objects whose
 * integers are exact: a JS number when it is a safe integer, a bigint otherwise.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { Fault } from '../fault.ts';
import type { MysqlOptions } from './mysql.ts';
import { SqliteDatabase, type SqliteOptions } from './sqlite.ts';

/** The SQL dialect of a {@link Database}; the query layer picks engine-specific SQL with it. */
export type SqlDialect = 'sqlite' | 'mysql';

/**
 * One positional parameter. Booleans are stored as 1/0 and `undefined` as NULL on both engines;
 * anything else (objects, arrays, dates) is rejected with a Fault, so a caller must serialise
 * JSON and timestamps explicitly and `IN (?)` never silently expands on one engine only.
 */
export type SqlParam = string | number | bigint | boolean | null | undefined | Uint8Array;

/** A row as the engine returns it: column name → value. */
export type SqlRow = Record<string, unknown>;

/** What {@link Database.execute} reports: rows matched by an UPDATE/DELETE, rows written by an INSERT. */
export interface ExecuteResult {
  affectedRows: number;
}

/**
 * A database handle. Every method may throw a `Fault`:
 * `err:keygate:database:conflict` for a duplicate key or a missing referenced row,
 * `err:keygate:database:unavailable` (retryable) when the server cannot be reached or is busy,
 * `err:unkey:application:invalid_input` for a value too long for its column, and
 * `err:unkey:application:unexpected_error` for anything else (for example an SQL syntax error).
 */
export interface Database {
  readonly dialect: SqlDialect;
  /** Runs a statement that returns rows. */
  query<T = SqlRow>(sql: string, params?: readonly SqlParam[]): Promise<T[]>;
  /** Runs a statement that returns no rows (INSERT, UPDATE, DELETE, DDL). */
  execute(sql: string, params?: readonly SqlParam[]): Promise<ExecuteResult>;
  /**
   * Runs `fn` in a transaction: committed when `fn` resolves, rolled back when it throws (the
   * error is rethrown). Inside `fn`, use only `tx`: on SQLite the outer handle waits for the
   * transaction to end, so using it from inside would never finish (it throws a Fault instead).
   * Calling `tx.transaction` nests through a savepoint.
   */
  transaction<T>(fn: (tx: Database) => Promise<T>): Promise<T>;
  /** Closes the connection or pool; waits for the statements in flight. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link openDatabase}; the engine-specific ones apply only to that engine. */
export interface OpenDatabaseOptions extends SqliteOptions, MysqlOptions {
  /**
   * Directory that relative SQLite paths are resolved against, and where an empty URL puts
   * `keygate.db`. Defaults to the working directory.
   */
  dataDir?: string;
}

/** File name of the SQLite database inside the data directory when no URL is given. */
export const DEFAULT_SQLITE_FILE_NAME = 'keygate.db';

/**
 * Opens a database from a URL, at process start (or once per test):
 * - `mysql://user:password@host:port/database` (also `mariadb://`; `?socket=/path` connects over
 *   a Unix socket, `?connectionLimit=N` bounds the pool): checked with one round trip before returning;
 * - `:memory:` or `sqlite::memory:`: a private in-memory SQLite database;
 * - `sqlite:PATH`, `sqlite://PATH` or a bare `PATH`: a SQLite file (parent directory created);
 * - `''`: `<dataDir>/keygate.db`.
 * Fails with `err:keygate:config:invalid` for an unknown scheme and
 * `err:keygate:database:unavailable` when the database cannot be opened or reached.
 */
export async function openDatabase(url: string, options: OpenDatabaseOptions = {}): Promise<Database> {
  const trimmed = url.trim();
  if (/^(mysql|mariadb):\/\//i.test(trimmed)) {
    // Loaded on demand: an embedded (SQLite) node never pays for the MySQL driver.
    const { MysqlDatabase } = await import('./mysql.ts');
    return MysqlDatabase.connect(trimmed, options);
  }
  const sqlitePath = sqlitePathFromUrl(trimmed, options.dataDir);
  return SqliteDatabase.open(sqlitePath, options);
}

/** Resolves a SQLite URL to a file path (or `:memory:`); exported for the CLI's messages. */
export function sqlitePathFromUrl(url: string, dataDir?: string): string {
  let path = url;
  if (/^sqlite:/i.test(path)) {
    path = path.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    // A URL with a scheme we do not speak (postgres://…) must not be mistaken for a file name.
    throw new Fault('err:keygate:config:invalid', {
      publicMessage: 'Unsupported database URL: use a SQLite path, sqlite:PATH or mysql://…',
      internalMessage: `unsupported database URL scheme: ${path.slice(0, path.indexOf(':'))}`,
    });
  }
  if (path === ':memory:') return path;
  if (path === '') path = DEFAULT_SQLITE_FILE_NAME;
  if (isAbsolute(path)) return path;
  return dataDir === undefined ? resolve(path) : resolve(join(dataDir, path));
}
