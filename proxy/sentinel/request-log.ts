/**
 * The gateway's request log (dataplane.md §7.3): one row per proxied request that reached an
 * instance, handed to a {@link RequestLogSink} (a local table by default, ClickHouse when
 * configured: both are wired in bin/). Headers and the query string are captured only when a
 * Logging policy asked for them, with `authorization`, the principal header and every KeyAuth
 * key location redacted.
 */

// The row and sink contract live in core/analytics so that roles and bin/ share them.
export type { GatewayRequestRow, RequestLogSink } from '../../core/analytics/request-log-sink.ts';

/** The value logged in place of a secret. */
export const REDACTED = '[REDACTED]';

/** Renders headers as `Name: value` lines, redacting the names in `secretHeaders` (lower case). */
export function renderHeaders(headers: Record<string, string | string[] | undefined>, secretHeaders: ReadonlySet<string>): string[] {
  const lines: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.startsWith(':')) continue;
    const secret = secretHeaders.has(name);
    for (const single of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${secret ? REDACTED : single}`);
  }
  return lines;
}

/** A captured body as the sinks receive it (see `ProxySession.captureBodies`). */
export interface LoggedBody {
  bytes: Buffer;
  totalBytes: number;
  truncated: boolean;
}

/**
 * Renders a captured body as text for a log row: UTF-8, every secret value (a key sent in a
 * header, also found in the body, e.g. echoed in a JSON field) replaced by `[REDACTED]`, and a
 * marker with the number of bytes left out when the capture was cut. '' when nothing was captured.
 */
export function renderBody(body: LoggedBody | undefined, secrets: readonly string[]): string {
  if (body === undefined) return '';
  let text = body.bytes.toString('utf8');
  for (const secret of secrets) if (secret.length >= 8 && text.includes(secret)) text = text.replaceAll(secret, REDACTED);
  return body.truncated ? `${text}…[truncated ${body.totalBytes - body.bytes.length} bytes]` : text;
}

/**
 * The secret values a request carries in `secretHeaders` (the header value, and for an
 * `Authorization: <scheme> <token>` also the token alone), for {@link renderBody}.
 */
export function secretValues(headers: Record<string, string | string[] | undefined>, secretHeaders: ReadonlySet<string>): string[] {
  const values: string[] = [];
  for (const name of secretHeaders) {
    const value = headers[name];
    if (value === undefined) continue;
    for (const single of Array.isArray(value) ? value : [value]) {
      values.push(single);
      const space = single.indexOf(' ');
      if (space !== -1) values.push(single.slice(space + 1).trim());
    }
  }
  return values;
}

/** Re-encodes a query string with the parameters in `secretParams` (case-sensitive) redacted. */
export function redactQuery(rawQuery: string, secretParams: ReadonlySet<string>): string {
  if (rawQuery === '' || secretParams.size === 0) return rawQuery;
  const params = new URLSearchParams(rawQuery);
  for (const name of secretParams) if (params.has(name)) params.set(name, REDACTED);
  return params.toString();
}
