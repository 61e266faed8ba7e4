/**
 * `SqliteDatabase`: the embedded engine on `node:sqlite` (`DatabaseSync`). One file, one
 * connection, WAL journal, foreign keys on, a busy timeout for other processes holding the
 * write lock. Statements run synchronously (microseconds); transactions may await between
 * statements, so they are serialised through an {@link AsyncMutex} and every other caller waits
 * for the commit or rollback.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { Fault } from '../fault.ts';
import { AsyncMutex } from './async-mutex.ts';
import type { Database, ExecuteResult, SqlParam, SqlRow } from './database.ts';
import { normalizeParams } from './sql-param.ts';
import { TransactionHandle, type FinishableDatabase, type SavepointControl } from './transaction-handle.ts';

/** SQLite-specific options of `openDatabase`. */
export interface SqliteOptions {
  /** How long a statement waits for another process's write lock before failing; default 5000. */
  busyTimeoutMs?: number;
  /** Prepared statements kept per connection (least recently prepared evicted); default 512. */
  maxCachedStatements?: number;
}

/** Default of {@link SqliteOptions.busyTimeoutMs}. */
export const DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 5_000;
/** Default of {@link SqliteOptions.maxCachedStatements}. */
export const DEFAULT_SQLITE_MAX_CACHED_STATEMENTS = 512;

// SQLite primary result codes (the low byte of the extended code).
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_CANTOPEN = 14;
const SQLITE_CONSTRAINT = 19;
// Extended constraint codes.
const SQLITE_CONSTRAINT_CHECK = 275;
const SQLITE_CONSTRAINT_FOREIGNKEY = 787;
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;

/** The SQLite engine. Create it with {@link SqliteDatabase.open} (or `openDatabase`). */
export class SqliteDatabase implements Database {
  readonly dialect = 'sqlite' as const;
  readonly path: string;
  readonly #connection: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  readonly #maxCachedStatements: number;
  readonly #mutex = new AsyncMutex();
  // Lets a statement notice that it was sent to the outer handle from inside a transaction.
  readonly #insideTransaction = new AsyncLocalStorage<{ active: boolean }>();
  #closed = false;

  private constructor(path: string, connection: DatabaseSync, maxCachedStatements: number) {
    this.path = path;
    this.#connection = connection;
    this.#maxCachedStatements = maxCachedStatements;
  }

  /**
   * Opens (creating if needed) the database file at `path`, or a private in-memory database for
   * `:memory:`. Creates the parent directory. Fails with `err:keygate:database:unavailable`.
   */
  static open(path: string, options: SqliteOptions = {}): SqliteDatabase {
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_SQLITE_BUSY_TIMEOUT_MS;
    let connection: DatabaseSync;
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      connection = new DatabaseSync(path, { timeout: busyTimeoutMs, enableForeignKeyConstraints: true });
      // WAL lets readers in other processes run while we write; NORMAL sync is durable in WAL
      // except for the last transactions on power loss, which is the usual trade-off.
      if (path !== ':memory:') connection.exec('PRAGMA journal_mode = WAL');
      connection.exec('PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON');
    } catch (err) {
      throw new Fault('err:keygate:database:unavailable', {
        source: 'upstream',
        internalMessage: `cannot open SQLite database ${path}: ${errorMessage(err)}`,
        cause: err,
      });
    }
    return new SqliteDatabase(path, connection, options.maxCachedStatements ?? DEFAULT_SQLITE_MAX_CACHED_STATEMENTS);
  }

  async query<T = SqlRow>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    if (this.#mutex.locked) return this.#whenUnlocked(() => this.runQuery<T>(sql, params));
    return this.runQuery<T>(sql, params);
  }

  async execute(sql: string, params?: readonly SqlParam[]): Promise<ExecuteResult> {
    if (this.#mutex.locked) return this.#whenUnlocked(() => this.runExecute(sql, params));
    return this.runExecute(sql, params);
  }

  async transaction<T>(fn: (tx: Database) => Promise<T>): Promise<T> {
    this.#assertNotInsideTransaction();
    const release = await this.#mutex.acquire();
    try {
      this.#assertOpen();
      // IMMEDIATE takes the write lock now, so two processes cannot both read and then
      // deadlock on upgrading to a write.
      this.#run('BEGIN IMMEDIATE');
      const tx = new SqliteTransaction(this, 0);
      // Work that fn leaves running after it settles keeps this context: `active` lets that
      // late work use the outer handle again instead of being mistaken for a deadlock.
      const marker = { active: true };
      try {
        const result = await this.#insideTransaction.run(marker, () => fn(tx));
        marker.active = false;
        tx.finish();
        this.#run('COMMIT');
        return result;
      } catch (err) {
        marker.active = false;
        tx.finish();
        this.#rollbackQuietly('ROLLBACK');
        throw err;
      }
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Wait for a running transaction so it is not cut off half way.
    const release = await this.#mutex.acquire();
    try {
      if (this.#closed) return;
      this.#closed = true;
      this.#statements.clear();
      this.#connection.close();
    } finally {
      release();
    }
  }

  /** Runs a row-returning statement now, without the lock. Internal: for transaction handles. */
  runQuery<T>(sql: string, params: readonly SqlParam[] | undefined): T[] {
    const statement = this.#prepare(sql);
    try {
      const rows = statement.all(...normalizeParams(params)) as SqlRow[];
      for (const row of rows) exactIntegers(row);
      return rows as T[];
    } catch (err) {
      throw sqliteFault(err);
    }
  }

  /** Runs a statement without rows now, without the lock. Internal: for transaction handles. */
  runExecute(sql: string, params: readonly SqlParam[] | undefined): ExecuteResult {
    const statement = this.#prepare(sql);
    try {
      const result = statement.run(...normalizeParams(params));
      return { affectedRows: Number(result.changes) };
    } catch (err) {
      throw sqliteFault(err);
    }
  }

  /** Runs SQL without parameters (transaction control). Internal: for transaction handles. */
  runStatement(sql: string): void {
    this.#run(sql);
  }

  /** Rolls back, ignoring a failure (the original error matters more). Internal. */
  rollbackQuietly(sql: string): void {
    this.#rollbackQuietly(sql);
  }

  #run(sql: string): void {
    this.#assertOpen();
    try {
      this.#connection.exec(sql);
    } catch (err) {
      throw sqliteFault(err);
    }
  }

  #rollbackQuietly(sql: string): void {
    try {
      this.#connection.exec(sql);
    } catch {
      // The transaction may already be gone (SQLite rolls back on some errors by itself).
    }
  }

  async #whenUnlocked<T>(run: () => T): Promise<T> {
    this.#assertNotInsideTransaction();
    const release = await this.#mutex.acquire();
    try {
      return run();
    } finally {
      release();
    }
  }

  #assertNotInsideTransaction(): void {
    if (this.#insideTransaction.getStore()?.active === true) {
      throw new Fault('err:unkey:application:assertion_failed', {
        internalMessage: 'the outer database handle was used inside its own transaction; use the tx handle',
      });
    }
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new Fault('err:keygate:database:unavailable', { internalMessage: 'the SQLite database is closed' });
    }
  }

  #prepare(sql: string): StatementSync {
    this.#assertOpen();
    let statement = this.#statements.get(sql);
    if (statement !== undefined) return statement;
    try {
      statement = this.#connection.prepare(sql);
    } catch (err) {
      throw sqliteFault(err);
    }
    // Read every integer as a bigint, then turn the safe ones back into numbers: a plain read
    // would throw on values beyond 2^53 instead of returning them exactly.
    statement.setReadBigInts(true);
    if (this.#statements.size >= this.#maxCachedStatements) {
      const oldest = this.#statements.keys().next().value;
      if (oldest !== undefined) this.#statements.delete(oldest);
    }
    this.#statements.set(sql, statement);
    return statement;
  }
}

/** A transaction (or savepoint) handle on a {@link SqliteDatabase}; valid until it finishes. */
class SqliteTransaction implements FinishableDatabase {
  readonly dialect = 'sqlite' as const;
  readonly #owner: SqliteDatabase;
  readonly #handle: TransactionHandle;
  readonly #savepoints: SavepointControl;

  constructor(owner: SqliteDatabase, depth: number) {
    this.#owner = owner;
    this.#handle = new TransactionHandle(depth);
    this.#savepoints = {
      begin: (savepoint) => owner.runStatement(`SAVEPOINT ${savepoint}`),
      release: (savepoint) => owner.runStatement(`RELEASE ${savepoint}`),
      rollbackQuietly: (savepoint) => owner.rollbackQuietly(`ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`),
    };
  }

  async query<T = SqlRow>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    this.#handle.assertUsable();
    return this.#owner.runQuery<T>(sql, params);
  }

  async execute(sql: string, params?: readonly SqlParam[]): Promise<ExecuteResult> {
    this.#handle.assertUsable();
    return this.#owner.runExecute(sql, params);
  }

  async transaction<T>(fn: (tx: Database) => Promise<T>): Promise<T> {
    return this.#handle.nested(this.#savepoints, (depth) => new SqliteTransaction(this.#owner, depth), fn);
  }

  async close(): Promise<void> {
    // The owner closes the connection; a transaction handle has nothing of its own.
  }

  /** Marks the handle as spent: a statement sent after commit/rollback would run outside it. */
  finish(): void {
    this.#handle.finish();
  }
}

/** Turns the bigints that fit into a double exactly back into numbers, in place. */
function exactIntegers(row: SqlRow): void {
  for (const column in row) {
    const value = row[column];
    if (typeof value === 'bigint' && value >= MIN_SAFE && value <= MAX_SAFE) row[column] = Number(value);
  }
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Maps a `node:sqlite` error to a Fault by its extended result code. */
function sqliteFault(err: unknown): Fault {
  if (err instanceof Fault) return err;
  const code = typeof (err as { errcode?: unknown })?.errcode === 'number' ? (err as { errcode: number }).errcode : -1;
  const message = errorMessage(err);
  switch (code) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return Fault.expected('err:keygate:database:conflict', { internalMessage: message, cause: err });
    case SQLITE_CONSTRAINT_CHECK:
      return Fault.expected('err:unkey:application:invalid_input', {
        publicMessage: 'A value is out of range or too long.',
        internalMessage: message,
        cause: err,
      });
  }
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
      return new Fault('err:keygate:database:unavailable', { source: 'upstream', retryable: true, internalMessage: message, cause: err });
    case SQLITE_CONSTRAINT:
      return Fault.expected('err:keygate:database:conflict', { internalMessage: message, cause: err });
  }
  return Fault.from(err);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
