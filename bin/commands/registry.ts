/**
 * Every `keygate` command, in the order `keygate --help` lists them. To add a command, write
 * `bin/commands/<name>.ts` exporting a `Command` and add it here (one import, one entry).
 */
import type { Command } from '../command.ts';
import { apiCommand } from './api.ts';
import { certificatesCommand } from './certificates.ts';
import { configCommand } from './config.ts';
import { devCommand } from './dev.ts';
import { frontlineCommand } from './frontline.ts';
import { gossipCommand } from './gossip.ts';
import { helpCommand } from './help.ts';
import { migrateCommand } from './migrate.ts';
import { vaultCommand } from './vault.ts';
import { versionCommand } from './version.ts';

/** The registered commands. */
export const commands: readonly Command[] = [
  helpCommand,
  versionCommand,
  configCommand,
  migrateCommand,
  apiCommand,
  devCommand,
  vaultCommand,
  gossipCommand,
  frontlineCommand,
  certificatesCommand,
];
