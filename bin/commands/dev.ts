/**
 * `keygate dev`: the API on embedded defaults (SQLite in ./.keygate, in-process counters, no
 * Redis), for trying keygate on a laptop. Prints the root key on the first start and how to
 * create and verify a key with curl.
 */
import type { Command } from '../command.ts';
import { contractOptions } from '../command-config.ts';
import { devGateway } from '../gateway.ts';
import { runApiService } from './api.ts';

/** The `dev` command. */
export const devCommand: Command = {
  name: 'dev',
  summary: 'run the API locally on embedded defaults and show how to use it',
  usage: 'keygate dev [--config ingress.json] [--port N] [--data-dir DIR]',
  details: 'Same service as "keygate api" with SQLite in <data-dir> (default ./.keygate) and in-process\n'
    + 'counters. On the first start it prints a root key; it then prints curl commands that create an\n'
    + 'API and a key and verify it. One node: cache invalidations stay in process (for a cluster use\n'
    + '"keygate api --gossip-listen"). With --config ingress.json it also runs the gateway (Frontline + Sentinel,\n'
    + 'sentinel.mode one-hop or two-hop) on the same verifier: routes[].policies put key auth in front of a service.\n'
    + 'Stops on SIGINT or SIGTERM.',
  options: contractOptions('config', 'port', 'host', 'data-dir', 'log-level'),
  async run(args, io) {
    return runApiService(args, io, { dev: true, alongside: devGateway(args, io) });
  },
};
