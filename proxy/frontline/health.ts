/**
 * Frontline's internal endpoints under a reserved path on every host and both listeners:
 * `GET /_keygate/health/live` (the process answers), `/_keygate/health/ready` (configuration
 * loaded and not draining; 503 otherwise) and `/_keygate/health/startup`. Any other path under
 * the prefix is a 404: the prefix belongs to Frontline on every customer domain, never proxied.
 */

/** The reserved path prefix (never forwarded to an upstream). */
export const INTERNAL_PATH_PREFIX = '/_keygate/';

/** What a health probe needs to know. */
export interface HealthState {
  /** True once the configuration is loaded and listeners are up. */
  readonly started: boolean;
  /** True while the server drains on shutdown. */
  readonly draining: boolean;
}

/** A small response: status, body (JSON text) and content type. */
export interface InternalResponse {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** True when `path` (path and query as received) is under the reserved prefix. Per request. */
export function isInternalPath(path: string): boolean {
  return path.startsWith(INTERNAL_PATH_PREFIX);
}

/** Answers a request under the reserved prefix. Per internal request. */
export function answerInternal(path: string, state: HealthState): InternalResponse {
  const query = path.indexOf('?');
  const pathname = query === -1 ? path : path.slice(0, query);
  switch (pathname) {
    case '/_keygate/health/live':
      return json(200, { status: 'ok' });
    case '/_keygate/health/startup':
      return state.started ? json(200, { status: 'ok' }) : json(503, { status: 'starting' });
    case '/_keygate/health/ready':
      if (state.draining) return json(503, { status: 'draining' });
      return state.started ? json(200, { status: 'ok' }) : json(503, { status: 'starting' });
    default:
      return json(404, { status: 'not_found' });
  }
}

function json(status: number, body: object): InternalResponse {
  const text = JSON.stringify(body);
  return { status, body: text, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } };
}
