import { randomBytes } from 'node:crypto';
import t from 'tap';
import { S3Storage } from '../../../vault/storage/s3.ts';
import { startS3rver } from '../s3rver.ts';
import { runStorageSuite } from './storage-suite.ts';

const s3 = await startS3rver();
t.teardown(() => s3.stop());

function open(bucket: string, extra: Partial<Parameters<typeof S3Storage.open>[0]> = {}): Promise<S3Storage> {
  return S3Storage.open({
    bucket,
    endpoint: s3.endpoint,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    createBucket: true,
    requestTimeoutMs: 5_000,
    // Small pages so that the suite's 25-key listing crosses several pages.
    listPageSize: 10,
    ...extra,
  });
}

// A unique bucket per store: the suite expects a fresh, empty store each time.
await runStorageSuite(t, { create: () => open('vault-' + randomBytes(6).toString('hex')), atomicPutIfAbsent: false });

t.test('a key prefix keeps two stores in one bucket apart', async (t) => {
  const bucket = 'vault-' + randomBytes(6).toString('hex');
  const first = await open(bucket, { keyPrefix: 'one/' });
  const second = await open(bucket, { keyPrefix: 'two/' });
  t.teardown(async () => { await first.close(); await second.close(); });
  await first.put('keyring/r/LATEST', Uint8Array.from([1]));
  t.equal(await second.get('keyring/r/LATEST'), undefined);
  t.same(await first.list(''), ['keyring/r/LATEST']);
  t.same(await second.list(''), []);
});

t.test('opening an existing bucket again is fine', async (t) => {
  const bucket = 'vault-' + randomBytes(6).toString('hex');
  const first = await open(bucket);
  const second = await open(bucket);
  t.teardown(async () => { await first.close(); await second.close(); });
  await first.put('a/b', Uint8Array.from([5]));
  t.same(Buffer.from((await second.get('a/b'))!), Buffer.from([5]));
});

t.test('an unreachable store is a retryable storage fault, not a missing object', async (t) => {
  const storage = new S3Storage({
    bucket: 'nowhere',
    endpoint: 'http://127.0.0.1:1',
    accessKeyId: 'x',
    secretAccessKey: 'y',
    requestTimeoutMs: 2_000,
  });
  t.teardown(() => storage.close());
  await t.rejects(storage.get('keyring/r/LATEST'), { code: 'err:vault:storage:unavailable', retryable: true });
  await t.rejects(storage.put('keyring/r/LATEST', Uint8Array.from([1])), { code: 'err:vault:storage:unavailable' });
});

t.test('a missing bucket is a storage fault, not a missing object', async (t) => {
  const storage = await open('vault-missing-' + randomBytes(6).toString('hex'), { createBucket: false });
  t.teardown(() => storage.close());
  await t.rejects(storage.get('keyring/r/LATEST'), { code: 'err:vault:storage:unavailable' });
});

t.test('the keyring works on S3: encrypt, roll, decrypt from another node, via openStorage', async (t) => {
  const { Keyring } = await import('../../../vault/keyring/keyring.ts');
  const { MasterKeys } = await import('../../../vault/keyring/master-keys.ts');
  const { openStorage } = await import('../../../vault/storage/open-storage.ts');
  const connection = { endpoint: s3.endpoint, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, createBucket: true };
  const location = `s3://vault-${randomBytes(6).toString('hex')}/keygate/vault`;
  const storageA = await openStorage(location, connection);
  const storageB = await openStorage(location, connection);
  t.teardown(async () => { await storageA.close(); await storageB.close(); });
  t.equal(storageA.kind, 's3');
  const masterKeys = MasterKeys.generate();
  const nodeA = new Keyring({ storage: storageA, masterKeys });
  const nodeB = new Keyring({ storage: storageB, masterKeys });
  const first = await nodeA.encrypt('ws_s3', Buffer.from('on s3'));
  const rolled = await nodeA.rollDek('ws_s3');
  const second = await nodeA.encrypt('ws_s3', Buffer.from('after roll'));
  t.equal(second.dekId, rolled);
  t.equal((await nodeB.decrypt('ws_s3', first.encrypted)).toString(), 'on s3');
  t.equal((await nodeB.decrypt('ws_s3', second.encrypted)).toString(), 'after roll');
  t.equal((await nodeB.reEncrypt('ws_s3', first.encrypted)).dekId, rolled);
  t.same((await storageB.list('keyring/ws_s3/')).length, 3, 'two DEK objects and LATEST, under the key prefix');
});
