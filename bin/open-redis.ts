/**
 * `openRedis`: the one place the CLI turns `redis.*` into a connection for the shared counters
 * (rate limits and credits). The connection is bounded while Redis is away:
 * - the start waits for Redis to be ready for at most `redis.connectTimeoutMs`, then fails with
 *   `err:keygate:redis:unavailable` naming the URL without its password (the CLI exits 1);
 * - once connected nothing is queued while disconnected (`enableOfflineQueue: false`): a command
 *   fails at once, so the limiters' failure modes (`redis.rateLimitFailureMode`,
 *   `redis.creditsFailureMode`) apply immediately instead of after their timeouts, and memory
 *   does not grow with the outage;
 * - commands in flight when the connection drops are rejected at once and never resent after
 *   a reconnect (`maxRetriesPerRequest: 0`, `autoResendUnfulfilledCommands: false`): the limiter
 *   has already answered for them, so a late resend would charge a credit or a rate-limit hit
 *   for a request that was refused or let through without it;
 * - reconnection goes on forever with a linear backoff capped at `redis.maxReconnectDelayMs`,
 *   each attempt bounded by `redis.connectTimeoutMs`.
 */
import type { Redis } from 'ioredis';
import { redactUrlPassword } from '../core/config/field.ts';
import type { KeygateConfig } from '../core/config/schema.ts';
import { Fault } from '../core/fault.ts';
import type { Logger } from '../core/log.ts';

/** Growth of the reconnection pause per failed attempt, in ms (capped by `redis.maxReconnectDelayMs`). */
export const REDIS_RECONNECT_STEP_MS = 100;

/** An opened, ready Redis connection and how to release it. */
export interface OpenedRedis {
  readonly redis: Redis;
  /** Sends QUIT (or drops the socket when Redis is away). Idempotent. */
  close(): Promise<void>;
}

/**
 * Connects to `settings.url` and resolves once Redis answers (its ready check passed). Called
 * once per command start. Rejects with `err:keygate:redis:unavailable` (retryable) after
 * `settings.connectTimeoutMs` without an answer; the connection is closed then.
 */
export async function openRedis(settings: KeygateConfig['redis'] & { url: string }, logger: Logger): Promise<OpenedRedis> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(settings.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: settings.connectTimeoutMs,
    retryStrategy: (attempt) => Math.min(attempt * REDIS_RECONNECT_STEP_MS, settings.maxReconnectDelayMs),
  });
  let lastError: unknown;
  let ready = false;
  redis.on('error', (err: unknown) => {
    lastError = err;
    // Before the first ready the start reports the failure itself; afterwards each failed
    // reconnection is logged (at most one per backoff pause).
    if (ready) logger.warn({ err }, 'redis connection error');
  });
  redis.on('ready', () => {
    if (ready) logger.info('redis connection restored');
  });
  redis.on('close', () => {
    if (ready) logger.warn('redis connection lost; counters use their failure modes until it is back');
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= redis.quit().then(() => undefined, () => redis.disconnect());
    return closing;
  };

  try {
    await waitUntilReady(redis, settings.connectTimeoutMs);
  } catch {
    redis.disconnect();
    // The CLI prints the public message, then the internal one (the last connection error).
    const reason = lastError instanceof Error ? lastError.message : 'no answer';
    throw new Fault('err:keygate:redis:unavailable', {
      retryable: true,
      source: 'upstream',
      publicMessage: `redis at ${redactUrlPassword(settings.url)} did not answer within ${settings.connectTimeoutMs} ms (redis.connectTimeoutMs)`,
      internalMessage: `last error: ${redactUrlPassword(reason)}`,
      cause: lastError,
    });
  }
  ready = true;
  return { redis, close };
}

/** Starts connecting; resolves on the first 'ready', rejects after `deadlineMs`. Retries in between are ioredis's. */
function waitUntilReady(redis: Redis, deadlineMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error('deadline'));
    }, deadlineMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
    // connect() rejects when the first attempt fails; the retry strategy keeps trying, so the
    // deadline above is what ends the wait.
    redis.connect().catch(() => {});
  });
}
