/**
 * The dispatcher behind `keygate`: picks the command (and subcommand), parses its flags with
 * `node:util` parseArgs, answers `--help`, runs it, and maps failures to exit codes:
 * 0 success, 1 failure, 2 usage error. Errors print as `keygate: <message>`; a stack trace
 * only with `KEYGATE_DEBUG=1`.
 */
import { parseArgs } from 'node:util';
import { configKeys } from '../core/config/config-keys.ts';
import { redactUrlPassword } from '../core/config/field.ts';
import { suggestClosest } from '../core/config/suggest-closest.ts';
import { Fault } from '../core/fault.ts';
import { EXIT_CODES, usageError } from './command.ts';
import type { CliIo, Command, CommandArgs, CommandOption } from './command.ts';
import { commands } from './commands/registry.ts';
import { findCommand } from './find-command.ts';
import { commandHelpText, helpText } from './help-text.ts';

/**
 * Runs `keygate` with `argv` (the arguments after the program name) and resolves to the exit
 * code; never throws.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      io.stderr(helpText(commands));
      throw usageError('no command given; pick one of the commands above');
    }
    if (first === '--help' || first === '-h') {
      io.stdout(helpText(commands));
      return EXIT_CODES.success;
    }
    if (first === '--version' || first === '-v') return await runCli(['version', ...rest], io);
    if (first.startsWith('-')) throw usageError(`unknown flag ${first} before the command; run "keygate --help"`);
    return await runCommand(findCommand(commands, first, 'keygate'), rest, io, first);
  } catch (err) {
    return report(err, io);
  }
}

// ---------------------------------------------------------------------------------------------

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

/** What parseArgs returns with `tokens: true`, without its generic inference over our dynamic options. */
interface ParsedWithTokens {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  tokens: ({ kind: 'option'; name: string; rawName: string; value: string | undefined } | { kind: 'positional' | 'option-terminator' })[];
}

async function runCommand(command: Command, args: readonly string[], io: CliIo, path: string): Promise<number> {
  const subcommands = command.subcommands ?? [];
  const [first] = args;
  if (subcommands.length > 0 && first !== undefined && !first.startsWith('-')) {
    return runCommand(findCommand(subcommands, first, `keygate ${path}`), args.slice(1), io, `${path} ${first}`);
  }
  const parsed = parseCommandArgs(command, args, path);
  if (parsed.values['help'] === true) {
    io.stdout(commandHelpText(command, path));
    return EXIT_CODES.success;
  }
  return command.run(parsed, io);
}

function parseCommandArgs(command: Command, args: readonly string[], path: string): CommandArgs {
  const options: ParseArgsOptions = { ...toParseArgsOptions(command.options), ...HELP_OPTION };
  const allowPositionals = (command.positionals?.length ?? 0) > 0;
  const helpHint = ` Run "keygate ${path} --help" for its flags.`;
  // A lenient pass first, to name an unknown flag with a suggestion instead of parseArgs' text.
  const lenient = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true });
  for (const token of lenient.tokens) {
    if (token.kind === 'option' && !Object.hasOwn(options, token.name) && !isNegatedBoolean(token.name, command.options)) {
      const hint = suggestClosest(token.name, Object.keys(options));
      throw usageError(`unknown flag ${token.rawName} for "${path}"` + (hint === undefined ? '.' : `; did you mean --${hint}?`) + helpHint);
    }
  }
  let strict: ParsedWithTokens;
  try {
    strict = parseArgs({ args: [...args], options, strict: true, allowPositionals, allowNegative: true, tokens: true }) as ParsedWithTokens;
  } catch (err) {
    throw usageError(`${path}: ${(err as Error).message}.${helpHint}`);
  }
  const configFlags = configKeys().byFlagName;
  const configArgv: string[] = [];
  for (const token of strict.tokens) {
    if (token.kind !== 'option' || token.name === 'help') continue;
    if (!configFlags.has(token.name) && !configFlags.has(token.rawName.slice(2))) continue;
    configArgv.push(token.value === undefined ? token.rawName : `${token.rawName}=${token.value}`);
  }
  return { values: strict.values as CommandArgs['values'], positionals: strict.positionals, configArgv };
}

type ParseArgsOptions = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

function toParseArgsOptions(options: Readonly<Record<string, CommandOption>>): ParseArgsOptions {
  const converted: ParseArgsOptions = {};
  for (const [name, option] of Object.entries(options)) {
    converted[name] = {
      type: option.type,
      ...(option.short === undefined ? {} : { short: option.short }),
      ...(option.multiple === undefined ? {} : { multiple: option.multiple }),
    };
  }
  return converted;
}

function isNegatedBoolean(name: string, options: Readonly<Record<string, CommandOption>>): boolean {
  return name.startsWith('no-') && options[name.slice(3)]?.type === 'boolean';
}

function report(err: unknown, io: CliIo): number {
  const isFault = err instanceof Fault;
  const fault = Fault.from(err);
  const isUsage = fault.code === 'err:keygate:cli:usage';
  let message = isFault ? fault.publicMessage : 'unexpected error';
  // The CLI's reader is the operator, so the internal detail helps; a password inside a URL in
  // it (from a driver, say) still does not print. Public messages are written redacted already.
  if (fault.internalMessage !== fault.publicMessage) message += `: ${redactUrlPassword(fault.internalMessage)}`;
  io.stderr(`keygate: ${message}\n`);
  if (io.env['KEYGATE_DEBUG'] === '1') io.stderr(`${redactUrlPassword(debugTrace(err))}\n`);
  return isUsage ? EXIT_CODES.usage : EXIT_CODES.failure;
}

function debugTrace(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    parts.push(current instanceof Error ? String(current.stack) : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join('\ncaused by: ');
}
