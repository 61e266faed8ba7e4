import t from 'tap';
import type { Test } from 'tap';
import { TestClock } from '../../../core/clock.ts';
import { openDatabase } from '../../../core/db/database.ts';
import type { Database } from '../../../core/db/database.ts';
import { migrate } from '../../../core/db/migrate.ts';
import { newId } from '../../../core/id.ts';
import { Metrics } from '../../../core/metrics.ts';
import { createDatabaseCertificateLoader, DatabaseRouteStore } from '../../../proxy/frontline/database-route-store.ts';
import { Frontline } from '../../../proxy/frontline/frontline.ts';
import { CertificateStore } from '../../../proxy/tls/certificate-store.ts';
import { createTestCertificate } from '../../helpers/certificates.ts';
import { createTestMysqlDatabase, MYSQL_SKIP_MESSAGE } from '../../helpers/mysql.ts';
import type { EchoBody } from './helpers.ts';
import { handshake, httpsRequest, startEchoOrigin } from './helpers.ts';

const NOW = 1_700_000_000_000;

async function insertRoute(db: Database, host: string, upstreams: string[]): Promise<void> {
  await db.execute(
    'INSERT INTO `frontline_routes` (`id`, `host`, `upstreams`, `peers`, `protocol`, `created_at_m`) VALUES (?, ?, ?, ?, ?, ?)',
    [newId('route'), host, JSON.stringify(upstreams), '[]', 'http1', NOW],
  );
}

async function suite(t: Test, db: Database, engine: string): Promise<void> {
  await migrate(db);
  t.same(await migrate(db), { applied: [] }, `${engine}: migrating again applies nothing`);
  const origin = await startEchoOrigin(engine);
  t.teardown(() => origin.close());

  t.test(`${engine}: exact rows win over the wildcard and not-found is cached briefly`, async (t) => {
    await insertRoute(db, 'app.db.test', ['http://127.0.0.1:1']);
    await insertRoute(db, '*.db.test', ['http://127.0.0.1:2']);
    const clock = new TestClock(NOW);
    const store = new DatabaseRouteStore({ db, clock, negativeFreshMs: 1_000, negativeStaleMs: 2_000, metrics: new Metrics() });
    t.equal((await store.lookup('app.db.test'))?.host, 'app.db.test');
    t.equal((await store.lookup('api.db.test'))?.host, '*.db.test');
    t.equal(await store.lookup('a.b.db.test'), undefined, 'one label only');
    t.equal(await store.lookup('late.other.test'), undefined);
    await insertRoute(db, 'late.other.test', ['http://127.0.0.1:3']);
    t.equal(await store.lookup('late.other.test'), undefined, 'the negative answer is served while fresh');
    clock.advance(2_500);
    const deadline = Date.now() + 5_000;
    let found = await store.lookup('late.other.test');
    while (found === undefined && Date.now() < deadline) found = await store.lookup('late.other.test');
    t.equal(found?.host, 'late.other.test', 'the new row shows once the negative entry expires');
    const sameRoute = store.lookup('app.db.test');
    t.equal(sameRoute instanceof Promise ? await sameRoute : sameRoute, await store.lookup('app.db.test'), 'a fresh hit is synchronous and stable');
  });

  t.test(`${engine}: Frontline serves routes and certificates from the database`, async (t) => {
    const cert = createTestCertificate({ hostnames: ['*.served.test'] });
    t.teardown(cert.cleanup);
    await insertRoute(db, 'shop.served.test', [origin.url]);
    // Stand-in for the Vault: the loader's contract is "decrypt(encrypted, keyring)"; the real
    // Vault client is wired by bin/. Reversible and keyring-checked so a wrong keyring fails.
    const decrypt = async (encrypted: string, keyring: string): Promise<string> => {
      if (keyring !== 'ws_certs') throw new Error('wrong keyring');
      return Buffer.from(encrypted, 'base64').toString('utf8');
    };
    await db.execute(
      'INSERT INTO `certificates` (`id`, `hostname`, `workspace_id`, `certificate`, `encrypted_private_key`, `created_at_m`) VALUES (?, ?, ?, ?, ?, ?)',
      [newId('cert'), '*.served.test', 'ws_certs', cert.cert, Buffer.from(cert.key).toString('base64'), NOW],
    );
    const frontline = new Frontline({
      routes: new DatabaseRouteStore({ db }),
      certificates: new CertificateStore({ loader: createDatabaseCertificateLoader(db, decrypt) }),
      metrics: new Metrics(),
    });
    const { https } = await frontline.listen({ httpsPort: 0 });
    t.teardown(() => frontline.close({ graceMs: 100 }));
    t.equal((await handshake(https.port, 'shop.served.test')).altNames, 'DNS:*.served.test');
    await t.rejects(handshake(https.port, 'nothing.test'), 'no row, no handshake');
    const response = await httpsRequest(https.port, 'shop.served.test', '/db');
    t.equal(response.status, 200);
    t.equal((JSON.parse(response.body) as EchoBody).origin, engine);
    const missing = await httpsRequest(https.port, 'other.served.test', '/db');
    t.equal(missing.status, 404, 'a certificate alone is not a route');
  });
}

t.test('sqlite', async (t) => {
  const db = await openDatabase(':memory:');
  t.teardown(() => db.close());
  await suite(t, db, 'sqlite');
});

const mysqlTestDatabase = await createTestMysqlDatabase();

t.test('mysql', { skip: mysqlTestDatabase === undefined ? MYSQL_SKIP_MESSAGE : false }, async (t) => {
  const test = mysqlTestDatabase!;
  const db = await openDatabase(test.url);
  t.teardown(async () => {
    await db.close();
    await test.drop();
  });
  await suite(t, db, 'mysql');
});
