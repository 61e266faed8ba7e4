import t from 'tap';
import { Fault } from '../../../core/fault.ts';
import { createLogger } from '../../../core/log.ts';
import { Metrics } from '../../../core/metrics.ts';
import { RemoteVaultClient, type VaultClient } from '../../../core/vault-client.ts';
import { createInProcessVault } from '../../../vault/in-process-vault.ts';
import { vaultProto } from '../../../vault/proto/vault-proto.ts';
import { createVaultHttpServer } from '../../../vault/service/vault-http-server.ts';
import { MemoryStorage } from '../../../vault/storage/memory.ts';
import { FaultyStorage } from '../faulty-storage.ts';

const token = 'test-token-' + Math.random().toString(36).slice(2);
const storage = new FaultyStorage(new MemoryStorage());
const vault = createInProcessVault({ storage });
const server = createVaultHttpServer({ service: vault, bearerToken: token, logger: createLogger({ level: 'silent' }), metrics: new Metrics(), maxBodyBytes: 64 * 1024 });
const address = await server.listen({ port: 0, host: '127.0.0.1' });
const baseUrl = `http://127.0.0.1:${address.port}`;
const client = new RemoteVaultClient({ baseUrl, bearerToken: token, timeoutMs: 5_000 });
t.teardown(async () => {
  await client.close();
  await server.close();
});

function call(method: string, body: unknown, headers: Record<string, string> = {}) {
  return server.inject({
    method: 'POST',
    url: `/vault.v1.VaultService/${method}`,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

t.test('every RPC but Liveness refuses missing, malformed, empty and wrong tokens with Connect unauthenticated', async (t) => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ['missing header', {}, 'missing Authorization header'],
    ['wrong scheme', { authorization: `Basic ${token}` }, 'invalid Authorization header'],
    ['empty token', { authorization: 'Bearer ' }, 'invalid bearer token'],
    ['wrong token', { authorization: `Bearer ${token}x` }, 'invalid bearer token'],
    ['token prefix', { authorization: `Bearer ${token.slice(0, -1)}` }, 'invalid bearer token'],
  ];
  for (const method of ['Encrypt', 'Decrypt', 'ReEncrypt', 'EncryptBulk', 'DecryptBulk']) {
    for (const [name, headers, message] of cases) {
      const response = await server.inject({
        method: 'POST',
        url: `/vault.v1.VaultService/${method}`,
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ keyring: 'ws_auth', data: 'x' }),
      });
      t.equal(response.status, 401, `${method} ${name}`);
      t.same(response.json(), { code: 'unauthenticated', message }, `${method} ${name}`);
      t.equal(response.headers['keygate-fault-code'], 'err:vault:auth:unauthenticated');
    }
  }
  const liveness = await server.inject({ method: 'POST', url: '/vault.v1.VaultService/Liveness', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.equal(liveness.status, 200);
  t.same(liveness.json(), { status: 'ok' });
});

t.test('JSON uses lowerCamelCase fields and accepts original names; absent fields are defaults', async (t) => {
  const encrypted = await call('Encrypt', { keyring: 'ws_json', data: 'hello' });
  t.equal(encrypted.status, 200);
  t.equal(encrypted.headers['content-type'], 'application/json');
  const body = encrypted.json<{ encrypted: string; keyId: string }>();
  t.same(Object.keys(body).sort(), ['encrypted', 'keyId']);
  const decrypted = await call('Decrypt', { keyring: 'ws_json', encrypted: body.encrypted });
  t.same(decrypted.json(), { plaintext: 'hello' });
  const reEncrypted = await call('ReEncrypt', { keyring: 'ws_json', encrypted: body.encrypted, key_id: body.keyId });
  t.equal(reEncrypted.status, 200);
  const empty = await call('Encrypt', { keyring: 'ws_json' });
  t.equal(empty.status, 200, 'absent data is the empty string');
  t.same((await call('Decrypt', { keyring: 'ws_json', encrypted: empty.json<{ encrypted: string }>().encrypted })).json(), { plaintext: '' });
  const wrongType = await call('Encrypt', { keyring: 'ws_json', data: 5 });
  t.equal(wrongType.status, 400);
  t.equal(wrongType.json<{ code: string }>().code, 'invalid_argument');
  const notJson = await call('Encrypt', '{not json');
  t.equal(notJson.json<{ code: string }>().code, 'invalid_argument');
});

t.test('binary protobuf bodies are answered in binary', async (t) => {
  const request = vaultProto.EncryptRequest.encode({ keyring: 'ws_proto', data: 'binary hello' }).finish();
  const response = await fetch(`${baseUrl}/vault.v1.VaultService/Encrypt`, {
    method: 'POST',
    headers: { 'content-type': 'application/proto', authorization: `Bearer ${token}` },
    body: request,
  });
  t.equal(response.status, 200);
  t.equal(response.headers.get('content-type'), 'application/proto');
  const decoded = vaultProto.EncryptResponse.decode(new Uint8Array(await response.arrayBuffer())) as unknown as { encrypted: string; keyId: string };
  t.match(decoded.keyId, /^dek_/);
  t.equal((await vault.decrypt({ keyring: 'ws_proto', encrypted: decoded.encrypted })).plaintext, 'binary hello');
  const garbage = await fetch(`${baseUrl}/vault.v1.VaultService/Encrypt`, {
    method: 'POST',
    headers: { 'content-type': 'application/proto', authorization: `Bearer ${token}` },
    body: new Uint8Array([0x0a, 0xff, 0xff]),
  });
  t.equal(garbage.status, 400);
  t.same(await garbage.json(), { code: 'invalid_argument', message: 'the body is not a binary EncryptRequest' });
});

t.test('protocol errors: unsupported content type 415, unknown method 404, compression unimplemented, bad protocol version', async (t) => {
  const textPlain = await call('Encrypt', 'x', { 'content-type': 'text/plain' });
  t.equal(textPlain.status, 415);
  t.equal(textPlain.json<{ code: string }>().code, 'unimplemented');
  const unknown = await call('Nope', {});
  t.equal(unknown.status, 404);
  t.equal(unknown.json<{ code: string }>().code, 'unimplemented');
  const gzip = await call('Encrypt', { keyring: 'ws_1', data: 'x' }, { 'content-encoding': 'gzip' });
  t.equal(gzip.status, 501);
  const version = await call('Encrypt', { keyring: 'ws_1', data: 'x' }, { 'connect-protocol-version': '2' });
  t.equal(version.status, 400);
  const tooLarge = await call('Encrypt', { keyring: 'ws_1', data: 'x'.repeat(70 * 1024) });
  t.equal(tooLarge.json<{ code: string }>().code, 'resource_exhausted');
  for (const probe of ['live', 'ready', 'startup']) {
    const health = await server.inject({ method: 'GET', url: `/health/${probe}` });
    t.equal(health.status, 200, probe);
  }
});

t.test('over a real socket the remote client round-trips everything', async (t) => {
  t.same(await client.liveness(), { status: 'ok' });
  const samples = ['', 'a', '\u0000\u00ff', '🔑 ключ', 'x'.repeat(20_000)];
  for (const data of samples) {
    const { encrypted, keyId } = await client.encrypt({ keyring: 'ws_remote', data });
    t.match(keyId, /^dek_/);
    t.equal((await client.decrypt({ keyring: 'ws_remote', encrypted })).plaintext, data);
  }
  const bulk = await client.encryptBulk({ keyring: 'ws_remote', items: { a: '1', b: '2' } });
  t.same(Object.keys(bulk.items).sort(), ['a', 'b']);
  const back = await client.decryptBulk({ keyring: 'ws_remote', items: { a: bulk.items.a!.encrypted, b: bulk.items.b!.encrypted } });
  t.same(back.items, { a: '1', b: '2' });
  t.same(await client.encryptBulk({ keyring: 'ws_remote', items: {} }), { items: {} });
  const rolled = await vault.keyring.rollDek('ws_remote');
  const moved = await client.reEncrypt({ keyring: 'ws_remote', encrypted: bulk.items.a!.encrypted });
  t.equal(moved.keyId, rolled);
});

t.test('failures keep distinct codes across the wire', async (t) => {
  const expectCode = async (client: VaultClient, promise: Promise<unknown>, code: string, name: string) => {
    try {
      await promise;
      t.fail(`${name}: expected ${code}`);
    } catch (err) {
      t.ok(err instanceof Fault, `${name}: a Fault`);
      t.equal((err as Fault).code, code, name);
    }
  };
  const { encrypted } = await client.encrypt({ keyring: 'ws_codes', data: 'secret' });
  const bytes = Buffer.from(encrypted, 'base64');
  bytes[20]! ^= 1;
  await expectCode(client, client.decrypt({ keyring: 'ws_codes', encrypted: 'AAAA' }), 'err:vault:crypto:malformed_payload', 'malformed');
  await expectCode(client, client.decrypt({ keyring: 'ws_codes', encrypted: bytes.toString('base64') }), 'err:vault:crypto:decryption_failed', 'tampered');
  await client.encrypt({ keyring: 'ws_codes_other', data: 'x' });
  await expectCode(client, client.decrypt({ keyring: 'ws_codes_other', encrypted }), 'err:vault:keyring:dek_not_found', 'other keyring');
  await expectCode(client, client.encrypt({ keyring: 'a/../b', data: 'x' }), 'err:vault:request:invalid_argument', 'bad keyring');
  vault.keyring.clearCache();
  storage.onRead = () => { throw new Fault('err:vault:storage:unavailable', { retryable: true }); };
  try {
    await expectCode(client, client.decrypt({ keyring: 'ws_codes', encrypted }), 'err:vault:storage:unavailable', 'storage down');
  } finally {
    storage.onRead = undefined;
  }
  vault.keyring.clearCache();
  storage.onRead = (key, bytes) => (key.startsWith('keyring/ws_codes/dek_') ? new Uint8Array([1, 2, 3]) : bytes);
  try {
    await expectCode(client, client.decrypt({ keyring: 'ws_codes', encrypted }), 'err:vault:storage:corrupted', 'corrupted');
  } finally {
    storage.onRead = undefined;
    vault.keyring.clearCache();
  }
  const wrongToken = new RemoteVaultClient({ baseUrl, bearerToken: 'wrong' });
  await expectCode(wrongToken, wrongToken.encrypt({ keyring: 'ws_codes', data: 'x' }), 'err:vault:auth:unauthenticated', 'wrong token');
  await wrongToken.close();
});

t.test('an unreachable vault is a retryable service fault', async (t) => {
  const { createServer } = await import('node:net');
  // Bind and release a port so that nothing listens on it.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const unreachable = new RemoteVaultClient({ baseUrl: `http://127.0.0.1:${port}`, bearerToken: 'x', timeoutMs: 2_000 });
  t.teardown(() => unreachable.close());
  await t.rejects(unreachable.encrypt({ keyring: 'ws_1', data: 'x' }), { code: 'err:vault:service:unavailable', retryable: true });
});

t.test('a call past its deadline is a retryable service fault', async (t) => {
  const { createServer } = await import('node:http');
  const sockets = new Set<import('node:net').Socket>();
  const silent = createServer(() => {});
  silent.on('connection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const slow = new RemoteVaultClient({ baseUrl: `http://127.0.0.1:${(silent.address() as { port: number }).port}`, bearerToken: 'x', timeoutMs: 200 });
  t.teardown(async () => {
    await slow.close().catch(() => {});
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  await t.rejects(slow.encrypt({ keyring: 'ws_1', data: 'x' }), { code: 'err:vault:service:unavailable', retryable: true });
});

t.test('refuses to start without a bearer token', async (t) => {
  t.throws(() => createVaultHttpServer({ service: vault, bearerToken: '' }), { code: 'err:keygate:config:invalid' });
});
