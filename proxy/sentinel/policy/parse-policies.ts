/**
 * `parsePolicies`: validates a policy document (the JSON form of `PolicySet`, or a bare list of
 * policies) and returns the normalised {@link Policy} list. Runs when a policy set is saved or
 * loaded, never per request. Accepts lowerCamelCase and snake_case names, int64 as number or
 * decimal string, and ignores unknown fields (the dashboard's `type` discriminator), as protojson
 * does (dataplane.md §10.16). Every problem is collected with the path of the offending field,
 * e.g. `policies[2].ratelimit.limit`, and the whole document is rejected with one `Fault`
 * (`err:frontline:config:invalid_configuration`, 422) whose `errors` list them.
 */
import { Fault } from '../../../core/fault.ts';
import type { FaultDetail } from '../../../core/fault.ts';
import { vetRegex } from '../match/safe-regex.ts';
import { POLICY_TYPES } from './policy-types.ts';
import type {
  FieldMatch, FirewallConfig, JwtAuthConfig, KeyAuthConfig, KeyLocation, KeyRatelimit, LoggingConfig, MatchExpr,
  OpenApiConfig, Policy, PolicyType, RateLimitConfig, RateLimitIdentifier, StringMatch,
} from './policy-types.ts';

/** Bounds of a policy document. */
export const POLICY_LIMITS = {
  maxPolicies: 100,
  maxMatchExpressions: 32,
  maxListItems: 64,
  maxStringChars: 4096,
  /** Parts of a compound rate-limit identifier (the reference allows 5). */
  maxRateLimitIdentifiers: 5,
  maxOpenApiSpecBytes: 4 * 1024 * 1024,
} as const;

/** The algorithms JWTAuth may be configured with (asymmetric only: a shared secret in config is not accepted). */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);
const MAX_RATE_LIMIT_WINDOW_MS = 2_592_000_000;

/**
 * Parses and validates `document`: `{ "policies": [...] }`, a bare array, `{}`, `null`, or an
 * empty string / bytes (all three mean no policies). `pathPrefix` starts every error path
 * (default `policies`). Throws a `Fault` listing every problem.
 */
export function parsePolicies(document: unknown, pathPrefix = 'policies'): Policy[] {
  let value = document;
  if (value instanceof Uint8Array) value = Buffer.from(value).toString('utf8');
  if (typeof value === 'string') {
    if (value.trim() === '') return [];
    try {
      value = JSON.parse(value);
    } catch (err) {
      throw invalidPolicies([{ location: pathPrefix, message: `not valid JSON: ${(err as Error).message}` }]);
    }
  }
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) {
    if (typeof value !== 'object') throw invalidPolicies([{ location: pathPrefix, message: 'expected an object with a "policies" list or a list of policies' }]);
    value = (value as Record<string, unknown>)['policies'] ?? [];
  }
  const reader = new Reader();
  const list = reader.list(value, pathPrefix, POLICY_LIMITS.maxPolicies) ?? [];
  const policies: Policy[] = [];
  const seenIds = new Map<string, string>();
  list.forEach((item, index) => {
    const path = `${pathPrefix}[${index}]`;
    const policy = readPolicy(reader, item, path);
    if (policy === undefined) return;
    const previous = seenIds.get(policy.id);
    if (previous !== undefined) reader.problem(`${path}.id`, `duplicate policy id ${JSON.stringify(policy.id)} (also ${previous})`);
    seenIds.set(policy.id, path);
    policies.push(policy);
  });
  if (reader.problems.length > 0) throw invalidPolicies(reader.problems);
  return policies;
}

/** The fault for a rejected document; `errors` carry one entry per problem. */
export function invalidPolicies(problems: FaultDetail[]): Fault {
  const first = problems[0];
  return new Fault('err:frontline:config:invalid_configuration', {
    publicMessage: first === undefined ? 'invalid policy configuration' : `invalid policy configuration: ${first.location}: ${first.message}`,
    errors: problems,
  });
}

function readPolicy(reader: Reader, item: unknown, path: string): Policy | undefined {
  const object = reader.object(item, path);
  if (object === undefined) return undefined;
  const id = reader.string(object, 'id', path, { required: true, pattern: /^[A-Za-z0-9_.:-]{1,128}$/, patternHint: '1-128 characters of A-Z a-z 0-9 _ . : -' }) ?? '';
  const name = reader.string(object, 'name', path) ?? id;
  const enabled = reader.boolean(object, 'enabled', path) ?? false;
  const matchList = reader.list(field(object, 'match'), `${path}.match`, POLICY_LIMITS.maxMatchExpressions) ?? [];
  const match: MatchExpr[] = [];
  matchList.forEach((entry, index) => {
    const expr = readMatchExpr(reader, entry, `${path}.match[${index}]`);
    if (expr !== undefined) match.push(expr);
  });
  const present = POLICY_TYPES.filter((type) => field(object, type) !== undefined && field(object, type) !== null);
  if (present.length !== 1) {
    reader.problem(path, present.length === 0
      ? `exactly one configuration is required: one of ${POLICY_TYPES.join(', ')}`
      : `exactly one configuration is allowed, found ${present.join(' and ')}`);
    return undefined;
  }
  const type = present[0] as PolicyType;
  const configPath = `${path}.${type}`;
  const config = reader.object(field(object, type), configPath);
  if (config === undefined) return undefined;
  const policy: Policy = { id, name, enabled, match, type };
  switch (type) {
    case 'keyauth': policy.keyauth = readKeyAuth(reader, config, configPath); break;
    case 'ratelimit': policy.ratelimit = readRateLimit(reader, config, configPath); break;
    case 'firewall': policy.firewall = readFirewall(reader, config, configPath); break;
    case 'jwtauth': policy.jwtauth = readJwtAuth(reader, config, configPath); break;
    case 'openapi': policy.openapi = readOpenApi(reader, config, configPath); break;
    case 'logging': policy.logging = readLogging(reader, config, configPath); break;
  }
  return policy;
}

function readStringMatch(reader: Reader, value: unknown, path: string): StringMatch | undefined {
  const object = reader.object(value, path);
  if (object === undefined) return undefined;
  const result: StringMatch = { ignoreCase: reader.boolean(object, 'ignoreCase', path) ?? false };
  const kinds = (['exact', 'prefix', 'regex'] as const).filter((kind) => field(object, kind) !== undefined);
  if (kinds.length > 1) reader.problem(path, `at most one of exact, prefix, regex may be set, found ${kinds.join(' and ')}`);
  for (const kind of kinds) {
    const text = reader.string(object, kind, path);
    if (text === undefined) continue;
    if (kind === 'regex') {
      const problem = vetRegex(text);
      if (problem !== undefined) reader.problem(`${path}.regex`, problem);
    }
    result[kind] = text;
  }
  return result;
}

function readFieldMatch(reader: Reader, value: unknown, path: string, lowerCaseName: boolean): FieldMatch | undefined {
  const object = reader.object(value, path);
  if (object === undefined) return undefined;
  const name = reader.string(object, 'name', path, { required: true, pattern: /^[^\s]+$/, patternHint: 'a non-empty name without spaces' }) ?? '';
  const result: FieldMatch = { name: lowerCaseName ? name.toLowerCase() : name };
  const present = reader.boolean(object, 'present', path);
  const valueMatch = field(object, 'value');
  if (present !== undefined && valueMatch !== undefined) reader.problem(path, 'at most one of present and value may be set');
  if (present !== undefined) result.present = present;
  if (valueMatch !== undefined) result.value = readStringMatch(reader, valueMatch, `${path}.value`);
  return result;
}

function readMatchExpr(reader: Reader, value: unknown, path: string): MatchExpr | undefined {
  const object = reader.object(value, path);
  if (object === undefined) return undefined;
  const negate = reader.boolean(object, 'negate', path) ?? false;
  const kinds = (['path', 'method', 'header', 'queryParam'] as const).filter((kind) => field(object, kind) !== undefined);
  if (kinds.length !== 1) {
    reader.problem(path, kinds.length === 0 ? 'one of path, method, header, queryParam is required' : `only one of path, method, header, queryParam may be set, found ${kinds.join(' and ')}`);
    return undefined;
  }
  const kind = kinds[0]!;
  const kindPath = `${path}.${kind}`;
  const expr: MatchExpr = { negate };
  if (kind === 'path') {
    const object2 = reader.object(field(object, 'path'), kindPath);
    if (object2 === undefined) return undefined;
    const inner = field(object2, 'path');
    expr.path = { path: inner === undefined ? { ignoreCase: false } : readStringMatch(reader, inner, `${kindPath}.path`) ?? { ignoreCase: false } };
  } else if (kind === 'method') {
    const object2 = reader.object(field(object, 'method'), kindPath);
    if (object2 === undefined) return undefined;
    const methods = reader.stringList(object2, 'methods', kindPath).map((method) => method.toUpperCase());
    methods.forEach((method, index) => {
      if (!HTTP_METHODS.has(method)) reader.problem(`${kindPath}.methods[${index}]`, `unknown HTTP method ${JSON.stringify(method)}`);
    });
    expr.method = { methods };
  } else if (kind === 'header') {
    expr.header = readFieldMatch(reader, field(object, 'header'), kindPath, true);
  } else {
    expr.queryParam = readFieldMatch(reader, field(object, 'queryParam'), kindPath, false);
  }
  return expr;
}

function readKeyAuth(reader: Reader, object: Record<string, unknown>, path: string): KeyAuthConfig {
  const keyspaces = [...reader.stringList(object, 'keyspaces', path), ...reader.stringList(object, 'keySpaceIds', path)];
  const apiIds = reader.stringList(object, 'apiIds', path);
  if (keyspaces.length === 0 && apiIds.length === 0) reader.problem(`${path}.keyspaces`, 'at least one key space (keyspaces) or API (apiIds) is required: an empty list would reject every key');
  const locations: KeyLocation[] = [];
  (reader.list(field(object, 'locations'), `${path}.locations`, POLICY_LIMITS.maxListItems) ?? []).forEach((item, index) => {
    const itemPath = `${path}.locations[${index}]`;
    const location = reader.object(item, itemPath);
    if (location === undefined) return;
    const kinds = (['bearer', 'header', 'queryParam'] as const).filter((kind) => field(location, kind) !== undefined);
    if (kinds.length !== 1) {
      reader.problem(itemPath, 'exactly one of bearer, header, queryParam is required');
      return;
    }
    const kind = kinds[0]!;
    if (kind === 'bearer') {
      locations.push({ bearer: {} });
      return;
    }
    const inner = reader.object(field(location, kind), `${itemPath}.${kind}`);
    if (inner === undefined) return;
    const name = reader.string(inner, 'name', `${itemPath}.${kind}`, { required: true, pattern: /^[^\s]+$/, patternHint: 'a non-empty name without spaces' }) ?? '';
    if (kind === 'header') {
      const stripPrefix = reader.string(inner, 'stripPrefix', `${itemPath}.header`);
      locations.push({ header: stripPrefix === undefined || stripPrefix === '' ? { name: name.toLowerCase() } : { name: name.toLowerCase(), stripPrefix } });
    } else {
      locations.push({ queryParam: { name } });
    }
  });
  const ratelimits: KeyRatelimit[] = [];
  (reader.list(field(object, 'ratelimits'), `${path}.ratelimits`, POLICY_LIMITS.maxListItems) ?? []).forEach((item, index) => {
    const itemPath = `${path}.ratelimits[${index}]`;
    const limitObject = reader.object(item, itemPath);
    if (limitObject === undefined) return;
    const limit: KeyRatelimit = { name: reader.string(limitObject, 'name', itemPath, { required: true }) ?? '' };
    const count = reader.integer(limitObject, 'limit', itemPath, { min: 0 });
    const duration = reader.integer(limitObject, 'duration', itemPath, { min: 1000, max: MAX_RATE_LIMIT_WINDOW_MS });
    const cost = reader.integer(limitObject, 'cost', itemPath, { min: 0 });
    if ((count === undefined) !== (duration === undefined)) reader.problem(itemPath, 'an inline limit needs both limit and duration');
    if (count !== undefined) limit.limit = count;
    if (duration !== undefined) limit.duration = duration;
    if (cost !== undefined) limit.cost = cost;
    ratelimits.push(limit);
  });
  const config: KeyAuthConfig = { keyspaces, apiIds, locations, ratelimits };
  const permissionQuery = reader.string(object, 'permissionQuery', path);
  if (permissionQuery !== undefined && permissionQuery !== '') {
    if (permissionQuery.length > 1000) reader.problem(`${path}.permissionQuery`, 'longer than 1000 characters');
    config.permissionQuery = permissionQuery;
  }
  const credits = reader.integer(object, 'credits', path, { min: 0 });
  if (credits !== undefined) config.credits = credits;
  return config;
}

function readRateLimit(reader: Reader, object: Record<string, unknown>, path: string): RateLimitConfig {
  const limit = reader.integer(object, 'limit', path, { required: true, min: 1 }) ?? 1;
  const windowMs = reader.integer(object, 'windowMs', path, { required: true, min: 1000, max: MAX_RATE_LIMIT_WINDOW_MS }) ?? 1000;
  const identifiers: RateLimitIdentifier[] = [];
  const list = reader.list(field(object, 'identifiers'), `${path}.identifiers`, POLICY_LIMITS.maxRateLimitIdentifiers) ?? [];
  list.forEach((item, index) => {
    const identifier = readIdentifier(reader, item, `${path}.identifiers[${index}]`);
    if (identifier !== undefined) identifiers.push(identifier);
  });
  const single = field(object, 'identifier');
  if (list.length === 0 && single !== undefined) {
    const identifier = readIdentifier(reader, single, `${path}.identifier`);
    if (identifier !== undefined) identifiers.push(identifier);
  }
  if (identifiers.length === 0 && list.length === 0 && single === undefined) reader.problem(`${path}.identifiers`, 'at least one identifier is required (remoteIp, header, authenticatedSubject, path, principalField)');
  return { limit, windowMs, identifiers };
}

function readIdentifier(reader: Reader, value: unknown, path: string): RateLimitIdentifier | undefined {
  const object = reader.object(value, path);
  if (object === undefined) return undefined;
  const kinds = (['remoteIp', 'header', 'authenticatedSubject', 'path', 'principalField'] as const).filter((kind) => field(object, kind) !== undefined);
  if (kinds.length !== 1) {
    reader.problem(path, 'exactly one of remoteIp, header, authenticatedSubject, path, principalField is required');
    return undefined;
  }
  const kind = kinds[0]!;
  if (kind === 'header') {
    const inner = reader.object(field(object, 'header'), `${path}.header`);
    return inner === undefined ? undefined : { header: { name: (reader.string(inner, 'name', `${path}.header`, { required: true }) ?? '').toLowerCase() } };
  }
  if (kind === 'principalField') {
    const inner = reader.object(field(object, 'principalField'), `${path}.principalField`);
    return inner === undefined ? undefined : { principalField: { path: reader.string(inner, 'path', `${path}.principalField`, { required: true, pattern: /^[^.]+(\.[^.]+)*$/, patternHint: 'a dotted path such as source.key.meta.org' }) ?? '' } };
  }
  return { [kind]: {} } as RateLimitIdentifier;
}

function readFirewall(reader: Reader, object: Record<string, unknown>, path: string): FirewallConfig {
  const action = field(object, 'action');
  if (action === 'ACTION_DENY' || action === 1 || action === 'DENY') return { action: 'ACTION_DENY' };
  if (action === undefined || action === 'ACTION_UNSPECIFIED' || action === 0) return { action: 'ACTION_UNSPECIFIED' };
  reader.problem(`${path}.action`, `expected "ACTION_DENY", got ${describe(action)}`);
  return { action: 'ACTION_UNSPECIFIED' };
}

function readOpenApi(reader: Reader, object: Record<string, unknown>, path: string): OpenApiConfig {
  let spec = field(object, 'spec');
  const specText = field(object, 'specYaml');
  if (spec === undefined && typeof specText === 'string' && specText !== '') {
    // protojson carries bytes as base64; a JSON document is also accepted verbatim.
    const text = specText.trimStart().startsWith('{') ? specText : Buffer.from(specText, 'base64').toString('utf8');
    try {
      spec = JSON.parse(text);
    } catch {
      reader.problem(`${path}.specYaml`, 'the OpenAPI document must be JSON (YAML is not supported)');
      return {};
    }
  }
  if (spec === undefined) return {};
  const document = reader.object(spec, `${path}.spec`);
  if (document === undefined) return {};
  if (JSON.stringify(document).length > POLICY_LIMITS.maxOpenApiSpecBytes) reader.problem(`${path}.spec`, `larger than ${POLICY_LIMITS.maxOpenApiSpecBytes} bytes`);
  if (typeof document['openapi'] !== 'string' || !document['openapi'].startsWith('3.')) reader.problem(`${path}.spec.openapi`, 'expected an OpenAPI 3.x document ("openapi": "3.0.3" or "3.1.0")');
  if (document['paths'] === null || typeof document['paths'] !== 'object') reader.problem(`${path}.spec.paths`, 'expected an object of paths');
  return { spec: document };
}

function readLogging(reader: Reader, object: Record<string, unknown>, path: string): LoggingConfig {
  return {
    requestHeaders: reader.boolean(object, 'requestHeaders', path) ?? false,
    responseHeaders: reader.boolean(object, 'responseHeaders', path) ?? false,
    requestBody: reader.boolean(object, 'requestBody', path) ?? false,
    responseBody: reader.boolean(object, 'responseBody', path) ?? false,
    query: reader.boolean(object, 'query', path) ?? false,
  };
}

function readJwtAuth(reader: Reader, object: Record<string, unknown>, path: string): JwtAuthConfig {
  const jwksUri = reader.string(object, 'jwksUri', path);
  const publicKeyPem = reader.string(object, 'publicKeyPem', path, { maxChars: 16_384 });
  if ((jwksUri === undefined) === (publicKeyPem === undefined)) reader.problem(path, 'exactly one of jwksUri and publicKeyPem is required');
  if (field(object, 'oidcIssuer') !== undefined) reader.problem(`${path}.oidcIssuer`, 'OIDC discovery is not supported; give jwksUri');
  if (jwksUri !== undefined) {
    try {
      const url = new URL(jwksUri);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') reader.problem(`${path}.jwksUri`, 'expected an http(s) URL');
    } catch {
      reader.problem(`${path}.jwksUri`, 'not a valid URL');
    }
  }
  if (publicKeyPem !== undefined && !publicKeyPem.includes('-----BEGIN PUBLIC KEY-----')) reader.problem(`${path}.publicKeyPem`, 'expected a PEM "PUBLIC KEY" (SPKI)');
  const algorithms = reader.stringList(object, 'algorithms', path);
  algorithms.forEach((algorithm, index) => {
    if (!(JWT_ALGORITHMS as readonly string[]).includes(algorithm)) reader.problem(`${path}.algorithms[${index}]`, `unsupported algorithm ${JSON.stringify(algorithm)}; one of ${JWT_ALGORITHMS.join(', ')}`);
  });
  const config: JwtAuthConfig = {
    audiences: reader.stringList(object, 'audiences', path),
    algorithms: algorithms.length === 0 ? ['RS256'] : algorithms,
    subjectClaim: reader.string(object, 'subjectClaim', path) || 'sub',
    allowAnonymous: reader.boolean(object, 'allowAnonymous', path) ?? false,
    clockSkewMs: reader.integer(object, 'clockSkewMs', path, { min: 0, max: 3_600_000 }) ?? 0,
    jwksCacheMs: reader.integer(object, 'jwksCacheMs', path, { min: 1000, max: 86_400_000 }) ?? 3_600_000,
  };
  if (jwksUri !== undefined) config.jwksUri = jwksUri;
  if (publicKeyPem !== undefined) config.publicKeyPem = publicKeyPem;
  const issuer = reader.string(object, 'issuer', path);
  if (issuer !== undefined && issuer !== '') config.issuer = issuer;
  return config;
}

/** A field by its lowerCamelCase name or its snake_case form. */
function field(object: Record<string, unknown>, camelName: string): unknown {
  const value = object[camelName];
  if (value !== undefined) return value;
  return object[camelName.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)];
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

/** Typed field readers that record a problem (with its path) instead of throwing. */
class Reader {
  readonly problems: FaultDetail[] = [];

  problem(location: string, message: string): void {
    if (this.problems.length < 100) this.problems.push({ location, message });
  }

  object(value: unknown, path: string): Record<string, unknown> | undefined {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.problem(path, `expected an object, got ${describe(value)}`);
      return undefined;
    }
    return value as Record<string, unknown>;
  }

  list(value: unknown, path: string, maxItems: number): unknown[] | undefined {
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) {
      this.problem(path, `expected a list, got ${describe(value)}`);
      return undefined;
    }
    if (value.length > maxItems) {
      this.problem(path, `at most ${maxItems} entries are allowed, got ${value.length}`);
      return value.slice(0, maxItems);
    }
    return value;
  }

  string(object: Record<string, unknown>, name: string, path: string, options: { required?: boolean; pattern?: RegExp; patternHint?: string; maxChars?: number } = {}): string | undefined {
    const value = field(object, name);
    const fieldPath = `${path}.${name}`;
    if (value === undefined || value === null) {
      if (options.required) this.problem(fieldPath, 'is required');
      return undefined;
    }
    if (typeof value !== 'string') {
      this.problem(fieldPath, `expected a string, got ${describe(value)}`);
      return undefined;
    }
    if (value.length > (options.maxChars ?? POLICY_LIMITS.maxStringChars)) {
      this.problem(fieldPath, `longer than ${options.maxChars ?? POLICY_LIMITS.maxStringChars} characters`);
      return undefined;
    }
    if (options.pattern !== undefined && !options.pattern.test(value)) {
      this.problem(fieldPath, `expected ${options.patternHint ?? String(options.pattern)}, got ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  stringList(object: Record<string, unknown>, name: string, path: string): string[] {
    const fieldPath = `${path}.${name}`;
    const list = this.list(field(object, name), fieldPath, POLICY_LIMITS.maxListItems) ?? [];
    const result: string[] = [];
    list.forEach((item, index) => {
      if (typeof item !== 'string' || item === '') this.problem(`${fieldPath}[${index}]`, `expected a non-empty string, got ${describe(item)}`);
      else result.push(item);
    });
    return result;
  }

  boolean(object: Record<string, unknown>, name: string, path: string): boolean | undefined {
    const value = field(object, name);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') {
      this.problem(`${path}.${name}`, `expected true or false, got ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  integer(object: Record<string, unknown>, name: string, path: string, options: { required?: boolean; min?: number; max?: number } = {}): number | undefined {
    let value = field(object, name);
    const fieldPath = `${path}.${name}`;
    if (value === undefined || value === null) {
      if (options.required) this.problem(fieldPath, 'is required');
      return undefined;
    }
    // protojson writes int64 as a decimal string.
    if (typeof value === 'string' && /^-?\d{1,16}$/.test(value)) value = Number(value);
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
      this.problem(fieldPath, `expected an integer, got ${describe(value)}`);
      return undefined;
    }
    if (options.min !== undefined && value < options.min) {
      this.problem(fieldPath, `must be at least ${options.min}, got ${value}`);
      return undefined;
    }
    if (options.max !== undefined && value > options.max) {
      this.problem(fieldPath, `must be at most ${options.max}, got ${value}`);
      return undefined;
    }
    return value;
  }
}
