/**
 * The text of `keygate --help` and `keygate <command> --help`: built from the command objects,
 * so help can never disagree with what a command accepts.
 */
import type { Command, CommandOption } from './command.ts';

/** Width of the name column in command and option lists, in characters. */
export const HELP_NAME_COLUMN_CHARS = 26;

/** The top-level help: synopsis, every command (and subcommand) with its summary, the contract. */
export function helpText(commands: readonly Command[]): string {
  const rows: [string, string][] = [];
  for (const command of commands) {
    rows.push([command.name, command.summary]);
    for (const sub of command.subcommands ?? []) rows.push([`${command.name} ${sub.name}`, sub.summary]);
  }
  return [
    'keygate: API keys with permissions, credits and rate limits, a TLS ingress and a gateway.',
    '',
    'Usage: keygate <command> [flags]',
    '',
    'Commands:',
    ...table(rows),
    '',
    'Run "keygate <command> --help" for the flags of a command.',
    '',
    'Server commands share: --config FILE, --data-dir DIR (default ./.keygate),',
    '--db URL (SQLite path or mysql://user:pass@host:port/db; default <data-dir>/keygate.db),',
    '--port N, --host ADDR, --redis URL, --log-level LEVEL. Every config key section.someKey',
    'is also read from KEYGATE_SECTION_SOME_KEY and --section-some-key (flags win over env,',
    'env over the file). Exit codes: 0 success, 1 failure, 2 usage error.',
    '',
  ].join('\n');
}

/** The help of one command: synopsis, details, subcommands, flags. `path` is e.g. `config validate`. */
export function commandHelpText(command: Command, path: string): string {
  const lines = [`Usage: ${command.usage}`, '', command.summary];
  if (command.details !== undefined) lines.push('', command.details);
  if (command.subcommands !== undefined && command.subcommands.length > 0) {
    lines.push('', 'Commands:', ...table(command.subcommands.map((sub) => [`${path} ${sub.name}`, sub.summary])));
  }
  if (command.positionals !== undefined && command.positionals.length > 0) {
    lines.push('', 'Arguments:', ...table(command.positionals.map((positional) => [positional.name, positional.description])));
  }
  const optionRows = Object.entries(command.options).map(([name, option]) => [flagLabel(name, option), option.description] as [string, string]);
  optionRows.push(['-h, --help', 'show this help']);
  lines.push('', 'Flags:', ...table(optionRows), '');
  return lines.join('\n');
}

function flagLabel(name: string, option: CommandOption): string {
  const short = option.short === undefined ? '' : `-${option.short}, `;
  const value = option.type === 'string' ? ` ${option.valueName ?? 'VALUE'}` : '';
  return `${short}--${name}${value}`;
}

function table(rows: readonly (readonly [string, string])[]): string[] {
  return rows.map(([name, text]) =>
    name.length + 2 < HELP_NAME_COLUMN_CHARS
      ? `  ${name.padEnd(HELP_NAME_COLUMN_CHARS - 2)}${text}`
      : `  ${name}\n${' '.repeat(HELP_NAME_COLUMN_CHARS)}${text}`,
  );
}
