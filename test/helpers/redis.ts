/**
 * The machine's real Redis for tests. Each test gets a unique key prefix and deletes only its own
 * keys (never FLUSHALL). When Redis is unreachable: `undefined` so the caller can skip, except
 * with CI=true, where the helper throws so the test FAILS instead of skipping.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** Where the tests look for Redis; override with KEYGATE_TEST_REDIS_URL. */
export const TEST_REDIS_URL = process.env.KEYGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** How long the reachability probe may take. */
const PROBE_TIMEOUT_MS = 2_000;

/** A test's slice of Redis. */
export interface TestRedis {
  url: string;
  /** Unique per call, e.g. `keygate_test:1f2e3d4c5b6a:`; use it for every key the test creates. */
  prefix: string;
  /** Opens a new connection (a "node"); cleanup() closes it. */
  connect(): Redis;
  /** Deletes every key under `prefix` and closes every connection opened through connect(). */
  cleanup(): Promise<void>;
}

/** Probes Redis and returns a fresh slice, or undefined (skip) when unreachable outside CI. */
export async function connectTestRedis(): Promise<TestRedis | undefined> {
  const url = TEST_REDIS_URL;
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
  } catch (err) {
    probe.disconnect();
    const message = `Redis is not reachable at ${url}: ${err instanceof Error ? err.message : String(err)}`;
    if (process.env.CI === 'true') throw new Error(`${message} (CI=true: Redis tests must run)`);
    return undefined;
  }

  const prefix = `keygate_test:${randomBytes(6).toString('hex')}:`;
  const connections: Redis[] = [probe];
  return {
    url,
    prefix,
    connect() {
      const connection = new Redis(url, { maxRetriesPerRequest: 1 });
      connection.on('error', () => {});
      connections.push(connection);
      return connection;
    },
    async cleanup() {
      let cursor = '0';
      do {
        const [next, keys] = await probe.scan(cursor, 'MATCH', prefix + '*', 'COUNT', 1000);
        if (keys.length > 0) await probe.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      await Promise.all(connections.map((connection) => connection.quit().catch(() => connection.disconnect())));
    },
  };
}

/** The message a test prints when it skips for lack of Redis (never used with CI=true). */
export const REDIS_SKIP_MESSAGE = `Redis not reachable at ${TEST_REDIS_URL}; skipped (set CI=true to make this a failure)`;
