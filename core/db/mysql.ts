/**
 * `MysqlDatabase`: the cluster engine on `mysql2/promise` (MySQL 8 or MariaDB 10.6+). A pool with
 * a bounded number of connections and a bounded wait queue; every statement has a timeout.
 * BIGINTs arrive as strings (`supportBigNumbers` + `bigNumberStrings`, so nothing is rounded) and
 * are turned back into numbers when they are safe integers, bigints otherwise.
 */
import mysql from 'mysql2/promise';
import type { Pool, PoolConnection, PoolOptions, ResultSetHeader } from 'mysql2/promise';
import { Fault } from '../fault.ts';
import type { Database, ExecuteResult, SqlParam, SqlRow } from './database.ts';
import { normalizeParams, type BoundParam } from './sql-param.ts';
import { TransactionHandle, type FinishableDatabase, type SavepointControl } from './transaction-handle.ts';

/** MySQL-specific options of `openDatabase`; the URL's query parameters override them. */
export interface MysqlOptions {
  /** Most connections the pool opens; default 10 (URL: `?connectionLimit=`). */
  connectionLimit?: number;
  /** Most callers waiting for a free connection before failing as unavailable; default 1000. */
  maxQueuedRequests?: number;
  /** Time to establish a connection; default 10000 (URL: `?connectTimeoutMs=`). */
  connectTimeoutMs?: number;
  /** Longest a single statement may run before it fails as unavailable; default 30000. */
  statementTimeoutMs?: number;
}

/** Default of {@link MysqlOptions.connectionLimit}. */
export const DEFAULT_MYSQL_CONNECTION_LIMIT = 10;
/** Default of {@link MysqlOptions.maxQueuedRequests}. */
export const DEFAULT_MYSQL_MAX_QUEUED_REQUESTS = 1_000;
/** Default of {@link MysqlOptions.connectTimeoutMs}. */
export const DEFAULT_MYSQL_CONNECT_TIMEOUT_MS = 10_000;
/** Default of {@link MysqlOptions.statementTimeoutMs}. */
export const DEFAULT_MYSQL_STATEMENT_TIMEOUT_MS = 30_000;

// Strict mode everywhere, whatever the server's default: a too-long value must fail as it does
// on SQLite (a CHECK constraint there), never be silently truncated.
const SESSION_SQL_MODE =
  'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

const ER_DUP_ENTRY = 1062;
const ER_ROW_IS_REFERENCED_2 = 1451;
const ER_NO_REFERENCED_ROW_2 = 1452;
const ER_DATA_TOO_LONG = 1406;
const ER_WARN_DATA_OUT_OF_RANGE = 1264;
const ER_CHECK_CONSTRAINT_VIOLATED = 3819; // MySQL 8
const ER_CONSTRAINT_FAILED = 4025; // MariaDB
const ER_LOCK_WAIT_TIMEOUT = 1205;
const ER_LOCK_DEADLOCK = 1213;
const ER_CON_COUNT_ERROR = 1040;
const ER_ACCESS_DENIED_ERROR = 1045;
const ER_BAD_DB_ERROR = 1049;
const ER_SERVER_SHUTDOWN = 1053;
const ER_QUERY_INTERRUPTED = 1317;

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
  'ENETUNREACH', 'ENOENT', 'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'POOL_CLOSED',
  'POOL_ENQUEUELIMIT',
]);

/** The MySQL engine. Create it with {@link MysqlDatabase.connect} (or `openDatabase`). */
export class MysqlDatabase implements Database {
  readonly dialect = 'mysql' as const;
  readonly #pool: Pool;
  readonly #statementTimeoutMs: number;
  #closing: Promise<void> | undefined;

  private constructor(pool: Pool, statementTimeoutMs: number) {
    this.#pool = pool;
    this.#statementTimeoutMs = statementTimeoutMs;
  }

  /**
   * Creates the pool for `url` and checks it with one round trip. Fails with
   * `err:keygate:config:invalid` for a malformed URL and `err:keygate:database:unavailable`
   * when the server cannot be reached or refuses the credentials.
   */
  static async connect(url: string, options: MysqlOptions = {}): Promise<MysqlDatabase> {
    const poolOptions = mysqlPoolOptions(url, options);
    const pool = mysql.createPool(poolOptions);
    pool.on('connection', (connection) => {
      connection.query(`SET SESSION sql_mode = '${SESSION_SQL_MODE}'`);
    });
    const database = new MysqlDatabase(pool, options.statementTimeoutMs ?? DEFAULT_MYSQL_STATEMENT_TIMEOUT_MS);
    try {
      await database.query('SELECT 1');
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return database;
  }

  async query<T = SqlRow>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    return runQuery<T>(this.#pool, sql, normalizeParams(params), this.#statementTimeoutMs);
  }

  async execute(sql: string, params?: readonly SqlParam[]): Promise<ExecuteResult> {
    return runExecute(this.#pool, sql, normalizeParams(params), this.#statementTimeoutMs);
  }

  async transaction<T>(fn: (tx: Database) => Promise<T>): Promise<T> {
    let connection: PoolConnection;
    try {
      connection = await this.#pool.getConnection();
    } catch (err) {
      throw mysqlFault(err);
    }
    const tx = new MysqlTransaction(connection, this.#statementTimeoutMs, 0);
    let healthy = true;
    try {
      await tx.execute('START TRANSACTION');
      const result = await fn(tx);
      tx.finish();
      await runExecute(connection, 'COMMIT', [], this.#statementTimeoutMs);
      return result;
    } catch (err) {
      tx.finish();
      try {
        await runExecute(connection, 'ROLLBACK', [], this.#statementTimeoutMs);
      } catch {
        // The connection is broken; do not hand it to the next caller.
        healthy = false;
      }
      throw err;
    } finally {
      if (healthy) connection.release();
      else connection.destroy();
    }
  }

  async close(): Promise<void> {
    this.#closing ??= this.#pool.end().catch(() => undefined);
    return this.#closing;
  }
}

/** A transaction (or savepoint) handle pinned to one pooled connection. */
class MysqlTransaction implements FinishableDatabase {
  readonly dialect = 'mysql' as const;
  readonly #connection: PoolConnection;
  readonly #statementTimeoutMs: number;
  readonly #handle: TransactionHandle;
  readonly #savepoints: SavepointControl;

  constructor(connection: PoolConnection, statementTimeoutMs: number, depth: number) {
    this.#connection = connection;
    this.#statementTimeoutMs = statementTimeoutMs;
    this.#handle = new TransactionHandle(depth);
    this.#savepoints = {
      begin: (savepoint) => runExecute(connection, `SAVEPOINT ${savepoint}`, [], statementTimeoutMs),
      release: (savepoint) => runExecute(connection, `RELEASE SAVEPOINT ${savepoint}`, [], statementTimeoutMs),
      rollbackQuietly: (savepoint) =>
        runExecute(connection, `ROLLBACK TO SAVEPOINT ${savepoint}`, [], statementTimeoutMs).catch(() => undefined),
    };
  }

  async query<T = SqlRow>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    this.#handle.assertUsable();
    return runQuery<T>(this.#connection, sql, normalizeParams(params), this.#statementTimeoutMs);
  }

  async execute(sql: string, params?: readonly SqlParam[]): Promise<ExecuteResult> {
    this.#handle.assertUsable();
    return runExecute(this.#connection, sql, normalizeParams(params), this.#statementTimeoutMs);
  }

  async transaction<T>(fn: (tx: Database) => Promise<T>): Promise<T> {
    return this.#handle.nested(
      this.#savepoints,
      (depth) => new MysqlTransaction(this.#connection, this.#statementTimeoutMs, depth),
      fn,
    );
  }

  async close(): Promise<void> {
    // The owning MysqlDatabase releases the connection when the transaction ends.
  }

  /** Marks the handle as spent: a statement sent after commit/rollback would run outside it. */
  finish(): void {
    this.#handle.finish();
  }
}

type Queryable = Pick<Pool, 'query'> | Pick<PoolConnection, 'query'>;

async function runQuery<T>(target: Queryable, sql: string, params: BoundParam[], timeoutMs: number): Promise<T[]> {
  try {
    const [rows] = await target.query({ sql, values: params, timeout: timeoutMs });
    return rows as T[];
  } catch (err) {
    throw mysqlFault(err);
  }
}

async function runExecute(target: Queryable, sql: string, params: BoundParam[], timeoutMs: number): Promise<ExecuteResult> {
  try {
    const [result] = await target.query({ sql, values: params, timeout: timeoutMs });
    return { affectedRows: (result as ResultSetHeader).affectedRows ?? 0 };
  } catch (err) {
    throw mysqlFault(err);
  }
}

/** Builds the mysql2 pool options from a `mysql://` URL; never puts the password in a message. */
function mysqlPoolOptions(url: string, options: MysqlOptions): PoolOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new Fault('err:keygate:config:invalid', {
      publicMessage: 'The MySQL URL is malformed: expected mysql://user:password@host:port/database',
      cause: err,
    });
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database === '') {
    throw new Fault('err:keygate:config:invalid', { publicMessage: 'The MySQL URL names no database: mysql://…/<database>' });
  }
  const search = parsed.searchParams;
  const socketPath = search.get('socket') ?? search.get('socketPath') ?? undefined;
  const connectionLimit = positiveInteger(search.get('connectionLimit'), 'connectionLimit') ?? options.connectionLimit ?? DEFAULT_MYSQL_CONNECTION_LIMIT;
  const connectTimeoutMs = positiveInteger(search.get('connectTimeoutMs'), 'connectTimeoutMs') ?? options.connectTimeoutMs ?? DEFAULT_MYSQL_CONNECT_TIMEOUT_MS;
  return {
    ...(socketPath === undefined ? { host: parsed.hostname || '127.0.0.1', port: parsed.port === '' ? 3306 : Number(parsed.port) } : { socketPath }),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database,
    connectionLimit,
    maxIdle: connectionLimit,
    idleTimeout: 60_000,
    queueLimit: options.maxQueuedRequests ?? DEFAULT_MYSQL_MAX_QUEUED_REQUESTS,
    waitForConnections: true,
    connectTimeout: connectTimeoutMs,
    enableKeepAlive: true,
    charset: 'utf8mb4',
    timezone: 'Z',
    supportBigNumbers: true,
    bigNumberStrings: true,
    multipleStatements: false,
    typeCast: (field, next) => {
      if (field.type === 'LONGLONG' || field.type === 'NEWDECIMAL') return exactNumber(field.string());
      return next();
    },
  };
}

function positiveInteger(text: string | null, name: string): number | undefined {
  if (text === null) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Fault('err:keygate:config:invalid', { publicMessage: `The MySQL URL parameter ${name} must be a positive integer.` });
  }
  return value;
}

/** A BIGINT/DECIMAL string as a number when that is exact, a bigint for larger integers. */
function exactNumber(text: string | null): number | bigint | string | null {
  if (text === null) return null;
  if (/^-?\d+$/.test(text)) {
    const value = Number(text);
    return Number.isSafeInteger(value) ? value : BigInt(text);
  }
  // A fractional DECIMAL stays a string: no column of ours has one, and a double would round.
  return text;
}

/** Maps a mysql2 error to a Fault by its server error number or client error code. */
function mysqlFault(err: unknown): Fault {
  if (err instanceof Fault) return err;
  const details = err as { errno?: unknown; code?: unknown; fatal?: unknown; message?: unknown };
  const errno = typeof details.errno === 'number' ? details.errno : 0;
  const code = typeof details.code === 'string' ? details.code : '';
  const message = err instanceof Error ? err.message : String(err);
  switch (errno) {
    case ER_DUP_ENTRY:
    case ER_NO_REFERENCED_ROW_2:
    case ER_ROW_IS_REFERENCED_2:
      return Fault.expected('err:keygate:database:conflict', { internalMessage: message, cause: err });
    case ER_DATA_TOO_LONG:
    case ER_WARN_DATA_OUT_OF_RANGE:
    case ER_CHECK_CONSTRAINT_VIOLATED:
    case ER_CONSTRAINT_FAILED:
      return Fault.expected('err:unkey:application:invalid_input', {
        publicMessage: 'A value is out of range or too long.',
        internalMessage: message,
        cause: err,
      });
    case ER_LOCK_WAIT_TIMEOUT:
    case ER_LOCK_DEADLOCK:
    case ER_CON_COUNT_ERROR:
    case ER_SERVER_SHUTDOWN:
    case ER_QUERY_INTERRUPTED:
      return new Fault('err:keygate:database:unavailable', { source: 'upstream', retryable: true, internalMessage: message, cause: err });
    case ER_ACCESS_DENIED_ERROR:
    case ER_BAD_DB_ERROR:
      // Configuration, not a blip: retrying will not help.
      return new Fault('err:keygate:database:unavailable', { source: 'upstream', retryable: false, internalMessage: message, cause: err });
  }
  if (CONNECTION_ERROR_CODES.has(code) || details.fatal === true || /queue limit|pool is closed|timeout/i.test(message)) {
    return new Fault('err:keygate:database:unavailable', { source: 'upstream', retryable: true, internalMessage: message, cause: err });
  }
  return Fault.from(err);
}
