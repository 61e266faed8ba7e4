import t from 'tap';
import { InvalidationCodec } from '../../../core/invalidation/invalidation-codec.ts';
import { hlcVersion } from '../../../core/invalidation/hybrid-logical-clock.ts';
import type { Invalidation } from '../../../core/invalidation/interface.ts';

const sample: Invalidation = {
  cache: 'verification_key_by_hash',
  keys: ['abc=', 'déf/+'],
  clearAll: false,
  version: hlcVersion(1_700_000_000_123, 65_535),
  originNode: '12D3KooWExample',
  sentAtMs: 1_700_000_000_124,
};

t.test('round-trips every field, including a version above 2^53', async (t) => {
  const codec = new InvalidationCodec();
  t.ok(sample.version > BigInt(Number.MAX_SAFE_INTEGER));
  t.same(codec.decode(codec.encode(sample)), sample);
  const clear: Invalidation = { ...sample, keys: [], clearAll: true, version: (1n << 64n) - 1n };
  t.same(codec.decode(codec.encode(clear)), clear);
});

t.test('refuses bytes that are not a valid message, without applying anything', async (t) => {
  const codec = new InvalidationCodec({ maxKeysPerMessage: 2 });
  const cases: [string, Uint8Array][] = [
    ['garbage', new Uint8Array([0xff, 0xff, 0xff, 0x01])],
    ['empty message (no cache, no origin)', new Uint8Array()],
    ['too many keys', codec.encode({ ...sample, keys: ['a', 'b', 'c'] })],
    ['keys and clear_all together', codec.encode({ ...sample, clearAll: true })],
    ['version zero', codec.encode({ ...sample, version: 0n })],
    ['no origin', codec.encode({ ...sample, originNode: '' })],
    ['too large', new Uint8Array(70 * 1024)],
    ['a wildcard cache with keys', codec.encode({ ...sample, cache: '*' })],
  ];
  for (const [name, bytes] of cases) {
    t.throws(() => codec.decode(bytes), { code: 'err:keygate:gossip:malformed_message' }, name);
  }
});

t.test('splits keys into messages within the key and byte bounds, keeping the stamp', async (t) => {
  const codec = new InvalidationCodec({ maxKeysPerMessage: 100, maxMessageBytes: 4096 });
  const keys = Array.from({ length: 1000 }, (_, index) => `${'k'.repeat(60)}-${index}`);
  const parts = codec.split({ ...sample, keys });
  t.same(parts.flatMap((part) => part.keys), keys, 'every key once, in order');
  for (const part of parts) {
    t.ok(part.keys.length <= 100);
    t.ok(codec.encode(part).byteLength <= 4096, 'encoded size within the bound');
    t.equal(part.version, sample.version);
  }
  t.same(codec.split({ ...sample, keys: [], clearAll: true }).length, 1);
});

t.test('validates publish requests', async (t) => {
  const codec = new InvalidationCodec({ maxKeysPerPublish: 3, maxKeyBytes: 8 });
  t.doesNotThrow(() => codec.validateRequest({ cache: 'c', keys: ['a'] }));
  t.doesNotThrow(() => codec.validateRequest({ cache: 'c', clearAll: true }));
  t.doesNotThrow(() => codec.validateRequest({ cache: '*', clearAll: true }));
  for (const bad of [{ cache: 'c', keys: ['a', 'b', 'c', 'd'] }, { cache: 'c', keys: ['123456789'] }, { cache: 'c'.repeat(200), keys: ['a'] }]) {
    t.throws(() => codec.validateRequest(bad), { code: 'err:keygate:gossip:invalid_invalidation' });
  }
  t.throws(() => codec.validateStamped({ ...sample, keys: ['a'], originNode: '' }), { code: 'err:keygate:gossip:invalid_invalidation' });
});
