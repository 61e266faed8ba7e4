/**
 * `keygate frontline`: runs Frontline, the TLS ingress. Drop-in mode reads routes and
 * certificates from the config file (the ingress file, `{"frontline": {"routes": [...]}}`), with
 * no database; the file is re-read on change and on SIGHUP without dropping connections.
 * SIGINT/SIGTERM drain: listeners stop accepting, in-flight requests and tunnels get
 * frontline.drainTimeoutMs, then the process exits 0. With `--workers N` (default one per
 * core) the ingress runs on N worker threads sharing the ports (bin/frontline-workers.ts).
 * Database mode (`--db`) reads routes and certificates from the database in one thread.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Fault } from '../../core/fault.ts';
import { configKeys } from '../../core/config/config-keys.ts';
import type { KeygateConfig } from '../../core/config/schema.ts';
import type { CliIo, Command, CommandArgs, CommandOption } from '../command.ts';
import { allConfigOptions, contractOptions, loadCommandConfig } from '../command-config.ts';
import { openVault } from '../open-vault.ts';
import { serveUntilSignal } from '../serve-until-signal.ts';
import type { ServeLifetime } from '../serve-until-signal.ts';
import type { IngressConfig } from '../../proxy/frontline/ingress-config.ts';
import type { ForwardingEngineName } from '../../proxy/forward/create-forwarding-engine.ts';
import type { HttpPeerOptions } from '../../proxy/http-peer.ts';

/** The contract flags a server needs plus every `frontline.*` key. */
function frontlineOptions(): Record<string, CommandOption> {
  const options: Record<string, CommandOption> = { ...contractOptions('config', 'data-dir', 'db', 'port', 'host', 'log-level') };
  const all = allConfigOptions();
  for (const [name, option] of Object.entries(all)) if (name.startsWith('frontline-')) options[name] = option;
  options['workers'] = all['workers']!;
  return options;
}

/** The `frontline` command. */
export const frontlineCommand: Command = {
  name: 'frontline',
  summary: 'run Frontline, the TLS ingress (SNI certificates, routes by Host, ACME HTTP-01)',
  usage: 'keygate frontline --config ingress.json [--host ADDR] [--port N] [--workers N] [--frontline-…]',
  details: 'The config file holds the ingress: {"frontline": {"httpsPort": 8443, "httpPort": 8080,\n'
    + '"certificates": [{"certFile": "certs/app.pem", "keyFile": "certs/app.key"}],\n'
    + '"routes": [{"host": "app.example.com", "upstreams": ["http://127.0.0.1:9000"]}]}}.\n'
    + 'Paths are relative to the file; host may be "*.example.com"; several upstreams are balanced.\n'
    + '--port overrides httpsPort. The file is re-read when it changes and on SIGHUP; a bad edit is\n'
    + 'reported and the running configuration kept. The HTTP listener answers ACME challenges and\n'
    + 'redirects everything else to HTTPS with 308. Health: GET /_keygate/health/{live,ready,startup}.\n'
    + '--workers N (frontline.workers; default one per core) serves the ingress from N threads on the\n'
    + 'same ports (SO_REUSEPORT); 1 serves in the main thread. SIGHUP and SIGTERM reach every worker.\n'
    + '--frontline-engine raw|undici (frontline.engine, KEYGATE_FRONTLINE_ENGINE; default raw) picks how\n'
    + 'upstreams are spoken to: raw is keygate\'s own HTTP/1.1 client, undici the undici pools.\n'
    + '--frontline-http1-parser keygate|node (frontline.http1Parser, KEYGATE_FRONTLINE_HTTP1_PARSER;\n'
    + 'default keygate) picks who parses HTTP/1.1 requests on the HTTPS listener: keygate\'s own request\n'
    + 'path (node:http takes what it does not handle), or node:http for every request.\n'
    + 'Stops gracefully on SIGINT or SIGTERM.',
  options: frontlineOptions(),
  async run(args, io) {
    return runFrontline(args, io);
  },
};

async function runFrontline(args: CommandArgs, io: CliIo): Promise<number> {
  const { readIngressFile, parseIngressConfig } = await import('../../proxy/frontline/ingress-config.ts');

  const fileValue = args.values['config'] ?? io.env['KEYGATE_CONFIG'];
  const file = typeof fileValue === 'string' && fileValue !== '' ? resolve(io.cwd, fileValue) : undefined;
  // The ingress part of the file is validated first, field by field, so a mistake is reported
  // with its exact path (frontline.routes[2].upstreams[0]) rather than as a whole key.
  const fromFile = file === undefined ? undefined : await readIngressFile(file);
  const config = loadCommandConfig(args, io);
  const settings = config.frontline;
  if (args.values['db'] !== undefined || settings.source === 'database') return runFromDatabase(config, io);
  // Without a file, the routes come from KEYGATE_FRONTLINE_ROUTES / --frontline-routes and get the same checks.
  const ingress = fromFile ?? parseIngressConfig({
    httpsPort: settings.httpsPort, httpPort: settings.httpPort, certificates: settings.certificates ?? [],
    certificateDir: settings.certificateDir, acmeChallengeDir: settings.acmeChallengeDir, routes: settings.routes ?? [],
  }, { baseDir: io.cwd, source: 'environment and flags' });
  const run: IngressRun = {
    config, io, file, ingress,
    httpsPort: args.values['port'] !== undefined ? config.server.port : ingress.httpsPort,
    shared: sharedFrontlineOptions(config, io.cwd),
  };
  const workerCount = settings.workers ?? availableParallelism();
  return workerCount > 1 ? runIngressWorkers(run, workerCount) : runIngressInProcess(run);
}

/** What both ingress modes (one thread, N worker threads) start from. */
interface IngressRun {
  config: KeygateConfig;
  io: CliIo;
  file: string | undefined;
  ingress: IngressConfig;
  /** `--port` (server.port) when given, else the ingress file's httpsPort. */
  httpsPort: number;
  shared: SharedFrontlineOptions;
}

/** The ingress Frontline in this thread (`--workers 1`, or a one-core machine by default). */
async function runIngressInProcess(run: IngressRun): Promise<number> {
  const { config, io, file, ingress, shared } = run;
  const settings = config.frontline;
  const { IngressFrontline } = await import('../../proxy/frontline/ingress-frontline.ts');
  const { createLogger } = await import('../../core/log.ts');
  const { defaultMetrics } = await import('../../core/metrics.ts');
  const logger = createLogger({ level: config.log.level, name: 'frontline' });
  return serveUntilSignal(io, async (lifetime) => {
    const frontline = await IngressFrontline.start({
      ...(file === undefined ? { config: ingress } : { file, config: ingress }),
      host: config.server.host,
      httpsPort: run.httpsPort,
      logger,
      metrics: defaultMetrics,
      ...shared,
      watch: settings.watch && file !== undefined,
      onReload: (result) => {
        if (result.applied) io.stderr(`keygate: frontline configuration reloaded (${result.added.length} added, ${result.changed.length} changed, ${result.removed.length} removed, ${result.unchanged} unchanged)\n`);
        else io.stderr(`keygate: frontline reload failed, previous configuration kept: ${result.error?.publicMessage ?? 'unknown error'}\n`);
      },
    });
    // Closed by the drain; this covers a failure after the start (the metrics port in use).
    lifetime.defer(() => frontline.close({ graceMs: 0 }));
    const { https, http: plain } = frontline.addresses;
    io.stdout(`frontline listening on https://${hostPort(https.address, https.port)}`
      + (plain === undefined ? '' : ` and http://${hostPort(plain.address, plain.port)}`) + ` (${frontline.config.routes.length} routes)\n`);
    await serveMetricsIfConfigured(run, lifetime, async () => ({ contentType: defaultMetrics.contentType, text: await defaultMetrics.render() }));
    return {
      drain: () => frontline.close({ graceMs: settings.drainTimeoutMs }),
      reload: async () => {
        await frontline.reload();
      },
    };
  });
}

/**
 * The ingress Frontline on `workerCount` threads sharing the ports (bin/frontline-workers.ts).
 * SIGHUP reloads every worker, SIGTERM drains every worker; a worker that dies stops the process
 * with exit 1, so its supervisor restarts it whole rather than it serving on fewer cores.
 */
async function runIngressWorkers(run: IngressRun, workerCount: number): Promise<number> {
  const { config, io, file, ingress, shared } = run;
  const settings = config.frontline;
  const { FrontlineWorkers } = await import('../frontline-workers.ts');
  return serveUntilSignal(io, async (lifetime) => {
    const workers = await FrontlineWorkers.start({
      count: workerCount,
      worker: {
        ...(file === undefined ? {} : { file }),
        config: ingress,
        host: config.server.host,
        httpsPort: run.httpsPort,
        ...(ingress.httpPort === undefined ? {} : { httpPort: ingress.httpPort }),
        logLevel: config.log.level,
        instanceId: shared.instanceId,
        region: shared.region,
        maxHops: shared.maxHops,
        ...(shared.peerSecret === undefined ? {} : { peerSecret: shared.peerSecret }),
        peerOptions: shared.peerOptions,
        ...(shared.redirectPort === undefined ? {} : { redirectPort: shared.redirectPort }),
        trustedProxies: shared.proxy.trustedProxies,
        requestTimeoutMs: shared.proxy.totalTimeoutMs,
        engine: shared.proxy.engine,
        http1Parser: shared.http1Parser,
        drainTimeoutMs: settings.drainTimeoutMs,
        watch: settings.watch && file !== undefined,
      },
      onReload: (report) => {
        if (report.applied) io.stderr(`keygate: frontline worker ${report.workerId}: configuration reloaded (${report.added} added, ${report.changed} changed, ${report.removed} removed, ${report.unchanged} unchanged)\n`);
        else io.stderr(`keygate: frontline worker ${report.workerId}: reload failed, previous configuration kept: ${report.error ?? 'unknown error'}\n`);
      },
      onUnexpectedExit: (workerIndex, exitCode) => lifetime.abort(`frontline worker ${workerIndex} exited with code ${exitCode}`),
    });
    lifetime.defer(() => workers.stop());
    const { https, http: plain } = workers.addresses;
    io.stdout(`frontline listening on https://${hostPort(https.address, https.port)}`
      + (plain === undefined ? '' : ` and http://${hostPort(plain.address, plain.port)}`) + ` (${ingress.routes.length} routes, ${workerCount} worker threads)\n`);
    await serveMetricsIfConfigured(run, lifetime, () => workers.renderMetrics());
    return { drain: () => workers.stop(), reload: async () => workers.reload() };
  });
}

/**
 * `--db` mode: routes from `frontline_routes` (SWR-cached), certificates from `certificates`
 * with private keys decrypted by the Vault (remote with vault.url, or in process with
 * vault.masterKeys + vault.storage: bin/open-vault.ts). Runs in one thread until
 * SIGINT/SIGTERM; SIGHUP drops the route and certificate caches.
 */
async function runFromDatabase(config: KeygateConfig, io: CliIo): Promise<number> {
  const settings = config.frontline;
  const { openDatabase } = await import('../../core/db/database.ts');
  const { migrate } = await import('../../core/db/migrate.ts');
  const { createLogger } = await import('../../core/log.ts');
  const { defaultMetrics } = await import('../../core/metrics.ts');
  const { CertificateStore } = await import('../../proxy/tls/certificate-store.ts');
  const { DatabaseRouteStore, createDatabaseCertificateLoader } = await import('../../proxy/frontline/database-route-store.ts');
  const { Frontline } = await import('../../proxy/frontline/frontline.ts');

  const dbUrl = configKeys().byKey.get('db.url')!.field.resolveRelative(config.db.url, io.cwd) as string;
  const logger = createLogger({ level: config.log.level, name: 'frontline' });
  const shared = sharedFrontlineOptions(config, io.cwd);
  if (settings.workers !== undefined && settings.workers > 1) io.stderr('keygate: frontline.workers applies to the ingress-file mode; the database mode serves in one thread\n');
  return serveUntilSignal(io, async (lifetime) => {
    const db = await openDatabase(dbUrl, { dataDir: resolve(io.cwd, config.dataDir) });
    lifetime.defer(() => db.close());
    const vault = await openVault(config, io.cwd);
    if (vault !== undefined) lifetime.defer(() => vault.close());
    const { applied } = await migrate(db);
    for (const name of applied) io.stderr(`keygate: applied migration ${name}\n`);
    if (vault === undefined) io.stderr('keygate: no Vault configured (vault.url + vault.bearerToken, or vault.masterKeys): certificates from the database cannot be decrypted\n');
    const routes = new DatabaseRouteStore({ db, metrics: defaultMetrics, peerOptions: shared.peerOptions });
    const certificates = new CertificateStore({
      ...(vault === undefined ? {} : { loader: createDatabaseCertificateLoader(db, async (encrypted, keyring) => (await vault.client.decrypt({ keyring, encrypted })).plaintext) }),
      onError: (fault) => logger.error({ code: fault.code, detail: fault.internalMessage }, 'certificate not usable'),
    });
    if (settings.certificateDir !== undefined) await certificates.watchDirectory(resolve(io.cwd, settings.certificateDir));
    const { peerOptions: _peerOptions, ...frontlineOptions } = shared;
    const frontline = new Frontline({ routes, certificates, logger, metrics: defaultMetrics, ...frontlineOptions });
    // Closed by the drain once listening; this covers a failed listen (certificates watch a directory).
    lifetime.defer(() => frontline.close({ graceMs: 0 }));
    const { https, http: plain } = await frontline.listen({ host: config.server.host, httpsPort: settings.httpsPort, httpPort: settings.httpPort });
    io.stdout(`frontline listening on https://${hostPort(https.address, https.port)} and http://${hostPort(plain!.address, plain!.port)} (routes from the database${vault === undefined ? '' : `, ${vault.summary}`})\n`);
    return {
      drain: () => frontline.close({ graceMs: settings.drainTimeoutMs }),
      reload: async () => {
        routes.cache.clear();
        certificates.invalidate();
      },
    };
  });
}

/** The Frontline options both modes take from `frontline.*` (and plain data, so workers get them too). */
interface SharedFrontlineOptions {
  instanceId: string;
  region: string;
  maxHops: number;
  peerSecret?: string;
  redirectPort?: number;
  peerOptions: HttpPeerOptions;
  /** `frontline.http1Parser`: who parses HTTP/1.1 on the HTTPS listener. */
  http1Parser: 'keygate' | 'node';
  proxy: { trustedProxies: readonly string[]; totalTimeoutMs: number; engine: ForwardingEngineName };
}

function sharedFrontlineOptions(config: KeygateConfig, cwd: string): SharedFrontlineOptions {
  const settings = config.frontline;
  const peerCa = settings.peerCaFile === undefined ? undefined : readPeerCa(resolve(cwd, settings.peerCaFile));
  return {
    instanceId: settings.instanceId ?? `frontline_${randomBytes(6).toString('hex')}`,
    region: settings.region,
    maxHops: settings.maxHops,
    ...(settings.peerSecret === undefined ? {} : { peerSecret: settings.peerSecret }),
    ...(settings.redirectPort === undefined ? {} : { redirectPort: settings.redirectPort }),
    peerOptions: {
      ...(peerCa === undefined ? {} : { ca: peerCa }),
      ...(settings.peerServername === undefined ? {} : { servername: settings.peerServername }),
    },
    http1Parser: settings.http1Parser,
    proxy: { trustedProxies: settings.trustedProxies, totalTimeoutMs: settings.requestTimeoutMs, engine: settings.engine },
  };
}

/** Starts the `frontline.metricsPort` listener when configured; closed with the service. */
async function serveMetricsIfConfigured(run: IngressRun, lifetime: ServeLifetime, render: () => Promise<{ contentType: string; text: string }>): Promise<void> {
  const metricsPort = run.config.frontline.metricsPort;
  if (metricsPort === undefined) return;
  const server = await serveMetrics(run.config.server.host, metricsPort, render);
  lifetime.defer(() => {
    server.closeAllConnections();
    server.close();
  });
  const address = server.address() as { address: string; port: number };
  run.io.stdout(`frontline metrics on http://${hostPort(address.address, address.port)}/metrics\n`);
}

function readPeerCa(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Fault('err:keygate:config:invalid', { publicMessage: `frontline.peerCaFile: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
  }
}

function hostPort(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

async function serveMetrics(host: string, port: number, render: () => Promise<{ contentType: string; text: string }>): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    render().then((metrics) => res.writeHead(200, { 'content-type': metrics.contentType }).end(metrics.text), () => res.writeHead(500).end());
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolveListen());
  });
  return server;
}
