/**
 * Proves the Vault speaks the Connect protocol: a standard Connect client
 * (@connectrpc/connect-node) calls it, in JSON and in binary, using a service descriptor written
 * here by hand from the spec's field list (not derived from keygate's own vault.proto).
 */
import { create, createFileRegistry } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
} from '@bufbuild/protobuf/wkt';
import type { DescService } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import t from 'tap';
import { createLogger } from '../../../core/log.ts';
import { Metrics } from '../../../core/metrics.ts';
import { createInProcessVault } from '../../../vault/in-process-vault.ts';
import { createVaultHttpServer } from '../../../vault/service/vault-http-server.ts';

function field(name: string, number: number, jsonName: string, type: Type = Type.STRING, typeName?: string, label: Label = Label.OPTIONAL) {
  return { name, number, jsonName, type, label, ...(typeName === undefined ? {} : { typeName }) };
}
function mapEntry(valueType: Type, valueTypeName?: string) {
  return { name: 'ItemsEntry', field: [field('key', 1, 'key'), field('value', 2, 'value', valueType, valueTypeName)], options: { mapEntry: true } };
}
function method(name: string) {
  return { name, inputType: `.vault.v1.${name}Request`, outputType: `.vault.v1.${name}Response` };
}

const fileDescriptor = create(FileDescriptorProtoSchema, {
  name: 'vault/v1/service.proto',
  package: 'vault.v1',
  syntax: 'proto3',
  messageType: [
    { name: 'LivenessRequest' },
    { name: 'LivenessResponse', field: [field('status', 1, 'status')] },
    { name: 'EncryptRequest', field: [field('keyring', 1, 'keyring'), field('data', 2, 'data')] },
    { name: 'EncryptResponse', field: [field('encrypted', 1, 'encrypted'), field('key_id', 2, 'keyId')] },
    { name: 'DecryptRequest', field: [field('keyring', 1, 'keyring'), field('encrypted', 2, 'encrypted')] },
    { name: 'DecryptResponse', field: [field('plaintext', 1, 'plaintext')] },
    { name: 'ReEncryptRequest', field: [field('keyring', 1, 'keyring'), field('encrypted', 2, 'encrypted'), field('key_id', 3, 'keyId')] },
    { name: 'ReEncryptResponse', field: [field('encrypted', 1, 'encrypted'), field('key_id', 2, 'keyId')] },
    {
      name: 'EncryptBulkRequest',
      field: [field('keyring', 1, 'keyring'), field('items', 2, 'items', Type.MESSAGE, '.vault.v1.EncryptBulkRequest.ItemsEntry', Label.REPEATED)],
      nestedType: [mapEntry(Type.STRING)],
    },
    {
      name: 'EncryptBulkResponse',
      field: [field('items', 1, 'items', Type.MESSAGE, '.vault.v1.EncryptBulkResponse.ItemsEntry', Label.REPEATED)],
      nestedType: [mapEntry(Type.MESSAGE, '.vault.v1.EncryptResponse')],
    },
    {
      name: 'DecryptBulkRequest',
      field: [field('keyring', 1, 'keyring'), field('items', 2, 'items', Type.MESSAGE, '.vault.v1.DecryptBulkRequest.ItemsEntry', Label.REPEATED)],
      nestedType: [mapEntry(Type.STRING)],
    },
    {
      name: 'DecryptBulkResponse',
      field: [field('items', 1, 'items', Type.MESSAGE, '.vault.v1.DecryptBulkResponse.ItemsEntry', Label.REPEATED)],
      nestedType: [mapEntry(Type.STRING)],
    },
  ],
  service: [
    {
      name: 'VaultService',
      method: ['Liveness', 'Encrypt', 'EncryptBulk', 'Decrypt', 'DecryptBulk', 'ReEncrypt'].map(method),
    },
  ],
});
const vaultService: DescService = createFileRegistry(fileDescriptor, () => undefined).getService('vault.v1.VaultService')!;

interface EncryptResult { encrypted: string; keyId: string }
interface InteropClient {
  liveness(request: object): Promise<{ status: string }>;
  encrypt(request: { keyring: string; data: string }): Promise<EncryptResult>;
  decrypt(request: { keyring: string; encrypted: string }): Promise<{ plaintext: string }>;
  reEncrypt(request: { keyring: string; encrypted: string; keyId?: string }): Promise<EncryptResult>;
  encryptBulk(request: { keyring: string; items: Record<string, string> }): Promise<{ items: Record<string, EncryptResult> }>;
  decryptBulk(request: { keyring: string; items: Record<string, string> }): Promise<{ items: Record<string, string> }>;
}

const token = 'interop-' + Math.random().toString(36).slice(2);
const vault = createInProcessVault();
const server = createVaultHttpServer({ service: vault, bearerToken: token, logger: createLogger({ level: 'silent' }), metrics: new Metrics() });
const address = await server.listen({ port: 0, host: '127.0.0.1' });
t.teardown(() => server.close());

function connectClient(useBinaryFormat: boolean, bearer: string | undefined): InteropClient {
  const auth: Interceptor = (next) => async (request) => {
    if (bearer !== undefined) request.header.set('authorization', `Bearer ${bearer}`);
    return next(request);
  };
  const transport = createConnectTransport({
    baseUrl: `http://127.0.0.1:${address.port}`,
    httpVersion: '1.1',
    useBinaryFormat,
    interceptors: [auth],
  });
  return createClient(vaultService, transport) as unknown as InteropClient;
}

for (const useBinaryFormat of [false, true]) {
  const format = useBinaryFormat ? 'binary' : 'JSON';

  t.test(`a standard Connect client (${format}) round-trips every RPC`, async (t) => {
    const client = connectClient(useBinaryFormat, token);
    t.equal((await client.liveness({})).status, 'ok');
    const encrypted = await client.encrypt({ keyring: 'ws_interop', data: `hello ${format} 🔑` });
    t.match(encrypted.keyId, /^dek_/);
    t.equal((await client.decrypt({ keyring: 'ws_interop', encrypted: encrypted.encrypted })).plaintext, `hello ${format} 🔑`);
    const empty = await client.encrypt({ keyring: 'ws_interop', data: '' });
    t.equal((await client.decrypt({ keyring: 'ws_interop', encrypted: empty.encrypted })).plaintext, '', 'the empty string (omitted on the wire) round-trips');
    const rolled = await vault.keyring.rollDek('ws_interop');
    const moved = await client.reEncrypt({ keyring: 'ws_interop', encrypted: encrypted.encrypted, keyId: encrypted.keyId });
    t.equal(moved.keyId, rolled);
    const bulk = await client.encryptBulk({ keyring: 'ws_interop', items: { one: '1', two: '2' } });
    t.same(Object.keys(bulk.items).sort(), ['one', 'two']);
    const back = await client.decryptBulk({
      keyring: 'ws_interop',
      items: { one: bulk.items.one!.encrypted, two: bulk.items.two!.encrypted },
    });
    t.same({ ...back.items }, { one: '1', two: '2' });
  });

  t.test(`Connect errors (${format}) carry the right code and the keygate fault code`, async (t) => {
    const expectError = async (promise: Promise<unknown>, code: Code, faultCode: string, name: string) => {
      try {
        await promise;
        t.fail(`${name}: expected an error`);
      } catch (err) {
        t.ok(err instanceof ConnectError, name);
        t.equal((err as ConnectError).code, code, `${name}: ${Code[code]}`);
        t.equal((err as ConnectError).metadata.get('keygate-fault-code'), faultCode, name);
      }
    };
    const client = connectClient(useBinaryFormat, token);
    await expectError(connectClient(useBinaryFormat, undefined).encrypt({ keyring: 'ws_1', data: 'x' }), Code.Unauthenticated, 'err:vault:auth:unauthenticated', 'no token');
    await expectError(connectClient(useBinaryFormat, 'nope').encrypt({ keyring: 'ws_1', data: 'x' }), Code.Unauthenticated, 'err:vault:auth:unauthenticated', 'wrong token');
    await expectError(client.decrypt({ keyring: 'ws_1', encrypted: 'AAAA' }), Code.InvalidArgument, 'err:vault:crypto:malformed_payload', 'malformed');
    const { encrypted } = await client.encrypt({ keyring: 'ws_interop_a', data: 'x' });
    await client.encrypt({ keyring: 'ws_interop_b', data: 'x' });
    await expectError(client.decrypt({ keyring: 'ws_interop_b', encrypted }), Code.NotFound, 'err:vault:keyring:dek_not_found', 'other keyring');
  });
}
