/**
 * `Router`: maps a method and a path to a registered value, compiled at registration time.
 * Exact paths are one `Map` lookup that allocates nothing; paths with `:param` segments are
 * matched segment by segment, in registration order, after the exact paths.
 */
import { Fault } from '../fault.ts';

/** A successful lookup. For exact paths the object is prebuilt and shared between requests. */
export interface RouteFound<T> {
  readonly kind: 'found';
  readonly value: T;
  /** The pattern the path matched (`/v1/items/:id`), a low-cardinality label. */
  readonly pattern: string;
  readonly params: Readonly<Record<string, string>>;
}

/** The path exists but not for this method; `allow` is the `Allow` header value. */
export interface RouteMethodNotAllowed {
  readonly kind: 'method_not_allowed';
  readonly pattern: string;
  readonly allow: string;
}

/** No registered pattern matches the path. */
export interface RouteNotFound {
  readonly kind: 'not_found';
}

/** The result of {@link Router.find}. */
export type RouteMatch<T> = RouteFound<T> | RouteMethodNotAllowed | RouteNotFound;

/** The shared not-found result. */
export const ROUTE_NOT_FOUND: RouteNotFound = Object.freeze({ kind: 'not_found' });

const EMPTY_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

interface PathEntry<T> {
  readonly pattern: string;
  /** Only for patterns with params: literal segments as strings, params as `{ param }`. */
  readonly segments: readonly (string | { readonly param: string })[] | undefined;
  readonly byMethod: Map<string, T>;
  /** Prebuilt results for exact patterns, one per method. */
  readonly foundByMethod: Map<string, RouteFound<T>>;
  methodNotAllowed: RouteMethodNotAllowed;
}

/**
 * A method + path router. Registration (`add`) happens at boot; `find` runs per request.
 * `HEAD` falls back to the `GET` registration when there is no `HEAD` one.
 */
export class Router<T> {
  readonly #exact = new Map<string, PathEntry<T>>();
  readonly #parameterized: PathEntry<T>[] = [];

  /**
   * Registers `value` for `method` and `pattern` (an exact path, or one with `:name` segments).
   * Throws a `Fault` (`err:keygate:http:invalid_registration`) for a duplicate or a bad pattern.
   */
  add(method: string, pattern: string, value: T): void {
    if (!pattern.startsWith('/')) throw invalidRegistration(`route pattern must start with "/": ${pattern}`);
    const segments = compileSegments(pattern);
    const entry = segments === undefined ? this.#exactEntry(pattern) : this.#parameterizedEntry(pattern, segments);
    if (entry.byMethod.has(method)) throw invalidRegistration(`route ${method} ${pattern} is registered twice`);
    entry.byMethod.set(method, value);
    if (segments === undefined) {
      entry.foundByMethod.set(method, Object.freeze({ kind: 'found', value, pattern, params: EMPTY_PARAMS }));
    }
    entry.methodNotAllowed = Object.freeze({ kind: 'method_not_allowed', pattern, allow: allowHeader(entry.byMethod) });
  }

  /** Looks up `method` and `path` (the path without its query string). Never throws. */
  find(method: string, path: string): RouteMatch<T> {
    const exact = this.#exact.get(path);
    if (exact !== undefined) {
      const found = exact.foundByMethod.get(method) ?? (method === 'HEAD' ? exact.foundByMethod.get('GET') : undefined);
      return found ?? exact.methodNotAllowed;
    }
    if (this.#parameterized.length === 0) return ROUTE_NOT_FOUND;
    return this.#findParameterized(method, path);
  }

  #findParameterized(method: string, path: string): RouteMatch<T> {
    const parts = path.split('/');
    let methodNotAllowed: RouteMethodNotAllowed | undefined;
    for (const entry of this.#parameterized) {
      const params = matchSegments(entry.segments!, parts);
      if (params === undefined) continue;
      const value = entry.byMethod.get(method) ?? (method === 'HEAD' ? entry.byMethod.get('GET') : undefined);
      if (value !== undefined) return { kind: 'found', value, pattern: entry.pattern, params };
      methodNotAllowed ??= entry.methodNotAllowed;
    }
    return methodNotAllowed ?? ROUTE_NOT_FOUND;
  }

  #exactEntry(pattern: string): PathEntry<T> {
    let entry = this.#exact.get(pattern);
    if (entry === undefined) {
      entry = newEntry(pattern, undefined);
      this.#exact.set(pattern, entry);
    }
    return entry;
  }

  #parameterizedEntry(pattern: string, segments: PathEntry<T>['segments']): PathEntry<T> {
    let entry = this.#parameterized.find((candidate) => candidate.pattern === pattern);
    if (entry === undefined) {
      entry = newEntry(pattern, segments);
      this.#parameterized.push(entry);
    }
    return entry;
  }
}

function newEntry<T>(pattern: string, segments: PathEntry<T>['segments']): PathEntry<T> {
  return {
    pattern,
    segments,
    byMethod: new Map(),
    foundByMethod: new Map(),
    methodNotAllowed: { kind: 'method_not_allowed', pattern, allow: '' },
  };
}

/** Undefined for an exact pattern; otherwise the split segments (the first, empty one included). */
function compileSegments(pattern: string): PathEntry<unknown>['segments'] {
  if (!pattern.includes('/:')) return undefined;
  const names = new Set<string>();
  return pattern.split('/').map((segment) => {
    if (!segment.startsWith(':')) return segment;
    const param = segment.slice(1);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(param)) throw invalidRegistration(`bad parameter name "${segment}" in ${pattern}`);
    if (names.has(param)) throw invalidRegistration(`parameter "${param}" appears twice in ${pattern}`);
    names.add(param);
    return { param };
  });
}

function matchSegments(segments: NonNullable<PathEntry<unknown>['segments']>, parts: readonly string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  let params: Record<string, string> | undefined;
  for (let index = 0; index < segments.length; index++) {
    const segment = segments[index]!;
    const part = parts[index]!;
    if (typeof segment === 'string') {
      if (segment !== part) return undefined;
    } else {
      // An empty segment (`/items/`) is not a value for a parameter.
      if (part.length === 0) return undefined;
      params ??= {};
      params[segment.param] = decodeSegment(part);
    }
  }
  return params ?? EMPTY_PARAMS;
}

function decodeSegment(part: string): string {
  if (!part.includes('%')) return part;
  try {
    return decodeURIComponent(part);
  } catch {
    // Malformed percent-encoding: hand the raw text to the handler, which validates its input.
    return part;
  }
}

function allowHeader(byMethod: Map<string, unknown>): string {
  const methods = [...byMethod.keys()];
  if (byMethod.has('GET') && !byMethod.has('HEAD')) methods.push('HEAD');
  return methods.join(', ');
}

function invalidRegistration(message: string): Fault {
  return new Fault('err:keygate:http:invalid_registration', { internalMessage: message });
}
