/**
 * Base58 with the Bitcoin alphabet (spec api.md §6): the encoding of generated keys.
 * Leading zero bytes become leading `1` characters, so the encoding is a bijection on byte strings.
 */
import { Fault } from '../fault.ts';

/** The Bitcoin base58 alphabet: digits and letters without `0`, `O`, `I` and `l`. */
export const BASE58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

const DECODE_TABLE: Int8Array = buildDecodeTable();

/**
 * Encodes bytes as base58. Called once per generated key; cost grows with the square of the
 * length, which is fine for keys (at most 255 bytes).
 */
export function encodeBase58(bytes: Uint8Array): string {
  let leadingZeros = 0;
  while (leadingZeros < bytes.length && bytes[leadingZeros] === 0) leadingZeros++;

  // Base-58 digits, least significant first; log(256)/log(58) ≈ 1.37 digits per byte.
  const digits = new Uint8Array(Math.ceil((bytes.length - leadingZeros) * 1.38) + 1);
  let digitCount = 0;
  for (let index = leadingZeros; index < bytes.length; index++) {
    let carry = bytes[index]!;
    for (let digit = 0; digit < digitCount; digit++) {
      carry += digits[digit]! * 256;
      digits[digit] = carry % 58;
      carry = Math.floor(carry / 58);
    }
    while (carry > 0) {
      digits[digitCount++] = carry % 58;
      carry = Math.floor(carry / 58);
    }
  }

  let out = '1'.repeat(leadingZeros);
  for (let digit = digitCount - 1; digit >= 0; digit--) out += BASE58_ALPHABET[digits[digit]!];
  return out;
}

/**
 * Decodes base58 back to bytes. Used by tests and tooling, never during verification (keys are
 * never parsed there, spec §6). Throws `Fault(invalid_input)` on a character outside the alphabet.
 */
export function decodeBase58(text: string): Uint8Array {
  let leadingOnes = 0;
  while (leadingOnes < text.length && text[leadingOnes] === '1') leadingOnes++;

  const bytes = new Uint8Array(Math.ceil((text.length - leadingOnes) * 0.74) + 1);
  let byteCount = 0;
  for (let index = leadingOnes; index < text.length; index++) {
    const code = text.charCodeAt(index);
    const value = code < 128 ? DECODE_TABLE[code]! : -1;
    if (value < 0) {
      throw Fault.expected('err:unkey:application:invalid_input', {
        publicMessage: `Invalid base58 character at position ${index + 1}.`,
      });
    }
    let carry = value;
    for (let byte = 0; byte < byteCount; byte++) {
      carry += bytes[byte]! * 58;
      bytes[byte] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes[byteCount++] = carry & 0xff;
      carry >>= 8;
    }
  }

  const out = new Uint8Array(leadingOnes + byteCount);
  for (let byte = 0; byte < byteCount; byte++) out[leadingOnes + byte] = bytes[byteCount - 1 - byte]!;
  return out;
}

function buildDecodeTable(): Int8Array {
  const table = new Int8Array(128).fill(-1);
  for (let index = 0; index < BASE58_ALPHABET.length; index++) table[BASE58_ALPHABET.charCodeAt(index)] = index;
  return table;
}
