/**
 * `Keyring`: envelope encryption over a `VaultStorage` (spec controlplane.md §1.1–1.8).
 *
 * Data flow. Encrypt: keyring name → its LATEST DEK (cache → storage → created on first use) →
 * AES-256-GCM → payload string. Decrypt: payload string → strict decode → the DEK named inside
 * it, looked up under the caller's keyring (cache → storage → unwrapped with the KEK named in the
 * stored object) → AES-256-GCM open. The keyring is not inside the payload; isolation comes from
 * the path `keyring/<ring>/<dek_id>`, so a payload presented under another keyring finds no DEK.
 *
 * Differences from the reference (its pitfalls list), each covered by a test:
 * - distinct coded faults: malformed payload, tampered/wrong key (decryption_failed), unknown
 *   DEK, unknown KEK, storage unavailable, storage corrupted;
 * - a stored DEK must decode to the id it was asked for (the reference never checked);
 * - concurrent first use of a keyring creates one DEK: one load per ring in this process, and a
 *   create-if-absent of LATEST across processes sharing the storage;
 * - the LATEST cache has a short fresh window and is revalidated, so a DEK rolled on another
 *   node is picked up within `latestFreshMs`, and ReEncrypt re-reads only its own keyring;
 * - `rewrapDeks` re-wraps LATEST too, so dropping an old KEK after it never breaks Encrypt.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { Clock } from '../../core/clock.ts';
import { systemClock } from '../../core/clock.ts';
import { SwrCache } from '../../core/cache/swr-cache.ts';
import { Fault } from '../../core/fault.ts';
import { newId } from '../../core/id.ts';
import type { Metrics } from '../../core/metrics.ts';
import { AES_256_KEY_BYTES, AES_GCM_NONCE_BYTES, AES_GCM_TAG_BYTES, openAesGcm, sealAesGcm } from './aes-gcm.ts';
import { assertKeyringName } from './keyring-name.ts';
import type { MasterKeys } from './master-keys.ts';
import { decodePayload, DEK_ID_PATTERN, sealPayload, type EncryptedPayload } from './payload.ts';
import { int64ToNumber, vaultProto } from '../proto/vault-proto.ts';
import type { VaultStorage } from '../storage/vault-storage.ts';

/** An unwrapped data key. Held only in memory, never logged. */
export interface DataKey {
  readonly id: string;
  readonly createdAtMs: number;
  readonly key: KeyObject;
}

/** Construction options; every window and bound has a default. */
export interface KeyringOptions {
  storage: VaultStorage;
  masterKeys: MasterKeys;
  clock?: Clock;
  /** Where the DEK caches register their `keygate_cache_*` metrics. */
  metrics?: Metrics;
  /** How long a keyring's LATEST DEK is used without re-reading storage, in ms. Default 60 s. */
  latestFreshMs?: number;
  /** How long a LATEST DEK may be served while its re-read runs or storage is down, in ms. Default 1 h. */
  latestStaleMs?: number;
  /** Fresh window of a DEK looked up by id, in ms (DEKs are immutable). Default 1 h. */
  dekFreshMs?: number;
  /** Stale window of a DEK looked up by id, in ms. Default 24 h. */
  dekStaleMs?: number;
  /** How long "no such DEK" is remembered, in ms; keeps bogus ids off storage. Default 1 s. */
  missingDekFreshMs?: number;
  /** Most DEKs (and most LATEST entries) cached. Default 10,000 each. */
  maxCachedDeks?: number;
}

/** What {@link Keyring.encrypt} returns. */
export interface KeyringEncryptResult {
  /** The payload string (base64 of the protobuf `Encrypted`). */
  encrypted: string;
  /** Id of the DEK that sealed it. */
  dekId: string;
}

/** How many stored DEK objects {@link Keyring.rewrapDeks} looked at and re-wrapped. */
export interface RewrapReport {
  examined: number;
  rewrapped: number;
}

// How often a first use re-reads LATEST after losing the create race before giving up (a store
// may briefly report a conflicting conditional write still in flight).
const LATEST_RACE_READS = 5;

/** The keyring. One per Vault process; methods are called per request. */
export class Keyring {
  readonly storage: VaultStorage;
  readonly masterKeys: MasterKeys;
  readonly #clock: Clock;
  readonly #latestCache: SwrCache<DataKey>;
  readonly #dekCache: SwrCache<DataKey>;
  readonly #loadLatest = (latestKey: string): Promise<DataKey> => this.#readOrCreateLatest(latestKey);
  readonly #loadDek = (objectKey: string): Promise<DataKey | undefined> => this.#readDek(objectKey);

  constructor(options: KeyringOptions) {
    this.storage = options.storage;
    this.masterKeys = options.masterKeys;
    this.#clock = options.clock ?? systemClock;
    const maxEntries = options.maxCachedDeks ?? 10_000;
    this.#latestCache = new SwrCache<DataKey>({
      name: 'vault_latest_dek',
      freshMs: options.latestFreshMs ?? 60_000,
      staleMs: options.latestStaleMs ?? 3_600_000,
      maxEntries,
      clock: this.#clock,
      metrics: options.metrics,
    });
    this.#dekCache = new SwrCache<DataKey>({
      name: 'vault_dek',
      freshMs: options.dekFreshMs ?? 3_600_000,
      staleMs: options.dekStaleMs ?? 86_400_000,
      negativeFreshMs: options.missingDekFreshMs ?? 1_000,
      negativeStaleMs: options.missingDekFreshMs ?? 1_000,
      maxEntries,
      clock: this.#clock,
      metrics: options.metrics,
    });
  }

  /**
   * Seals `plaintext` under the keyring's current DEK, creating the keyring's first DEK on first
   * use. Fails with `invalid_argument` (bad keyring name) or a storage fault.
   */
  encrypt(keyring: string, plaintext: Uint8Array): Promise<KeyringEncryptResult> {
    try {
      const result = this.tryEncryptSync(keyring, plaintext);
      if (result !== undefined) return Promise.resolve(result);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#encryptAfterLoad(keyring, plaintext);
  }

  /**
   * The synchronous fast path of {@link Keyring.encrypt}: the result when the keyring's current
   * DEK is cached (fresh or stale), `undefined` when it must be loaded first (then call
   * `encrypt`). Throws the same faults as `encrypt`. Per request; allocates no promise.
   */
  tryEncryptSync(keyring: string, plaintext: Uint8Array): KeyringEncryptResult | undefined {
    assertKeyringName(keyring);
    const dek = this.#latestCache.getSync(objectKeyOf(keyring, 'LATEST'), this.#loadLatest);
    if (dek === SwrCache.MISS || dek === undefined) return undefined;
    return this.#sealWith(dek, plaintext);
  }

  /**
   * Opens a payload made by {@link Keyring.encrypt} under the same keyring. Faults:
   * `malformed_payload`, `dek_not_found` (unknown DEK, or another keyring's payload),
   * `decryption_failed` (tampered or wrong key), `kek_not_found`, `storage:corrupted`,
   * `storage:unavailable`. Never returns bytes that failed authentication.
   */
  decrypt(keyring: string, encrypted: string): Promise<Buffer> {
    let payload: EncryptedPayload;
    let dekKey: string;
    try {
      assertKeyringName(keyring);
      // Everything in the payload is validated before storage or crypto is touched.
      payload = decodePayload(encrypted);
      dekKey = objectKeyOf(keyring, payload.dekId);
      const dek = this.#dekCache.getSync(dekKey, this.#loadDek);
      if (dek !== SwrCache.MISS) return Promise.resolve(openWith(dek, payload));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#decryptAfterLoad(dekKey, payload);
  }

  /**
   * The synchronous fast path of {@link Keyring.decrypt}: the plaintext when the DEK the payload
   * names is cached, `undefined` when it must be loaded first (then call `decrypt`). Throws the
   * same faults as `decrypt` (the payload is validated first). Per request; allocates no promise.
   */
  tryDecryptSync(keyring: string, encrypted: string): Buffer | undefined {
    assertKeyringName(keyring);
    const payload = decodePayload(encrypted);
    const dek = this.#dekCache.getSync(objectKeyOf(keyring, payload.dekId), this.#loadDek);
    if (dek === SwrCache.MISS) return undefined;
    return openWith(dek, payload);
  }

  /**
   * Decrypts under `keyring` and encrypts again with the keyring's current DEK, re-read from
   * storage first so a DEK rolled on another node is used. Same faults as decrypt and encrypt.
   */
  async reEncrypt(keyring: string, encrypted: string): Promise<KeyringEncryptResult> {
    const plaintext = await this.decrypt(keyring, encrypted);
    const latestKey = objectKeyOf(keyring, 'LATEST');
    this.#latestCache.remove(latestKey);
    return this.#sealWith(await this.#latestOrThrow(latestKey), plaintext);
  }

  /**
   * Creates a new DEK for `keyring` and makes it the one new encryptions use (DEK rotation).
   * Older DEKs are kept, so older payloads still decrypt; `reEncrypt` moves them forward.
   * Returns the new DEK id. Crash-safe: the DEK object is written before LATEST points at it.
   */
  async rollDek(keyring: string): Promise<string> {
    assertKeyringName(keyring);
    const dek = newDataKey(this.#clock.nowMs());
    const wrapped = this.#wrap(dek);
    await this.storage.put(objectKeyOf(keyring, dek.id), wrapped);
    await this.storage.put(objectKeyOf(keyring, 'LATEST'), wrapped);
    this.#dekCache.set(objectKeyOf(keyring, dek.id), dek);
    this.#latestCache.set(objectKeyOf(keyring, 'LATEST'), dek);
    return dek.id;
  }

  /**
   * Re-wraps every stored DEK object (of one keyring, or of all), LATEST included, whose KEK is
   * not the current one (KEK rotation: configure the new key first, run this, then drop the old
   * key). Run it while no keyring is being rolled: a LATEST that changed under it is skipped,
   * which narrows but does not close that race on stores without compare-and-swap.
   */
  async rewrapDeks(keyring?: string): Promise<RewrapReport> {
    if (keyring !== undefined) assertKeyringName(keyring);
    const prefix = keyring === undefined ? 'keyring/' : `keyring/${keyring}/`;
    const report: RewrapReport = { examined: 0, rewrapped: 0 };
    for (const key of await this.storage.list(prefix)) {
      const name = key.slice(key.lastIndexOf('/') + 1);
      if (name !== 'LATEST' && !DEK_ID_PATTERN.test(name)) continue;
      if (keyring !== undefined && key !== `keyring/${keyring}/${name}`) continue;
      report.examined++;
      const bytes = await this.storage.get(key);
      if (bytes === undefined) continue;
      if (this.#kekIdOf(bytes, key) === this.masterKeys.current.id) continue;
      const dek = this.#unwrap(bytes, key, name === 'LATEST' ? undefined : name);
      if (name === 'LATEST') {
        const again = await this.storage.get(key);
        if (again === undefined || Buffer.compare(again, bytes) !== 0) continue;
      }
      await this.storage.put(key, this.#wrap(dek));
      report.rewrapped++;
    }
    return report;
  }

  /** Id of the keyring's current DEK (creating the first one if needed). For tests and tools. */
  async currentDekId(keyring: string): Promise<string> {
    assertKeyringName(keyring);
    return (await this.#latestOrThrow(objectKeyOf(keyring, 'LATEST'))).id;
  }

  /** Forgets every cached DEK (they are re-read from storage on next use). */
  clearCache(): void {
    this.#latestCache.clear();
    this.#dekCache.clear();
  }

  async #encryptAfterLoad(keyring: string, plaintext: Uint8Array): Promise<KeyringEncryptResult> {
    return this.#sealWith(await this.#latestOrThrow(objectKeyOf(keyring, 'LATEST')), plaintext);
  }

  async #decryptAfterLoad(dekKey: string, payload: EncryptedPayload): Promise<Buffer> {
    return openWith(await this.#dekCache.get(dekKey, this.#loadDek), payload);
  }

  #sealWith(dek: DataKey, plaintext: Uint8Array): KeyringEncryptResult {
    return { encrypted: sealPayload(dek.key, plaintext, dek.id, this.#clock.nowMs()), dekId: dek.id };
  }

  async #latestOrThrow(latestKey: string): Promise<DataKey> {
    const dek = await this.#latestCache.get(latestKey, this.#loadLatest);
    if (dek === undefined) throw new Fault('err:unkey:application:assertion_failed', { internalMessage: 'LATEST loader returned nothing' });
    return dek;
  }

  async #readOrCreateLatest(latestKey: string): Promise<DataKey> {
    const keyringPrefix = latestKey.slice(0, -'LATEST'.length);
    for (let attempt = 0; attempt < LATEST_RACE_READS; attempt++) {
      const bytes = await this.storage.get(latestKey);
      if (bytes !== undefined) return this.#remember(keyringPrefix, this.#unwrap(bytes, latestKey, undefined));
      if (attempt > 0) continue;
      // First use of this keyring: write the DEK object first, then claim LATEST only if nobody
      // else did. A crash between the two leaves an unused DEK object and no LATEST: the next use
      // simply creates another. The loser of a race adopts the winner's DEK on the next read.
      const dek = newDataKey(this.#clock.nowMs());
      const wrapped = this.#wrap(dek);
      await this.storage.put(keyringPrefix + dek.id, wrapped);
      if (await this.storage.putIfAbsent(latestKey, wrapped)) return this.#remember(keyringPrefix, dek);
    }
    throw new Fault('err:vault:storage:unavailable', {
      source: 'upstream',
      retryable: true,
      internalMessage: `${latestKey} was claimed by another writer but could not be read back`,
    });
  }

  #remember(keyringPrefix: string, dek: DataKey): DataKey {
    this.#dekCache.set(keyringPrefix + dek.id, dek);
    return dek;
  }

  async #readDek(objectKey: string): Promise<DataKey | undefined> {
    const bytes = await this.storage.get(objectKey);
    if (bytes === undefined) return undefined;
    return this.#unwrap(bytes, objectKey, objectKey.slice(objectKey.lastIndexOf('/') + 1));
  }

  #wrap(dek: DataKey): Uint8Array {
    const kek = this.masterKeys.current;
    const dekBytes = vaultProto.DataEncryptionKey.encode({
      id: dek.id,
      createdAt: dek.createdAtMs,
      key: dek.key.export(),
    }).finish();
    const sealed = sealAesGcm(kek.key, dekBytes);
    // The serialized DEK held the key in the clear; wipe our copy now that it is sealed.
    dekBytes.fill(0);
    return vaultProto.EncryptedDataEncryptionKey.encode({
      id: dek.id,
      createdAt: dek.createdAtMs,
      encrypted: { nonce: sealed.nonce, ciphertext: sealed.ciphertext, encryptionKeyId: kek.id, time: this.#clock.nowMs() },
    }).finish();
  }

  #kekIdOf(bytes: Uint8Array, objectKey: string): string {
    return this.#decodeStored(bytes, objectKey).encrypted.encryptionKeyId;
  }

  #decodeStored(bytes: Uint8Array, objectKey: string): StoredDek {
    let stored: { id?: string; createdAt?: unknown; encrypted?: Partial<StoredDek['encrypted']> };
    try {
      stored = vaultProto.EncryptedDataEncryptionKey.decode(bytes) as typeof stored;
    } catch {
      throw corrupted(objectKey, 'not an EncryptedDataEncryptionKey message');
    }
    const encrypted = stored.encrypted;
    if (
      !stored.id ||
      !encrypted ||
      !encrypted.encryptionKeyId ||
      encrypted.nonce?.length !== AES_GCM_NONCE_BYTES ||
      (encrypted.ciphertext?.length ?? 0) < AES_GCM_TAG_BYTES
    ) {
      throw corrupted(objectKey, 'missing id, KEK id, nonce or ciphertext');
    }
    return { id: stored.id, createdAtMs: int64ToNumber(stored.createdAt), encrypted: stored.encrypted as StoredDek['encrypted'] };
  }

  /** Unwraps a stored DEK object; `expectedId` is the id the object must hold (none for LATEST). */
  #unwrap(bytes: Uint8Array, objectKey: string, expectedId: string | undefined): DataKey {
    const stored = this.#decodeStored(bytes, objectKey);
    const kek = this.masterKeys.get(stored.encrypted.encryptionKeyId);
    if (kek === undefined) {
      throw new Fault('err:vault:keyring:kek_not_found', {
        publicMessage: 'The master key that wrapped this data key is not configured.',
        internalMessage: `${objectKey} is wrapped by KEK ${stored.encrypted.encryptionKeyId}, configured: ${this.masterKeys.ids().join(', ')}`,
      });
    }
    let dekBytes: Buffer;
    try {
      dekBytes = openAesGcm(kek.key, stored.encrypted.nonce, stored.encrypted.ciphertext);
    } catch {
      throw corrupted(objectKey, `cannot be unwrapped with KEK ${kek.id}: the object is corrupted or that master key differs`);
    }
    try {
      let decoded: { id?: string; createdAt?: unknown; key?: Uint8Array };
      try {
        decoded = vaultProto.DataEncryptionKey.decode(dekBytes) as typeof decoded;
      } catch {
        throw corrupted(objectKey, 'the unwrapped bytes are not a DataEncryptionKey');
      }
      const id = decoded.id ?? '';
      // The reference never checked this: a DEK object must hold the DEK its path names.
      if (!DEK_ID_PATTERN.test(id) || id !== stored.id || (expectedId !== undefined && id !== expectedId)) {
        throw corrupted(objectKey, `holds DEK ${JSON.stringify(id)}, expected ${expectedId ?? stored.id}`);
      }
      if (!decoded.key || decoded.key.length !== AES_256_KEY_BYTES) throw corrupted(objectKey, 'the DEK is not 32 bytes');
      // The outer created_at is unauthenticated; it must agree with the sealed one.
      const createdAtMs = int64ToNumber(decoded.createdAt);
      if (createdAtMs !== stored.createdAtMs) throw corrupted(objectKey, 'created_at differs from the sealed DEK');
      // createSecretKey copies the material, so the decoded bytes (a view into dekBytes) can be wiped.
      return { id, createdAtMs, key: createSecretKey(decoded.key) };
    } finally {
      dekBytes.fill(0);
    }
  }
}

interface StoredDek {
  id: string;
  createdAtMs: number;
  encrypted: { nonce: Uint8Array; ciphertext: Uint8Array; encryptionKeyId: string };
}

/** The storage key of one object of a keyring: `keyring/<ring>/<name>`. */
export function objectKeyOf(keyring: string, name: string): string {
  return `keyring/${keyring}/${name}`;
}

/** Opens a validated payload with its DEK; `undefined` (no such DEK in this keyring) is a fault. */
function openWith(dek: DataKey | undefined, payload: EncryptedPayload): Buffer {
  if (dek === undefined) {
    throw Fault.expected('err:vault:keyring:dek_not_found', {
      publicMessage: 'The key that encrypted this payload does not exist in this keyring.',
    });
  }
  return openAesGcm(dek.key, payload.nonce, payload.ciphertext);
}

function newDataKey(createdAtMs: number): DataKey {
  const material = randomBytes(AES_256_KEY_BYTES);
  const key = createSecretKey(material);
  material.fill(0);
  return { id: newId('dek'), createdAtMs, key };
}

function corrupted(objectKey: string, detail: string): Fault {
  return new Fault('err:vault:storage:corrupted', {
    source: 'upstream',
    publicMessage: 'A stored data key is corrupted or unreadable.',
    internalMessage: `${objectKey}: ${detail}`,
  });
}
