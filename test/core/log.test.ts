import t from 'tap';
import { createLogger, REDACT_PATHS, REDACTED, SECRET_CONTAINERS, SECRET_FIELDS } from '../../core/log.ts';

function memoryLogger(options: { level?: string; name?: string } = {}) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ ...options, destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
  return { logger, lines };
}

const REQUIRED_FIELDS = [
  'key', 'rootKey', 'plaintext', 'password', 'secret', 'token', 'masterKey', 'masterKeys', 'bearerToken', 'privateKey', 'keyPem',
];

t.test('the required secret fields are all in the redaction list', async (t) => {
  for (const field of REQUIRED_FIELDS) t.ok((SECRET_FIELDS as readonly string[]).includes(field), field);
  for (const container of ['body', 'data', 'config']) t.ok((SECRET_CONTAINERS as readonly string[]).includes(container), container);
  t.ok(REDACT_PATHS.includes('req.headers.authorization'));
  t.ok(REDACT_PATHS.includes('headers.authorization'));
  t.ok(REDACT_PATHS.includes('headers.cookie'));
});

t.test('redacts every secret field at the top level and keeps ordinary fields', async (t) => {
  const { logger, lines } = memoryLogger();
  for (const field of SECRET_FIELDS) {
    logger.info({ [field]: `sk_live_${field}_value`, keyId: 'key_123', apiId: 'api_1', count: 3 }, 'one secret');
  }
  t.equal(lines.length, SECRET_FIELDS.length);
  SECRET_FIELDS.forEach((field, index) => {
    const line = lines[index]!;
    t.equal(line[field], REDACTED, `${field} is redacted`);
    t.equal(line.keyId, 'key_123', 'keyId (not a secret) is kept');
    t.equal(line.apiId, 'api_1');
    t.equal(line.count, 3);
    t.equal(line.msg, 'one secret');
    t.notMatch(JSON.stringify(line), 'sk_live_', 'the secret value appears nowhere in the line');
  });
});

t.test('redacts secrets one level under body, data, config and the other containers', async (t) => {
  const { logger, lines } = memoryLogger();
  for (const container of SECRET_CONTAINERS) {
    const inner: Record<string, unknown> = { name: 'ordinary', ownerId: 'user_1' };
    for (const field of SECRET_FIELDS) inner[field] = `sk_secret_${container}_${field}`;
    logger.info({ [container]: inner }, 'nested');
  }
  SECRET_CONTAINERS.forEach((container, index) => {
    const inner = lines[index]![container] as Record<string, unknown>;
    for (const field of SECRET_FIELDS) t.equal(inner[field], REDACTED, `${container}.${field}`);
    t.equal(inner.name, 'ordinary', `${container}.name is kept`);
    t.equal(inner.ownerId, 'user_1');
    t.notMatch(JSON.stringify(lines[index]), 'sk_secret_');
  });
});

t.test('redacts credential headers in headers, req.headers and res.headers, and keeps the others', async (t) => {
  const { logger, lines } = memoryLogger();
  const headers = () => ({
    authorization: 'Bearer unkey_root_123',
    cookie: 'session=abc',
    'set-cookie': 'session=abc',
    'x-api-key': 'sk_123',
    'user-agent': 'curl/8',
    host: 'api.example.com',
  });
  logger.info({ headers: headers(), req: { method: 'POST', headers: headers() }, res: { statusCode: 200, headers: headers() } }, 'headers');
  const line = lines[0]!;
  for (const container of [line.headers, (line.req as { headers: unknown }).headers, (line.res as { headers: unknown }).headers] as Record<string, unknown>[]) {
    t.equal(container.authorization, REDACTED);
    t.equal(container.cookie, REDACTED);
    t.equal(container['set-cookie'], REDACTED);
    t.equal(container['x-api-key'], REDACTED);
    t.equal(container['user-agent'], 'curl/8');
    t.equal(container.host, 'api.example.com');
  }
  t.equal((line.req as { method: string }).method, 'POST');
  t.notMatch(JSON.stringify(line), 'unkey_root_123');
});

t.test('redacts certificate private keys', async (t) => {
  const { logger, lines } = memoryLogger();
  logger.info({ certificate: { domain: 'example.com', privateKey: '-----BEGIN PRIVATE KEY-----x', keyPem: 'pem' }, tls: { key: 'k', cert: 'c' } }, 'cert');
  const line = lines[0] as { certificate: Record<string, unknown>; tls: Record<string, unknown> };
  t.equal(line.certificate.privateKey, REDACTED);
  t.equal(line.certificate.keyPem, REDACTED);
  t.equal(line.certificate.domain, 'example.com');
  t.equal(line.tls.key, REDACTED);
  t.equal(line.tls.cert, 'c');
});

t.test('a child logger carries the requestId on every line and still redacts, in its bindings too', async (t) => {
  const { logger, lines } = memoryLogger({ name: 'api' });
  const child = logger.child({ requestId: 'req_abc123XYZ', rootKey: 'unkey_secret_binding' });
  child.info({ body: { key: 'sk_in_body', apiId: 'api_1' } }, 'first');
  child.warn('second');
  t.equal(lines.length, 2);
  for (const line of lines) {
    t.equal(line.requestId, 'req_abc123XYZ');
    t.equal(line.rootKey, REDACTED);
    t.equal(line.name, 'api');
    t.notMatch(JSON.stringify(line), 'unkey_secret_binding');
  }
  t.same(lines[0]!.body, { key: REDACTED, apiId: 'api_1' });
  t.equal(lines[0]!.level, 'info', 'levels are written as labels');
  t.equal(lines[1]!.level, 'warn');
});

t.test('the level defaults to info and can be set', async (t) => {
  const defaults = memoryLogger();
  defaults.logger.debug('hidden');
  defaults.logger.info('shown');
  t.same(defaults.lines.map((line) => line.msg), ['shown']);
  const verbose = memoryLogger({ level: 'debug' });
  verbose.logger.debug('shown');
  t.same(verbose.lines.map((line) => line.msg), ['shown']);
  t.type(defaults.lines[0]!.time, 'number');
});
