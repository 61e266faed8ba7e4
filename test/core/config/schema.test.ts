import t from 'tap';
import { configKeys, toEnvSegment, toFlagSegment } from '../../../core/config/config-keys.ts';
import { field, redactUrlPassword } from '../../../core/config/field.ts';
import { configSchema } from '../../../core/config/schema.ts';
import type { KeygateConfig } from '../../../core/config/schema.ts';
import { suggestClosest } from '../../../core/config/suggest-closest.ts';

t.test('key section.someKey is env KEYGATE_SECTION_SOME_KEY and flag --section-some-key', async (t) => {
  const index = configKeys();
  const table: [key: string, env: string, flags: string[]][] = [
    ['dataDir', 'KEYGATE_DATA_DIR', ['data-dir']],
    ['server.host', 'KEYGATE_SERVER_HOST', ['server-host', 'host']],
    ['server.port', 'KEYGATE_SERVER_PORT', ['server-port', 'port']],
    ['db.url', 'KEYGATE_DB_URL', ['db-url', 'db']],
    ['redis.url', 'KEYGATE_REDIS_URL', ['redis-url', 'redis']],
    ['cache.freshMs', 'KEYGATE_CACHE_FRESH_MS', ['cache-fresh-ms']],
    ['cache.staleMs', 'KEYGATE_CACHE_STALE_MS', ['cache-stale-ms']],
    ['cache.maxEntries', 'KEYGATE_CACHE_MAX_ENTRIES', ['cache-max-entries']],
    ['log.level', 'KEYGATE_LOG_LEVEL', ['log-level']],
  ];
  for (const [key, env, flags] of table) {
    const entry = index.byKey.get(key);
    t.ok(entry, key);
    t.equal(entry?.envName, env, key);
    t.same(entry?.flagNames, flags, key);
    t.equal(index.byEnvName.get(env)?.key, key);
    for (const flag of flags) t.equal(index.byFlagName.get(flag)?.key, key);
  }
});

t.test('every key of every section (other roles add theirs) follows the naming rule', async (t) => {
  for (const entry of configKeys().keys) {
    t.equal(entry.key, entry.path.join('.'));
    t.equal(entry.envName, 'KEYGATE_' + entry.path.map(toEnvSegment).join('_'), entry.key);
    t.equal(entry.flagName, entry.path.map(toFlagSegment).join('-'), entry.key);
    t.match(entry.envName, /^KEYGATE_[A-Z0-9_]+$/, entry.key);
    t.match(entry.flagName, /^[a-z0-9-]+$/, entry.key);
  }
});

t.test('every key has a description and a valid default', async (t) => {
  for (const entry of configKeys().keys) {
    t.ok(entry.field.description.length > 10, `${entry.key} has a description`);
    const fallback = entry.field.defaultValue;
    if (fallback !== undefined) t.ok(entry.field.fromJson(fallback).ok, `${entry.key}: default ${JSON.stringify(fallback)} passes its own parser`);
  }
});

t.test('the config type follows the schema', async (t) => {
  // Compile-time checks (tsc is the gate); the runtime asserts keep the test honest.
  const sample = {} as KeygateConfig;
  const port: number = sample.server?.port ?? 0;
  const redisUrl: string | undefined = sample.redis?.url;
  const level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' | undefined = sample.log?.level;
  t.equal(port, 0);
  t.equal(redisUrl, undefined);
  t.equal(level, undefined);
  t.same(Object.keys(configSchema).slice(0, 6), ['dataDir', 'server', 'db', 'redis', 'cache', 'log']);
});

t.test('a schema where two keys claim one env variable or flag is rejected', async (t) => {
  t.throws(() => configKeys({ a: { bC: field.string({ description: 'x' }) }, aB: { c: field.string({ description: 'y' }) } }), /environment variable KEYGATE_A_B_C is claimed by both a\.bC and aB\.c/);
  t.throws(() => configKeys({ one: field.string({ description: 'x', flagAliases: ['x'] }), two: field.string({ description: 'y', flagAliases: ['x'] }) }), /flag --x is claimed by both one and two/);
});

t.test('camelCase names map to env and flag segments', async (t) => {
  const table: [string, string, string][] = [
    ['port', 'PORT', 'port'],
    ['freshMs', 'FRESH_MS', 'fresh-ms'],
    ['maxBodyBytes', 'MAX_BODY_BYTES', 'max-body-bytes'],
    ['http2Port', 'HTTP2_PORT', 'http2-port'],
  ];
  for (const [name, env, flag] of table) {
    t.equal(toEnvSegment(name), env);
    t.equal(toFlagSegment(name), flag);
  }
});

t.test('field parsers accept and reject by the table', async (t) => {
  const port = field.integer({ description: 'p', min: 0, max: 65535 });
  const duration = field.durationMs({ description: 'd', min: 0 });
  const database = field.databaseUrl({ description: 'db' });
  const table: [string, { fromText(text: string): { ok: boolean; value?: unknown } }, string, unknown][] = [
    ['integer', port, '8080', 8080],
    ['integer with sign', port, '+1', 1],
    ['integer rejects a fraction', port, '1.5', undefined],
    ['integer rejects words', port, 'eighty', undefined],
    ['integer rejects out of range', port, '65536', undefined],
    ['integer rejects empty', port, '', undefined],
    ['duration bare ms', duration, '1500', 1500],
    ['duration ms', duration, '250ms', 250],
    ['duration s', duration, '10s', 10_000],
    ['duration m', duration, '5m', 300_000],
    ['duration h', duration, '1h', 3_600_000],
    ['duration d', duration, '1d', 86_400_000],
    ['duration fraction', duration, '0.5s', 500],
    ['duration rejects negative', duration, '-1s', undefined],
    ['duration rejects unknown unit', duration, '3w', undefined],
    ['db sqlite path', database, './data/keygate.db', './data/keygate.db'],
    ['db sqlite: prefix', database, 'sqlite:/x.db', 'sqlite:/x.db'],
    ['db memory', database, ':memory:', ':memory:'],
    ['db mysql', database, 'mysql://u:p@127.0.0.1:3306/kg', 'mysql://u:p@127.0.0.1:3306/kg'],
    ['db mariadb', database, 'mariadb://u@h/kg', 'mariadb://u@h/kg'],
    ['db mysql needs a database name', database, 'mysql://u:p@h:3306/', undefined],
    ['db rejects other schemes', database, 'postgres://h/db', undefined],
    ['db rejects empty', database, '', undefined],
  ];
  for (const [name, parser, text, expected] of table) {
    const outcome = parser.fromText(text);
    if (expected === undefined) t.notOk(outcome.ok, name);
    else t.same(outcome, { ok: true, value: expected }, name);
  }
  t.same(duration.fromJson(2000), { ok: true, value: 2000 }, 'duration as a JSON number');
  t.same(duration.fromJson('2s'), { ok: true, value: 2000 }, 'duration as a JSON string');
  t.notOk(port.fromJson(80.5).ok, 'JSON integer must be whole');
});

t.test('passwords in URLs are redacted, everything else is left as given', async (t) => {
  const table: [string, string][] = [
    ['mysql://app:s3cret@db:3306/kg', 'mysql://app:***@db:3306/kg'],
    ['redis://:s3cret@127.0.0.1:6379/0', 'redis://:***@127.0.0.1:6379/0'],
    ['https://vault.local/?token=s3cret&region=eu', 'https://vault.local/?token=***&region=eu'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['./data/keygate.db', './data/keygate.db'],
    ['"mysql://app:s3cret@db/kg" quoted in a message', '"mysql://app:***@db/kg" quoted in a message'],
  ];
  for (const [given, expected] of table) t.equal(redactUrlPassword(given), expected, given);
});

t.test('suggestions name the closest candidate only when it is a plausible typo', async (t) => {
  const candidates = ['server.port', 'server.host', 'db.url', 'cache.freshMs'];
  t.equal(suggestClosest('server.prot', candidates), 'server.port', 'swap');
  t.equal(suggestClosest('SERVER.PORT', candidates), 'server.port', 'case');
  t.equal(suggestClosest('cache.freshms', candidates), 'cache.freshMs');
  t.equal(suggestClosest('db.ur', candidates), 'db.url', 'deletion');
  t.equal(suggestClosest('completely.different', candidates), undefined);
  t.equal(suggestClosest('x', []), undefined);
});
