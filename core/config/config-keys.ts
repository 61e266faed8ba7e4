/**
 * The flat view of a schema tree: one entry per key with its dotted name, environment variable
 * and flag names. Computed once per tree (at boot), checked for name collisions, then only read.
 */
import { Fault } from '../fault.ts';
import { isField } from './field.ts';
import type { ConfigTree, Field } from './field.ts';
import { configSchema } from './schema.ts';

/** Prefix of every configuration environment variable. */
export const ENV_PREFIX = 'KEYGATE_';

/** One configuration key and the names it is known by in each source. */
export interface ConfigKey {
  /** Dotted key as in the file: `server.port`, `dataDir`. */
  readonly key: string;
  readonly path: readonly string[];
  /** `KEYGATE_SERVER_PORT`. */
  readonly envName: string;
  /** Canonical flag without dashes: `server-port`. */
  readonly flagName: string;
  /** Canonical flag name first, then its aliases (`server-port`, `port`). */
  readonly flagNames: readonly string[];
  readonly field: Field<unknown>;
}

/** Lookups over the keys of one schema tree. */
export interface ConfigKeyIndex {
  readonly keys: readonly ConfigKey[];
  readonly byKey: ReadonlyMap<string, ConfigKey>;
  readonly byEnvName: ReadonlyMap<string, ConfigKey>;
  /** Every flag name (canonical and alias, without dashes). */
  readonly byFlagName: ReadonlyMap<string, ConfigKey>;
}

/**
 * The key index of `tree` (default: the keygate schema), memoised per tree. Throws a
 * `config:invalid` fault when two keys map to the same variable or flag, a programming error
 * caught by the schema test.
 */
export function configKeys(tree: ConfigTree = configSchema): ConfigKeyIndex {
  let index = indexCache.get(tree);
  if (index === undefined) {
    index = buildIndex(tree);
    indexCache.set(tree, index);
  }
  return index;
}

/** `someKey` → `SOME_KEY`; digits stay attached (`http2Port` → `HTTP2_PORT`). */
export function toEnvSegment(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** `someKey` → `some-key`. */
export function toFlagSegment(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

// ---------------------------------------------------------------------------------------------

const indexCache = new WeakMap<ConfigTree, ConfigKeyIndex>();

function buildIndex(tree: ConfigTree): ConfigKeyIndex {
  const keys: ConfigKey[] = [];
  collect(tree, [], keys);
  const byKey = new Map<string, ConfigKey>();
  const byEnvName = new Map<string, ConfigKey>();
  const byFlagName = new Map<string, ConfigKey>();
  for (const entry of keys) {
    byKey.set(entry.key, entry);
    claim(byEnvName, entry.envName, entry, 'environment variable ');
    for (const flag of entry.flagNames) claim(byFlagName, flag, entry, 'flag --');
  }
  return Object.freeze({ keys: Object.freeze(keys), byKey, byEnvName, byFlagName });
}

function collect(tree: ConfigTree, path: readonly string[], out: ConfigKey[]): void {
  for (const [name, node] of Object.entries(tree)) {
    const nodePath = [...path, name];
    if (!isField(node)) {
      collect(node, nodePath, out);
      continue;
    }
    const flagName = nodePath.map(toFlagSegment).join('-');
    out.push(Object.freeze({
      key: nodePath.join('.'),
      path: Object.freeze(nodePath),
      envName: ENV_PREFIX + nodePath.map(toEnvSegment).join('_'),
      flagName,
      flagNames: Object.freeze([flagName, ...node.flagAliases.filter((alias) => alias !== flagName)]),
      field: node,
    }));
  }
}

function claim(map: Map<string, ConfigKey>, name: string, entry: ConfigKey, what: string): void {
  const owner = map.get(name);
  if (owner !== undefined) {
    throw new Fault('err:keygate:config:invalid', {
      internalMessage: `config schema: ${what}${name} is claimed by both ${owner.key} and ${entry.key}`,
    });
  }
  map.set(name, entry);
}
