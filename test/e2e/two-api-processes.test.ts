/**
 * Acceptance test of the API issue's multi-node point: two real `keygate api` processes sharing
 * one MariaDB database and one Redis (a dedicated logical database, since the config has no key
 * prefix; only this test's keys are deleted afterwards).
 *
 * - A key with N credits verified concurrently through both processes is VALID exactly N times,
 *   and the database holds 0 remaining once the credits were written back.
 * - ratelimit.limit with limit L hammered through both passes exactly L times: the Redis limiter
 *   is strict (one Lua script per decision), so the overshoot is 0; it is printed as a comment.
 *
 * Without MariaDB or Redis the test skips with a message, except with CI=true, where the helpers
 * throw and the test fails.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { openDatabase } from '../../core/db/database.ts';
import { windowPosition } from '../../core/ratelimit/sliding-window.ts';
import { createTestMysqlDatabase, MYSQL_SKIP_MESSAGE } from '../helpers/mysql.ts';
import { connectTestRedis, REDIS_SKIP_MESSAGE } from '../helpers/redis.ts';
import { pollUntil, startKeygate, type KeygateProcess } from './keygate-process.ts';

/** Credits of the key spent through both processes. */
const CREDITS = 30;
/** Verifications sent, spread evenly over both processes, all in flight at once. */
const VERIFICATIONS = 80;
/** The rate limit hammered through both processes. */
const RATE_LIMIT = 25;
/** ratelimit.limit calls sent, all in flight at once. */
const LIMIT_CALLS = 100;
/** A long window (30 days, the schema's maximum) so the test never straddles two windows in practice. */
const RATE_LIMIT_WINDOW_MS = 2_592_000_000;
/** How long the credits write-back may take to reach the database (its interval is 1 s). */
const WRITE_BACK_DEADLINE_MS = 15_000;
/** Logical Redis databases this test picks from (away from 0, which the other tests share). */
const REDIS_DATABASES = [9, 10, 11, 12, 13, 14, 15];

const mysql = await createTestMysqlDatabase();
const redis = mysql === undefined ? undefined : await connectTestRedis();
if (mysql === undefined || redis === undefined) {
  t.comment(mysql === undefined ? MYSQL_SKIP_MESSAGE : REDIS_SKIP_MESSAGE);
  await mysql?.drop();
} else {
  t.teardown(() => mysql.drop());
  // The probe connection of the helper is only needed to prove Redis is up.
  t.teardown(() => redis.cleanup());
  await t.test('two keygate api processes sharing MariaDB and Redis', (t) => runPair(t, mysql.url, redis.url));
}

async function runPair(t: Test, databaseUrl: string, redisBaseUrl: string): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), 'keygate-two-api-'));
  t.teardown(() => rm(workDir, { recursive: true, force: true }));
  const redisDatabase = REDIS_DATABASES[Math.floor(Math.random() * REDIS_DATABASES.length)]!;
  const redisUrl = `${redisBaseUrl.replace(/\/\d*$/, '')}/${redisDatabase}`;
  const cleaner = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  cleaner.on('error', () => {});
  const ownIds: string[] = [];
  // Registered first, so it runs after the processes stopped (teardowns run in reverse).
  t.teardown(async () => {
    try {
      await deleteKeysMentioning(cleaner, ownIds);
    } finally {
      await cleaner.quit().catch(() => cleaner.disconnect());
    }
  });

  const start = (name: string): Promise<KeygateProcess> => startKeygate(t, name, [
    'api', '--port', '0', '--host', '127.0.0.1', '--db', databaseUrl, '--redis', redisUrl,
    '--data-dir', join(workDir, name), '--log-level', 'warn',
  ]);
  // A first: it migrates the empty database and prints the root key; B finds both in place.
  const a = await start('a');
  const b = await start('b');
  const nodes = [a, b];
  const rootKey = /root key: (\S+)/.exec(a.output())?.[1];
  if (rootKey === undefined) throw new Error(`node a printed no root key:\n${a.output()}`);
  const workspaceId = /workspace: (\S+)/.exec(a.output())?.[1];
  if (workspaceId !== undefined) ownIds.push(workspaceId);

  const apiId = (await a.call('apis.createApi', { name: 'two-processes' }, rootKey)).body.data.apiId as string;

  await t.test(`a key with ${CREDITS} credits verified through both processes is VALID exactly ${CREDITS} times`, async (t) => {
    const created = await b.call('keys.createKey', { apiId, credits: { remaining: CREDITS } }, rootKey);
    t.equal(created.status, 200, JSON.stringify(created.body));
    const { key, keyId } = created.body.data as { key: string; keyId: string };
    ownIds.push(keyId);
    const results = await Promise.all(Array.from({ length: VERIFICATIONS }, (_, index) => nodes[index % 2]!.call('keys.verifyKey', { key }, rootKey)));
    t.ok(results.every((result) => result.status === 200), 'every verification answered 200');
    const codes = new Map<string, number>();
    for (const result of results) codes.set(result.body.data.code, (codes.get(result.body.data.code) ?? 0) + 1);
    t.comment(`credits across 2 processes: ${CREDITS} credits, ${VERIFICATIONS} verifications, outcomes ${JSON.stringify(Object.fromEntries(codes))}`);
    t.equal(codes.get('VALID'), CREDITS, 'exactly the credits available were granted');
    t.equal(codes.get('USAGE_EXCEEDED'), VERIFICATIONS - CREDITS, 'every other verification was refused for credits');
    const lowestReported = Math.min(...results.filter((result) => result.body.data.valid).map((result) => result.body.data.credits as number));
    t.equal(lowestReported, 0, 'the last granted verification reports 0 credits left');

    const db = await openDatabase(databaseUrl);
    try {
      const remainingInDatabase = async (): Promise<number | undefined> => {
        const rows = await db.query<{ remaining_requests: unknown }>('SELECT `remaining_requests` FROM `keys` WHERE `id` = ?', [keyId]);
        return Number(rows[0]?.remaining_requests);
      };
      const written = await pollUntil('credits written back to MariaDB', WRITE_BACK_DEADLINE_MS, async () => ((await remainingInDatabase()) === 0 ? 0 : undefined));
      t.equal(written, 0, 'the database ends at 0 remaining after write-back');
      // Not one more credit after the write-back: the next verification on either node is refused.
      for (const node of nodes) t.equal((await node.call('keys.verifyKey', { key }, rootKey)).body.data.code, 'USAGE_EXCEEDED', `${node.name} refuses after the write-back`);
      t.equal(await remainingInDatabase(), 0, 'refused verifications never drive the database below 0');
    } finally {
      await db.close();
    }
  });

  await t.test(`ratelimit.limit with limit ${RATE_LIMIT} through both processes passes exactly ${RATE_LIMIT} (strict Redis limiter)`, async (t) => {
    const namespace = `two_processes_${Date.now()}`;
    const body = { namespace, identifier: 'shared-user', limit: RATE_LIMIT, duration: RATE_LIMIT_WINDOW_MS };
    // Create the namespace first so both processes race on the counter, not on its creation.
    // (Cost 0 on both also warms their code paths, so one cold process does not simply lose the race.)
    for (const node of nodes) {
      const warmup = await node.call('ratelimit.limit', { ...body, cost: 0 }, rootKey);
      t.equal(warmup.status, 200, `${node.name} warm-up: ${JSON.stringify(warmup.body)}`);
    }
    const startedAtMs = Date.now();
    const results = await Promise.all(Array.from({ length: LIMIT_CALLS }, (_, index) => nodes[index % 2]!.call('ratelimit.limit', body, rootKey)));
    const endedAtMs = Date.now();
    t.ok(results.every((result) => result.status === 200), 'every call answered 200');
    const passed = results.filter((result) => result.body.data.success === true).length;
    const passedPerNode = nodes.map((_, node) => results.filter((result, index) => index % 2 === node && result.body.data.success === true).length);
    const overshoot = passed - RATE_LIMIT;
    t.comment(`ratelimit across 2 processes: limit ${RATE_LIMIT}, ${LIMIT_CALLS} calls, passed ${passed} (a ${passedPerNode[0]}, b ${passedPerNode[1]}), overshoot ${overshoot}`);
    const straddled = windowPosition(startedAtMs, RATE_LIMIT_WINDOW_MS).sequence !== windowPosition(endedAtMs, RATE_LIMIT_WINDOW_MS).sequence;
    if (straddled) {
      // Crossing a window edge legitimately frees a little of the sliding window; only the band holds then.
      t.comment('the calls straddled a window edge: checking the band [L, L+1] instead of exactly L');
      t.ok(passed >= RATE_LIMIT && passed <= RATE_LIMIT + 1, `passed ${passed} within [${RATE_LIMIT}, ${RATE_LIMIT + 1}]`);
    } else {
      t.equal(passed, RATE_LIMIT, `passed within [${RATE_LIMIT}, ${RATE_LIMIT}]: overshoot ${overshoot}`);
    }
    const denied = results.filter((result) => result.body.data.success === false);
    t.ok(denied.every((result) => result.body.data.remaining === 0 && result.body.data.limit === RATE_LIMIT), 'denials report remaining 0 and the limit');
  });

  const codes = await Promise.all(nodes.map((node) => node.stop()));
  t.same(codes, [0, 0], 'both processes exit cleanly on SIGTERM');
}

/** Deletes the keys of this test in the chosen Redis database: those naming one of its ids. */
async function deleteKeysMentioning(redis: Redis, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', 'keygate:*', 'COUNT', 1000);
    const own = keys.filter((key) => ids.some((id) => key.includes(id)));
    if (own.length > 0) await redis.del(...own);
    cursor = next;
  } while (cursor !== '0');
}
