/**
 * `createTestMysqlDatabase`: a throwaway MariaDB/MySQL database for one test file. Connects as
 * root over the local socket, creates `keygate_test_<random>` and a user with a random password
 * allowed from 127.0.0.1, and returns a TCP `mysql://` URL for it (so tests exercise the same
 * password-over-TCP path a cluster uses). `drop()` removes both; call it in `t.teardown`.
 *
 * When the server is unreachable it returns `undefined` (the caller skips with a message), except
 * when `CI=true`, where it throws: CI must not pass by skipping.
 */
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';

/** Root socket of this machine's MariaDB; override with `KEYGATE_TEST_MYSQL_SOCKET`. */
export const TEST_MYSQL_SOCKET = process.env.KEYGATE_TEST_MYSQL_SOCKET ?? '/run/mysqld/mysqld.sock';
/** TCP address the returned URL points at; override with `KEYGATE_TEST_MYSQL_HOST` / `_PORT`. */
export const TEST_MYSQL_HOST = process.env.KEYGATE_TEST_MYSQL_HOST ?? '127.0.0.1';
export const TEST_MYSQL_PORT = Number(process.env.KEYGATE_TEST_MYSQL_PORT ?? 3306);

/** A test database: its URL and how to remove it. */
export interface TestMysqlDatabase {
  url: string;
  /** Database name (`keygate_test_<random>`). */
  name: string;
  drop(): Promise<void>;
}

/** Message a test prints when it skips because MySQL is not reachable. */
export const MYSQL_SKIP_MESSAGE = `MariaDB/MySQL not reachable over ${TEST_MYSQL_SOCKET} as root; skipping (set CI=true to make this fail)`;

/** Creates a fresh database and user; see the module comment for the unreachable case. */
export async function createTestMysqlDatabase(): Promise<TestMysqlDatabase | undefined> {
  let admin: mysql.Connection;
  try {
    admin = await mysql.createConnection({ socketPath: TEST_MYSQL_SOCKET, user: 'root', connectTimeout: 5_000 });
  } catch (err) {
    if (process.env.CI === 'true') {
      throw new Error(`CI=true and MariaDB/MySQL is unreachable over ${TEST_MYSQL_SOCKET}: ${(err as Error).message}`, { cause: err });
    }
    return undefined;
  }
  const suffix = randomBytes(6).toString('hex');
  const name = `keygate_test_${suffix}`;
  const user = `kg_test_${suffix}`;
  const password = randomBytes(18).toString('base64url');
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await admin.query(`CREATE USER '${user}'@'${TEST_MYSQL_HOST}' IDENTIFIED BY '${password}'`);
    await admin.query(`GRANT ALL PRIVILEGES ON \`${name}\`.* TO '${user}'@'${TEST_MYSQL_HOST}'`);
  } catch (err) {
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``).catch(() => undefined);
    await admin.query(`DROP USER IF EXISTS '${user}'@'${TEST_MYSQL_HOST}'`).catch(() => undefined);
    await admin.end();
    throw err;
  }
  let dropped = false;
  return {
    url: `mysql://${user}:${encodeURIComponent(password)}@${TEST_MYSQL_HOST}:${TEST_MYSQL_PORT}/${name}`,
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      try {
        await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
        await admin.query(`DROP USER IF EXISTS '${user}'@'${TEST_MYSQL_HOST}'`);
      } finally {
        await admin.end();
      }
    },
  };
}
