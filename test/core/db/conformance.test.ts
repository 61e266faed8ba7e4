/**
 * One contract, two engines: every case below runs against a temporary SQLite file and a
 * throwaway database on this machine's MariaDB, as subtests named `sqlite: …` and `mysql: …`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { TestClock } from '../../../core/clock.ts';
import { openDatabase, type Database } from '../../../core/db/database.ts';
import { migrate, MIGRATIONS } from '../../../core/db/migrate.ts';
import { migrationId, type Migration } from '../../../core/db/migration.ts';
import * as q from '../../../core/db/queries/index.ts';
import { Fault } from '../../../core/fault.ts';
import { newId } from '../../../core/id.ts';
import { createTestMysqlDatabase, MYSQL_SKIP_MESSAGE } from '../../helpers/mysql.ts';

type Case = (t: Test, db: Database) => Promise<void>;
const cases: Array<[string, Case]> = [];
/** Registers a case that runs on both engines. */
function conformance(name: string, run: Case): void {
  cases.push([name, run]);
}

const NOW = 1_700_000_000_000;
const CONFLICT = { code: 'err:keygate:database:conflict' };

interface Seed {
  workspaceId: string;
  keySpaceId: string;
  apiId: string;
}

/** A fresh workspace with one key space and its API, so cases never see each other's rows. */
async function seed(db: Database): Promise<Seed> {
  const workspaceId = newId('ws');
  const keySpaceId = newId('ks');
  const apiId = newId('api');
  await q.insertWorkspace(db, { id: workspaceId, name: 'acme', createdAtMs: NOW });
  await q.insertKeySpace(db, { id: keySpaceId, workspaceId, createdAtMs: NOW });
  await q.insertApi(db, { id: apiId, workspaceId, name: 'payments', keySpaceId, createdAtMs: NOW });
  return { workspaceId, keySpaceId, apiId };
}

/** Which of `names` exist as tables in the database, sorted. */
async function tableNames(db: Database, names: readonly string[]): Promise<string[]> {
  const marks = names.map(() => '?').join(', ');
  const rows = db.dialect === 'sqlite'
    ? await db.query<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (${marks}) ORDER BY name`, [...names])
    : await db.query<{ name: string }>(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN (${marks}) ORDER BY name`, [...names]);
  return rows.map((row) => row.name);
}

/** A new, empty database on the same engine as `db` (nothing migrated), closed and removed when `t` ends. */
async function openFreshDatabase(t: Test, db: Database): Promise<Database> {
  if (db.dialect === 'sqlite') {
    const fresh = await openDatabase(':memory:');
    t.teardown(() => fresh.close());
    return fresh;
  }
  const test = await createTestMysqlDatabase();
  if (test === undefined) throw new Error(MYSQL_SKIP_MESSAGE);
  const fresh = await openDatabase(test.url, { connectionLimit: 2 }).catch(async (err: unknown) => {
    await test.drop();
    throw err;
  });
  t.teardown(async () => {
    await fresh.close();
    await test.drop();
  });
  return fresh;
}

/** One verification event of the seed's workspace; `overrides` replace fields. */
function verification(s: Seed, timeMs: number, overrides: Partial<q.KeyVerificationEvent> = {}): q.KeyVerificationEvent {
  return {
    requestId: newId('req'), timeMs, workspaceId: s.workspaceId, keySpaceId: s.keySpaceId, keyId: 'key_1', outcome: 'VALID', tags: [],
    spentCredits: 0, latencyMs: 0.5, region: 'local', ...overrides,
  };
}

/** The packed rows of the given workspaces, in pk order, without their payloads. */
async function batchRows(db: Database, workspaceIds: readonly string[]) {
  const rows = await db.query<{ workspace_id: string; events: number; min_time: number; max_time: number }>(
    `SELECT \`workspace_id\`, \`events\`, \`min_time\`, \`max_time\` FROM \`key_verification_batches\` WHERE \`workspace_id\` IN (${workspaceIds.map(() => '?').join(', ')}) ORDER BY \`pk\``,
    [...workspaceIds],
  );
  return rows.map((row) => ({ workspaceId: row.workspace_id, events: Number(row.events), minTimeMs: Number(row.min_time), maxTimeMs: Number(row.max_time) }));
}

let hashCounter = 0;
/** A new key row in the seed's key space; returns the input used. */
async function addKey(db: Database, s: Seed, overrides: Partial<q.NewKey> = {}): Promise<q.NewKey> {
  const key: q.NewKey = {
    id: newId('key'),
    keySpaceId: s.keySpaceId,
    workspaceId: s.workspaceId,
    hash: `hash-${++hashCounter}-${newId('req')}`,
    start: 'sk_ab12',
    createdAtMs: NOW,
    ...overrides,
  };
  await q.insertKey(db, key);
  return key;
}

// ---------------------------------------------------------------------------------------------
// Migrations

conformance('migrating again applies nothing and keeps one row per migration', async (t, db) => {
  t.same(await migrate(db), { applied: [] });
  const rows = await db.query<{ version: number; name: string }>('SELECT `version`, `name` FROM `schema_migrations` ORDER BY `version`');
  t.same(rows.map((row) => [row.version, row.name]), MIGRATIONS.map((migration) => [migration.version, migration.name]));
});

conformance('refuses to run when the database has a migration newer than the code', async (t, db) => {
  await db.execute('INSERT INTO `schema_migrations` (`version`, `name`, `applied_at_m`) VALUES (?, ?, ?)', [999, 'from-the-future', NOW]);
  try {
    const error = await migrate(db).then(() => undefined, (err: unknown) => err);
    t.ok(error instanceof Fault, 'fails with a Fault');
    t.equal((error as Fault).code, 'err:keygate:database:migration_failed');
    t.match((error as Fault).internalMessage, /0999-from-the-future/);
  } finally {
    await db.execute('DELETE FROM `schema_migrations` WHERE `version` = ?', [999]);
  }
  t.same(await migrate(db), { applied: [] }, 'runs again once the database is back in step');
});

conformance('verification events live packed in key_verification_batches with one secondary index; key_verifications is gone (migration 6)', async (t, db) => {
  const indexes = db.dialect === 'sqlite'
    ? await db.query<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'key_verification_batches' AND sql IS NOT NULL ORDER BY name`)
    : await db.query<{ name: string }>(`SELECT DISTINCT index_name AS name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'key_verification_batches' AND index_name <> 'PRIMARY' ORDER BY name`);
  t.same(indexes.map((row) => row.name), ['key_verification_batches_workspace_id_min_time_max_time_idx']);
  t.same(await tableNames(db, ['key_verifications', 'key_verification_batches']), ['key_verification_batches'], 'the one-row-per-event table was dropped');
});

conformance('refuses a recorded migration whose name differs from the code', async (t, db) => {
  const renamed: Migration[] = [{ ...MIGRATIONS[0]!, name: 'something-else' }];
  await t.rejects(migrate(db, { migrations: renamed }), { code: 'err:keygate:database:migration_failed' });
});

conformance('a failing migration is not recorded, and a fixed one applies on the next run', async (t, db) => {
  const table = `t_partial_${newId('req').slice(4).toLowerCase()}`;
  const version = MIGRATIONS.length + 1;
  const broken: Migration = {
    version,
    name: 'broken',
    statements: {
      sqlite: [`CREATE TABLE IF NOT EXISTS ${table} (a INTEGER)`, 'CREATE TABL nonsense'],
      mysql: [`CREATE TABLE IF NOT EXISTS ${table} (a INTEGER)`, 'CREATE TABL nonsense'],
    },
  };
  await t.rejects(migrate(db, { migrations: [...MIGRATIONS, broken] }), { code: 'err:keygate:database:migration_failed' });
  const recorded = await db.query('SELECT `version` FROM `schema_migrations` WHERE `version` = ?', [version]);
  t.equal(recorded.length, 0, 'the failed migration is not recorded');
  const leftover = db.dialect === 'sqlite'
    ? await db.query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?`, [table])
    : await db.query('SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?', [table]);
  // SQLite rolls DDL back; MySQL commits each DDL statement, which is why statements must be re-runnable.
  t.equal(leftover.length, db.dialect === 'sqlite' ? 0 : 1, 'DDL rollback follows the engine');
  const fixed: Migration = { ...broken, statements: { sqlite: [broken.statements.sqlite[0]!], mysql: [broken.statements.mysql[0]!] } };
  t.same(await migrate(db, { migrations: [...MIGRATIONS, fixed], clock: new TestClock() }), { applied: [migrationId(fixed)] });
  // Clean up so later cases see the real schema only.
  await db.execute('DELETE FROM `schema_migrations` WHERE `version` = ?', [version]);
  await db.execute(`DROP TABLE ${table}`);
});

// ---------------------------------------------------------------------------------------------
// The driver contract

conformance('integers come back exact: numbers when safe, bigints beyond 2^53', async (t, db) => {
  const [row] = await db.query<{ big: unknown; safe: unknown; negative: unknown }>('SELECT ? AS big, ? AS safe, ? AS negative', [
    2n ** 63n - 1n,
    Number.MAX_SAFE_INTEGER,
    -(2n ** 62n),
  ]);
  t.equal(row!.big, 9223372036854775807n);
  t.equal(row!.safe, 9007199254740991);
  t.equal(row!.negative, -4611686018427387904n);

  const s = await seed(db);
  const key = await addKey(db, s, { remainingRequests: Number.MAX_SAFE_INTEGER, expiresAtMs: 4_102_444_800_000 });
  const read = await q.getKeyById(db, key.id);
  t.equal(read?.remainingRequests, Number.MAX_SAFE_INTEGER, 'largest safe credit balance survives the round trip');
  t.equal(read?.expiresAtMs, 4_102_444_800_000);

  await db.execute('UPDATE `keys` SET `remaining_requests` = ? WHERE `id` = ?', [2n ** 63n - 1n, key.id]);
  const [raw] = await db.query<{ remaining_requests: unknown }>('SELECT `remaining_requests` FROM `keys` WHERE `id` = ?', [key.id]);
  t.equal(raw!.remaining_requests, 9223372036854775807n, 'the raw value is exact');
  await t.rejects(q.getKeyById(db, key.id), { code: 'err:unkey:application:assertion_failed' }, 'the typed layer refuses to round it');
  await t.rejects(q.insertKey(db, { ...key, id: newId('key'), hash: 'h-unsafe', remainingRequests: 2 ** 60 }), {
    code: 'err:unkey:application:invalid_input',
  });
});

conformance('binds booleans as 1/0 and undefined as NULL, and rejects objects', async (t, db) => {
  const [row] = await db.query<{ yes: unknown; no: unknown; absent: unknown }>('SELECT ? AS yes, ? AS no, ? AS absent', [true, false, undefined]);
  t.same([row!.yes, row!.no, row!.absent], [1, 0, null]);
  await t.rejects(db.query('SELECT ?', [{ a: 1 } as never]), { code: 'err:unkey:application:assertion_failed' });
  await t.rejects(db.query('SELECT ?', [['a', 'b'] as never]), { code: 'err:unkey:application:assertion_failed' });
});

conformance('UPDATE reports matched rows, even when the values do not change', async (t, db) => {
  const s = await seed(db);
  const key = await addKey(db, s, { name: 'same' });
  const first = await db.execute('UPDATE `keys` SET `name` = ? WHERE `id` = ?', ['same', key.id]);
  t.equal(first.affectedRows, 1);
  const none = await db.execute('UPDATE `keys` SET `name` = ? WHERE `id` = ?', ['same', 'key_missing']);
  t.equal(none.affectedRows, 0);
});

conformance('duplicate keys and missing references become conflict faults', async (t, db) => {
  const s = await seed(db);
  await t.rejects(q.insertWorkspace(db, { id: s.workspaceId, name: 'again', createdAtMs: NOW }), CONFLICT, 'duplicate workspace id');
  const key = await addKey(db, s);
  await t.rejects(addKey(db, s, { hash: key.hash }), CONFLICT, 'duplicate key hash');
  await t.rejects(addKey(db, s, { id: key.id }), CONFLICT, 'duplicate key id');
  await t.rejects(addKey(db, s, { keySpaceId: 'ks_missing' }), CONFLICT, 'key space that does not exist');
  await q.insertPermission(db, { id: newId('perm'), workspaceId: s.workspaceId, name: 'Read', slug: 'docs.read', createdAtMs: NOW });
  await t.rejects(
    q.insertPermission(db, { id: newId('perm'), workspaceId: s.workspaceId, name: 'Read 2', slug: 'docs.read', createdAtMs: NOW }),
    CONFLICT,
    'duplicate permission slug in a workspace',
  );
  await q.insertRole(db, { id: newId('role'), workspaceId: s.workspaceId, name: 'admin', createdAtMs: NOW });
  await t.rejects(q.insertRole(db, { id: newId('role'), workspaceId: s.workspaceId, name: 'admin', createdAtMs: NOW }), CONFLICT, 'duplicate role name');
  const other = await seed(db);
  await q.insertRole(db, { id: newId('role'), workspaceId: other.workspaceId, name: 'admin', createdAtMs: NOW });
  t.pass('the same role name in another workspace is fine');
  await q.insertRole(db, { id: newId('role'), workspaceId: s.workspaceId, name: 'Admin', createdAtMs: NOW });
  t.pass('names compare case-sensitively on both engines');
});

conformance('a value longer than its column is invalid input, never truncated', async (t, db) => {
  const s = await seed(db);
  await t.rejects(addKey(db, s, { name: 'n'.repeat(257) }), { code: 'err:unkey:application:invalid_input' });
  const key = await addKey(db, s, { name: 'n'.repeat(256) });
  t.equal((await q.getKeyById(db, key.id))?.name?.length, 256);
});

// ---------------------------------------------------------------------------------------------
// Transactions

conformance('a transaction commits when its function resolves and rolls back when it throws', async (t, db) => {
  const committed = newId('ws');
  const result = await db.transaction(async (tx) => {
    await q.insertWorkspace(tx, { id: committed, name: 'kept', createdAtMs: NOW });
    return 42;
  });
  t.equal(result, 42);
  t.ok(await q.getWorkspace(db, committed));

  const rolledBack = newId('ws');
  const boom = new Error('boom');
  const error = await db
    .transaction(async (tx) => {
      await q.insertWorkspace(tx, { id: rolledBack, name: 'gone', createdAtMs: NOW });
      t.ok(await q.getWorkspace(tx, rolledBack), 'visible inside the transaction');
      throw boom;
    })
    .catch((err: unknown) => err);
  t.equal(error, boom, 'the original error is rethrown');
  t.equal(await q.getWorkspace(db, rolledBack), undefined, 'rolled back');
});

conformance('a nested transaction rolls back alone through a savepoint', async (t, db) => {
  const outer = newId('ws');
  const inner = newId('ws');
  await db.transaction(async (tx) => {
    await q.insertWorkspace(tx, { id: outer, name: 'outer', createdAtMs: NOW });
    await tx
      .transaction(async (nested) => {
        await q.insertWorkspace(nested, { id: inner, name: 'inner', createdAtMs: NOW });
        throw new Error('inner fails');
      })
      .catch(() => undefined);
    t.equal(await q.getWorkspace(tx, inner), undefined, 'inner work undone');
  });
  t.ok(await q.getWorkspace(db, outer), 'outer work committed');
  t.equal(await q.getWorkspace(db, inner), undefined);
});

conformance('a unique violation inside a transaction rolls the whole transaction back', async (t, db) => {
  const s = await seed(db);
  const first = newId('ws');
  await t.rejects(
    db.transaction(async (tx) => {
      await q.insertWorkspace(tx, { id: first, name: 'first', createdAtMs: NOW });
      await q.insertWorkspace(tx, { id: s.workspaceId, name: 'duplicate', createdAtMs: NOW });
    }),
    CONFLICT,
  );
  t.equal(await q.getWorkspace(db, first), undefined);
});

conformance('others never see uncommitted writes, and a spent handle is refused', async (t, db) => {
  const id = newId('ws');
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let spent: Database | undefined;
  const transaction = db.transaction(async (tx) => {
    spent = tx;
    await q.insertWorkspace(tx, { id, name: 'pending', createdAtMs: NOW });
    await gate;
  });
  // Let the transaction reach its insert before reading from outside.
  while (spent === undefined) await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  let outsideSettled = false;
  const outside = q.getWorkspace(db, id).finally(() => (outsideSettled = true));
  if (db.dialect === 'mysql') {
    // MySQL answers from its own snapshot at once, without the uncommitted row.
    t.equal(await outside, undefined, 'no dirty read');
    release();
  } else {
    // SQLite has one connection: the outside reader waits for the commit, then sees the row.
    for (let tick = 0; tick < 10; tick++) await new Promise((resolve) => setImmediate(resolve));
    t.equal(outsideSettled, false, 'the outside reader waits while the transaction is open');
    release();
    t.ok(await outside, 'and reads the committed row afterwards');
  }
  await transaction;
  await t.rejects(spent!.query('SELECT 1'), { code: 'err:unkey:application:assertion_failed' });
});

// ---------------------------------------------------------------------------------------------
// Workspaces, key spaces, APIs

conformance('workspaces: create, get, disable, soft delete, limits', async (t, db) => {
  const id = newId('ws');
  await q.insertWorkspace(db, { id, name: 'acme', slug: `acme-${id}`, createdAtMs: NOW });
  const workspace = await q.getWorkspace(db, id);
  t.match(workspace, { id, name: 'acme', enabled: true, deleteProtection: false, createdAtMs: NOW });
  t.equal(workspace?.orgId, undefined, 'absent values are undefined, not null');
  t.equal(await q.setWorkspaceEnabled(db, id, false, NOW + 1), true);
  t.equal((await q.getWorkspace(db, id))?.enabled, false);

  t.equal(await q.getWorkspaceLimits(db, id), undefined, 'no limits row = no throttle');
  await q.setWorkspaceLimits(db, { workspaceId: id, apiRequestsCountMaxPerMinute: 100, nowMs: NOW });
  t.same(await q.getWorkspaceLimits(db, id), { workspaceId: id, apiRequestsCountMaxPerMinute: 100 });
  await q.setWorkspaceLimits(db, { workspaceId: id, apiRequestsCountMaxPerMinute: 0, nowMs: NOW });
  t.equal((await q.getWorkspaceLimits(db, id))?.apiRequestsCountMaxPerMinute, 0, '0 is kept apart from NULL');
  await q.setWorkspaceLimits(db, { workspaceId: id, apiRequestsCountMaxPerMinute: null, nowMs: NOW });
  t.equal((await q.getWorkspaceLimits(db, id))?.apiRequestsCountMaxPerMinute, undefined);

  t.equal(await q.softDeleteWorkspace(db, id, NOW + 2), true);
  t.equal(await q.getWorkspace(db, id), undefined);
  t.equal((await q.getWorkspace(db, id, { includeDeleted: true }))?.deletedAtMs, NOW + 2);
  t.equal(await q.softDeleteWorkspace(db, id, NOW + 3), false, 'deleting twice reports nothing deleted');
});

conformance('key spaces and APIs: scoped to their workspace, updated, soft deleted together', async (t, db) => {
  const s = await seed(db);
  const other = await seed(db);
  t.match(await q.getKeySpace(db, s.workspaceId, s.keySpaceId), { id: s.keySpaceId, storeEncryptedKeys: false, defaultBytes: undefined });
  t.equal(await q.getKeySpace(db, other.workspaceId, s.keySpaceId), undefined, 'another workspace does not see it');
  t.equal(await q.updateKeySpace(db, s.workspaceId, s.keySpaceId, { storeEncryptedKeys: true, defaultPrefix: 'sk', defaultBytes: 24 }, NOW), true);
  t.match(await q.getKeySpace(db, s.workspaceId, s.keySpaceId), { storeEncryptedKeys: true, defaultPrefix: 'sk', defaultBytes: 24 });
  await q.updateKeySpace(db, s.workspaceId, s.keySpaceId, { defaultPrefix: null }, NOW);
  t.equal((await q.getKeySpace(db, s.workspaceId, s.keySpaceId))?.defaultPrefix, undefined, 'null clears');

  t.match(await q.getApi(db, s.workspaceId, s.apiId), { id: s.apiId, name: 'payments', keySpaceId: s.keySpaceId, authType: 'key', ipWhitelist: undefined });
  t.equal(await q.getApi(db, other.workspaceId, s.apiId), undefined);
  const joined = await q.getApiWithKeySpace(db, s.workspaceId, s.apiId);
  t.equal(joined?.keySpace.id, s.keySpaceId);
  t.equal(joined?.keySpace.storeEncryptedKeys, true);
  await q.updateApi(db, s.workspaceId, s.apiId, { ipWhitelist: '10.0.0.1,10.0.0.2', deleteProtection: true }, NOW);
  t.match(await q.getApi(db, s.workspaceId, s.apiId), { ipWhitelist: '10.0.0.1,10.0.0.2', deleteProtection: true });
  await t.rejects(
    q.insertApi(db, { id: newId('api'), workspaceId: s.workspaceId, name: 'second', keySpaceId: s.keySpaceId, createdAtMs: NOW }),
    CONFLICT,
    'a key space backs one API only',
  );

  t.equal(await q.softDeleteApi(db, s.workspaceId, s.apiId, NOW + 5), true);
  t.equal(await q.getApi(db, s.workspaceId, s.apiId), undefined);
  t.equal((await q.getApi(db, s.workspaceId, s.apiId, { includeDeleted: true }))?.deletedAtMs, NOW + 5);
  t.equal(await q.getKeySpace(db, s.workspaceId, s.keySpaceId), undefined, 'its key space is deleted with it');
  t.equal(await q.getApiWithKeySpace(db, s.workspaceId, s.apiId), undefined);
  t.equal(await q.softDeleteApi(db, s.workspaceId, s.apiId, NOW + 6), false);
});

conformance('listApis pages through live APIs by id', async (t, db) => {
  const s = await seed(db);
  for (let index = 0; index < 2; index++) {
    const keySpaceId = newId('ks');
    await q.insertKeySpace(db, { id: keySpaceId, workspaceId: s.workspaceId, createdAtMs: NOW });
    await q.insertApi(db, { id: newId('api'), workspaceId: s.workspaceId, name: `api ${index}`, keySpaceId, createdAtMs: NOW });
  }
  const first = await q.listApis(db, s.workspaceId, { limit: 2 });
  t.equal(first.items.length, 2);
  t.type(first.nextCursor, 'string');
  const second = await q.listApis(db, s.workspaceId, { limit: 2, cursor: first.nextCursor });
  t.equal(second.items.length, 1);
  t.equal(second.nextCursor, undefined);
  t.same([...first.items, ...second.items].map((api) => api.id), [...[...first.items, ...second.items].map((api) => api.id)].sort());
});

// ---------------------------------------------------------------------------------------------
// Keys

conformance('keys: insert, get by id and by hash, workspace scoping', async (t, db) => {
  const s = await seed(db);
  const input = await addKey(db, s, { name: 'my key', meta: { plan: 'pro', nested: { n: 1 } }, expiresAtMs: NOW + 60_000, remainingRequests: 10, refillAmount: 10, refillDay: 15 });
  const byId = await q.getKeyById(db, input.id);
  t.match(byId, {
    id: input.id, keySpaceId: s.keySpaceId, workspaceId: s.workspaceId, hash: input.hash, start: 'sk_ab12', name: 'my key',
    meta: { plan: 'pro', nested: { n: 1 } }, expiresAtMs: NOW + 60_000, enabled: true, remainingRequests: 10, refillAmount: 10,
    refillDay: 15, createdAtMs: NOW,
  });
  t.equal(byId?.enabled, true, 'booleans are booleans');
  t.equal(byId?.identityId, undefined);
  t.equal(byId?.forWorkspaceId, undefined);
  t.same(await q.getKeyByHash(db, input.hash), byId);
  t.ok(await q.getKeyById(db, input.id, { workspaceId: s.workspaceId }));
  t.equal(await q.getKeyById(db, input.id, { workspaceId: 'ws_other' }), undefined);
  t.equal(await q.getKeyByHash(db, input.hash.toUpperCase()), undefined, 'hashes compare case-sensitively');
});

conformance('updateKey changes only what the patch names; null clears', async (t, db) => {
  const s = await seed(db);
  const input = await addKey(db, s, { name: 'before', meta: { a: 1 }, expiresAtMs: NOW + 1, remainingRequests: 5 });
  t.equal(await q.updateKey(db, input.id, { name: 'after', enabled: false }, NOW + 10), true);
  t.match(await q.getKeyById(db, input.id), { name: 'after', enabled: false, meta: { a: 1 }, expiresAtMs: NOW + 1, remainingRequests: 5, updatedAtMs: NOW + 10 });
  await q.updateKey(db, input.id, { name: null, meta: null, expiresAtMs: null, remainingRequests: null }, NOW + 20);
  const cleared = await q.getKeyById(db, input.id);
  t.same([cleared?.name, cleared?.meta, cleared?.expiresAtMs, cleared?.remainingRequests], [undefined, undefined, undefined, undefined]);
  t.equal(cleared?.enabled, false, 'untouched fields keep their value');
  t.equal(await q.updateKey(db, 'key_missing', { name: 'x' }, NOW), false);
});

conformance('soft-deleted keys disappear from every lookup; hard delete cascades', async (t, db) => {
  const s = await seed(db);
  const soft = await addKey(db, s);
  t.equal(await q.softDeleteKey(db, soft.id, NOW + 1), true);
  t.equal(await q.getKeyById(db, soft.id), undefined);
  t.equal(await q.getKeyByHash(db, soft.hash), undefined);
  t.equal(await q.findKeyForVerification(db, soft.hash), undefined);
  t.equal((await q.getKeyById(db, soft.id, { includeDeleted: true }))?.deletedAtMs, NOW + 1);
  t.equal(await q.updateKey(db, soft.id, { name: 'x' }, NOW), false, 'a deleted key cannot be updated');
  t.equal((await q.listKeysByKeySpace(db, s.keySpaceId)).items.length, 0);

  const hard = await addKey(db, s);
  const permission = newId('perm');
  await q.insertPermission(db, { id: permission, workspaceId: s.workspaceId, name: 'p', slug: 'p', createdAtMs: NOW });
  await q.addKeyPermissions(db, { workspaceId: s.workspaceId, keyId: hard.id, permissionIds: [permission], nowMs: NOW });
  await q.insertRatelimits(db, [{ id: newId('rl'), workspaceId: s.workspaceId, keyId: hard.id, name: 'api', limit: 1, durationMs: 1000, autoApply: true, createdAtMs: NOW }]);
  await q.insertEncryptedKey(db, { keyId: hard.id, workspaceId: s.workspaceId, encrypted: 'ciphertext', encryptionKeyId: 'dek_1', createdAtMs: NOW });
  t.equal(await q.hardDeleteKey(db, hard.id), true);
  t.equal(await q.getKeyById(db, hard.id, { includeDeleted: true }), undefined);
  t.same(await q.listRatelimits(db, { keyId: hard.id }), [], 'rate limits cascade');
  t.same(await q.listKeyPermissions(db, hard.id), [], 'grants cascade');
  t.equal(await q.getEncryptedKey(db, s.workspaceId, hard.id), undefined, 'encrypted copy cascades');
  t.ok(await q.getPermissionById(db, s.workspaceId, permission), 'the permission itself stays');
  t.equal(await q.hardDeleteKey(db, hard.id), false);
});

conformance('listKeysByKeySpace: limit+1 pagination with an inclusive cursor', async (t, db) => {
  const s = await seed(db);
  const ids = ['key_a1', 'key_a2', 'key_a3', 'key_a4', 'key_a5'].map((id) => `${id}_${s.keySpaceId}`);
  for (const id of [...ids].reverse()) await addKey(db, s, { id });
  const deleted = await addKey(db, s, { id: `key_a25_${s.keySpaceId}` });
  await q.softDeleteKey(db, deleted.id, NOW);

  const page1 = await q.listKeysByKeySpace(db, s.keySpaceId, { limit: 2 });
  t.same(page1.items.map((key) => key.id), ids.slice(0, 2));
  t.equal(page1.nextCursor, ids[2], 'the cursor is the first id of the next page');
  const page2 = await q.listKeysByKeySpace(db, s.keySpaceId, { limit: 2, cursor: page1.nextCursor });
  t.same(page2.items.map((key) => key.id), ids.slice(2, 4), 'soft-deleted keys are skipped');
  const page3 = await q.listKeysByKeySpace(db, s.keySpaceId, { limit: 2, cursor: page2.nextCursor });
  t.same(page3.items.map((key) => key.id), ids.slice(4));
  t.equal(page3.nextCursor, undefined, 'no cursor on the last page');

  const exact = await q.listKeysByKeySpace(db, s.keySpaceId, { limit: 5 });
  t.equal(exact.items.length, 5);
  t.equal(exact.nextCursor, undefined, 'a page that ends exactly at the last row has no cursor');
  const oneShort = await q.listKeysByKeySpace(db, s.keySpaceId, { limit: 4 });
  t.equal(oneShort.nextCursor, ids[4]);
  const between = await q.listKeysByKeySpace(db, s.keySpaceId, { cursor: `key_a2_${s.keySpaceId}~` });
  t.same(between.items.map((key) => key.id), ids.slice(2), 'a cursor between ids starts at the next one');
  t.same((await q.listKeysByKeySpace(db, s.keySpaceId, { cursor: 'zzz' })).items, []);
  t.equal((await q.listKeysByKeySpace(db, s.keySpaceId, { limit: 0 })).items.length, 1, 'the page size is clamped to at least 1');
});

conformance('listKeysByKeySpace filters by identity', async (t, db) => {
  const s = await seed(db);
  const identityId = newId('id');
  await q.insertIdentity(db, { id: identityId, workspaceId: s.workspaceId, externalId: 'user_1', createdAtMs: NOW });
  const mine = await addKey(db, s, { identityId });
  await addKey(db, s);
  t.same((await q.listKeysByKeySpace(db, s.keySpaceId, { identityId })).items.map((key) => key.id), [mine.id]);
});

conformance('credits: conditional spend, floored replay, forward-only last use', async (t, db) => {
  const s = await seed(db);
  const limited = await addKey(db, s, { remainingRequests: 3 });
  const unlimited = await addKey(db, s);
  t.equal(await q.spendKeyCreditsIfSufficient(db, limited.id, 2), true);
  t.equal(await q.spendKeyCreditsIfSufficient(db, limited.id, 2), false, 'not enough left');
  t.equal((await q.getKeyById(db, limited.id))?.remainingRequests, 1);
  t.equal(await q.spendKeyCreditsIfSufficient(db, unlimited.id, 1), false, 'unlimited keys are not charged');
  t.equal(await q.applyKeyCreditsSpend(db, limited.id, 5), true);
  t.equal((await q.getKeyById(db, limited.id))?.remainingRequests, 0, 'a replay floors at 0');
  t.equal(await q.applyKeyCreditsSpend(db, unlimited.id, 5), false);
  t.equal((await q.getKeyById(db, unlimited.id))?.remainingRequests, undefined);

  t.equal(await q.markKeyUsed(db, limited.id, NOW + 100), true);
  t.equal(await q.markKeyUsed(db, limited.id, NOW + 50), false, 'never moves backwards');
  t.equal((await q.getKeyById(db, limited.id))?.lastUsedAtMs, NOW + 100);
});

// ---------------------------------------------------------------------------------------------
// Identities and rate limits

conformance('identities: one live identity per external id, any number of deleted ones', async (t, db) => {
  const s = await seed(db);
  const first = newId('id');
  await q.insertIdentity(db, { id: first, workspaceId: s.workspaceId, externalId: 'user_42', meta: { tier: 'gold' }, createdAtMs: NOW });
  t.match(await q.getIdentityByExternalId(db, s.workspaceId, 'user_42'), { id: first, environment: 'default', meta: { tier: 'gold' } });
  await t.rejects(q.insertIdentity(db, { id: newId('id'), workspaceId: s.workspaceId, externalId: 'user_42', createdAtMs: NOW }), CONFLICT);

  t.equal(await q.softDeleteIdentity(db, s.workspaceId, first, NOW + 1), true);
  const second = newId('id');
  await q.insertIdentity(db, { id: second, workspaceId: s.workspaceId, externalId: 'user_42', createdAtMs: NOW + 2 });
  t.equal(await q.softDeleteIdentity(db, s.workspaceId, second, NOW + 3), true, 'a second deleted identity with the same external id is allowed');
  const third = newId('id');
  await q.insertIdentity(db, { id: third, workspaceId: s.workspaceId, externalId: 'user_42', createdAtMs: NOW + 4 });
  t.equal((await q.getIdentityByExternalId(db, s.workspaceId, 'user_42'))?.id, third);
  t.equal(await q.getIdentityById(db, s.workspaceId, first), undefined, 'deleted identities are hidden');

  await q.updateIdentity(db, s.workspaceId, third, { meta: { a: 1 } }, NOW + 5);
  t.same((await q.getIdentityById(db, s.workspaceId, third))?.meta, { a: 1 });
  await q.updateIdentity(db, s.workspaceId, third, { meta: null }, NOW + 6);
  t.equal((await q.getIdentityById(db, s.workspaceId, third))?.meta, undefined);

  const ensured = await q.ensureIdentity(db, { id: newId('id'), workspaceId: s.workspaceId, externalId: 'user_42', createdAtMs: NOW });
  t.same([ensured.created, ensured.identity.id], [false, third], 'ensureIdentity finds the live one');
  const fresh = await q.ensureIdentity(db, { id: newId('id'), workspaceId: s.workspaceId, externalId: 'user_43', createdAtMs: NOW });
  t.equal(fresh.created, true);
  const page = await q.listIdentities(db, s.workspaceId, { limit: 1 });
  t.equal(page.items.length, 1);
  t.type(page.nextCursor, 'string');
});

conformance('rate limits: one owner each, replaced by name keeping ids', async (t, db) => {
  const s = await seed(db);
  const key = await addKey(db, s);
  const keepId = newId('rl');
  await q.insertRatelimits(db, [
    { id: keepId, workspaceId: s.workspaceId, keyId: key.id, name: 'requests', limit: 10, durationMs: 60_000, autoApply: true, createdAtMs: NOW },
    { id: newId('rl'), workspaceId: s.workspaceId, keyId: key.id, name: 'tokens', limit: 1000, durationMs: 3_600_000, autoApply: false, createdAtMs: NOW },
  ]);
  t.match(await q.listRatelimits(db, { keyId: key.id }), [
    { id: keepId, name: 'requests', limit: 10, durationMs: 60_000, autoApply: true, keyId: key.id, identityId: undefined },
    { name: 'tokens', autoApply: false },
  ]);
  await t.rejects(
    q.insertRatelimits(db, [{ id: newId('rl'), workspaceId: s.workspaceId, keyId: key.id, name: 'requests', limit: 1, durationMs: 1000, autoApply: false, createdAtMs: NOW }]),
    CONFLICT,
  );
  const identityId = newId('id');
  await q.insertIdentity(db, { id: identityId, workspaceId: s.workspaceId, externalId: 'owner', createdAtMs: NOW });
  await t.rejects(
    q.insertRatelimits(db, [{ id: newId('rl'), workspaceId: s.workspaceId, keyId: key.id, identityId, name: 'both', limit: 1, durationMs: 1000, autoApply: false, createdAtMs: NOW }]),
    { code: 'err:unkey:application:invalid_input' },
    'a limit cannot belong to a key and an identity at once',
  );

  const newName = newId('rl');
  const replaced = await q.replaceRatelimits(db, s.workspaceId, { keyId: key.id }, [
    { id: newId('rl'), name: 'requests', limit: 20, durationMs: 1000, autoApply: false },
    { id: newName, name: 'bursts', limit: 5, durationMs: 1000, autoApply: true },
  ], NOW + 1);
  t.same(replaced.map((ratelimit) => [ratelimit.name, ratelimit.id, ratelimit.limit, ratelimit.autoApply]), [
    ['bursts', newName, 5, true],
    ['requests', keepId, 20, false],
  ], 'existing names keep their id, new ones are inserted, missing ones deleted');
  t.equal(await q.deleteRatelimits(db, { keyId: key.id }), 2);
});

// ---------------------------------------------------------------------------------------------
// Permissions and roles

conformance('permissions: ensure creates only the missing slugs; grants are idempotent', async (t, db) => {
  const s = await seed(db);
  const existing = newId('perm');
  await q.insertPermission(db, { id: existing, workspaceId: s.workspaceId, name: 'Read docs', slug: 'docs.read', description: 'd', createdAtMs: NOW });
  t.match(await q.getPermissionBySlug(db, s.workspaceId, 'docs.read'), { id: existing, name: 'Read docs', description: 'd' });
  const ensured = await q.ensurePermissions(db, s.workspaceId, ['docs.write', 'docs.read', 'docs.write', 'api.*'], () => newId('perm'), NOW);
  t.same(ensured.map((permission) => permission.slug), ['api.*', 'docs.read', 'docs.write']);
  t.equal(ensured.find((permission) => permission.slug === 'docs.read')?.id, existing, 'existing ones are reused');
  t.same(await q.ensurePermissions(db, s.workspaceId, ['docs.write'], () => newId('perm'), NOW), [ensured[2]], 'idempotent');

  const key = await addKey(db, s);
  const ids = ensured.map((permission) => permission.id);
  await q.addKeyPermissions(db, { workspaceId: s.workspaceId, keyId: key.id, permissionIds: [ids[0]!, ids[1]!], nowMs: NOW });
  await q.addKeyPermissions(db, { workspaceId: s.workspaceId, keyId: key.id, permissionIds: [ids[1]!], nowMs: NOW });
  t.same((await q.listKeyPermissions(db, key.id)).map((permission) => permission.slug), ['api.*', 'docs.read']);
  t.equal(await q.removeKeyPermissions(db, key.id, [ids[0]!, 'perm_missing']), 1);
  await q.setKeyPermissions(db, { workspaceId: s.workspaceId, keyId: key.id, permissionIds: [ids[2]!], nowMs: NOW });
  t.same((await q.listKeyPermissions(db, key.id)).map((permission) => permission.slug), ['docs.write']);
  await t.rejects(q.addKeyPermissions(db, { workspaceId: s.workspaceId, keyId: key.id, permissionIds: ['perm_missing'], nowMs: NOW }), CONFLICT);
  t.equal((await q.listPermissions(db, s.workspaceId, { limit: 2 })).items.length, 2);
  t.equal(await q.deletePermission(db, s.workspaceId, ids[2]!), true);
  t.same(await q.listKeyPermissions(db, key.id), [], 'deleting a permission removes its grants');
});

conformance('roles: permissions of roles and roles of keys', async (t, db) => {
  const s = await seed(db);
  const [read, write] = await q.ensurePermissions(db, s.workspaceId, ['docs.read', 'docs.write'], () => newId('perm'), NOW);
  const roleId = newId('role');
  await q.insertRole(db, { id: roleId, workspaceId: s.workspaceId, name: 'editor', createdAtMs: NOW });
  t.match(await q.getRoleByName(db, s.workspaceId, 'editor'), { id: roleId, description: undefined });
  t.same((await q.getRolesByNames(db, s.workspaceId, ['editor', 'missing'])).map((role) => role.id), [roleId]);
  await q.addRolePermissions(db, { workspaceId: s.workspaceId, roleId, permissionIds: [read!.id, write!.id, read!.id], nowMs: NOW });
  t.same((await q.listRolePermissions(db, roleId)).map((permission) => permission.slug), ['docs.read', 'docs.write']);
  t.equal(await q.removeRolePermissions(db, roleId, [write!.id]), 1);

  const key = await addKey(db, s);
  await q.addKeyRoles(db, { workspaceId: s.workspaceId, keyId: key.id, roleIds: [roleId], nowMs: NOW });
  await q.addKeyRoles(db, { workspaceId: s.workspaceId, keyId: key.id, roleIds: [roleId], nowMs: NOW });
  t.same((await q.listKeyRoles(db, key.id)).map((role) => role.name), ['editor']);
  await q.setKeyRoles(db, { workspaceId: s.workspaceId, keyId: key.id, roleIds: [], nowMs: NOW });
  t.same(await q.listKeyRoles(db, key.id), []);
  await q.addKeyRoles(db, { workspaceId: s.workspaceId, keyId: key.id, roleIds: [roleId], nowMs: NOW });
  t.equal(await q.deleteRole(db, s.workspaceId, roleId), true);
  t.same(await q.listKeyRoles(db, key.id), [], 'deleting a role removes its grants');
  t.equal((await q.listRoles(db, s.workspaceId)).items.length, 0);
});

// ---------------------------------------------------------------------------------------------
// Rate-limit namespaces and overrides

conformance('namespaces: found by id or name, deleted ones still visible for a 410', async (t, db) => {
  const s = await seed(db);
  const id = newId('rlns');
  await q.insertRatelimitNamespace(db, { id, workspaceId: s.workspaceId, name: 'email.send', createdAtMs: NOW });
  t.equal((await q.findRatelimitNamespace(db, s.workspaceId, 'email.send'))?.id, id);
  t.equal((await q.findRatelimitNamespace(db, s.workspaceId, id))?.name, 'email.send');
  t.equal(await q.findRatelimitNamespace(db, 'ws_other', id), undefined);
  await t.rejects(q.insertRatelimitNamespace(db, { id: newId('rlns'), workspaceId: s.workspaceId, name: 'email.send', createdAtMs: NOW }), CONFLICT);
  t.equal((await q.listRatelimitNamespaces(db, s.workspaceId)).items.length, 1);
  t.equal(await q.softDeleteRatelimitNamespace(db, s.workspaceId, id, NOW + 1), true);
  t.equal((await q.getRatelimitNamespaceByName(db, s.workspaceId, 'email.send'))?.deletedAtMs, NOW + 1);
  t.equal((await q.getRatelimitNamespaceById(db, s.workspaceId, id))?.deletedAtMs, NOW + 1);
  t.equal((await q.listRatelimitNamespaces(db, s.workspaceId)).items.length, 0);
});

conformance('overrides: upsert keeps the id, exact lookup, wildcards in creation order', async (t, db) => {
  const s = await seed(db);
  const namespaceId = newId('rlns');
  await q.insertRatelimitNamespace(db, { id: namespaceId, workspaceId: s.workspaceId, name: 'api', createdAtMs: NOW });
  const base = { workspaceId: s.workspaceId, namespaceId, nowMs: NOW };
  const exactId = await q.upsertRatelimitOverride(db, { ...base, id: newId('rlor'), identifier: 'user_1', limit: 5, durationMs: 1000 });
  const again = await q.upsertRatelimitOverride(db, { ...base, id: newId('rlor'), identifier: 'user_1', limit: 7, durationMs: 2000, nowMs: NOW + 1 });
  t.equal(again, exactId, 'setting an existing identifier keeps its id');
  t.match(await q.getRatelimitOverrideByIdentifier(db, namespaceId, 'user_1'), { id: exactId, limit: 7, durationMs: 2000, updatedAtMs: NOW + 1 });
  t.equal(await q.getRatelimitOverrideByIdentifier(db, namespaceId, 'user_*'), undefined, 'exact lookup does no pattern matching');

  const zFirst = await q.upsertRatelimitOverride(db, { ...base, id: 'rlor_zzz', identifier: 'user_*', limit: 1, durationMs: 1000 });
  await q.upsertRatelimitOverride(db, { ...base, id: 'rlor_aaa', identifier: '*_admin', limit: 2, durationMs: 1000 });
  t.same((await q.listWildcardRatelimitOverrides(db, namespaceId)).map((override) => override.id), [zFirst, 'rlor_aaa'], 'creation order, not id order');

  t.equal(await q.softDeleteRatelimitOverride(db, s.workspaceId, exactId, NOW + 2), true);
  t.equal(await q.getRatelimitOverrideById(db, s.workspaceId, exactId), undefined);
  t.equal(await q.getRatelimitOverrideByIdentifier(db, namespaceId, 'user_1'), undefined);
  const revived = await q.upsertRatelimitOverride(db, { ...base, id: newId('rlor'), identifier: 'user_1', limit: 9, durationMs: 1000 });
  t.equal(revived, exactId);
  t.equal((await q.getRatelimitOverrideById(db, s.workspaceId, exactId))?.deletedAtMs, undefined, 'setting a deleted override revives it');
  const page = await q.listRatelimitOverrides(db, namespaceId, { limit: 2 });
  t.equal(page.items.length, 2);
  t.type(page.nextCursor, 'string');
});

// ---------------------------------------------------------------------------------------------
// Logs, analytics, encrypted keys, migrations

conformance('audit logs: batch insert and read back with JSON parsed', async (t, db) => {
  const s = await seed(db);
  const correlationId = newId('req');
  await q.insertAuditLogs(db, [
    { id: newId('log'), workspaceId: s.workspaceId, event: 'key.create', timeMs: NOW, description: 'Created key', actor: { type: 'key', id: 'key_root' }, targets: [{ type: 'key', id: 'key_1', meta: { a: 1 } }], correlationId, remoteIp: '127.0.0.1' },
    { id: newId('log'), workspaceId: s.workspaceId, event: 'authorization.connect_permission_and_key', timeMs: NOW + 1, description: 'Connected', actor: { type: 'key', id: 'key_root', name: 'root', meta: { x: true } }, targets: [], correlationId, meta: { n: 2 } },
  ]);
  const logs = await q.listAuditLogs(db, { workspaceId: s.workspaceId, correlationId });
  t.same(logs.map((log) => log.event), ['authorization.connect_permission_and_key', 'key.create'], 'newest first');
  t.match(logs[1], { bucket: 'unkey_mutations', source: 'platform', targets: [{ type: 'key', id: 'key_1', meta: { a: 1 } }], remoteIp: '127.0.0.1', userAgent: undefined, meta: undefined });
  t.same(logs[0]?.actor, { type: 'key', id: 'key_root', name: 'root', meta: { x: true } });
  t.equal((await q.listAuditLogs(db, { workspaceId: s.workspaceId, event: 'key.create' })).length, 1);
});

conformance('key verifications: many events per statement, packed into rows of at most 1,000, read back by time range', async (t, db) => {
  const s = await seed(db);
  const events: q.KeyVerificationEvent[] = Array.from({ length: 1_203 }, (_, index) => ({
    requestId: `req_${index}`, timeMs: NOW + index, workspaceId: s.workspaceId, keySpaceId: s.keySpaceId, keyId: 'key_1',
    identityId: index % 2 === 0 ? 'id_1' : undefined, outcome: index % 3 === 0 ? 'RATE_LIMITED' : 'VALID', tags: index === 0 ? ['path=/a', 'region=eu'] : [],
    spentCredits: index % 2, latencyMs: 0.25 + index, region: 'local',
  }));
  t.equal(await q.insertKeyVerifications(db, events), 1_203, 'returns the number of events written');
  t.same(await batchRows(db, [s.workspaceId]), [
    { workspaceId: s.workspaceId, events: 1_000, minTimeMs: NOW, maxTimeMs: NOW + 999 },
    { workspaceId: s.workspaceId, events: 203, minTimeMs: NOW + 1_000, maxTimeMs: NOW + 1_202 },
  ], `one row per ${q.MAX_VERIFICATION_EVENTS_PER_ROW} events`);
  const window = await q.listKeyVerifications(db, { workspaceId: s.workspaceId, sinceMs: NOW, untilMs: NOW + 3 });
  t.same(window.map((event) => event.requestId), ['req_0', 'req_1', 'req_2']);
  t.same(window[0], events[0]);
  t.equal(window[1]?.identityId, undefined);
  const all = await q.listKeyVerifications(db, { workspaceId: s.workspaceId, limit: 10_000 });
  t.equal(all.length, 1_203);
  t.same(all, events, 'every event comes back exactly, in order');
  t.equal((await q.listKeyVerifications(db, { workspaceId: s.workspaceId })).length, 1_000, 'the default limit is 1000');
  t.same((await q.listKeyVerifications(db, { workspaceId: s.workspaceId, limit: 0 })).map((event) => event.requestId), ['req_0'], 'the limit is at least 1');
  t.equal(await q.insertKeyVerifications(db, []), 0, 'an empty batch writes nothing');
});

conformance('key verifications: one insert with several workspaces writes a row per workspace, and each lists only its own', async (t, db) => {
  const workspaces = [await seed(db), await seed(db), await seed(db)];
  const events = Array.from({ length: 12 }, (_, index) => verification(workspaces[index % 3]!, NOW + 12 - index, { requestId: `req_${index}` }));
  const statements: string[] = [];
  const counting: Database = {
    dialect: db.dialect,
    query: (sql, params) => db.query(sql, params),
    execute: (sql, params) => (statements.push(sql), db.execute(sql, params)),
    transaction: (fn) => db.transaction(fn),
    close: () => db.close(),
  };
  t.equal(await q.insertKeyVerifications(counting, events), 12);
  t.equal(statements.length, 1, 'the three rows go in one INSERT');
  const ids = workspaces.map((s) => s.workspaceId);
  t.same(
    (await batchRows(db, ids)).sort((a, b) => ids.indexOf(a.workspaceId) - ids.indexOf(b.workspaceId)),
    ids.map((workspaceId, index) => ({ workspaceId, events: 4, minTimeMs: NOW + 3 - index, maxTimeMs: NOW + 12 - index })),
    'one row per workspace with its own time range',
  );
  for (const [index, s] of workspaces.entries()) {
    const own = events.filter((event) => event.workspaceId === s.workspaceId).reverse();
    t.same(await q.listKeyVerifications(db, { workspaceId: s.workspaceId }), own, `workspace ${index + 1} sees its own events, oldest first`);
  }
  t.same(await q.listKeyVerifications(db, { workspaceId: newId('ws') }), [], 'an unknown workspace has none');
});

conformance('key verifications: keyId and keySpaceId filter within the workspace, before the limit', async (t, db) => {
  const s = await seed(db);
  const otherSpace = newId('ks');
  const keys = [['key_a', s.keySpaceId], ['key_b', s.keySpaceId], ['key_c', otherSpace]] as const;
  const events = Array.from({ length: 30 }, (_, index) => {
    const [keyId, keySpaceId] = keys[index % 3]!;
    return verification(s, NOW + index, { requestId: `req_${index}`, keyId, keySpaceId });
  });
  // Three calls: the matches span several batch rows.
  for (let start = 0; start < events.length; start += 10) await q.insertKeyVerifications(db, events.slice(start, start + 10));
  const list = (query: Partial<q.KeyVerificationQuery>) => q.listKeyVerifications(db, { workspaceId: s.workspaceId, ...query });
  t.same(await list({ keyId: 'key_a' }), events.filter((event) => event.keyId === 'key_a'));
  t.same(await list({ keySpaceId: otherSpace }), events.filter((event) => event.keySpaceId === otherSpace));
  t.same(await list({ keySpaceId: s.keySpaceId }), events.filter((event) => event.keySpaceId === s.keySpaceId));
  t.same(await list({ keySpaceId: s.keySpaceId, keyId: 'key_c' }), [], 'key and key space must both match');
  t.same((await list({ keyId: 'key_b', limit: 4 })).map((event) => event.requestId), ['req_1', 'req_4', 'req_7', 'req_10'], 'the limit counts matches only');
  t.same((await list({ keyId: 'key_c', sinceMs: NOW + 10, untilMs: NOW + 20 })).map((event) => event.requestId), ['req_11', 'req_14', 'req_17']);
});

conformance('key verifications: with a limit, ties at the boundary time come in write order even across batches read out of pk order', async (t, db) => {
  const s = await seed(db);
  const tie = NOW + 10;
  // Written first (lower pk): two events at the tie. Written second: one earlier, one at the tie.
  // Batches are read by min_time, so the second batch is read first and its tie event is the
  // limit-th match for limit 2; the first batch starts exactly at that time and must still be
  // read, because its tie events were written earlier and come first.
  const first = [verification(s, tie, { requestId: 'first_0' }), verification(s, tie, { requestId: 'first_1' })];
  const second = [verification(s, tie - 5, { requestId: 'second_0' }), verification(s, tie, { requestId: 'second_1' })];
  const third = [verification(s, tie + 1, { requestId: 'third_0' })];
  for (const batch of [first, second, third]) await q.insertKeyVerifications(db, batch);
  const requestIds = async (limit?: number) => (await q.listKeyVerifications(db, { workspaceId: s.workspaceId, limit })).map((event) => event.requestId);
  t.same(await requestIds(), ['second_0', 'first_0', 'first_1', 'second_1', 'third_0'], 'time, then write order');
  t.same(await requestIds(1), ['second_0']);
  t.same(await requestIds(2), ['second_0', 'first_0'], 'the earlier-written tie wins over the batch read first');
  t.same(await requestIds(3), ['second_0', 'first_0', 'first_1']);
  t.same(await requestIds(4), ['second_0', 'first_0', 'first_1', 'second_1']);
});

conformance('key verifications: reading stops once no later batch can matter, and a malformed payload is a fault naming its row', async (t, db) => {
  const s = await seed(db);
  const events = Array.from({ length: 5 }, (_, index) => verification(s, NOW + index, { requestId: `req_${index}` }));
  await q.insertKeyVerifications(db, events);
  // A corrupt row that starts after the first five events: a read that needs only them stops before it.
  const payloads = ['not json', '{"a":1}', '[["req_x", 1]]', '[]', JSON.stringify([['req_x', NOW, s.keySpaceId, 'key_1', null, null, 'VALID', 'not-an-array', 0, 1, 'local']])];
  for (const [index, payload] of payloads.entries()) {
    const corrupt = await seed(db);
    await db.execute('INSERT INTO `key_verification_batches` (`workspace_id`, `min_time`, `max_time`, `events`, `payload`) VALUES (?, ?, ?, ?, ?)', [
      corrupt.workspaceId, NOW, NOW, 1, payload,
    ]);
    const failure = await q.listKeyVerifications(db, { workspaceId: corrupt.workspaceId }).then(() => undefined, (err: unknown) => err);
    t.ok(failure instanceof Fault, `payload ${index + 1}: a Fault, not a TypeError`);
    t.equal((failure as Fault).code, 'err:unkey:application:assertion_failed');
    t.match((failure as Fault).internalMessage, /^key_verification_batches row pk \d+ is not a valid batch of verification events: /);
  }
  await db.execute('INSERT INTO `key_verification_batches` (`workspace_id`, `min_time`, `max_time`, `events`, `payload`) VALUES (?, ?, ?, ?, ?)', [
    s.workspaceId, NOW + 100, NOW + 100, 1, 'not json',
  ]);
  t.same(await q.listKeyVerifications(db, { workspaceId: s.workspaceId, limit: 5 }), events, 'the corrupt later batch is never decoded');
  t.same(await q.listKeyVerifications(db, { workspaceId: s.workspaceId, untilMs: NOW + 100 }), events, 'nor when the range ends before it');
  await t.rejects(q.listKeyVerifications(db, { workspaceId: s.workspaceId, limit: 6 }), { code: 'err:unkey:application:assertion_failed' }, 'a read that needs it fails');
});

conformance('key verifications: sinceMs (inclusive) and untilMs (exclusive) cut through batch edges and overlapping batches', async (t, db) => {
  const s = await seed(db);
  const batches = [0, 5, 10].map((offset) => Array.from({ length: 5 }, (_, index) => verification(s, NOW + offset + index, { requestId: `req_${offset + index}` })));
  // A batch whose events straddle the others' (written out of time order, as a slow node might).
  batches.push([verification(s, NOW + 20, { requestId: 'late_20' }), verification(s, NOW + 1, { requestId: 'late_1' }), verification(s, NOW + 9, { requestId: 'late_9' })]);
  for (const batch of batches) await q.insertKeyVerifications(db, batch);
  const requestIds = async (sinceMs?: number, untilMs?: number, limit?: number) =>
    (await q.listKeyVerifications(db, { workspaceId: s.workspaceId, sinceMs, untilMs, limit })).map((event) => event.requestId);
  t.same(await requestIds(NOW + 4, NOW + 6), ['req_4', 'req_5'], 'across the edge of two batches');
  t.same(await requestIds(NOW + 5, NOW + 10), ['req_5', 'req_6', 'req_7', 'req_8', 'req_9', 'late_9'], 'exactly one batch, plus the straddling one');
  t.same(await requestIds(NOW + 1, NOW + 2), ['req_1', 'late_1'], 'ties in write order');
  t.same(await requestIds(NOW + 14, undefined), ['req_14', 'late_20']);
  t.same(await requestIds(undefined, NOW + 1), ['req_0']);
  t.same(await requestIds(NOW + 15, NOW + 20), [], 'a gap between batches');
  t.same(await requestIds(NOW + 3, NOW + 3), [], 'an empty range');
  t.same(await requestIds(NOW + 8, NOW + 12, 3), ['req_8', 'req_9', 'late_9'], 'with a limit, ties still in write order');
  t.same(await requestIds(NOW + 21, undefined), [], 'after everything');
});

conformance('key verifications: pages of batches that share min_time and max_time across page edges lose and repeat nothing', async (t, db) => {
  const s = await seed(db);
  const written: q.KeyVerificationEvent[] = [];
  // 2.5 pages of batches; runs of seven share their time range, so page edges fall inside a run.
  for (let batch = 0; batch < q.VERIFICATION_BATCHES_PER_PAGE * 2.5; batch++) {
    const start = NOW + Math.floor(batch / 7);
    const events = [verification(s, start + (batch % 2), { requestId: `req_${batch}_0` }), verification(s, start, { requestId: `req_${batch}_1` })];
    await q.insertKeyVerifications(db, events);
    written.push(...events);
  }
  // Oldest first, ties in write order (Array.prototype.sort is stable).
  const expected = [...written].sort((a, b) => a.timeMs - b.timeMs);
  const requestIds = (events: q.KeyVerificationEvent[]) => events.map((event) => event.requestId);
  t.same(requestIds(await q.listKeyVerifications(db, { workspaceId: s.workspaceId, limit: 10_000 })), requestIds(expected));
  t.same(requestIds(await q.listKeyVerifications(db, { workspaceId: s.workspaceId, limit: 333 })), requestIds(expected.slice(0, 333)));
  const since = NOW + 20;
  t.same(
    requestIds(await q.listKeyVerifications(db, { workspaceId: s.workspaceId, sinceMs: since, limit: 10_000 })),
    requestIds(expected.filter((event) => event.timeMs >= since)),
  );
});

conformance('key verifications: a group whose payload would exceed the character bound is split into smaller rows', async (t, db) => {
  const s = await seed(db);
  const tags = Array.from({ length: 20 }, (_, index) => `tag${index}=${'x'.repeat(500)}`);
  const events = Array.from({ length: 500 }, (_, index) => verification(s, NOW + index, { requestId: `req_${index}`, tags }));
  t.ok(JSON.stringify(events).length > q.MAX_VERIFICATION_PAYLOAD_CHARS, 'the group is over the bound');
  t.equal(await q.insertKeyVerifications(db, events), 500);
  const rows = await batchRows(db, [s.workspaceId]);
  t.same(rows.map((row) => row.events), [250, 250]);
  t.same(rows.map((row) => [row.minTimeMs, row.maxTimeMs]), [[NOW, NOW + 249], [NOW + 250, NOW + 499]]);
  t.same(await q.listKeyVerifications(db, { workspaceId: s.workspaceId }), events);
});

conformance('migration 6 copies legacy key_verifications rows, tags as JSON, null ids, doubles and order intact', async (t, db) => {
  const fresh = await openFreshDatabase(t, db);
  await migrate(fresh, { migrations: MIGRATIONS.slice(0, 5) });
  const legacy: q.KeyVerificationEvent[] = [
    { requestId: 'req_a', timeMs: NOW + 5, workspaceId: 'ws_1', keySpaceId: 'ks_1', keyId: 'key_1', identityId: 'id_1', externalId: 'user_1', outcome: 'VALID',
      tags: ['path=/a', 'région=eu', 'quote"back\\slash', '🔑'], spentCredits: 3, latencyMs: 0.30000000000000004, region: 'eu-west' },
    { requestId: 'req_b', timeMs: NOW + 1, workspaceId: 'ws_1', keySpaceId: 'ks_1', keyId: 'key_2', outcome: 'RATE_LIMITED', tags: [], spentCredits: 0, latencyMs: 1e-7, region: 'local' },
    { requestId: 'req_c', timeMs: NOW + 1, workspaceId: 'ws_1', keySpaceId: 'ks_2', keyId: 'key_3', externalId: 'user_3', outcome: 'NOT_FOUND', tags: ['[]'], spentCredits: 0, latencyMs: 12, region: 'local' },
    { requestId: 'req_d', timeMs: NOW, workspaceId: 'ws_2', keySpaceId: 'ks_9', keyId: 'key_9', outcome: 'VALID', tags: [], spentCredits: 9_007_199_254_740_991, latencyMs: 123456.78901234567, region: 'local' },
    { requestId: 'req_e', timeMs: NOW + 5, workspaceId: 'ws_1', keySpaceId: 'ks_1', keyId: 'key_1', outcome: 'VALID', tags: ['x'], spentCredits: 1, latencyMs: 2.5, region: 'local' },
  ];
  for (const event of legacy) {
    await fresh.execute(
      'INSERT INTO `key_verifications` (`request_id`, `time`, `workspace_id`, `key_space_id`, `key_id`, `identity_id`, `external_id`, `outcome`, `tags`, `spent_credits`, `latency_ms`, `region`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [event.requestId, event.timeMs, event.workspaceId, event.keySpaceId, event.keyId, event.identityId, event.externalId, event.outcome, JSON.stringify(event.tags), event.spentCredits, event.latencyMs, event.region],
    );
  }
  t.same(await migrate(fresh), { applied: MIGRATIONS.slice(5).map(migrationId) });
  t.same(await tableNames(fresh, ['key_verifications', 'key_verification_batches']), ['key_verification_batches']);
  const rows = await batchRows(fresh, ['ws_1', 'ws_2']);
  t.same(rows.map((row) => [row.workspaceId, row.events, row.minTimeMs, row.maxTimeMs]), legacy.map((event) => [event.workspaceId, 1, event.timeMs, event.timeMs]), 'one batch per old row, in pk order');
  const [first] = await fresh.query<{ payload: string }>('SELECT `payload` FROM `key_verification_batches` ORDER BY `pk` LIMIT 1');
  t.same(JSON.parse(first!.payload), [['req_a', NOW + 5, 'ks_1', 'key_1', 'id_1', 'user_1', 'VALID', legacy[0]!.tags, 3, 0.30000000000000004, 'eu-west']], 'the payload has the documented field order, tags embedded as JSON');
  const byTime = (workspaceId: string) => legacy.filter((event) => event.workspaceId === workspaceId).sort((a, b) => a.timeMs - b.timeMs);
  t.same(await q.listKeyVerifications(fresh, { workspaceId: 'ws_1' }), byTime('ws_1'), 'identical, oldest first, ties in the old pk order');
  t.same(await q.listKeyVerifications(fresh, { workspaceId: 'ws_2' }), byTime('ws_2'));
  const listed = await q.listKeyVerifications(fresh, { workspaceId: 'ws_1', keyId: 'key_2' });
  t.equal(listed[0]?.identityId, undefined, 'a NULL id comes back undefined');
  t.equal(listed[0]?.latencyMs, 1e-7);
  t.same(await migrate(fresh), { applied: [] }, 'migrating again applies nothing');
  // MySQL commits each statement, so a run interrupted before it was recorded runs again whole.
  await fresh.execute('DELETE FROM `schema_migrations` WHERE `version` = ?', [6]);
  t.same(await migrate(fresh), { applied: MIGRATIONS.slice(5).map(migrationId) }, 'an unrecorded migration 6 runs again');
  t.same(await q.listKeyVerifications(fresh, { workspaceId: 'ws_1' }), byTime('ws_1'), 'without copying anything twice');
  t.same(await tableNames(fresh, ['key_verifications', 'key_verification_batches']), ['key_verification_batches']);
});

conformance('encrypted keys and key migrations', async (t, db) => {
  const s = await seed(db);
  const a = await addKey(db, s);
  const b = await addKey(db, s);
  await q.insertEncryptedKey(db, { keyId: a.id, workspaceId: s.workspaceId, encrypted: 'c1', encryptionKeyId: 'dek_1', createdAtMs: NOW });
  await t.rejects(q.insertEncryptedKey(db, { keyId: a.id, workspaceId: s.workspaceId, encrypted: 'c2', encryptionKeyId: 'dek_1', createdAtMs: NOW }), CONFLICT);
  t.match(await q.getEncryptedKey(db, s.workspaceId, a.id), { encrypted: 'c1', encryptionKeyId: 'dek_1' });
  t.equal(await q.getEncryptedKey(db, 'ws_other', a.id), undefined);
  const many = await q.getEncryptedKeys(db, s.workspaceId, [a.id, b.id]);
  t.same([...many.keys()], [a.id]);

  const migrationId = newId('mig');
  await q.insertKeyMigration(db, { id: migrationId, workspaceId: s.workspaceId, algorithm: 'github.com/seamapi/prefixed-api-key', createdAtMs: NOW });
  t.same(await q.getKeyMigration(db, s.workspaceId, migrationId), { id: migrationId, workspaceId: s.workspaceId, algorithm: 'github.com/seamapi/prefixed-api-key', createdAtMs: NOW });
});

// ---------------------------------------------------------------------------------------------
// The composed verification read

conformance('findKeyForVerification returns the key with everything verification needs', async (t, db) => {
  const s = await seed(db);
  await q.updateApi(db, s.workspaceId, s.apiId, { ipWhitelist: '10.0.0.1' }, NOW);
  const identityId = newId('id');
  await q.insertIdentity(db, { id: identityId, workspaceId: s.workspaceId, externalId: 'user_7', meta: { org: 'x' }, createdAtMs: NOW });
  const key = await addKey(db, s, { identityId, meta: { m: 1 }, remainingRequests: 9 });
  await q.insertRatelimits(db, [
    { id: 'rl_key_1', workspaceId: s.workspaceId, keyId: key.id, name: 'requests', limit: 10, durationMs: 60_000, autoApply: true, createdAtMs: NOW },
    { id: 'rl_id_1', workspaceId: s.workspaceId, identityId, name: 'requests', limit: 100, durationMs: 60_000, autoApply: true, createdAtMs: NOW },
    { id: 'rl_id_2', workspaceId: s.workspaceId, identityId, name: 'tokens', limit: 5000, durationMs: 3_600_000, autoApply: false, createdAtMs: NOW },
  ]);
  const permissions = await q.ensurePermissions(db, s.workspaceId, ['docs.read', 'docs.write', 'billing.view', 'unused'], () => newId('perm'), NOW);
  const bySlug = new Map(permissions.map((permission) => [permission.slug, permission.id]));
  await q.addKeyPermissions(db, { workspaceId: s.workspaceId, keyId: key.id, permissionIds: [bySlug.get('docs.read')!], nowMs: NOW });
  const editor = newId('role');
  const billing = newId('role');
  await q.insertRole(db, { id: editor, workspaceId: s.workspaceId, name: 'editor', createdAtMs: NOW });
  await q.insertRole(db, { id: billing, workspaceId: s.workspaceId, name: 'billing', createdAtMs: NOW });
  await q.addRolePermissions(db, { workspaceId: s.workspaceId, roleId: editor, permissionIds: [bySlug.get('docs.read')!, bySlug.get('docs.write')!], nowMs: NOW });
  await q.addRolePermissions(db, { workspaceId: s.workspaceId, roleId: billing, permissionIds: [bySlug.get('billing.view')!], nowMs: NOW });
  await q.addKeyRoles(db, { workspaceId: s.workspaceId, keyId: key.id, roleIds: [editor, billing], nowMs: NOW });

  const found = await q.findKeyForVerification(db, key.hash);
  t.ok(found, 'found');
  t.match(found!.key, { id: key.id, meta: { m: 1 }, remainingRequests: 9, enabled: true });
  t.match(found!.keySpace, { id: s.keySpaceId, storeEncryptedKeys: false });
  t.match(found!.api, { id: s.apiId, ipWhitelist: '10.0.0.1', deletedAtMs: undefined });
  t.equal(found!.workspaceEnabled, true);
  t.equal(found!.forWorkspace, undefined);
  t.match(found!.identity, { id: identityId, externalId: 'user_7', meta: { org: 'x' } });
  t.same(found!.identity!.ratelimits, [
    { id: 'rl_id_1', name: 'requests', limit: 100, durationMs: 60_000, autoApply: true },
    { id: 'rl_id_2', name: 'tokens', limit: 5000, durationMs: 3_600_000, autoApply: false },
  ]);
  t.same(found!.ratelimits, [{ id: 'rl_key_1', name: 'requests', limit: 10, durationMs: 60_000, autoApply: true }]);
  t.same(found!.directPermissions, ['docs.read']);
  t.same(found!.rolePermissions, ['billing.view', 'docs.read', 'docs.write']);
  t.same(found!.permissions, ['billing.view', 'docs.read', 'docs.write'], 'union without duplicates');
  t.same(found!.roles, ['billing', 'editor']);

  t.equal(await q.findKeyForVerification(db, 'no-such-hash'), undefined);
});

conformance('findKeyForVerification reflects disabled workspaces, deleted APIs and identities, root keys', async (t, db) => {
  const s = await seed(db);
  const identityId = newId('id');
  await q.insertIdentity(db, { id: identityId, workspaceId: s.workspaceId, externalId: 'gone', createdAtMs: NOW });
  await q.insertRatelimits(db, [{ id: newId('rl'), workspaceId: s.workspaceId, identityId, name: 'shared', limit: 1, durationMs: 1000, autoApply: true, createdAtMs: NOW }]);
  const key = await addKey(db, s, { identityId });
  await q.softDeleteIdentity(db, s.workspaceId, identityId, NOW);
  let found = await q.findKeyForVerification(db, key.hash);
  t.equal(found?.identity, undefined, 'a deleted identity is left out, with its rate limits');
  t.same(found?.permissions, []);
  t.same(found?.roles, []);

  await q.setWorkspaceEnabled(db, s.workspaceId, false, NOW);
  t.equal((await q.findKeyForVerification(db, key.hash))?.workspaceEnabled, false);
  await q.softDeleteApi(db, s.workspaceId, s.apiId, NOW + 1);
  found = await q.findKeyForVerification(db, key.hash);
  t.equal(found?.api.deletedAtMs, NOW + 1, 'the caller sees the API is deleted');

  const root = await seed(db);
  const target = await seed(db);
  const rootKey = await addKey(db, root, { forWorkspaceId: target.workspaceId });
  t.same((await q.findKeyForVerification(db, rootKey.hash))?.forWorkspace, { id: target.workspaceId, enabled: true });
  await q.softDeleteWorkspace(db, target.workspaceId, NOW);
  const orphan = await q.findKeyForVerification(db, rootKey.hash);
  t.equal(orphan?.key.forWorkspaceId, target.workspaceId);
  t.equal(orphan?.forWorkspace, undefined, 'a root key whose workspace is gone has no target');

  await q.softDeleteWorkspace(db, root.workspaceId, NOW);
  t.equal(await q.findKeyForVerification(db, rootKey.hash), undefined, "keys of a deleted workspace are not found");
});

conformance('findKeysForVerification loads a page of keys in one batch, each exactly as findKeyForVerification', async (t, db) => {
  const s = await seed(db);
  const identityId = newId('id');
  await q.insertIdentity(db, { id: identityId, workspaceId: s.workspaceId, externalId: 'batch_user', createdAtMs: NOW });
  const plain = await addKey(db, s);
  const rich = await addKey(db, s, { identityId, name: 'rich' });
  const other = await addKey(db, s, { identityId });
  const deleted = await addKey(db, s);
  await q.insertRatelimits(db, [
    { id: newId('rl'), workspaceId: s.workspaceId, keyId: rich.id, name: 'own', limit: 5, durationMs: 1000, autoApply: true, createdAtMs: NOW },
    { id: newId('rl'), workspaceId: s.workspaceId, identityId, name: 'shared', limit: 50, durationMs: 1000, autoApply: false, createdAtMs: NOW },
  ]);
  const permissions = await q.ensurePermissions(db, s.workspaceId, ['b.read', 'a.read'], () => newId('perm'), NOW);
  await q.addKeyPermissions(db, { workspaceId: s.workspaceId, keyId: rich.id, permissionIds: permissions.map((permission) => permission.id), nowMs: NOW });
  const role = newId('role');
  await q.insertRole(db, { id: role, workspaceId: s.workspaceId, name: 'viewer', createdAtMs: NOW });
  await q.addRolePermissions(db, { workspaceId: s.workspaceId, roleId: role, permissionIds: [permissions[0]!.id], nowMs: NOW });
  await q.addKeyRoles(db, { workspaceId: s.workspaceId, keyId: other.id, roleIds: [role], nowMs: NOW });
  await db.execute('UPDATE `keys` SET `deleted_at_m` = ? WHERE `id` = ?', [NOW, deleted.id]);

  const hashes = [plain.hash, rich.hash, other.hash, deleted.hash, 'no-such-hash', rich.hash];
  const batch = await q.findKeysForVerification(db, hashes);
  t.same([...batch.keys()].sort(), [plain.hash, rich.hash, other.hash].sort(), 'live keys only, each once');
  for (const hash of [plain.hash, rich.hash, other.hash]) {
    t.same(batch.get(hash), await q.findKeyForVerification(db, hash), 'the same result as the single lookup');
  }
  t.same(batch.get(rich.hash)!.permissions, ['a.read', 'b.read'], 'grants are not mixed up between keys');
  t.same(batch.get(other.hash)!.roles, ['viewer']);
  t.same(batch.get(plain.hash)!.permissions, []);
  t.equal(batch.get(other.hash)!.identity!.ratelimits.length, 1, 'identity limits reach every key of the identity');
  t.equal((await q.findKeysForVerification(db, [])).size, 0, 'an empty batch sends nothing');
  await t.rejects(q.findKeysForVerification(db, Array.from({ length: q.MAX_KEYS_PER_VERIFICATION_BATCH + 1 }, (_, index) => `h${index}`)), { code: 'err:unkey:application:invalid_input' });
});

// ---------------------------------------------------------------------------------------------
// Run every case on both engines.

const CONCURRENT_TRANSACTIONS = 20;

t.test('sqlite', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'keygate-db-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const db = await openDatabase(join(directory, 'nested', 'keygate.db'));
  t.teardown(() => db.close());
  t.same(await migrate(db), { applied: MIGRATIONS.map(migrationId) }, 'sqlite: migrating an empty database applies every migration');
  for (const [name, run] of cases) await t.test(`sqlite: ${name}`, (t) => run(t, db));

  await t.test('sqlite: transactions are serialised; the outer handle inside one fails instead of hanging', async (t) => {
    await db.execute('CREATE TABLE IF NOT EXISTS counter (n INTEGER NOT NULL)');
    await db.execute('INSERT INTO counter (n) VALUES (0)');
    await Promise.all(
      Array.from({ length: CONCURRENT_TRANSACTIONS }, () =>
        db.transaction(async (tx) => {
          const [row] = await tx.query<{ n: number }>('SELECT n FROM counter');
          await new Promise((resolve) => setImmediate(resolve));
          await tx.execute('UPDATE counter SET n = ?', [row!.n + 1]);
        }),
      ),
    );
    const [row] = await db.query<{ n: number }>('SELECT n FROM counter');
    t.equal(row!.n, CONCURRENT_TRANSACTIONS, 'no lost update across interleaved read-modify-write transactions');
    await t.rejects(
      db.transaction(async () => db.query('SELECT 1')),
      { code: 'err:unkey:application:assertion_failed' },
    );
    await db.execute('DROP TABLE counter');
  });
});

// Throws when CI=true and MariaDB is unreachable, so CI cannot pass by skipping.
const mysqlTestDatabase = await createTestMysqlDatabase();

t.test('mysql', { skip: mysqlTestDatabase === undefined ? MYSQL_SKIP_MESSAGE : false }, async (t) => {
  const test = mysqlTestDatabase!;
  t.teardown(() => test.drop());
  const db = await openDatabase(test.url, { connectionLimit: 4 });
  t.teardown(() => db.close());
  t.same(await migrate(db), { applied: MIGRATIONS.map(migrationId) }, 'mysql: migrating an empty database applies every migration');
  for (const [name, run] of cases) await t.test(`mysql: ${name}`, (t) => run(t, db));

  await t.test('mysql: concurrent migrators serialise on the advisory lock', async (t) => {
    const other = await openDatabase(test.url, { connectionLimit: 1 });
    try {
      const results = await Promise.all([migrate(db), migrate(other)]);
      t.same(results, [{ applied: [] }, { applied: [] }]);
    } finally {
      await other.close();
    }
  });
});
