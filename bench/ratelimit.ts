/**
 * Rate-limit decisions per second: in-memory vs Redis strict mode (one Lua call per decision),
 * side by side in one run. A few seconds in total; loopback Redis only.
 *   npx node bench/ratelimit.ts [--seconds 2] [--concurrency 64] [--redis redis://127.0.0.1:6379]
 */
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import type { RateLimiter, RateLimitRequest } from '../core/ratelimit/interface.ts';
import { MemoryRateLimiter } from '../core/ratelimit/memory.ts';
import { RedisRateLimiter } from '../core/ratelimit/redis.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '64' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
  },
});
const durationMs = Number(values.seconds) * 1_000;
const concurrency = Number(values.concurrency);
const IDENTIFIERS = 1_000;
// High enough that every decision passes: both limiters measure the common (consuming) path.
const PASSING_LIMIT = 1_000_000_000;

function requestFor(index: number): RateLimitRequest {
  return { workspaceId: 'ws_bench', namespace: 'bench', identifier: `user_${index % IDENTIFIERS}`, limit: PASSING_LIMIT, durationMs: 60_000 };
}

/** Runs `concurrency` loops of decisions for `durationMs`; returns decisions/s and latency percentiles. */
async function measure(limiter: RateLimiter): Promise<{ perSecond: number; passedRatio: number; latencyMsP50: number; latencyMsP99: number }> {
  const latencies: number[] = [];
  let decisions = 0;
  let passed = 0;
  const deadline = performance.now() + durationMs;
  const worker = async (offset: number) => {
    for (let index = offset; performance.now() < deadline; index += concurrency) {
      const started = performance.now();
      const [decision] = await limiter.limit([requestFor(index)]);
      if (latencies.length < 200_000) latencies.push(performance.now() - started);
      decisions++;
      if (decision!.passed) passed++;
    }
  };
  const startedAt = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, offset) => worker(offset)));
  const elapsedMs = performance.now() - startedAt;
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  const round = (value: number) => Number(value.toFixed(3));
  return { perSecond: Math.round((decisions / elapsedMs) * 1_000), passedRatio: round(passed / decisions), latencyMsP50: round(percentile(0.5)), latencyMsP99: round(percentile(0.99)) };
}

const rows: Array<Record<string, string | number>> = [];
const memory = new MemoryRateLimiter();
const memoryResult = await measure(memory);
rows.push({ limiter: 'memory', ...memoryResult });
await memory.close();

const connection = new Redis(values.redis, { maxRetriesPerRequest: 1, lazyConnect: true });
const keyPrefix = `keygate_bench:${randomBytes(4).toString('hex')}:`;
try {
  await connection.connect();
  const redisLimiter = new RedisRateLimiter({ redis: connection, keyPrefix, timeoutMs: 1_000, failureMode: 'closed' });
  const redisResult = await measure(redisLimiter);
  rows.push({ limiter: 'redis strict', ...redisResult });
  rows.push({ limiter: 'ratio memory/redis', perSecond: Number((memoryResult.perSecond / redisResult.perSecond).toFixed(1)) });
  const keys = await connection.keys(`${keyPrefix}*`);
  for (let index = 0; index < keys.length; index += 500) await connection.del(...keys.slice(index, index + 500));
} catch (err) {
  rows.push({ limiter: 'redis strict', perSecond: `skipped: ${err instanceof Error ? err.message : String(err)}` });
} finally {
  connection.disconnect();
}

console.log(`rate limit decisions, ${values.seconds}s each, concurrency ${concurrency}, ${IDENTIFIERS} identifiers, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`);
console.table(rows);
