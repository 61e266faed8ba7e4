/**
 * `keygate api`: runs the API service (spec api.md). Migrates the database, and on the first
 * start against an empty database creates a workspace plus a root key holding every permission
 * and prints `root key: <key>` once (never again: only its hash is stored). SIGINT/SIGTERM
 * drain: liveness answers 503, in-flight requests finish, analytics and credits are flushed.
 * With `--gossip-listen` the node joins a gossip cluster that carries cache invalidations
 * (`bin/open-invalidation-bus.ts`); otherwise it runs alone on the in-memory bus.
 * `keygate dev` (dev.ts) runs the same service on embedded defaults.
 */
import { resolve } from 'node:path';
import { configKeys } from '../../core/config/config-keys.ts';
import { redactUrlPassword } from '../../core/config/field.ts';
import type { CliIo, Command, CommandArgs, CommandOption } from '../command.ts';
import { contractOptions, loadCommandConfig } from '../command-config.ts';
import { loadGossipSettings, openInvalidationBus } from '../open-invalidation-bus.ts';
import { openRedis } from '../open-redis.ts';
import { openVault } from '../open-vault.ts';
import { serveUntilSignal } from '../serve-until-signal.ts';

/** The gossip flags of `keygate api` (config keys gossip.listen, gossip.peers, gossip.clusterKeyFile). */
export const GOSSIP_OPTIONS = {
  'gossip-listen': { type: 'string', valueName: 'HOST:PORT', description: 'join a gossip cluster: address to gossip on (gossip.listen; port 0 picks one). Unset: one node' },
  'gossip-peers': { type: 'string', valueName: 'HOST:PORT,...', description: 'the other nodes of the cluster (gossip.peers; peer ids are learnt on connect)' },
  'cluster-key-file': { type: 'string', valueName: 'FILE', description: 'the cluster key from "keygate gossip keygen" (gossip.clusterKeyFile); required with --gossip-listen' },
} as const satisfies Record<string, CommandOption>;

/** The Redis flags of `keygate api` beyond --redis (config keys redis.keyPrefix, redis.*FailureMode); the rest via env or file. */
export const REDIS_OPTIONS = {
  'redis-key-prefix': { type: 'string', valueName: 'PREFIX', description: 'prefix of every Redis key (redis.keyPrefix, default "keygate:")' },
  'redis-rate-limit-failure-mode': { type: 'string', valueName: 'open|closed', description: 'rate limits while Redis is down (redis.rateLimitFailureMode): open (default) passes, closed answers a retryable 500' },
  'redis-credits-failure-mode': { type: 'string', valueName: 'open|closed', description: 'credits while Redis is down (redis.creditsFailureMode): closed (default) answers a retryable 500, open is VALID without charging' },
} as const satisfies Record<string, CommandOption>;

/** The `api` command. */
export const apiCommand: Command = {
  name: 'api',
  summary: 'run the key-management API (keys, verification, rate limits, credits)',
  usage: 'keygate api [--port N] [--host ADDR] [--db URL] [--redis URL] [--data-dir DIR] [--config FILE]\n'
    + '            [--gossip-listen HOST:PORT --gossip-peers HOST:PORT,... --cluster-key-file FILE]',
  details: 'Serves POST /v2/<service>.<procedure>, GET /v2/liveness, GET /openapi.json and GET /metrics\n'
    + 'on server.port (default 7070). The database (--db, default <data-dir>/keygate.db) is migrated\n'
    + 'on start. On the first start against an empty database it prints "root key: <key>" once.\n'
    + 'With --redis, rate limits and credits are shared with other nodes. While Redis is down rate\n'
    + 'limits fail open and credits fail closed (retryable 500) unless configured otherwise; the start\n'
    + 'waits redis.connectTimeoutMs (10 s) for Redis, then exits 1. Recoverable keys need\n'
    + 'vault.url + vault.bearerToken (remote) or vault.masterKeys (in process).\n'
    + 'With --gossip-listen the node joins a cluster (same --cluster-key-file on every node, made by\n'
    + '"keygate gossip keygen"): a key changed on one node is dropped from every node\'s cache at once.\n'
    + 'Its identity is kept in <data-dir>/gossip/peer-key. Without peers caches converge by expiry.\n'
    + 'Stops gracefully on SIGINT or SIGTERM.',
  options: { ...contractOptions('config', 'data-dir', 'db', 'port', 'host', 'redis', 'log-level'), ...REDIS_OPTIONS, ...GOSSIP_OPTIONS },
  async run(args, io) {
    return runApiService(args, io, { dev: false });
  },
};

/** What differs between `keygate api` and `keygate dev`. */
export interface ApiServiceMode {
  /** Print how to create and verify a key with curl. */
  dev: boolean;
  /** Started once the API listens, on its verifier and counters, stopped before them (`keygate dev`'s gateway, bin/gateway.ts). */
  alongside?: (host: import('../gateway.ts').GatewayHost) => Promise<import('../gateway.ts').StartedGateway | undefined>;
}

/** Starts the API service and runs until SIGINT/SIGTERM; resolves to the exit code. Shared by `api` and `dev`. */
export async function runApiService(args: CommandArgs, io: CliIo, mode: ApiServiceMode): Promise<number> {
  const config = loadCommandConfig(args, io);
  // Before the database: a node that cannot join its cluster must not serve stale keys alone.
  const gossipSettings = await loadGossipSettings(config.gossip, io.cwd);
  const dbUrl = configKeys().byKey.get('db.url')!.field.resolveRelative(config.db.url, io.cwd) as string;
  // Loaded on demand so that `--help` never loads drivers.
  const { openDatabase } = await import('../../core/db/database.ts');
  const { migrate } = await import('../../core/db/migrate.ts');
  const { createLogger } = await import('../../core/log.ts');
  const { defaultMetrics } = await import('../../core/metrics.ts');
  const { bootstrapApi } = await import('../../control/api/root-workspace.ts');
  const { createApiDependencies } = await import('../../control/api/dependencies.ts');
  const { createApiServer } = await import('../../control/api/api-service.ts');
  const { systemClock } = await import('../../core/clock.ts');

  const logger = createLogger({ level: config.log.level, name: 'api' });
  return serveUntilSignal(io, async (lifetime) => {
    const db = await openDatabase(dbUrl, { dataDir: resolve(io.cwd, config.dataDir) });
    lifetime.defer(() => db.close());
    const { applied } = await migrate(db);
    for (const name of applied) io.stderr(`keygate: applied migration ${name}\n`);
    const bootstrap = await bootstrapApi(db, systemClock);
    let redis;
    if (config.redis.url !== undefined) {
      // Waits for Redis (bounded by redis.connectTimeoutMs); nothing is queued while it is away.
      const opened = await openRedis({ ...config.redis, url: config.redis.url }, logger);
      redis = opened.redis;
      lifetime.defer(() => opened.close());
    }
    const vault = await openVault(config, io.cwd);
    if (vault !== undefined) lifetime.defer(() => vault.close());
    // Closed after the dependencies (steps run in reverse): the binder unsubscribes first.
    const invalidation = await openInvalidationBus(gossipSettings, {
      dataDir: resolve(io.cwd, config.dataDir), logger, metrics: defaultMetrics, cacheFreshMs: config.cache.freshMs,
    });
    lifetime.defer(() => invalidation.close());
    // analytics.clickhouseUrl set: verification events go to ClickHouse instead of the local table.
    const analytics = await openClickHouseAnalytics(config, db, logger, defaultMetrics);
    if (analytics !== undefined) lifetime.defer(() => analytics.close());
    const deps = createApiDependencies({
      db, redis, vault: vault?.client, logger, metrics: defaultMetrics, invalidation: invalidation.bus,
      redisKeyPrefix: config.redis.keyPrefix, rateLimitFailureMode: config.redis.rateLimitFailureMode, creditsFailureMode: config.redis.creditsFailureMode,
      cacheFreshMs: config.cache.freshMs, cacheStaleMs: config.cache.staleMs, cacheMaxEntries: config.cache.maxEntries,
      region: config.api.region, trustForwardedFor: config.api.trustForwardedFor, analytics: analytics?.sink,
    });
    lifetime.defer(() => deps.close());
    const api = createApiServer(deps);
    api.server.route('GET', '/metrics', async () => ({ headers: { 'content-type': defaultMetrics.contentType }, body: await defaultMetrics.render() }), { accessLog: false });
    const address = await api.server.listen({ port: config.server.port, host: config.server.host });
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const baseUrl = `http://${host}:${address.port}`;
    if (bootstrap.created) {
      // Printed exactly once, on the start that created it; only its hash is stored.
      io.stdout(`root key: ${bootstrap.rootKey}\n`);
      io.stdout(`workspace: ${bootstrap.workspaceId}\n`);
    }
    io.stdout(`${invalidation.summary}\n`);
    io.stdout(`api listening on ${baseUrl} (database: ${redactUrlPassword(dbUrl)}${redis === undefined ? '' : ', redis'})\n`);
    if (mode.dev) io.stdout(devInstructions(baseUrl, bootstrap.created ? bootstrap.rootKey : undefined));
    const alongside = await mode.alongside?.({ config, db, keyVerifier: deps.keyVerifier, rateLimiter: deps.rateLimiter, logger, metrics: defaultMetrics });
    if (alongside !== undefined) lifetime.defer(() => alongside.close());
    if (alongside !== undefined) io.stdout(alongside.summary);
    return {
      async drain() {
        api.startDraining();
        await api.server.close();
      },
    };
  });
}

/**
 * The ClickHouse verification sink when `analytics.clickhouseUrl` is set (undefined otherwise).
 * An unreachable ClickHouse does not stop the start: rows are dropped and counted until it answers.
 * `close` flushes the sink, then closes its client.
 */
async function openClickHouseAnalytics(
  config: import('../../core/config/schema.ts').KeygateConfig,
  db: import('../../core/db/database.ts').Database,
  logger: import('../../core/log.ts').Logger,
  metrics: import('../../core/metrics.ts').Metrics,
): Promise<{ sink: import('../../core/analytics/interface.ts').VerificationEventSink; close(): Promise<void> } | undefined> {
  const { clickHouseSettingsFromConfig, openClickHouseClient } = await import('../../core/analytics/clickhouse-client.ts');
  const settings = clickHouseSettingsFromConfig(config.analytics);
  if (settings === undefined) return undefined;
  const { ClickHouseVerificationSink } = await import('../../core/analytics/clickhouse-verification-sink.ts');
  const client = openClickHouseClient(settings);
  const sink = new ClickHouseVerificationSink({
    client, db, logger, metrics, flushIntervalMs: config.analytics.flushIntervalMs,
    batchSize: config.analytics.batchSize, maxBufferedEvents: config.analytics.maxBufferedRows,
  });
  await sink.ready();
  return {
    sink,
    async close() {
      await sink.close();
      await client.close();
    },
  };
}

function devInstructions(baseUrl: string, rootKey: string | undefined): string {
  const key = rootKey ?? '<the root key printed on the first start>';
  const post = (operation: string, body: string) =>
    `curl -s -X POST ${baseUrl}/v2/${operation} -H "Authorization: Bearer $ROOT_KEY" -H 'content-type: application/json' -d '${body}'`;
  return [
    '',
    'Try it:',
    `  export ROOT_KEY=${key}`,
    `  ${post('apis.createApi', '{"name":"my-api"}')}`,
    '  # → {"data":{"apiId":"api_…"}}',
    `  ${post('keys.createKey', '{"apiId":"<apiId>","prefix":"sk"}')}`,
    '  # → {"data":{"keyId":"key_…","key":"sk_…"}}',
    `  ${post('keys.verifyKey', '{"key":"<key>"}')}`,
    '  # → {"data":{"valid":true,"code":"VALID",…}}',
    `OpenAPI document: ${baseUrl}/openapi.json`,
    '',
  ].join('\n');
}
