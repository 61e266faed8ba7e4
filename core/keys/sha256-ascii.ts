/**
 * SHA-256 (FIPS 180-4) of a short ASCII string, in JavaScript, as padded base64: the hot path of
 * {@link hashKey}. Why not `node:crypto`: its one-shot `hash` costs about 0.55 µs in a loop, but
 * 3 µs per request inside the gateway, where every request reaches OpenSSL with cold caches
 * (timers around the call in the gateway of `bench/gateway.ts` at a paced 8,000 req/s); this
 * function read about 2 µs there (figures in core/keys/README.md).
 *
 * Only strings of at most {@link MAX_JS_SHA256_CHARS} characters, all below U+0080 (so each
 * character is one UTF-8 byte), are hashed here; {@link sha256AsciiBase64} returns undefined for
 * anything else and the caller uses `node:crypto`. Keys are ASCII (a prefix, `_`, base58).
 *
 * Written from the standard's description (§4.1.2 functions, §4.2.2 constants, §5.1.1 padding,
 * §5.3.3 initial hash value, §6.2.2 computation). Not constant-time, which a key lookup does not
 * need: the digest is a cache and database key, compared by the lookup itself.
 */

/** Longest input hashed here; longer strings go to `node:crypto` (keys are far shorter). */
export const MAX_JS_SHA256_CHARS = 1024;

/** §4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** §5.3.3: the first 32 bits of the fractional parts of the square roots of the first 8 primes. */
const INITIAL = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

// Scratch space, reused: the function is synchronous, so calls never overlap.
/** The message schedule W0…W63 of the block being processed. */
const schedule = new Int32Array(64);
/** The running hash value H0…H7. */
const state = new Int32Array(8);
/** The digest's 32 bytes, then base64-encoded. */
const digest = new Uint8Array(32);
/** The 44 character codes of the base64 result. */
const encoded = new Array<number>(44);

/**
 * `base64(sha256(text))` when `text` is ASCII and at most {@link MAX_JS_SHA256_CHARS} long (then
 * equal to `node:crypto`'s `hash('sha256', text, 'base64')`); undefined otherwise.
 */
export function sha256AsciiBase64(text: string): string | undefined {
  const length = text.length;
  if (length > MAX_JS_SHA256_CHARS) return undefined;
  // §5.1.1: the message, one 0x80 byte, zeros, and the 64-bit bit length end a 64-byte block.
  // The padded message is never stored: each block's words W0…W15 are read straight from the
  // characters (one character is one byte while all are ASCII, which `ascii` checks at the end).
  const blocks = ((length + 8) >>> 6) + 1;
  const w = schedule;
  let ascii = 0;
  state.set(INITIAL);
  for (let block = 0; block < blocks; block++) {
    const base = block << 6;
    for (let word = 0; word < 16; word++) {
      const at = base + (word << 2);
      if (at + 4 <= length) {
        const c0 = text.charCodeAt(at);
        const c1 = text.charCodeAt(at + 1);
        const c2 = text.charCodeAt(at + 2);
        const c3 = text.charCodeAt(at + 3);
        ascii |= c0 | c1 | c2 | c3;
        w[word] = (c0 << 24) | (c1 << 16) | (c2 << 8) | c3;
      } else if (at > length) {
        w[word] = 0;
      } else {
        // The word holding the message's end: its last characters, the 0x80 byte, zeros.
        let value = 0;
        for (let offset = 0; offset < 4; offset++) {
          const position = at + offset;
          let byte = 0;
          if (position < length) {
            byte = text.charCodeAt(position);
            ascii |= byte;
          } else if (position === length) {
            byte = 0x80;
          }
          value = (value << 8) | byte;
        }
        w[word] = value;
      }
    }
    if (block === blocks - 1) {
      // The bit length, below 2^32 here (MAX_JS_SHA256_CHARS): its high word is zero.
      w[14] = 0;
      w[15] = length * 8;
    }
    compress();
  }
  // A character above U+007F is more than one UTF-8 byte: not ours to hash (the words above
  // were then wrong, and are discarded).
  if (ascii >= 0x80) return undefined;
  return base64Digest();
}

/** §6.2.2 steps 1–4 for the block whose first 16 words are in `schedule`. */
function compress(): void {
  const w = schedule;
  for (let t = 16; t < 64; t++) {
    const w15 = w[t - 15]!;
    const w2 = w[t - 2]!;
    // σ0 and σ1 (§4.1.2, 4.6 and 4.7).
    const sigma0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const sigma1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    w[t] = (sigma1 + w[t - 7]! + sigma0 + w[t - 16]!) | 0;
  }
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  let f = state[5]!;
  let g = state[6]!;
  let h = state[7]!;
  for (let t = 0; t < 64; t++) {
    // Σ1, Ch, Σ0 and Maj (§4.1.2, 4.2–4.5).
    const bigSigma1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const choose = (e & f) ^ (~e & g);
    const t1 = (h + bigSigma1 + choose + K[t]! + w[t]!) | 0;
    const bigSigma0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const majority = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (bigSigma0 + majority) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/** The state as 32 big-endian bytes, in standard padded base64 (43 characters and one `=`). */
function base64Digest(): string {
  for (let word = 0; word < 8; word++) {
    const value = state[word]!;
    digest[word * 4] = value >>> 24;
    digest[word * 4 + 1] = (value >>> 16) & 0xff;
    digest[word * 4 + 2] = (value >>> 8) & 0xff;
    digest[word * 4 + 3] = value & 0xff;
  }
  let out = 0;
  // 30 bytes: ten full groups of three.
  for (let index = 0; index < 30; index += 3) {
    const triple = (digest[index]! << 16) | (digest[index + 1]! << 8) | digest[index + 2]!;
    encoded[out++] = BASE64.charCodeAt(triple >>> 18);
    encoded[out++] = BASE64.charCodeAt((triple >>> 12) & 63);
    encoded[out++] = BASE64.charCodeAt((triple >>> 6) & 63);
    encoded[out++] = BASE64.charCodeAt(triple & 63);
  }
  // The last two bytes: three characters and one `=`.
  const pair = (digest[30]! << 8) | digest[31]!;
  encoded[40] = BASE64.charCodeAt(pair >>> 10);
  encoded[41] = BASE64.charCodeAt((pair >>> 4) & 63);
  encoded[42] = BASE64.charCodeAt((pair << 2) & 63);
  encoded[43] = 61; // '='
  return String.fromCharCode.apply(null, encoded);
}
