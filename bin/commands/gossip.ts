/**
 * `keygate gossip`: tools for the gossip cluster that carries cache invalidations between nodes.
 * `gossip keygen [FILE]` writes a new cluster key (the pre-shared key only members hold).
 */
import { join, resolve } from 'node:path';
import { EXIT_CODES, usageError } from '../command.ts';
import type { Command } from '../command.ts';
import { contractOptions, loadCommandConfig } from '../command-config.ts';

const keygenCommand: Command = {
  name: 'keygen',
  summary: 'write a new cluster key file (mode 0600) for gossip.clusterKeyFile',
  usage: 'keygate gossip keygen [FILE] [--force] [--config FILE] [--data-dir DIR]',
  details: 'Writes a libp2p swarm key (v1, base16) to FILE; without FILE to gossip.clusterKeyFile, else\n'
    + '<data-dir>/gossip/cluster.key. Copy the same file to every node of the cluster: a node without\n'
    + 'it cannot connect. An existing file is never replaced without --force (every node then needs\n'
    + 'the new key). Prints the key\'s fingerprint, which is safe to compare between nodes.',
  options: {
    ...contractOptions('config', 'data-dir'),
    force: { type: 'boolean', description: 'replace an existing key file' },
  },
  positionals: [{ name: 'FILE', description: 'where to write the key (default: gossip.clusterKeyFile or <data-dir>/gossip/cluster.key)' }],
  async run(args, io) {
    if (args.positionals.length > 1) throw usageError('gossip keygen takes at most one FILE');
    const config = loadCommandConfig(args, io);
    const given = args.positionals[0];
    const path = given !== undefined ? resolve(io.cwd, given) : config.gossip.clusterKeyFile ?? resolve(io.cwd, join(config.dataDir, 'gossip', 'cluster.key'));
    const { ClusterKey } = await import('../../gossip/cluster-key.ts');
    const key = ClusterKey.generate();
    await key.writeFile(path, { overwrite: args.values['force'] === true });
    io.stdout(`wrote cluster key ${key.fingerprint} to ${path}\ncopy it to every node and set gossip.clusterKeyFile (--cluster-key-file) there\n`);
    return EXIT_CODES.success;
  },
};

/** The `gossip` command group; `gossip keygen` is its tool. */
export const gossipCommand: Command = {
  name: 'gossip',
  summary: 'tools for the gossip cluster (cache invalidation between nodes)',
  usage: 'keygate gossip keygen [FILE]',
  details: 'Nodes join a cluster with --gossip-listen HOST:PORT, --gossip-peers HOST:PORT,... and\n'
    + '--cluster-key-file FILE (config keys gossip.listen, gossip.peers, gossip.clusterKeyFile).',
  options: {},
  subcommands: [keygenCommand],
  async run() {
    throw usageError('gossip needs a subcommand: keygen. Run "keygate gossip --help".');
  },
};
