/**
 * `CertificateStore`: picks the TLS certificate for each handshake by SNI. Lookup order: exact
 * host, then the one-label wildcard (`a.b.example.com` → `*.b.example.com`, never deeper), then
 * an optional loader (e.g. the database, with singleflight, a timeout and negative caching),
 * then the default certificate if one is configured; otherwise the handshake fails.
 *
 * A `SecureContext` is created once per certificate, when it is added (never per handshake), and
 * shared by every host the certificate covers. Certificates come from code (`add`), from a
 * directory of PEM files (`loadDirectory`, re-read by `reload()` or automatically by
 * `watchDirectory`), or from the loader. Replacing a certificate affects new handshakes only;
 * open connections keep theirs. TLS 1.2+ with AEAD ciphers only; session tickets are on, and
 * the listener's ticket keys (not the certificates') decide, so resumption works across every
 * certificate it serves. The keys are a `SessionTicketKeys`: random per store by default and
 * rotated by the store; or passed in (`ticketKeys`) so several listeners or worker threads
 * resume each other's sessions, and then rotated by whoever owns them.
 */
import { X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext, type Server as TlsServer, type TlsOptions } from 'node:tls';
import { Fault } from '../../core/fault.ts';
import { systemClock, type Clock } from '../../core/clock.ts';
import { SESSION_TICKET_DEFAULTS, SessionTicketKeys } from './session-ticket-keys.ts';

/** A certificate chain and its private key, PEM encoded. */
export interface CertificateSource {
  cert: string | Buffer;
  key: string | Buffer;
}

/** Loads the certificate for a server name from elsewhere (database, vault); undefined = none. */
export type CertificateLoader = (servername: string) => Promise<CertificateSource | undefined>;

/** Options of {@link CertificateStore}. */
export interface CertificateStoreOptions {
  /** Served when no certificate matches (or the client sent no SNI); without it those handshakes fail. */
  defaultCertificate?: CertificateSource;
  /** Lowest TLS version (default `TLSv1.2`). */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list for TLS 1.2 (default {@link MODERN_CIPHERS}: ECDHE with AEAD only). */
  ciphers?: string;
  /** Consulted on a miss of the static certificates. */
  loader?: CertificateLoader;
  /** Longest wait for the loader during a handshake (default 5 000 ms); a timeout fails the handshake. */
  loaderTimeoutMs?: number;
  /** How long a loaded certificate is served before the loader is asked again (default 1 h). */
  loadedFreshMs?: number;
  /** How long "the loader has no certificate" is remembered (default 5 000 ms). */
  negativeCacheMs?: number;
  /** Bound of loader results kept (default 10 000). */
  maxLoadedEntries?: number;
  /** Delay between a directory change and the reload (default 100 ms), so cert + key land together. */
  watchDebounceMs?: number;
  /**
   * Session ticket keys. A `SessionTicketKeys` is shared as is and rotated by its owner (e.g. the
   * main thread for every worker); 48 bytes become this store's first key, rotated by the store.
   * Default: random per store, rotated by the store every `ticketKeyRotationMs`.
   */
  ticketKeys?: SessionTicketKeys | Uint8Array;
  /** Rotation interval of keys the store owns (default 1 h); the previous key is accepted one more interval. */
  ticketKeyRotationMs?: number;
  clock?: Clock;
  /** Called when a file or loader result cannot be used (the previous certificate stays). */
  onError?: (err: Fault) => void;
}

/** TLS 1.2 ciphers allowed by default: forward secrecy and AEAD only (TLS 1.3 suites are always AEAD). */
export const MODERN_CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Defaults of {@link CertificateStoreOptions}. */
export const CERTIFICATE_STORE_DEFAULTS = {
  minVersion: 'TLSv1.2',
  loaderTimeoutMs: 5_000,
  loadedFreshMs: 60 * 60_000,
  negativeCacheMs: 5_000,
  maxLoadedEntries: 10_000,
  watchDebounceMs: 100,
} as const;

/** One usable certificate: its context and the host names it covers. */
export interface CertificateEntry {
  readonly context: SecureContext;
  readonly hostnames: readonly string[];
  /** Certificate expiry (ms since epoch). */
  readonly validToMs: number;
}

interface FileEntry {
  fingerprint: string;
  entry: CertificateEntry;
}

interface LoadedEntry {
  entry: CertificateEntry | undefined;
  expiresAtMs: number;
}

/** The SNI → certificate table of one or more TLS listeners. */
export class CertificateStore {
  readonly #options: CertificateStoreOptions;
  readonly #clock: Clock;
  readonly #ticketKeys: SessionTicketKeys;
  /** True when the keys were made here, so this store rotates them (from the first listener on). */
  readonly #ownsTicketKeys: boolean;
  /** Certificates added in code, by lower-cased host name (`*.example.com` for wildcards). */
  readonly #manual = new Map<string, CertificateEntry>();
  /** Certificates from directories: file path → entry, and the host index built from them. */
  #fromFiles = new Map<string, FileEntry>();
  #fileIndex = new Map<string, CertificateEntry>();
  readonly #directories = new Set<string>();
  readonly #watchers: FSWatcher[] = [];
  #reloadTimer: NodeJS.Timeout | undefined;
  #reloading: Promise<void> | undefined;
  readonly #loaded = new Map<string, LoadedEntry>();
  readonly #inflight = new Map<string, Promise<CertificateEntry | undefined>>();
  #defaultEntry: CertificateEntry | undefined;
  #rotating = false;

  constructor(options: CertificateStoreOptions = {}) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    const ticketKeys = options.ticketKeys;
    this.#ownsTicketKeys = !(ticketKeys instanceof SessionTicketKeys);
    this.#ticketKeys = ticketKeys instanceof SessionTicketKeys ? ticketKeys
      : ticketKeys === undefined ? SessionTicketKeys.generate() : new SessionTicketKeys(ticketKeys);
    const store = this;
    // A plain function, not an arrow: Node calls it with the handshaking TLSSocket as `this`.
    this.sniCallback = function sniCallback(this: unknown, servername, callback) {
      // Before the ticket is read: the server context (the one whose keys decide) learns the
      // rotating keys on its first SNI handshake, even when the listener never called attachServer.
      store.#ticketKeys.attachSocket(this);
      store.#selectContext(servername, callback);
    };
    if (options.defaultCertificate !== undefined) this.#defaultEntry = this.createEntry(options.defaultCertificate);
  }

  /** Number of host names served from code and directories (not counting loader results). */
  get size(): number {
    return this.#manual.size + this.#fileIndex.size;
  }

  /**
   * Parses a certificate and key into an entry (one `SecureContext`). Host names default to the
   * certificate's DNS subjectAltNames (or its CN). Throws a `Fault` when they do not fit together.
   */
  createEntry(source: CertificateSource, hostnames?: readonly string[]): CertificateEntry {
    let x509: X509Certificate;
    let context: SecureContext;
    try {
      x509 = new X509Certificate(source.cert);
      context = createSecureContext({
        cert: source.cert,
        key: source.key,
        minVersion: this.#options.minVersion ?? CERTIFICATE_STORE_DEFAULTS.minVersion,
        ciphers: this.#options.ciphers ?? MODERN_CIPHERS,
        honorCipherOrder: true,
      });
    } catch (err) {
      throw new Fault('err:frontline:config:invalid_configuration', { internalMessage: `unusable certificate: ${(err as Error).message}`, cause: err });
    }
    const names = (hostnames ?? certificateHostnames(x509)).map((name) => name.toLowerCase());
    return { context, hostnames: names, validToMs: Date.parse(x509.validTo) };
  }

  /** Adds (or replaces) a certificate for its host names; returns them. New handshakes only. */
  add(source: CertificateSource, hostnames?: readonly string[]): readonly string[] {
    const entry = this.createEntry(source, hostnames);
    for (const name of entry.hostnames) this.#manual.set(name, entry);
    return entry.hostnames;
  }

  /** Removes the certificate served for `hostname` (exact key, `*.example.com` for a wildcard). */
  remove(hostname: string): boolean {
    return this.#manual.delete(hostname.toLowerCase());
  }

  /** Forgets loader results (e.g. after a certificate was renewed in the database). */
  invalidate(servername?: string): void {
    if (servername === undefined) this.#loaded.clear();
    else this.#loaded.delete(servername.toLowerCase());
  }

  /**
   * Reads every `*.pem` / `*.crt` certificate in `dir` with its key (`<name>.key`, or a
   * `PRIVATE KEY` block in the same file) and serves them; the directory is remembered for
   * `reload()`. Returns the files used and the errors of the others.
   */
  async loadDirectory(dir: string): Promise<{ loaded: string[]; errors: Fault[] }> {
    this.#directories.add(dir);
    return this.#reloadDirectories();
  }

  /** Re-reads every directory given to `loadDirectory` (call on SIGHUP); unchanged files keep their context. */
  async reload(): Promise<{ loaded: string[]; errors: Fault[] }> {
    return this.#reloadDirectories();
  }

  /** Watches `dir` (loading it first) and reloads after changes; `close()` stops watching. */
  async watchDirectory(dir: string): Promise<{ loaded: string[]; errors: Fault[] }> {
    const result = await this.loadDirectory(dir);
    const watcher = watch(dir, () => this.#scheduleReload());
    watcher.on('error', (err) => this.#report(new Fault('err:frontline:platform:config_load_failed', { internalMessage: `watching ${dir}: ${err.message}` })));
    this.#watchers.push(watcher);
    return result;
  }

  /**
   * The certificate for `servername` from the static tables (exact, then one-label wildcard),
   * else the default; undefined when none. Synchronous; per handshake.
   */
  lookup(servername: string): CertificateEntry | undefined {
    return this.#lookupStatic(servername.toLowerCase()) ?? this.#defaultEntry;
  }

  /** The session ticket keys of this store's listeners (shared or its own). */
  get ticketKeys(): SessionTicketKeys {
    return this.#ticketKeys;
  }

  /**
   * Makes a TLS server created from `serverOptions()` follow ticket key rotations (and accept the
   * previous key), including for clients that send no SNI. Once per server, after creating it.
   * Returns false when this Node cannot (the server keeps the key it was created with).
   */
  attachServer(server: TlsServer): boolean {
    return this.#ticketKeys.attach(server);
  }

  /** The `SNICallback` for `tls`/`https`/`http2` servers: per handshake; an error fails the handshake. */
  readonly sniCallback: (servername: string, callback: (err: Error | null, context?: SecureContext) => void) => void;

  #selectContext(servername: string, callback: (err: Error | null, context?: SecureContext) => void): void {
    const name = servername.toLowerCase();
    const found = this.#lookupStatic(name);
    if (found !== undefined) {
      callback(null, found.context);
      return;
    }
    if (this.#options.loader === undefined) {
      this.#answerDefault(name, callback);
      return;
    }
    this.#loadCached(name).then(
      (entry) => entry === undefined ? this.#answerDefault(name, callback) : callback(null, entry.context),
      () => this.#answerDefault(name, callback),
    );
  }

  /**
   * TLS server options using this store: SNI callback, TLS 1.2+, modern ciphers, the current
   * ticket key, ALPN (default `h2`, `http/1.1`) and the default certificate for clients without
   * SNI. Starts the rotation of keys this store owns (a store no listener uses never rotates).
   */
  serverOptions(alpnProtocols: readonly string[] = ['h2', 'http/1.1']): TlsOptions {
    if (this.#ownsTicketKeys && !this.#rotating) {
      this.#rotating = true;
      this.#ticketKeys.startRotation(this.#options.ticketKeyRotationMs ?? SESSION_TICKET_DEFAULTS.rotationIntervalMs);
    }
    const options: TlsOptions = {
      SNICallback: this.sniCallback,
      minVersion: this.#options.minVersion ?? CERTIFICATE_STORE_DEFAULTS.minVersion,
      ciphers: this.#options.ciphers ?? MODERN_CIPHERS,
      honorCipherOrder: true,
      ticketKeys: this.#ticketKeys.currentKey,
      ALPNProtocols: [...alpnProtocols],
    };
    const fallback = this.#options.defaultCertificate;
    if (fallback !== undefined) {
      options.cert = fallback.cert;
      options.key = fallback.key;
    }
    return options;
  }

  /** Stops directory watchers, pending reloads and the rotation of keys this store owns. */
  close(): void {
    if (this.#ownsTicketKeys) this.#ticketKeys.stopRotation();
    this.#rotating = false;
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers.length = 0;
    if (this.#reloadTimer !== undefined) clearTimeout(this.#reloadTimer);
    this.#reloadTimer = undefined;
  }

  #lookupStatic(name: string): CertificateEntry | undefined {
    const exact = this.#manual.get(name) ?? this.#fileIndex.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    if (dot <= 0) return undefined;
    const wildcard = '*' + name.slice(dot);
    return this.#manual.get(wildcard) ?? this.#fileIndex.get(wildcard);
  }

  #answerDefault(name: string, callback: (err: Error | null, context?: SecureContext) => void): void {
    if (this.#defaultEntry !== undefined) callback(null, this.#defaultEntry.context);
    else callback(Fault.expected('err:frontline:routing:config_not_found', { internalMessage: `no certificate for server name ${JSON.stringify(name)}` }));
  }

  async #loadCached(name: string): Promise<CertificateEntry | undefined> {
    const nowMs = this.#clock.nowMs();
    const cached = this.#loaded.get(name);
    if (cached !== undefined && cached.expiresAtMs > nowMs) return cached.entry;
    const inflight = this.#inflight.get(name);
    if (inflight !== undefined) return inflight;
    const promise = this.#loadWithTimeout(name).finally(() => this.#inflight.delete(name));
    this.#inflight.set(name, promise);
    return promise;
  }

  async #loadWithTimeout(name: string): Promise<CertificateEntry | undefined> {
    const loader = this.#options.loader!;
    const timeoutMs = this.#options.loaderTimeoutMs ?? CERTIFICATE_STORE_DEFAULTS.loaderTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    try {
      const source = await Promise.race([
        loader(name),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Fault('err:frontline:upstream:gateway_timeout', { internalMessage: `certificate loader timed out after ${timeoutMs} ms` })), timeoutMs);
        }),
      ]);
      const entry = source === undefined ? undefined : this.createEntry(source);
      const freshMs = entry === undefined
        ? (this.#options.negativeCacheMs ?? CERTIFICATE_STORE_DEFAULTS.negativeCacheMs)
        : (this.#options.loadedFreshMs ?? CERTIFICATE_STORE_DEFAULTS.loadedFreshMs);
      this.#remember(name, { entry, expiresAtMs: this.#clock.nowMs() + freshMs });
      return entry;
    } catch (err) {
      // Transient failures are not cached; a previously loaded certificate keeps serving.
      this.#report(Fault.from(err, 'err:frontline:platform:config_load_failed'));
      const stale = this.#loaded.get(name);
      return stale?.entry;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  #remember(name: string, loaded: LoadedEntry): void {
    const max = this.#options.maxLoadedEntries ?? CERTIFICATE_STORE_DEFAULTS.maxLoadedEntries;
    if (!this.#loaded.has(name) && this.#loaded.size >= max) {
      const oldest = this.#loaded.keys().next().value as string;
      this.#loaded.delete(oldest);
    }
    this.#loaded.set(name, loaded);
  }

  #scheduleReload(): void {
    if (this.#reloadTimer !== undefined) clearTimeout(this.#reloadTimer);
    this.#reloadTimer = setTimeout(() => {
      this.#reloadTimer = undefined;
      this.#reloadDirectories().catch((err: unknown) => this.#report(Fault.from(err, 'err:frontline:platform:config_load_failed')));
    }, this.#options.watchDebounceMs ?? CERTIFICATE_STORE_DEFAULTS.watchDebounceMs);
    this.#reloadTimer.unref();
  }

  async #reloadDirectories(): Promise<{ loaded: string[]; errors: Fault[] }> {
    // One reload at a time; a second request waits for the first and then runs again.
    while (this.#reloading !== undefined) await this.#reloading;
    let done!: () => void;
    this.#reloading = new Promise((resolve) => { done = resolve; });
    try {
      return await this.#readDirectories();
    } finally {
      this.#reloading = undefined;
      done();
    }
  }

  async #readDirectories(): Promise<{ loaded: string[]; errors: Fault[] }> {
    const loaded: string[] = [];
    const errors: Fault[] = [];
    const next = new Map<string, FileEntry>();
    for (const dir of this.#directories) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        errors.push(new Fault('err:frontline:platform:config_load_failed', { internalMessage: `reading ${dir}: ${(err as Error).message}`, cause: err }));
        continue;
      }
      for (const name of names.sort()) {
        if (!name.endsWith('.pem') && !name.endsWith('.crt')) continue;
        const file = join(dir, name);
        try {
          const certText = await readFile(file, 'utf8');
          if (!certText.includes('-----BEGIN CERTIFICATE-----')) continue;
          const key = certText.includes('PRIVATE KEY-----') ? certText : await readFile(file.replace(/\.(pem|crt)$/, '.key'), 'utf8');
          const fingerprint = certText + '\0' + key;
          const previous = this.#fromFiles.get(file);
          next.set(file, previous?.fingerprint === fingerprint ? previous : { fingerprint, entry: this.createEntry({ cert: certText, key }) });
          loaded.push(file);
        } catch (err) {
          const fault = Fault.from(err, 'err:frontline:config:invalid_configuration');
          errors.push(new Fault(fault.code, { internalMessage: `${file}: ${fault.internalMessage}`, cause: err }));
          // A half-written renewal (cert without its new key): keep serving the previous pair.
          const previous = this.#fromFiles.get(file);
          if (previous !== undefined) next.set(file, previous);
        }
      }
    }
    const index = new Map<string, CertificateEntry>();
    for (const { entry } of next.values()) for (const name of entry.hostnames) index.set(name, entry);
    this.#fromFiles = next;
    this.#fileIndex = index;
    for (const error of errors) this.#report(error);
    return { loaded, errors };
  }

  #report(fault: Fault): void {
    this.#options.onError?.(fault);
  }
}

/** The DNS names a certificate covers: its subjectAltName DNS entries, else its common name. */
export function certificateHostnames(x509: X509Certificate): string[] {
  const names: string[] = [];
  for (const part of (x509.subjectAltName ?? '').split(',')) {
    const trimmed = part.trim();
    if (trimmed.startsWith('DNS:')) names.push(trimmed.slice(4));
  }
  if (names.length === 0) {
    const match = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject);
    if (match !== null) names.push(match[1]!);
  }
  return names;
}
