/**
 * `redactConfig`: the printable form of a loaded configuration. Secret keys become
 * `[redacted]` and passwords inside URLs become `***`, so the result can be printed by
 * `keygate config print` or logged at start-up.
 */
import { configKeys } from './config-keys.ts';
import type { ConfigTree } from './field.ts';
import { configSchema } from './schema.ts';

/**
 * A deep copy of `config` safe to print (plain, unfrozen objects). Keys of `tree` (default: the
 * keygate schema) go through their field's `redact`; unset keys become `null` (which a config
 * file accepts as "not set"); anything not in the schema is dropped, because a value we know
 * nothing about might be a secret.
 */
export function redactConfig(config: object, tree: ConfigTree = configSchema): Record<string, unknown> {
  const printable: Record<string, unknown> = {};
  for (const entry of configKeys(tree).keys) {
    let source: unknown = config;
    for (const segment of entry.path) source = (source as Record<string, unknown> | undefined)?.[segment];
    let target = printable;
    for (const segment of entry.path.slice(0, -1)) target = (target[segment] ??= {}) as Record<string, unknown>;
    // Unset keys print as null so that they show up at all (JSON drops undefined).
    const redacted = source === undefined ? null : entry.field.redact(source);
    target[entry.path.at(-1)!] = Array.isArray(redacted) ? [...redacted] : redacted;
  }
  return printable;
}
