import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DiskStorage } from '../../../vault/storage/disk.ts';
import { runStorageSuite } from './storage-suite.ts';

const roots: string[] = [];
function freshRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'keygate-vault-disk-'));
  roots.push(root);
  return root;
}
t.teardown(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

await runStorageSuite(t, { create: async () => new DiskStorage(join(freshRoot(), 'vault')), atomicPutIfAbsent: true });

t.test('objects persist across instances on the same directory', async (t) => {
  const root = freshRoot();
  await new DiskStorage(root).put('keyring/ws_1/LATEST', Uint8Array.from([7, 8]));
  t.same(Buffer.from((await new DiskStorage(root).get('keyring/ws_1/LATEST'))!), Buffer.from([7, 8]));
});

t.test('never writes outside its root, whatever the key', async (t) => {
  const parent = freshRoot();
  const root = join(parent, 'root');
  const storage = new DiskStorage(root);
  for (const key of ['../escape', 'a/../../escape', '/escape', 'keyring/.vault-x.tmp']) {
    await t.rejects(storage.put(key, Uint8Array.from([1])), { code: 'err:vault:request:invalid_argument' });
  }
  t.same(readdirSync(parent), [], 'nothing was created next to the root, not even the root');
});

t.test('a leftover temp file from a crashed write is invisible and harmless', async (t) => {
  const root = freshRoot();
  const storage = new DiskStorage(root);
  await storage.put('keyring/ws_1/LATEST', Uint8Array.from([1]));
  // What a crash between write and rename leaves behind.
  writeFileSync(join(root, 'keyring/ws_1/.vault-deadbeef.tmp'), 'partial');
  t.same(await storage.list('keyring/'), ['keyring/ws_1/LATEST']);
  t.same(Buffer.from((await storage.get('keyring/ws_1/LATEST'))!), Buffer.from([1]));
  await storage.put('keyring/ws_1/LATEST', Uint8Array.from([2]));
  t.same(Buffer.from((await storage.get('keyring/ws_1/LATEST'))!), Buffer.from([2]));
});

t.test('successful writes leave no temp files behind', async (t) => {
  const root = freshRoot();
  const storage = new DiskStorage(root);
  await storage.put('keyring/r/dek_a', Uint8Array.from([1]));
  await storage.putIfAbsent('keyring/r/LATEST', Uint8Array.from([1]));
  await storage.putIfAbsent('keyring/r/LATEST', Uint8Array.from([2]));
  t.same(readdirSync(join(root, 'keyring/r')).sort(), ['LATEST', 'dek_a']);
});

t.test('a key that names a directory reads as missing', async (t) => {
  const root = freshRoot();
  mkdirSync(join(root, 'keyring/dir'), { recursive: true });
  const storage = new DiskStorage(root);
  t.equal(await storage.get('keyring/dir'), undefined);
  t.ok(existsSync(join(root, 'keyring/dir')));
});
