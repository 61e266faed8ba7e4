/**
 * The Vault protobuf schema (vault.proto), parsed once at module load with protobufjs.
 * Everything in vault/ that touches wire bytes goes through these types, so the payload and
 * service messages have one definition.
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

const root = protobuf.parse(readFileSync(new URL('./vault.proto', import.meta.url), 'utf8'), {
  keepCase: false,
}).root;

function messageType(name: string): protobuf.Type {
  return root.lookupType('vault.v1.' + name);
}

/** Every message type of vault.v1, looked up once. */
export const vaultProto = {
  root,
  Encrypted: messageType('Encrypted'),
  DataEncryptionKey: messageType('DataEncryptionKey'),
  EncryptedDataEncryptionKey: messageType('EncryptedDataEncryptionKey'),
  KeyEncryptionKey: messageType('KeyEncryptionKey'),
  LivenessRequest: messageType('LivenessRequest'),
  LivenessResponse: messageType('LivenessResponse'),
  EncryptRequest: messageType('EncryptRequest'),
  EncryptResponse: messageType('EncryptResponse'),
  EncryptBulkRequest: messageType('EncryptBulkRequest'),
  EncryptBulkResponse: messageType('EncryptBulkResponse'),
  DecryptRequest: messageType('DecryptRequest'),
  DecryptResponse: messageType('DecryptResponse'),
  DecryptBulkRequest: messageType('DecryptBulkRequest'),
  DecryptBulkResponse: messageType('DecryptBulkResponse'),
  ReEncryptRequest: messageType('ReEncryptRequest'),
  ReEncryptResponse: messageType('ReEncryptResponse'),
} as const;

/**
 * An int64 field as decoded by protobufjs (a number, or a `Long` when the `long` package is
 * present) converted to a JavaScript number. Unix-ms times fit well inside 2^53.
 */
export function int64ToNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (value !== null && typeof value === 'object' && 'toNumber' in value && typeof value.toNumber === 'function') {
    return (value as { toNumber(): number }).toNumber();
  }
  return 0;
}
