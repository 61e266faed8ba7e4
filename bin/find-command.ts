/** Looks a command up by name among its siblings, with a "did you mean" on a typo. */
import { suggestClosest } from '../core/config/suggest-closest.ts';
import { usageError } from './command.ts';
import type { Command } from './command.ts';

/**
 * The command called `name` among `commands`; `parentPath` is what precedes it on the command
 * line (`keygate`, `keygate config`). Throws a usage fault (exit 2) naming the closest command.
 */
export function findCommand(commands: readonly Command[], name: string, parentPath: string): Command {
  const command = commands.find((candidate) => candidate.name === name);
  if (command !== undefined) return command;
  const fullName = parentPath === 'keygate' ? name : `${parentPath.slice('keygate '.length)} ${name}`;
  const hint = suggestClosest(name, commands.map((candidate) => candidate.name));
  throw usageError(`unknown command "${fullName}"` + (hint === undefined ? '.' : `; did you mean "${hint}"?`) + ` Run "${parentPath} --help" for the list.`);
}
