/**
 * `openStorage`: picks the storage backend from the `vault.storage` setting: an `s3://bucket`
 * or `s3://bucket/key/prefix` URL opens {@link S3Storage}, `memory:` opens
 * {@link MemoryStorage}, and anything else is a directory for {@link DiskStorage}. Called once
 * at boot.
 */
import { Fault } from '../../core/fault.ts';
import { DiskStorage } from './disk.ts';
import { MemoryStorage } from './memory.ts';
import { S3Storage, type S3StorageOptions } from './s3.ts';
import type { VaultStorage } from './vault-storage.ts';

/** S3 connection settings that do not fit in the `s3://` URL. */
export type S3ConnectionOptions = Omit<S3StorageOptions, 'bucket' | 'keyPrefix'>;

/** Opens the backend named by `location`; `s3` applies only to `s3://` locations. */
export async function openStorage(location: string, s3: S3ConnectionOptions = {}): Promise<VaultStorage> {
  if (location === 'memory:') return new MemoryStorage();
  if (location.startsWith('s3://')) {
    const rest = location.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    let keyPrefix = slash < 0 ? '' : rest.slice(slash + 1);
    if (keyPrefix !== '' && !keyPrefix.endsWith('/')) keyPrefix += '/';
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new Fault('err:keygate:config:invalid', { publicMessage: `vault.storage: ${JSON.stringify(bucket)} is not a valid bucket name` });
    }
    return S3Storage.open({ ...s3, bucket, keyPrefix });
  }
  if (location.trim() === '') throw new Fault('err:keygate:config:invalid', { publicMessage: 'vault.storage must not be empty' });
  return new DiskStorage(location);
}
