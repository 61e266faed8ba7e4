/** The `server` section: where a server command listens. */
import { field } from '../field.ts';

/** `server.host` and `server.port` (flags `--host` and `--port` as well). */
export const server = {
  host: field.string({
    description: 'Address to listen on; 127.0.0.1 keeps a fresh install off the network, 0.0.0.0 listens everywhere.',
    default: '127.0.0.1',
    flagAliases: ['host'],
  }),
  port: field.integer({
    description: 'TCP port to listen on (0 picks a free port). 7070 is the reference API port.',
    default: 7070,
    min: 0,
    max: 65535,
    flagAliases: ['port'],
  }),
} as const;
