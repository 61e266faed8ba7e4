import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../../bin/cli.ts';
import { loadConfig } from '../../core/config/load-config.ts';
import { ClusterKey } from '../../gossip/cluster-key.ts';

async function run(args: string[], cwd: string, env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (text) => { stdout += text; }, stderr: (text) => { stderr += text; }, env, cwd });
  return { code, stdout, stderr };
}

t.test('gossip keygen writes a key file, and refuses to replace it without --force', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'keygate-gossip-cli-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const first = await run(['gossip', 'keygen', '--data-dir', directory], directory);
  t.equal(first.code, 0, first.stderr);
  const path = join(directory, 'gossip', 'cluster.key');
  const key = await ClusterKey.readFile(path);
  t.match(first.stdout, key.fingerprint);
  t.notMatch(first.stdout, (await readFile(path, 'utf8')).split('\n')[2]!, 'the key itself is never printed');
  const again = await run(['gossip', 'keygen', '--data-dir', directory], directory);
  t.equal(again.code, 1);
  t.match(again.stderr, /already exists/);
  t.equal((await run(['gossip', 'keygen', 'other.key'], directory)).code, 0, 'FILE relative to the working directory');
  await ClusterKey.readFile(join(directory, 'other.key'));
  t.equal((await run(['gossip', 'keygen', '--force', '--data-dir', directory], directory)).code, 0);
  t.notOk((await ClusterKey.readFile(path)).equals(key));
  t.equal((await run(['gossip'], directory)).code, 2, 'the group alone is a usage error');
});

t.test('gossip.listen, gossip.peers and gossip.clusterKeyFile come from flags, env and file', async (t) => {
  const fromFlags = loadConfig({ env: {}, argv: ['--gossip-listen', '127.0.0.1:7001', '--gossip-peers', '127.0.0.1:7002,127.0.0.1:7003', '--cluster-key-file', '/etc/keygate/cluster.key'] });
  t.same({ ...fromFlags.gossip }, { listen: '127.0.0.1:7001', peers: ['127.0.0.1:7002', '127.0.0.1:7003'], clusterKeyFile: '/etc/keygate/cluster.key' });
  const fromEnv = loadConfig({ env: { KEYGATE_GOSSIP_LISTEN: '0.0.0.0:7001', KEYGATE_GOSSIP_PEERS: 'a:1, b:2', KEYGATE_GOSSIP_CLUSTER_KEY_FILE: '/k' }, argv: [] });
  t.same({ ...fromEnv.gossip }, { listen: '0.0.0.0:7001', peers: ['a:1', 'b:2'], clusterKeyFile: '/k' });
  const unset = loadConfig({ env: {}, argv: [] });
  t.same({ ...unset.gossip }, { listen: undefined, peers: [], clusterKeyFile: undefined }, 'no gossip by default: one node, in-memory bus');
});
