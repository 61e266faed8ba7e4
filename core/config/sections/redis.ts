/**
 * The `redis` section: shared counters for rate limits and credits when several nodes must agree,
 * and what happens to verifications while that Redis cannot be reached.
 */
import { field } from '../field.ts';

/**
 * `redis.url` (flag `--redis`; absent means in-process counters, one node), `redis.keyPrefix`,
 * `redis.rateLimitFailureMode` (default open), `redis.creditsFailureMode` (default closed),
 * `redis.connectTimeoutMs` and `redis.maxReconnectDelayMs` (bounds of the connection).
 */
export const redis = {
  url: field.url({
    description: 'Redis for counters shared between nodes, e.g. redis://127.0.0.1:6379/0. Unset: counters stay in this process.',
    protocols: ['redis:', 'rediss:'],
    flagAliases: ['redis'],
  }),
  keyPrefix: field.string({
    description: 'Prefix of every Redis key keygate writes (rate-limit and credit counters), so several deployments can share one Redis.',
    default: 'keygate:',
  }),
  rateLimitFailureMode: field.oneOf(['open', 'closed'], {
    description: 'Rate limits while Redis is unreachable or slower than 300 ms: open = every limit passes (verifyKey VALID, '
      + 'ratelimit.limit success; logged), closed = the request fails with a retryable 500 (service_unavailable). '
      + 'The per-workspace API throttle always fails open.',
    default: 'open',
  }),
  creditsFailureMode: field.oneOf(['open', 'closed'], {
    description: 'Credits (remaining) while Redis is unreachable or slower than 500 ms: closed = verifyKey of a key with credits '
      + 'fails with a retryable 500 (service_unavailable) and nothing is charged, open = it is VALID without charging a credit '
      + '(credits are money: open gives usage away).',
    default: 'closed',
  }),
  connectTimeoutMs: field.durationMs({
    description: 'How long the start waits for Redis to answer before giving up (exit 1), and how long one reconnection attempt may take.',
    default: 10_000,
    min: 100,
  }),
  maxReconnectDelayMs: field.durationMs({
    description: 'Longest pause between reconnection attempts while Redis is down (the backoff grows by 100 ms per attempt up to this). '
      + 'Meanwhile counter commands fail at once and the failure modes apply; nothing is queued.',
    default: 2_000,
    min: 10,
  }),
} as const;
