import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { BASE58_ALPHABET, decodeBase58, encodeBase58 } from '../../../core/keys/base58.ts';
import { generateKey, keyStart } from '../../../core/keys/key-generator.ts';
import { hashKey, KEY_HASH_LENGTH } from '../../../core/keys/key-hash.ts';
import {
  migrationLookupHash,
  splitPrefixedKey,
  startOfExistingKey,
} from '../../../core/keys/key-migration.ts';
import { Fault } from '../../../core/fault.ts';

/** An independent base58 encoder: BigInt division, for cross-checking. */
function referenceBase58(bytes: Uint8Array): string {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  let value = 0n;
  for (const byte of bytes) value = value * 256n + BigInt(byte);
  let out = '';
  while (value > 0n) {
    out = BASE58_ALPHABET[Number(value % 58n)] + out;
    value /= 58n;
  }
  return '1'.repeat(zeros) + out;
}

t.test('base58 encodes the well-known Bitcoin vectors and leading zeros as 1', async (t) => {
  const cases: Array<[number[] | string, string]> = [
    [[], ''],
    [[0], '1'],
    [[0, 0, 0], '111'],
    [[0, 0, 1], '112'],
    [[57], 'z'],
    [[58], '21'],
    [[255], '5Q'],
    ['hello world', 'StV1DL6CwTryKyV'],
  ];
  for (const [input, expected] of cases) {
    const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Uint8Array.from(input);
    t.equal(encodeBase58(bytes), expected, JSON.stringify(input));
    t.equal(referenceBase58(bytes), expected, `reference agrees on ${JSON.stringify(input)}`);
    t.same(Buffer.from(decodeBase58(expected)), Buffer.from(bytes), `decodes ${expected}`);
  }
});

t.test('base58 agrees with a BigInt reference and round-trips on random inputs', async (t) => {
  for (let round = 0; round < 300; round++) {
    const length = round % 64;
    const bytes = randomBytes(length);
    if (round % 5 === 0 && length > 2) bytes[0] = 0;
    if (round % 10 === 0 && length > 2) bytes[1] = 0;
    const encoded = encodeBase58(bytes);
    if (encoded !== referenceBase58(bytes)) t.fail(`mismatch on ${bytes.toString('hex')}`);
    if (!Buffer.from(decodeBase58(encoded)).equals(bytes)) t.fail(`round trip failed on ${bytes.toString('hex')}`);
  }
  t.pass('300 random inputs agree');
});

t.test('base58 decoding rejects characters outside the alphabet with a Fault', async (t) => {
  for (const bad of ['0', 'O', 'I', 'l', 'ab+', 'é']) {
    t.throws(() => decodeBase58(bad), Fault, bad);
  }
});

t.test('hashKey is padded standard base64 of sha256 over the whole key string', async (t) => {
  const key = 'sk_3ZkTJ9qF2d+/ünïcode';
  const expected = createHash('sha256').update(Buffer.from(key, 'utf8')).digest().toString('base64');
  t.equal(hashKey(key), expected);
  t.equal(hashKey(key).length, KEY_HASH_LENGTH);
  // A known digest, computed independently: sha256("") in base64.
  t.equal(hashKey(''), '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  t.not(hashKey('sk_a'), hashKey('sk_A'), 'case sensitive');
});

t.test('generated keys are prefix_ + base58 of the requested random bytes', async (t) => {
  for (const byteLength of [16, 17, 32, 64, 255]) {
    const { key, start, hash } = generateKey({ prefix: 'sk_live', byteLength });
    t.ok(key.startsWith('sk_live_'), `${byteLength}: prefix with one _ separator`);
    const encoded = key.slice('sk_live_'.length);
    t.match(encoded, /^[1-9A-HJ-NP-Za-km-z]+$/, `${byteLength}: base58 body`);
    const decoded = decodeBase58(encoded);
    t.equal(decoded.length, byteLength, `${byteLength}: decodes to the byte length`);
    t.equal(start, 'sk_live_' + encoded.slice(0, 4));
    t.equal(hash, hashKey(key));
  }
  const bare = generateKey();
  t.notMatch(bare.key, /_/, 'no separator without a prefix');
  t.equal(bare.start, bare.key.slice(0, 4));
  t.ok(bare.key.length >= 21 && bare.key.length <= 22, '16 bytes give about 22 characters');
  t.equal(keyStart('p', 'abcdefg'), 'p_abcd');
  t.equal(keyStart(undefined, 'abcdefg'), 'abcd');
});

t.test('generated keys do not repeat', async (t) => {
  const seen = new Set<string>();
  for (let index = 0; index < 2000; index++) seen.add(generateKey({ prefix: 'k' }).key);
  t.equal(seen.size, 2000);
});

t.test('generateKey rejects byte lengths outside 16..255 and bad prefixes', async (t) => {
  for (const byteLength of [0, 15, 256, 16.5, Number.NaN]) {
    t.throws(() => generateKey({ byteLength }), { code: 'err:unkey:application:invalid_input' }, `byteLength ${byteLength}`);
  }
  for (const prefix of ['', 'has-dash', 'a'.repeat(17), 'sp ace']) {
    t.throws(() => generateKey({ prefix }), { code: 'err:unkey:application:invalid_input' }, `prefix ${JSON.stringify(prefix)}`);
  }
});

t.test('migration splits on _ and hashes the long token in hex', async (t) => {
  const raw = 'mycompany_BRTRKFsL_51FwqftsmMDHHbJAMEXXHCgG';
  t.same(splitPrefixedKey(raw), { prefix: 'mycompany', shortToken: 'BRTRKFsL', longToken: '51FwqftsmMDHHbJAMEXXHCgG' });
  t.same(splitPrefixedKey('a_b_c_d'), { prefix: 'a_b', shortToken: 'c', longToken: 'd' });
  t.same(splitPrefixedKey('short_long'), { prefix: undefined, shortToken: 'short', longToken: 'long' });
  t.equal(splitPrefixedKey('nounderscore'), undefined);
  t.equal(splitPrefixedKey('trailing_'), undefined);
  t.equal(splitPrefixedKey('_lead'), undefined);
  t.equal(splitPrefixedKey('a__b'), undefined);

  const expectedSeam = createHash('sha256').update('51FwqftsmMDHHbJAMEXXHCgG').digest('hex');
  t.equal(migrationLookupHash(raw, 'github.com/seamapi/prefixed-api-key'), expectedSeam);
  t.equal(migrationLookupHash('nounderscore', 'github.com/seamapi/prefixed-api-key'), undefined);
  t.equal(migrationLookupHash(raw, 'sha256'), createHash('sha256').update(raw).digest('hex'));
  t.equal(startOfExistingKey(raw), 'mycompany_BRTR');
  t.equal(startOfExistingKey('abcdefgh'), 'abcd');
});
