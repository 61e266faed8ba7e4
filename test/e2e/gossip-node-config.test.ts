/**
 * How `keygate api` takes its gossip configuration (no database server needed: SQLite in a
 * temporary data directory): it refuses to gossip without a readable cluster key, before it
 * touches the database; it keeps its gossip identity across restarts; without --gossip-listen it
 * runs alone on the in-memory bus.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ClusterKey } from '../../gossip/cluster-key.ts';
import { runKeygate, startKeygate } from './keygate-process.ts';

const workDir = await mkdtemp(join(tmpdir(), 'keygate-gossip-config-'));
t.teardown(() => rm(workDir, { recursive: true, force: true }));

t.test('refuses to gossip without the cluster key, before opening the database', async (t) => {
  const dataDir = join(workDir, 'no-key');
  const missing = await runKeygate(['api', '--port', '0', '--data-dir', dataDir, '--gossip-listen', '127.0.0.1:0']);
  t.equal(missing.code, 1, 'exit 1');
  t.match(missing.output, /keygate: gossip\.listen \(--gossip-listen\) needs the cluster key: set gossip\.clusterKeyFile \(--cluster-key-file/);
  t.notOk(existsSync(dataDir), 'no database was created');

  const unreadable = await runKeygate(['api', '--port', '0', '--data-dir', dataDir, '--gossip-listen', '127.0.0.1:0', '--cluster-key-file', join(workDir, 'absent.key')]);
  t.equal(unreadable.code, 1, 'exit 1 for a key file that cannot be read');
  t.match(unreadable.output, /without a readable cluster key.*absent\.key: ENOENT/);

  const junkFile = join(workDir, 'junk.key');
  await writeFile(junkFile, 'not a key\n');
  const junk = await runKeygate(['api', '--port', '0', '--data-dir', dataDir, '--gossip-listen', '127.0.0.1:0', '--cluster-key-file', junkFile], { KEYGATE_LOG_LEVEL: 'silent' });
  t.equal(junk.code, 1, 'exit 1 for a file that is not a cluster key');
  t.match(junk.output, /is not a libp2p swarm key/);
  t.notMatch(junk.output, /not a key/, 'the file content is not echoed');

  const peersAlone = await runKeygate(['api', '--port', '0', '--data-dir', dataDir, '--gossip-peers', '127.0.0.1:7002']);
  t.equal(peersAlone.code, 1, 'exit 1 for peers without a listen address');
  t.match(peersAlone.output, /gossip\.peers \(--gossip-peers\) is set but gossip\.listen/);
  t.notOk(existsSync(dataDir), 'still no database');
});

t.test('keeps its gossip identity in the data directory across restarts', async (t) => {
  const keyFile = join(workDir, 'cluster.key');
  const key = ClusterKey.generate();
  await key.writeFile(keyFile);
  const dataDir = join(workDir, 'node');
  const args = ['api', '--port', '0', '--data-dir', dataDir, '--log-level', 'silent', '--gossip-listen', '127.0.0.1:0', '--cluster-key-file', keyFile];
  const nodeIdOf = (output: string): string | undefined => /gossip listening on 127\.0\.0\.1:\d+ \(node (\S+), cluster key ([0-9a-f]+)/.exec(output)?.slice(1, 3).join(' ');

  const first = await startKeygate(t, 'first', args);
  const firstId = nodeIdOf(first.output());
  t.ok(firstId?.endsWith(` ${key.fingerprint}`), `prints the node id and the key's fingerprint: ${firstId}`);
  t.notMatch(first.output(), new RegExp(key.toFileText().split('\n')[2]!), 'never the key itself');
  t.equal(await first.stop(), 0);
  t.equal((await stat(join(dataDir, 'gossip', 'peer-key'))).mode & 0o777, 0o600, 'identity file readable by its owner only');

  const second = await startKeygate(t, 'second', args);
  t.equal(nodeIdOf(second.output()), firstId, 'the same node id after a restart');
  t.equal(await second.stop(), 0);
});

t.test('without --gossip-listen the node runs alone on the in-memory bus', async (t) => {
  const node = await startKeygate(t, 'alone', ['api', '--port', '0', '--data-dir', join(workDir, 'alone'), '--log-level', 'silent']);
  t.match(node.output(), /invalidation: in-memory \(one node/);
  t.equal((await node.metrics('keygate_gossip_peers_count')).size, 0, 'no gossip metrics');
  t.equal(await node.stop(), 0);
});
