import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import t from 'tap';
import { ClusterKey } from '../../gossip/cluster-key.ts';

t.test('writes a libp2p swarm key v1 file, owner-only, and reads it back', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'keygate-cluster-key-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'nested', 'cluster.key');
  const key = ClusterKey.generate();
  await key.writeFile(path);
  t.match(await readFile(path, 'utf8'), /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/);
  t.equal((await stat(path)).mode & 0o777, 0o600);
  t.ok((await ClusterKey.readFile(path)).equals(key));
  await t.rejects(ClusterKey.generate().writeFile(path), { code: 'err:keygate:gossip:cluster_key_invalid' }, 'never silently replaces a cluster key');
  await ClusterKey.generate().writeFile(path, { overwrite: true });
  t.notOk((await ClusterKey.readFile(path)).equals(key));
});

t.test('never shows the key itself in strings, JSON or inspect', async (t) => {
  const key = ClusterKey.generate();
  const secretHex = key.toFileText().split('\n')[2]!;
  for (const rendered of [String(key), JSON.stringify({ key }), inspect(key), inspect({ nested: key })]) {
    t.notMatch(rendered, secretHex);
    t.match(rendered, key.fingerprint);
  }
});

t.test('refuses files that are not a swarm key, without echoing their content', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'keygate-cluster-key-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const cases = ['', 'hello', '/key/swarm/psk/1.0.0/\n/base64/\n' + 'a'.repeat(64), '/key/swarm/psk/1.0.0/\n/base16/\n' + 'a'.repeat(62), '/key/swarm/psk/1.0.0/\n/base16/\n' + 'z'.repeat(64)];
  for (const [index, content] of cases.entries()) {
    const path = join(directory, `bad-${index}`);
    await writeFile(path, content);
    await t.rejects(ClusterKey.readFile(path), { code: 'err:keygate:gossip:cluster_key_invalid' }, JSON.stringify(content.slice(0, 30)));
  }
  await t.rejects(ClusterKey.readFile(join(directory, 'missing')), { code: 'err:keygate:gossip:cluster_key_invalid', message: /ENOENT/ });
  t.ok(ClusterKey.parse('/key/swarm/psk/1.0.0/\r\n/base16/\r\n' + 'AB'.repeat(32) + '\r\n'), 'CRLF and upper-case hex are fine');
});
