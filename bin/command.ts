/**
 * The contract of one `keygate` command. A command is a plain object in its own file under
 * `bin/commands/`, listed once in `bin/commands/registry.ts`; the dispatcher (`bin/cli.ts`)
 * parses its flags, answers `--help`, and turns thrown faults into exit codes.
 */
import { Fault } from '../core/fault.ts';

/** Exit codes of every command: 0 success, 1 failure, 2 usage error. */
export const EXIT_CODES = { success: 0, failure: 1, usage: 2 } as const;

/** One flag a command accepts, in `node:util` parseArgs terms plus what `--help` shows. */
export interface CommandOption {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  /** Shown after the flag in help: `--db URL`. Strings only. */
  readonly valueName?: string;
  /** One line for `--help`. */
  readonly description: string;
}

/** A command's parsed arguments, as the dispatcher hands them to `run`. */
export interface CommandArgs {
  /** Flag values by long name (`values['data-dir']`); absent flags are undefined. */
  readonly values: Readonly<Record<string, string | boolean | readonly (string | boolean)[] | undefined>>;
  readonly positionals: readonly string[];
  /**
   * The flags that name configuration keys (`--db`, `--port`, `--server-host`, …), in the
   * order given, ready for `loadConfig({ argv })`.
   */
  readonly configArgv: readonly string[];
}

/** What a command may touch of its process: output streams, environment, working directory. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

/** One `keygate` command (or a group of subcommands, like `config`). */
export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The synopsis: `keygate migrate [--db URL] [--config FILE] [--data-dir DIR]`. */
  readonly usage: string;
  /** Paragraphs shown by `--help` after the synopsis. */
  readonly details?: string;
  /** Flags by long name; `--help`/`-h` is added by the dispatcher. */
  readonly options: Readonly<Record<string, CommandOption>>;
  /** Positional arguments, for help; absent means the command takes none. */
  readonly positionals?: readonly { readonly name: string; readonly description: string }[];
  /** Subcommands (`config validate`); the first argument picks one. */
  readonly subcommands?: readonly Command[];
  /**
   * Runs the command and resolves to its exit code. May throw: a `Fault` with code
   * `err:keygate:cli:usage` exits 2, any other error exits 1 with `keygate: <message>`.
   */
  run(args: CommandArgs, io: CliIo): Promise<number>;
}

/** A usage error (exit code 2): an unknown command or flag, a missing argument. */
export function usageError(message: string): Fault {
  return Fault.expected('err:keygate:cli:usage', { publicMessage: message });
}
