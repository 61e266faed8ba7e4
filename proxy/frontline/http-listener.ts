/**
 * `createHttpListenerHandler`: Frontline's plain-HTTP listener (port 80 in production). It does
 * three things and never proxies (dataplane.md §2.10):
 * - `GET /.well-known/acme-challenge/<token>` → 200 `text/plain` key authorization from the
 *   challenge store, or 404;
 * - `/_keygate/…` → the internal health endpoints;
 * - anything else → 308 to `https://<host><path>?<query>` (method and body kept by the client).
 * The request body is never read or buffered (pitfall §10.25): a request that has one gets
 * `Connection: close`, so Node discards it with the socket instead of reading it to the end.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Fault } from '../../core/fault.ts';
import { renderErrorPage } from '../errors/error-page.ts';
import { normalizeHost } from '../proxy-session.ts';
import type { AcmeChallengeStore } from './acme-challenge-store.ts';
import type { FrontlineMetrics } from './frontline-metrics.ts';
import type { HealthState } from './health.ts';
import { answerInternal, isInternalPath } from './health.ts';

/** Options of {@link createHttpListenerHandler}. */
export interface HttpListenerOptions {
  /** Where challenge answers come from; undefined = every challenge is a 404. */
  challenges?: AcmeChallengeStore;
  metrics: FrontlineMetrics;
  health: HealthState;
  /** Port put into the redirect `Location` (omitted when 443). Read per request, so a reload may change it. */
  redirectPort: () => number;
  /** Request ids for error pages. */
  newRequestId: () => string;
}

/** The ACME HTTP-01 path prefix (RFC 8555 §8.3). */
export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

/** A host we are willing to echo into a `Location` header: DNS name, IPv4 or bracket-less IPv6. */
const SAFE_HOST = /^[a-z0-9.-]{1,253}$|^[0-9a-f:.]{2,45}$/;

/** Builds the `request` listener of the HTTP server. Called once at boot; the result runs per request. */
export function createHttpListenerHandler(options: HttpListenerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = req.url ?? '/';
    const host = normalizeHost(req.headers.host ?? '');
    if (hasBody(req)) res.shouldKeepAlive = false;
    if (path.startsWith(ACME_CHALLENGE_PREFIX)) {
      answerChallenge(options, req, res, path, host);
      return;
    }
    if (isInternalPath(path)) {
      const answer = answerInternal(path, options.health);
      res.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) });
      res.end(req.method === 'HEAD' ? undefined : answer.body);
      return;
    }
    if (!SAFE_HOST.test(host)) {
      sendFault(options, req, res, Fault.expected('err:unkey:application:invalid_input', { publicMessage: 'A valid Host header is required.' }));
      return;
    }
    const port = options.redirectPort();
    const authority = host.includes(':') ? `[${host}]` : host;
    const location = `https://${authority}${port === 443 ? '' : `:${port}`}${path.startsWith('/') ? path : `/${path}`}`;
    options.metrics.httpsRedirects.inc();
    res.writeHead(308, { location, 'content-length': '0' });
    res.end();
  };
}

function answerChallenge(options: HttpListenerOptions, req: IncomingMessage, res: ServerResponse, path: string, host: string): void {
  const query = path.indexOf('?');
  const token = path.slice(ACME_CHALLENGE_PREFIX.length, query === -1 ? undefined : query);
  const notFound = (): void => {
    options.metrics.acmeChallenges.labels('not_found').inc();
    sendFault(options, req, res, Fault.expected('err:frontline:routing:config_not_found', { publicMessage: 'Unknown ACME challenge.' }));
  };
  if (options.challenges === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
    notFound();
    return;
  }
  let answer: string | undefined | Promise<string | undefined>;
  try {
    answer = options.challenges.get(token, host);
  } catch {
    notFound();
    return;
  }
  const reply = (keyAuthorization: string | undefined): void => {
    if (keyAuthorization === undefined) {
      notFound();
      return;
    }
    options.metrics.acmeChallenges.labels('served').inc();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(keyAuthorization)), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : keyAuthorization);
  };
  if (answer instanceof Promise) answer.then(reply, () => notFound());
  else reply(answer);
}

function sendFault(options: HttpListenerOptions, req: IncomingMessage, res: ServerResponse, fault: Fault): void {
  if (res.headersSent || res.destroyed) return;
  const page = renderErrorPage(fault, options.newRequestId(), req.headers.accept);
  res.writeHead(page.status, { 'content-type': page.contentType, 'content-length': String(Buffer.byteLength(page.body)), 'cache-control': 'no-store' });
  res.end(page.body);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
