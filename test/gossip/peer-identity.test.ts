import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { PeerIdentity } from '../../gossip/peer-identity.ts';

t.test('creates the identity once and returns the same peer id afterwards', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'keygate-identity-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const [first, concurrent] = await Promise.all([PeerIdentity.loadOrCreate(dataDir), PeerIdentity.loadOrCreate(dataDir)]);
  t.ok(first.peerId.equals(concurrent.peerId), 'two concurrent starts agree on one identity');
  const again = await PeerIdentity.loadOrCreate(dataDir);
  t.ok(again.peerId.equals(first.peerId));
  t.equal((await stat(join(dataDir, 'gossip', 'peer-key'))).mode & 0o777, 0o600);
  const otherDir = await mkdtemp(join(tmpdir(), 'keygate-identity-'));
  t.teardown(() => rm(otherDir, { recursive: true, force: true }));
  const other = await PeerIdentity.loadOrCreate(otherDir);
  t.notOk(other.peerId.equals(first.peerId));
});

t.test('refuses a corrupt identity file instead of silently replacing it', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'keygate-identity-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  await PeerIdentity.loadOrCreate(dataDir);
  await writeFile(join(dataDir, 'gossip', 'peer-key'), 'not a key');
  await t.rejects(PeerIdentity.loadOrCreate(dataDir), { code: 'err:keygate:gossip:identity_invalid' });
});
