/**
 * `migrate`: brings a database to the newest schema this code knows. Keeps a
 * `schema_migrations(version, name, applied_at_m)` table, applies what is missing in order and
 * records each migration as it completes. Safe to run again (nothing is re-applied) and from
 * several processes at once. Called by `keygate migrate` and at start-up.
 */
import { systemClock, type Clock } from '../clock.ts';
import { Fault } from '../fault.ts';
import type { Database } from './database.ts';
import { migrationId, type Migration } from './migration.ts';
import { migration0001 } from './migrations/0001-api-service.ts';
import { migration0002 } from './migrations/0002-frontline.ts';
import { migration0003 } from './migrations/0003-gateway.ts';
import { migration0004 } from './migrations/0004-gateway-bodies.ts';
import { migration0005 } from './migrations/0005-lean-verification-indexes.ts';
import { migration0006 } from './migrations/0006-packed-verification-events.ts';

/** Every migration the code knows, oldest first. Append new ones; never edit or reorder. */
export const MIGRATIONS: readonly Migration[] = [
  migration0001, migration0002, migration0003, migration0004, migration0005, migration0006,
];

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Source of `applied_at_m`; defaults to the system clock. */
  clock?: Clock;
  /** The migrations to apply, for tests; defaults to {@link MIGRATIONS}. */
  migrations?: readonly Migration[];
  /** MySQL: how long to wait for another process's migration lock; default 60000. */
  lockTimeoutMs?: number;
}

/** Default of {@link MigrateOptions.lockTimeoutMs}. */
export const DEFAULT_MIGRATE_LOCK_TIMEOUT_MS = 60_000;

/** Prefix of the advisory lock that serialises migrators of one MySQL database (locks are server-wide). */
const MYSQL_LOCK_PREFIX = 'keygate_migrate:';
// MySQL lock names are at most 64 characters.
const MYSQL_LOCK_NAME_SQL = 'LEFT(CONCAT(?, DATABASE()), 64)';

interface AppliedRow {
  version: number;
  name: string;
}

/**
 * Applies the missing migrations and returns their ids (`0001-api-service`), empty when the
 * schema was already current. Fails with `err:keygate:database:migration_failed` when the
 * database has a migration newer than this code (refusing to run an old binary on a newer
 * schema), when a recorded migration's name differs from the code's, or when a statement fails
 * (the cause is attached; on SQLite the failed migration is rolled back, on MySQL, where DDL
 * commits implicitly, each table appears whole and running `migrate` again completes the rest).
 */
export async function migrate(db: Database, options: MigrateOptions = {}): Promise<{ applied: string[] }> {
  const migrations = options.migrations ?? MIGRATIONS;
  assertWellFormed(migrations);
  const clock = options.clock ?? systemClock;
  await db.execute(
    'CREATE TABLE IF NOT EXISTS `schema_migrations` (`version` INTEGER NOT NULL PRIMARY KEY, `name` VARCHAR(256) NOT NULL, `applied_at_m` BIGINT NOT NULL)',
  );
  if (db.dialect === 'mysql') return migrateMysql(db, migrations, clock, options.lockTimeoutMs ?? DEFAULT_MIGRATE_LOCK_TIMEOUT_MS);
  return migrateSqlite(db, migrations, clock);
}

async function migrateSqlite(db: Database, migrations: readonly Migration[], clock: Clock): Promise<{ applied: string[] }> {
  const applied: string[] = [];
  const pending = pendingMigrations(await readApplied(db), migrations);
  for (const migration of pending) {
    // One transaction per migration: DDL is transactional on SQLite, so a migration is applied
    // whole or not at all. The re-check inside covers another process that got there first.
    const ran = await db.transaction(async (tx) => {
      const stillPending = pendingMigrations(await readApplied(tx), migrations);
      if (!stillPending.some((candidate) => candidate.version === migration.version)) return false;
      await applyMigration(tx, migration, clock);
      return true;
    });
    if (ran) applied.push(migrationId(migration));
  }
  return { applied };
}

async function migrateMysql(db: Database, migrations: readonly Migration[], clock: Clock, lockTimeoutMs: number): Promise<{ applied: string[] }> {
  // A transaction here only pins one connection for the advisory lock: MySQL commits each DDL
  // statement by itself, so the work is made re-runnable (CREATE … IF NOT EXISTS) instead.
  return db.transaction(async (session) => {
    const [lock] = await session.query<{ acquired: number | null }>(`SELECT GET_LOCK(${MYSQL_LOCK_NAME_SQL}, ?) AS acquired`, [
      MYSQL_LOCK_PREFIX,
      Math.ceil(lockTimeoutMs / 1000),
    ]);
    if (lock?.acquired !== 1) {
      throw new Fault('err:keygate:database:migration_failed', {
        retryable: true,
        internalMessage: `another process held the migration lock for more than ${lockTimeoutMs} ms`,
      });
    }
    try {
      const applied: string[] = [];
      for (const migration of pendingMigrations(await readApplied(session), migrations)) {
        await applyMigration(session, migration, clock);
        applied.push(migrationId(migration));
      }
      return { applied };
    } finally {
      await session.query(`SELECT RELEASE_LOCK(${MYSQL_LOCK_NAME_SQL}) AS released`, [MYSQL_LOCK_PREFIX]).catch(() => undefined);
    }
  });
}

async function readApplied(db: Database): Promise<AppliedRow[]> {
  const rows = await db.query<{ version: number | bigint; name: string }>('SELECT `version`, `name` FROM `schema_migrations` ORDER BY `version`');
  return rows.map((row) => ({ version: Number(row.version), name: row.name }));
}

/** The known migrations not yet applied; throws when the database is ahead of or unlike the code. */
function pendingMigrations(applied: readonly AppliedRow[], migrations: readonly Migration[]): Migration[] {
  const newestKnown = migrations.at(-1)?.version ?? 0;
  const byVersion = new Map(migrations.map((migration) => [migration.version, migration]));
  for (const row of applied) {
    if (row.version > newestKnown) {
      throw new Fault('err:keygate:database:migration_failed', {
        publicMessage: 'The database schema is newer than this version of keygate; upgrade keygate.',
        internalMessage: `the database has migration ${migrationId(row)}, but this keygate knows migrations up to version ${newestKnown}`,
      });
    }
    const known = byVersion.get(row.version);
    if (known !== undefined && known.name !== row.name) {
      throw new Fault('err:keygate:database:migration_failed', {
        internalMessage: `migration ${row.version} is recorded as '${row.name}' but this keygate calls it '${known.name}'`,
      });
    }
  }
  const appliedVersions = new Set(applied.map((row) => row.version));
  return migrations.filter((migration) => !appliedVersions.has(migration.version));
}

async function applyMigration(db: Database, migration: Migration, clock: Clock): Promise<void> {
  for (const statement of migration.statements[db.dialect]) {
    try {
      await db.execute(statement);
    } catch (err) {
      throw new Fault('err:keygate:database:migration_failed', {
        internalMessage: `migration ${migrationId(migration)} failed: ${err instanceof Error ? err.message : String(err)}`,
        cause: err,
      });
    }
  }
  await db.execute('INSERT INTO `schema_migrations` (`version`, `name`, `applied_at_m`) VALUES (?, ?, ?)', [
    migration.version,
    migration.name,
    clock.nowMs(),
  ]);
}

function assertWellFormed(migrations: readonly Migration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1 || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(migration.name)) {
      throw new Fault('err:keygate:database:migration_failed', {
        internalMessage: `migration list is malformed at position ${index + 1}: versions must run 1, 2, 3 … with kebab-case names`,
      });
    }
  });
}
