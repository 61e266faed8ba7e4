import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'mysql2/promise';
import { commands } from '../../bin/commands/registry.ts';

const CLI = fileURLToPath(new URL('../../bin/keygate.ts', import.meta.url));
/** Upper bound for one CLI run; a run normally takes a fraction of a second. */
const RUN_TIMEOUT_MS = 30_000;
const MYSQL_SOCKET = '/run/mysqld/mysqld.sock';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI under this Node (24, from tap) with a clean environment. */
function keygate(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: options.cwd ?? process.cwd(), env: { PATH: process.env['PATH'] ?? '', ...options.env }, timeout: RUN_TIMEOUT_MS },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

t.test('--help, -h and help list every command with its summary, exit 0', async (t) => {
  for (const args of [['--help'], ['help']]) {
    const result = await keygate(args);
    t.equal(result.code, 0, args.join(' '));
    t.equal(result.stderr, '');
    for (const command of commands) {
      t.match(result.stdout, `  ${command.name} `, `${args[0]} lists ${command.name}`);
      t.match(result.stdout, command.summary);
    }
    t.match(result.stdout, /config validate\s+check a JSON config file/);
    t.match(result.stdout, /Exit codes: 0 success, 1 failure, 2 usage error/);
  }
});

t.test('a command answers --help with its usage and flags, exit 0', async (t) => {
  const migrateHelp = await keygate(['migrate', '--help']);
  t.equal(migrateHelp.code, 0);
  t.match(migrateHelp.stdout, /^Usage: keygate migrate/);
  t.match(migrateHelp.stdout, /--db URL/);
  t.match(migrateHelp.stdout, /--data-dir DIR/);
  t.match(migrateHelp.stdout, /--config FILE/);
  t.match(migrateHelp.stdout, /-h, --help\s+show this help/);
  const printHelp = await keygate(['config', 'print', '-h']);
  t.equal(printHelp.code, 0);
  t.match(printHelp.stdout, /--cache-fresh-ms VALUE\s+cache\.freshMs: .*\[KEYGATE_CACHE_FRESH_MS, default 10000\]/);
});

t.test('version prints the package and Node versions', async (t) => {
  const result = await keygate(['version']);
  t.equal(result.code, 0);
  t.equal(result.stdout, `keygate 0.1.0 (node ${process.version})\n`);
});

t.test('usage errors exit 2 with a message a person can act on (the full table is in run-cli.test.ts)', async (t) => {
  const table: [args: string[], stderr: RegExp][] = [
    [[], /keygate: no command given/],
    [['migrat'], /^keygate: unknown command "migrat"; did you mean "migrate"\? Run "keygate --help" for the list\.\n$/],
    [['migrate', '--dbb', 'x.db'], /^keygate: unknown flag --dbb for "migrate"; did you mean --db\? Run "keygate migrate --help" for its flags\.\n$/],
  ];
  for (const [args, stderr] of table) {
    const result = await keygate(args);
    t.equal(result.code, 2, `keygate ${args.join(' ')} exits 2`);
    t.match(result.stderr, stderr, `keygate ${args.join(' ')}`);
    t.notMatch(result.stderr, /\n\s+at /, 'no stack trace');
  }
});

t.test('config validate: a good file prints the effective config with secrets redacted, exit 0', async (t) => {
  const dir = t.testdir({ conf: {} });
  const file = join(dir, 'conf', 'keygate.json');
  writeFileSync(file, JSON.stringify({ dataDir: 'state', server: { port: 8080 }, db: { url: 'mysql://app:pa55word@db:3306/kg' }, redis: { url: 'redis://:r3dispw@cache:6379/0' } }));
  // Environment variables do not leak into `validate` (they would into `print`).
  const result = await keygate(['config', 'validate', '--config', file], { env: { KEYGATE_SERVER_PORT: '1' } });
  t.equal(result.code, 0, result.stderr);
  const printed = JSON.parse(result.stdout) as { dataDir: string; server: { port: number; host: string }; db: { url: string }; redis: { url: string } };
  t.equal(printed.server.port, 8080);
  t.equal(printed.server.host, '127.0.0.1');
  t.equal(printed.dataDir, join(dir, 'conf', 'state'), 'relative to the file');
  t.equal(printed.db.url, 'mysql://app:***@db:3306/kg');
  t.equal(printed.redis.url, 'redis://:***@cache:6379/0');
  t.notMatch(result.stdout + result.stderr, /pa55word|r3dispw/);
  t.match(result.stderr, `keygate: ${file} is valid`);
});

t.test('config validate: bad files exit 1 naming the problem', async (t) => {
  const dir = t.testdir();
  const write = (name: string, content: string): string => {
    writeFileSync(join(dir, name), content);
    return join(dir, name);
  };
  const table: [file: string, stderr: RegExp][] = [
    [write('unknown.json', '{"server": {"prot": 80}}'), /^keygate: unknown key "server\.prot" in .*unknown\.json; did you mean "server\.port"\?\n$/],
    [write('type.json', '{"server": {"port": "eighty"}}'), /^keygate: server\.port: expected an integer from 0 to 65535, got "eighty" \(in .*type\.json\)\n$/],
    [join(dir, 'missing.json'), new RegExp(`^keygate: config file not found: ${join(dir, 'missing.json')}\\n$`)],
  ];
  for (const [file, stderr] of table) {
    const result = await keygate(['config', 'validate', '--config', file]);
    t.equal(result.code, 1, file);
    t.match(result.stderr, stderr, file);
    t.equal(result.stdout, '');
  }
});

t.test('config print merges file < env < flags; bad env values exit 1', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'keygate.json');
  writeFileSync(file, JSON.stringify({ server: { port: 1000, host: '10.0.0.1' }, log: { level: 'warn' } }));
  const result = await keygate(['config', 'print', '--config', file, '--port', '3000', '--cache-fresh-ms', '2s'], {
    env: { KEYGATE_SERVER_PORT: '2000', KEYGATE_LOG_LEVEL: 'debug' },
  });
  t.equal(result.code, 0, result.stderr);
  const printed = JSON.parse(result.stdout) as { server: { port: number; host: string }; log: { level: string }; cache: { freshMs: number }; redis: { url: unknown } };
  t.same(printed.server, { host: '10.0.0.1', port: 3000 });
  t.equal(printed.log.level, 'debug');
  t.equal(printed.cache.freshMs, 2000);
  t.equal(printed.redis.url, null);

  const fromEnvFile = await keygate(['config', 'print'], { cwd: dir, env: { KEYGATE_CONFIG: 'keygate.json' } });
  t.equal((JSON.parse(fromEnvFile.stdout) as { server: { port: number } }).server.port, 1000, 'KEYGATE_CONFIG names the file');

  const badEnv = await keygate(['config', 'print'], { env: { KEYGATE_SERVER_PORT: 'x', KEYGATE_SERVR_HOST: 'y' } });
  t.equal(badEnv.code, 1);
  t.match(badEnv.stderr, /server\.port: expected an integer from 0 to 65535, got "x" \(from environment variable KEYGATE_SERVER_PORT\)/);
  t.match(badEnv.stderr, /unknown environment variable KEYGATE_SERVR_HOST; did you mean KEYGATE_SERVER_HOST\?/);
});

t.test('failures exit 1 without a stack trace, with one under KEYGATE_DEBUG=1, never with a password', async (t) => {
  // Port 1 on loopback refuses at once: a database failure without waiting for a timeout.
  const args = ['migrate', '--db', 'mysql://app:pa55word@127.0.0.1:1/kg'];
  const plain = await keygate(args);
  t.equal(plain.code, 1);
  t.match(plain.stderr, /^keygate: .*ECONNREFUSED/m);
  t.notMatch(plain.stderr, /\n\s+at /);
  const debug = await keygate(args, { env: { KEYGATE_DEBUG: '1' } });
  t.equal(debug.code, 1);
  t.match(debug.stderr, /\n\s+at /);
  t.notMatch(plain.stdout + plain.stderr + debug.stdout + debug.stderr, /pa55word/);
});

t.test('migrate brings an empty SQLite file to the latest schema, and a second run applies nothing', async (t) => {
  const dir = t.testdir();
  const first = await keygate(['migrate', '--db', './data/keygate.db'], { cwd: dir });
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, `migrating ${join(dir, 'data', 'keygate.db')}\n`);
  t.match(first.stdout, /^applied \S+$/m);
  t.ok(existsSync(join(dir, 'data', 'keygate.db')));
  const second = await keygate(['migrate', '--db', './data/keygate.db'], { cwd: dir });
  t.equal(second.code, 0, second.stderr);
  t.match(second.stdout, /already up to date/);
  t.notMatch(second.stdout, /^applied/m);
});

t.test('migrate without --db uses keygate.db in the data directory', async (t) => {
  const dir = t.testdir();
  const result = await keygate(['migrate', '--data-dir', 'state'], { cwd: dir });
  t.equal(result.code, 0, result.stderr);
  t.ok(existsSync(join(dir, 'state', 'keygate.db')));
  const viaEnv = await keygate(['migrate'], { cwd: dir, env: { KEYGATE_DATA_DIR: 'state' } });
  t.match(viaEnv.stdout, /already up to date/);
});

// MariaDB runs for real when it answers; outside CI an unreachable server skips the test, in CI it fails it.
const mysqlAdmin = await createConnection({ socketPath: MYSQL_SOCKET, user: 'root' }).catch((err: unknown) => err as Error);
if (mysqlAdmin instanceof Error && process.env['CI'] === 'true') {
  throw new Error(`MariaDB is required in CI (socket ${MYSQL_SOCKET}): ${mysqlAdmin.message}`);
}

t.test('migrate brings an empty MariaDB database to the latest schema, idempotently', {
  skip: mysqlAdmin instanceof Error ? `MariaDB is not reachable over ${MYSQL_SOCKET}: ${mysqlAdmin.message}` : false,
}, async (t) => {
  const admin = mysqlAdmin as Exclude<typeof mysqlAdmin, Error>;
  const database = `keygate_test_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE \`${database}\``);
  t.teardown(async () => {
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
  });
  const url = `mysql://root@localhost/${database}?socket=${MYSQL_SOCKET}`;
  const first = await keygate(['migrate', '--db', url]);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, /^applied \S+$/m);
  const [tables] = await admin.query(`SELECT COUNT(*) AS count FROM information_schema.tables WHERE table_schema = ?`, [database]);
  t.ok(Number((tables as { count: number | string }[])[0]?.count) > 1, 'tables were created');
  const second = await keygate(['migrate', '--db', url]);
  t.equal(second.code, 0, second.stderr);
  t.match(second.stdout, /already up to date/);
});

t.teardown(async () => {
  if (!(mysqlAdmin instanceof Error)) await mysqlAdmin.end();
});
