/**
 * Two API servers in one process, each with its own database pool and Redis connection, sharing
 * one MariaDB database and one Redis prefix (as two nodes would): credits are never over-spent
 * under concurrent verifications spread over both, and ratelimit.limit's overshoot across the
 * nodes is measured and printed (not asserted as timing).
 */
import t from 'tap';
import { systemClock } from '../../../core/clock.ts';
import { openDatabase, type Database } from '../../../core/db/database.ts';
import { migrate } from '../../../core/db/migrate.ts';
import { getKeyById } from '../../../core/db/queries/keys.ts';
import { insertWorkspace } from '../../../core/db/queries/workspaces.ts';
import { newId } from '../../../core/id.ts';
import { createLogger } from '../../../core/log.ts';
import { Metrics } from '../../../core/metrics.ts';
import { createApiServer, type ApiServer } from '../../../control/api/api-service.ts';
import { createApiDependencies, type ApiDependencies } from '../../../control/api/dependencies.ts';
import { allRootKeyPermissions, insertRootKey, seedRootWorkspace } from '../../../control/api/root-workspace.ts';
import { createTestMysqlDatabase, MYSQL_SKIP_MESSAGE } from '../../helpers/mysql.ts';
import { connectTestRedis, REDIS_SKIP_MESSAGE } from '../../helpers/redis.ts';

const mysql = await createTestMysqlDatabase();
const redis = mysql === undefined ? undefined : await connectTestRedis();
if (mysql === undefined || redis === undefined) {
  t.comment(mysql === undefined ? MYSQL_SKIP_MESSAGE : REDIS_SKIP_MESSAGE);
  await mysql?.drop();
} else {
  t.teardown(() => mysql.drop());
  t.teardown(() => redis.cleanup());
  const nodes: Array<{ db: Database; deps: ApiDependencies; api: ApiServer }> = [];
  for (let index = 0; index < 2; index++) {
    const db = await openDatabase(mysql.url);
    t.teardown(() => db.close());
    if (index === 0) await migrate(db);
    const deps = createApiDependencies({
      db, clock: systemClock, metrics: new Metrics(), redis: redis.connect(), redisKeyPrefix: redis.prefix,
      logger: createLogger({ level: 'silent' }), analyticsFlushIntervalMs: 0, creditsFlushIntervalMs: 50,
    });
    const api = createApiServer(deps);
    t.teardown(async () => {
      await api.server.close();
      await deps.close();
    });
    nodes.push({ db, deps, api });
  }
  const db = nodes[0]!.db;
  const root = await seedRootWorkspace(db, systemClock);
  const workspaceId = newId('ws');
  await insertWorkspace(db, { id: workspaceId, name: 'two nodes', createdAtMs: Date.now() });
  const { key: rootKey } = await insertRootKey(db, root, systemClock, { forWorkspaceId: workspaceId, permissions: allRootKeyPermissions(workspaceId) });
  const call = async (node: number, operationId: string, body: unknown) => {
    const response = await nodes[node]!.api.server.inject({
      method: 'POST', url: `/v2/${operationId}`, headers: { 'content-type': 'application/json', authorization: `Bearer ${rootKey}` }, body: JSON.stringify(body),
    });
    return { status: response.status, body: response.json<any>() };
  };

  t.test('credits are never over-spent by concurrent verifies on two nodes', async (t) => {
    const apiId = (await call(0, 'apis.createApi', { name: 'credits' })).body.data.apiId;
    const created = await call(1, 'keys.createKey', { apiId, credits: { remaining: 40 } });
    t.equal(created.status, 200, JSON.stringify(created.body));
    const verifications = Array.from({ length: 100 }, (_, index) => call(index % 2, 'keys.verifyKey', { key: created.body.data.key }));
    const results = await Promise.all(verifications);
    const valid = results.filter((result) => result.body.data.code === 'VALID').length;
    const exceeded = results.filter((result) => result.body.data.code === 'USAGE_EXCEEDED').length;
    t.equal(valid, 40, 'exactly the credits available');
    t.equal(exceeded, 60);
    for (const node of nodes) await node.deps.usageLimiter.flush();
    t.equal((await getKeyById(db, created.body.data.keyId))?.remainingRequests, 0, 'the database caught up');
  });

  t.test('ratelimit.limit across two nodes: overshoot measured', async (t) => {
    const limit = 20;
    const requests = Array.from({ length: 80 }, (_, index) => call(index % 2, 'ratelimit.limit', { namespace: 'two_nodes', identifier: 'user', limit, duration: 60_000 }));
    const results = await Promise.all(requests);
    t.ok(results.every((result) => result.status === 200));
    const passed = results.filter((result) => result.body.data.success).length;
    t.comment(`ratelimit across 2 nodes: limit ${limit}, 80 requests, passed ${passed}, overshoot ${passed - limit}`);
    console.log(`ratelimit across 2 nodes: limit ${limit}, 80 requests, passed ${passed}, overshoot ${passed - limit}`);
    t.ok(passed >= limit * 0.95 && passed <= limit * 1.2, 'within the reference acceptance band');
  });
}
