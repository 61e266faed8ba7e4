/**
 * `InvalidationCodec`: the protobuf wire form of an {@link Invalidation}
 * (`invalidation.proto`, loaded once at import), with the bounds every bus enforces: on
 * publish (a request too large is split or refused) and on receive (a peer's bytes outside
 * the bounds are refused before anything is applied).
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { Fault } from '../fault.ts';
import { ALL_CACHES } from './interface.ts';
import type { Invalidation, InvalidationRequest } from './interface.ts';

/** Defaults of {@link InvalidationLimits}. */
export const DEFAULT_INVALIDATION_LIMITS: InvalidationLimits = {
  maxMessageBytes: 64 * 1024,
  maxKeysPerMessage: 1000,
  maxKeysPerPublish: 100_000,
  maxKeyBytes: 1024,
  maxCacheNameBytes: 128,
  maxOriginNodeBytes: 128,
};

/** Bounds of one invalidation message and one publish. */
export interface InvalidationLimits {
  /** Largest encoded message; a publish is split to stay below it. Default 64 KiB. */
  readonly maxMessageBytes: number;
  /** Most keys in one message; a publish is split beyond it. Default 1000. */
  readonly maxKeysPerMessage: number;
  /** Most keys in one publish call; beyond it the publish is refused. Default 100,000. */
  readonly maxKeysPerPublish: number;
  /** Longest key, UTF-8 bytes. Default 1024. */
  readonly maxKeyBytes: number;
  /** Longest cache name, UTF-8 bytes. Default 128. */
  readonly maxCacheNameBytes: number;
  /** Longest origin node id, UTF-8 bytes. Default 128. */
  readonly maxOriginNodeBytes: number;
}

const PROTO_PATH = fileURLToPath(new URL('./invalidation.proto', import.meta.url));
const MESSAGE_TYPE = protobuf.loadSync(PROTO_PATH).lookupType('keygate.invalidation.v1.Invalidation');
const Long = protobuf.util.Long;
const UINT64_MAX = (1n << 64n) - 1n;
// Field tags, length prefixes and the fixed-size fields of a message without keys, generously.
const MESSAGE_OVERHEAD_BYTES = 48;

interface WireInvalidation {
  cache?: string;
  keys?: string[];
  clearAll?: boolean;
  version?: { low: number; high: number; unsigned: boolean } | number;
  originNode?: string;
  sentAtMs?: { low: number; high: number; unsigned: boolean } | number;
}

/** Encodes, decodes, validates and splits invalidations. Stateless apart from its limits. */
export class InvalidationCodec {
  /** The limits in force. */
  readonly limits: InvalidationLimits;

  constructor(limits: Partial<InvalidationLimits> = {}) {
    this.limits = { ...DEFAULT_INVALIDATION_LIMITS, ...limits };
  }

  /** The message's protobuf bytes. Per sent message; the invalidation must be valid. */
  encode(invalidation: Invalidation): Uint8Array {
    const message = MESSAGE_TYPE.create({
      cache: invalidation.cache,
      keys: invalidation.keys,
      clearAll: invalidation.clearAll,
      version: toLong(invalidation.version, true),
      originNode: invalidation.originNode,
      sentAtMs: toLong(BigInt(invalidation.sentAtMs), false),
    });
    return MESSAGE_TYPE.encode(message).finish();
  }

  /**
   * Parses a peer's bytes. Throws `Fault` `err:keygate:gossip:malformed_message` (expected,
   * no stack) when the bytes are not a message or the message is outside the limits. Per
   * received message.
   */
  decode(bytes: Uint8Array): Invalidation {
    if (bytes.byteLength > this.limits.maxMessageBytes) {
      throw malformed(`message of ${bytes.byteLength} bytes exceeds ${this.limits.maxMessageBytes}`);
    }
    let wire: WireInvalidation;
    try {
      wire = MESSAGE_TYPE.decode(bytes) as WireInvalidation;
    } catch (err) {
      throw malformed(`not an invalidation message: ${(err as Error).message}`);
    }
    const invalidation: Invalidation = {
      cache: wire.cache ?? '',
      keys: wire.keys ?? [],
      clearAll: wire.clearAll ?? false,
      version: toBigint(wire.version, true),
      originNode: wire.originNode ?? '',
      sentAtMs: Number(toBigint(wire.sentAtMs, false)),
    };
    const problem = this.#checkMessage(invalidation);
    if (problem !== undefined) throw malformed(problem);
    return invalidation;
  }

  /**
   * Checks a publish request against the limits. Throws `Fault`
   * `err:keygate:gossip:invalid_invalidation` with a message naming the problem. Per publish.
   */
  validateRequest(request: InvalidationRequest): void {
    const problem = this.#checkRequest(request);
    if (problem !== undefined) {
      throw Fault.expected('err:keygate:gossip:invalid_invalidation', { publicMessage: problem, source: 'internal' });
    }
  }

  /**
   * Checks a stamped invalidation (as given to `relay`) against the message limits, apart from
   * the key count, which {@link split} handles. Throws like {@link validateRequest}.
   */
  validateStamped(invalidation: Invalidation): void {
    const problem = this.#checkRequest(invalidation) ?? this.#checkStamp(invalidation);
    if (problem !== undefined) {
      throw Fault.expected('err:keygate:gossip:invalid_invalidation', { publicMessage: problem, source: 'internal' });
    }
  }

  /**
   * Splits an invalidation into messages that each respect `maxKeysPerMessage` and
   * `maxMessageBytes`; all parts keep the version, origin and time. Per publish.
   */
  split(invalidation: Invalidation): Invalidation[] {
    const fixedBytes = MESSAGE_OVERHEAD_BYTES + utf8Bytes(invalidation.cache) + utf8Bytes(invalidation.originNode);
    if (invalidation.clearAll || invalidation.keys.length === 0) return [invalidation];
    const parts: Invalidation[] = [];
    let keys: string[] = [];
    let bytes = fixedBytes;
    for (const key of invalidation.keys) {
      // A key costs its bytes, a one-byte tag and a length prefix of at most two bytes.
      const keyBytes = utf8Bytes(key) + 3;
      if (keys.length > 0 && (keys.length >= this.limits.maxKeysPerMessage || bytes + keyBytes > this.limits.maxMessageBytes)) {
        parts.push({ ...invalidation, keys });
        keys = [];
        bytes = fixedBytes;
      }
      keys.push(key);
      bytes += keyBytes;
    }
    parts.push({ ...invalidation, keys });
    return parts;
  }

  #checkRequest(request: InvalidationRequest): string | undefined {
    const limits = this.limits;
    if (typeof request.cache !== 'string' || request.cache.length === 0) return 'cache name is empty';
    if (utf8Bytes(request.cache) > limits.maxCacheNameBytes) return `cache name exceeds ${limits.maxCacheNameBytes} bytes`;
    const keys = request.keys ?? [];
    if (request.cache === ALL_CACHES && request.clearAll !== true) return `cache "${ALL_CACHES}" takes clearAll, not keys`;
    if (request.clearAll === true) {
      if (keys.length > 0) return 'clearAll and keys are exclusive';
      return undefined;
    }
    if (keys.length === 0) return 'no keys and clearAll not set';
    if (keys.length > limits.maxKeysPerPublish) return `more than ${limits.maxKeysPerPublish} keys in one publish`;
    for (const key of keys) {
      if (typeof key !== 'string' || key.length === 0) return 'a key is empty';
      if (utf8Bytes(key) > limits.maxKeyBytes) return `a key exceeds ${limits.maxKeyBytes} bytes`;
    }
    return undefined;
  }

  #checkStamp(invalidation: Invalidation): string | undefined {
    if (typeof invalidation.version !== 'bigint' || invalidation.version <= 0n || invalidation.version > UINT64_MAX) {
      return 'version is not a positive 64-bit integer';
    }
    if (invalidation.originNode.length === 0) return 'origin node is empty';
    if (utf8Bytes(invalidation.originNode) > this.limits.maxOriginNodeBytes) {
      return `origin node exceeds ${this.limits.maxOriginNodeBytes} bytes`;
    }
    if (!Number.isSafeInteger(invalidation.sentAtMs) || invalidation.sentAtMs < 0) return 'sentAtMs is not a time';
    return undefined;
  }

  #checkMessage(invalidation: Invalidation): string | undefined {
    if (invalidation.keys.length > this.limits.maxKeysPerMessage) return `more than ${this.limits.maxKeysPerMessage} keys`;
    return this.#checkRequest(invalidation) ?? this.#checkStamp(invalidation);
  }
}

function malformed(problem: string): Fault {
  return Fault.expected('err:keygate:gossip:malformed_message', { internalMessage: problem });
}

function toLong(value: bigint, unsigned: boolean): InstanceType<typeof Long> {
  return new Long(Number(BigInt.asIntN(32, value)), Number(BigInt.asIntN(32, value >> 32n)), unsigned);
}

function toBigint(value: WireInvalidation['version'], unsigned: boolean): bigint {
  if (value === undefined) return 0n;
  if (typeof value === 'number') return BigInt(value);
  const low = BigInt(value.low >>> 0);
  const high = BigInt(value.high >>> 0);
  const combined = (high << 32n) | low;
  return unsigned ? combined : BigInt.asIntN(64, combined);
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
