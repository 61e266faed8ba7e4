/**
 * `Fault`: the one error type of keygate. A fault carries a stable code
 * (`err:<system>:<category>:<specific>`), where it came from, whether retrying can help,
 * a public message (safe to show to a client) and an internal message (for logs only).
 * The HTTP status and title follow from the code through {@link FAULT_CODES}.
 */

/** Where a fault originated: our own bug, a dependency we called, or the caller's input. */
export type FaultSource = 'internal' | 'upstream' | 'downstream';

/** What the catalogue knows about one code: its HTTP status and the title of the error body. */
export interface FaultCodeInfo {
  readonly status: number;
  readonly title: string;
}

/**
 * The code catalogue. The API's statuses and titles follow spec api.md §4.2; the frontline codes
 * follow dataplane.md §2.7; vault codes are keygate's own (distinct errors where the reference
 * lumped everything into one).
 */
export const FAULT_CODES = {
  // application
  'err:unkey:application:invalid_input': { status: 400, title: 'Bad Request' },
  'err:unkey:application:unexpected_error': { status: 500, title: 'Internal Server Error' },
  'err:unkey:application:service_unavailable': { status: 500, title: 'Internal Server Error' },
  'err:unkey:application:assertion_failed': { status: 500, title: 'Internal Server Error' },
  'err:unkey:application:protected_resource': { status: 412, title: 'Resource is protected' },
  'err:unkey:application:precondition_failed': { status: 412, title: 'Precondition Failed' },
  'err:unkey:application:not_found': { status: 404, title: 'Not Found' },
  'err:unkey:application:method_not_allowed': { status: 405, title: 'Method Not Allowed' },
  // authentication
  'err:unkey:authentication:missing': { status: 400, title: 'Bad Request' },
  'err:unkey:authentication:malformed': { status: 400, title: 'Bad Request' },
  'err:unkey:authentication:key_not_found': { status: 401, title: 'Unauthorized' },
  // authorization
  'err:unkey:authorization:forbidden': { status: 403, title: 'Forbidden' },
  'err:unkey:authorization:insufficient_permissions': { status: 403, title: 'Insufficient Permissions' },
  'err:unkey:authorization:key_disabled': { status: 403, title: 'Key is disabled' },
  'err:unkey:authorization:workspace_disabled': { status: 403, title: 'Workspace is disabled' },
  // data: not found
  'err:unkey:data:key_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:workspace_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:api_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:key_space_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:key_auth_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:permission_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:role_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:identity_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:ratelimit_namespace_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:ratelimit_override_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:migration_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:audit_log_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:deployment_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:environment_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:project_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:domain_not_found': { status: 404, title: 'Not Found' },
  'err:unkey:data:policy_not_found': { status: 404, title: 'Not Found' },
  // data: conflicts and gone
  'err:unkey:data:identity_already_exists': { status: 409, title: 'Conflicting Resource' },
  'err:unkey:data:role_already_exists': { status: 409, title: 'Conflicting Resource' },
  'err:unkey:data:permission_already_exists': { status: 409, title: 'Conflicting Resource' },
  'err:unkey:data:key_already_exists': { status: 409, title: 'Conflicting Resource' },
  'err:unkey:data:ratelimit_namespace_gone': { status: 410, title: 'Resource Gone' },
  'err:unkey:data:analytics_not_configured': { status: 412, title: 'Precondition Failed' },
  'err:unkey:data:analytics_connection_failed': { status: 503, title: 'Service Unavailable' },
  // user input
  'err:user:bad_request:permissions_query_syntax_error': { status: 400, title: 'Bad Request' },
  'err:user:bad_request:request_body_unreadable': { status: 400, title: 'Bad Request' },
  'err:user:bad_request:invalid_host': { status: 400, title: 'Bad Request' },
  'err:user:bad_request:request_body_too_large': { status: 413, title: 'Request Entity Too Large' },
  'err:user:bad_request:request_timeout': { status: 408, title: 'Request Timeout' },
  'err:user:bad_request:client_closed_request': { status: 499, title: 'Client Closed Request' },
  'err:user:too_many_requests:workspace_rate_limited': { status: 429, title: 'Too Many Requests' },
  // configuration (process start-up, CLI)
  'err:keygate:config:invalid': { status: 500, title: 'Invalid Configuration' },
  'err:keygate:config:file_not_found': { status: 500, title: 'Invalid Configuration' },
  // command line: an unknown command or flag, a missing argument (the CLI exits with 2)
  'err:keygate:cli:usage': { status: 400, title: 'Usage Error' },
  // certificate import: a file that is not a usable certificate or key, a key that does not
  // match, a host name the certificate does not cover or that another workspace holds
  'err:keygate:certificate:invalid': { status: 400, title: 'Bad Request' },
  'err:keygate:certificate:hostname_taken': { status: 409, title: 'Conflicting Resource' },
  // database
  'err:keygate:database:unavailable': { status: 503, title: 'Service Unavailable' },
  'err:keygate:database:migration_failed': { status: 500, title: 'Internal Server Error' },
  'err:keygate:database:conflict': { status: 409, title: 'Conflicting Resource' },
  // redis (shared counters): not answering at start-up within redis.connectTimeoutMs
  'err:keygate:redis:unavailable': { status: 503, title: 'Service Unavailable' },
  // metrics (a bad metric name or a conflicting registration: a programming error at boot)
  'err:keygate:metrics:invalid_definition': { status: 500, title: 'Internal Server Error' },
  // http kernel: a port that cannot be bound, a route or middleware registered too late (boot errors)
  'err:keygate:http:listen_failed': { status: 500, title: 'Internal Server Error' },
  'err:keygate:http:invalid_registration': { status: 500, title: 'Internal Server Error' },
  // gossip (cache invalidation between nodes): a peer's bytes that are not a valid message,
  // a publish outside the bounds, a bus used after close, a peer that cannot be reached, a cluster
  // key or identity file unusable
  'err:keygate:gossip:malformed_message': { status: 400, title: 'Bad Request' },
  'err:keygate:gossip:invalid_invalidation': { status: 400, title: 'Bad Request' },
  'err:keygate:gossip:closed': { status: 503, title: 'Service Unavailable' },
  'err:keygate:gossip:peer_unreachable': { status: 503, title: 'Service Unavailable' },
  'err:keygate:gossip:cluster_key_invalid': { status: 500, title: 'Invalid Configuration' },
  'err:keygate:gossip:identity_invalid': { status: 500, title: 'Invalid Configuration' },
  // frontline / sentinel (dataplane.md §2.7)
  'err:frontline:routing:config_not_found': { status: 404, title: 'Not Found' },
  'err:frontline:routing:deployment_not_found': { status: 404, title: 'Not Found' },
  'err:frontline:capacity:no_running_instances': { status: 503, title: 'Service Unavailable' },
  'err:frontline:capacity:deployment_offline': { status: 503, title: 'Service Unavailable' },
  'err:frontline:platform:internal_server_error': { status: 500, title: 'Internal Server Error' },
  'err:frontline:platform:config_load_failed': { status: 500, title: 'Internal Server Error' },
  'err:frontline:platform:hop_limit_exceeded': { status: 508, title: 'Loop Detected' },
  'err:frontline:config:invalid_configuration': { status: 422, title: 'Unprocessable Entity' },
  'err:frontline:upstream:bad_gateway': { status: 502, title: 'Bad Gateway' },
  'err:frontline:upstream:proxy_forward_failed': { status: 502, title: 'Bad Gateway' },
  'err:frontline:upstream:service_unavailable': { status: 503, title: 'Service Unavailable' },
  'err:frontline:upstream:gateway_timeout': { status: 504, title: 'Gateway Timeout' },
  'err:frontline:client:missing_credentials': { status: 401, title: 'Unauthorized' },
  'err:frontline:client:invalid_key': { status: 401, title: 'Unauthorized' },
  'err:frontline:client:insufficient_permissions': { status: 403, title: 'Forbidden' },
  'err:frontline:client:rate_limited': { status: 429, title: 'Too Many Requests' },
  'err:frontline:client:usage_exceeded': { status: 429, title: 'Too Many Requests' },
  'err:frontline:client:firewall_denied': { status: 403, title: 'Forbidden' },
  'err:frontline:client:openapi_validation_failed': { status: 400, title: 'Bad Request' },
  'err:frontline:client:invalid_token': { status: 401, title: 'Unauthorized' },
  // vault (controlplane.md §1; distinct codes where the reference used one)
  'err:vault:request:invalid_argument': { status: 400, title: 'Bad Request' },
  'err:vault:auth:unauthenticated': { status: 401, title: 'Unauthorized' },
  'err:vault:crypto:decryption_failed': { status: 400, title: 'Bad Request' },
  'err:vault:crypto:malformed_payload': { status: 400, title: 'Bad Request' },
  'err:vault:keyring:dek_not_found': { status: 404, title: 'Not Found' },
  'err:vault:keyring:kek_not_found': { status: 500, title: 'Internal Server Error' },
  'err:vault:storage:unavailable': { status: 503, title: 'Service Unavailable' },
  'err:vault:storage:corrupted': { status: 500, title: 'Internal Server Error' },
  'err:vault:request:unsupported_media_type': { status: 415, title: 'Unsupported Media Type' },
  'err:vault:request:unimplemented': { status: 501, title: 'Not Implemented' },
  'err:vault:service:unavailable': { status: 503, title: 'Service Unavailable' },
} as const satisfies Record<string, FaultCodeInfo>;

/** Every code in the catalogue. */
export type FaultCode = keyof typeof FAULT_CODES;

/** Options for {@link Fault}: everything but the code is optional. */
export interface FaultOptions {
  /** Safe to show to a client. Defaults to the code's title. */
  publicMessage?: string;
  /** For logs only; never sent to a client. */
  internalMessage?: string;
  source?: FaultSource;
  retryable?: boolean;
  cause?: unknown;
  /** Extra structured details for a 400-family body, e.g. validation errors. */
  errors?: readonly FaultDetail[];
}

/** One item of a 400-family error body (`error.errors[]` in the API envelope). */
export interface FaultDetail {
  location: string;
  message: string;
  fix?: string;
}

/**
 * The one error type. Thrown for unexpected failures; for expected outcomes on hot paths
 * use {@link Fault.expected}, which skips capturing a stack trace (about 10× cheaper).
 */
export class Fault extends Error {
  readonly code: FaultCode;
  readonly source: FaultSource;
  readonly retryable: boolean;
  readonly publicMessage: string;
  readonly internalMessage: string;
  readonly errors: readonly FaultDetail[] | undefined;

  constructor(code: FaultCode, options: FaultOptions = {}) {
    const publicMessage = options.publicMessage ?? FAULT_CODES[code].title;
    super(options.internalMessage ?? publicMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'Fault';
    this.code = code;
    this.source = options.source ?? 'internal';
    this.retryable = options.retryable ?? false;
    this.publicMessage = publicMessage;
    this.internalMessage = options.internalMessage ?? publicMessage;
    this.errors = options.errors;
  }

  /** HTTP status that this fault's code maps to. */
  get status(): number {
    return FAULT_CODES[this.code].status;
  }

  /** Title of the error body for this fault's code. */
  get title(): string {
    return FAULT_CODES[this.code].title;
  }

  /** Docs URL of the code, in the reference's form: `…/errors/<system>/<category>/<specific>`. */
  get type(): string {
    return faultTypeUrl(this.code);
  }

  /**
   * A fault without a captured stack, for expected outcomes (bad input, not found) where the
   * stack carries no information and capturing it would cost on the hot path.
   */
  static expected(code: FaultCode, options: FaultOptions = {}): Fault {
    const previous = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new Fault(code, { source: 'downstream', ...options });
    } finally {
      Error.stackTraceLimit = previous;
    }
  }

  /** Wraps anything thrown into a fault; a fault passes through unchanged. */
  static from(err: unknown, code: FaultCode = 'err:unkey:application:unexpected_error'): Fault {
    if (err instanceof Fault) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new Fault(code, { internalMessage: message, cause: err });
  }
}

/** True when `value` is a code of the catalogue. */
export function isFaultCode(value: string): value is FaultCode {
  return Object.hasOwn(FAULT_CODES, value);
}

/** The docs URL for a code (`https://unkey.com/docs/errors/<system>/<category>/<specific>`). */
export function faultTypeUrl(code: string): string {
  return 'https://unkey.com/docs/errors/' + code.slice('err:'.length).split(':').join('/');
}
