/**
 * The keyring's synchronous fast path (`tryEncryptSync`/`tryDecryptSync`) and the promise
 * contract of `encrypt`/`decrypt` built on it.
 */
import t from 'tap';
import { TestClock } from '../../../core/clock.ts';
import { Keyring } from '../../../vault/keyring/keyring.ts';
import { MasterKeys } from '../../../vault/keyring/master-keys.ts';
import { MemoryStorage } from '../../../vault/storage/memory.ts';

function newKeyring(clock = new TestClock()): Keyring {
  return new Keyring({ storage: new MemoryStorage(), masterKeys: MasterKeys.generate(), clock, latestFreshMs: 1000, latestStaleMs: 2000 });
}

t.test('the sync path answers only once the DEK is cached, and agrees with the async path', async (t) => {
  const keyring = newKeyring();
  const plaintext = Buffer.from('secret');
  t.equal(keyring.tryEncryptSync('ws_sync', plaintext), undefined, 'no DEK cached yet: the caller must load');
  const first = await keyring.encrypt('ws_sync', plaintext);
  const second = keyring.tryEncryptSync('ws_sync', plaintext);
  t.ok(second, 'cached now');
  t.equal(second!.dekId, first.dekId);
  t.ok(keyring.tryDecryptSync('ws_sync', second!.encrypted)!.equals(plaintext));
  t.ok((await keyring.decrypt('ws_sync', first.encrypted)).equals(plaintext));

  // Another keyring instance on cold caches (same storage) must load the DEK first.
  const cold = new Keyring({ storage: keyring.storage, masterKeys: keyring.masterKeys });
  t.equal(cold.tryDecryptSync('ws_sync', first.encrypted), undefined);
  t.ok((await cold.decrypt('ws_sync', first.encrypted)).equals(plaintext));
  t.ok(cold.tryDecryptSync('ws_sync', first.encrypted)!.equals(plaintext), 'cached after the load');
});

t.test('the sync path throws the same coded faults; the async methods reject instead of throwing', async (t) => {
  const keyring = newKeyring();
  const { encrypted } = await keyring.encrypt('ws_faults', Buffer.from('x'));
  const tampered = Buffer.from(encrypted, 'base64');
  tampered[20]! ^= 1;
  const cases: Array<[string, string, string]> = [
    ['bad keyring', '../x', 'err:vault:request:invalid_argument'],
    ['malformed payload', 'AAAA', 'err:vault:crypto:malformed_payload'],
    ['tampered ciphertext', tampered.toString('base64'), 'err:vault:crypto:decryption_failed'],
  ];
  for (const [name, input, code] of cases) {
    const ring = name === 'bad keyring' ? input : 'ws_faults';
    const payload = name === 'bad keyring' ? encrypted : input;
    t.throws(() => keyring.tryDecryptSync(ring, payload), { code }, `${name}: sync`);
    let promise: Promise<Buffer> | undefined;
    t.doesNotThrow(() => {
      promise = keyring.decrypt(ring, payload);
    }, `${name}: decrypt does not throw synchronously`);
    await t.rejects(promise!, { code }, `${name}: async`);
  }
  t.throws(() => keyring.tryEncryptSync('', Buffer.from('x')), { code: 'err:vault:request:invalid_argument' });
  let encryptPromise: Promise<unknown> | undefined;
  t.doesNotThrow(() => {
    encryptPromise = keyring.encrypt('', Buffer.from('x'));
  });
  await t.rejects(encryptPromise!, { code: 'err:vault:request:invalid_argument' });
  // A DEK id this keyring does not know: the sync path cannot tell, so it asks for a load.
  const otherRing = await keyring.encrypt('ws_other', Buffer.from('y'));
  t.equal(keyring.tryDecryptSync('ws_faults', otherRing.encrypted), undefined);
  await t.rejects(keyring.decrypt('ws_faults', otherRing.encrypted), { code: 'err:vault:keyring:dek_not_found' });
  t.throws(() => keyring.tryDecryptSync('ws_faults', otherRing.encrypted), { code: 'err:vault:keyring:dek_not_found' }, 'the miss is remembered');
});

t.test('a stale LATEST is still served synchronously while its refresh runs; an expired one is not', async (t) => {
  const clock = new TestClock();
  const keyring = newKeyring(clock);
  const { dekId } = await keyring.encrypt('ws_stale', Buffer.from('x'));
  clock.advance(1500);
  t.equal(keyring.tryEncryptSync('ws_stale', Buffer.from('x'))?.dekId, dekId, 'stale: served, refresh started');
  clock.advance(5000);
  t.equal(keyring.tryEncryptSync('ws_stale', Buffer.from('x')), undefined, 'past the stale window: must load');
  t.equal((await keyring.encrypt('ws_stale', Buffer.from('x'))).dekId, dekId);
});
