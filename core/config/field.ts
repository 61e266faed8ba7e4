/**
 * The declarative building blocks of keygate's configuration schema: one `Field` per key,
 * made by the `field` builders below. A field knows its type, default, description, how to
 * parse itself from JSON (config file) and from text (environment variables, flags), how to
 * describe a valid value in an error, and how to hide itself when printed.
 *
 * No library: the schema is small, and owning it keeps error messages exactly as we want them.
 */
import { isAbsolute, resolve } from 'node:path';

/** The kinds of value a field can hold. */
export type FieldKind =
  | 'string'
  | 'secret'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'oneOf'
  | 'stringList'
  | 'durationMs'
  | 'url'
  | 'path'
  | 'databaseUrl';

/** Result of parsing one raw value; a failure carries no message (the field's `expected` says it). */
export type ParseOutcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false };

/** Reads an already-resolved value by dotted key; given to derived defaults. */
export type ConfigReader = (key: string) => unknown;

/**
 * One configuration key. `T` includes `undefined` when the field has no default (optional).
 * Parsers are pure; the loader decides where a value came from and reports errors.
 */
export interface Field<T> {
  readonly isConfigField: true;
  readonly kind: FieldKind;
  /** One sentence for `--help` and the README. */
  readonly description: string;
  /** A valid value in words, used in errors: "an integer from 0 to 65535". */
  readonly expected: string;
  /** Static default, or undefined when the default is derived or absent. */
  readonly defaultValue: T | undefined;
  /** Default computed from other keys once every explicit value is known (e.g. db.url from dataDir). */
  readonly derivedDefault: ((read: ConfigReader) => T) | undefined;
  /** Secret values are never printed: not by `redactConfig`, not in error messages. */
  readonly secret: boolean;
  /** Relative paths given in a config file resolve against that file's directory. */
  readonly relativeToConfigFile: boolean;
  /** Extra flag names (without `--`), for the short CLI contract: `db` for `--db`. */
  readonly flagAliases: readonly string[];
  /** Allowed literals of a `oneOf` field, for help and suggestions; empty otherwise. */
  readonly choices: readonly string[];
  /** Parses a value from an environment variable or a flag. */
  fromText(text: string): ParseOutcome<T>;
  /** Parses a value from the JSON config file. */
  fromJson(value: unknown): ParseOutcome<T>;
  /** Makes a relative path absolute against `baseDir`; identity for non-path fields. */
  resolveRelative(value: T, baseDir: string): T;
  /** The printable form of a value: hides secrets and passwords inside URLs. */
  redact(value: T): unknown;
}

/** A section: named fields and nested sections. The whole schema is one tree. */
export interface ConfigTree {
  readonly [key: string]: Field<unknown> | ConfigTree;
}

/** The typed configuration object a schema tree describes; nothing is duplicated by hand. */
export type ConfigOf<Tree> = {
  readonly [Key in keyof Tree]: Tree[Key] extends Field<infer Value> ? Value : ConfigOf<Tree[Key]>;
};

/** True when a tree node is a field rather than a nested section. */
export function isField(node: unknown): node is Field<unknown> {
  return typeof node === 'object' && node !== null && (node as { isConfigField?: unknown }).isConfigField === true;
}

/** Printed instead of a secret value. */
export const REDACTED = '[redacted]';

/** Options every builder accepts. */
export interface CommonFieldOptions<T> {
  description: string;
  /** A value, or a function of other keys (evaluated after all sources are read). */
  default?: T | ((read: ConfigReader) => T);
  flagAliases?: readonly string[];
  secret?: boolean;
}

/** The value type of a field built with options `Options`: optional unless a default is given. */
export type ValueWithDefault<Options, T> = Options extends { default: unknown } ? T : T | undefined;

/** Options of {@link field.integer} and {@link field.number}. */
export interface NumericFieldOptions extends CommonFieldOptions<number> {
  min?: number;
  max?: number;
}

/** Options of {@link field.url}. */
export interface UrlFieldOptions extends CommonFieldOptions<string> {
  /** Allowed protocols including the colon, e.g. `['redis:', 'rediss:']`. Default: any. */
  protocols?: readonly string[];
}

/** The field builders. Each returns a frozen {@link Field}. */
export const field = {
  /** Free text; empty strings are rejected. */
  string<const Options extends CommonFieldOptions<string>>(options: Options): Field<ValueWithDefault<Options, string>> {
    return makeField(options, {
      kind: 'string',
      expected: 'a non-empty string',
      fromText: (text) => (text.length > 0 ? ok(text) : FAILED),
      fromJson: (value) => (typeof value === 'string' && value.length > 0 ? ok(value) : FAILED),
    });
  },

  /** Text that is never printed (tokens, passwords). */
  secret<const Options extends Omit<CommonFieldOptions<string>, 'secret'>>(options: Options): Field<ValueWithDefault<Options, string>> {
    return makeField({ ...options, secret: true }, {
      kind: 'secret',
      expected: 'a non-empty string',
      fromText: (text) => (text.length > 0 ? ok(text) : FAILED),
      fromJson: (value) => (typeof value === 'string' && value.length > 0 ? ok(value) : FAILED),
    });
  },

  /** A whole number, optionally bounded (inclusive). */
  integer<const Options extends NumericFieldOptions>(options: Options): Field<ValueWithDefault<Options, number>> {
    const inRange = rangeCheck(options);
    return makeField(options, {
      kind: 'integer',
      expected: 'an integer' + rangeWords(options),
      fromText: (text) => (/^[+-]?\d+$/.test(text.trim()) ? inRange(Number(text)) : FAILED),
      fromJson: (value) => (typeof value === 'number' && Number.isSafeInteger(value) ? inRange(value) : FAILED),
    });
  },

  /** A finite number, optionally bounded (inclusive). */
  number<const Options extends NumericFieldOptions>(options: Options): Field<ValueWithDefault<Options, number>> {
    const inRange = rangeCheck(options);
    return makeField(options, {
      kind: 'number',
      expected: 'a number' + rangeWords(options),
      fromText: (text) => (text.trim() !== '' && Number.isFinite(Number(text)) ? inRange(Number(text)) : FAILED),
      fromJson: (value) => (typeof value === 'number' && Number.isFinite(value) ? inRange(value) : FAILED),
    });
  },

  /** true/false; in env and flags also 1/0, yes/no, on/off. */
  boolean<const Options extends CommonFieldOptions<boolean>>(options: Options): Field<ValueWithDefault<Options, boolean>> {
    return makeField(options, {
      kind: 'boolean',
      expected: 'true or false',
      fromText: (text) => {
        const lower = text.trim().toLowerCase();
        if (TRUE_WORDS.has(lower)) return ok(true);
        if (FALSE_WORDS.has(lower)) return ok(false);
        return FAILED;
      },
      fromJson: (value) => (typeof value === 'boolean' ? ok(value) : FAILED),
    });
  },

  /** One of a fixed list of literals; the value type is their union. */
  oneOf<const Choice extends string, const Options extends CommonFieldOptions<NoInfer<Choice>>>(
    choices: readonly Choice[],
    options: Options,
  ): Field<ValueWithDefault<Options, Choice>> {
    const allowed = new Set<string>(choices);
    const parse = (value: unknown): ParseOutcome<Choice> => (typeof value === 'string' && allowed.has(value) ? ok(value as Choice) : FAILED);
    return makeField(options, {
      kind: 'oneOf',
      expected: 'one of ' + choices.join(', '),
      choices,
      fromText: parse,
      fromJson: parse,
    });
  },

  /** A list of strings: a JSON array in the file, comma separated in env and flags. */
  stringList<const Options extends CommonFieldOptions<readonly string[]>>(options: Options): Field<ValueWithDefault<Options, readonly string[]>> {
    return makeField(options, {
      kind: 'stringList',
      expected: 'a list of strings (a JSON array in the file, comma separated in env and flags)',
      fromText: (text) => ok(text.split(',').map((item) => item.trim()).filter((item) => item.length > 0)),
      fromJson: (value) => (Array.isArray(value) && value.every((item) => typeof item === 'string') ? ok([...value] as string[]) : FAILED),
    });
  },

  /**
   * A duration in milliseconds. Accepts a number of ms, or text with a unit: `250ms`, `10s`,
   * `5m`, `1h`, `1d` (a bare number is ms).
   */
  durationMs<const Options extends NumericFieldOptions>(options: Options): Field<ValueWithDefault<Options, number>> {
    const inRange = rangeCheck(options);
    const parseText = (text: string): ParseOutcome<number> => {
      const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim());
      if (match === null) return FAILED;
      return inRange(Math.round(Number(match[1]) * DURATION_UNIT_MS[(match[2] ?? 'ms') as keyof typeof DURATION_UNIT_MS]));
    };
    return makeField(options, {
      kind: 'durationMs',
      expected: 'a duration in milliseconds such as 1500, or with a unit: 250ms, 10s, 5m, 1h' + rangeWords(options, ' ms'),
      fromText: parseText,
      fromJson: (value) => {
        if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? inRange(Math.round(value)) : FAILED;
        return typeof value === 'string' ? parseText(value) : FAILED;
      },
    });
  },

  /** An absolute URL, optionally restricted to some protocols. Passwords in it are redacted. */
  url<const Options extends UrlFieldOptions>(options: Options): Field<ValueWithDefault<Options, string>> {
    const protocols = options.protocols;
    const parse = (value: unknown): ParseOutcome<string> => {
      if (typeof value !== 'string') return FAILED;
      const url = parseUrl(value);
      if (url === undefined) return FAILED;
      return protocols === undefined || protocols.includes(url.protocol) ? ok(value) : FAILED;
    };
    const example = protocols === undefined ? '' : ' (' + protocols.map((protocol) => protocol + '//…').join(' or ') + ')';
    return makeField(options, {
      kind: 'url',
      expected: 'an absolute URL' + example,
      fromText: parse,
      fromJson: parse,
      redact: redactUrlPassword,
    });
  },

  /** A file-system path; relative paths in a config file resolve against the file's directory. */
  path<const Options extends CommonFieldOptions<string>>(options: Options): Field<ValueWithDefault<Options, string>> {
    return makeField(options, {
      kind: 'path',
      expected: 'a file-system path',
      relativeToConfigFile: true,
      fromText: (text) => (text.length > 0 ? ok(text) : FAILED),
      fromJson: (value) => (typeof value === 'string' && value.length > 0 ? ok(value) : FAILED),
      resolveRelative: (value, baseDir) => (isAbsolute(value) ? value : resolve(baseDir, value)),
    });
  },

  /**
   * Where the database lives: a SQLite file path, `sqlite:PATH`, `:memory:`, or
   * `mysql://user:pass@host:port/db` (also `mariadb://`, optionally `?socket=/path`). SQLite paths in a config file
   * resolve against the file's directory; MySQL passwords are redacted when printed.
   */
  databaseUrl<const Options extends CommonFieldOptions<string>>(options: Options): Field<ValueWithDefault<Options, string>> {
    const parse = (value: unknown): ParseOutcome<string> => (typeof value === 'string' && isDatabaseUrl(value) ? ok(value) : FAILED);
    return makeField(options, {
      kind: 'databaseUrl',
      expected: 'a SQLite file path, sqlite:PATH, :memory:, or mysql://user:pass@host:port/db',
      relativeToConfigFile: true,
      fromText: parse,
      fromJson: parse,
      resolveRelative: resolveDatabasePath,
      redact: redactUrlPassword,
    });
  },
} as const;

/**
 * Hides the password (and password-like query parameters) of a URL-shaped string; anything
 * else is returned unchanged. Used for URLs in printed config and in error messages.
 */
export function redactUrlPassword(text: string): string {
  const url = URL_SCHEME.test(text) ? parseUrl(text) : undefined;
  if (url === undefined) return text.replace(/(\/\/[^/:@\s]*:)[^@\s]*@/g, '$1***@');
  const secretParams = [...url.searchParams.keys()].filter((name) => SECRET_PARAM.test(name));
  // Untouched URLs are returned as given: serialising would normalise them (trailing slash).
  if (url.password === '' && secretParams.length === 0) return text;
  if (url.password !== '') url.password = '***';
  for (const name of secretParams) url.searchParams.set(name, '***');
  return url.toString().replaceAll('%2A%2A%2A', '***');
}

// ---------------------------------------------------------------------------------------------

const FAILED: ParseOutcome<never> = Object.freeze({ ok: false });
const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);
const DURATION_UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const URL_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
const MYSQL_SCHEME = /^(mysql|mariadb):\/\//i;
const SECRET_PARAM = /pass|secret|token|key/i;

interface KindBehaviour<T> {
  kind: FieldKind;
  expected: string;
  choices?: readonly string[];
  relativeToConfigFile?: boolean;
  fromText(text: string): ParseOutcome<T>;
  fromJson(value: unknown): ParseOutcome<T>;
  resolveRelative?(value: T, baseDir: string): T;
  redact?(value: T): unknown;
}

function makeField<T, Value>(options: CommonFieldOptions<T>, behaviour: KindBehaviour<T>): Field<Value> {
  const isDerived = typeof options.default === 'function';
  const secret = options.secret === true;
  const built: Field<T> = {
    isConfigField: true,
    kind: behaviour.kind,
    description: options.description,
    expected: behaviour.expected,
    defaultValue: isDerived ? undefined : (options.default as T | undefined),
    derivedDefault: isDerived ? (options.default as (read: ConfigReader) => T) : undefined,
    secret,
    relativeToConfigFile: behaviour.relativeToConfigFile ?? false,
    flagAliases: Object.freeze([...(options.flagAliases ?? [])]),
    choices: Object.freeze([...(behaviour.choices ?? [])]),
    fromText: behaviour.fromText,
    fromJson: behaviour.fromJson,
    resolveRelative: behaviour.resolveRelative ?? ((value) => value),
    redact: secret ? (value) => (value === undefined ? undefined : REDACTED) : (behaviour.redact ?? ((value) => value)),
  };
  // The builder's overloads compute the value type (optional or not) from the options; the
  // runtime object is the same either way.
  return Object.freeze(built) as unknown as Field<Value>;
}

function ok<T>(value: T): ParseOutcome<T> {
  return { ok: true, value };
}

function rangeCheck(options: NumericFieldOptions): (value: number) => ParseOutcome<number> {
  const min = options.min ?? -Infinity;
  const max = options.max ?? Infinity;
  return (value) => (value >= min && value <= max ? ok(value) : FAILED);
}

function rangeWords(options: NumericFieldOptions, unit = ''): string {
  if (options.min !== undefined && options.max !== undefined) return ` from ${options.min} to ${options.max}${unit}`;
  if (options.min !== undefined) return ` of at least ${options.min}${unit}`;
  if (options.max !== undefined) return ` of at most ${options.max}${unit}`;
  return '';
}

function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

function isDatabaseUrl(text: string): boolean {
  if (text.length === 0) return false;
  if (MYSQL_SCHEME.test(text)) {
    const url = parseUrl(text);
    return url !== undefined && (url.hostname !== '' || url.searchParams.has('socket')) && url.pathname.length > 1;
  }
  if (/^sqlite:/i.test(text)) return text.length > 'sqlite:'.length;
  // Any other scheme (postgres://, http://) is a mistake, not a file name.
  return !URL_SCHEME.test(text);
}

function resolveDatabasePath(value: string, baseDir: string): string {
  if (value === ':memory:') return value;
  if (/^sqlite:/i.test(value)) {
    // `sqlite:PATH` and `sqlite://PATH` name the same file.
    let path = value.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    return path === ':memory:' || isAbsolute(path) ? value : 'sqlite:' + resolve(baseDir, path);
  }
  if (URL_SCHEME.test(value)) return value;
  return isAbsolute(value) ? value : resolve(baseDir, value);
}
