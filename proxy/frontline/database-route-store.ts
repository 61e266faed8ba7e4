/**
 * `DatabaseRouteStore`: routes from the `frontline_routes` table (migration 0002) through an SWR
 * cache keyed by the request host. One query per cold host fetches the exact row and the
 * one-label wildcard row together (exact wins). "No route" is cached negatively (briefly), so
 * an unknown host cannot make every request hit the database; a database error is not cached
 * and fails the request with 500 `config_load_failed`. Concurrent cold lookups of one host share
 * one query (the cache's single flight). Also `createDatabaseCertificateLoader`, the matching
 * certificate source for a `CertificateStore`.
 */
import { SwrCache } from '../../core/cache/swr-cache.ts';
import type { Clock } from '../../core/clock.ts';
import type { Database } from '../../core/db/database.ts';
import { Fault } from '../../core/fault.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { HttpPeerOptions } from '../http-peer.ts';
import type { CertificateLoader } from '../tls/certificate-store.ts';
import type { RouteStore } from './route-store.ts';
import { FrontlineRoute } from './route-table.ts';

/** Options of {@link DatabaseRouteStore}; cache windows default to {@link DATABASE_ROUTE_DEFAULTS}. */
export interface DatabaseRouteStoreOptions {
  db: Database;
  freshMs?: number;
  staleMs?: number;
  negativeFreshMs?: number;
  negativeStaleMs?: number;
  maxEntries?: number;
  clock?: Clock;
  metrics?: Metrics;
  peerOptions?: HttpPeerOptions;
}

/** Cache windows (dataplane.md §6.2, §10.21). */
export const DATABASE_ROUTE_DEFAULTS = {
  freshMs: 10_000,
  staleMs: 60_000,
  negativeFreshMs: 5_000,
  negativeStaleMs: 5 * 60_000,
  maxEntries: 10_000,
} as const;

interface RouteRow {
  host: string;
  upstreams: string;
  peers: string;
  protocol: string;
  policies: string | undefined | null;
  deployment_id: string | undefined | null;
}

/** Routes from the database, cached per host. */
export class DatabaseRouteStore implements RouteStore {
  /** The cache (exposed so invalidations can `remove` hosts when routes change). */
  readonly cache: SwrCache<FrontlineRoute>;
  readonly #db: Database;
  readonly #peerOptions: HttpPeerOptions;
  /** Compiled routes by their configuration, so a refresh of an unchanged row reuses the object. */
  readonly #compiled = new Map<string, FrontlineRoute>();
  readonly #load = (host: string): Promise<FrontlineRoute | undefined> => this.#query(host);

  constructor(options: DatabaseRouteStoreOptions) {
    this.#db = options.db;
    this.#peerOptions = options.peerOptions ?? {};
    this.cache = new SwrCache<FrontlineRoute>({
      name: 'frontline_route',
      freshMs: options.freshMs ?? DATABASE_ROUTE_DEFAULTS.freshMs,
      staleMs: options.staleMs ?? DATABASE_ROUTE_DEFAULTS.staleMs,
      negativeFreshMs: options.negativeFreshMs ?? DATABASE_ROUTE_DEFAULTS.negativeFreshMs,
      negativeStaleMs: options.negativeStaleMs ?? DATABASE_ROUTE_DEFAULTS.negativeStaleMs,
      maxEntries: options.maxEntries ?? DATABASE_ROUTE_DEFAULTS.maxEntries,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
    });
  }

  lookup(host: string): FrontlineRoute | undefined | Promise<FrontlineRoute | undefined> {
    const cached = this.cache.getSync(host, this.#load);
    return cached === SwrCache.MISS ? this.cache.get(host, this.#load) : cached;
  }

  async #query(host: string): Promise<FrontlineRoute | undefined> {
    const dot = host.indexOf('.');
    const wildcard = dot > 0 ? `*${host.slice(dot)}` : host;
    let rows: RouteRow[];
    try {
      rows = await this.#db.query<RouteRow>(
        'SELECT `host`, `upstreams`, `peers`, `protocol`, `policies`, `deployment_id` FROM `frontline_routes` WHERE `host` IN (?, ?)',
        [host, wildcard],
      );
    } catch (err) {
      throw new Fault('err:frontline:platform:config_load_failed', { source: 'upstream', retryable: true, internalMessage: `loading the route of ${host}`, cause: err });
    }
    const row = rows.find((candidate) => candidate.host === host) ?? rows[0];
    if (row === undefined) return undefined;
    return this.#compile(row);
  }

  #compile(row: RouteRow): FrontlineRoute {
    try {
      const route = new FrontlineRoute({
        host: row.host,
        upstreams: parseList(row.upstreams),
        peers: parseList(row.peers),
        protocol: row.protocol === 'h2c' ? 'h2c' : 'http1',
        policies: row.policies === undefined || row.policies === null ? [] : JSON.parse(row.policies) as unknown[],
        ...(row.deployment_id === undefined || row.deployment_id === null ? {} : { deploymentId: row.deployment_id }),
      }, this.#peerOptions);
      const existing = this.#compiled.get(route.fingerprint);
      if (existing !== undefined) return existing;
      if (this.#compiled.size >= DATABASE_ROUTE_DEFAULTS.maxEntries) this.#compiled.clear();
      this.#compiled.set(route.fingerprint, route);
      return route;
    } catch (err) {
      throw Fault.from(err, 'err:frontline:config:invalid_configuration');
    }
  }
}

function parseList(text: string): string[] {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new Fault('err:frontline:config:invalid_configuration', { internalMessage: 'route column is not a JSON list of URLs' });
  }
  return value as string[];
}

interface CertificateRow {
  hostname: string;
  workspace_id: string;
  certificate: string;
  encrypted_private_key: string;
}

/** Turns a stored (Vault-encrypted) private key into PEM: `keyring` is the certificate's workspace. */
export type PrivateKeyDecrypter = (encrypted: string, keyring: string) => Promise<string>;

/**
 * A `CertificateLoader` over the `certificates` table: the exact host name first, then its
 * one-label wildcard; the private key is decrypted through `decrypt` (the Vault). The
 * certificate store adds singleflight, a timeout and negative caching around it.
 */
export function createDatabaseCertificateLoader(db: Database, decrypt: PrivateKeyDecrypter): CertificateLoader {
  return async (servername) => {
    const dot = servername.indexOf('.');
    const wildcard = dot > 0 ? `*${servername.slice(dot)}` : servername;
    const rows = await db.query<CertificateRow>(
      'SELECT `hostname`, `workspace_id`, `certificate`, `encrypted_private_key` FROM `certificates` WHERE `hostname` IN (?, ?)',
      [servername, wildcard],
    );
    const row = rows.find((candidate) => candidate.hostname === servername) ?? rows[0];
    if (row === undefined) return undefined;
    return { cert: row.certificate, key: await decrypt(row.encrypted_private_key, row.workspace_id) };
  };
}
