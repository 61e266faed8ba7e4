/**
 * `keygate config validate --config FILE` and `keygate config print`: check a config file, or
 * show the configuration a server command would run with. Both print JSON with secrets redacted.
 */
import { resolve } from 'node:path';
import { loadConfig } from '../../core/config/load-config.ts';
import { redactConfig } from '../../core/config/redact-config.ts';
import { EXIT_CODES, usageError } from '../command.ts';
import type { CliIo, Command } from '../command.ts';
import { allConfigOptions, contractOptions, loadCommandConfig } from '../command-config.ts';

const validateCommand: Command = {
  name: 'validate',
  summary: 'check a JSON config file; print it with defaults applied and secrets redacted',
  usage: 'keygate config validate --config FILE',
  details: 'Checks the file alone: KEYGATE_* variables and flags are not applied (see "config print").\n'
    + 'Exit 0 when the file is valid, 1 when it is missing or wrong (every problem is listed).',
  options: contractOptions('config'),
  async run(args, io) {
    const file = args.values['config'];
    if (typeof file !== 'string') throw usageError('config validate needs --config FILE');
    const config = loadConfig({ file, env: {}, argv: [], cwd: io.cwd });
    printConfig(config, io);
    io.stderr(`keygate: ${resolve(io.cwd, file)} is valid\n`);
    return EXIT_CODES.success;
  },
};

const printCommand: Command = {
  name: 'print',
  summary: 'print the effective configuration from file, environment and flags (secrets redacted)',
  usage: 'keygate config print [--config FILE] [--<section>-<key> VALUE]…',
  details: 'Sources in increasing precedence: the file (--config or KEYGATE_CONFIG), KEYGATE_* variables,\n'
    + 'then flags. The flags below are every configuration key; each is also an environment variable.',
  options: allConfigOptions(),
  async run(args, io) {
    printConfig(loadCommandConfig(args, io), io);
    return EXIT_CODES.success;
  },
};

/** The `config` command group: `config validate` and `config print`. */
export const configCommand: Command = {
  name: 'config',
  summary: 'validate or print the configuration',
  usage: 'keygate config <validate|print> [flags]',
  options: {},
  subcommands: [validateCommand, printCommand],
  async run() {
    throw usageError('config needs a subcommand: validate or print. Run "keygate config --help".');
  },
};

function printConfig(config: object, io: CliIo): void {
  io.stdout(JSON.stringify(redactConfig(config), null, 2) + '\n');
}
