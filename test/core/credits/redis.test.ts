import t from 'tap';
import { Redis } from 'ioredis';
import { RedisUsageLimiter } from '../../../core/credits/redis.ts';
import { connectTestRedis, REDIS_SKIP_MESSAGE } from '../../helpers/redis.ts';
import { CreditStore, usageLimiterSuite } from './usage-limiter-suite.ts';

const redis = await connectTestRedis();
if (redis === undefined) {
  t.plan(0, REDIS_SKIP_MESSAGE);
} else {
  t.teardown(() => redis.cleanup());
  let fixtureCount = 0;

  // Two limiters on two connections = two API nodes sharing Redis (and the database).
  usageLimiterSuite(t, 'redis (two nodes)', async (store) => {
    const keyPrefix = `${redis.prefix}${fixtureCount++}:`;
    const nodes = [redis.connect(), redis.connect()].map(
      (connection) => new RedisUsageLimiter({ redis: connection, keyPrefix, persist: store.persist, flushIntervalMs: 60_000, timeoutMs: 5_000 }),
    );
    return { nodes, close: async () => void (await Promise.all(nodes.map((node) => node.close()))) };
  });

  t.test('redis: the counter carries a TTL and, once gone, reloads minus unsaved credits', async (t) => {
    const connection = redis.connect();
    const keyPrefix = `${redis.prefix}ttl:`;
    const store = new CreditStore();
    store.rows.set('key_t', 10);
    const limiter = new RedisUsageLimiter({ redis: connection, keyPrefix, persist: store.persist, counterTtlMs: 30_000, flushIntervalMs: 60_000 });
    await limiter.consume('key_t', 4, store.load);
    const ttlMs = await connection.pttl(`${keyPrefix}credits:key_t`);
    t.ok(ttlMs > 25_000 && ttlMs <= 30_000, `pttl ${ttlMs}`);
    await connection.del(`${keyPrefix}credits:key_t`); // as if the TTL ran out before the write-back
    t.same(await limiter.consume('key_t', 1, store.load), { valid: true, remaining: 5 }, 'database 10 minus 4 unsaved minus 1');
    await limiter.close();
    t.equal(store.rows.get('key_t'), 5);
  });
}

t.test('redis: credits fail closed by default, open or to the database when configured', async (t) => {
  const dead = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  dead.on('error', () => {});
  const store = new CreditStore();
  store.rows.set('key_f', 3);
  const limiters: RedisUsageLimiter[] = [];
  t.teardown(async () => {
    await Promise.all(limiters.map((limiter) => limiter.close()));
    dead.disconnect();
  });
  const make = (options: Partial<ConstructorParameters<typeof RedisUsageLimiter>[0]>) => {
    const limiter = new RedisUsageLimiter({ redis: dead, persist: store.persist, flushIntervalMs: 60_000, ...options });
    limiters.push(limiter);
    return limiter;
  };
  const errors: unknown[] = [];
  await t.rejects(make({ onBackendError: (err) => errors.push(err) }).consume('key_f', 1, store.load), {
    code: 'err:unkey:application:service_unavailable',
    retryable: true,
  });
  t.equal(errors.length, 1);
  t.same(await make({ failureMode: 'open' }).consume('key_f', 1, store.load), { valid: true, remaining: null });
  const fallback = make({ databaseFallback: async (_keyId, cost) => ({ valid: true, remaining: 3 - cost }) });
  t.same(await fallback.consume('key_f', 2, store.load), { valid: true, remaining: 1 });
  t.equal(store.loads, 0, 'Redis failed before any load');
  await t.rejects(make({}).reset('key_f'), { code: 'err:unkey:application:service_unavailable' });
});
