/**
 * Acceptance test of gossip invalidation (issue 6): real `keygate api` processes sharing one
 * MariaDB database, each caching keys for 60 s (KEYGATE_CACHE_FRESH_MS), joined by gossip on
 * loopback with one cluster key made by `keygate gossip keygen`.
 *
 * - A key verified VALID on A, B and C (so cached on all three) and then disabled through A is
 *   rejected by B and C long before their cache entries would expire, and their metrics show
 *   the invalidation arrived by gossip.
 * - A node E holding a different cluster key cannot join: no peer, no message received, it says
 *   it falls back to expiry, and it keeps serving its cached VALID entry (the cost of being cut off).
 * - A node D that joins late converges: it reads the current state and receives the next change.
 */
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import t, { type Test } from 'tap';
import { ClusterKey } from '../../gossip/cluster-key.ts';
import { createTestMysqlDatabase, MYSQL_SKIP_MESSAGE } from '../helpers/mysql.ts';
import { pollUntil, reserveLoopbackPort, runKeygate, startKeygate, type KeygateProcess } from './keygate-process.ts';

/** The key cache's fresh window on every node: far longer than any wait below. */
const CACHE_FRESH_MS = 60_000;
/** How long B and C may take to reject the disabled key: a sixth of the fresh window. */
const PROPAGATION_DEADLINE_MS = 10_000;
/** How long nodes may take to find each other (dial, handshakes, subscriptions). */
const MESH_DEADLINE_MS = 20_000;

const mysql = await createTestMysqlDatabase();
if (mysql === undefined) {
  t.comment(MYSQL_SKIP_MESSAGE);
} else {
  t.teardown(() => mysql.drop());
  // One parent test owns the cluster, so its processes live exactly as long as its subtests.
  await t.test('three keygate api nodes gossiping over one MariaDB database', (t) => runCluster(t, mysql.url));
}

async function runCluster(t: Test, databaseUrl: string): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), 'keygate-gossip-e2e-'));
  t.teardown(() => rm(workDir, { recursive: true, force: true }));

  const clusterKeyFile = join(workDir, 'cluster.key');
  const keygen = await runKeygate(['gossip', 'keygen', clusterKeyFile]);
  t.equal(keygen.code, 0, `keygate gossip keygen: ${keygen.output}`);
  const strangerKeyFile = join(workDir, 'other-cluster.key');
  await ClusterKey.generate().writeFile(strangerKeyFile);

  const ports = { a: 0, b: 0, c: 0, d: 0, e: 0 };
  for (const name of Object.keys(ports) as Array<keyof typeof ports>) ports[name] = await reserveLoopbackPort();
  const address = (name: keyof typeof ports): string => `127.0.0.1:${ports[name]}`;
  const environment = { KEYGATE_CACHE_FRESH_MS: String(CACHE_FRESH_MS), KEYGATE_CACHE_STALE_MS: '600000' };
  const startNode = (name: keyof typeof ports, peers: Array<keyof typeof ports>, keyFile = clusterKeyFile): Promise<KeygateProcess> =>
    startKeygate(t, name, [
      'api', '--port', '0', '--db', databaseUrl, '--data-dir', join(workDir, name), '--log-level', 'warn',
      '--gossip-listen', address(name), '--gossip-peers', peers.map(address).join(','), '--cluster-key-file', keyFile,
    ], environment);

  // A first: it migrates the empty database and prints the root key. Then the others at once;
  // every node lists every other (E too, with the wrong key).
  const bootStartedAtMs = Date.now();
  const a = await startNode('a', ['b', 'c']);
  const aStartedAfterMs = Date.now() - bootStartedAtMs;
  const rootKey = /root key: (\S+)/.exec(a.output())?.[1];
  if (rootKey === undefined) throw new Error(`node a printed no root key:\n${a.output()}`);
  const [b, c, e] = await Promise.all([startNode('b', ['a', 'c']), startNode('c', ['a', 'b']), startNode('e', ['a', 'b', 'c'], strangerKeyFile)]);
  t.match(a.output(), new RegExp(`gossip listening on ${address('a')} \\(node \\S+, cluster key [0-9a-f]{16}`), 'the node says where it gossips');

  const gauge = async (node: KeygateProcess, name: string): Promise<number> => (await node.metrics(name)).get(name) ?? 0;
  const waitForPeers = (node: KeygateProcess, count: number) =>
    pollUntil(`${node.name} reaches ${count} gossip peers`, MESH_DEADLINE_MS, async () => ((await gauge(node, 'keygate_gossip_peers_count')) >= count ? true : undefined));
  const othersStartedAfterMs = Date.now() - bootStartedAtMs;
  await Promise.all([waitForPeers(a, 2), waitForPeers(b, 2), waitForPeers(c, 2)]);
  t.comment(`boot: A listening after ${aStartedAfterMs} ms, B, C, E after ${othersStartedAfterMs} ms, A-B-C meshed after ${Date.now() - bootStartedAtMs} ms`);

  const verify = async (node: KeygateProcess, key: string): Promise<string> => {
    const response = await node.call('keys.verifyKey', { key }, rootKey);
    if (response.status !== 200) throw new Error(`${node.name} keys.verifyKey: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body.data.code as string;
  };
  const apiId = (await a.call('apis.createApi', { name: 'gossip-e2e' }, rootKey)).body.data.apiId as string;
  const created = (await a.call('keys.createKey', { apiId, prefix: 'e2e' }, rootKey)).body.data as { keyId: string; key: string };

  await t.test('a key disabled through node A is rejected by B and C before their cache entries expire', async (t) => {
    for (const node of [a, b, c, e]) t.equal(await verify(node, created.key), 'VALID', `${node.name} verifies (and caches) the key`);
    const appliedBefore = await Promise.all([b, c].map((node) => gauge(node, 'keygate_gossip_messages_applied_total')));

    const disabledAtMs = Date.now();
    const update = await a.call('keys.updateKey', { keyId: created.keyId, enabled: false }, rootKey);
    t.equal(update.status, 200, JSON.stringify(update.body));
    for (const node of [b, c]) {
      await pollUntil(`${node.name} rejects the disabled key`, PROPAGATION_DEADLINE_MS, async () => ((await verify(node, created.key)) === 'DISABLED' ? true : undefined));
    }
    const elapsedMs = Date.now() - disabledAtMs;
    t.ok(elapsedMs < CACHE_FRESH_MS, 'B and C rejected it while their cached VALID entries were still fresh');
    t.comment(`B and C rejected the key ${elapsedMs} ms after the update (cache fresh window: ${CACHE_FRESH_MS} ms)`);
    const appliedAfter = await Promise.all([b, c].map((node) => gauge(node, 'keygate_gossip_messages_applied_total')));
    t.ok(appliedAfter[0]! > appliedBefore[0]! && appliedAfter[1]! > appliedBefore[1]!, 'B and C applied an invalidation from a peer');
    t.equal(await verify(a, created.key), 'DISABLED', 'A (which published) rejects it too');
  });

  await t.test('a node holding another cluster key cannot join, and serves its cache until expiry', async (t) => {
    t.equal(await gauge(e, 'keygate_gossip_peers_count'), 0, 'E reaches no peer');
    t.equal(await gauge(e, 'keygate_gossip_messages_received_total'), 0, 'E received no message');
    t.equal(await gauge(e, 'keygate_gossip_fallback_to_expiry_info'), 1, 'E says it falls back to expiry');
    // A dial with the wrong key fails at the handshake or at the dial timeout (5 s), so the
    // first error may come after the mesh of A, B and C formed: wait for it, bounded.
    const gossipErrors = async (): Promise<number> => [...(await e.metrics('keygate_gossip_errors_total{')).values()].reduce((sum, value) => sum + value, 0);
    const errors = await pollUntil('E counts a gossip error', MESH_DEADLINE_MS, async () => {
      const count = await gossipErrors();
      return count > 0 ? count : undefined;
    });
    t.ok(errors > 0, `E counts its failed connections as gossip errors (${errors})`);
    t.equal(await verify(e, created.key), 'VALID', 'E still serves the VALID entry it cached: without gossip only expiry would fix it');
    t.equal(await gauge(a, 'keygate_gossip_peers_count'), 2, 'A counts B and C, never E');
  });

  await t.test('a node that joins late converges and receives the next change', async (t) => {
    const d = await startNode('d', ['a', 'b', 'c']);
    await waitForPeers(d, 3);
    t.equal(await verify(d, created.key), 'DISABLED', 'D reads the current state');
    // Re-enabled through B this time: any member publishes, and D (caching DISABLED) must hear it.
    const update = await b.call('keys.updateKey', { keyId: created.keyId, enabled: true }, rootKey);
    t.equal(update.status, 200, JSON.stringify(update.body));
    for (const node of [a, c, d]) {
      await pollUntil(`${node.name} accepts the re-enabled key`, PROPAGATION_DEADLINE_MS, async () => ((await verify(node, created.key)) === 'VALID' ? true : undefined));
    }
    t.ok((await gauge(d, 'keygate_gossip_messages_applied_total')) > 0, 'D applied an invalidation from a peer');
    t.equal(await d.stop(), 0, 'D drains and exits 0 on SIGTERM');
  });

  await t.test('every node stops cleanly', async (t) => {
    const codes = await Promise.all([a, b, c, e].map((node) => node.stop()));
    t.same(codes, [0, 0, 0, 0], 'SIGTERM drains and exits 0');
  });
}
