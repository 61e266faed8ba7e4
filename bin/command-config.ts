/**
 * The flag contract every server command keeps, and the helper that turns a command's parsed
 * flags into a `KeygateConfig`: `--config FILE`, `--data-dir DIR` (default `./.keygate`),
 * `--db URL` (default `<dataDir>/keygate.db`), `--port N`, `--redis URL`, `--host ADDR`,
 * `--log-level LEVEL`; any config key `section.someKey` also as `--section-some-key` and
 * `KEYGATE_SECTION_SOME_KEY`.
 */
import { configKeys } from '../core/config/config-keys.ts';
import { loadConfig } from '../core/config/load-config.ts';
import type { KeygateConfig } from '../core/config/schema.ts';
import type { CliIo, CommandArgs, CommandOption } from './command.ts';

/** The shared flags of server commands, in the order `--help` lists them. */
export const CONTRACT_OPTIONS = {
  config: { type: 'string', valueName: 'FILE', description: 'JSON config file (also KEYGATE_CONFIG); env and flags override it' },
  'data-dir': { type: 'string', valueName: 'DIR', description: 'directory for local state (default ./.keygate)' },
  db: { type: 'string', valueName: 'URL', description: 'SQLite file path or mysql://user:pass@host:port/db (default <data-dir>/keygate.db)' },
  port: { type: 'string', valueName: 'N', description: 'TCP port to listen on (server.port)' },
  host: { type: 'string', valueName: 'ADDR', description: 'address to listen on (server.host, default 127.0.0.1)' },
  redis: { type: 'string', valueName: 'URL', description: 'redis://host:port/db for counters shared between nodes' },
  'log-level': { type: 'string', valueName: 'LEVEL', description: 'fatal, error, warn, info, debug, trace or silent' },
} as const satisfies Record<string, CommandOption>;

/** A subset of {@link CONTRACT_OPTIONS}, for commands that need only some (migrate: db and data dir). */
export function contractOptions<const Name extends keyof typeof CONTRACT_OPTIONS>(...names: Name[]): Pick<typeof CONTRACT_OPTIONS, Name> {
  const picked: Partial<Record<Name, CommandOption>> = {};
  for (const name of names) picked[name] = CONTRACT_OPTIONS[name];
  return picked as Pick<typeof CONTRACT_OPTIONS, Name>;
}

/**
 * The contract flags plus one flag per config key (`--server-port`, `--cache-fresh-ms`, …), for
 * commands that accept the whole configuration on the command line.
 */
export function allConfigOptions(): Record<string, CommandOption> {
  const options: Record<string, CommandOption> = { ...CONTRACT_OPTIONS };
  for (const entry of configKeys().keys) {
    const isBoolean = entry.field.kind === 'boolean';
    for (const name of entry.flagNames) {
      if (name in options) continue;
      const defaultText = entry.field.defaultValue === undefined || entry.field.secret ? '' : `, default ${JSON.stringify(entry.field.defaultValue)}`;
      options[name] = {
        type: isBoolean ? 'boolean' : 'string',
        ...(isBoolean ? {} : { valueName: 'VALUE' }),
        description: `${entry.key}: ${entry.field.description} [${entry.envName}${defaultText}]`,
      };
    }
  }
  return options;
}

/**
 * Loads the configuration a command runs with: the file from `--config` (or KEYGATE_CONFIG),
 * then `KEYGATE_*` variables, then the config flags the command was given. Throws the config
 * fault (exit 1) when anything is wrong.
 */
export function loadCommandConfig(args: CommandArgs, io: CliIo): KeygateConfig {
  const file = args.values['config'];
  return loadConfig({
    ...(typeof file === 'string' ? { file } : {}),
    env: io.env,
    argv: args.configArgv,
    cwd: io.cwd,
  });
}
