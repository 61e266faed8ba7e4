import t from 'tap';
import { hash, randomBytes } from 'node:crypto';
import { MAX_JS_SHA256_CHARS, sha256AsciiBase64 } from '../../../core/keys/sha256-ascii.ts';
import { hashKey } from '../../../core/keys/key-hash.ts';

const nodeSha256 = (text: string): string => hash('sha256', text, 'base64');

/** `length` characters drawn from U+0000…U+007F (every ASCII code, control characters included). */
function randomAscii(length: number): string {
  const bytes = randomBytes(length);
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte & 0x7f);
  return text;
}

t.test('FIPS 180-4 example vectors', async (t) => {
  // The standard's examples (one block, two blocks) and the empty message.
  t.equal(sha256AsciiBase64('abc'), Buffer.from('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'hex').toString('base64'));
  t.equal(
    sha256AsciiBase64('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'),
    Buffer.from('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1', 'hex').toString('base64'),
  );
  t.equal(sha256AsciiBase64(''), '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
});

t.test('equals node:crypto for every length up to the bound, across the padding boundaries', async (t) => {
  let mismatches = 0;
  for (let length = 0; length <= MAX_JS_SHA256_CHARS; length++) {
    // Three inputs per length: random ASCII, all 0x00 and all 0x7f (the extremes of the range).
    for (const text of [randomAscii(length), '\u0000'.repeat(length), '\u007f'.repeat(length)]) {
      const ours = sha256AsciiBase64(text);
      if (ours !== nodeSha256(text)) {
        mismatches++;
        if (mismatches <= 3) t.fail(`length ${length}: ${ours} != ${nodeSha256(text)}`);
      }
    }
  }
  t.equal(mismatches, 0);
});

t.test('many realistic keys agree with node:crypto', async (t) => {
  let mismatches = 0;
  for (let index = 0; index < 20_000; index++) {
    const key = `sk_${randomBytes(16 + (index % 48)).toString('base64url')}`;
    if (sha256AsciiBase64(key) !== nodeSha256(key)) mismatches++;
  }
  t.equal(mismatches, 0);
});

t.test('anything it cannot hash is refused, and hashKey falls back to node:crypto for it', async (t) => {
  const longer = randomAscii(MAX_JS_SHA256_CHARS + 1);
  const nonAscii = ['é', 'sk_é', 'sk_\u0080', `sk_${'a'.repeat(100)}\u00ff`, 'sk_😀', '\u0100', 'sk_\u{10ffff}'];
  t.equal(sha256AsciiBase64(longer), undefined, 'longer than the bound');
  t.equal(hashKey(longer), nodeSha256(longer));
  for (const text of nonAscii) {
    // A character at or above U+0080 is more than one UTF-8 byte: never truncated into a byte here.
    t.equal(sha256AsciiBase64(text), undefined, JSON.stringify(text));
    t.equal(hashKey(text), nodeSha256(text), `hashKey(${JSON.stringify(text)}) is SHA-256 of its UTF-8 bytes`);
  }
  // Distinct non-ASCII keys that a byte truncation would merge keep distinct hashes.
  t.not(hashKey('sk_\u0141'), hashKey('sk_A'));
});

t.test('a refused input leaves no state behind for the next call', async (t) => {
  t.equal(sha256AsciiBase64(`sk_${'x'.repeat(300)}é`), undefined);
  t.equal(sha256AsciiBase64('abc'), nodeSha256('abc'));
  t.equal(sha256AsciiBase64(randomAscii(MAX_JS_SHA256_CHARS + 5)), undefined);
  t.equal(sha256AsciiBase64('sk_test'), nodeSha256('sk_test'));
});
