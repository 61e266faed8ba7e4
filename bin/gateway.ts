/**
 * The gateway start-up shared by `keygate dev`: Frontline with the Sentinel policy phase
 * (`proxy/sentinel/gateway.ts`) from the same config file, in the same process as the API, on
 * the API's own verifier, rate limiter and database, so a key created, disabled or deleted
 * through the API takes effect at the gateway at once (one key cache, one invalidation bus).
 * Request-log rows go to the local `gateway_requests` table, or to ClickHouse when
 * `analytics.clickhouseUrl` is set. When the ingress names no
 * certificate, a self-signed one for the route hosts and localhost is made in
 * `<data-dir>/dev-certs` (openssl), so `--config ingress.json` alone is enough locally.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { KeygateConfig } from '../core/config/schema.ts';
import type { Database } from '../core/db/database.ts';
import type { Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import type { RateLimiter } from '../core/ratelimit/interface.ts';
import type { GatewayKeyVerifier } from '../proxy/sentinel/executors/keyauth/keyauth-executor.ts';
import type { CliIo, CommandArgs } from './command.ts';

/** What the API start-up hands to the gateway. */
export interface GatewayHost {
  config: KeygateConfig;
  db: Database;
  keyVerifier: GatewayKeyVerifier;
  rateLimiter: RateLimiter;
  logger: Logger;
  metrics: Metrics;
}

/** A started gateway: what to print, and how to stop it. */
export interface StartedGateway {
  summary: string;
  close(): Promise<void>;
}

/**
 * Returns the start-up of the gateway for `keygate dev`, called once the API listens. Resolves
 * to undefined (nothing started, a hint printed) when the config has no `frontline.routes`.
 * Throws a `Fault` naming the bad field when the ingress or a policy is invalid.
 */
export function devGateway(args: CommandArgs, io: CliIo): (host: GatewayHost) => Promise<StartedGateway | undefined> {
  return async (host) => {
    const { config } = host;
    const fileValue = args.values['config'] ?? io.env['KEYGATE_CONFIG'];
    const file = typeof fileValue === 'string' && fileValue !== '' ? resolve(io.cwd, fileValue) : undefined;
    const settings = config.frontline;
    if ((settings.routes ?? []).length === 0) {
      io.stdout('gateway: not started (no frontline.routes; run "keygate dev --config ingress.json" to put key auth in front of a service)\n');
      return undefined;
    }
    const { readIngressFile, parseIngressConfig } = await import('../proxy/frontline/ingress-config.ts');
    const { Gateway } = await import('../proxy/sentinel/gateway.ts');
    const { PolicyEngine } = await import('../proxy/sentinel/policy-engine.ts');
    const { DatabaseKeySpaceResolver } = await import('../proxy/sentinel/executors/keyauth/database-key-space-resolver.ts');
    const { LocalRequestLogSink } = await import('../proxy/sentinel/local-request-log-sink.ts');

    let ingress = file === undefined ? parseIngressConfig({
      httpsPort: settings.httpsPort, httpPort: settings.httpPort, certificates: settings.certificates ?? [],
      certificateDir: settings.certificateDir, acmeChallengeDir: settings.acmeChallengeDir, routes: settings.routes ?? [],
    }, { baseDir: io.cwd, source: 'environment and flags' }) : await readIngressFile(file);
    let certificateNote = '';
    if (ingress.certificates.length === 0 && ingress.certificateDir === undefined) {
      const dir = join(resolve(io.cwd, config.dataDir), 'dev-certs');
      const hostnames = ['localhost', ...ingress.routes.map((route) => route.host)];
      ingress = { ...ingress, certificates: [makeDevCertificate(dir, hostnames)] };
      certificateNote = ` (self-signed certificate in ${dir}: use curl -k)`;
    }
    const sentinel = config.sentinel;
    // analytics.clickhouseUrl set: request-log rows go to ClickHouse instead of gateway_requests.
    const requestLog = await openClickHouseRequestLog(config, settings.region, host)
      ?? new LocalRequestLogSink({ db: host.db, region: settings.region, flushIntervalMs: sentinel.requestLogFlushIntervalMs, metrics: host.metrics, logger: host.logger });
    const engine = new PolicyEngine({ rateLimiter: host.rateLimiter, keyVerifier: host.keyVerifier, keySpaceResolver: new DatabaseKeySpaceResolver(host.db), metrics: host.metrics });
    let gateway;
    try {
      gateway = await Gateway.start({
        mode: sentinel.mode, balancing: sentinel.balancing, ejectMs: sentinel.ejectMs,
        trustedFrontlines: sentinel.trustedFrontlines, trustedProxies: sentinel.trustedProxies,
        sentinelPort: sentinel.port, sentinelProtocol: sentinel.protocol,
        engine, requestLog, metrics: host.metrics, logger: host.logger,
        ingress: {
          // Re-reading a file that needed a generated certificate would drop it: watch only complete files.
          ...(file === undefined || certificateNote !== '' ? { config: ingress } : { file, config: ingress }),
          host: config.server.host,
          instanceId: settings.instanceId ?? 'frontline_dev',
          region: settings.region,
          maxHops: settings.maxHops,
          watch: settings.watch && file !== undefined && certificateNote === '',
          proxy: { trustedProxies: settings.trustedProxies, totalTimeoutMs: settings.requestTimeoutMs, engine: settings.engine },
          http1Parser: settings.http1Parser,
          logger: host.logger,
          metrics: host.metrics,
        },
      });
    } catch (err) {
      await requestLog.close();
      throw err;
    }
    const { https, http } = gateway.ingress.addresses;
    const lines = [
      `gateway (${gateway.mode}): frontline listening on https://${hostPort(https.address, https.port)}`
        + (http === undefined ? '' : ` and http://${hostPort(http.address, http.port)}`) + certificateNote,
    ];
    if (gateway.sentinelAddress !== undefined) lines.push(`gateway: sentinel listening on ${sentinel.protocol === 'h2c' ? 'h2c' : 'http'}://${hostPort(gateway.sentinelAddress.address, gateway.sentinelAddress.port)}`);
    for (const route of ingress.routes) {
      const policies = route.policies.map((policy) => (policy as { id?: unknown }).id).join(', ');
      lines.push(`gateway: route ${route.host} → ${route.upstreams.join(', ') || route.peers.join(', ')}${policies === '' ? '' : ` (policies: ${policies})`}`);
    }
    return {
      summary: lines.join('\n') + '\n',
      async close() {
        await gateway.close({ graceMs: settings.drainTimeoutMs });
        await requestLog.close();
      },
    };
  };
}

/** The ClickHouse request log when `analytics.clickhouseUrl` is set; its `close` also closes its client. */
async function openClickHouseRequestLog(config: KeygateConfig, region: string, host: GatewayHost): Promise<{ record: import('../core/analytics/request-log-sink.ts').RequestLogSink['record']; close(): Promise<void> } | undefined> {
  const { clickHouseSettingsFromConfig, openClickHouseClient } = await import('../core/analytics/clickhouse-client.ts');
  const clickhouse = clickHouseSettingsFromConfig(config.analytics);
  if (clickhouse === undefined) return undefined;
  const { ClickHouseRequestLogSink } = await import('../core/analytics/clickhouse-request-log-sink.ts');
  const client = openClickHouseClient(clickhouse);
  const sink = new ClickHouseRequestLogSink({
    client, region, flushIntervalMs: config.analytics.flushIntervalMs, batchSize: config.analytics.batchSize,
    maxBufferedRows: config.analytics.maxBufferedRows, metrics: host.metrics, logger: host.logger,
  });
  await sink.ready();
  return {
    record: (row) => sink.record(row),
    async close() {
      await sink.close();
      await client.close();
    },
  };
}

function makeDevCertificate(dir: string, hostnames: readonly string[]): { certFile: string; keyFile: string } {
  mkdirSync(dir, { recursive: true });
  const names = [...new Set(hostnames)];
  const stem = 'dev-' + Buffer.from(names.join(',')).toString('base64url').slice(0, 32);
  const certFile = join(dir, `${stem}.pem`);
  const keyFile = join(dir, `${stem}.key`);
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256', '-days', '30',
      '-subj', '/CN=keygate dev', '-addext', `subjectAltName=${names.map((name) => `DNS:${name}`).join(',')}`,
      '-keyout', keyFile, '-out', certFile,
    ], { stdio: 'pipe' });
  }
  return { certFile, keyFile };
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
