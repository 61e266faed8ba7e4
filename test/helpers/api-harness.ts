/**
 * `startApiHarness`: the API service on a fresh database for one test. Seeds a root workspace
 * (where root keys live) and a user workspace, and offers `createRootKey(permissions)`, `call`
 * (through `inject()`: the full middleware stack without a socket), `listen()` (a real socket on
 * 127.0.0.1:0, for the SDK), and seeding shortcuts (`seedApi`, `seedKey`).
 *
 * Default: SQLite in memory, in-process counters, a TestClock. `{ engine: 'mysql' }` uses a
 * throwaway MariaDB database and `{ redis: true }` the machine's Redis with a unique prefix;
 * when either is unreachable the harness returns undefined (the test skips with a message), or
 * throws with CI=true. Everything is closed by `close()`, registered on `t.teardown` when given.
 *
 * Usage:
 *   const h = await startApiHarness(t);
 *   const rootKey = await h.createRootKey(['api.*.create_api']);
 *   const res = await h.call('apis.createApi', { name: 'payments' }, rootKey);
 *   t.equal(res.status, 200);
 */
import type { AddressInfo } from 'node:net';
import { TestClock } from '../../core/clock.ts';
import type { Database } from '../../core/db/database.ts';
import { openDatabase } from '../../core/db/database.ts';
import { migrate } from '../../core/db/migrate.ts';
import { insertApi } from '../../core/db/queries/apis.ts';
import { ensureIdentity } from '../../core/db/queries/identities.ts';
import { insertKeySpace } from '../../core/db/queries/key-spaces.ts';
import { insertKey } from '../../core/db/queries/keys.ts';
import { addKeyPermissions, ensurePermissions } from '../../core/db/queries/permissions.ts';
import { insertRatelimits } from '../../core/db/queries/ratelimits.ts';
import { insertWorkspace } from '../../core/db/queries/workspaces.ts';
import type { InjectResponse } from '../../core/http/interface.ts';
import { newId } from '../../core/id.ts';
import { generateKey } from '../../core/keys/key-generator.ts';
import { createLogger } from '../../core/log.ts';
import { Metrics } from '../../core/metrics.ts';
import type { VaultClient } from '../../core/vault-client.ts';
import { createApiServer, type ApiServer } from '../../control/api/api-service.ts';
import { createApiDependencies, type ApiDependencies } from '../../control/api/dependencies.ts';
import type { Endpoint } from '../../control/api/endpoint.ts';
import { allRootKeyPermissions, insertRootKey, seedRootWorkspace, type RootWorkspace } from '../../control/api/root-workspace.ts';
import { createTestMysqlDatabase, MYSQL_SKIP_MESSAGE } from './mysql.ts';
import { connectTestRedis, REDIS_SKIP_MESSAGE } from './redis.ts';

/** Options of {@link startApiHarness}. */
export interface ApiHarnessOptions {
  /** `sqlite` (default, in memory) or `mysql` (a throwaway MariaDB database). */
  engine?: 'sqlite' | 'mysql';
  /** Use the machine's Redis for rate limits and credits. */
  redis?: boolean;
  /** Start time of the TestClock; default TestClock's. */
  clockStartMs?: number;
  vault?: VaultClient;
  /** Serve only these endpoints (default: all). */
  endpoints?: readonly Endpoint[];
  /** Trust X-Forwarded-For for the client IP. */
  trustForwardedFor?: boolean;
  /** Key-cache windows (defaults: the service's). */
  cacheFreshMs?: number;
  cacheStaleMs?: number;
}

/** A minimal view of a tap test: only teardown is used. */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
  comment?(message: string): void;
}

/** The answer of {@link ApiHarness.call}. */
export interface ApiCallResult<T = any> {
  status: number;
  headers: Record<string, string>;
  /** The parsed JSON body. */
  body: T;
  /** The raw text. */
  text: string;
}

/** Options of {@link ApiHarness.seedKey}. */
export interface SeedKeyOptions {
  apiId: string;
  workspaceId?: string;
  prefix?: string;
  name?: string;
  meta?: Record<string, unknown>;
  enabled?: boolean;
  expiresAtMs?: number;
  remaining?: number;
  refillAmount?: number;
  refillDay?: number;
  externalId?: string;
  permissions?: string[];
  ratelimits?: Array<{ name: string; limit: number; durationMs: number; autoApply: boolean }>;
}

/** A running API for one test. */
export interface ApiHarness {
  readonly deps: ApiDependencies;
  readonly api: ApiServer;
  readonly db: Database;
  readonly clock: TestClock;
  readonly metrics: Metrics;
  /** The workspace root keys made by {@link ApiHarness.createRootKey} manage by default. */
  readonly workspaceId: string;
  readonly root: RootWorkspace;
  /** A root key for `workspaceId` (or `options.workspaceId`) with these permission slugs. */
  createRootKey(permissions: readonly string[], options?: { workspaceId?: string; enabled?: boolean; expiresAtMs?: number; name?: string }): Promise<string>;
  /** A root key with every permission on `workspaceId`. */
  createAdminRootKey(workspaceId?: string): Promise<string>;
  /** Another workspace (to test isolation). */
  createWorkspace(options?: { enabled?: boolean }): Promise<string>;
  /** An API + key space inserted directly (no HTTP). */
  seedApi(options?: { workspaceId?: string; name?: string; ipWhitelist?: string; storeEncryptedKeys?: boolean; defaultPrefix?: string }): Promise<{ apiId: string; keySpaceId: string }>;
  /** A key inserted directly; returns the plaintext and id. */
  seedKey(options: SeedKeyOptions): Promise<{ key: string; keyId: string; identityId?: string }>;
  /** POSTs `body` to `/v2/<operationId>` through inject(); `rootKey` becomes `Authorization: Bearer`. */
  call<T = any>(operationId: string, body: unknown, rootKey?: string, headers?: Record<string, string>): Promise<ApiCallResult<T>>;
  /** Any request through inject(). */
  inject(request: { method: string; url: string; headers?: Record<string, string>; body?: unknown; remoteAddress?: string }): Promise<InjectResponse>;
  /** Listens on 127.0.0.1:0 and returns the base URL (`http://127.0.0.1:PORT`). Idempotent. */
  listen(): Promise<string>;
  /** Closes server, dependencies, database, Redis. Idempotent. */
  close(): Promise<void>;
}

/** Starts a harness, or undefined when a requested service is unreachable (outside CI). */
export async function startApiHarness(t?: TeardownHost, options: ApiHarnessOptions = {}): Promise<ApiHarness | undefined> {
  const cleanups: Array<() => Promise<void>> = [];
  const runCleanups = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  };
  try {
    let url = ':memory:';
    if (options.engine === 'mysql') {
      const mysql = await createTestMysqlDatabase();
      if (mysql === undefined) {
        t?.comment?.(MYSQL_SKIP_MESSAGE);
        return undefined;
      }
      cleanups.push(() => mysql.drop());
      url = mysql.url;
    }
    const db = await openDatabase(url);
    cleanups.push(() => db.close());
    await migrate(db);

    let redis;
    let redisKeyPrefix;
    if (options.redis === true) {
      const testRedis = await connectTestRedis();
      if (testRedis === undefined) {
        t?.comment?.(REDIS_SKIP_MESSAGE);
        await runCleanups();
        return undefined;
      }
      cleanups.push(() => testRedis.cleanup());
      redis = testRedis.connect();
      redisKeyPrefix = testRedis.prefix;
    }

    const clock = new TestClock(options.clockStartMs);
    const metrics = new Metrics();
    const deps = createApiDependencies({
      db, clock, metrics, redis, redisKeyPrefix,
      logger: createLogger({ level: process.env.KEYGATE_TEST_LOG_LEVEL ?? 'silent' }),
      vault: options.vault,
      trustForwardedFor: options.trustForwardedFor,
      cacheFreshMs: options.cacheFreshMs,
      cacheStaleMs: options.cacheStaleMs,
      // Tests flush explicitly (deps.analytics.flush()); no timers.
      analyticsFlushIntervalMs: 0,
    });
    cleanups.push(() => deps.close());
    const api = createApiServer(deps, { endpoints: options.endpoints });
    cleanups.push(() => api.server.close());

    const root = await seedRootWorkspace(db, clock);
    const workspaceId = await createWorkspaceRow(db, clock, true);

    let listening: Promise<string> | undefined;
    let closing: Promise<void> | undefined;
    const harness: ApiHarness = {
      deps, api, db, clock, metrics, workspaceId, root,
      async createRootKey(permissions, rootKeyOptions = {}) {
        const { key } = await insertRootKey(db, root, clock, {
          forWorkspaceId: rootKeyOptions.workspaceId ?? workspaceId,
          permissions,
          name: rootKeyOptions.name,
          enabled: rootKeyOptions.enabled,
          expiresAtMs: rootKeyOptions.expiresAtMs,
        });
        return key;
      },
      createAdminRootKey(forWorkspaceId = workspaceId) {
        return harness.createRootKey(allRootKeyPermissions(forWorkspaceId), { workspaceId: forWorkspaceId });
      },
      createWorkspace(workspaceOptions = {}) {
        return createWorkspaceRow(db, clock, workspaceOptions.enabled ?? true);
      },
      async seedApi(apiOptions = {}) {
        const apiId = newId('api');
        const keySpaceId = newId('ks');
        const owner = apiOptions.workspaceId ?? workspaceId;
        const nowMs = clock.nowMs();
        await insertKeySpace(db, { id: keySpaceId, workspaceId: owner, storeEncryptedKeys: apiOptions.storeEncryptedKeys, defaultPrefix: apiOptions.defaultPrefix, createdAtMs: nowMs });
        await insertApi(db, { id: apiId, workspaceId: owner, name: apiOptions.name ?? 'test api', keySpaceId, ipWhitelist: apiOptions.ipWhitelist, createdAtMs: nowMs });
        return { apiId, keySpaceId };
      },
      async seedKey(keyOptions) {
        const owner = keyOptions.workspaceId ?? workspaceId;
        const apiRows = await db.query<{ key_auth_id: string }>('SELECT `key_auth_id` FROM `apis` WHERE `id` = ?', [keyOptions.apiId]);
        const keySpaceId = apiRows[0]?.key_auth_id;
        if (keySpaceId === undefined) throw new Error(`seedKey: no API ${keyOptions.apiId}`);
        const generated = generateKey({ prefix: keyOptions.prefix });
        const keyId = newId('key');
        const nowMs = clock.nowMs();
        let identityId: string | undefined;
        if (keyOptions.externalId !== undefined) {
          identityId = (await ensureIdentity(db, { id: newId('id'), workspaceId: owner, externalId: keyOptions.externalId, createdAtMs: nowMs })).identity.id;
        }
        await insertKey(db, {
          id: keyId, keySpaceId, workspaceId: owner, hash: generated.hash, start: generated.start, name: keyOptions.name,
          meta: keyOptions.meta, enabled: keyOptions.enabled, expiresAtMs: keyOptions.expiresAtMs, remainingRequests: keyOptions.remaining,
          refillAmount: keyOptions.refillAmount, refillDay: keyOptions.refillDay, identityId, createdAtMs: nowMs,
        });
        if (keyOptions.permissions !== undefined && keyOptions.permissions.length > 0) {
          const permissions = await ensurePermissions(db, owner, keyOptions.permissions, () => newId('perm'), nowMs);
          await addKeyPermissions(db, { workspaceId: owner, keyId, permissionIds: permissions.map((permission) => permission.id), nowMs });
        }
        if (keyOptions.ratelimits !== undefined && keyOptions.ratelimits.length > 0) {
          await insertRatelimits(db, keyOptions.ratelimits.map((limit) => ({ id: newId('rl'), workspaceId: owner, keyId, ...limit, createdAtMs: nowMs })));
        }
        return identityId === undefined ? { key: generated.key, keyId } : { key: generated.key, keyId, identityId };
      },
      async call(operationId, body, rootKey, headers = {}) {
        const response = await api.server.inject({
          method: 'POST',
          url: `/v2/${operationId}`,
          headers: { 'content-type': 'application/json', ...(rootKey === undefined ? {} : { authorization: `Bearer ${rootKey}` }), ...headers },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        });
        let parsed: unknown;
        try {
          parsed = response.json();
        } catch {
          parsed = undefined;
        }
        return { status: response.status, headers: response.headers, body: parsed as any, text: response.body };
      },
      inject(request) {
        return api.server.inject(request);
      },
      listen() {
        listening ??= api.server.listen({ port: 0, host: '127.0.0.1' }).then((address: AddressInfo) => `http://127.0.0.1:${address.port}`);
        return listening;
      },
      close() {
        closing ??= runCleanups();
        return closing;
      },
    };
    t?.teardown(() => harness.close());
    return harness;
  } catch (err) {
    await runCleanups();
    throw err;
  }
}

async function createWorkspaceRow(db: Database, clock: TestClock, enabled: boolean): Promise<string> {
  const id = newId('ws');
  await insertWorkspace(db, { id, name: `workspace ${id}`, enabled, createdAtMs: clock.nowMs() });
  return id;
}
