import t from 'tap';
import { Metrics } from '../../../core/metrics.ts';
import { createInProcessVault } from '../../../vault/in-process-vault.ts';

t.test('round-trips boundary strings through the in-process client', async (t) => {
  const vault = createInProcessVault();
  const samples = ['', 'a', '\u0000', '\u00ff', ' ', '\n', 'x'.repeat(1024 * 1024), '¡ünïcødé! 🔑 日本語', '{"json":true}', 'null'];
  for (const data of samples) {
    const { encrypted, keyId } = await vault.encrypt({ keyring: 'ws_boundary', data });
    t.match(keyId, /^dek_/);
    t.equal((await vault.decrypt({ keyring: 'ws_boundary', encrypted })).plaintext, data, `round-trips ${JSON.stringify(data.slice(0, 12))}`);
  }
});

t.test('rejects bad requests with invalid_argument: non-strings, lone surrogates, oversize data, bad keyrings', async (t) => {
  const vault = createInProcessVault({ maxDataBytes: 1024, maxBulkItems: 3 });
  const invalid = { code: 'err:vault:request:invalid_argument' };
  await t.rejects(vault.encrypt({ keyring: 'ws_1', data: 42 as unknown as string }), invalid);
  await t.rejects(vault.encrypt({ keyring: undefined as unknown as string, data: 'x' }), invalid);
  await t.rejects(vault.encrypt({ keyring: 'ws_1', data: '\ud800' }), invalid, 'a lone surrogate cannot round-trip');
  await t.rejects(vault.encrypt({ keyring: 'ws_1', data: 'é'.repeat(513) }), invalid, '1026 UTF-8 bytes');
  t.ok(await vault.encrypt({ keyring: 'ws_1', data: 'é'.repeat(512) }), 'exactly 1024 bytes is fine');
  await t.rejects(vault.encrypt({ keyring: '', data: 'x' }), invalid, 'empty keyring');
  await t.rejects(vault.encryptBulk({ keyring: 'ws_1', items: { a: '1', b: '2', c: '3', d: '4' } }), invalid, 'too many items');
  await t.rejects(vault.decryptBulk({ keyring: 'ws_1', items: [] as unknown as Record<string, string> }), invalid);
});

t.test('bulk calls round-trip, keep the request ids, and accept empty item maps', async (t) => {
  const vault = createInProcessVault();
  const items = { first: 'one', second: '', third: 'three', __proto__: 'tricky id' } as Record<string, string>;
  Object.defineProperty(items, '__proto__', { value: 'tricky id', enumerable: true });
  const encrypted = await vault.encryptBulk({ keyring: 'ws_bulk', items });
  t.same(Object.keys(encrypted.items).sort(), Object.keys(items).sort());
  const decrypted = await vault.decryptBulk({
    keyring: 'ws_bulk',
    items: Object.fromEntries(Object.entries(encrypted.items).map(([id, value]) => [id, value.encrypted])),
  });
  t.same(Object.entries(decrypted.items).sort(), Object.entries(items).sort());
  t.same(await vault.encryptBulk({ keyring: 'ws_bulk', items: {} }), { items: {} });
  t.same(await vault.decryptBulk({ keyring: 'ws_bulk', items: {} }), { items: {} });
});

t.test('a failing bulk item fails the call with its own code and names the item', async (t) => {
  const vault = createInProcessVault();
  const good = (await vault.encrypt({ keyring: 'ws_bulkfail', data: 'ok' })).encrypted;
  await t.rejects(vault.decryptBulk({ keyring: 'ws_bulkfail', items: { good, bad: 'AAAA' } }), {
    code: 'err:vault:crypto:malformed_payload',
    publicMessage: /^item "bad": /,
  });
});

t.test('ReEncrypt keeps the data, changes the ciphertext, ignores keyId, and old payloads still decrypt', async (t) => {
  const vault = createInProcessVault();
  const original = await vault.encrypt({ keyring: 'ws_re', data: 'keep me' });
  const rolled = await vault.keyring.rollDek('ws_re');
  const moved = await vault.reEncrypt({ keyring: 'ws_re', encrypted: original.encrypted, keyId: original.keyId });
  t.equal(moved.keyId, rolled, 'the current DEK, whatever keyId says');
  t.not(moved.encrypted, original.encrypted);
  t.equal((await vault.decrypt({ keyring: 'ws_re', encrypted: moved.encrypted })).plaintext, 'keep me');
  t.equal((await vault.decrypt({ keyring: 'ws_re', encrypted: original.encrypted })).plaintext, 'keep me');
  let current = moved;
  for (let round = 0; round < 3; round++) current = await vault.reEncrypt({ keyring: 'ws_re', encrypted: current.encrypted });
  t.equal((await vault.decrypt({ keyring: 'ws_re', encrypted: current.encrypted })).plaintext, 'keep me');
});

t.test('parallel encrypts and decrypts across keyrings all round-trip', async (t) => {
  const vault = createInProcessVault();
  const keyrings = Array.from({ length: 8 }, (_, index) => `ws_par${index}`);
  const encrypted = await Promise.all(
    Array.from({ length: 200 }, (_, index) => vault.encrypt({ keyring: keyrings[index % 8]!, data: `value-${index}` }).then((result) => ({ index, ...result }))),
  );
  t.equal(new Set(encrypted.map((result) => result.keyId)).size, 8, 'one DEK per keyring despite the race');
  const decrypted = await Promise.all(encrypted.reverse().map((result) => vault.decrypt({ keyring: keyrings[result.index % 8]!, encrypted: result.encrypted })));
  t.same(decrypted.map((result) => result.plaintext), encrypted.map((result) => `value-${result.index}`));
});

t.test('counts operations by result in keygate_vault_operations_total', async (t) => {
  const metrics = new Metrics();
  const vault = createInProcessVault({ metrics });
  await vault.encrypt({ keyring: 'ws_metrics', data: 'x' });
  await t.rejects(vault.decrypt({ keyring: 'ws_metrics', encrypted: 'AAAA' }));
  const text = await metrics.render();
  t.match(text, /keygate_vault_operations_total\{operation="encrypt",result="ok"\} 1/);
  t.match(text, /keygate_vault_operations_total\{operation="decrypt",result="err:vault:crypto:malformed_payload"\} 1/);
  t.notMatch(text, /ws_metrics/, 'keyrings never become label values');
});

t.test('success counts from the synchronous fast path are published once per scrape, never twice', async (t) => {
  const metrics = new Metrics();
  const vault = createInProcessVault({ metrics });
  const first = await vault.encrypt({ keyring: 'ws_counts', data: 'x' });
  for (let index = 0; index < 3; index++) await vault.decrypt({ keyring: 'ws_counts', encrypted: first.encrypted });
  await vault.encryptBulk({ keyring: 'ws_counts', items: { a: 'x' } });
  t.match(await metrics.render(), /operation="decrypt",result="ok"\} 3\n/);
  t.match(await metrics.render(), /operation="decrypt",result="ok"\} 3\n/, 'a second scrape adds nothing');
  await vault.decrypt({ keyring: 'ws_counts', encrypted: first.encrypted });
  const text = await metrics.render();
  t.match(text, /operation="decrypt",result="ok"\} 4\n/);
  t.match(text, /operation="encrypt",result="ok"\} 1\n/);
  t.match(text, /operation="encrypt_bulk",result="ok"\} 1\n/);
});

t.test('bad requests reject the returned promise instead of throwing synchronously', async (t) => {
  const vault = createInProcessVault();
  const calls = [
    () => vault.encrypt({ keyring: '', data: 'x' }),
    () => vault.encrypt(undefined as unknown as { keyring: string; data: string }),
    () => vault.decrypt({ keyring: 'ws_1', encrypted: 'not a payload' }),
    () => vault.decrypt({ keyring: 'ws_1', encrypted: 7 as unknown as string }),
  ];
  for (const call of calls) {
    let promise: Promise<unknown> | undefined;
    t.doesNotThrow(() => {
      promise = call();
    });
    await t.rejects(promise!, { code: /^err:vault:/ });
  }
});

t.test('a configured master key is used, and two vaults on one storage share keyrings', async (t) => {
  const { generateMasterKey } = await import('../../../vault/keyring/master-keys.ts');
  const { MemoryStorage } = await import('../../../vault/storage/memory.ts');
  const masterKeys = [generateMasterKey()];
  const storage = new MemoryStorage();
  const first = createInProcessVault({ masterKeys, storage });
  const second = createInProcessVault({ masterKeys, storage });
  const { encrypted } = await first.encrypt({ keyring: 'ws_shared', data: 'shared' });
  t.equal((await second.decrypt({ keyring: 'ws_shared', encrypted })).plaintext, 'shared');
  t.equal(first.keyring.masterKeys.current.id, second.keyring.masterKeys.current.id);
});
