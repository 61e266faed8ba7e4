/**
 * `RequestView`: what policies see of one request, computed lazily and at most once: the
 * normalised path (percent-decoded, `//` collapsed, dot segments resolved, so a Firewall prefix
 * `/admin` cannot be bypassed with `/%61dmin`, `//admin` or `/x/../admin`, dataplane.md §10.17),
 * the query parameters, per-line header values, and the client IP (the proxy framework already
 * honours `X-Forwarded-For` only from trusted proxies). The original escaped path is what goes
 * upstream. Created per request by the engine's caller.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** The parts of a request policies read; `ProxySession` and tests both provide it. */
export interface GatewayRequestSource {
  readonly requestId: string;
  readonly method: string;
  /** Path and query exactly as received. */
  readonly url: string;
  /** Lower-cased header names (Node's joined form). */
  readonly headers: IncomingHttpHeaders;
  /** Per-line header values when the server provides them (`IncomingMessage.headersDistinct`). */
  readonly headersDistinct?: Record<string, string[] | undefined>;
  /** The client's IP address as the proxy determined it. */
  readonly clientIp: string;
  /** Reads the request body up to `maxBytes` (→ Fault 413 beyond); absent when the body cannot be buffered. */
  readBody?(maxBytes: number): Promise<Buffer>;
}

/** Per-request view of a request for matchers and executors. */
export class RequestView {
  readonly source: GatewayRequestSource;
  #path: string | undefined;
  #query: URLSearchParams | undefined;

  constructor(source: GatewayRequestSource) {
    this.source = source;
  }

  get requestId(): string {
    return this.source.requestId;
  }

  /** Upper-case method. */
  get method(): string {
    return this.source.method.toUpperCase();
  }

  get headers(): IncomingHttpHeaders {
    return this.source.headers;
  }

  get clientIp(): string {
    return this.source.clientIp;
  }

  /** The raw path without the query, as received. */
  get rawPath(): string {
    const url = this.source.url;
    const queryStart = url.indexOf('?');
    return queryStart === -1 ? url : url.slice(0, queryStart);
  }

  /** The raw query string without `?` ('' when none). */
  get rawQuery(): string {
    const url = this.source.url;
    const queryStart = url.indexOf('?');
    return queryStart === -1 ? '' : url.slice(queryStart + 1);
  }

  /** The normalised, percent-decoded path that matchers compare against. */
  get path(): string {
    this.#path ??= normalizePath(this.rawPath);
    return this.#path;
  }

  /** Query parameters (names case-sensitive; repeated names kept). */
  get query(): URLSearchParams {
    this.#query ??= new URLSearchParams(this.rawQuery);
    return this.#query;
  }

  /** Every value of header `name` (lower case), one per header line; [] when absent. */
  headerValues(name: string): readonly string[] {
    const distinct = this.source.headersDistinct?.[name];
    if (distinct !== undefined) return distinct;
    const value = this.source.headers[name];
    if (value === undefined) return EMPTY;
    return Array.isArray(value) ? value : [value];
  }

  /**
   * The first value of header `name`, or undefined. Cheaper than `headerValues(name)[0]` (no
   * per-line view is built) and the same for the headers whose repeats Node drops (Authorization,
   * Host, Content-Type…): their joined value is the first line.
   */
  header(name: string): string | undefined {
    const value = this.source.headers[name];
    return Array.isArray(value) ? value[0] : value;
  }
}

const EMPTY: readonly string[] = [];

/**
 * Percent-decodes `rawPath`, collapses repeated slashes and resolves `.` and `..` segments (never
 * above the root). An undecodable escape is kept as is. Always starts with `/`.
 */
export function normalizePath(rawPath: string): string {
  let decoded = rawPath;
  if (rawPath.includes('%')) {
    try {
      decoded = decodeURIComponent(rawPath);
    } catch {
      decoded = rawPath;
    }
  }
  if (!decoded.includes('//') && !decoded.includes('/.') && decoded.startsWith('/')) return decoded;
  const segments: string[] = [];
  const parts = decoded.split('/');
  for (const part of parts) {
    if (part === '' || part === '.') continue;
    if (part === '..') segments.pop();
    else segments.push(part);
  }
  const trailingSlash = decoded.endsWith('/') && segments.length > 0;
  return `/${segments.join('/')}${trailingSlash ? '/' : ''}`;
}
