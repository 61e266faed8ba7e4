/**
 * ACME HTTP-01 challenge stores: where Frontline's HTTP listener finds the key authorization for
 * `GET /.well-known/acme-challenge/<token>`. An ACME client (keygate's control plane, certbot,
 * acme-client) puts the answer in; the CA fetches it over port 80. Two implementations:
 * in memory (bounded, with a time to live) and a directory in certbot's "webroot" layout (one
 * file per token), which suits the drop-in ingress mode.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../core/clock.ts';
import type { Clock } from '../../core/clock.ts';

/** Looks up the key authorization of a challenge token; undefined when unknown. Per challenge request. */
export interface AcmeChallengeStore {
  /** `host` is the normalised request host (a store may bind tokens to a domain). */
  get(token: string, host: string): string | undefined | Promise<string | undefined>;
}

/** ACME tokens are base64url (RFC 8555 §8.3); anything else is rejected before any lookup. */
export const ACME_TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,256}$/;

/** Defaults of {@link MemoryAcmeChallengeStore}. */
export const MEMORY_ACME_DEFAULTS = {
  /** How long a challenge answer is served (default 1 h; validation takes seconds). */
  ttlMs: 60 * 60_000,
  /** Most challenges held at once; the oldest is dropped beyond it. */
  maxEntries: 10_000,
} as const;

interface ChallengeEntry {
  keyAuthorization: string;
  host: string | undefined;
  expiresAtMs: number;
}

/** Challenges held in memory, bounded and expiring. */
export class MemoryAcmeChallengeStore implements AcmeChallengeStore {
  readonly #entries = new Map<string, ChallengeEntry>();
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #maxEntries: number;

  constructor(options: { clock?: Clock; ttlMs?: number; maxEntries?: number } = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#ttlMs = options.ttlMs ?? MEMORY_ACME_DEFAULTS.ttlMs;
    this.#maxEntries = options.maxEntries ?? MEMORY_ACME_DEFAULTS.maxEntries;
  }

  /** Serves `keyAuthorization` for `token` (only for `host` when given). Throws a TypeError on a malformed token. */
  set(token: string, keyAuthorization: string, options: { host?: string; ttlMs?: number } = {}): void {
    if (!ACME_TOKEN_PATTERN.test(token)) throw new TypeError('ACME token must be base64url');
    this.#entries.delete(token);
    if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(token, {
      keyAuthorization,
      host: options.host?.toLowerCase(),
      expiresAtMs: this.#clock.nowMs() + (options.ttlMs ?? this.#ttlMs),
    });
  }

  /** Stops serving `token` (after validation). */
  remove(token: string): void {
    this.#entries.delete(token);
  }

  get(token: string, host: string): string | undefined {
    const entry = this.#entries.get(token);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= this.#clock.nowMs()) {
      this.#entries.delete(token);
      return undefined;
    }
    if (entry.host !== undefined && entry.host !== host) return undefined;
    return entry.keyAuthorization;
  }
}

/** Largest challenge file read (a key authorization is about 90 bytes). */
export const MAX_CHALLENGE_FILE_BYTES = 4096;

/** Challenges as files `<dir>/<token>` (certbot `--webroot` writes `<webroot>/.well-known/acme-challenge/<token>`). */
export class DirectoryAcmeChallengeStore implements AcmeChallengeStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async get(token: string): Promise<string | undefined> {
    // The token pattern excludes '/', '.', and '\\': no path can escape the directory.
    if (!ACME_TOKEN_PATTERN.test(token)) return undefined;
    try {
      const content = await readFile(join(this.dir, token));
      if (content.length > MAX_CHALLENGE_FILE_BYTES) return undefined;
      return content.toString('utf8').trim();
    } catch {
      return undefined;
    }
  }
}

/** Asks several stores in order; the first answer wins. */
export class ChainedAcmeChallengeStore implements AcmeChallengeStore {
  readonly #stores: readonly AcmeChallengeStore[];

  constructor(stores: readonly AcmeChallengeStore[]) {
    this.#stores = stores;
  }

  async get(token: string, host: string): Promise<string | undefined> {
    for (const store of this.#stores) {
      const answer = await store.get(token, host);
      if (answer !== undefined) return answer;
    }
    return undefined;
  }
}
