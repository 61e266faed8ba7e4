/**
 * `createInProcessVault`: the easy way for another role (the API's recoverable keys, the
 * certificate store) to get a working `VaultClient` in the same process, without a network hop.
 * With no options it runs on memory storage with a fresh random master key, which suits tests;
 * production wiring in `bin/` passes the configured master keys and storage.
 */
import type { Clock } from '../core/clock.ts';
import type { Metrics } from '../core/metrics.ts';
import { Keyring, type KeyringOptions } from './keyring/keyring.ts';
import { MasterKeys } from './keyring/master-keys.ts';
import { VaultService } from './service/vault-service.ts';
import { MemoryStorage } from './storage/memory.ts';
import type { VaultStorage } from './storage/vault-storage.ts';

/** Options of {@link createInProcessVault}; everything is optional. */
export interface InProcessVaultOptions {
  /** Master keys in config form, current first. Default: one fresh random key (lost on exit). */
  masterKeys?: readonly string[];
  /** Default: a new `MemoryStorage`. */
  storage?: VaultStorage;
  clock?: Clock;
  metrics?: Metrics;
  /** Cache windows and bounds, see `KeyringOptions`. */
  cache?: Pick<KeyringOptions, 'latestFreshMs' | 'latestStaleMs' | 'dekFreshMs' | 'dekStaleMs' | 'missingDekFreshMs' | 'maxCachedDeks'>;
  /** Largest plaintext accepted, in UTF-8 bytes. Default 4 MiB. */
  maxDataBytes?: number;
  /** Most items per bulk call. Default 1000. */
  maxBulkItems?: number;
}

/** A `VaultService` (which implements `VaultClient`) over a new keyring. */
export function createInProcessVault(options: InProcessVaultOptions = {}): VaultService {
  const keyring = new Keyring({
    storage: options.storage ?? new MemoryStorage(),
    masterKeys: options.masterKeys === undefined ? MasterKeys.generate() : MasterKeys.parse(options.masterKeys),
    clock: options.clock,
    metrics: options.metrics,
    ...options.cache,
  });
  return new VaultService({ keyring, metrics: options.metrics, maxDataBytes: options.maxDataBytes, maxBulkItems: options.maxBulkItems });
}
