import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { AsyncMutex } from '../../../core/db/async-mutex.ts';
import { DEFAULT_SQLITE_FILE_NAME, openDatabase, sqlitePathFromUrl } from '../../../core/db/database.ts';
import { createTestMysqlDatabase, MYSQL_SKIP_MESSAGE } from '../../helpers/mysql.ts';

t.test('resolves SQLite URLs to paths', async (t) => {
  const table: Array<[string, string | undefined, string]> = [
    [':memory:', undefined, ':memory:'],
    ['sqlite::memory:', undefined, ':memory:'],
    ['/var/lib/keygate/kg.db', undefined, '/var/lib/keygate/kg.db'],
    ['sqlite:/var/lib/keygate/kg.db', undefined, '/var/lib/keygate/kg.db'],
    ['sqlite:///var/lib/keygate/kg.db', undefined, '/var/lib/keygate/kg.db'],
    ['sqlite:data.db', '/srv/keygate', '/srv/keygate/data.db'],
    ['data.db', '/srv/keygate', '/srv/keygate/data.db'],
    ['data.db', undefined, resolve('data.db')],
    ['', '/srv/keygate', `/srv/keygate/${DEFAULT_SQLITE_FILE_NAME}`],
  ];
  for (const [url, dataDir, expected] of table) t.equal(sqlitePathFromUrl(url, dataDir), expected, `${JSON.stringify(url)} in ${dataDir}`);
});

t.test('rejects a URL scheme it does not speak instead of creating a file named after it', async (t) => {
  await t.rejects(openDatabase('postgres://user:secret@localhost/db'), { code: 'err:keygate:config:invalid' });
  const error = await openDatabase('postgres://user:secret@localhost/db').catch((err: Error) => err);
  t.notMatch(String((error as Error).message), /secret/, 'the password is not echoed');
});

t.test('the default SQLite database lives at <dataDir>/keygate.db with WAL and foreign keys on', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'keygate-open-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const dataDir = join(directory, 'does', 'not', 'exist', 'yet');
  const db = await openDatabase('', { dataDir });
  t.ok(existsSync(join(dataDir, 'keygate.db')), 'parent directories are created');
  t.same(await db.query('PRAGMA journal_mode'), [{ journal_mode: 'wal' }]);
  t.same(await db.query('PRAGMA foreign_keys'), [{ foreign_keys: 1 }]);
  t.equal(db.dialect, 'sqlite');
  await db.close();
  await db.close();
  t.pass('close is idempotent');
  await t.rejects(db.query('SELECT 1'), { code: 'err:keygate:database:unavailable' }, 'a closed database is unavailable');
});

t.test('a SQLite file that cannot be created is unavailable', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'keygate-open-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const blocker = join(directory, 'a-file');
  await writeFile(blocker, 'not a directory');
  await t.rejects(openDatabase(join(blocker, 'keygate.db')), { code: 'err:keygate:database:unavailable' });
});

t.test('an unreachable MySQL server is a retryable unavailable fault', async (t) => {
  // Port 1 on loopback: nothing listens there, so the connection is refused at once.
  await t.rejects(openDatabase('mysql://keygate:pw@127.0.0.1:1/keygate', { connectTimeoutMs: 2_000 }), {
    code: 'err:keygate:database:unavailable',
    retryable: true,
  });
});

t.test('a MySQL URL without a database or with a bad parameter is invalid configuration', async (t) => {
  await t.rejects(openDatabase('mysql://keygate:pw@127.0.0.1:3306/'), { code: 'err:keygate:config:invalid' });
  await t.rejects(openDatabase('mysql://keygate:pw@127.0.0.1:3306/db?connectionLimit=0'), { code: 'err:keygate:config:invalid' });
});

const mysqlTestDatabase = await createTestMysqlDatabase();

t.test('MySQL over TCP with a password, and wrong credentials are not retryable', { skip: mysqlTestDatabase === undefined ? MYSQL_SKIP_MESSAGE : false }, async (t) => {
  const test = mysqlTestDatabase!;
  t.teardown(() => test.drop());
  const db = await openDatabase(test.url);
  t.equal(db.dialect, 'mysql');
  t.same(await db.query('SELECT DATABASE() AS name'), [{ name: test.name }]);
  await db.close();
  await db.close();
  await t.rejects(db.query('SELECT 1'), { code: 'err:keygate:database:unavailable' }, 'a closed pool is unavailable');
  const wrong = test.url.replace(/:[^:@/]+@/, ':wrong-password@');
  const error = await openDatabase(wrong).catch((err: unknown) => err);
  t.match(error, { code: 'err:keygate:database:unavailable', retryable: false });
  t.notMatch(String((error as Error).message), /wrong-password/, 'the password is not in the message');
});

t.test('AsyncMutex hands the lock to waiters in arrival order', async (t) => {
  const mutex = new AsyncMutex();
  const order: number[] = [];
  const first = await mutex.acquire();
  const waiters = [1, 2, 3].map(async (index) => {
    const release = await mutex.acquire();
    order.push(index);
    release();
    release();
  });
  t.equal(mutex.waiting, 3);
  first();
  await Promise.all(waiters);
  t.same(order, [1, 2, 3]);
  t.equal(mutex.locked, false, 'a double release does not free the lock twice');
});
