/**
 * `openInvalidationBus`: picks and starts the invalidation bus of a server command from the
 * `gossip` config section. Without `gossip.listen` the node runs alone on the in-memory bus
 * (the default); with it, on the libp2p gossip bus of `gossip/`, which requires the cluster key
 * (`gossip.clusterKeyFile`: there is no open mode) and keeps the node's identity in
 * `<dataDir>/gossip/peer-key`.
 *
 * Two steps, so a misconfigured node fails before it touches the database:
 * {@link loadGossipSettings} (at boot, reads and checks the cluster key) and
 * {@link openInvalidationBus} (starts listening and dialing).
 *
 * A gossiping node that reaches none of its peers keeps serving: its caches converge by expiry.
 * The bus itself reports that (`keygate_gossip_fallback_to_expiry_info`, `keygate_gossip_peers_count`,
 * a warning when peers are lost); this file adds the warning for a node that reaches no peer at all
 * after its first dial window, which the bus does not log (it never had a peer to lose).
 */
import { resolve } from 'node:path';
import type { KeygateConfig } from '../core/config/schema.ts';
import { Fault } from '../core/fault.ts';
import type { InvalidationBus } from '../core/invalidation/interface.ts';
import type { Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import type { ClusterKey } from '../gossip/cluster-key.ts';

/** How long after start a gossiping node that reaches no peer warns that it runs on expiry alone (ms). */
export const DEFAULT_NO_PEER_WARNING_DELAY_MS = 10_000;

/** Gossip settings checked at boot; undefined from {@link loadGossipSettings} means "in-memory bus". */
export interface GossipSettings {
  /** `host:port` to listen on (`gossip.listen`). */
  readonly listen: string;
  /** `host:port` of the other nodes (`gossip.peers`). */
  readonly peers: readonly string[];
  /** Absolute path of the cluster key file, for messages. */
  readonly clusterKeyFile: string;
  /** The cluster key read from it (never logged: it prints as its fingerprint). */
  readonly clusterKey: ClusterKey;
}

/** A started bus and how to describe and stop it. */
export interface OpenedInvalidationBus {
  readonly bus: InvalidationBus;
  /** One line for the operator: how invalidations travel from this node (no secrets). */
  readonly summary: string;
  /** Stops the warning timer and the bus. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link openInvalidationBus}. */
export interface OpenInvalidationBusOptions {
  /** Absolute data directory; the gossip identity lives in `<dataDir>/gossip/peer-key`. */
  dataDir: string;
  logger: Logger;
  metrics: Metrics;
  /** Fresh window of the caches (ms), named in the "converging by expiry" warning. */
  cacheFreshMs: number;
  /** See {@link DEFAULT_NO_PEER_WARNING_DELAY_MS}. */
  noPeerWarningDelayMs?: number;
}

/**
 * Reads and checks the gossip section. At boot, before the database is opened. Resolves to
 * undefined when `gossip.listen` is not set (one node, in-memory bus). Throws `Fault`
 * `err:keygate:config:invalid` when `gossip.listen` is set without a cluster key file, or peers
 * are given without `gossip.listen`, and `err:keygate:gossip:cluster_key_invalid` when the key file
 * cannot be read or is not a cluster key (the CLI prints it and exits 1).
 */
export async function loadGossipSettings(gossip: KeygateConfig['gossip'], cwd: string): Promise<GossipSettings | undefined> {
  if (gossip.listen === undefined) {
    if (gossip.peers.length > 0) {
      throw new Fault('err:keygate:config:invalid', {
        publicMessage: 'gossip.peers (--gossip-peers) is set but gossip.listen (--gossip-listen) is not: a node joins the cluster only when it gossips itself',
      });
    }
    return undefined;
  }
  if (gossip.clusterKeyFile === undefined) {
    // There is no open mode: without the key any process that can reach the port could join
    // and drop every cache of the cluster (or keep revoked keys alive by flooding).
    throw new Fault('err:keygate:config:invalid', {
      publicMessage: 'gossip.listen (--gossip-listen) needs the cluster key: set gossip.clusterKeyFile (--cluster-key-file, KEYGATE_GOSSIP_CLUSTER_KEY_FILE); create one with "keygate gossip keygen FILE" and copy it to every node',
    });
  }
  const clusterKeyFile = resolve(cwd, gossip.clusterKeyFile);
  const { ClusterKey } = await import('../gossip/cluster-key.ts');
  let clusterKey: ClusterKey;
  try {
    clusterKey = await ClusterKey.readFile(clusterKeyFile);
  } catch (err) {
    const fault = Fault.from(err);
    throw new Fault('err:keygate:gossip:cluster_key_invalid', {
      publicMessage: `gossip cannot start without a readable cluster key (gossip.clusterKeyFile, --cluster-key-file)`,
      internalMessage: fault.internalMessage,
      cause: err,
    });
  }
  return { listen: gossip.listen, peers: gossip.peers, clusterKeyFile, clusterKey };
}

/**
 * Starts the bus: in-memory when `settings` is undefined, else the libp2p bus (listening when
 * this resolves; peers connect in the background). At boot. Throws what `Libp2pBus.start`
 * throws (a bad address, a port in use).
 */
export async function openInvalidationBus(settings: GossipSettings | undefined, options: OpenInvalidationBusOptions): Promise<OpenedInvalidationBus> {
  if (settings === undefined) {
    const { MemoryBus } = await import('../core/invalidation/memory-bus.ts');
    const bus = new MemoryBus();
    return { bus, summary: 'invalidation: in-memory (one node; set --gossip-listen to join a cluster)', close: () => bus.close() };
  }
  const { Libp2pBus } = await import('../gossip/libp2p-bus.ts');
  const bus = await Libp2pBus.start({
    listen: settings.listen,
    peers: settings.peers,
    clusterKey: settings.clusterKey,
    dataDir: options.dataDir,
    logger: options.logger,
    metrics: options.metrics,
  });
  const logger = options.logger.child({ component: 'gossip', nodeId: bus.nodeId });
  const peersText = settings.peers.length === 0 ? 'none configured, waiting to be dialed' : settings.peers.join(',');
  if (settings.peers.length === 0) {
    logger.info('gossip has no configured peers: until another node dials this one, its caches converge by expiry only');
  }
  const warning = setTimeout(() => {
    const status = bus.status();
    if (status.fallbackToExpiry) {
      logger.warn(
        { peers: settings.peers, cacheFreshMs: options.cacheFreshMs },
        'gossip reaches none of its peers: changes made on other nodes reach this one only when cache entries expire',
      );
    }
  }, options.noPeerWarningDelayMs ?? DEFAULT_NO_PEER_WARNING_DELAY_MS);
  warning.unref();
  const summary = `gossip listening on ${bus.listenAddresses().join(',')} (node ${bus.nodeId}, cluster key ${settings.clusterKey.fingerprint}, peers: ${peersText})`;
  return {
    bus,
    summary,
    async close() {
      clearTimeout(warning);
      await bus.close();
    },
  };
}
