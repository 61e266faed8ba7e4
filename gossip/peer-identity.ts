/**
 * `PeerIdentity`: a node's libp2p identity (an Ed25519 key pair; the peer id derives from its
 * public key), persisted in the data directory so a restarted node keeps its peer id and its
 * peers recognise it. The private key file is `<dataDir>/gossip/peer-key` (libp2p's protobuf
 * key encoding, mode 0600). It is created atomically: a crash mid-write leaves no half key.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PeerId, PrivateKey } from '@libp2p/interface';
import { Fault } from '../core/fault.ts';

/** File name of the identity under `<dataDir>/gossip/`. */
export const PEER_KEY_FILE_NAME = 'peer-key';
/** Largest identity file read (an Ed25519 key encodes to 68 bytes; RSA keys are a few KiB). */
export const MAX_PEER_KEY_FILE_BYTES = 16 * 1024;

/** A node's libp2p identity. */
export class PeerIdentity {
  /** The key libp2p signs with; never logged. */
  readonly privateKey: PrivateKey;
  /** The peer id derived from the public key. */
  readonly peerId: PeerId;

  constructor(privateKey: PrivateKey) {
    this.privateKey = privateKey;
    this.peerId = peerIdFromPrivateKey(privateKey);
  }

  /** A fresh identity that is not persisted (tests, throwaway nodes). */
  static async ephemeral(): Promise<PeerIdentity> {
    return new PeerIdentity(await generateKeyPair('Ed25519'));
  }

  /**
   * Reads `<dataDir>/gossip/peer-key`, or creates it with a new Ed25519 key when absent. At
   * boot. Throws `Fault` `err:keygate:gossip:identity_invalid` when the file exists but is not
   * a key, or the directory cannot be written.
   */
  static async loadOrCreate(dataDir: string): Promise<PeerIdentity> {
    const directory = join(dataDir, 'gossip');
    const path = join(directory, PEER_KEY_FILE_NAME);
    const existing = await readIfPresent(path);
    if (existing !== undefined) return new PeerIdentity(decode(existing, path));
    const privateKey = await generateKeyPair('Ed25519');
    try {
      await mkdir(directory, { recursive: true, mode: 0o700 });
      await writeExclusively(path, privateKeyToProtobuf(privateKey));
    } catch (err) {
      // Another process created it first: use theirs, so both agree on one identity.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return PeerIdentity.loadOrCreate(dataDir);
      throw identityFault(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
    }
    return new PeerIdentity(privateKey);
  }
}

async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    const bytes = await readFile(path);
    if (bytes.byteLength > MAX_PEER_KEY_FILE_BYTES) throw identityFault(`${path} is larger than ${MAX_PEER_KEY_FILE_BYTES} bytes`);
    return bytes;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof Fault) throw err;
    throw identityFault(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
  }
}

function decode(bytes: Uint8Array, path: string): PrivateKey {
  try {
    return privateKeyFromProtobuf(bytes);
  } catch (err) {
    throw identityFault(`${path} is not a libp2p private key; move it away to create a new identity`, err);
  }
}

// Write to a temporary file, then hard-link it into place: link fails with EEXIST rather than
// replacing, and the key file never exists half-written.
async function writeExclusively(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temporary, path);
  } finally {
    await unlink(temporary);
  }
}

function identityFault(message: string, cause?: unknown): Fault {
  return new Fault('err:keygate:gossip:identity_invalid', { internalMessage: message, cause });
}
