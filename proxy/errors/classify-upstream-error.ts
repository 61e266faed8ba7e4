/**
 * Maps what went wrong on the way to an upstream onto the fault codes of dataplane.md §2.4:
 * refused / unreachable / DNS not found → 503, reset or closed early → 502, timeouts → 504,
 * a client that went away → 499. Table-driven, tested case by case.
 */
import { Fault } from '../../core/fault.ts';
import type { FaultCode } from '../../core/fault.ts';

/** Error codes (Node `err.code` and undici's `UND_ERR_*`) and the fault each one becomes. */
export const UPSTREAM_ERROR_CODES: Readonly<Record<string, FaultCode>> = {
  ECONNREFUSED: 'err:frontline:upstream:service_unavailable',
  EHOSTUNREACH: 'err:frontline:upstream:service_unavailable',
  ENETUNREACH: 'err:frontline:upstream:service_unavailable',
  EHOSTDOWN: 'err:frontline:upstream:service_unavailable',
  ENOTFOUND: 'err:frontline:upstream:service_unavailable',
  EADDRNOTAVAIL: 'err:frontline:upstream:service_unavailable',
  EAI_AGAIN: 'err:frontline:upstream:gateway_timeout',
  ETIMEDOUT: 'err:frontline:upstream:gateway_timeout',
  UND_ERR_CONNECT_TIMEOUT: 'err:frontline:upstream:gateway_timeout',
  UND_ERR_HEADERS_TIMEOUT: 'err:frontline:upstream:gateway_timeout',
  UND_ERR_BODY_TIMEOUT: 'err:frontline:upstream:gateway_timeout',
  ECONNRESET: 'err:frontline:upstream:bad_gateway',
  EPIPE: 'err:frontline:upstream:bad_gateway',
  UND_ERR_SOCKET: 'err:frontline:upstream:bad_gateway',
  UND_ERR_CLOSED: 'err:frontline:upstream:bad_gateway',
  UND_ERR_DESTROYED: 'err:frontline:upstream:bad_gateway',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'err:frontline:upstream:bad_gateway',
  HPE_INVALID_CONSTANT: 'err:frontline:upstream:bad_gateway',
};

/**
 * Turns an upstream failure into a `Fault` (source `upstream`). `connected` says whether the
 * failure came after a connection was made: only a failure before that is `retryable`, because
 * no byte of the request has been sent. A `Fault` passes through unchanged.
 */
export function classifyUpstreamError(err: unknown, connected: boolean): Fault {
  if (err instanceof Fault) return err;
  const code = errorCode(err);
  const faultCode = (code !== undefined ? UPSTREAM_ERROR_CODES[code] : undefined) ?? 'err:frontline:upstream:bad_gateway';
  const message = err instanceof Error ? err.message : String(err);
  return Fault.expected(faultCode, {
    source: 'upstream',
    retryable: !connected,
    internalMessage: `${connected ? 'upstream error' : 'connect failed'}: ${code ?? 'unknown'}: ${message}`,
    cause: err,
  });
}

/** The `code` of an error, looking one level into `cause` (undici wraps socket errors). */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  const cause = (err as { cause?: { code?: unknown } }).cause;
  if (typeof cause?.code === 'string' && (code === undefined || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CONNECT')) {
    return cause.code;
  }
  return typeof code === 'string' ? code : undefined;
}
