/**
 * `IngressFrontline`: the drop-in ingress mode. A Frontline driven by an ingress file
 * (`keygate frontline --config ingress.json`), with no database. `reload()` re-reads the file
 * (called on SIGHUP, and on change when watching): the new route table and certificates are
 * built and validated completely before anything is swapped, so a bad edit leaves the running
 * configuration untouched, and routes whose configuration did not change keep their objects,
 * upstream pools and open connections (including WebSocket tunnels). Listening ports are read
 * at start only; a changed port is reported and ignored until restart.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { Fault } from '../../core/fault.ts';
import type { Logger } from '../../core/log.ts';
import type { HttpPeerOptions } from '../http-peer.ts';
import { CertificateStore } from '../tls/certificate-store.ts';
import type { CertificateStoreOptions, CertificateSource } from '../tls/certificate-store.ts';
import { ChainedAcmeChallengeStore, DirectoryAcmeChallengeStore, MemoryAcmeChallengeStore } from './acme-challenge-store.ts';
import { Frontline } from './frontline.ts';
import type { FrontlineAddresses, FrontlineOptions } from './frontline.ts';
import type { IngressConfig } from './ingress-config.ts';
import { readIngressFile } from './ingress-config.ts';
import { StaticRouteStore } from './route-store.ts';
import { RouteTable } from './route-table.ts';

/** Options of {@link IngressFrontline.start}. */
export interface IngressFrontlineOptions extends Omit<FrontlineOptions, 'routes' | 'certificates' | 'challenges'> {
  /** The ingress file; re-read by `reload()`. Either `file` or `config` is required. */
  file?: string;
  /** An already parsed configuration (used when no `file` is given, or as the first config). */
  config?: IngressConfig;
  /** Bind address (default `127.0.0.1`). */
  host?: string;
  /** Overrides the file's ports (tests, `--port`). */
  httpsPort?: number;
  httpPort?: number;
  /** `SO_REUSEPORT` on both listeners, so worker threads can share the ports (default false). */
  reusePort?: boolean;
  /** Re-read the file when it or a certificate file changes (default false; the CLI turns it on). */
  watch?: boolean;
  /** Delay between a file change and the reload, so editors' multi-step saves land whole (default 100 ms). */
  watchDebounceMs?: number;
  /** TLS options for connections to peer Frontlines (CA, server name). */
  peerOptions?: HttpPeerOptions;
  /** Extra options of the certificate store (default certificate, TLS versions). */
  certificateStore?: Omit<CertificateStoreOptions, 'onError'>;
  /** Called after every reload attempt. */
  onReload?: (result: ReloadResult) => void;
}

/** What a reload did. */
export interface ReloadResult {
  applied: boolean;
  /** Routes added, changed, removed and kept unchanged (by host). */
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: number;
  error?: Fault;
}

/** Default of {@link IngressFrontlineOptions.watchDebounceMs}. */
export const INGRESS_WATCH_DEBOUNCE_MS = 100;

/** A Frontline running from an ingress file. */
export class IngressFrontline {
  readonly frontline: Frontline;
  readonly addresses: FrontlineAddresses;
  /** Challenges added in process (e.g. by an embedded ACME client); the file's directory is asked too. */
  readonly challenges: MemoryAcmeChallengeStore;
  readonly #options: IngressFrontlineOptions;
  readonly #routes: StaticRouteStore;
  readonly #logger: Logger | undefined;
  #config: IngressConfig;
  /** certFile → fingerprint and host names of what is being served from it. */
  #certificates = new Map<string, { fingerprint: string; hostnames: readonly string[] }>();
  #watchers: FSWatcher[] = [];
  #watchTimer: NodeJS.Timeout | undefined;
  #reloading: Promise<ReloadResult> | undefined;
  #reloadAgain = false;
  #closed = false;

  private constructor(options: IngressFrontlineOptions, config: IngressConfig, frontline: Frontline, routes: StaticRouteStore, challenges: MemoryAcmeChallengeStore, addresses: FrontlineAddresses) {
    this.#options = options;
    this.#config = config;
    this.frontline = frontline;
    this.#routes = routes;
    this.challenges = challenges;
    this.addresses = addresses;
    this.#logger = options.logger;
  }

  /**
   * Reads the configuration, loads every certificate, starts both listeners. Throws a `Fault`
   * when the file is invalid or a certificate cannot be used (nothing is left listening).
   */
  static async start(options: IngressFrontlineOptions): Promise<IngressFrontline> {
    const config = options.config ?? (options.file !== undefined ? await readIngressFile(options.file) : undefined);
    if (config === undefined) throw new Fault('err:keygate:config:invalid', { publicMessage: 'frontline needs an ingress file (--config FILE) or routes' });
    const table = new RouteTable(config.routes, { ...(options.peerOptions === undefined ? {} : { peerOptions: options.peerOptions }) });
    const logger = options.logger;
    const certificates = new CertificateStore({
      ...options.certificateStore,
      onError: (fault) => logger?.error({ code: fault.code, detail: fault.internalMessage }, 'certificate not usable'),
    });
    const loaded = await loadCertificateFiles(config);
    for (const item of loaded) certificates.add(item.source);
    if (config.certificateDir !== undefined) {
      const result = await certificates.watchDirectory(config.certificateDir);
      for (const error of result.errors) logger?.error({ detail: error.internalMessage }, 'certificate file skipped');
    }
    const routes = new StaticRouteStore(table);
    const memoryChallenges = new MemoryAcmeChallengeStore();
    const challenges = config.acmeChallengeDir === undefined
      ? memoryChallenges
      : new ChainedAcmeChallengeStore([memoryChallenges, new DirectoryAcmeChallengeStore(config.acmeChallengeDir)]);
    const frontline = new Frontline({ ...options, routes, certificates, challenges });
    frontline.metrics.routes.set(table.size);
    let addresses: FrontlineAddresses;
    try {
      addresses = await frontline.listen({
        httpsPort: options.httpsPort ?? config.httpsPort,
        ...((options.httpPort ?? config.httpPort) === undefined ? {} : { httpPort: options.httpPort ?? config.httpPort }),
        ...(options.host === undefined ? {} : { host: options.host }),
        ...(options.reusePort === undefined ? {} : { reusePort: options.reusePort }),
      });
    } catch (err) {
      await frontline.close({ graceMs: 0 });
      throw err;
    }
    const ingress = new IngressFrontline(options, config, frontline, routes, memoryChallenges, addresses);
    for (const item of loaded) ingress.#certificates.set(item.certFile, { fingerprint: item.fingerprint, hostnames: certificates.createEntry(item.source).hostnames });
    if (options.watch === true && options.file !== undefined) ingress.#watch();
    return ingress;
  }

  /** The configuration in use. */
  get config(): IngressConfig {
    return this.#config;
  }

  /**
   * Re-reads the ingress file and swaps in the new routes and certificates, or keeps everything
   * as it is when anything is wrong. Concurrent calls coalesce. Never throws.
   */
  reload(): Promise<ReloadResult> {
    if (this.#reloading !== undefined) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    this.#reloading = this.#reloadLoop().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  /** Stops watching and drains the listeners (`graceMs`, default 30 s). */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closed = true;
    this.#unwatch();
    await this.#reloading?.catch(() => undefined);
    await this.frontline.close(options);
  }

  async #reloadLoop(): Promise<ReloadResult> {
    let result: ReloadResult;
    do {
      this.#reloadAgain = false;
      result = await this.#reloadOnce();
    } while (this.#reloadAgain && !this.#closed);
    return result;
  }

  async #reloadOnce(): Promise<ReloadResult> {
    const metrics = this.frontline.metrics;
    let result: ReloadResult;
    try {
      result = await this.#apply();
      metrics.configReloads.labels('applied').inc();
      this.#logger?.info({ added: result.added.length, changed: result.changed.length, removed: result.removed.length, unchanged: result.unchanged }, 'ingress configuration reloaded');
    } catch (err) {
      const fault = Fault.from(err, 'err:keygate:config:invalid');
      result = { applied: false, added: [], changed: [], removed: [], unchanged: 0, error: fault };
      metrics.configReloads.labels('failed').inc();
      this.#logger?.error({ code: fault.code, detail: fault.publicMessage }, 'ingress reload failed; previous configuration kept');
    }
    if (this.#options.watch === true && !this.#closed) this.#watch();
    this.#options.onReload?.(result);
    return result;
  }

  async #apply(): Promise<ReloadResult> {
    const file = this.#options.file;
    if (file === undefined) throw new Fault('err:keygate:config:invalid', { publicMessage: 'no ingress file to reload' });
    const config = await readIngressFile(file);
    // Build everything first: the new table (reusing unchanged routes) and every certificate.
    const previous = this.#routes.table;
    const table = new RouteTable(config.routes, { ...(this.#options.peerOptions === undefined ? {} : { peerOptions: this.#options.peerOptions }), previous });
    const loaded = await loadCertificateFiles(config);
    const store = this.frontline.certificates;
    const entries = loaded.map((item) => ({ item, hostnames: store.createEntry(item.source).hostnames }));
    // Then swap. From here on nothing can fail.
    this.#routes.replace(table);
    this.frontline.metrics.routes.set(table.size);
    const nextCertificates = new Map<string, { fingerprint: string; hostnames: readonly string[] }>();
    const served = new Set<string>();
    for (const { item, hostnames } of entries) {
      const before = this.#certificates.get(item.certFile);
      if (before === undefined || before.fingerprint !== item.fingerprint) store.add(item.source);
      nextCertificates.set(item.certFile, { fingerprint: item.fingerprint, hostnames });
      for (const name of hostnames) served.add(name);
    }
    for (const { hostnames } of this.#certificates.values()) {
      for (const name of hostnames) if (!served.has(name)) store.remove(name);
    }
    this.#certificates = nextCertificates;
    if (config.httpsPort !== this.#config.httpsPort || config.httpPort !== this.#config.httpPort) {
      this.#logger?.warn({ httpsPort: config.httpsPort, httpPort: config.httpPort }, 'listening ports changed in the ingress file; restart to apply');
    }
    this.#config = config;
    return diffRoutes(previous, table);
  }

  #watch(): void {
    this.#unwatch();
    const file = this.#options.file;
    if (file === undefined) return;
    // Directories are watched, not files: editors and `mv` replace a file, which ends a file watch.
    const byDirectory = new Map<string, Set<string>>();
    const add = (path: string): void => {
      const absolute = resolve(path);
      const dir = dirname(absolute);
      let names = byDirectory.get(dir);
      if (names === undefined) byDirectory.set(dir, names = new Set());
      names.add(basename(absolute));
    };
    add(file);
    for (const certificate of this.#config.certificates) {
      add(certificate.certFile);
      add(certificate.keyFile);
    }
    for (const [dir, names] of byDirectory) {
      try {
        const watcher = watch(dir, (_event, name) => {
          if (name === null || names.has(name.toString())) this.#scheduleReload();
        });
        watcher.on('error', () => watcher.close());
        this.#watchers.push(watcher);
      } catch (err) {
        this.#logger?.warn({ dir, detail: (err as Error).message }, 'cannot watch directory; reload with SIGHUP');
      }
    }
  }

  #unwatch(): void {
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
    if (this.#watchTimer !== undefined) clearTimeout(this.#watchTimer);
    this.#watchTimer = undefined;
  }

  #scheduleReload(): void {
    if (this.#closed) return;
    if (this.#watchTimer !== undefined) clearTimeout(this.#watchTimer);
    this.#watchTimer = setTimeout(() => {
      this.#watchTimer = undefined;
      void this.reload();
    }, this.#options.watchDebounceMs ?? INGRESS_WATCH_DEBOUNCE_MS);
  }
}

interface LoadedCertificate {
  certFile: string;
  source: CertificateSource;
  fingerprint: string;
}

/** Reads every certificate file of `config`; a missing or unusable file fails the whole load, naming it. */
async function loadCertificateFiles(config: IngressConfig): Promise<LoadedCertificate[]> {
  const store = new CertificateStore();
  return Promise.all(config.certificates.map(async (certificate, index) => {
    const location = `frontline.certificates[${index}]`;
    let cert: string;
    let key: string;
    try {
      [cert, key] = await Promise.all([readFile(certificate.certFile, 'utf8'), readFile(certificate.keyFile, 'utf8')]);
    } catch (err) {
      throw new Fault('err:keygate:config:invalid', {
        publicMessage: `${location}: cannot read ${(err as NodeJS.ErrnoException).path ?? certificate.certFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        errors: [{ location, message: (err as Error).message }],
        cause: err,
      });
    }
    const source = { cert, key };
    try {
      store.createEntry(source);
    } catch (err) {
      const fault = Fault.from(err);
      throw new Fault('err:keygate:config:invalid', {
        publicMessage: `${location}: ${certificate.certFile} and ${certificate.keyFile} are not a usable certificate and key (${fault.internalMessage ?? fault.publicMessage})`,
        errors: [{ location, message: fault.internalMessage ?? fault.publicMessage }],
        cause: err,
      });
    }
    return { certFile: certificate.certFile, source, fingerprint: `${cert}\0${key}` };
  }));
}

function diffRoutes(previous: RouteTable, next: RouteTable): ReloadResult {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  let unchanged = 0;
  for (const route of next.routes()) {
    const before = previous.get(route.host);
    if (before === undefined) added.push(route.host);
    else if (before === route) unchanged++;
    else changed.push(route.host);
  }
  for (const route of previous.routes()) if (next.get(route.host) === undefined) removed.push(route.host);
  return { applied: true, added, changed, removed, unchanged };
}
