import t from 'tap';
import { MemoryStorage } from '../../../vault/storage/memory.ts';
import { runStorageSuite } from './storage-suite.ts';

await runStorageSuite(t, { create: async () => new MemoryStorage(), atomicPutIfAbsent: true });

t.test('refuses new objects beyond maxObjects with a storage fault, but allows overwrites', async (t) => {
  const storage = new MemoryStorage({ maxObjects: 2 });
  await storage.put('a/1', Uint8Array.from([1]));
  await storage.put('a/2', Uint8Array.from([1]));
  await storage.put('a/2', Uint8Array.from([2]));
  await t.rejects(storage.put('a/3', Uint8Array.from([1])), { name: 'Fault', code: 'err:vault:storage:unavailable' });
});
