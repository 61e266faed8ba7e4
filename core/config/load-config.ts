/**
 * `loadConfig`: reads keygate's configuration from its three sources, in increasing precedence:
 * a JSON file, `KEYGATE_*` environment variables, then command-line flags. Every problem in
 * every source is collected and reported at once, each naming the key, the expected form,
 * the bad value (never for a secret) and where it came from. Runs once at process start.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Fault } from '../fault.ts';
import type { FaultDetail } from '../fault.ts';
import { configKeys, ENV_PREFIX } from './config-keys.ts';
import type { ConfigKey, ConfigKeyIndex } from './config-keys.ts';
import { isField, redactUrlPassword } from './field.ts';
import type { ConfigOf, ConfigTree, Field } from './field.ts';
import { configSchema } from './schema.ts';
import type { KeygateConfig } from './schema.ts';
import { suggestClosest } from './suggest-closest.ts';

/** Where configuration comes from. Every source is optional. */
export interface LoadConfigOptions {
  /** Path of a JSON config file, relative to `cwd`. Default: `env.KEYGATE_CONFIG`, else none. */
  file?: string;
  /** Environment; only `KEYGATE_*` variables are read. Default: `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Config flags only (`--server-port 8080`, `--port=8080`, `--no-flag`). Default: none. */
  argv?: readonly string[];
  /** Directory that a relative `file` is resolved against. Default: `process.cwd()`. */
  cwd?: string;
}

/**
 * `KEYGATE_*` variables that are not configuration keys and so are not "unknown":
 * the config file path, the CLI's debug switch. Variables starting with `KEYGATE_TEST_`
 * belong to the test suite and are ignored too.
 */
export const NON_CONFIG_ENV_VARS: ReadonlySet<string> = new Set(['KEYGATE_CONFIG', 'KEYGATE_DEBUG']);

/** Prefix of environment variables reserved for tests; never treated as config. */
export const TEST_ENV_PREFIX = 'KEYGATE_TEST_';

/** Longest excerpt of a bad value quoted in an error message, in characters. */
export const MAX_QUOTED_VALUE_CHARS = 80;

/**
 * Loads the keygate configuration. Returns a deeply frozen, typed object with every default
 * applied. Throws a `Fault`: `err:keygate:config:file_not_found` when the file is missing,
 * `err:keygate:config:invalid` for anything else (its `errors` list each problem).
 */
export function loadConfig(options: LoadConfigOptions = {}): KeygateConfig {
  return loadConfigTree(configSchema, options);
}

/** {@link loadConfig} for any schema tree (used by tests and embedders with their own keys). */
export function loadConfigTree<Tree extends ConfigTree>(tree: Tree, options: LoadConfigOptions = {}): ConfigOf<Tree> {
  const index = configKeys(tree);
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit = new Map<string, unknown>();
  const problems: FaultDetail[] = [];

  const file = options.file ?? nonEmpty(env['KEYGATE_CONFIG']);
  if (file !== undefined) readFileSource(tree, index, resolve(cwd, file), explicit, problems);
  readEnvSource(index, env, explicit, problems);
  readFlagSource(index, options.argv ?? [], explicit, problems);

  if (problems.length > 0) throw invalid(problems);
  return assemble(index, explicit) as ConfigOf<Tree>;
}

// ---------------------------------------------------------------------------------------------

type Problems = FaultDetail[];

function readFileSource(tree: ConfigTree, index: ConfigKeyIndex, path: string, explicit: Map<string, unknown>, problems: Problems): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new Fault('err:keygate:config:file_not_found', {
        publicMessage: `config file not found: ${path}`,
        errors: [{ location: path, message: 'config file not found', fix: 'check the path given to --config (or KEYGATE_CONFIG)' }],
      });
    }
    const reason = code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw invalid([{ location: path, message: `cannot read config file ${path}: ${reason}` }]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid([{ location: path, message: `config file ${path} is not valid JSON: ${(err as Error).message}` }]);
  }
  if (!isPlainObject(parsed)) {
    throw invalid([{ location: path, message: `config file ${path} must hold a JSON object, like {"server": {"port": 7070}}` }]);
  }
  const where = `in ${path}`;
  const baseDir = dirname(path);
  const visit = (node: ConfigTree, value: Record<string, unknown>, prefix: readonly string[]): void => {
    for (const [name, raw] of Object.entries(value)) {
      // "$schema" lets editors validate the file; it is not a setting.
      if (prefix.length === 0 && name === '$schema') continue;
      const key = [...prefix, name].join('.');
      const child = Object.hasOwn(node, name) ? node[name] : undefined;
      if (child === undefined) {
        problems.push(unknownName(`unknown key "${key}" ${where}`, key, knownFileKeys(index), (hint) => `"${hint}"`));
      } else if (isField(child)) {
        // null means "not set here", so printed configs (unset keys print as null) load back.
        if (raw === null) continue;
        const outcome = child.fromJson(raw);
        if (outcome.ok) explicit.set(key, child.relativeToConfigFile ? child.resolveRelative(outcome.value, baseDir) : outcome.value);
        else problems.push(badValue(key, child, raw, where));
      } else if (isPlainObject(raw)) {
        visit(child, raw, [...prefix, name]);
      } else {
        problems.push({ location: key, message: `${key}: expected an object with the keys ${Object.keys(child).join(', ')}, got ${quote(raw)} ${where}` });
      }
    }
  };
  visit(tree, parsed, []);
}

function readEnvSource(index: ConfigKeyIndex, env: Readonly<Record<string, string | undefined>>, explicit: Map<string, unknown>, problems: Problems): void {
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || text === undefined) continue;
    if (NON_CONFIG_ENV_VARS.has(name) || name.startsWith(TEST_ENV_PREFIX)) continue;
    const entry = index.byEnvName.get(name);
    if (entry === undefined) {
      problems.push(unknownName(`unknown environment variable ${name}`, name, index.byEnvName.keys(), (hint) => hint));
      continue;
    }
    parseText(entry, text, `from environment variable ${name}`, explicit, problems);
  }
}

function readFlagSource(index: ConfigKeyIndex, argv: readonly string[], explicit: Map<string, unknown>, problems: Problems): void {
  for (let position = 0; position < argv.length; position++) {
    const arg = argv[position]!;
    if (!arg.startsWith('--') || arg === '--') {
      problems.push({ location: arg, message: `unexpected argument "${arg}"; config flags look like --server-port 8080` });
      continue;
    }
    const equals = arg.indexOf('=');
    const name = arg.slice(2, equals === -1 ? undefined : equals);
    const inline = equals === -1 ? undefined : arg.slice(equals + 1);
    let entry = index.byFlagName.get(name);
    let negated = false;
    if (entry === undefined && name.startsWith('no-')) {
      const positive = index.byFlagName.get(name.slice(3));
      if (positive?.field.kind === 'boolean') [entry, negated] = [positive, true];
    }
    const isBoolean = entry?.field.kind === 'boolean';
    // A flag's value is the next argument unless given inline or the flag is a boolean switch.
    const takesNext = inline === undefined && !isBoolean;
    const next = takesNext ? argv[position + 1] : undefined;
    if (entry === undefined) {
      problems.push(unknownName(`unknown flag --${name}`, name, index.byFlagName.keys(), (hint) => `--${hint}`));
      if (next !== undefined && !next.startsWith('--')) position++;
      continue;
    }
    if (negated && inline !== undefined) {
      problems.push({ location: `--${name}`, message: `flag --${name} takes no value; use --${entry.flagName}=${inline} instead` });
      continue;
    }
    let text = inline;
    if (isBoolean && text === undefined) text = negated ? 'false' : 'true';
    if (takesNext) {
      if (next === undefined) {
        problems.push({ location: `--${name}`, message: `flag --${name} needs a value: ${entry.field.expected}` });
        continue;
      }
      text = next;
      position++;
    }
    parseText(entry, text!, `from flag --${name}`, explicit, problems);
  }
}

function parseText(entry: ConfigKey, text: string, where: string, explicit: Map<string, unknown>, problems: Problems): void {
  const outcome = entry.field.fromText(text);
  if (outcome.ok) explicit.set(entry.key, outcome.value);
  else problems.push(badValue(entry.key, entry.field, text, where));
}

function assemble(index: ConfigKeyIndex, explicit: ReadonlyMap<string, unknown>): Record<string, unknown> {
  const resolved = new Map<string, unknown>();
  for (const entry of index.keys) {
    resolved.set(entry.key, explicit.has(entry.key) ? explicit.get(entry.key) : entry.field.defaultValue);
  }
  // Derived defaults run last so they see the final values of the keys they depend on.
  const read = (key: string): unknown => resolved.get(key);
  for (const entry of index.keys) {
    if (resolved.get(entry.key) === undefined && entry.field.derivedDefault !== undefined) {
      resolved.set(entry.key, entry.field.derivedDefault(read));
    }
  }
  const config: Record<string, unknown> = {};
  for (const entry of index.keys) {
    let section = config;
    for (const segment of entry.path.slice(0, -1)) section = (section[segment] ??= {}) as Record<string, unknown>;
    section[entry.path.at(-1)!] = resolved.get(entry.key);
  }
  return deepFreeze(config);
}

function badValue(key: string, field: Field<unknown>, raw: unknown, where: string): FaultDetail {
  // A secret's value must not appear anywhere, including in the message that rejects it.
  const got = field.secret ? 'a value that is not shown because the key is secret' : quote(raw);
  return { location: key, message: `${key}: expected ${field.expected}, got ${got} (${where})` };
}

function unknownName(message: string, name: string, candidates: Iterable<string>, format: (hint: string) => string): FaultDetail {
  const hint = suggestClosest(name, candidates);
  return hint === undefined
    ? { location: name, message }
    : { location: name, message: `${message}; did you mean ${format(hint)}?`, fix: format(hint) };
}

function knownFileKeys(index: ConfigKeyIndex): string[] {
  const names = new Set<string>();
  for (const entry of index.keys) {
    for (let depth = 1; depth <= entry.path.length; depth++) names.add(entry.path.slice(0, depth).join('.'));
  }
  return [...names];
}

function invalid(problems: readonly FaultDetail[]): Fault {
  const message = problems.length === 1
    ? problems[0]!.message
    : `invalid configuration (${problems.length} problems):\n` + problems.map((problem) => '  - ' + problem.message).join('\n');
  return new Fault('err:keygate:config:invalid', { publicMessage: message, errors: problems });
}

function quote(raw: unknown): string {
  let shown = raw === undefined ? 'undefined' : JSON.stringify(raw);
  if (shown.length > MAX_QUOTED_VALUE_CHARS) shown = shown.slice(0, MAX_QUOTED_VALUE_CHARS) + '…';
  return redactUrlPassword(shown);
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
