/** `keygate version`: the package version and the Node.js running it. */
import { readFileSync } from 'node:fs';
import { EXIT_CODES } from '../command.ts';
import type { Command } from '../command.ts';

/** The `version` command (also `keygate --version`): prints `keygate <version> (node <version>)`. */
export const versionCommand: Command = {
  name: 'version',
  summary: 'print the keygate version and the Node.js version',
  usage: 'keygate version',
  options: {},
  async run(_args, io) {
    io.stdout(`keygate ${packageVersion()} (node ${process.version})\n`);
    return EXIT_CODES.success;
  },
};

/** The `version` field of the package.json this CLI ships in. */
export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof manifest.version === 'string' ? manifest.version : 'unknown';
}
