import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DiskStorage } from '../../../vault/storage/disk.ts';
import { MemoryStorage } from '../../../vault/storage/memory.ts';
import { openStorage } from '../../../vault/storage/open-storage.ts';
import { S3Storage } from '../../../vault/storage/s3.ts';

t.test('picks the backend from the location', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-open-storage-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.ok((await openStorage('memory:')) instanceof MemoryStorage);
  const disk = await openStorage(dir);
  t.ok(disk instanceof DiskStorage);
  t.equal((disk as DiskStorage).root, dir);
  const s3 = await openStorage('s3://my-bucket/some/prefix', { endpoint: 'http://127.0.0.1:1', accessKeyId: 'x', secretAccessKey: 'y' });
  t.ok(s3 instanceof S3Storage);
  t.equal((s3 as S3Storage).bucket, 'my-bucket');
  t.equal((s3 as S3Storage).keyPrefix, 'some/prefix/');
  await s3.close();
  const bare = (await openStorage('s3://my-bucket', { endpoint: 'http://127.0.0.1:1' })) as S3Storage;
  t.equal(bare.keyPrefix, '');
  await bare.close();
});

t.test('rejects an invalid bucket name or an empty location as configuration faults', async (t) => {
  await t.rejects(openStorage('s3://'), { code: 'err:keygate:config:invalid' });
  await t.rejects(openStorage('s3://Bad_Bucket'), { code: 'err:keygate:config:invalid' });
  await t.rejects(openStorage('  '), { code: 'err:keygate:config:invalid' });
});
