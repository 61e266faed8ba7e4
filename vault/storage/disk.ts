/**
 * `DiskStorage`: a `VaultStorage` in a directory, the single-node default (`<data-dir>/vault`).
 *
 * Writes are atomic: the bytes go to a temp file `.vault-<random>.tmp` in the target directory,
 * are fsynced, and are renamed over the target (or hard-linked for `putIfAbsent`, which fails
 * with EEXIST when the target exists, so the create-if-absent is atomic too); then the directory
 * is fsynced. A crash leaves either the old or the new object, plus at worst a temp file that
 * listings skip. Keys never leave the root: every key passes `assertObjectKey`, segments that
 * look like temp files are refused, and the resolved path is checked to be under the root.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Fault } from '../../core/fault.ts';
import { assertObjectKey, MAX_LISTED_KEYS, storageUnavailable, type VaultStorage } from './vault-storage.ts';

const TEMP_PREFIX = '.vault-';
const TEMP_SUFFIX = '.tmp';

/** Directory-backed storage rooted at `root` (created on first write). */
export class DiskStorage implements VaultStorage {
  readonly kind = 'disk';
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const path = this.#pathOf(key);
    const tempPath = await this.#writeTemp(path, bytes, 'put', key);
    try {
      await rename(tempPath, path);
    } catch (err) {
      await unlink(tempPath).catch(() => {});
      throw storageUnavailable('put', key, err);
    }
    await syncDirectory(dirname(path));
  }

  async putIfAbsent(key: string, bytes: Uint8Array): Promise<boolean> {
    const path = this.#pathOf(key);
    const tempPath = await this.#writeTemp(path, bytes, 'putIfAbsent', key);
    try {
      await link(tempPath, path);
    } catch (err) {
      if (errorCode(err) === 'EEXIST') return false;
      throw storageUnavailable('putIfAbsent', key, err);
    } finally {
      await unlink(tempPath).catch(() => {});
    }
    await syncDirectory(dirname(path));
    return true;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const path = this.#pathOf(key);
    try {
      return new Uint8Array(await readFile(path));
    } catch (err) {
      const code = errorCode(err);
      // ENOTDIR: a path component is a file; EISDIR: the key names a directory. Neither is an object.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
      throw storageUnavailable('get', key, err);
    }
  }

  async list(prefix: string): Promise<string[]> {
    // Walk only the deepest directory the prefix fully names, not the whole tree.
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash < 0 ? '' : prefix.slice(0, slash);
    if (baseKey !== '') assertObjectKey(baseKey);
    const keys: string[] = [];
    try {
      await this.#walk(baseKey === '' ? this.root : this.#pathOf(baseKey), baseKey, prefix, keys);
    } catch (err) {
      throw storageUnavailable('list', prefix, err);
    }
    return keys.sort();
  }

  async close(): Promise<void> {}

  async #walk(directory: string, directoryKey: string, prefix: string, keys: string[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch (err) {
      const code = errorCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw err;
    }
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_PREFIX)) continue;
      const key = directoryKey === '' ? entry.name : directoryKey + '/' + entry.name;
      // Symbolic links are neither followed nor listed: they cannot have been written by us.
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(key + '/')) await this.#walk(join(directory, entry.name), key, prefix, keys);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        if (keys.length === MAX_LISTED_KEYS) throw new Error(`more than ${MAX_LISTED_KEYS} keys`);
        keys.push(key);
      }
    }
  }

  async #writeTemp(path: string, bytes: Uint8Array, operation: string, key: string): Promise<string> {
    const tempPath = join(dirname(path), TEMP_PREFIX + randomBytes(8).toString('hex') + TEMP_SUFFIX);
    try {
      await mkdir(dirname(path), { recursive: true });
      const handle = await open(tempPath, 'wx', 0o600);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return tempPath;
    } catch (err) {
      await unlink(tempPath).catch(() => {});
      throw storageUnavailable(operation, key, err);
    }
  }

  #pathOf(key: string): string {
    assertObjectKey(key);
    if (key.split('/').some((segment) => segment.startsWith(TEMP_PREFIX))) {
      throw Fault.expected('err:vault:request:invalid_argument', { publicMessage: 'Invalid storage key: reserved name.' });
    }
    const path = resolve(this.root, key);
    // Belt and braces after assertObjectKey: the resolved path must stay inside the root.
    if (!path.startsWith(this.root + sep)) {
      throw Fault.expected('err:vault:request:invalid_argument', { publicMessage: 'Invalid storage key: outside the root.' });
    }
    return path;
  }
}

async function syncDirectory(directory: string): Promise<void> {
  // Makes the rename durable; failure here is not worth failing the write for (some filesystems
  // refuse fsync on directories), because the data itself is already synced.
  try {
    const handle = await open(directory, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {}
}

function errorCode(err: unknown): string | undefined {
  return err !== null && typeof err === 'object' && 'code' in err ? String(err.code) : undefined;
}
