/** `keygate help [command [subcommand]]`: the command list, or one command's help. */
import { EXIT_CODES } from '../command.ts';
import type { Command } from '../command.ts';
import { findCommand } from '../find-command.ts';
import { commandHelpText, helpText } from '../help-text.ts';

/** The `help` command; `keygate --help` and `-h` print the same list. */
export const helpCommand: Command = {
  name: 'help',
  summary: 'list the commands, or show the flags of one command',
  usage: 'keygate help [command [subcommand]]',
  options: {},
  positionals: [{ name: 'command', description: 'a command (and subcommand) to explain, e.g. "config validate"' }],
  async run(args, io) {
    // Loaded at run time: the registry lists this command, so a static import would be circular.
    const { commands } = await import('./registry.ts');
    if (args.positionals.length === 0) {
      io.stdout(helpText(commands));
      return EXIT_CODES.success;
    }
    let siblings: readonly Command[] = commands;
    let command: Command | undefined;
    let path = 'keygate';
    for (const name of args.positionals) {
      command = findCommand(siblings, name, path);
      path = `${path} ${name}`;
      siblings = command.subcommands ?? [];
    }
    io.stdout(commandHelpText(command!, path.slice('keygate '.length)));
    return EXIT_CODES.success;
  },
};
