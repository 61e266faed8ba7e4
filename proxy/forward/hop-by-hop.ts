/**
 * Hop-by-hop header handling (RFC 9110 §7.6.1, dataplane.md §10.9), in both directions:
 * `Connection` and every header it names, `Keep-Alive`, `Proxy-Connection`,
 * `Proxy-Authenticate`, `Proxy-Authorization`, `TE` (except `trailers`), `Trailer`,
 * `Transfer-Encoding` and `Upgrade`. HTTP/2 pseudo-headers (`:authority`, …) never cross a hop.
 * The tables are built at load time; per request there is one header copy and no regex.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { HeaderMap } from '../hooks.ts';

/** The fixed hop-by-hop names (lower case). */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
]);

/**
 * Copies request headers for the upstream, leaving out hop-by-hop headers, the ones named in
 * `Connection`, pseudo-headers, `host` (the caller sets it) and `expect` (the listener already
 * answered `100-continue`; the engine re-negotiates nothing). `te: trailers` is kept (gRPC needs
 * it). Upgrade headers are the engine's business (`UpstreamDispatch.upgrade`).
 * Called once per request; returns a new object.
 */
export function copyRequestHeaders(source: IncomingHttpHeaders): HeaderMap {
  const connection = source.connection;
  const named = connection === undefined || isPlainConnectionValue(connection) ? undefined : connectionTokens(connection);
  const target: HeaderMap = {};
  for (const name in source) {
    if (HOP_BY_HOP_HEADERS.has(name) || name.charCodeAt(0) === 58 /* ':' */ || name === 'host' || name === 'expect') continue;
    if (named !== undefined && named.has(name)) continue;
    target[name] = source[name];
  }
  const te = source.te;
  if (te !== undefined && hasToken(te, 'trailers')) target.te = 'trailers';
  return target;
}

/**
 * The response head without hop-by-hop headers (and the ones named in `Connection`). Called once
 * per upstream response. Returns `headers` itself when it holds none, else a copy without them:
 * copying keeps the object in V8's fast mode, where `delete` would turn it into a dictionary
 * that every later read and the response writer walk more slowly.
 */
export function stripResponseHeaders(headers: HeaderMap): HeaderMap {
  const connection = headers.connection;
  let found = connection !== undefined;
  if (!found) {
    for (const name in headers) {
      if (HOP_BY_HOP_HEADERS.has(name)) {
        found = true;
        break;
      }
    }
    if (!found) return headers;
  }
  const named = connection === undefined || isPlainConnectionValue(connection) ? undefined : connectionTokens(connection);
  const kept: HeaderMap = {};
  for (const name in headers) {
    if (HOP_BY_HOP_HEADERS.has(name) || (named !== undefined && named.has(name))) continue;
    kept[name] = headers[name];
  }
  return kept;
}

/** True for the usual `Connection` values, `keep-alive` and `close`, which name no other header. */
function isPlainConnectionValue(value: string | readonly string[]): boolean {
  if (typeof value !== 'string') return false;
  const lower = value.length === 10 || value.length === 5 ? value.toLowerCase() : '';
  return lower === 'keep-alive' || lower === 'close';
}

/** The lower-cased tokens of a `Connection` header value (comma separated, possibly repeated). */
export function connectionTokens(value: string | readonly string[]): Set<string> {
  const tokens = new Set<string>();
  const values = typeof value === 'string' ? [value] : value;
  for (const line of values) {
    for (const token of line.split(',')) {
      const trimmed = token.trim().toLowerCase();
      if (trimmed !== '') tokens.add(trimmed);
    }
  }
  return tokens;
}

/** True when the comma-separated header value contains `token` (case-insensitive). */
export function hasToken(value: string | readonly string[], token: string): boolean {
  const values = typeof value === 'string' ? [value] : value;
  for (const line of values) {
    for (const part of line.split(',')) {
      if (part.trim().toLowerCase() === token) return true;
    }
  }
  return false;
}
