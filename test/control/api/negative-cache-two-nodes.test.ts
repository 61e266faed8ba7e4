/**
 * Two API servers sharing one database and one in-memory cluster bus (MemoryBusHub): a key
 * migrated on node A (keys.migrateKeys + first verify with the migration id) is found at once by
 * node B even though B cached "no such key" for its hash just before, because A's local drop of
 * that negative entry is published. Also: a namespace auto-created by ratelimit.limit on A is
 * seen by B despite B's cached "no such namespace".
 */
import t from 'tap';
import { TestClock } from '../../../core/clock.ts';
import { openDatabase } from '../../../core/db/database.ts';
import { migrate } from '../../../core/db/migrate.ts';
import { insertKeyMigration } from '../../../core/db/queries/key-migrations.ts';
import { insertWorkspace } from '../../../core/db/queries/workspaces.ts';
import { newId } from '../../../core/id.ts';
import { MemoryBus, MemoryBusHub } from '../../../core/invalidation/memory-bus.ts';
import { hashKey } from '../../../core/keys/key-hash.ts';
import { sha256Hex } from '../../../core/keys/key-migration.ts';
import { createLogger } from '../../../core/log.ts';
import { Metrics } from '../../../core/metrics.ts';
import { createApiServer } from '../../../control/api/api-service.ts';
import { createApiDependencies, type ApiDependencies } from '../../../control/api/dependencies.ts';
import { allRootKeyPermissions, insertRootKey, seedRootWorkspace } from '../../../control/api/root-workspace.ts';

/** Bound on waiting for a bus delivery (it comes on a later event-loop turn). */
const DELIVERY_DEADLINE_MS = 5_000;

const clock = new TestClock();
const db = await openDatabase(':memory:');
t.teardown(() => db.close());
await migrate(db);
const hub = new MemoryBusHub();
const nodes: Array<{ deps: ApiDependencies; call: (operationId: string, body: unknown) => Promise<{ status: number; body: any }> }> = [];
const root = await seedRootWorkspace(db, clock);
const workspaceId = newId('ws');
await insertWorkspace(db, { id: workspaceId, name: 'two nodes', createdAtMs: clock.nowMs() });
const { key: rootKey } = await insertRootKey(db, root, clock, { forWorkspaceId: workspaceId, permissions: allRootKeyPermissions(workspaceId) });
for (let index = 0; index < 2; index++) {
  const bus = new MemoryBus({ hub, nodeId: `node-${index}`, clock });
  const deps = createApiDependencies({
    db, clock, metrics: new Metrics(), invalidation: bus, logger: createLogger({ level: 'silent' }), analyticsFlushIntervalMs: 0,
  });
  const api = createApiServer(deps);
  t.teardown(async () => {
    await api.server.close();
    await deps.close();
    await bus.close();
  });
  nodes.push({
    deps,
    async call(operationId, body) {
      const response = await api.server.inject({
        method: 'POST', url: `/v2/${operationId}`, headers: { 'content-type': 'application/json', authorization: `Bearer ${rootKey}` }, body: JSON.stringify(body),
      });
      return { status: response.status, body: response.json<any>() };
    },
  });
}
const [nodeA, nodeB] = [nodes[0]!, nodes[1]!];

/** Polls until `condition` holds (bus deliveries run on later event-loop turns), within the deadline. */
async function eventually(condition: () => boolean): Promise<boolean> {
  const deadline = Date.now() + DELIVERY_DEADLINE_MS;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return true;
}

t.test('a key migrated on node A is valid on node B right away, despite B\'s cached "not found"', async (t) => {
  const apiId = (await nodeA.call('apis.createApi', { name: 'migrations' })).body.data.apiId;
  await insertKeyMigration(db, { id: 'mig_two_nodes', workspaceId, algorithm: 'sha256', createdAtMs: clock.nowMs() });
  const raw = 'legacy_two_nodes_0123456789';
  const migrated = await nodeA.call('keys.migrateKeys', { migrationId: 'mig_two_nodes', apiId, keys: [{ hash: sha256Hex(raw), name: 'legacy' }] });
  t.equal(migrated.status, 200);

  t.equal((await nodeB.call('keys.verifyKey', { key: raw })).body.data.code, 'NOT_FOUND', 'B caches "no such key" for our hash');
  t.equal(nodeB.deps.caches.keysByHash.size, 2, 'B holds the negative entry (and the root key)');
  t.equal((await nodeA.call('keys.verifyKey', { key: raw, migrationId: 'mig_two_nodes' })).body.data.valid, true, 'A migrates it on first verify');

  t.ok(await eventually(() => nodeB.deps.caches.keysByHash.size === 1), 'B dropped its negative entry (A published the drop)');
  const onB = (await nodeB.call('keys.verifyKey', { key: raw })).body.data;
  t.equal(onB.valid, true, 'B finds the migrated key without waiting for its negative entry to expire');
  t.equal(onB.name, 'legacy');
});

t.test('a namespace auto-created on node A is seen by node B despite B\'s cached "not found"', async (t) => {
  const namespace = 'two-node-namespace';
  const before = await nodeB.call('ratelimit.getOverride', { namespace, identifier: 'x' });
  t.equal(before.status, 404, 'B caches "no such namespace"');
  t.equal(nodeB.deps.caches.ratelimitNamespaces.size, 1);
  const limited = await nodeA.call('ratelimit.limit', { namespace, identifier: 'user', limit: 5, duration: 60_000 });
  t.equal(limited.status, 200, 'A auto-creates it');
  t.ok(await eventually(() => nodeB.deps.caches.ratelimitNamespaces.size === 0), 'B dropped its negative entry');
  const setOverride = await nodeB.call('ratelimit.setOverride', { namespace, identifier: 'vip', limit: 50, duration: 60_000 });
  t.equal(setOverride.status, 200, 'B finds the namespace at once');
});
