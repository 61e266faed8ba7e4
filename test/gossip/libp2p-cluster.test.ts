/**
 * Cluster behaviour of the libp2p bus that the shared suite cannot express: relaying across a
 * line of nodes, the private network, late joiners, restarts and a real partition (TCP proxies
 * on loopback that the test cuts and restores). Few nodes per test: each costs about 0.5 s.
 */
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { gossipsub } from '@libp2p/gossipsub';
import type { GossipSub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { noise } from '@libp2p/noise';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { createLibp2p } from 'libp2p';
import type { Libp2p } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { SwrCache } from '../../core/cache/swr-cache.ts';
import { TestClock } from '../../core/clock.ts';
import { CacheInvalidationBinder } from '../../core/invalidation/cache-invalidation-binder.ts';
import { ALL_CACHES } from '../../core/invalidation/interface.ts';
import { Metrics } from '../../core/metrics.ts';
import { ClusterKey } from '../../gossip/cluster-key.ts';
import { INVALIDATION_TOPIC, Libp2pBus } from '../../gossip/libp2p-bus.ts';
import type { Libp2pBusOptions } from '../../gossip/libp2p-bus.ts';
import { DeliveryRecorder, waitUntil } from '../helpers/invalidation-bus-suite.ts';

const FAST_REDIAL = { redialMinDelayMs: 50, redialMaxDelayMs: 300, dialTimeoutMs: 1500 } as const;

async function startBus(t: Test, options: Partial<Libp2pBusOptions> & { clusterKey: ClusterKey }): Promise<Libp2pBus> {
  const bus = await Libp2pBus.start({ listen: '127.0.0.1:0', ...FAST_REDIAL, ...options });
  t.teardown(() => bus.close());
  return bus;
}

t.test('three nodes in a line converge: the middle node relays between the ends', async (t) => {
  const clusterKey = ClusterKey.generate();
  const middle = await startBus(t, { clusterKey });
  const left = await startBus(t, { clusterKey, peers: middle.listenAddresses() });
  const right = await startBus(t, { clusterKey, peers: middle.listenAddresses() });
  await waitUntil(() => middle.status().peerCount === 2 && left.status().peerCount === 1 && right.status().peerCount === 1, 'the line is connected');
  // The middle node forwards others' messages to its mesh, which forms within a heartbeat.
  await waitUntil(() => middle.meshPeerCount() === 2, 'the middle node meshed with both ends');
  const atRight = new DeliveryRecorder(right);
  const atLeft = new DeliveryRecorder(left);
  await left.publish({ cache: 'keys', keys: ['from-left'] });
  await right.publish({ cache: 'keys', keys: ['from-right'] });
  await waitUntil(() => atRight.keysOf('keys').includes('from-left') && atLeft.keysOf('keys').includes('from-right'), 'each end received the other end\'s invalidation');
  t.same(atRight.keysOf('keys').sort(), ['from-left', 'from-right'], 'its own, applied locally, and the other end\'s');
  t.same(atLeft.keysOf('keys').sort(), ['from-left', 'from-right']);
  t.equal(left.bootstrapStatus()[0]!.peerId, middle.nodeId, 'the peer id was learnt on connect');
});

t.test('a node without the cluster key cannot join, send or receive', async (t) => {
  const clusterKey = ClusterKey.generate();
  const member = await startBus(t, { clusterKey });
  const control = await startBus(t, { clusterKey, peers: member.listenAddresses() });
  const outsider = await startBus(t, { clusterKey: ClusterKey.generate(), peers: member.listenAddresses() });
  await waitUntil(() => control.status().peerCount === 1, 'the member with the key joined');
  await waitUntil(() => (outsider.bootstrapStatus()[0]?.failedAttempts ?? 0) >= 2, 'the outsider failed to connect twice');
  t.equal(outsider.status().peerCount, 0);
  t.equal(outsider.status().fallbackToExpiry, true, 'the outsider says it converges by expiry only');
  t.match(outsider.status().lastError?.message, /err:keygate:gossip:peer_unreachable/);
  t.equal(member.status().peerCount, 1, 'the member counts only the node with the key');

  const atOutsider = new DeliveryRecorder(outsider);
  const atMember = new DeliveryRecorder(member);
  const atControl = new DeliveryRecorder(control);
  await outsider.publish({ cache: 'keys', keys: ['forged'] });
  await member.publish({ cache: 'keys', keys: ['real'] });
  await waitUntil(() => atControl.keysOf('keys').includes('real'), 'the control node received the member\'s message');
  t.same(atOutsider.keysOf('keys'), ['forged'], 'the outsider only sees its own publish');
  t.same(atMember.keysOf('keys'), ['real'], 'the member never sees the outsider\'s publish');
});

t.test('a plain libp2p node without any cluster key cannot connect', async (t) => {
  const member = await startBus(t, { clusterKey: ClusterKey.generate() });
  const stranger = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { dialTimeout: 1500 },
  });
  t.teardown(() => stranger.stop());
  await t.rejects(stranger.dial(multiaddr(`/ip4/127.0.0.1/tcp/${portOf(member.listenAddresses()[0]!)}`)));
  t.equal(member.status().peerCount, 0);
});

t.test('drops bytes on the topic that are not an invalidation, and does not forward them', async (t) => {
  const clusterKey = ClusterKey.generate();
  const member = await startBus(t, { clusterKey });
  const downstream = await startBus(t, { clusterKey, peers: member.listenAddresses() });
  const rogue = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionProtector: preSharedKey({ psk: clusterKey.toPnetBytes() }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, globalSignaturePolicy: 'StrictNoSign' }) },
  }) as Libp2p<{ pubsub: GossipSub }>;
  t.teardown(() => rogue.stop());
  rogue.services.pubsub.subscribe(INVALIDATION_TOPIC);
  await rogue.dial(multiaddr(`/ip4/127.0.0.1/tcp/${portOf(member.listenAddresses()[0]!)}`));
  await waitUntil(() => rogue.services.pubsub.getSubscribers(INVALIDATION_TOPIC).length === 1 && member.status().peerCount === 2, 'the rogue node is meshed');
  await rogue.services.pubsub.publish(INVALIDATION_TOPIC, new Uint8Array([0xff, 0xff, 0xff, 0x01]));
  await waitUntil(() => member.status().ignoredCount === 1, 'the member dropped the malformed message');
  t.match(member.status().lastError?.message, /err:keygate:gossip:malformed_message/);
  // A valid message after it still flows, and the junk never reached the downstream node.
  const atDownstream = new DeliveryRecorder(downstream);
  await member.publish({ cache: 'keys', keys: ['after'] });
  await waitUntil(() => atDownstream.keysOf('keys').length === 1, 'the valid message arrived downstream');
  t.equal(downstream.status().ignoredCount, 0, 'downstream never saw the junk');
});

t.test('a late joiner receives what is published after it joins, and resyncs its caches once', async (t) => {
  const clusterKey = ClusterKey.generate();
  const first = await startBus(t, { clusterKey });
  const second = await startBus(t, { clusterKey, peers: first.listenAddresses() });
  await waitUntil(() => first.status().peerCount === 1, 'two nodes connected');
  await first.publish({ cache: 'keys', keys: ['before-join'] });
  const late = await startBus(t, { clusterKey, peers: first.listenAddresses() });
  const atLate = new DeliveryRecorder(late);
  await waitUntil(() => late.status().peerCount >= 1 && first.status().peerCount === 2, 'the late node joined');
  await waitUntil(() => atLate.of(ALL_CACHES).length === 1, 'the late node resynced on first contact');
  await second.publish({ cache: 'keys', keys: ['after-join'] });
  await waitUntil(() => atLate.keysOf('keys').includes('after-join'), 'the late node received the new invalidation');
  t.same(atLate.keysOf('keys'), ['after-join']);
});

t.test('a restarted node keeps its peer id, is re-dialed, and converges', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'keygate-gossip-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const clusterKey = ClusterKey.generate();
  const port = await freePort();
  let restarting = await Libp2pBus.start({ listen: `127.0.0.1:${port}`, clusterKey, dataDir, ...FAST_REDIAL });
  const firstPeerId = restarting.nodeId;
  const staying = await startBus(t, { clusterKey, peers: [`127.0.0.1:${port}`] });
  const atStaying = new DeliveryRecorder(staying);
  await waitUntil(() => staying.status().peerCount === 1, 'connected');

  await restarting.close();
  await waitUntil(() => staying.status().fallbackToExpiry, 'the staying node notices it reaches nobody');
  restarting = await Libp2pBus.start({ listen: `127.0.0.1:${port}`, clusterKey, dataDir, ...FAST_REDIAL });
  t.teardown(() => restarting.close());
  t.equal(restarting.nodeId, firstPeerId, 'the identity survived the restart');
  await waitUntil(() => staying.status().peerCount === 1 && restarting.status().peerCount === 1, 'the staying node re-dialed');
  t.equal(staying.status().fallbackToExpiry, false);
  t.ok(atStaying.of(ALL_CACHES).length >= 1, 'the staying node resynced after being cut off');

  const atRestarted = new DeliveryRecorder(restarting);
  await staying.publish({ cache: 'keys', keys: ['to-restarted'] });
  await restarting.publish({ cache: 'keys', keys: ['from-restarted'] });
  await waitUntil(() => atRestarted.keysOf('keys').includes('to-restarted') && atStaying.keysOf('keys').includes('from-restarted'), 'both directions work again');
  t.pass('converged');
});

t.test('lists of peers may include the node itself: it is recognised and never dialed', async (t) => {
  const clusterKey = ClusterKey.generate();
  const other = await startBus(t, { clusterKey });
  const port = await freePort();
  const self = await startBus(t, { clusterKey, listen: `127.0.0.1:${port}`, peers: [`127.0.0.1:${port}`, ...other.listenAddresses()] });
  await waitUntil(() => self.status().peerCount === 1, 'connected to the other node');
  const [own, remote] = self.bootstrapStatus();
  t.equal(own!.self, true);
  t.equal(own!.failedAttempts, 0);
  t.equal(remote!.connected, true);
});

t.test('a partitioned node serves from its cache, converges by expiry, and resyncs when the partition heals', async (t) => {
  const clusterKey = ClusterKey.generate();
  const metrics = new Metrics();
  const a = await startBus(t, { clusterKey });
  const b = await startBus(t, { clusterKey, peers: a.listenAddresses() });
  // c reaches a and b only through proxies the test can cut; c also refuses inbound connections
  // while cut, so nobody can route around the partition.
  const proxyToA = await startCuttableProxy(t, portOf(a.listenAddresses()[0]!));
  const proxyToB = await startCuttableProxy(t, portOf(b.listenAddresses()[0]!));
  let partitioned = false;
  const cacheClock = new TestClock();
  const c = await startBus(t, {
    clusterKey,
    metrics,
    peers: [`127.0.0.1:${proxyToA.port}`, `127.0.0.1:${proxyToB.port}`],
    connectionGater: { denyInboundConnection: () => partitioned },
  });
  await waitUntil(() => c.status().peerCount === 2 && a.status().peerCount === 2, 'the cluster is connected');

  // c caches a key's state (fresh for 60 s), bound to the bus.
  let source = 'valid';
  const cache = new SwrCache<string>({ name: 'verification_key_by_hash', freshMs: 60_000, staleMs: 120_000, maxEntries: 100, clock: cacheClock });
  const binder = new CacheInvalidationBinder(c);
  t.teardown(() => binder.close());
  binder.bind('verification_key_by_hash', cache);
  const load = async () => source;
  t.equal(await cache.get('hash-1', load), 'valid');

  partitioned = true;
  proxyToA.cut();
  proxyToB.cut();
  await waitUntil(() => c.status().fallbackToExpiry, 'c knows it is cut off');
  t.match(await metrics.render(), /keygate_gossip_fallback_to_expiry_info 1/);

  source = 'disabled';
  const atB = new DeliveryRecorder(b);
  await a.publish({ cache: 'verification_key_by_hash', keys: ['hash-1'] });
  await waitUntil(() => atB.of('verification_key_by_hash').length === 1, 'b received the invalidation');
  t.equal(await cache.get('hash-1', load), 'valid', 'c still serves its cached entry during the partition');
  cacheClock.advance(120_000);
  t.equal(await cache.get('hash-1', load), 'disabled', 'c converges by expiry');

  // A second change during the partition; this one is healed by the resync, not by expiry.
  source = 'deleted';
  await a.publish({ cache: 'verification_key_by_hash', keys: ['hash-1'] });
  t.equal(await cache.get('hash-1', load), 'disabled');
  partitioned = false;
  proxyToA.restore();
  proxyToB.restore();
  await waitUntil(() => c.status().peerCount === 2, 'the partition healed', 30_000);
  await waitUntil(() => cache.peek('hash-1') === undefined, 'c dropped its caches on reconnect');
  t.equal(await cache.get('hash-1', load), 'deleted', 'c converged without waiting for expiry');
  t.match(await metrics.render(), /keygate_gossip_fallback_to_expiry_info 0/);

  source = 'recreated';
  // A publish reaches the peers the publisher has seen subscribe: wait until b sees c again too
  // (c seeing b is not enough; the two views converge within a heartbeat or so).
  await waitUntil(() => b.status().peerCount === 2, 'b sees c subscribed again', 30_000);
  await b.publish({ cache: 'verification_key_by_hash', keys: ['hash-1'] });
  await waitUntil(() => cache.peek('hash-1') === undefined, 'new invalidations reach c again');
  t.equal(await cache.get('hash-1', load), 'recreated');
});

t.test('exposes peers, messages and propagation latency as metrics', async (t) => {
  const clusterKey = ClusterKey.generate();
  const senderMetrics = new Metrics();
  const receiverMetrics = new Metrics();
  const sender = await startBus(t, { clusterKey, metrics: senderMetrics });
  const receiver = await startBus(t, { clusterKey, metrics: receiverMetrics, peers: sender.listenAddresses() });
  await waitUntil(() => sender.status().peerCount === 1 && receiver.status().peerCount === 1, 'connected');
  const atReceiver = new DeliveryRecorder(receiver);
  await sender.publish({ cache: 'keys', keys: ['k'] });
  await waitUntil(() => atReceiver.of('keys').length === 1, 'applied');
  const sent = await senderMetrics.render();
  const received = await receiverMetrics.render();
  t.match(sent, /keygate_gossip_messages_published_total 1\b/);
  t.match(sent, /keygate_gossip_peers_count 1\b/);
  t.match(received, /keygate_gossip_messages_received_total 1\b/);
  t.match(received, /keygate_gossip_messages_applied_total 1\b/);
  t.match(received, /keygate_gossip_propagation_latency_seconds_count 1\b/);
  t.match(received, /keygate_gossip_fallback_to_expiry_info 0\b/);
});

t.test('refuses addresses that are not host:port', async (t) => {
  const clusterKey = ClusterKey.generate();
  await t.rejects(Libp2pBus.start({ listen: 'nope', clusterKey }), { code: 'err:keygate:config:invalid' });
  await t.rejects(Libp2pBus.start({ listen: 'node-a.internal:7001', clusterKey }), { code: 'err:keygate:config:invalid' });
  await t.rejects(Libp2pBus.start({ listen: '127.0.0.1:0', peers: ['127.0.0.1'], clusterKey }), { code: 'err:keygate:config:invalid' });
});

function portOf(hostPort: string): number {
  return Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface CuttableProxy {
  port: number;
  /** Destroys every proxied connection and refuses new ones. */
  cut(): void;
  /** Accepts and forwards again. */
  restore(): void;
}

/** A TCP proxy on loopback to `targetPort` that the test can cut, like a network partition. */
async function startCuttableProxy(t: Test, targetPort: number): Promise<CuttableProxy> {
  const sockets = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      cut = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      cut = false;
    },
  };
}

