/**
 * The proxy's error responses (dataplane.md §2.7): JSON
 * `{"meta":{"requestId"},"error":{"code","message"}}` when the client asks for JSON
 * (`Accept` contains `application/json` or `application/*`, or `*\/*` without `text/html`),
 * otherwise a small self-contained HTML page (also for an empty `Accept`). Both carry the
 * request id; the HTML page also shows the status, title, code and docs URL.
 */
import type { Fault } from '../../core/fault.ts';

/** A rendered error: status, content type and body (a string, sent as UTF-8). */
export interface ErrorPage {
  status: number;
  contentType: string;
  body: string;
}

/**
 * Statuses that differ on the proxy path from the API's catalogue: a request that ran out of its
 * total time budget is a 504 at the gateway (dataplane.md §2.2), not the API's 408.
 */
export const PROXY_STATUS_OVERRIDES: Readonly<Record<string, number>> = {
  'err:user:bad_request:request_timeout': 504,
};

/** The status a fault gets on the proxy path. */
export function proxyStatus(fault: Fault): number {
  return PROXY_STATUS_OVERRIDES[fault.code] ?? fault.status;
}

/** True when the `Accept` header asks for JSON (see the module comment for the exact rule). */
export function wantsJson(accept: string | undefined): boolean {
  if (accept === undefined || accept === '') return false;
  if (accept.includes('application/json') || accept.includes('application/*')) return true;
  return accept.includes('*/*') && !accept.includes('text/html');
}

/** Renders `fault` for a client that sent `accept`; called once per failed request. */
export function renderErrorPage(fault: Fault, requestId: string, accept: string | undefined): ErrorPage {
  const status = proxyStatus(fault);
  if (wantsJson(accept)) {
    return {
      status,
      contentType: 'application/json',
      body: JSON.stringify({ meta: { requestId }, error: { code: fault.code, message: fault.publicMessage } }),
    };
  }
  const title = escapeHtml(fault.title);
  return {
    status,
    contentType: 'text/html; charset=utf-8',
    body: '<!doctype html><html lang="en"><head><meta charset="utf-8">'
      + `<title>${status} ${title}</title>`
      + '<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}'
      + 'code{background:#f3f3f3;padding:.1rem .3rem}</style></head><body>'
      + `<h1>${status} ${title}</h1><p>${escapeHtml(fault.publicMessage)}</p>`
      + `<p>Code: <code>${escapeHtml(fault.code)}</code> · <a href="${escapeHtml(fault.type)}">docs</a></p>`
      + `<p>Request id: <code>${escapeHtml(requestId)}</code></p></body></html>`,
  };
}

/** Escapes the five HTML-significant characters. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}
