import { createCipheriv, randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { TestClock } from '../../../core/clock.ts';
import { Fault } from '../../../core/fault.ts';
import { Keyring } from '../../../vault/keyring/keyring.ts';
import { generateMasterKey, MasterKeys } from '../../../vault/keyring/master-keys.ts';
import { decodePayload } from '../../../vault/keyring/payload.ts';
import { vaultProto } from '../../../vault/proto/vault-proto.ts';
import { MemoryStorage } from '../../../vault/storage/memory.ts';
import type { VaultStorage } from '../../../vault/storage/vault-storage.ts';
import { FaultyStorage } from '../faulty-storage.ts';

function newKeyring(options: { storage?: VaultStorage; masterKeys?: MasterKeys; clock?: TestClock } = {}) {
  const storage = options.storage ?? new MemoryStorage();
  const keyring = new Keyring({ storage, masterKeys: options.masterKeys ?? MasterKeys.generate(), clock: options.clock });
  return { keyring, storage };
}

async function expectFault(t: Test, promise: Promise<unknown>, code: string, message?: string): Promise<void> {
  try {
    const value = await promise;
    t.fail(`${message ?? 'expected a fault'}: resolved with ${JSON.stringify(value)?.slice(0, 80)}`);
  } catch (err) {
    t.ok(err instanceof Fault, `${message ?? code}: is a Fault`);
    t.equal((err as Fault).code, code, message ?? code);
  }
}

t.test('round-trips empty, every-byte-value, UTF-8 and 4 MiB payloads', async (t) => {
  const { keyring } = newKeyring();
  const large = randomBytes(4 * 1024 * 1024);
  const cases: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['one zero byte', Buffer.from([0])],
    ['every byte value', Buffer.from(Array.from({ length: 256 }, (_, index) => index))],
    ['utf-8', Buffer.from('ключ 🔑 \u0000 \n', 'utf8')],
    ['4 MiB', large],
  ];
  for (const [name, plaintext] of cases) {
    const { encrypted } = await keyring.encrypt('ws_roundtrip', plaintext);
    t.ok((await keyring.decrypt('ws_roundtrip', encrypted)).equals(plaintext), name);
  }
});

t.test('the payload is the spec wire format: base64 of Encrypted with the DEK id and tag appended', async (t) => {
  const clock = new TestClock();
  const { keyring } = newKeyring({ clock });
  const plaintext = Buffer.from('hello vault');
  const { encrypted, dekId } = await keyring.encrypt('ws_format', plaintext);
  const bytes = Buffer.from(encrypted, 'base64');
  t.equal(bytes.toString('base64'), encrypted, 'standard padded base64');
  t.same([...bytes.subarray(0, 2)], [0x12, 0x0c], 'starts with field 2 (nonce), 12 bytes: algorithm 0 is omitted');
  const message = vaultProto.Encrypted.toObject(vaultProto.Encrypted.decode(bytes), { longs: Number, defaults: true });
  t.equal(message.algorithm, 0);
  t.equal(message.nonce.length, 12);
  t.equal(message.ciphertext.length, plaintext.length + 16, 'ciphertext carries the 16-byte tag');
  t.equal(message.encryptionKeyId, dekId);
  t.match(dekId, /^dek_[A-Za-z0-9]+$/);
  t.equal(message.time, clock.nowMs());
});

t.test('decrypts a payload built by hand from the spec layout (interop with other implementations)', async (t) => {
  const { keyring, storage } = newKeyring();
  const { dekId } = await keyring.encrypt('ws_interop', Buffer.from('warm up'));
  // Recover the DEK the way another implementation would: unwrap the stored object with the KEK.
  const masterKeys = keyring.masterKeys;
  const stored = vaultProto.EncryptedDataEncryptionKey.decode((await storage.get(`keyring/ws_interop/${dekId}`))!) as unknown as {
    encrypted: { nonce: Buffer; ciphertext: Buffer; encryptionKeyId: string };
  };
  t.equal(stored.encrypted.encryptionKeyId, masterKeys.current.id, 'a stored DEK names its KEK');
  const { createDecipheriv } = await import('node:crypto');
  const kekCipher = createDecipheriv('aes-256-gcm', masterKeys.current.key, stored.encrypted.nonce);
  kekCipher.setAuthTag(stored.encrypted.ciphertext.subarray(-16));
  const dekMessage = vaultProto.DataEncryptionKey.decode(Buffer.concat([kekCipher.update(stored.encrypted.ciphertext.subarray(0, -16)), kekCipher.final()])) as unknown as { id: string; key: Buffer };
  t.equal(dekMessage.id, dekId);
  // Seal by hand, Go style: ciphertext || tag, no AAD, fields 2,3,4,5 in order.
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dekMessage.key, nonce);
  const sealed = Buffer.concat([cipher.update('from elsewhere'), cipher.final(), cipher.getAuthTag()]);
  const id = Buffer.from(dekId);
  const blob = Buffer.concat([
    Buffer.from([0x12, 12]), nonce,
    Buffer.from([0x1a, sealed.length]), sealed,
    Buffer.from([0x22, id.length]), id,
    Buffer.from([0x28, 0x01]),
  ]);
  t.equal((await keyring.decrypt('ws_interop', blob.toString('base64'))).toString(), 'from elsewhere');
});

t.test('one keyring reuses its DEK; different keyrings get different DEKs', async (t) => {
  const { keyring } = newKeyring();
  const ids = new Set<string>();
  for (let index = 0; index < 20; index++) ids.add((await keyring.encrypt('ws_same', Buffer.from([index]))).dekId);
  t.equal(ids.size, 1);
  const perRing = new Set<string>();
  for (let index = 0; index < 10; index++) perRing.add((await keyring.encrypt(`ws_ring${index}`, Buffer.from('x'))).dekId);
  t.equal(perRing.size, 10);
});

t.test('two encryptions of the same plaintext differ (fresh nonce each time)', async (t) => {
  const { keyring } = newKeyring();
  const first = await keyring.encrypt('ws_nonce', Buffer.from('same'));
  const second = await keyring.encrypt('ws_nonce', Buffer.from('same'));
  t.not(first.encrypted, second.encrypted);
  t.not(Buffer.from(decodePayload(first.encrypted).nonce).toString('hex'), Buffer.from(decodePayload(second.encrypted).nonce).toString('hex'));
});

t.test('tampering with any byte of the payload is rejected; only the unauthenticated time field can change', async (t) => {
  const { keyring } = newKeyring();
  const plaintext = Buffer.from('the secret recoverable key');
  const { encrypted } = await keyring.encrypt('ws_tamper', plaintext);
  const bytes = Buffer.from(encrypted, 'base64');
  // The time field (tag 0x28 + varint) ends the canonical encoding.
  const timeOffset = bytes.lastIndexOf(0x28);
  let rejected = 0;
  let timeOnlyChanges = 0;
  for (let index = 0; index < bytes.length; index++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const tampered = Buffer.from(bytes);
      tampered[index]! ^= mask;
      try {
        const result = await keyring.decrypt('ws_tamper', tampered.toString('base64'));
        // The format does not authenticate the time (no AAD, for compatibility); changing it
        // must never change what decrypts.
        t.ok(index > timeOffset, `byte ${index} mask ${mask} decrypted but is not in the time varint`);
        t.ok(result.equals(plaintext));
        timeOnlyChanges++;
      } catch (err) {
        if (!(err instanceof Fault) || !err.code.startsWith('err:vault:')) t.fail(`byte ${index}: not a vault fault: ${String(err)}`);
        rejected++;
      }
    }
  }
  t.ok(rejected >= (timeOffset + 1) * 3, `every change before the time field is rejected (${rejected} rejected, ${timeOnlyChanges} time-only)`);
});

t.test('truncated, extended and malformed payloads fail with malformed_payload before any crypto', async (t) => {
  const { keyring } = newKeyring();
  const { encrypted } = await keyring.encrypt('ws_malformed', Buffer.from('payload'));
  const bytes = Buffer.from(encrypted, 'base64');
  for (const length of [0, 1, 2, 4, 8, 16, 32, bytes.length >> 1, bytes.length - 1]) {
    await t.rejects(keyring.decrypt('ws_malformed', bytes.subarray(0, length).toString('base64')), { code: /^err:vault:crypto:/ }, `truncated to ${length}`);
  }
  // The reference let trailing bytes through (protobuf leniency); the canonical check does not.
  await expectFault(t, keyring.decrypt('ws_malformed', Buffer.concat([bytes, Buffer.from([0x28, 0x01])]).toString('base64')), 'err:vault:crypto:malformed_payload', 'appended duplicate field');
  await expectFault(t, keyring.decrypt('ws_malformed', Buffer.concat([bytes, Buffer.from([0x30, 0x01])]).toString('base64')), 'err:vault:crypto:malformed_payload', 'appended unknown field');
  await expectFault(t, keyring.decrypt('ws_malformed', encrypted.replace(/=+$/, '')), 'err:vault:crypto:malformed_payload', 'unpadded base64');
  await expectFault(t, keyring.decrypt('ws_malformed', ' ' + encrypted), 'err:vault:crypto:malformed_payload', 'whitespace');
  await expectFault(t, keyring.decrypt('ws_malformed', ''), 'err:vault:crypto:malformed_payload', 'empty string');
  await expectFault(t, keyring.decrypt('ws_malformed', 'not base64 at all!'), 'err:vault:crypto:malformed_payload', 'garbage');
  const decoded = decodePayload(encrypted);
  const rebuild = (fields: Record<string, unknown>) => Buffer.from(vaultProto.Encrypted.encode({ nonce: decoded.nonce, ciphertext: decoded.ciphertext, encryptionKeyId: decoded.dekId, ...fields }).finish()).toString('base64');
  for (const nonceLength of [0, 11, 13]) {
    await expectFault(t, keyring.decrypt('ws_malformed', rebuild({ nonce: Buffer.alloc(nonceLength, 1) })), 'err:vault:crypto:malformed_payload', `nonce of ${nonceLength} bytes`);
  }
  await expectFault(t, keyring.decrypt('ws_malformed', rebuild({ ciphertext: Buffer.alloc(15) })), 'err:vault:crypto:malformed_payload', 'ciphertext shorter than a tag');
  await expectFault(t, keyring.decrypt('ws_malformed', rebuild({ encryptionKeyId: '' })), 'err:vault:crypto:malformed_payload', 'empty key id');
  await expectFault(t, keyring.decrypt('ws_malformed', rebuild({ encryptionKeyId: '../ws_other/LATEST' })), 'err:vault:crypto:malformed_payload', 'key id with a path');
  await expectFault(t, keyring.decrypt('ws_malformed', rebuild({ algorithm: 1 })), 'err:vault:crypto:malformed_payload', 'unknown algorithm');
  await expectFault(t, keyring.decrypt('ws_malformed', rebuild({ nonce: Buffer.alloc(12, 0) })), 'err:vault:crypto:decryption_failed', 'zero nonce');
  await expectFault(t, keyring.decrypt('ws_malformed', rebuild({ ciphertext: Buffer.alloc(16) })), 'err:vault:crypto:decryption_failed', 'empty ciphertext with a zero tag');
  await expectFault(t, keyring.decrypt('ws_malformed', rebuild({ encryptionKeyId: 'dek_doesnotexist' })), 'err:vault:keyring:dek_not_found', 'unknown DEK id');
});

t.test('swapping ciphertexts between two payloads of one keyring fails', async (t) => {
  const { keyring } = newKeyring();
  const first = decodePayload((await keyring.encrypt('ws_swap', Buffer.from('first secret'))).encrypted);
  const second = decodePayload((await keyring.encrypt('ws_swap', Buffer.from('other secret'))).encrypted);
  const swapped = Buffer.from(vaultProto.Encrypted.encode({ nonce: first.nonce, ciphertext: second.ciphertext, encryptionKeyId: first.dekId, time: 1 }).finish());
  await expectFault(t, keyring.decrypt('ws_swap', swapped.toString('base64')), 'err:vault:crypto:decryption_failed');
});

t.test('a payload decrypts only under its own keyring (Decrypt and ReEncrypt)', async (t) => {
  const { keyring } = newKeyring();
  const { encrypted } = await keyring.encrypt('ws_a', Buffer.from('a secret'));
  await keyring.encrypt('ws_b', Buffer.from('b has a DEK too'));
  await expectFault(t, keyring.decrypt('ws_b', encrypted), 'err:vault:keyring:dek_not_found', 'decrypt under another keyring');
  await expectFault(t, keyring.reEncrypt('ws_b', encrypted), 'err:vault:keyring:dek_not_found', 're-encrypt under another keyring');
  await expectFault(t, keyring.decrypt('ws_never_used', encrypted), 'err:vault:keyring:dek_not_found', 'decrypt under an unused keyring');
});

t.test('keyring names are validated (the reference accepted "" and path tricks)', async (t) => {
  const { keyring } = newKeyring();
  for (const good of ['ws_1', 'env_abc-DEF', 'acme', 'org/team/project/keyring', 'a.b.c', 'x'.repeat(255), '123e4567-e89b-12d3-a456-426614174000', 'a:b@c+d=e~f']) {
    const { encrypted } = await keyring.encrypt(good, Buffer.from(good));
    t.equal((await keyring.decrypt(good, encrypted)).toString(), good, `accepts ${good.slice(0, 30)}`);
  }
  for (const bad of ['', '/', 'a//b', '/a', 'a/', '.', '..', 'a/../b', 'a/LATEST', 'LATEST', 'dek_x', 'a/dek_y/b', 'with space', 'tab\t', 'nul\0', 'ü', 'x'.repeat(256)]) {
    await expectFault(t, keyring.encrypt(bad, Buffer.from('x')), 'err:vault:request:invalid_argument', `rejects ${JSON.stringify(bad.slice(0, 20))}`);
  }
});

t.test('DEK rotation: new encryptions use the new DEK, old payloads still decrypt, ReEncrypt moves them', async (t) => {
  const { keyring } = newKeyring();
  const old = await keyring.encrypt('ws_rotate', Buffer.from('value'));
  let previous = old;
  for (let round = 0; round < 5; round++) {
    const newDekId = await keyring.rollDek('ws_rotate');
    t.not(newDekId, previous.dekId);
    t.equal((await keyring.encrypt('ws_rotate', Buffer.from('x'))).dekId, newDekId, 'new encryptions use the rolled DEK');
    const moved = await keyring.reEncrypt('ws_rotate', previous.encrypted);
    t.equal(moved.dekId, newDekId, 'ReEncrypt targets the current DEK');
    t.not(moved.encrypted, previous.encrypted);
    previous = moved;
  }
  t.equal((await keyring.decrypt('ws_rotate', old.encrypted)).toString(), 'value', 'the first payload still decrypts');
  t.equal((await keyring.decrypt('ws_rotate', previous.encrypted)).toString(), 'value');
});

t.test('a DEK rolled on another node is picked up after the fresh window, and at once by ReEncrypt', async (t) => {
  const storage = new MemoryStorage();
  const masterKeys = MasterKeys.generate();
  const clock = new TestClock();
  const nodeA = new Keyring({ storage, masterKeys, clock, latestFreshMs: 1_000, latestStaleMs: 60_000 });
  const nodeB = new Keyring({ storage, masterKeys, clock, latestFreshMs: 1_000, latestStaleMs: 60_000 });
  const first = await nodeB.encrypt('ws_nodes', Buffer.from('x'));
  const rolled = await nodeA.rollDek('ws_nodes');
  t.equal((await nodeB.encrypt('ws_nodes', Buffer.from('x'))).dekId, first.dekId, 'inside the fresh window B still uses its cached DEK');
  t.equal((await nodeB.reEncrypt('ws_nodes', first.encrypted)).dekId, rolled, 'ReEncrypt re-reads the keyring');
  await nodeA.rollDek('ws_nodes');
  const second = await nodeA.currentDekId('ws_nodes');
  clock.advance(1_001);
  const deadline = Date.now() + 5_000;
  let seen = '';
  while (Date.now() < deadline && seen !== second) {
    seen = (await nodeB.encrypt('ws_nodes', Buffer.from('x'))).dekId;
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.equal(seen, second, 'after the fresh window B revalidates and uses the new DEK');
});

t.test('concurrent first use of a keyring creates exactly one DEK (one process)', async (t) => {
  const storage = new FaultyStorage(new MemoryStorage());
  const { keyring } = newKeyring({ storage });
  const results = await Promise.all(Array.from({ length: 50 }, () => keyring.encrypt('ws_race', Buffer.from('x'))));
  t.equal(new Set(results.map((result) => result.dekId)).size, 1);
  t.same((await storage.list('keyring/ws_race/')).length, 2, 'one DEK object plus LATEST');
});

t.test('concurrent first use from two nodes sharing storage agrees on one DEK', async (t) => {
  const storage = new MemoryStorage();
  const masterKeys = MasterKeys.generate();
  const nodes = [new Keyring({ storage, masterKeys }), new Keyring({ storage, masterKeys })];
  const results = await Promise.all(Array.from({ length: 40 }, (_, index) => nodes[index % 2]!.encrypt('ws_cluster', Buffer.from(String(index)))));
  t.equal(new Set(results.map((result) => result.dekId)).size, 1, 'every encryption used the DEK that won LATEST');
  for (const [index, result] of results.entries()) {
    t.equal((await nodes[(index + 1) % 2]!.decrypt('ws_cluster', result.encrypted)).toString(), String(index));
  }
});

t.test('a wrong master key fails: unknown KEK id and same id with other key material are distinct faults', async (t) => {
  const storage = new MemoryStorage();
  const original = MasterKeys.generate();
  const { keyring } = newKeyring({ storage, masterKeys: original });
  const { encrypted } = await keyring.encrypt('ws_kek', Buffer.from('secret'));
  const other = new Keyring({ storage, masterKeys: MasterKeys.generate() });
  await expectFault(t, other.decrypt('ws_kek', encrypted), 'err:vault:keyring:kek_not_found', 'a KEK with another id');
  await expectFault(t, other.encrypt('ws_kek', Buffer.from('x')), 'err:vault:keyring:kek_not_found', 'encrypt cannot use a LATEST it cannot unwrap');
  const impostor = new MasterKeys([{ id: original.current.id, createdAtMs: 0, key: MasterKeys.generate().current.key }]);
  await expectFault(t, new Keyring({ storage, masterKeys: impostor }).decrypt('ws_kek', encrypted), 'err:vault:storage:corrupted', 'same id, other key material');
});

t.test('KEK rotation: the old key decrypts until rewrap, after which the new key alone suffices (LATEST included)', async (t) => {
  const storage = new MemoryStorage();
  const oldKey = generateMasterKey();
  const newKey = generateMasterKey();
  const before = new Keyring({ storage, masterKeys: MasterKeys.parse([oldKey]) });
  const payloads: Array<[string, string]> = [];
  for (let round = 0; round < 3; round++) {
    for (const ring of ['ws_r1', 'ws_r2']) {
      payloads.push([ring, (await before.encrypt(ring, Buffer.from(`${ring}-${round}`))).encrypted]);
      await before.rollDek(ring);
    }
  }
  const during = new Keyring({ storage, masterKeys: MasterKeys.parse([newKey, oldKey]) });
  for (const [ring, encrypted] of payloads) t.ok((await during.decrypt(ring, encrypted)).length > 0);
  const newDek = await during.rollDek('ws_r1');
  const stored = vaultProto.EncryptedDataEncryptionKey.decode((await storage.get(`keyring/ws_r1/${newDek}`))!) as unknown as { encrypted: { encryptionKeyId: string } };
  t.equal(stored.encrypted.encryptionKeyId, during.masterKeys.current.id, 'new DEKs are wrapped by the current KEK');
  const report = await during.rewrapDeks();
  t.ok(report.rewrapped > 0);
  t.equal((await during.rewrapDeks()).rewrapped, 0, 'a second run has nothing left to do');
  const after = new Keyring({ storage, masterKeys: MasterKeys.parse([newKey]) });
  for (const [ring, encrypted] of payloads) {
    t.match((await after.decrypt(ring, encrypted)).toString(), new RegExp(`^${ring}-`));
  }
  t.ok((await after.encrypt('ws_r2', Buffer.from('still works'))).dekId, 'Encrypt works: LATEST was re-wrapped too');
});

t.test('storage corruption is detected and reported, never turned into plaintext', async (t) => {
  const storage = new FaultyStorage(new MemoryStorage());
  const { keyring } = newKeyring({ storage });
  const plaintext = Buffer.from('do not leak me');
  const { encrypted, dekId } = await keyring.encrypt('ws_corrupt', plaintext);
  const dekKey = `keyring/ws_corrupt/${dekId}`;
  const good = (await storage.inner.get(dekKey))!;
  await keyring.encrypt('ws_other', Buffer.from('x'));
  const otherDekId = (await storage.inner.list('keyring/ws_other/dek_'))[0]!;
  const otherObject = (await storage.inner.get(otherDekId))!;
  const wrapTimeOffset = good.lastIndexOf(0x28);
  const flipped = (index: number) => {
    const copy = Buffer.from(good);
    copy[index]! ^= 0x01;
    return copy;
  };
  const variants: Array<[string, Uint8Array]> = [
    ['garbage', randomBytes(good.length)],
    ['empty object', new Uint8Array(0)],
    ['partial object', good.subarray(0, good.length >> 1)],
    ['valid protobuf, another DEK', otherObject],
    ...Array.from({ length: good.length }, (_, index) => [`bit flip at ${index}`, flipped(index)] as [string, Uint8Array]),
  ];
  for (const [name, bytes] of variants) {
    keyring.clearCache();
    storage.onRead = (key, original) => (key === dekKey ? bytes : original);
    try {
      const result = await keyring.decrypt('ws_corrupt', encrypted);
      // Only the wrap time (the last varint, unauthenticated and unused) may change harmlessly;
      // then the DEK itself is intact and decrypting correctly is right.
      t.ok(name.startsWith('bit flip at ') && Number(name.slice(12)) > wrapTimeOffset, `${name}: decrypted (${result.equals(plaintext) ? 'correctly' : 'WRONGLY'})`);
      t.ok(result.equals(plaintext), `${name}: never a wrong plaintext`);
    } catch (err) {
      t.ok(err instanceof Fault && ['err:vault:storage:corrupted', 'err:vault:keyring:kek_not_found'].includes(err.code), `${name}: ${(err as Fault).code}`);
    }
  }
});

t.test('a storage outage is a distinct, retryable fault', async (t) => {
  const storage = new FaultyStorage(new MemoryStorage());
  const { keyring } = newKeyring({ storage });
  const { encrypted } = await keyring.encrypt('ws_outage', Buffer.from('x'));
  keyring.clearCache();
  storage.onRead = () => { throw new Fault('err:vault:storage:unavailable', { retryable: true, source: 'upstream' }); };
  await t.rejects(keyring.decrypt('ws_outage', encrypted), { code: 'err:vault:storage:unavailable', retryable: true });
  await t.rejects(keyring.encrypt('ws_outage', Buffer.from('x')), { code: 'err:vault:storage:unavailable' });
  storage.onRead = undefined;
  t.equal((await keyring.decrypt('ws_outage', encrypted)).toString(), 'x', 'recovers once storage is back (errors are not cached)');
});

t.test('a crash between the DEK write and the LATEST write never leaves a keyring unreadable', async (t) => {
  const storage = new FaultyStorage(new MemoryStorage());
  const { keyring } = newKeyring({ storage });
  // First use: the DEK object lands, then the process "dies" before LATEST is claimed.
  storage.onWrite = (_operation, key) => { if (key.endsWith('/LATEST')) throw new Error('crash'); };
  await t.rejects(keyring.encrypt('ws_crash', Buffer.from('x')));
  storage.onWrite = undefined;
  const fresh = new Keyring({ storage, masterKeys: keyring.masterKeys });
  const first = await fresh.encrypt('ws_crash', Buffer.from('after crash'));
  t.equal((await fresh.decrypt('ws_crash', first.encrypted)).toString(), 'after crash');
  // Roll: the new DEK object lands, LATEST is not moved; the old DEK stays current and readable.
  storage.onWrite = (_operation, key) => { if (key.endsWith('/LATEST')) throw new Error('crash'); };
  await t.rejects(fresh.rollDek('ws_crash'));
  storage.onWrite = undefined;
  const restarted = new Keyring({ storage, masterKeys: keyring.masterKeys });
  t.equal((await restarted.encrypt('ws_crash', Buffer.from('y'))).dekId, first.dekId);
  t.equal((await restarted.decrypt('ws_crash', first.encrypted)).toString(), 'after crash');
});

t.test('DEKs are cached: repeated decrypts do not read storage again, unknown ids are remembered briefly', async (t) => {
  const storage = new FaultyStorage(new MemoryStorage());
  const clock = new TestClock();
  const keyring = new Keyring({ storage, masterKeys: MasterKeys.generate(), clock, missingDekFreshMs: 1_000 });
  const { encrypted } = await keyring.encrypt('ws_cache', Buffer.from('x'));
  const readsBefore = storage.calls.get;
  for (let index = 0; index < 100; index++) await keyring.decrypt('ws_cache', encrypted);
  t.equal(storage.calls.get, readsBefore);
  const bogus = Buffer.from(vaultProto.Encrypted.encode({ nonce: Buffer.alloc(12, 1), ciphertext: Buffer.alloc(20, 1), encryptionKeyId: 'dek_nope' }).finish()).toString('base64');
  for (let index = 0; index < 10; index++) await t.rejects(keyring.decrypt('ws_cache', bogus), { code: 'err:vault:keyring:dek_not_found' });
  t.equal(storage.calls.get, readsBefore + 1, 'one read for ten lookups of a missing DEK');
  clock.advance(1_001);
  await t.rejects(keyring.decrypt('ws_cache', bogus), { code: 'err:vault:keyring:dek_not_found' });
  t.equal(storage.calls.get, readsBefore + 2, 'the negative entry expires');
});

t.test('master keys: config form round-trips, bare 32-byte keys get a stable id, bad entries are config faults', async (t) => {
  const encoded = generateMasterKey(1234);
  const parsed = MasterKeys.parse([encoded]);
  t.match(parsed.current.id, /^kek_[A-Za-z0-9]{24}$/);
  t.equal(parsed.current.createdAtMs, 1234);
  const bare = randomBytes(32).toString('base64');
  t.equal(MasterKeys.parse([bare]).current.id, MasterKeys.parse([bare]).current.id);
  t.not(MasterKeys.parse([bare]).current.id, MasterKeys.parse([randomBytes(32).toString('base64')]).current.id);
  t.same(MasterKeys.parse([encoded, bare]).ids(), [parsed.current.id, MasterKeys.parse([bare]).current.id], 'first is current');
  for (const bad of [[], [''], ['not base64!'], [randomBytes(16).toString('base64')], [encoded, encoded]]) {
    t.throws(() => MasterKeys.parse(bad), { code: 'err:keygate:config:invalid' });
  }
  try {
    MasterKeys.parse([bare.slice(0, -4) + '!!!!']);
  } catch (err) {
    t.notMatch((err as Fault).message, bare.slice(0, 10), 'a bad key is never echoed');
  }
});
