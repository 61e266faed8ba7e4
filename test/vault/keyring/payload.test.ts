/**
 * The hand-written payload codec against protobufjs: byte-identical encoding, and a decoder that
 * accepts every well-formed encoding (any field order) and nothing protobufjs-plus-strict-checks
 * would reject.
 */
import { createSecretKey, randomBytes } from 'node:crypto';
import t from 'tap';
import { Fault } from '../../../core/fault.ts';
import { openAesGcm } from '../../../vault/keyring/aes-gcm.ts';
import { decodePayload, decodePayloadBytes, DEK_ID_PATTERN, encodePayload, encodePayloadBytes, sealPayload, type EncryptedPayload } from '../../../vault/keyring/payload.ts';
import { int64ToNumber, vaultProto } from '../../../vault/proto/vault-proto.ts';
import { seededRandom } from '../../helpers/seeded-random.ts';

const random = seededRandom(20_240_611);
const integer = (below: number) => Math.floor(random() * below);
const bytesOf = (length: number) => Buffer.from(Array.from({ length }, () => integer(256)));
const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const dekIdOf = (length: number) => 'dek_' + Array.from({ length }, () => ALPHANUMERIC[integer(ALPHANUMERIC.length)]).join('');
const TIMES = [0, 1, 127, 128, 16_383, 16_384, 1_700_000_000_000, 2 ** 49 - 1, 2 ** 49, Number.MAX_SAFE_INTEGER, -1, -1_700_000_000_000, Number.MIN_SAFE_INTEGER];

function randomPayload(): EncryptedPayload {
  const ciphertextLength = [16, 17, 111, 112, 127 - 16, 1040, 20_000][integer(7)]! + integer(3);
  return { nonce: bytesOf(12), ciphertext: bytesOf(ciphertextLength), dekId: dekIdOf(1 + integer(64)), timeMs: TIMES[integer(TIMES.length)]! };
}

function protobufjsBytes(payload: EncryptedPayload): Uint8Array {
  const message: Record<string, unknown> = { nonce: payload.nonce, ciphertext: payload.ciphertext, encryptionKeyId: payload.dekId };
  if (payload.timeMs !== 0) message.time = payload.timeMs;
  return vaultProto.Encrypted.encode(message).finish();
}

/**
 * The previous decoder, kept here as the reference: protobufjs decode, field checks, then the
 * canonical length (which rejected trailing, repeated and unknown fields and padded varints).
 */
function referenceDecode(bytes: Uint8Array): EncryptedPayload | undefined {
  let message: { algorithm?: number; nonce?: Uint8Array; ciphertext?: Uint8Array; encryptionKeyId?: string; time?: unknown };
  try {
    message = vaultProto.Encrypted.decode(bytes) as typeof message;
  } catch {
    return undefined;
  }
  const dekId = message.encryptionKeyId ?? '';
  if ((message.algorithm ?? 0) !== 0 || message.nonce?.length !== 12 || (message.ciphertext?.length ?? 0) < 16 || !DEK_ID_PATTERN.test(dekId)) return undefined;
  const payload = { nonce: message.nonce, ciphertext: message.ciphertext!, dekId, timeMs: int64ToNumber(message.time) };
  const varintLength = (value: number) => {
    if (value < 0) return 10;
    let length = 1;
    for (let rest = value; rest >= 128; rest = Math.floor(rest / 128)) length++;
    return length;
  };
  let length = 14 + 1 + varintLength(payload.ciphertext.length) + payload.ciphertext.length + 1 + varintLength(dekId.length) + dekId.length;
  if (payload.timeMs !== 0) length += 1 + varintLength(payload.timeMs);
  return bytes.length === length ? payload : undefined;
}

function newDecode(bytes: Uint8Array): EncryptedPayload | undefined {
  try {
    return decodePayloadBytes(bytes);
  } catch (err) {
    if (!(err instanceof Fault) || err.code !== 'err:vault:crypto:malformed_payload') throw err;
    return undefined;
  }
}

const same = (left: EncryptedPayload, right: EncryptedPayload) =>
  Buffer.from(left.nonce).equals(Buffer.from(right.nonce)) &&
  Buffer.from(left.ciphertext).equals(Buffer.from(right.ciphertext)) &&
  left.dekId === right.dekId &&
  left.timeMs === right.timeMs;

t.test('encodes the same bytes as protobufjs, and decodes them back, for 500 random payloads', async (t) => {
  let mismatches = 0;
  for (let index = 0; index < 500; index++) {
    const payload = randomPayload();
    const expected = Buffer.from(protobufjsBytes(payload));
    const actual = encodePayloadBytes(payload);
    if (!actual.equals(expected)) mismatches++;
    const decoded = decodePayloadBytes(actual);
    if (!same(decoded, payload)) mismatches++;
    if (encodePayload(payload) !== expected.toString('base64')) mismatches++;
  }
  t.equal(mismatches, 0);
});

t.test('sealPayload writes a payload that decodes and opens to the plaintext', async (t) => {
  const key = createSecretKey(randomBytes(32));
  for (const length of [0, 1, 95, 96, 1024, 70_000]) {
    const plaintext = bytesOf(length);
    const encrypted = sealPayload(key, plaintext, 'dek_abc123', 1_700_000_000_123);
    const bytes = Buffer.from(encrypted, 'base64');
    const reference = vaultProto.Encrypted.decode(bytes) as unknown as { nonce: Uint8Array; ciphertext: Uint8Array; encryptionKeyId: string };
    t.equal(reference.ciphertext.length, length + 16, `${length}: protobufjs reads the ciphertext with its tag`);
    t.equal(reference.encryptionKeyId, 'dek_abc123');
    t.ok(Buffer.from(protobufjsBytes(decodePayload(encrypted))).equals(bytes), `${length}: canonical bytes`);
    t.ok(openAesGcm(key, reference.nonce, reference.ciphertext).equals(plaintext), `${length}: opens to the plaintext`);
  }
});

t.test('accepts the fields in any order, as protobuf requires', async (t) => {
  const payload = { ...randomPayload(), timeMs: 1_700_000_000_000 };
  const fields = [
    vaultProto.Encrypted.encode({ nonce: payload.nonce }).finish(),
    vaultProto.Encrypted.encode({ ciphertext: payload.ciphertext }).finish(),
    vaultProto.Encrypted.encode({ encryptionKeyId: payload.dekId }).finish(),
    vaultProto.Encrypted.encode({ time: payload.timeMs }).finish(),
  ];
  for (const order of [[3, 2, 1, 0], [1, 0, 3, 2], [2, 3, 0, 1]]) {
    const bytes = Buffer.concat(order.map((index) => fields[index]!));
    t.ok(same(decodePayloadBytes(bytes), payload), `order ${order.join(',')}`);
    t.ok(referenceDecode(bytes) !== undefined, 'the reference accepts it too');
  }
});

t.test('rejects non-canonical encodings with malformed_payload', async (t) => {
  const payload: EncryptedPayload = { nonce: bytesOf(12), ciphertext: bytesOf(40), dekId: 'dek_abc', timeMs: 1_700_000_000_000 };
  const bytes = encodePayloadBytes(payload);
  const withoutTime = encodePayloadBytes({ ...payload, timeMs: 0 });
  const cases: Array<[string, Uint8Array]> = [
    ['explicit default algorithm', Buffer.concat([Buffer.from([0x08, 0x00]), bytes])],
    ['unknown algorithm', Buffer.concat([Buffer.from([0x08, 0x01]), bytes])],
    ['explicit zero time', Buffer.concat([withoutTime, Buffer.from([0x28, 0x00])])],
    ['repeated time', Buffer.concat([bytes, Buffer.from([0x28, 0x01])])],
    ['repeated key id', Buffer.concat([bytes, Buffer.from([0x22, 0x05]), Buffer.from('dek_b')])],
    ['unknown field', Buffer.concat([bytes, Buffer.from([0x30, 0x01])])],
    ['unknown field with a two-byte tag', Buffer.concat([bytes, Buffer.from([0x80, 0x01, 0x01])])],
    ['time sent as length-delimited', Buffer.concat([withoutTime, Buffer.from([0x2a, 0x01, 0x01])])],
    ['padded time varint', Buffer.concat([withoutTime, Buffer.from([0x28, 0x81, 0x00])])],
    ['padded nonce length', Buffer.concat([Buffer.from([0x12, 0x8c, 0x00]), bytes.subarray(2)])],
    ['time beyond 2^53', Buffer.concat([withoutTime, Buffer.from([0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])])],
    ['truncated', bytes.subarray(0, bytes.length - 1)],
    ['empty', Buffer.alloc(0)],
    ['key id that is not a DEK id', encodePayloadBytes({ ...payload, dekId: 'dek_a/b' })],
    ['non-ASCII key id', encodePayloadBytes({ ...payload, dekId: 'dek_é' })],
    ['nonce of 13 bytes', encodePayloadBytes({ ...payload, nonce: bytesOf(13) })],
    ['ciphertext shorter than a tag', encodePayloadBytes({ ...payload, ciphertext: bytesOf(15) })],
  ];
  for (const [name, input] of cases) {
    t.equal(newDecode(input), undefined, name);
  }
  t.ok(newDecode(bytes), 'the canonical form is accepted');
});

t.test('on 20,000 mutated payloads it accepts nothing the reference rejects, and decodes the same fields', async (t) => {
  // Short ciphertexts keep the run fast; the length varints still take one and two bytes.
  const seeds = Array.from({ length: 20 }, () => encodePayloadBytes({ ...randomPayload(), ciphertext: bytesOf(16 + integer(200)) }));
  let accepted = 0;
  let disagreements = 0;
  for (let index = 0; index < 20_000; index++) {
    const input = mutate(Buffer.from(seeds[integer(seeds.length)]!));
    const mine = newDecode(input);
    const reference = referenceDecode(input);
    if (mine === undefined) continue;
    accepted++;
    if (reference === undefined || !same(mine, reference)) disagreements++;
  }
  t.equal(disagreements, 0);
  t.ok(accepted > 100, `some mutations stay valid (${accepted})`);
});

function mutate(input: Buffer): Buffer {
  let bytes = input;
  for (let step = 0, steps = 1 + integer(3); step < steps; step++) {
    const position = integer(bytes.length + 1);
    switch (integer(6)) {
      case 0:
        if (bytes.length > 0) bytes[Math.min(position, bytes.length - 1)]! ^= 1 << integer(8);
        break;
      case 1:
        bytes = Buffer.concat([bytes.subarray(0, position), Buffer.from([[0x08, 0x12, 0x1a, 0x22, 0x28, 0x00, 0x80, 0x0c][integer(8)]!]), bytes.subarray(position)]);
        break;
      case 2:
        bytes = Buffer.concat([bytes.subarray(0, position), bytes.subarray(position + 1)]);
        break;
      case 3:
        bytes = bytes.subarray(0, position);
        break;
      case 4:
        // Appends a well-formed field (possibly a repeat) or time, the cases canonical length guards.
        bytes = Buffer.concat([bytes, [Buffer.from([0x28, 1 + integer(127)]), Buffer.from([0x08, integer(2)]), Buffer.from([0x22, 0x05, 0x64, 0x65, 0x6b, 0x5f, 0x78])][integer(3)]!]);
        break;
      default:
        // Rewrites the payload with time dropped or changed, which stays valid.
        {
          const decoded = newDecode(bytes);
          if (decoded !== undefined) bytes = encodePayloadBytes({ ...decoded, timeMs: TIMES[integer(TIMES.length)]! });
        }
    }
  }
  return bytes;
}
