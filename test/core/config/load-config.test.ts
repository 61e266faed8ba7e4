import t from 'tap';
import type { Test } from 'tap';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig, loadConfigTree } from '../../../core/config/load-config.ts';
import { redactConfig } from '../../../core/config/redact-config.ts';
import { field } from '../../../core/config/field.ts';
import { Fault } from '../../../core/fault.ts';

/** Writes `content` (an object is JSON-encoded) to `<dir>/<name>` and returns the path. */
function writeConfig(dir: string, content: unknown, name = 'keygate.json'): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** The fault `fn` throws; fails the test when it returns. */
function faultOf(t: Test, fn: () => unknown): Fault {
  try {
    fn();
  } catch (err) {
    t.ok(err instanceof Fault, 'throws a Fault');
    return err as Fault;
  }
  t.fail('expected a fault, got a config');
  throw new Error('unreachable');
}

t.test('applies every default when no source is given', async (t) => {
  const config = loadConfig({ env: {}, argv: [] });
  // Only the foundation's sections: other roles add their own sections to the same schema.
  const { dataDir, server, db, redis, cache, log } = config;
  t.same({ dataDir, server, db, redis, cache, log }, {
    dataDir: './.keygate',
    server: { host: '127.0.0.1', port: 7070 },
    db: { url: join('./.keygate', 'keygate.db') },
    redis: { url: undefined, keyPrefix: 'keygate:', rateLimitFailureMode: 'open', creditsFailureMode: 'closed', connectTimeoutMs: 10_000, maxReconnectDelayMs: 2_000 },
    cache: { freshMs: 10_000, staleMs: 600_000, maxEntries: 1_000_000 },
    log: { level: 'info' },
  });
});

t.test('precedence is file < environment < flags, key by key', async (t) => {
  const dir = t.testdir();
  const file = writeConfig(dir, { server: { host: '10.0.0.1', port: 1000 }, log: { level: 'warn' }, cache: { freshMs: 1 } });
  const cases: { name: string; env: Record<string, string>; argv: string[]; port: number; host: string; level: string; freshMs: number }[] = [
    { name: 'file only', env: {}, argv: [], port: 1000, host: '10.0.0.1', level: 'warn', freshMs: 1 },
    { name: 'env beats file', env: { KEYGATE_SERVER_PORT: '2000', KEYGATE_LOG_LEVEL: 'debug' }, argv: [], port: 2000, host: '10.0.0.1', level: 'debug', freshMs: 1 },
    { name: 'flag beats env and file', env: { KEYGATE_SERVER_PORT: '2000' }, argv: ['--server-port', '3000'], port: 3000, host: '10.0.0.1', level: 'warn', freshMs: 1 },
    { name: 'alias flag beats env', env: { KEYGATE_SERVER_PORT: '2000' }, argv: ['--port=4000', '--host', '0.0.0.0'], port: 4000, host: '0.0.0.0', level: 'warn', freshMs: 1 },
    { name: 'the last of two flags for one key wins', env: {}, argv: ['--port', '1', '--server-port', '2'], port: 2, host: '10.0.0.1', level: 'warn', freshMs: 1 },
    { name: 'durations with units from env and flags', env: { KEYGATE_CACHE_FRESH_MS: '2s' }, argv: ['--cache-fresh-ms', '1.5m'], port: 1000, host: '10.0.0.1', level: 'warn', freshMs: 90_000 },
  ];
  for (const c of cases) {
    const config = loadConfig({ file, env: c.env, argv: c.argv });
    t.same(
      { port: config.server.port, host: config.server.host, level: config.log.level, freshMs: config.cache.freshMs },
      { port: c.port, host: c.host, level: c.level, freshMs: c.freshMs },
      c.name,
    );
  }
});

t.test('KEYGATE_CONFIG names the file when no file option is given, relative to cwd', async (t) => {
  const dir = t.testdir();
  writeConfig(dir, { server: { port: 1234 } });
  t.equal(loadConfig({ env: { KEYGATE_CONFIG: 'keygate.json' }, cwd: dir }).server.port, 1234);
  t.equal(loadConfig({ file: 'keygate.json', env: {}, cwd: dir }).server.port, 1234);
});

t.test('the result is deeply frozen', async (t) => {
  const config = loadConfig({ env: {} });
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.server));
  t.throws(() => {
    (config.server as { port: number }).port = 1;
  }, TypeError);
});

t.test('db.url defaults to keygate.db in the final data directory', async (t) => {
  t.equal(loadConfig({ env: { KEYGATE_DATA_DIR: '/var/lib/keygate' } }).db.url, '/var/lib/keygate/keygate.db');
  t.equal(loadConfig({ env: {}, argv: ['--data-dir', '/srv/kg'] }).db.url, '/srv/kg/keygate.db');
  t.equal(loadConfig({ env: { KEYGATE_DATA_DIR: '/a' }, argv: ['--db', 'mysql://u:p@h:3306/k'] }).db.url, 'mysql://u:p@h:3306/k');
});

t.test('relative paths in a config file resolve against the file directory, not the cwd', async (t) => {
  const dir = t.testdir({ conf: {} });
  const file = writeConfig(join(dir, 'conf'), { dataDir: '../state', db: { url: 'db/main.db' } });
  const config = loadConfig({ file, env: {} });
  t.equal(config.dataDir, resolve(dir, 'state'));
  t.equal(config.db.url, resolve(dir, 'conf/db/main.db'));
  // The derived default follows the resolved data directory.
  const onlyDataDir = writeConfig(join(dir, 'conf'), { dataDir: 'here' }, 'only-data-dir.json');
  t.equal(loadConfig({ file: onlyDataDir, env: {} }).db.url, resolve(dir, 'conf/here/keygate.db'));
  // sqlite: prefixes resolve too; MySQL URLs, :memory: and absolute paths are left alone.
  const table: [string, string][] = [
    ['sqlite:x.db', 'sqlite:' + resolve(dir, 'conf/x.db')],
    ['sqlite://x.db', 'sqlite:' + resolve(dir, 'conf/x.db')],
    [':memory:', ':memory:'],
    ['/abs/k.db', '/abs/k.db'],
    ['mysql://root@localhost/kg?socket=/run/mysqld/mysqld.sock', 'mysql://root@localhost/kg?socket=/run/mysqld/mysqld.sock'],
  ];
  for (const [given, expected] of table) {
    const path = writeConfig(join(dir, 'conf'), { db: { url: given } }, 'db.json');
    t.equal(loadConfig({ file: path, env: {} }).db.url, expected, given);
  }
  // Paths from env and flags stay as given: they are relative to where the command runs.
  t.equal(loadConfig({ file, env: { KEYGATE_DATA_DIR: 'rel' } }).dataDir, 'rel');
});

t.test('a null in the file means "not set": printed configs load back', async (t) => {
  const dir = t.testdir();
  const printed = redactConfig(loadConfig({ env: {} }));
  t.equal((printed['redis'] as { url: unknown }).url, null);
  const file = writeConfig(dir, printed);
  t.equal(loadConfig({ file, env: {} }).redis.url, undefined);
});

t.test('every error form names the key, the expected form, the value and the source', async (t) => {
  const dir = t.testdir();
  const cases: { name: string; file?: unknown; env?: Record<string, string>; argv?: string[]; messages: RegExp[] }[] = [
    {
      name: 'unknown key in the file, with a suggestion',
      file: { server: { prot: 1 } },
      messages: [/^unknown key "server\.prot" in .*keygate\.json; did you mean "server\.port"\?$/],
    },
    { name: 'unknown section in the file', file: { serer: {} }, messages: [/^unknown key "serer" in .*; did you mean "server"\?$/] },
    { name: 'unknown key without a close match', file: { zzzzzzzz: 1 }, messages: [/^unknown key "zzzzzzzz" in [^;]*$/] },
    {
      name: 'unknown environment variable',
      env: { KEYGATE_SERVER_PROT: '1' },
      messages: [/^unknown environment variable KEYGATE_SERVER_PROT; did you mean KEYGATE_SERVER_PORT\?$/],
    },
    { name: 'unknown flag', argv: ['--server-prot', '1'], messages: [/^unknown flag --server-prot; did you mean --server-port\?$/] },
    {
      name: 'wrong type in the file',
      file: { server: { port: '80' } },
      messages: [/^server\.port: expected an integer from 0 to 65535, got "80" \(in .*keygate\.json\)$/],
    },
    {
      name: 'out of range in env',
      env: { KEYGATE_SERVER_PORT: '70000' },
      messages: [/^server\.port: expected an integer from 0 to 65535, got "70000" \(from environment variable KEYGATE_SERVER_PORT\)$/],
    },
    { name: 'bad enum from a flag', argv: ['--log-level', 'loud'], messages: [/^log\.level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud" \(from flag --log-level\)$/] },
    { name: 'bad duration', env: { KEYGATE_CACHE_STALE_MS: 'soon' }, messages: [/^cache\.staleMs: expected a duration in milliseconds .*got "soon"/] },
    { name: 'wrong URL protocol', argv: ['--redis', 'http://x'], messages: [/^redis\.url: expected an absolute URL \(redis:\/\/… or rediss:\/\/…\), got "http:\/\/x"/] },
    { name: 'unsupported database scheme', argv: ['--db', 'postgres://h/db'], messages: [/^db\.url: expected a SQLite file path.*got "postgres:\/\/h\/db"/] },
    { name: 'a section given as a scalar', file: { server: 8080 }, messages: [/^server: expected an object with the keys host, port, got 8080/] },
    { name: 'flag without a value', argv: ['--port'], messages: [/^flag --port needs a value: an integer from 0 to 65535$/] },
    { name: 'a positional argument', argv: ['8080'], messages: [/^unexpected argument "8080"/] },
    {
      name: 'every problem at once, across sources',
      file: { server: { port: -1 } },
      env: { KEYGATE_LOG_LEVEL: 'x' },
      argv: ['--nope'],
      messages: [/^server\.port: /, /^log\.level: /, /^unknown flag --nope$/],
    },
  ];
  for (const c of cases) {
    const file = c.file === undefined ? undefined : writeConfig(dir, c.file);
    const fault = faultOf(t, () => loadConfig({ ...(file === undefined ? {} : { file }), env: c.env ?? {}, argv: c.argv ?? [] }));
    t.equal(fault.code, 'err:keygate:config:invalid', c.name);
    t.equal(fault.errors?.length, c.messages.length, `${c.name}: problem count`);
    c.messages.forEach((pattern, position) => t.match(fault.errors?.[position]?.message, pattern, c.name));
    if (c.messages.length === 1) t.equal(fault.publicMessage, fault.errors?.[0]?.message, `${c.name}: one problem is the whole message`);
    else t.match(fault.publicMessage, new RegExp(`^invalid configuration \\(${c.messages.length} problems\\):\\n  - `), c.name);
  }
});

t.test('file problems name the path: missing, a directory, not JSON, not an object', async (t) => {
  const dir = t.testdir({ 'a-directory': {} });
  const missing = faultOf(t, () => loadConfig({ file: join(dir, 'nope.json'), env: {} }));
  t.equal(missing.code, 'err:keygate:config:file_not_found');
  t.equal(missing.publicMessage, `config file not found: ${join(dir, 'nope.json')}`);

  const directory = faultOf(t, () => loadConfig({ file: join(dir, 'a-directory'), env: {} }));
  t.equal(directory.code, 'err:keygate:config:invalid');
  t.match(directory.publicMessage, `cannot read config file ${join(dir, 'a-directory')}: it is a directory`);

  const notJson = faultOf(t, () => loadConfig({ file: writeConfig(dir, '{"server": {"port": 1,}}'), env: {} }));
  t.match(notJson.publicMessage, new RegExp(`^config file ${join(dir, 'keygate.json')} is not valid JSON: `));

  const notObject = faultOf(t, () => loadConfig({ file: writeConfig(dir, '[1, 2]'), env: {} }));
  t.match(notObject.publicMessage, /must hold a JSON object/);

  if (process.getuid?.() !== 0) {
    const locked = writeConfig(dir, {}, 'locked.json');
    chmodSync(locked, 0o000);
    t.match(faultOf(t, () => loadConfig({ file: locked, env: {} })).publicMessage, /permission denied/);
  }
});

t.test('KEYGATE_ variables that are not keys: the reserved ones pass, others are errors', async (t) => {
  t.doesNotThrow(() => loadConfig({ env: { KEYGATE_DEBUG: '1', KEYGATE_TEST_MYSQL_URL: 'x', PATH: '/bin', OTHER_PORT: 'x' } }));
  t.throws(() => loadConfig({ env: { KEYGATE_PORT: '1' } }), { code: 'err:keygate:config:invalid' });
});

t.test('secret values never appear in errors or printed config', async (t) => {
  const tree = {
    vault: {
      token: field.secret({ description: 'token' }),
      url: field.url({ description: 'url', protocols: ['https:'] }),
    },
    db: { url: field.databaseUrl({ description: 'db' }) },
  } as const;
  const secret = 'hunter2-very-secret';
  // A valid secret is printed as [redacted]; a URL password as ***.
  const config = loadConfigTree(tree, { env: { KEYGATE_VAULT_TOKEN: secret }, argv: ['--db-url', `mysql://app:${secret}@db:3306/kg`] });
  t.equal(config.vault.token, secret);
  const printed = JSON.stringify(redactConfig(config, tree));
  t.notMatch(printed, secret);
  t.match(printed, '"token":"[redacted]"');
  t.match(printed, `mysql://app:***@db:3306/kg`);

  // An invalid value of a secret key, or a rejected URL with a password, is not echoed either.
  const dir = t.testdir();
  const file = writeConfig(dir, { vault: { token: 42, url: `http://user:${secret}@vault` } });
  const fault = faultOf(t, () => loadConfigTree(tree, { file, env: {}, argv: [] }));
  t.equal(fault.errors?.length, 2);
  t.match(fault.publicMessage, /vault\.token: expected a non-empty string, got a value that is not shown because the key is secret/);
  t.match(fault.publicMessage, /vault\.url: expected .*"http:\/\/user:\*\*\*@vault"/);
  t.notMatch(fault.publicMessage, secret);
  t.notMatch(JSON.stringify(fault.errors), secret);
});

t.test('fields of every kind parse from file, env and flags', async (t) => {
  const tree = {
    feature: {
      enabled: field.boolean({ description: 'b', default: false }),
      ratio: field.number({ description: 'n', min: 0, max: 1 }),
      origins: field.stringList({ description: 'l', default: [] }),
      name: field.string({ description: 's' }),
    },
  } as const;
  const dir = t.testdir();
  const file = writeConfig(dir, { feature: { enabled: true, ratio: 0.5, origins: ['a', 'b'], name: 'x' } });
  t.same(loadConfigTree(tree, { file, env: {} }).feature, { enabled: true, ratio: 0.5, origins: ['a', 'b'], name: 'x' });
  t.same(
    loadConfigTree(tree, { env: { KEYGATE_FEATURE_ENABLED: 'yes', KEYGATE_FEATURE_ORIGINS: 'a, b,,c' }, argv: ['--feature-ratio=0.25'] }).feature,
    { enabled: true, ratio: 0.25, origins: ['a', 'b', 'c'], name: undefined },
  );
  t.equal(loadConfigTree(tree, { file, env: {}, argv: ['--no-feature-enabled'] }).feature.enabled, false, '--no-flag');
  t.equal(loadConfigTree(tree, { env: {}, argv: ['--feature-enabled'] }).feature.enabled, true, 'bare boolean flag');
  t.equal(loadConfigTree(tree, { env: {}, argv: ['--feature-enabled=off'] }).feature.enabled, false);
  t.throws(() => loadConfigTree(tree, { env: {}, argv: ['--no-feature-enabled=true'] }), /takes no value/);
  t.throws(() => loadConfigTree(tree, { env: {}, argv: ['--no-feature-ratio'] }), /unknown flag --no-feature-ratio/);
  t.throws(() => loadConfigTree(tree, { env: { KEYGATE_FEATURE_ENABLED: 'maybe' } }), /expected true or false, got "maybe"/);
  t.throws(() => loadConfigTree(tree, { env: { KEYGATE_FEATURE_RATIO: '2' } }), /expected a number from 0 to 1, got "2"/);
  t.throws(() => loadConfigTree(tree, { file: writeConfig(dir, { feature: { origins: 'a,b' } }), env: {} }), /expected a list of strings/);
  t.throws(() => loadConfigTree(tree, { file: writeConfig(dir, { feature: { enabled: 'true' } }), env: {} }), /expected true or false, got "true"/);
});

t.test('the data directory is not created by loading config', async (t) => {
  const dir = t.testdir();
  mkdirSync(join(dir, 'cwd'));
  loadConfig({ env: {}, argv: ['--data-dir', join(dir, 'state')] });
  t.throws(() => writeFileSync(join(dir, 'state', 'x'), ''), { code: 'ENOENT' });
});
