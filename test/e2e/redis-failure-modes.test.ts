/**
 * Acceptance test of the API issue's "fail open or closed is a config choice, default fail closed
 * for credits and open for rate limits": a real `keygate api --redis …` against a throwaway
 * `redis-server` this test starts on a free loopback port (no persistence), which it then kills
 * and restarts on the same port.
 *
 * - defaults: while Redis is down, a key whose rate limit is already exhausted verifies VALID (fail
 *   open) and a key with credits answers a retryable 500 service_unavailable (fail closed);
 * - redis.rateLimitFailureMode=closed + redis.creditsFailureMode=open: the opposite;
 * - in both, the process stays up and answers liveness, and once Redis is back on the same port
 *   the real limiter and credits work again (no restart of keygate);
 * - redis.keyPrefix names the counters' keys;
 * - a Redis that never answers at start-up ends `keygate api` with exit 1 naming the URL without
 *   its password.
 *
 * Without redis-server the test skips with a message, except with CI=true, where it fails.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { pollUntil, reserveLoopbackPort, runKeygate, startKeygate, type KeygateProcess } from './keygate-process.ts';

/** The exhausted key's rate limit: small, in a long window, so the test never crosses a window edge in practice. */
const RATE_LIMIT = 3;
const RATE_LIMIT_WINDOW_MS = 3_600_000;
/** Credits of the credit-charging key. */
const CREDITS = 100;
/** How long redis-server may take to accept connections, and to exit after SIGKILL. */
const REDIS_START_DEADLINE_MS = 10_000;
/** How long keygate may take to notice that Redis went away or came back (reconnect backoff ≤ 200 ms here). */
const OUTAGE_NOTICE_DEADLINE_MS = 10_000;
/** Verifications asserted one after another during the outage (each must show the failure mode). */
const CALLS_DURING_OUTAGE = 3;

const redisServerAvailable = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
if (!redisServerAvailable) {
  if (process.env.CI === 'true') t.fail('redis-server is not installed (required with CI=true)');
  else t.comment('skipped: redis-server is not installed on this machine');
} else {
  t.test('defaults: rate limits fail open, credits fail closed, both recover with Redis', (t) => runOutage(t, 'defaults'));
  t.test('flipped: rate limits fail closed, credits fail open, both recover with Redis', (t) => runOutage(t, 'flipped'));
  t.test('a Redis that never answers ends keygate api with exit 1, naming the URL without its password', async (t) => {
    const port = await reserveLoopbackPort();
    const workDir = await mkdtemp(join(tmpdir(), 'keygate-redis-down-'));
    t.teardown(() => rm(workDir, { recursive: true, force: true }));
    const run = await runKeygate([
      'api', '--port', '0', '--host', '127.0.0.1', '--data-dir', workDir, '--log-level', 'warn',
      '--redis', `redis://:s3cretpw@127.0.0.1:${port}/0`,
    ], { KEYGATE_REDIS_CONNECT_TIMEOUT_MS: '500' });
    t.equal(run.code, 1, run.output);
    t.match(run.output, new RegExp(`redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0 did not answer within 500 ms`));
    t.notMatch(run.output, /s3cretpw/, 'the password is never printed');
    t.notMatch(run.output, /api listening/, 'it never served');
  });
}

type Mode = 'defaults' | 'flipped';

async function runOutage(t: Test, mode: Mode): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), `keygate-redis-${mode}-`));
  t.teardown(() => rm(workDir, { recursive: true, force: true }));
  const port = await reserveLoopbackPort();
  const redisUrl = `redis://127.0.0.1:${port}`;
  let redisServer = await startRedisServer(t, port);
  const keyPrefix = mode === 'flipped' ? 'kgfail:' : 'keygate:';
  const api = await startKeygate(t, `api-${mode}`, [
    'api', '--port', '0', '--host', '127.0.0.1', '--data-dir', workDir, '--redis', redisUrl, '--log-level', 'error',
    ...(mode === 'flipped' ? ['--redis-rate-limit-failure-mode', 'closed', '--redis-credits-failure-mode', 'open', '--redis-key-prefix', keyPrefix] : []),
  // Quick reconnection so the recovery below is observed promptly.
  ], { KEYGATE_REDIS_MAX_RECONNECT_DELAY_MS: '200' });
  const rootKey = /root key: (\S+)/.exec(api.output())?.[1];
  if (rootKey === undefined) throw new Error(`no root key printed:\n${api.output()}`);
  const apiId = (await api.call('apis.createApi', { name: `failure-${mode}` }, rootKey)).body.data.apiId as string;
  const limited = await api.call('keys.createKey', { apiId, ratelimits: [{ name: 'requests', limit: RATE_LIMIT, duration: RATE_LIMIT_WINDOW_MS, autoApply: true }] }, rootKey);
  const charged = await api.call('keys.createKey', { apiId, credits: { remaining: CREDITS } }, rootKey);
  t.equal(limited.status, 200, JSON.stringify(limited.body));
  t.equal(charged.status, 200, JSON.stringify(charged.body));
  const limitedKey = limited.body.data.key as string;
  const chargedKey = charged.body.data.key as string;
  const verify = (key: string) => api.call('keys.verifyKey', { key }, rootKey);

  // Redis up: the limit is real (exhausted after RATE_LIMIT) and credits are charged.
  for (let call = 1; call <= RATE_LIMIT; call++) t.equal((await verify(limitedKey)).body.data.code, 'VALID', `rate-limited key, call ${call} of ${RATE_LIMIT}`);
  t.equal((await verify(limitedKey)).body.data.code, 'RATE_LIMITED', 'the limit is exhausted while Redis is up');
  const beforeOutage = await verify(chargedKey);
  t.same([beforeOutage.status, beforeOutage.body.data.code, beforeOutage.body.data.credits], [200, 'VALID', CREDITS - 1], 'credits are charged while Redis is up');
  const inspector = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  inspector.on('error', () => {});
  try {
    await inspector.connect();
    const counterKeys = await inspector.keys('*');
    t.ok(counterKeys.length > 0 && counterKeys.every((key) => key.startsWith(keyPrefix)), `every counter key starts with ${keyPrefix}: ${counterKeys.join(', ')}`);
    t.ok(counterKeys.some((key) => key.startsWith(keyPrefix + 'credits:')) && counterKeys.some((key) => key.startsWith(keyPrefix + 'rl:')), 'both rate-limit and credit counters live under the prefix');
  } finally {
    inspector.disconnect();
  }

  await stopRedisServer(redisServer);
  // The first call that shows the outage may race the API's notice of the closed socket: poll.
  const outageStartedMs = Date.now();
  if (mode === 'defaults') {
    await pollUntil('credits fail closed', OUTAGE_NOTICE_DEADLINE_MS, async () => ((await verify(chargedKey)).status === 500 ? true : undefined));
    for (let call = 1; call <= CALLS_DURING_OUTAGE; call++) {
      const open = await verify(limitedKey);
      t.same([open.status, open.body.data?.valid, open.body.data?.code], [200, true, 'VALID'], `rate limit fails open: the exhausted key is VALID (call ${call})`);
      assertServiceUnavailable(t, await verify(chargedKey), `credits fail closed (call ${call})`);
    }
  } else {
    await pollUntil('rate limits fail closed', OUTAGE_NOTICE_DEADLINE_MS, async () => ((await verify(limitedKey)).status === 500 ? true : undefined));
    for (let call = 1; call <= CALLS_DURING_OUTAGE; call++) {
      assertServiceUnavailable(t, await verify(limitedKey), `rate limit fails closed (call ${call})`);
      const open = await verify(chargedKey);
      t.same([open.status, open.body.data?.valid, open.body.data?.code], [200, true, 'VALID'], `credits fail open: VALID (call ${call})`);
      t.equal(open.body.data?.credits, undefined, `credits fail open: nothing charged, no balance reported (call ${call})`);
    }
    const limitCall = await api.call('ratelimit.limit', { namespace: 'outage', identifier: 'user', limit: 10, duration: 60_000 }, rootKey);
    assertServiceUnavailable(t, limitCall, 'ratelimit.limit fails closed too');
  }
  // Informational (never asserted): with no offline queue the outage answers do not wait for the limiters' timeouts.
  t.comment(`${mode}: outage noticed and ${2 * CALLS_DURING_OUTAGE} verifications answered in ${Date.now() - outageStartedMs} ms`);
  t.equal(api.child.exitCode, null, 'the API process is still running');
  t.equal((await fetch(`${api.baseUrl}/v2/liveness`)).status, 200, 'liveness answers 200 during the outage');

  // Redis back, empty, on the same port: keygate reconnects by itself.
  redisServer = await startRedisServer(t, port);
  const restored = await pollUntil('credits work again after Redis restarted', OUTAGE_NOTICE_DEADLINE_MS, async () => {
    const result = await verify(chargedKey);
    return result.status === 200 && typeof result.body.data.credits === 'number' ? result : undefined;
  });
  t.equal(restored.body.data.code, 'VALID');
  t.ok(restored.body.data.credits < CREDITS, `credits are charged again (${restored.body.data.credits} left)`);
  // The restarted Redis lost the counter, so the limit starts over: RATE_LIMIT passes, then a real denial.
  const codes: string[] = [];
  for (let call = 0; call <= RATE_LIMIT; call++) codes.push((await verify(limitedKey)).body.data.code as string);
  t.same(codes, [...Array.from({ length: RATE_LIMIT }, () => 'VALID'), 'RATE_LIMITED'], 'the rate limit is enforced again');

  t.equal(await api.stop(), 0, 'keygate exits cleanly on SIGTERM');
  await stopRedisServer(redisServer);
}

function assertServiceUnavailable(t: Test, result: { status: number; body: any }, message: string): void {
  t.equal(result.status, 500, `${message}: status 500 (${JSON.stringify(result.body)})`);
  t.match(String(result.body?.error?.type), /service_unavailable/, `${message}: error type service_unavailable`);
}

/** Starts `redis-server` on 127.0.0.1:`port` without persistence; resolves once it accepts connections. Killed on teardown. */
async function startRedisServer(t: Test, port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => stopRedisServer(child));
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await pollUntil(`redis-server on port ${port}`, REDIS_START_DEADLINE_MS, async () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
    return /Ready to accept connections/.test(output) ? true : undefined;
  }, 20);
  return child;
}

/** SIGKILL (an outage, not a shutdown) and wait for the exit. Idempotent. */
async function stopRedisServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}
