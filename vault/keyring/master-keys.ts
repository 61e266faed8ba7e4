/**
 * `MasterKeys`: the set of key-encryption keys (KEKs) a Vault holds. Exactly one is current and
 * wraps every new DEK; the others stay usable for unwrapping so that KEKs can rotate
 * (configure the new key first, re-wrap, then drop the old one).
 *
 * Config form of one key (spec controlplane.md §1.1): base64 (standard, padded) of the protobuf
 * `KeyEncryptionKey {id, created_at, key}`, as printed by `keygate vault keygen`. A bare base64
 * 32-byte key is accepted too; its id is then derived from the key so it stays stable across
 * restarts.
 */
import { createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { Fault } from '../../core/fault.ts';
import { randomAlphanumeric } from '../../core/id.ts';
import { AES_256_KEY_BYTES } from './aes-gcm.ts';
import { int64ToNumber, vaultProto } from '../proto/vault-proto.ts';

/** One KEK, its material held as a non-exportable-by-accident KeyObject. */
export interface MasterKey {
  readonly id: string;
  readonly createdAtMs: number;
  readonly key: KeyObject;
}

/** Most KEKs one Vault accepts at a time; a rotation needs two, a slow one three. */
export const MAX_MASTER_KEYS = 16;

/** Holds the KEKs: `current` wraps new DEKs, `byId` unwraps stored ones. */
export class MasterKeys {
  readonly current: MasterKey;
  readonly #byId: Map<string, MasterKey>;

  /** `keys[0]` is the current key; the rest are accepted for unwrapping only. */
  constructor(keys: readonly MasterKey[]) {
    if (keys.length === 0) throw configFault('at least one master key is required (vault.masterKeys)');
    if (keys.length > MAX_MASTER_KEYS) throw configFault(`at most ${MAX_MASTER_KEYS} master keys may be configured`);
    this.current = keys[0]!;
    this.#byId = new Map();
    for (const key of keys) {
      if (this.#byId.has(key.id)) throw configFault(`master key id ${key.id} is configured twice`);
      this.#byId.set(key.id, key);
    }
  }

  /**
   * Parses the config form (see the file comment). The first entry is current. Throws
   * `err:keygate:config:invalid` naming the position of a bad entry, never echoing its value.
   */
  static parse(encodedKeys: readonly string[]): MasterKeys {
    return new MasterKeys(encodedKeys.map((encoded, index) => parseMasterKey(encoded, index)));
  }

  /** A set with one fresh random key, for tests and the embedded single-process default. */
  static generate(createdAtMs = Date.now()): MasterKeys {
    return MasterKeys.parse([generateMasterKey(createdAtMs)]);
  }

  /** The KEK with this id, or undefined. */
  get(id: string): MasterKey | undefined {
    return this.#byId.get(id);
  }

  /** Ids of every configured KEK, current first. */
  ids(): string[] {
    return [...this.#byId.keys()];
  }
}

/**
 * A new master key in config form: base64 of a protobuf `KeyEncryptionKey` with a `kek_` id,
 * the creation time and 32 bytes from the crypto RNG. Used by `keygate vault keygen`.
 */
export function generateMasterKey(createdAtMs = Date.now()): string {
  const message = vaultProto.KeyEncryptionKey.create({
    id: 'kek_' + randomAlphanumeric(24),
    createdAt: createdAtMs,
    key: randomBytes(AES_256_KEY_BYTES),
  });
  return Buffer.from(vaultProto.KeyEncryptionKey.encode(message).finish()).toString('base64');
}

function parseMasterKey(encoded: string, index: number): MasterKey {
  const where = `vault.masterKeys[${index}]`;
  const trimmed = encoded.trim();
  const bytes = Buffer.from(trimmed, 'base64');
  if (trimmed.length === 0 || bytes.toString('base64') !== trimmed) {
    throw configFault(`${where} is not standard padded base64`);
  }
  if (bytes.length === AES_256_KEY_BYTES) {
    // A bare key: derive a stable id from a domain-separated hash (reveals nothing about the key).
    const digest = createHash('sha256').update('keygate vault kek id\0').update(bytes).digest('base64url');
    return { id: 'kek_' + digest.slice(0, 24), createdAtMs: 0, key: createSecretKey(bytes) };
  }
  let decoded: { id?: string; createdAt?: unknown; key?: Uint8Array };
  try {
    decoded = vaultProto.KeyEncryptionKey.decode(bytes) as typeof decoded;
  } catch {
    throw configFault(`${where} is neither a 32-byte key nor a KeyEncryptionKey message`);
  }
  if (!decoded.id) throw configFault(`${where} has an empty id`);
  if (!decoded.key || decoded.key.length !== AES_256_KEY_BYTES) {
    throw configFault(`${where} must hold a ${AES_256_KEY_BYTES}-byte key`);
  }
  return { id: decoded.id, createdAtMs: int64ToNumber(decoded.createdAt), key: createSecretKey(Buffer.from(decoded.key)) };
}

function configFault(message: string): Fault {
  return new Fault('err:keygate:config:invalid', { publicMessage: message });
}
