/**
 * The encrypted payload string that callers store: base64 (standard, padded) of the protobuf
 * `vault.v1.Encrypted` (spec controlplane.md §1.3). Decoding is strict and validates everything
 * before any crypto or storage access runs (spec pitfall 2): padded base64, a protobuf with no
 * bytes beyond its fields (no trailing junk, duplicated or unknown fields, padded varints), a known
 * algorithm, a 12-byte nonce, at least a tag's worth of ciphertext, and a DEK id that is a safe
 * storage path segment (it becomes part of `keyring/<ring>/<dek_id>`).
 *
 * The codec is written by hand for this one small message rather than through protobufjs
 * reflection: it runs twice per encrypt+decrypt pair, and the generic path cost more than the
 * cipher setup. The bytes are those protobufjs, Go's proto.Marshal and protobuf-es write (fields in
 * number order, minimal varints, the proto3 default `algorithm = 0` omitted); the tests compare
 * this codec with protobufjs on random and fuzzed messages.
 */
import type { KeyObject } from 'node:crypto';
import { Fault } from '../../core/fault.ts';
import { AES_GCM_NONCE_BYTES, AES_GCM_TAG_BYTES, sealAesGcmInto } from './aes-gcm.ts';

/** A decoded and validated payload. */
export interface EncryptedPayload {
  nonce: Uint8Array;
  /** Encrypted bytes followed by the 16-byte GCM tag. */
  ciphertext: Uint8Array;
  /** Id of the DEK that sealed it. */
  dekId: string;
  /** Unix ms at encryption. Informational: the format does not authenticate it. */
  timeMs: number;
}

/** Longest accepted payload string: 64 MiB of base64, far above any sane secret. */
export const MAX_PAYLOAD_CHARS = 64 * 1024 * 1024;

/** A DEK id as the format writes it (`dek_` + alphanumerics); anything else is rejected. */
export const DEK_ID_PATTERN = /^dek_[A-Za-z0-9]{1,64}$/;

/** Encodes a payload to its string form. Called once per encryption. */
export function encodePayload(payload: EncryptedPayload): string {
  return encodePayloadBytes(payload).toString('base64');
}

/** Encodes a payload to its binary protobuf form (what the string form base64-encodes). */
export function encodePayloadBytes(payload: EncryptedPayload): Buffer {
  const layout = layoutOf(payload.nonce.length, payload.ciphertext.length, payload.dekId, payload.timeMs);
  const bytes = Buffer.allocUnsafe(layout.totalBytes);
  writeFrame(bytes, layout, payload.nonce.length, payload.ciphertext.length, payload.dekId, payload.timeMs);
  bytes.set(payload.nonce, layout.nonceOffset);
  bytes.set(payload.ciphertext, layout.ciphertextOffset);
  return bytes;
}

/**
 * Seals `plaintext` with AES-256-GCM under `key` and encodes the payload string in one pass: the
 * encrypted bytes are written straight into the message buffer. Same bytes as
 * `encodePayload({nonce, ciphertext: sealAesGcm(...), dekId, timeMs})`. Called once per encryption.
 */
export function sealPayload(key: KeyObject, plaintext: Uint8Array, dekId: string, timeMs: number): string {
  const ciphertextBytes = plaintext.length + AES_GCM_TAG_BYTES;
  const layout = layoutOf(AES_GCM_NONCE_BYTES, ciphertextBytes, dekId, timeMs);
  const bytes = Buffer.allocUnsafe(layout.totalBytes);
  writeFrame(bytes, layout, AES_GCM_NONCE_BYTES, ciphertextBytes, dekId, timeMs);
  sealAesGcmInto(key, plaintext, bytes, layout.nonceOffset, layout.ciphertextOffset);
  return bytes.toString('base64');
}

/**
 * Decodes and validates a payload string. Throws `err:vault:crypto:malformed_payload` (an
 * expected fault) for anything that is not a well-formed payload; never throws anything else.
 */
export function decodePayload(encoded: string): EncryptedPayload {
  if (typeof encoded !== 'string' || encoded.length === 0 || encoded.length > MAX_PAYLOAD_CHARS) {
    throw malformed('the payload must be a non-empty base64 string');
  }
  const bytes = Buffer.from(encoded, 'base64');
  // Buffer's decoder skips characters outside the alphabet (whitespace, junk) and tolerates
  // missing padding: both show up as a length that differs from what the string length
  // promises. (The URL-safe alphabet decodes to the same bytes, so it cannot change a payload.)
  if (encoded.length % 4 !== 0 || bytes.length !== Buffer.byteLength(encoded, 'base64')) {
    throw malformed('the payload is not padded base64');
  }
  return decodePayloadBytes(bytes);
}

/**
 * Decodes and validates the binary form; same failure contract as {@link decodePayload}. The
 * returned nonce and ciphertext are views into `bytes`, not copies.
 *
 * Every producer of this format (Go proto.Marshal, protobuf-es, protobufjs) writes each field
 * once, with its own wire type and minimal varints, and nothing else. Accepting exactly that (in
 * any field order, as protobuf requires) closes the malleability the reference tolerates:
 * trailing bytes, repeated or unknown fields, padded varints, an explicit default algorithm.
 */
export function decodePayloadBytes(bytes: Uint8Array): EncryptedPayload {
  const length = bytes.length;
  let nonce: Uint8Array | undefined;
  let ciphertext: Uint8Array | undefined;
  let dekId: string | undefined;
  let timeMs: number | undefined;
  let position = 0;
  while (position < length) {
    // Every field of Encrypted has a one-byte tag; a longer tag is an unknown field number.
    const tag = bytes[position++]!;
    if (tag === TAG_ALGORITHM) {
      // proto3 never writes the default AES_256_GCM = 0; any other value is unknown.
      throw malformed(readVarint32(bytes, position) > 0 ? 'unknown algorithm' : 'the payload carries bytes beyond its fields');
    }
    if (tag === TAG_TIME) {
      if (timeMs !== undefined) throw malformed('the time field is repeated');
      const end = varintEnd(bytes, position, MAX_VARINT64_BYTES);
      timeMs = int64FromVarint(bytes, position, end);
      // Zero is the proto3 default and never written.
      if (timeMs === 0) throw malformed('the payload carries bytes beyond its fields');
      position = end;
      continue;
    }
    if (tag !== TAG_NONCE && tag !== TAG_CIPHERTEXT && tag !== TAG_KEY_ID) throw malformed('unknown or mistyped field');
    const fieldLength = readVarint32(bytes, position);
    if (fieldLength < 0) throw malformed('a length is truncated or not minimal');
    const start = position + varintLength(fieldLength);
    const end = start + fieldLength;
    if (end > length) throw malformed('a field runs past the end of the payload');
    position = end;
    if (tag === TAG_NONCE) {
      if (nonce !== undefined) throw malformed('the nonce is repeated');
      nonce = bytes.subarray(start, end);
    } else if (tag === TAG_CIPHERTEXT) {
      if (ciphertext !== undefined) throw malformed('the ciphertext is repeated');
      ciphertext = bytes.subarray(start, end);
    } else {
      if (dekId !== undefined) throw malformed('the key id is repeated');
      dekId = dekIdOf(bytes, start, end);
    }
  }
  if (nonce === undefined || nonce.length !== AES_GCM_NONCE_BYTES) throw malformed(`the nonce must be ${AES_GCM_NONCE_BYTES} bytes`);
  if (ciphertext === undefined || ciphertext.length < AES_GCM_TAG_BYTES) throw malformed('the ciphertext is shorter than the tag');
  if (dekId === undefined) throw malformed('the key id is not a DEK id');
  return { nonce, ciphertext, dekId, timeMs: timeMs ?? 0 };
}

// Tag bytes: field number << 3 | wire type (0 varint, 2 length-delimited).
const TAG_ALGORITHM = (1 << 3) | 0;
const TAG_NONCE = (2 << 3) | 2;
const TAG_CIPHERTEXT = (3 << 3) | 2;
const TAG_KEY_ID = (4 << 3) | 2;
const TAG_TIME = (5 << 3) | 0;
const MAX_VARINT64_BYTES = 10;
const DEK_ID_PREFIX = 'dek_';
const MAX_DEK_ID_BYTES = 68;

interface Layout {
  nonceOffset: number;
  ciphertextOffset: number;
  keyIdOffset: number;
  timeOffset: number;
  totalBytes: number;
}

/** Where each field goes in the canonical encoding (fields in number order, time only if non-zero). */
function layoutOf(nonceBytes: number, ciphertextBytes: number, dekId: string, timeMs: number): Layout {
  const nonceOffset = 1 + varintLength(nonceBytes);
  const ciphertextOffset = nonceOffset + nonceBytes + 1 + varintLength(ciphertextBytes);
  const keyIdBytes = Buffer.byteLength(dekId);
  const keyIdOffset = ciphertextOffset + ciphertextBytes + 1 + varintLength(keyIdBytes);
  const timeOffset = keyIdOffset + keyIdBytes;
  const totalBytes = timeOffset + (timeMs === 0 ? 0 : 1 + int64VarintLength(timeMs));
  return { nonceOffset, ciphertextOffset, keyIdOffset, timeOffset, totalBytes };
}

/** Writes every byte of the message except the nonce and ciphertext values. */
function writeFrame(bytes: Buffer, layout: Layout, nonceBytes: number, ciphertextBytes: number, dekId: string, timeMs: number): void {
  bytes[0] = TAG_NONCE;
  writeVarint(bytes, 1, nonceBytes);
  let position = layout.nonceOffset + nonceBytes;
  bytes[position++] = TAG_CIPHERTEXT;
  position = writeVarint(bytes, position, ciphertextBytes);
  position += ciphertextBytes;
  bytes[position++] = TAG_KEY_ID;
  position = writeVarint(bytes, position, layout.timeOffset - layout.keyIdOffset);
  bytes.write(dekId, position, 'utf8');
  if (timeMs !== 0) {
    bytes[layout.timeOffset] = TAG_TIME;
    writeInt64Varint(bytes, layout.timeOffset + 1, timeMs);
  }
}

/** A DEK id read straight from its bytes: `dek_` and 1–64 ASCII letters or digits, else malformed. */
function dekIdOf(bytes: Uint8Array, start: number, end: number): string {
  const idLength = end - start;
  if (idLength <= DEK_ID_PREFIX.length || idLength > MAX_DEK_ID_BYTES) throw malformed('the key id is not a DEK id');
  for (let index = 0; index < idLength; index++) {
    const byte = bytes[start + index]!;
    const ok = index < DEK_ID_PREFIX.length ? byte === DEK_ID_PREFIX.charCodeAt(index) : isAsciiAlphanumeric(byte);
    if (!ok) throw malformed('the key id is not a DEK id');
  }
  return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
}

function isAsciiAlphanumeric(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
}

/**
 * Reads a minimal varint of at most 5 bytes that fits in 31 bits (lengths, the algorithm) at
 * `start`; -1 when it is truncated, padded or too large. A minimal varint's length follows from
 * its value, so the caller finds its end with `start + varintLength(value)`.
 */
function readVarint32(bytes: Uint8Array, start: number): number {
  const first = bytes[start];
  if (first === undefined) return -1;
  if (first < 0x80) return first;
  let value = first & 0x7f;
  let scale = 0x80;
  for (let position = start + 1; position < start + 5 && position < bytes.length; position++) {
    const byte = bytes[position]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      // A last byte of 0 after others is padding: the canonical encoding is shorter.
      return byte !== 0 && value <= 0x7fffffff ? value : -1;
    }
    scale *= 0x80;
  }
  return -1;
}

/** Index after a minimal varint of at most `maxBytes` starting at `start`; throws malformed otherwise. */
function varintEnd(bytes: Uint8Array, start: number, maxBytes: number): number {
  for (let index = 0; index < maxBytes && start + index < bytes.length; index++) {
    const byte = bytes[start + index]!;
    if (byte < 0x80) {
      if (index > 0 && byte === 0) throw malformed('a varint is padded');
      return start + index + 1;
    }
  }
  throw malformed('a varint is truncated or too long');
}

/**
 * The int64 a varint in `bytes[start, end)` encodes, as a number. Times are unix ms, far inside
 * 2^53; a value a number cannot hold exactly is rejected rather than rounded.
 */
function int64FromVarint(bytes: Uint8Array, start: number, end: number): number {
  if (end - start <= 7) {
    // Up to 49 bits: exact in a double.
    let value = 0;
    for (let position = end - 1; position >= start; position--) value = value * 128 + (bytes[position]! & 0x7f);
    return value;
  }
  let value = 0n;
  for (let position = end - 1; position >= start; position--) value = (value << 7n) | BigInt(bytes[position]! & 0x7f);
  if (value >> 64n !== 0n) throw malformed('the time does not fit in 64 bits');
  const signed = BigInt.asIntN(64, value);
  if (signed > BigInt(Number.MAX_SAFE_INTEGER) || signed < BigInt(Number.MIN_SAFE_INTEGER)) throw malformed('the time is out of range');
  return Number(signed);
}

function writeVarint(bytes: Buffer, start: number, value: number): number {
  let position = start;
  while (value >= 0x80) {
    bytes[position++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  bytes[position++] = value;
  return position;
}

/** Writes an int64 (a safe integer) as protobuf does: negative values as 10-byte two's complement. */
function writeInt64Varint(bytes: Buffer, start: number, value: number): void {
  if (value >= 0) {
    writeVarint(bytes, start, value);
    return;
  }
  let unsigned = BigInt.asUintN(64, BigInt(value));
  let position = start;
  while (unsigned >= 0x80n) {
    bytes[position++] = Number(unsigned & 0x7fn) | 0x80;
    unsigned >>= 7n;
  }
  bytes[position] = Number(unsigned);
}

function int64VarintLength(value: number): number {
  if (!Number.isSafeInteger(value)) throw malformed('the time must be a safe integer');
  return value < 0 ? MAX_VARINT64_BYTES : varintLength(value);
}

function varintLength(value: number): number {
  let length = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    length++;
  }
  return length;
}

function malformed(detail: string): Fault {
  return Fault.expected('err:vault:crypto:malformed_payload', {
    publicMessage: 'The encrypted payload is malformed: ' + detail + '.',
  });
}
