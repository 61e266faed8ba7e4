/**
 * `VaultService`: the Vault's operations (spec controlplane.md §1.6) over a `Keyring`, with
 * request validation and bounds. It implements the core `VaultClient` contract, so it is also
 * the in-process client: a role running in the same process calls it directly, and the Connect
 * server (`vault-http-server.ts`) calls the same methods for remote callers.
 *
 * Differences from the reference: each failure keeps its own code (bad input, malformed or
 * tampered payload, unknown DEK, unknown KEK, storage corrupted or unavailable) instead of one
 * code per method, and a failing bulk item names its id. Strings must be well-formed Unicode
 * (a lone surrogate cannot round-trip through UTF-8).
 */
import { Fault } from '../../core/fault.ts';
import type { Metrics } from '../../core/metrics.ts';
import type {
  VaultClient,
  VaultDecryptBulkRequest,
  VaultDecryptBulkResponse,
  VaultDecryptRequest,
  VaultDecryptResponse,
  VaultEncryptBulkRequest,
  VaultEncryptBulkResponse,
  VaultEncryptRequest,
  VaultEncryptResponse,
  VaultReEncryptRequest,
} from '../../core/vault-client.ts';
import type { Keyring, KeyringEncryptResult } from '../keyring/keyring.ts';

/** Options of {@link VaultService}. */
export interface VaultServiceOptions {
  keyring: Keyring;
  /** Largest plaintext accepted by Encrypt, in UTF-8 bytes. Default 4 MiB. */
  maxDataBytes?: number;
  /** Most items in one bulk call. Default 1000. */
  maxBulkItems?: number;
  /** Where `keygate_vault_operations_total` is registered; none when absent. */
  metrics?: Metrics;
}

type Operation = 'encrypt' | 'decrypt' | 'reencrypt' | 'encrypt_bulk' | 'decrypt_bulk';

const OPERATIONS_METRIC = 'keygate_vault_operations_total';
type OperationsCounter = ReturnType<Metrics['counter']>;
const OPERATIONS: readonly Operation[] = ['encrypt', 'decrypt', 'reencrypt', 'encrypt_bulk', 'decrypt_bulk'];

/** The service; one per process, methods called per request. */
export class VaultService implements VaultClient {
  readonly keyring: Keyring;
  readonly maxDataBytes: number;
  readonly maxBulkItems: number;
  readonly #operations: OperationsCounter | undefined;
  // Successes are counted in plain numbers and published when metrics are scraped: a labelled
  // prom-client inc() costs a few hundred ns, as much as parsing the payload.
  readonly #okCounts: Record<Operation, number> = { encrypt: 0, decrypt: 0, reencrypt: 0, encrypt_bulk: 0, decrypt_bulk: 0 };

  constructor(options: VaultServiceOptions) {
    this.keyring = options.keyring;
    this.maxDataBytes = options.maxDataBytes ?? 4 * 1024 * 1024;
    this.maxBulkItems = options.maxBulkItems ?? 1000;
    const metrics = options.metrics;
    this.#operations = metrics?.counter(OPERATIONS_METRIC, 'Vault operations by operation and result (ok, or the fault code).', ['operation', 'result']);
    if (metrics !== undefined && this.#operations !== undefined) this.#publishOkCounts(metrics, this.#operations);
  }

  async liveness(): Promise<{ status: string }> {
    return { status: 'ok' };
  }

  encrypt(request: VaultEncryptRequest): Promise<VaultEncryptResponse> {
    // Fast path: when the keyring's DEK is cached the whole call is synchronous, one promise.
    let keyring: string;
    let plaintext: Buffer;
    try {
      keyring = request?.keyring;
      assertString(keyring, 'keyring');
      plaintext = this.#plaintextOf(request?.data, 'data');
      const result = this.keyring.tryEncryptSync(keyring, plaintext);
      if (result !== undefined) {
        this.#okCounts.encrypt++;
        return Promise.resolve({ encrypted: result.encrypted, keyId: result.dekId });
      }
    } catch (err) {
      this.#countFault('encrypt', err);
      return Promise.reject(err);
    }
    return this.#measure('encrypt', async () => toEncryptResponse(await this.keyring.encrypt(keyring, plaintext)));
  }

  decrypt(request: VaultDecryptRequest): Promise<VaultDecryptResponse> {
    let keyring: string;
    let encrypted: string;
    try {
      keyring = request?.keyring;
      encrypted = request?.encrypted;
      assertString(keyring, 'keyring');
      assertString(encrypted, 'encrypted');
      const plaintext = this.keyring.tryDecryptSync(keyring, encrypted);
      if (plaintext !== undefined) {
        this.#okCounts.decrypt++;
        return Promise.resolve({ plaintext: plaintext.toString('utf8') });
      }
    } catch (err) {
      this.#countFault('decrypt', err);
      return Promise.reject(err);
    }
    return this.#measure('decrypt', async () => ({ plaintext: (await this.keyring.decrypt(keyring, encrypted)).toString('utf8') }));
  }

  reEncrypt(request: VaultReEncryptRequest): Promise<VaultEncryptResponse> {
    return this.#measure('reencrypt', async () => {
      // keyId is ignored (as in the reference): re-encryption always targets the current DEK.
      assertString(request?.keyring, 'keyring');
      assertString(request?.encrypted, 'encrypted');
      return toEncryptResponse(await this.keyring.reEncrypt(request.keyring, request.encrypted));
    });
  }

  encryptBulk(request: VaultEncryptBulkRequest): Promise<VaultEncryptBulkResponse> {
    return this.#measure('encrypt_bulk', async () => {
      const entries = this.#bulkEntries(request?.items);
      const results: Array<[string, VaultEncryptResponse]> = [];
      for (const [id, data] of entries) {
        results.push([id, await withItemId(id, () => this.#encryptOne(request.keyring, data, `items.${id}`))]);
      }
      // fromEntries defines own properties, so an id such as "__proto__" stays an ordinary key.
      return { items: Object.fromEntries(results) };
    });
  }

  decryptBulk(request: VaultDecryptBulkRequest): Promise<VaultDecryptBulkResponse> {
    return this.#measure('decrypt_bulk', async () => {
      const entries = this.#bulkEntries(request?.items);
      const results: Array<[string, string]> = [];
      for (const [id, encrypted] of entries) {
        results.push([id, await withItemId(id, () => this.#decryptOne(request.keyring, encrypted, `items.${id}`))]);
      }
      return { items: Object.fromEntries(results) };
    });
  }

  /** The service owns nothing that needs closing; the storage is closed by whoever opened it. */
  async close(): Promise<void> {}

  /** One bulk item: synchronous when its DEK is cached, so a bulk call awaits only real loads. */
  #encryptOne(keyring: unknown, data: unknown, field: string): VaultEncryptResponse | Promise<VaultEncryptResponse> {
    assertString(keyring, 'keyring');
    const plaintext = this.#plaintextOf(data, field);
    const result = this.keyring.tryEncryptSync(keyring, plaintext);
    if (result !== undefined) return toEncryptResponse(result);
    return this.keyring.encrypt(keyring, plaintext).then(toEncryptResponse);
  }

  #decryptOne(keyring: unknown, encrypted: unknown, field: string): string | Promise<string> {
    assertString(keyring, 'keyring');
    assertString(encrypted, field);
    const plaintext = this.keyring.tryDecryptSync(keyring, encrypted);
    if (plaintext !== undefined) return plaintext.toString('utf8');
    return this.keyring.decrypt(keyring, encrypted).then((bytes) => bytes.toString('utf8'));
  }

  /** Validates a plaintext string and returns its UTF-8 bytes. */
  #plaintextOf(data: unknown, field: string): Buffer {
    assertString(data, field);
    // UTF-8 is at most 3 bytes per UTF-16 unit: skip the exact count for obviously small strings.
    if (data.length * 3 > this.maxDataBytes && Buffer.byteLength(data) > this.maxDataBytes) {
      throw invalid(`${field} is larger than ${this.maxDataBytes} bytes`);
    }
    if (!data.isWellFormed()) throw invalid(`${field} is not well-formed Unicode (lone surrogate)`);
    return Buffer.from(data, 'utf8');
  }

  #bulkEntries(items: unknown): Array<[string, unknown]> {
    if (items === undefined || items === null) return [];
    if (typeof items !== 'object' || Array.isArray(items)) throw invalid('items must be an object mapping ids to strings');
    const entries = Object.entries(items);
    if (entries.length > this.maxBulkItems) throw invalid(`at most ${this.maxBulkItems} items per call`);
    return entries;
  }

  async #measure<T>(operation: Operation, run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      this.#okCounts[operation]++;
      return result;
    } catch (err) {
      this.#countFault(operation, err);
      throw err;
    }
  }

  #countFault(operation: Operation, err: unknown): void {
    this.#operations?.inc({ operation, result: err instanceof Fault ? err.code : 'error' });
  }

  /** Publishes the success counts (as deltas since the last scrape) whenever the metric is collected. */
  #publishOkCounts(metrics: Metrics, counter: OperationsCounter): void {
    const published: Record<Operation, number> = { encrypt: 0, decrypt: 0, reencrypt: 0, encrypt_bulk: 0, decrypt_bulk: 0 };
    const children = OPERATIONS.map((operation) => [operation, counter.labels({ operation, result: 'ok' })] as const);
    metrics.onCollect(OPERATIONS_METRIC, () => {
      for (const [operation, child] of children) {
        const delta = this.#okCounts[operation] - published[operation];
        if (delta > 0) child.inc(delta);
        published[operation] = this.#okCounts[operation];
      }
    });
  }
}

function toEncryptResponse(result: KeyringEncryptResult): VaultEncryptResponse {
  return { encrypted: result.encrypted, keyId: result.dekId };
}

async function withItemId<T>(id: string, run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof Fault)) throw err;
    // Keep the item's own code; name the item so the caller knows which one failed.
    throw new Fault(err.code, {
      source: err.source,
      retryable: err.retryable,
      publicMessage: `item ${JSON.stringify(id)}: ${err.publicMessage}`,
      internalMessage: `item ${JSON.stringify(id)}: ${err.internalMessage}`,
      cause: err,
    });
  }
}

function assertString(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string') throw invalid(`${field} must be a string`);
}

function invalid(message: string): Fault {
  return Fault.expected('err:vault:request:invalid_argument', { publicMessage: `Invalid request: ${message}.` });
}
