/**
 * `ClusterKey`: the pre-shared key of a gossip cluster. Only nodes holding it can complete a
 * connection: every byte between nodes is first encrypted with it (libp2p private networks,
 * `@libp2p/pnet`, XSalsa20), beneath the Noise handshake. The file format is libp2p's swarm
 * key v1, so the key interoperates with other libp2p private networks:
 *
 * ```
 * /key/swarm/psk/1.0.0/
 * /base16/
 * <64 hex digits>
 * ```
 *
 * The key never reaches a log: `toString`, `toJSON` and `inspect` show only its fingerprint.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Fault } from '../core/fault.ts';

/** Bytes of key material (libp2p pnet uses 256-bit keys). */
export const CLUSTER_KEY_BYTES = 32;
/** Largest cluster key file read; a key file is about 90 bytes. */
export const MAX_CLUSTER_KEY_FILE_BYTES = 4096;

const HEADER = '/key/swarm/psk/1.0.0/';
const ENCODING = '/base16/';

/** A cluster key; see the file comment. */
export class ClusterKey {
  readonly #material: Buffer;
  /** First 16 hex digits of sha256 of the key: safe to log, equal on every node of one cluster. */
  readonly fingerprint: string;

  private constructor(material: Buffer) {
    this.#material = material;
    this.fingerprint = createHash('sha256').update(material).digest('hex').slice(0, 16);
  }

  /** A new random key (crypto RNG). */
  static generate(): ClusterKey {
    return new ClusterKey(randomBytes(CLUSTER_KEY_BYTES));
  }

  /**
   * Parses the swarm-key v1 text. Throws `Fault` `err:keygate:gossip:cluster_key_invalid`
   * (naming `source`, never the content) when it is not one.
   */
  static parse(text: string, source = 'cluster key'): ClusterKey {
    const lines = text.split(/\r\n|\r|\n/).map((line) => line.trim());
    const hex = lines[2] ?? '';
    if (lines[0] !== HEADER || lines[1] !== ENCODING || !/^[0-9a-fA-F]{64}$/.test(hex) || lines.slice(3).some((line) => line !== '')) {
      throw new Fault('err:keygate:gossip:cluster_key_invalid', {
        internalMessage: `${source} is not a libp2p swarm key (${HEADER}, ${ENCODING}, then 64 hex digits); create one with \`keygate gossip keygen\``,
      });
    }
    return new ClusterKey(Buffer.from(hex, 'hex'));
  }

  /** Reads and parses a key file. Throws `Fault` `err:keygate:gossip:cluster_key_invalid` when missing, too large or malformed. */
  static async readFile(path: string): Promise<ClusterKey> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new Fault('err:keygate:gossip:cluster_key_invalid', {
        internalMessage: `cannot read the cluster key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        cause: err,
      });
    }
    if (bytes.byteLength > MAX_CLUSTER_KEY_FILE_BYTES) {
      throw new Fault('err:keygate:gossip:cluster_key_invalid', { internalMessage: `the cluster key file ${path} is larger than ${MAX_CLUSTER_KEY_FILE_BYTES} bytes` });
    }
    return ClusterKey.parse(bytes.toString('utf8'), `the cluster key file ${path}`);
  }

  /**
   * Writes the key file readable by its owner only (mode 0600), creating parent directories.
   * Refuses to replace an existing file unless `overwrite` (replacing a cluster's key splits it).
   */
  async writeFile(path: string, options: { overwrite?: boolean } = {}): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    let handle;
    try {
      handle = await open(path, options.overwrite === true ? 'w' : 'wx', 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Fault('err:keygate:gossip:cluster_key_invalid', {
        internalMessage: code === 'EEXIST' ? `${path} already exists; pass --force to replace it (every node then needs the new key)` : `cannot write ${path}: ${code ?? (err as Error).message}`,
        cause: err,
      });
    }
    try {
      await handle.chmod(0o600);
      await handle.writeFile(this.toFileText(), 'utf8');
    } finally {
      await handle.close();
    }
  }

  /** The swarm-key v1 text (contains the secret: for key files only). */
  toFileText(): string {
    return `${HEADER}\n${ENCODING}\n${this.#material.toString('hex')}\n`;
  }

  /** The bytes `@libp2p/pnet`'s `preSharedKey({ psk })` expects. */
  toPnetBytes(): Uint8Array {
    return new TextEncoder().encode(`${HEADER}\n${ENCODING}\n${this.#material.toString('hex')}`);
  }

  /** True when both keys are the same (constant time is not needed: both are local). */
  equals(other: ClusterKey): boolean {
    return this.fingerprint === other.fingerprint && this.#material.equals(other.#material);
  }

  /** `[cluster key <fingerprint>]`: never the key. */
  toString(): string {
    return `[cluster key ${this.fingerprint}]`;
  }

  /** Same as {@link toString}, so a key inside a logged object stays hidden. */
  toJSON(): string {
    return this.toString();
  }

  /** Same as {@link toString} for `console.log` and `util.inspect`. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
