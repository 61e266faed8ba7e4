/**
 * The one compliance suite every `VaultStorage` implementation passes (memory, disk, S3).
 * Each implementation's test file calls {@link runStorageSuite} with a factory that returns a
 * fresh, empty store.
 */
import type { Test } from 'tap';
import type { VaultStorage } from '../../../vault/storage/vault-storage.ts';

/** What the suite needs from an implementation. */
export interface StorageSuiteOptions {
  /** A fresh, empty store; the suite closes it. */
  create(): Promise<VaultStorage>;
  /** False for stores that do not enforce create-if-absent atomically (s3rver ignores If-None-Match). */
  atomicPutIfAbsent: boolean;
}

/** Registers the shared storage cases as subtests of `t`. */
export async function runStorageSuite(t: Test, options: StorageSuiteOptions): Promise<void> {
  const withStorage = (name: string, body: (storage: VaultStorage, t: Test) => Promise<void>) =>
    t.test(name, async (t) => {
      const storage = await options.create();
      try {
        await body(storage, t);
      } finally {
        await storage.close();
      }
    });

  await withStorage('a missing object reads as undefined, not as a fault', async (storage, t) => {
    t.equal(await storage.get('keyring/ring/LATEST'), undefined);
    t.equal(await storage.get('keyring/ring/dek_missing'), undefined);
  });

  await withStorage('stores and returns exactly the bytes written, and overwrites', async (storage, t) => {
    await storage.put('keyring/ring/dek_a', Uint8Array.from([1, 2, 3]));
    t.same(Buffer.from((await storage.get('keyring/ring/dek_a'))!), Buffer.from([1, 2, 3]));
    await storage.put('keyring/ring/dek_a', Uint8Array.from([9]));
    t.same(Buffer.from((await storage.get('keyring/ring/dek_a'))!), Buffer.from([9]));
  });

  await withStorage('round-trips empty, every-byte-value and 1 MiB objects', async (storage, t) => {
    const everyByte = Uint8Array.from({ length: 256 }, (_, index) => index);
    const large = new Uint8Array(1024 * 1024);
    for (let index = 0; index < large.length; index++) large[index] = (index * 31 + 7) & 0xff;
    await storage.put('objects/empty', new Uint8Array(0));
    await storage.put('objects/binary', everyByte);
    await storage.put('objects/large', large);
    t.equal((await storage.get('objects/empty'))?.length, 0, 'empty object exists with 0 bytes');
    t.ok(Buffer.from((await storage.get('objects/binary'))!).equals(everyByte));
    t.ok(Buffer.from((await storage.get('objects/large'))!).equals(large));
  });

  await withStorage('the stored copy is not aliased to the caller buffer', async (storage, t) => {
    const bytes = Uint8Array.from([1, 2, 3]);
    await storage.put('objects/alias', bytes);
    bytes[0] = 99;
    const read = (await storage.get('objects/alias'))!;
    t.equal(read[0], 1);
    read[1] = 99;
    t.equal((await storage.get('objects/alias'))![1], 2);
  });

  await withStorage('putIfAbsent writes once and never replaces an existing object', async (storage, t) => {
    t.equal(await storage.putIfAbsent('keyring/ring/LATEST', Uint8Array.from([1])), true);
    t.equal(await storage.putIfAbsent('keyring/ring/LATEST', Uint8Array.from([2])), false);
    t.same(Buffer.from((await storage.get('keyring/ring/LATEST'))!), Buffer.from([1]));
    await storage.put('keyring/other/LATEST', Uint8Array.from([3]));
    t.equal(await storage.putIfAbsent('keyring/other/LATEST', Uint8Array.from([4])), false);
  });

  if (options.atomicPutIfAbsent) {
    await withStorage('concurrent putIfAbsent on one key: exactly one writer wins', async (storage, t) => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, index) => storage.putIfAbsent('keyring/race/LATEST', Uint8Array.from([index]))),
      );
      t.equal(results.filter(Boolean).length, 1);
      const winner = results.indexOf(true);
      t.same(Buffer.from((await storage.get('keyring/race/LATEST'))!), Buffer.from([winner]));
    });
  }

  await withStorage('lists keys by prefix, sorted, across nested paths, never partial', async (storage, t) => {
    const keys = [
      'keyring/org/team/project/LATEST',
      'keyring/org/team/project/dek_b',
      'keyring/org/team/project/dek_a',
      'keyring/ws_1/dek_x',
      'keyring/ws_1/LATEST',
      'keyring/ws_10/LATEST',
      'keyring/a:b@c+d=e~f.g-h_i/LATEST',
      'other/thing',
    ];
    await Promise.all(keys.map((key) => storage.put(key, Uint8Array.from([1]))));
    t.same(await storage.list('keyring/ws_1/'), ['keyring/ws_1/LATEST', 'keyring/ws_1/dek_x']);
    t.same(await storage.list('keyring/ws_1'), ['keyring/ws_1/LATEST', 'keyring/ws_1/dek_x', 'keyring/ws_10/LATEST']);
    t.same(await storage.list('keyring/org/team/project/dek_'), ['keyring/org/team/project/dek_a', 'keyring/org/team/project/dek_b']);
    t.same(await storage.list('keyring/'), keys.filter((key) => key.startsWith('keyring/')).sort());
    t.same(await storage.list(''), [...keys].sort(), 'an empty prefix lists everything');
    t.same(await storage.list('keyring/nothing/'), []);
    t.same(Buffer.from((await storage.get('keyring/a:b@c+d=e~f.g-h_i/LATEST'))!), Buffer.from([1]));
  });

  await withStorage('lists more keys than one page holds', async (storage, t) => {
    const keys = Array.from({ length: 25 }, (_, index) => `keyring/many/dek_${String(index).padStart(3, '0')}`);
    await Promise.all(keys.map((key) => storage.put(key, Uint8Array.from([1]))));
    t.same(await storage.list('keyring/many/'), keys);
  });

  await withStorage('rejects keys that could escape or alias: empty, absolute, dot segments, NUL, backslash', async (storage, t) => {
    const bad = ['', '/etc/passwd', '../outside', 'keyring/../../outside', 'keyring//LATEST', 'keyring/./LATEST', 'a\0b', 'a\\..\\b', 'keyring/ring/', 'x'.repeat(1025)];
    for (const key of bad) {
      for (const operation of [() => storage.put(key, Uint8Array.from([1])), () => storage.get(key), () => storage.putIfAbsent(key, Uint8Array.from([1]))] as Array<() => Promise<unknown>>) {
        await t.rejects(operation() as Promise<void>, { name: 'Fault', code: 'err:vault:request:invalid_argument' }, `rejects ${JSON.stringify(key.slice(0, 40))}`);
      }
    }
  });

  await withStorage('many concurrent writes to different keys all land', async (storage, t) => {
    await Promise.all(Array.from({ length: 40 }, (_, index) => storage.put(`keyring/concurrent/dek_${index}`, Uint8Array.from([index]))));
    const listed = await storage.list('keyring/concurrent/');
    t.equal(listed.length, 40);
    for (let index = 0; index < 40; index++) {
      t.equal((await storage.get(`keyring/concurrent/dek_${index}`))![0], index);
    }
  });
}
