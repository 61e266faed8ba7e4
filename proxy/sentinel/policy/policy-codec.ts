/**
 * `PolicyCodec`: policy sets as protobuf bytes (`policy.proto`, loaded once with protobufjs at
 * boot) for storage in the database, and back. Decoding re-validates through `parsePolicies`, so
 * stored bytes that no longer pass today's rules (a regex now considered unsafe) are refused
 * with the same path-bearing errors as a document being saved.
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { Fault } from '../../../core/fault.ts';
import { parsePolicies } from './parse-policies.ts';
import type { Policy } from './policy-types.ts';

/** Path of the schema next to this file. */
export const POLICY_PROTO_PATH = fileURLToPath(new URL('./policy.proto', import.meta.url));

/** Encodes and decodes `keygate.sentinel.v1.PolicySet`. Create once; methods are called per policy save/load. */
export class PolicyCodec {
  readonly #policySet: protobuf.Type;

  constructor(protoPath: string = POLICY_PROTO_PATH) {
    const root = protobuf.loadSync(protoPath);
    this.#policySet = root.lookupType('keygate.sentinel.v1.PolicySet');
  }

  /** The protobuf bytes of a validated policy list. */
  encode(policies: readonly Policy[]): Uint8Array {
    const message = this.#policySet.fromObject({ policies: policies.map(toProtoObject) });
    return this.#policySet.encode(message).finish();
  }

  /** Decodes bytes written by {@link encode}; throws `Fault` 422 when they are not a valid policy set. */
  decode(bytes: Uint8Array): Policy[] {
    if (bytes.length === 0) return [];
    let object: Record<string, unknown>;
    try {
      const message = this.#policySet.decode(bytes);
      object = this.#policySet.toObject(message, { longs: Number, enums: String, bytes: String, arrays: false, defaults: false, oneofs: false });
    } catch (err) {
      throw new Fault('err:frontline:config:invalid_configuration', { publicMessage: 'stored policies are not a valid PolicySet', cause: err });
    }
    return parsePolicies(object);
  }

  /** The protojson-style JSON form (what the control API shows and accepts). */
  toJson(policies: readonly Policy[]): { policies: unknown[] } {
    return { policies: policies.map((policy) => {
      const { type: _type, openapi, ...rest } = policy;
      return openapi === undefined ? rest : { ...rest, openapi: openapi.spec === undefined ? {} : { spec: openapi.spec } };
    }) };
  }
}

function toProtoObject(policy: Policy): Record<string, unknown> {
  const { type: _type, openapi, ...rest } = policy;
  const object: Record<string, unknown> = { ...rest };
  if (openapi !== undefined) object['openapi'] = openapi.spec === undefined ? {} : { specYaml: Buffer.from(JSON.stringify(openapi.spec)) };
  return object;
}
