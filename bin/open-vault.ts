/**
 * `openVault`: the one place the CLI turns the `vault.*` config into a `VaultClient`, shared by
 * `keygate api` (recoverable keys), `keygate certificates import` and `keygate frontline --db`
 * (certificate private keys). A remote Vault when `vault.url` is set (with `vault.bearerToken`
 * and `vault.requestTimeoutMs`), else an in-process one over `vault.masterKeys` and
 * `vault.storage`, else none. `keygate vault` itself opens the same storage through
 * {@link openVaultStorage}.
 *
 * The handle closes everything it opened: the remote client's connections, or the storage
 * (an S3 client) under the in-process service, which does not own its storage.
 */
import { resolve } from 'node:path';
import type { KeygateConfig } from '../core/config/schema.ts';
import { Fault } from '../core/fault.ts';
import type { VaultClient } from '../core/vault-client.ts';
import type { VaultStorage } from '../vault/storage/vault-storage.ts';

/** An opened Vault: the client, how it was reached, and how to release it. */
export interface OpenedVault {
  readonly client: VaultClient;
  /** `remote` (vault.url) or `in-process` (vault.masterKeys + vault.storage). */
  readonly kind: 'remote' | 'in-process';
  /** One line for start-up output, without secrets: `vault: remote http://…` or `vault: in process (storage: disk)`. */
  readonly summary: string;
  /** Closes the client and anything opened for it (the storage). Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link openVault}. */
export interface OpenVaultOptions {
  /** Refuse `vault.storage: "memory:"`: for callers whose ciphertexts must outlive the process (certificate import). */
  requireDurableStorage?: boolean;
}

/**
 * Opens the Vault the config names, or resolves to undefined when it names none (neither
 * `vault.url` nor `vault.masterKeys`). Relative storage directories are resolved against `cwd`.
 * Called once per command start. Throws a config `Fault` when `vault.url` lacks
 * `vault.bearerToken`, and the storage's fault when it cannot be opened.
 */
export async function openVault(config: KeygateConfig, cwd: string, options: OpenVaultOptions = {}): Promise<OpenedVault | undefined> {
  const settings = config.vault;
  if (settings.url !== undefined) {
    if (settings.bearerToken === undefined) {
      throw new Fault('err:keygate:config:invalid', { publicMessage: 'vault.url needs vault.bearerToken (KEYGATE_VAULT_BEARER_TOKEN or --vault-bearer-token)' });
    }
    const { RemoteVaultClient } = await import('../core/vault-client.ts');
    const client = new RemoteVaultClient({ baseUrl: settings.url, bearerToken: settings.bearerToken, timeoutMs: settings.requestTimeoutMs });
    return { client, kind: 'remote', summary: `vault: remote ${settings.url}`, close: once(() => client.close()) };
  }
  const masterKeys = settings.masterKeys;
  if (masterKeys === undefined || masterKeys.length === 0) return undefined;
  if (options.requireDurableStorage === true && settings.storage === 'memory:') {
    // A memory keyring dies with this process: nothing could ever decrypt what it encrypted.
    throw new Fault('err:keygate:config:invalid', { publicMessage: 'vault.storage "memory:" cannot be used here: the data key would be lost on exit' });
  }
  const storage = await openVaultStorage(config, cwd);
  try {
    const { createInProcessVault } = await import('../vault/in-process-vault.ts');
    const client = createInProcessVault({
      masterKeys,
      storage,
      cache: { latestFreshMs: settings.latestFreshMs, maxCachedDeks: settings.maxCachedKeys },
    });
    return {
      client,
      kind: 'in-process',
      summary: `vault: in process (storage: ${storage.kind})`,
      close: once(async () => {
        await client.close();
        await storage.close();
      }),
    };
  } catch (err) {
    // A bad master key must not leave an S3 client open behind the thrown fault.
    await storage.close();
    throw err;
  }
}

/**
 * Opens `vault.storage`: a directory (relative to `cwd`), `memory:`, or `s3://bucket[/prefix]`
 * with the `vault.s3.*` settings and `vault.requestTimeoutMs`. The caller closes it.
 */
export async function openVaultStorage(config: KeygateConfig, cwd: string): Promise<VaultStorage> {
  const { openStorage } = await import('../vault/storage/open-storage.ts');
  const location = config.vault.storage;
  const isDirectory = !location.startsWith('s3://') && location !== 'memory:';
  const s3 = config.vault.s3;
  return openStorage(isDirectory ? resolve(cwd, location) : location, {
    endpoint: s3.endpoint,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    createBucket: s3.createBucket,
    requestTimeoutMs: config.vault.requestTimeoutMs,
  });
}

function once(close: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= close());
}
