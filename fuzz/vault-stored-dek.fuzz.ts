/**
 * Fuzz target: unwrapping stored data keys. The input replaces a keyring's stored DEK object
 * (storage corruption, a hostile bucket). Properties: decrypting a known payload either fails
 * with `storage:corrupted` / `keyring:kek_not_found`, or returns exactly the sealed plaintext
 * (possible only when the damage missed every authenticated byte); never another plaintext,
 * never a non-Fault error.
 */
import { Fault } from '../core/fault.ts';
import { Keyring } from '../vault/keyring/keyring.ts';
import { MasterKeys } from '../vault/keyring/master-keys.ts';
import { MemoryStorage } from '../vault/storage/memory.ts';
import type { VaultStorage } from '../vault/storage/vault-storage.ts';
import type { FuzzTarget } from './fuzz-target.ts';

const KEYRING = 'ws_fuzz';
const EXPECTED_CODES = new Set(['err:vault:storage:corrupted', 'err:vault:keyring:kek_not_found']);

/** Builds the target: one payload whose DEK object the fuzzer replaces. */
export async function createFuzzTarget(): Promise<FuzzTarget> {
  const inner = new MemoryStorage();
  let replacement: Uint8Array | undefined;
  let dekObjectKey = '';
  const storage: VaultStorage = {
    kind: 'fuzz',
    put: (key, bytes) => inner.put(key, bytes),
    putIfAbsent: (key, bytes) => inner.putIfAbsent(key, bytes),
    list: (prefix) => inner.list(prefix),
    close: () => inner.close(),
    get: async (key) => (key === dekObjectKey && replacement !== undefined ? replacement : inner.get(key)),
  };
  const keyring = new Keyring({ storage, masterKeys: MasterKeys.generate() });
  const plaintext = Buffer.from('the sealed secret');
  const { encrypted, dekId } = await keyring.encrypt(KEYRING, plaintext);
  dekObjectKey = `keyring/${KEYRING}/${dekId}`;
  const otherDekId = await keyring.rollDek(KEYRING);
  const seeds = [(await inner.get(dekObjectKey))!, (await inner.get(`keyring/${KEYRING}/${otherDekId}`))!];

  return {
    name: 'vault-stored-dek',
    seeds,
    async check(input) {
      keyring.clearCache();
      replacement = input;
      try {
        const result = await keyring.decrypt(KEYRING, encrypted);
        if (!result.equals(plaintext)) throw new Error(`a corrupted DEK object produced another plaintext (input ${Buffer.from(input).toString('hex')})`);
        return 'intact';
      } catch (err) {
        if (!(err instanceof Fault)) throw err;
        if (!EXPECTED_CODES.has(err.code)) throw new Error(`unexpected fault code ${err.code}`);
        return err.code.slice('err:vault:'.length);
      } finally {
        replacement = undefined;
      }
    },
  };
}
