/**
 * Fuzz target: Vault payload decoding and decryption of arbitrary bytes. Properties:
 * 1. decrypt never throws anything but a `Fault` with an expected vault code;
 * 2. decrypt never returns plaintext for a tampered payload: when it succeeds, the payload's
 *    nonce, ciphertext and DEK id (decoded independently here) are exactly those of a payload
 *    the keyring made, and the plaintext is that payload's.
 * Each input is tried as binary protobuf (base64-encoded first) and as a raw payload string.
 */
import { Fault } from '../core/fault.ts';
import { Keyring } from '../vault/keyring/keyring.ts';
import { MasterKeys } from '../vault/keyring/master-keys.ts';
import { vaultProto } from '../vault/proto/vault-proto.ts';
import { MemoryStorage } from '../vault/storage/memory.ts';
import type { FuzzTarget } from './fuzz-target.ts';

const KEYRING = 'ws_fuzz';
const EXPECTED_CODES = new Set(['err:vault:crypto:malformed_payload', 'err:vault:crypto:decryption_failed', 'err:vault:keyring:dek_not_found']);

/** Builds the target: a keyring on memory storage with a few sealed payloads as seeds. */
export async function createFuzzTarget(): Promise<FuzzTarget> {
  const keyring = new Keyring({ storage: new MemoryStorage(), masterKeys: MasterKeys.generate() });
  const originals = new Map<string, Buffer>();
  const seeds: Uint8Array[] = [];
  const plaintexts = ['', 'a', 'recoverable key', 'x'.repeat(300), '\u0000\u00ff🔑'];
  for (const [index, text] of plaintexts.entries()) {
    if (index === 3) await keyring.rollDek(KEYRING);
    const { encrypted } = await keyring.encrypt(KEYRING, Buffer.from(text));
    const bytes = Buffer.from(encrypted, 'base64');
    originals.set(identityOf(bytes)!, Buffer.from(text));
    seeds.push(bytes);
  }
  // A payload of another keyring: valid, but must not open under ws_fuzz.
  seeds.push(Buffer.from((await keyring.encrypt('ws_other', Buffer.from('other'))).encrypted, 'base64'));

  async function tryDecrypt(encrypted: string, input: Uint8Array): Promise<string> {
    let plaintext: Buffer;
    try {
      plaintext = await keyring.decrypt(KEYRING, encrypted);
    } catch (err) {
      if (!(err instanceof Fault)) throw new Error(`threw a non-Fault: ${String(err)}`);
      if (!EXPECTED_CODES.has(err.code)) throw new Error(`unexpected fault code ${err.code}`);
      return err.code.slice('err:vault:'.length);
    }
    const identity = identityOf(Buffer.from(encrypted, 'base64'));
    const original = identity === undefined ? undefined : originals.get(identity);
    if (original === undefined) throw new Error(`returned plaintext for a payload the keyring never made (input ${Buffer.from(input).toString('hex')})`);
    if (!original.equals(plaintext)) throw new Error('returned a plaintext that differs from what was sealed');
    return 'decrypted';
  }

  return {
    name: 'vault-payload',
    seeds,
    async check(input) {
      const asProtobuf = await tryDecrypt(Buffer.from(input).toString('base64'), input);
      const asString = await tryDecrypt(Buffer.from(input).toString('latin1'), input);
      return `${asProtobuf}|${asString === 'decrypted' ? 'decrypted' : 'string-rejected'}`;
    },
  };
}

/** nonce, ciphertext and DEK id of a payload, decoded with protobufjs alone; undefined if undecodable. */
function identityOf(bytes: Uint8Array): string | undefined {
  try {
    const message = vaultProto.Encrypted.decode(bytes) as unknown as { nonce?: Uint8Array; ciphertext?: Uint8Array; encryptionKeyId?: string };
    return [Buffer.from(message.nonce ?? []).toString('hex'), Buffer.from(message.ciphertext ?? []).toString('hex'), message.encryptionKeyId ?? ''].join('|');
  } catch {
    return undefined;
  }
}
