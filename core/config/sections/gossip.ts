/** The `gossip` section: the libp2p cluster that carries cache invalidations between nodes. */
import { field } from '../field.ts';

/**
 * `gossip.listen`, `gossip.peers`, `gossip.clusterKeyFile` (flags `--gossip-listen`,
 * `--gossip-peers`, `--cluster-key-file`). Without `listen` the node runs alone with the
 * in-memory bus; with it, the cluster key file is required (there is no open mode).
 */
export const gossip = {
  listen: field.string({
    description: 'host:port this node gossips on, e.g. 127.0.0.1:7001 (port 0 picks one). Unset: one node, in-memory invalidation.',
  }),
  peers: field.stringList({
    description: 'host:port of the other nodes (peer ids are learnt on connect; the node\'s own address may be listed).',
    default: [],
  }),
  clusterKeyFile: field.path({
    description: 'The cluster\'s pre-shared key file, made by "keygate gossip keygen"; only nodes holding it can join.',
    flagAliases: ['cluster-key-file'],
  }),
} as const;
