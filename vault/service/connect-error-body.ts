/**
 * `connectErrorBody`: turns a keygate `Fault` into a Connect-protocol error response
 * (`{"code","message"}` with the HTTP status Connect pairs with that code), plus the header
 * `keygate-fault-code` so keygate clients get the exact fault code back. Used as the Vault
 * server's `errorBody`; called once per failed request, never throws.
 */
import type { Fault, FaultCode } from '../../core/fault.ts';
import type { ErrorReply } from '../../core/http/interface.ts';
import { VAULT_FAULT_CODE_HEADER } from '../../core/vault-client.ts';

/** The Connect error codes keygate uses, with the HTTP status the Connect protocol pairs with each. */
export const CONNECT_HTTP_STATUS = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
} as const;

/** One Connect error code. */
export type ConnectCode = keyof typeof CONNECT_HTTP_STATUS;

const CONNECT_CODE_OF_FAULT: Partial<Record<FaultCode, ConnectCode>> = {
  'err:vault:auth:unauthenticated': 'unauthenticated',
  'err:vault:request:invalid_argument': 'invalid_argument',
  'err:vault:crypto:malformed_payload': 'invalid_argument',
  'err:vault:crypto:decryption_failed': 'invalid_argument',
  'err:vault:keyring:dek_not_found': 'not_found',
  'err:vault:keyring:kek_not_found': 'failed_precondition',
  'err:vault:storage:unavailable': 'unavailable',
  'err:vault:service:unavailable': 'unavailable',
  'err:vault:storage:corrupted': 'data_loss',
  'err:vault:request:unsupported_media_type': 'unimplemented',
  'err:vault:request:unimplemented': 'unimplemented',
  'err:unkey:application:not_found': 'unimplemented',
  'err:unkey:application:method_not_allowed': 'unimplemented',
  'err:unkey:application:invalid_input': 'invalid_argument',
  'err:user:bad_request:request_body_unreadable': 'invalid_argument',
  'err:user:bad_request:request_body_too_large': 'resource_exhausted',
  'err:user:bad_request:request_timeout': 'deadline_exceeded',
  'err:user:bad_request:client_closed_request': 'canceled',
};

// Statuses that keep their HTTP meaning rather than the code's canonical status: an unknown
// procedure is a 404 and a wrong content type a 415, as the Connect protocol specifies.
const HTTP_STATUS_OVERRIDE: Partial<Record<FaultCode, number>> = {
  'err:unkey:application:not_found': 404,
  'err:unkey:application:method_not_allowed': 405,
  'err:vault:request:unsupported_media_type': 415,
};

/** The Connect code for a fault code (`internal` for anything unmapped). */
export function connectCodeOf(code: FaultCode): ConnectCode {
  return CONNECT_CODE_OF_FAULT[code] ?? 'internal';
}

/** The error body builder for the Vault's HttpServer. */
export function connectErrorBody(fault: Fault, _requestId: string): ErrorReply {
  const connectCode = connectCodeOf(fault.code);
  return {
    status: HTTP_STATUS_OVERRIDE[fault.code] ?? CONNECT_HTTP_STATUS[connectCode],
    headers: { 'content-type': 'application/json', [VAULT_FAULT_CODE_HEADER]: fault.code },
    body: { code: connectCode, message: fault.publicMessage },
  };
}
