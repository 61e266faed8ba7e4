import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { TestClock } from '../../../core/clock.ts';
import { allPassed } from '../../../core/ratelimit/interface.ts';
import { RedisRateLimiter } from '../../../core/ratelimit/redis.ts';
import { connectTestRedis, REDIS_SKIP_MESSAGE } from '../../helpers/redis.ts';
import { rateLimiterSuite } from './rate-limiter-suite.ts';

const redis = await connectTestRedis();
if (redis === undefined) {
  t.plan(0, REDIS_SKIP_MESSAGE);
} else {
  t.teardown(() => redis.cleanup());
  let fixtureCount = 0;

  // Two limiters on two connections = two nodes sharing Redis.
  rateLimiterSuite(
    t,
    'redis (two nodes)',
    async (clock) => {
      const keyPrefix = `${redis.prefix}${fixtureCount++}:`;
      const nodes = [redis.connect(), redis.connect()].map((connection) => new RedisRateLimiter({ redis: connection, keyPrefix, clock, timeoutMs: 5_000 }));
      return { nodes, close: async () => {} };
    },
    { simulationSteps: 600 },
  );

  t.test('redis: two nodes hammering one limit concurrently never overshoot', async (t) => {
    const clock = new TestClock();
    const keyPrefix = `${redis.prefix}overshoot:`;
    const nodes = [redis.connect(), redis.connect()].map((connection) => new RedisRateLimiter({ redis: connection, keyPrefix, clock, timeoutMs: 5_000 }));
    const request = { workspaceId: 'ws', namespace: 'api', identifier: 'user', limit: 100, durationMs: 60_000 };
    const batches = [request, { ...request, namespace: 'second', limit: 70 }];
    const calls = Array.from({ length: 400 }, (_, index) => nodes[index % 2]!.limit(index % 4 === 0 ? batches : [request]));
    const results = await Promise.all(calls);
    const passedSingles = results.filter((decisions, index) => index % 4 !== 0 && allPassed(decisions)).length;
    const passedBatches = results.filter((decisions, index) => index % 4 === 0 && allPassed(decisions)).length;
    t.equal(passedSingles + passedBatches, 100, 'exactly the limit passed across both nodes');
    const counters = await redis.connect().keys(`${keyPrefix}*`);
    t.ok(counters.length >= 1, 'counters live in Redis');
  });

  t.test('redis: keys carry a TTL covering the next window', async (t) => {
    const clock = new TestClock(1_700_000_000_000);
    const connection = redis.connect();
    const keyPrefix = `${redis.prefix}ttl:`;
    const limiter = new RedisRateLimiter({ redis: connection, keyPrefix, clock });
    await limiter.limit([{ workspaceId: 'ws', namespace: 'n', identifier: 'i', limit: 5, durationMs: 10_000 }]);
    const [key] = await connection.keys(`${keyPrefix}*`);
    const ttlMs = await connection.pttl(key!);
    t.ok(ttlMs > 10_000 && ttlMs <= 25_000, `pttl ${ttlMs}`);
  });
}

t.test('redis: fails open by default when Redis is unreachable, and closed when asked', async (t) => {
  const dead = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  dead.on('error', () => {});
  t.teardown(() => dead.disconnect());
  const errors: unknown[] = [];
  const open = new RedisRateLimiter({ redis: dead, clock: new TestClock(), onBackendError: (err) => errors.push(err) });
  const [decision] = await open.limit([{ workspaceId: 'w', namespace: 'n', identifier: 'i', limit: 5, durationMs: 1_000, cost: 2 }]);
  t.same([decision!.passed, decision!.remaining, decision!.failedOpen], [true, 3, true]);
  t.equal(errors.length, 1, 'the failure is reported');
  const closed = new RedisRateLimiter({ redis: dead, clock: new TestClock(), failureMode: 'closed' });
  await t.rejects(closed.limit([{ workspaceId: 'w', namespace: 'n', identifier: 'i', limit: 5, durationMs: 1_000 }]), {
    code: 'err:unkey:application:service_unavailable',
    retryable: true,
  });
});

t.test('redis: a Redis that accepts but never answers hits the timeout', async (t) => {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as { port: number }).port;
  const connection = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0, retryStrategy: () => null });
  connection.on('error', () => {});
  t.teardown(async () => {
    connection.disconnect();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });
  const limiter = new RedisRateLimiter({ redis: connection, clock: new TestClock(), timeoutMs: 50, failureMode: 'closed' });
  await t.rejects(limiter.limit([{ workspaceId: 'w', namespace: 'n', identifier: 'i', limit: 5, durationMs: 1_000 }]), {
    code: 'err:unkey:application:service_unavailable',
  });
});
