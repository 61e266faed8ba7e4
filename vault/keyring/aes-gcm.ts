/**
 * AES-256-GCM as the Vault format uses it (spec controlplane.md §1.2): a 12-byte random nonce,
 * no additional authenticated data, and the 16-byte tag appended to the encrypted bytes (the
 * layout of Go's `gcm.Seal`), so blobs from any implementation of the format interoperate.
 */
import { createCipheriv, createDecipheriv, randomFillSync, type KeyObject } from 'node:crypto';
import { Fault } from '../../core/fault.ts';

/** Nonce length in bytes required by the format. */
export const AES_GCM_NONCE_BYTES = 12;
/** Authentication tag length in bytes, appended to the ciphertext. */
export const AES_GCM_TAG_BYTES = 16;
/** AES-256 key length in bytes. */
export const AES_256_KEY_BYTES = 32;

// Nonces are drawn from the crypto RNG in batches: one randomFillSync per 4 KiB instead of one per
// encryption keeps the RNG off the hot path without weakening anything.
const NONCE_POOL_BYTES = 4096;
const noncePool = Buffer.allocUnsafe(NONCE_POOL_BYTES);
let noncePoolOffset = NONCE_POOL_BYTES;

/** A fresh random 12-byte nonce from the crypto RNG (its own copy, never shared). */
export function randomNonce(): Buffer {
  const nonce = Buffer.allocUnsafe(AES_GCM_NONCE_BYTES);
  takeNonceInto(nonce, 0);
  return nonce;
}

// Options objects hoisted so each call does not allocate one.
const GCM_OPTIONS = { authTagLength: AES_GCM_TAG_BYTES } as const;

/** Copies the next unused 12 bytes of the nonce pool into `target` at `offset`. */
function takeNonceInto(target: Uint8Array, offset: number): void {
  if (noncePoolOffset + AES_GCM_NONCE_BYTES > NONCE_POOL_BYTES) {
    randomFillSync(noncePool);
    noncePoolOffset = 0;
  }
  const end = noncePoolOffset + AES_GCM_NONCE_BYTES;
  noncePool.copy(target, offset, noncePoolOffset, end);
  // Zero the used bytes so a nonce can never be handed out twice even if the offset logic broke.
  noncePool.fill(0, noncePoolOffset, end);
  noncePoolOffset = end;
}

/** The result of sealing: the nonce and `ciphertext || tag`. */
export interface AesGcmSealed {
  nonce: Buffer;
  ciphertext: Buffer;
}

/**
 * Encrypts `plaintext` under `key` (32 bytes, or a secret KeyObject of that size) with a new
 * random nonce. Called once per encryption; never fails for valid keys.
 */
export function sealAesGcm(key: KeyObject | Uint8Array, plaintext: Uint8Array): AesGcmSealed {
  const nonce = randomNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce, GCM_OPTIONS);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  const tag = cipher.getAuthTag();
  return { nonce, ciphertext: Buffer.concat([head, tail, tag], head.length + tail.length + tag.length) };
}

/**
 * Encrypts `plaintext` under `key` straight into `target`, which the caller sized and laid out:
 * a new random nonce at `nonceOffset` and `ciphertext || tag` (plaintext length + 16 bytes) at
 * `ciphertextOffset`. The allocation-lean variant of {@link sealAesGcm} for the payload encoder:
 * the encrypted bytes are copied once, into their final place. Called once per encryption.
 */
export function sealAesGcmInto(key: KeyObject, plaintext: Uint8Array, target: Buffer, nonceOffset: number, ciphertextOffset: number): void {
  takeNonceInto(target, nonceOffset);
  const cipher = createCipheriv('aes-256-gcm', key, target.subarray(nonceOffset, nonceOffset + AES_GCM_NONCE_BYTES), GCM_OPTIONS);
  const head = cipher.update(plaintext);
  target.set(head, ciphertextOffset);
  let offset = ciphertextOffset + head.length;
  // GCM is a stream mode: final() returns nothing more, but copying it keeps this correct anyway.
  const tail = cipher.final();
  if (tail.length > 0) {
    target.set(tail, offset);
    offset += tail.length;
  }
  target.set(cipher.getAuthTag(), offset);
}

/**
 * Decrypts `ciphertext || tag` under `key` and `nonce`. The lengths are checked before any
 * crypto runs; a failed tag check (tampering, wrong key) throws the cheap expected fault
 * `err:vault:crypto:decryption_failed`, never a bare error and never partial plaintext.
 */
export function openAesGcm(key: KeyObject | Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array): Buffer {
  if (nonce.length !== AES_GCM_NONCE_BYTES || ciphertext.length < AES_GCM_TAG_BYTES) {
    throw Fault.expected('err:vault:crypto:malformed_payload', {
      internalMessage: `nonce must be ${AES_GCM_NONCE_BYTES} bytes and ciphertext at least ${AES_GCM_TAG_BYTES} bytes`,
    });
  }
  const tagOffset = ciphertext.length - AES_GCM_TAG_BYTES;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, GCM_OPTIONS);
    decipher.setAuthTag(ciphertext.subarray(tagOffset));
    const head = decipher.update(ciphertext.subarray(0, tagOffset));
    // final() is where the tag is verified; nothing decrypted is returned before it passes.
    const tail = decipher.final();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch (err) {
    throw Fault.expected('err:vault:crypto:decryption_failed', {
      publicMessage: 'The payload could not be decrypted: it was tampered with or belongs to another key.',
      internalMessage: 'AES-GCM authentication failed',
      cause: err,
    });
  }
}
