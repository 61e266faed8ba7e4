/**
 * `Libp2pBus`: the {@link InvalidationBus} of a cluster. Each node runs a libp2p host (TCP,
 * a private network keyed by the cluster key, Noise, yamux, identify, ping) with gossipsub on
 * one versioned topic. Publish applies locally, then floods the message to every subscribed
 * peer; receivers decode it (bounded), skip their own, duplicate and safely-older messages,
 * and run their handlers (usually a `CacheInvalidationBinder`).
 *
 * Delivery is best effort. When a node reaches no peer although it expects some, it says so
 * (status, metric, one log line) and its caches converge by expiry; when it reaches a peer
 * again it clears its caches once (a "resync"), because it cannot know what it missed.
 */
import { gossipsub, TopicValidatorResult } from '@libp2p/gossipsub';
import type { GossipSub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { ConnectionGater, Libp2p, PeerId } from '@libp2p/interface';
import { noise } from '@libp2p/noise';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { createLibp2p } from 'libp2p';
import { networkInterfaces } from 'node:os';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import { Fault } from '../core/fault.ts';
import type { AppliedVersionsOptions } from '../core/invalidation/applied-versions.ts';
import { InvalidationCodec } from '../core/invalidation/invalidation-codec.ts';
import type { InvalidationLimits } from '../core/invalidation/invalidation-codec.ts';
import { InvalidationReceiver } from '../core/invalidation/invalidation-receiver.ts';
import type {
  Invalidation,
  InvalidationBus,
  InvalidationBusStatus,
  InvalidationHandler,
  InvalidationRequest,
} from '../core/invalidation/interface.ts';
import { createLogger } from '../core/log.ts';
import type { Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import { BootstrapDialer, DEFAULT_DIAL_TIMEOUT_MS } from './bootstrap-dialer.ts';
import type { BootstrapTargetStatus } from './bootstrap-dialer.ts';
import type { ClusterKey } from './cluster-key.ts';
import { GossipMetrics } from './gossip-metrics.ts';
import { formatHostPort, parseHostPort } from './host-port.ts';
import type { HostPort } from './host-port.ts';
import { PeerIdentity } from './peer-identity.ts';

/** The gossipsub topic; the suffix is the wire version of `invalidation.proto`. */
export const INVALIDATION_TOPIC = '/keygate/invalidation/1';

/** Options for {@link Libp2pBus.start}. */
export interface Libp2pBusOptions extends AppliedVersionsOptions {
  /** `host:port` to listen on (`gossip.listen`); port 0 picks a free port. */
  listen: string;
  /** `host:port` of the other nodes (`gossip.peers`); this node's own address may be listed. */
  peers?: readonly string[];
  /** The cluster's pre-shared key (`gossip.clusterKeyFile`). Required: there is no open mode. */
  clusterKey: ClusterKey;
  /** The node's identity. Default: persisted under `dataDir`, or a throwaway one without it. */
  identity?: PeerIdentity;
  /** Where the identity is kept (`<dataDir>/gossip/peer-key`) when `identity` is not given. */
  dataDir?: string;
  clock?: Clock;
  metrics?: Metrics;
  logger?: Logger;
  limits?: Partial<InvalidationLimits>;
  /** See `HybridLogicalClockOptions.maxForwardDriftMs`. */
  maxForwardDriftMs?: number;
  /** One dial's limit, and the limit for an inbound connection to finish its handshakes. Default 5 s. */
  dialTimeoutMs?: number;
  /** See `BootstrapDialerOptions.redialMinDelayMs` (default 250 ms). */
  redialMinDelayMs?: number;
  /** See `BootstrapDialerOptions.redialMaxDelayMs` (default 5 s). */
  redialMaxDelayMs?: number;
  /** Clear every bound cache when the node reaches a peer after reaching none. Default true. */
  resyncOnReconnect?: boolean;
  /** Extra connection filtering (allow lists; tests cut links with it to simulate a partition). */
  connectionGater?: ConnectionGater;
  /** Default {@link INVALIDATION_TOPIC}. */
  topic?: string;
}

type GossipNode = Libp2p<{ pubsub: GossipSub }>;

/** The libp2p gossip bus; see the file comment. Create with {@link Libp2pBus.start}. */
export class Libp2pBus implements InvalidationBus {
  /** This node's id: its peer id, stable across restarts when the identity is persisted. */
  readonly nodeId: string;
  readonly #node: GossipNode;
  readonly #topic: string;
  readonly #codec: InvalidationCodec;
  readonly #receiver: InvalidationReceiver;
  readonly #dialer: BootstrapDialer;
  readonly #metrics: GossipMetrics | undefined;
  readonly #logger: Logger;
  readonly #resyncOnReconnect: boolean;
  // Decoded once by the topic validator, picked up by the message listener.
  readonly #decoded = new WeakMap<Uint8Array, Invalidation>();
  #peerCount = 0;
  #hadPeer = false;
  #closed = false;

  private constructor(node: GossipNode, options: Libp2pBusOptions, peers: readonly HostPort[], clock: Clock) {
    this.#node = node;
    this.nodeId = node.peerId.toString();
    this.#topic = options.topic ?? INVALIDATION_TOPIC;
    this.#codec = new InvalidationCodec(options.limits);
    this.#logger = (options.logger ?? createLogger({ level: 'silent' })).child({ component: 'gossip', nodeId: this.nodeId });
    this.#metrics = options.metrics === undefined ? undefined : new GossipMetrics(options.metrics);
    this.#resyncOnReconnect = options.resyncOnReconnect ?? true;
    this.#receiver = new InvalidationReceiver({ ...options, nodeId: this.nodeId, clock, observer: this.#metrics });
    this.#dialer = new BootstrapDialer({
      libp2p: node,
      peers,
      dialTimeoutMs: options.dialTimeoutMs,
      redialMinDelayMs: options.redialMinDelayMs,
      redialMaxDelayMs: options.redialMaxDelayMs,
      onDialError: (target, error) => {
        this.#receiver.recordError(error);
        this.#logger.debug({ peer: target, err: error.message }, 'gossip peer not reachable; retrying');
      },
      onConnected: (target, peerId) => this.#logger.info({ peer: target, peerId: peerId.toString() }, 'gossip peer connected'),
    });
  }

  /**
   * Starts the libp2p host, listens, subscribes to the topic and starts dialing the peers.
   * Resolves once listening (peers connect in the background: see {@link status}). Throws
   * `Fault` `err:keygate:config:invalid` for a bad address and lets libp2p's listen errors
   * (port in use) through as `err:keygate:gossip:closed`.
   */
  static async start(options: Libp2pBusOptions): Promise<Libp2pBus> {
    const listen = parseHostPort(options.listen, 'gossip.listen', { allowPortZero: true });
    if (listen.multiaddr.getComponents()[0]?.name === 'dns') {
      throw new Fault('err:keygate:config:invalid', { internalMessage: `gossip.listen: "${options.listen}" must be an IP address (0.0.0.0 for every interface)` });
    }
    const peers = (options.peers ?? []).map((peer) => parseHostPort(peer, 'gossip.peers'));
    const identity = options.identity ?? (options.dataDir === undefined ? await PeerIdentity.ephemeral() : await PeerIdentity.loadOrCreate(options.dataDir));
    const codec = new InvalidationCodec(options.limits);
    const dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    let node: GossipNode;
    try {
      node = await createLibp2p({
        privateKey: identity.privateKey,
        addresses: { listen: [listen.multiaddr.toString()] },
        transports: [tcp()],
        // The pre-shared key wraps every connection before any handshake: without the cluster
        // key a peer cannot even complete Noise, let alone subscribe or publish.
        connectionProtector: preSharedKey({ psk: options.clusterKey.toPnetBytes(), timeout: dialTimeoutMs }),
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        connectionGater: options.connectionGater,
        connectionManager: { dialTimeout: dialTimeoutMs, inboundUpgradeTimeout: dialTimeoutMs },
        services: {
          identify: identify(),
          ping: ping(),
          pubsub: gossipsub({
            // Unsigned messages: membership is proven per connection by the cluster key and
            // Noise, every member may publish invalidations anyway, and signing plus verifying
            // each message cost about a third of the CPU of gossip. The message id is then the
            // sha256 of the bytes, which carry version and origin, so it stays unique.
            globalSignaturePolicy: 'StrictNoSign',
            emitSelf: false,
            allowPublishToZeroTopicPeers: true,
            fallbackToFloodsub: false,
            doPX: false,
            allowedTopics: [options.topic ?? INVALIDATION_TOPIC],
            maxInboundDataLength: codec.limits.maxMessageBytes,
          }),
        },
      });
    } catch (err) {
      throw new Fault('err:keygate:gossip:closed', { internalMessage: `gossip could not listen on ${options.listen}: ${(err as Error).message}`, cause: err });
    }
    const bus = new Libp2pBus(node, options, peers, options.clock ?? systemClock);
    bus.#begin();
    return bus;
  }

  /** The addresses this node listens on, as `host:port` (the real port when 0 was asked). */
  listenAddresses(): string[] {
    return this.#node.getMultiaddrs().map(formatHostPort);
  }

  /** See {@link InvalidationBus.publish}. */
  async publish(request: InvalidationRequest): Promise<Invalidation> {
    this.#assertOpen();
    this.#codec.validateRequest(request);
    const invalidation = this.#receiver.stamp(request);
    await this.#receiver.applyLocal(invalidation);
    await this.#send(invalidation);
    return invalidation;
  }

  /** See {@link InvalidationBus.relay}. */
  async relay(invalidation: Invalidation): Promise<void> {
    this.#assertOpen();
    this.#codec.validateStamped(invalidation);
    await this.#receiver.applyLocal(invalidation);
    await this.#send(invalidation);
  }

  /** See {@link InvalidationBus.subscribe}. */
  subscribe(handler: InvalidationHandler): () => void {
    return this.#receiver.subscribe(handler);
  }

  /** See {@link InvalidationBus.status}. */
  status(): InvalidationBusStatus {
    return {
      nodeId: this.nodeId,
      peerCount: this.#peerCount,
      fallbackToExpiry: this.#fallbackToExpiry(),
      ...this.#receiver.counts(),
    };
  }

  /**
   * Peers in this node's gossipsub mesh for the topic: the ones it forwards others'
   * invalidations to. It trails {@link status}'s `peerCount` by up to one heartbeat (1 s) after a
   * peer connects; a node's own publishes reach every subscribed peer without waiting for it.
   */
  meshPeerCount(): number {
    if (this.#closed) return 0;
    // getMeshPeers is on gossipsub's implementation but not on its published interface.
    const pubsub = this.#node.services.pubsub as unknown as { getMeshPeers(topic: string): string[] };
    return pubsub.getMeshPeers(this.#topic).length;
  }

  /** Per configured peer address: the peer id learnt, whether connected. */
  bootstrapStatus(): BootstrapTargetStatus[] {
    return this.#dialer.status();
  }

  /** Stops dialing, leaves the topic and stops libp2p (closing every connection). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#dialer.stop();
    this.#node.removeEventListener('peer:connect', this.#onPeerChange);
    this.#node.removeEventListener('peer:disconnect', this.#onPeerChange);
    const pubsub = this.#node.services.pubsub;
    pubsub.removeEventListener('message', this.#onMessage);
    pubsub.removeEventListener('subscription-change', this.#onPeerChange);
    pubsub.removeEventListener('gossipsub:heartbeat', this.#onPeerChange);
    pubsub.topicValidators.delete(this.#topic);
    await this.#node.stop();
    this.#peerCount = 0;
    this.#metrics?.setPeers(0, false);
  }

  #begin(): void {
    const pubsub = this.#node.services.pubsub;
    pubsub.topicValidators.set(this.#topic, this.#validate);
    pubsub.addEventListener('message', this.#onMessage);
    pubsub.addEventListener('subscription-change', this.#onPeerChange);
    // The heartbeat (every second) also refreshes the peer count, so a missed event heals.
    pubsub.addEventListener('gossipsub:heartbeat', this.#onPeerChange);
    this.#node.addEventListener('peer:connect', this.#onPeerChange);
    this.#node.addEventListener('peer:disconnect', this.#onPeerChange);
    pubsub.subscribe(this.#topic);
    const ownAddresses = this.#node.getMultiaddrs().map(formatHostPort);
    this.#dialer.markSelf((peer) => isOwnAddress(peer, ownAddresses));
    this.#dialer.start();
    this.#refreshPeers();
    this.#logger.info({ listen: ownAddresses, peers: this.#dialer.status().map((target) => target.address) }, 'gossip started');
  }

  // Runs for every message from a peer before gossipsub delivers or forwards it: bytes that are
  // not a valid invalidation are rejected here, so they go no further than the first hop.
  readonly #validate = (_peer: PeerId, message: { data: Uint8Array }): TopicValidatorResult => {
    this.#metrics?.received();
    try {
      this.#decoded.set(message.data, this.#codec.decode(message.data));
      return TopicValidatorResult.Accept;
    } catch (err) {
      this.#receiver.receiveMalformed(Fault.from(err));
      return TopicValidatorResult.Reject;
    }
  };

  readonly #onMessage = (event: CustomEvent<{ topic: string; data: Uint8Array }>): void => {
    if (event.detail.topic !== this.#topic || this.#closed) return;
    let invalidation = this.#decoded.get(event.detail.data);
    if (invalidation === undefined) {
      try {
        invalidation = this.#codec.decode(event.detail.data);
      } catch (err) {
        this.#receiver.receiveMalformed(Fault.from(err));
        return;
      }
    }
    // receive() never rejects: handler failures become the last error.
    void this.#receiver.receive(invalidation);
  };

  readonly #onPeerChange = (): void => {
    this.#refreshPeers();
  };

  #refreshPeers(): void {
    if (this.#closed) return;
    const subscribers = this.#node.services.pubsub.getSubscribers(this.#topic);
    const peerCount = subscribers.filter((peer) => this.#node.getConnections(peer).length > 0).length;
    const previous = this.#peerCount;
    const wasFallingBack = this.#fallbackToExpiry();
    this.#peerCount = peerCount;
    if (peerCount > 0 && previous === 0) this.#reconnected(wasFallingBack);
    if (peerCount > 0) this.#hadPeer = true;
    const fallingBack = this.#fallbackToExpiry();
    if (fallingBack && !wasFallingBack) {
      this.#logger.warn('gossip reaches no peer: cache entries converge by expiry only until a peer is back');
    }
    this.#metrics?.setPeers(peerCount, fallingBack);
  }

  #reconnected(wasFallingBack: boolean): void {
    if (wasFallingBack) this.#logger.info({ peers: this.#peerCount }, 'gossip reaches peers again');
    if (!this.#resyncOnReconnect) return;
    // Whatever was published while no peer was reachable is lost to this node: drop the cached
    // entries once so the next reads refetch. (At first contact the caches are nearly empty.)
    void this.#receiver.resync();
  }

  #fallbackToExpiry(): boolean {
    if (this.#closed) return false;
    return this.#peerCount === 0 && (this.#dialer.expectedPeerCount > 0 || this.#hadPeer);
  }

  async #send(invalidation: Invalidation): Promise<void> {
    const parts = this.#codec.split(invalidation);
    for (const part of parts) {
      try {
        await this.#node.services.pubsub.publish(this.#topic, this.#codec.encode(part));
      } catch (err) {
        // Best effort: a peer that misses this converges by expiry. Recorded, not thrown.
        this.#receiver.recordError(new Fault('err:keygate:gossip:peer_unreachable', {
          internalMessage: `publishing an invalidation failed: ${(err as Error).message}`,
          source: 'upstream',
          cause: err,
        }));
      }
    }
    this.#metrics?.published(parts.length);
  }

  #assertOpen(): void {
    if (this.#closed) throw Fault.expected('err:keygate:gossip:closed', { source: 'internal' });
  }
}

// A configured peer is this node when its port is ours and its host is our listen host, or
// we listen on every interface and the host is one of this machine's addresses.
function isOwnAddress(peer: HostPort, ownAddresses: readonly string[]): boolean {
  if (ownAddresses.includes(`${peer.host}:${peer.port}`) || ownAddresses.includes(`[${peer.host}]:${peer.port}`)) return true;
  const ownPorts = new Set(ownAddresses.map((address) => Number(address.slice(address.lastIndexOf(':') + 1))));
  if (!ownPorts.has(peer.port)) return false;
  const localHosts = new Set(['localhost']);
  for (const addresses of Object.values(networkInterfaces())) for (const address of addresses ?? []) localHosts.add(address.address);
  return localHosts.has(peer.host) && ownAddresses.some((address) => address.startsWith('0.0.0.0:') || address.startsWith('[::]:') || localHosts.has(address.slice(0, address.lastIndexOf(':'))));
}
