/**
 * The verification engine's vocabulary: what a caller asks (`VerifyKeyInput`, the body of
 * `keys.verifyKey`), the per-call context (`VerifyKeyOptions`) and the answer
 * (`VerificationResult`, exactly the wire shape of spec api.md §3.2: empty optionals omitted).
 */

/** The outcome codes of a verification (api.md §3.2). */
export const VERIFICATION_CODES = [
  'VALID', 'NOT_FOUND', 'FORBIDDEN', 'INSUFFICIENT_PERMISSIONS', 'USAGE_EXCEEDED', 'RATE_LIMITED', 'DISABLED', 'EXPIRED',
] as const;

/** One of {@link VERIFICATION_CODES}. */
export type VerificationCode = (typeof VERIFICATION_CODES)[number];

/** A rate limit the caller asks to check: stored by name, or ad hoc when both `limit` and `duration` are given. */
export interface RequestedRatelimit {
  name: string;
  /** Units consumed; default 1. */
  cost?: number;
  limit?: number;
  /** Window in ms. */
  duration?: number;
}

/** What to verify (the `keys.verifyKey` body). */
export interface VerifyKeyInput {
  key: string;
  tags?: readonly string[];
  /** A permission query such as `(a.read OR a.write) AND b.view`. */
  permissions?: string;
  credits?: { cost: number };
  ratelimits?: readonly RequestedRatelimit[];
  migrationId?: string;
}

/** A configured rate limit as responses show it (RatelimitResponse). */
export interface RatelimitInfo {
  id: string;
  name: string;
  limit: number;
  /** Window in ms. */
  duration: number;
  autoApply: boolean;
}

/** A rate limit that was checked by this verification. */
export interface CheckedRatelimit extends RatelimitInfo {
  /** Absolute Unix ms at which the current window ends. */
  reset: number;
  remaining: number;
  exceeded: boolean;
}

/** The key's identity as the response shows it. */
export interface VerificationIdentity {
  id: string;
  externalId: string;
  meta?: Record<string, unknown>;
  ratelimits?: RatelimitInfo[];
}

/** The answer, in the wire shape of `keys.verifyKey`'s `data` (optional fields omitted, never null). */
export interface VerificationResult {
  valid: boolean;
  code: VerificationCode;
  keyId?: string;
  name?: string;
  meta?: Record<string, unknown>;
  /** Unix ms. */
  expires?: number;
  /** Credits left after this call; omitted = unlimited. */
  credits?: number;
  enabled?: boolean;
  permissions?: string[];
  roles?: string[];
  identity?: VerificationIdentity;
  ratelimits?: CheckedRatelimit[];
}

/** Per-call context of {@link KeyVerifier.verify}. */
export interface VerifyKeyOptions {
  /**
   * The caller's workspace: a key of any other workspace answers NOT_FOUND (existence masking).
   * For the API this is the root key's `forWorkspaceId`.
   */
  workspaceId: string;
  /**
   * Decides whether the caller may verify this key (root-key authorization). False answers
   * NOT_FOUND, exactly as if the key did not exist. Absent = allowed (in-process callers such
   * as the gateway, which are scoped by `workspaceId` and `keySpaceId`).
   */
  authorize?: (key: VerificationKeyView) => boolean;
  /** Only keys of this key space are found (the gateway's KeyAuth policy). */
  keySpaceId?: string;
  /** The client's IP address, for the API's IP allow-list. */
  clientIp?: string;
  /** Recorded with the analytics event. */
  requestId?: string;
  /** `performance.now()` when the request started, for the event's latency; default: when verify was called. */
  startedAtMs?: number;
  /**
   * `hashKey(input.key)` when the caller already has it (the gateway remembers it per connection);
   * it must be exactly that. Never taken from a request body: a wrong hash would find another key.
   */
  keyHash?: string;
}

/** What an authorizer may read about the key it is asked about. */
export interface VerificationKeyView {
  readonly keyId: string;
  readonly workspaceId: string;
  readonly keySpaceId: string;
  readonly apiId: string;
}
