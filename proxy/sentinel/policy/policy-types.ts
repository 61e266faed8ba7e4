/**
 * The policy model in its validated JSON form (lowerCamelCase, as the official SDK's `Policy`
 * component names its fields). `parsePolicies` produces it from a document; `policy-codec.ts`
 * turns it into protobuf bytes (`policy.proto`) and back. Every field is already checked.
 */

/** The kinds of policy configuration (the `oneof config` of `Policy`). */
export const POLICY_TYPES = ['keyauth', 'jwtauth', 'ratelimit', 'firewall', 'openapi', 'logging'] as const;

/** One of {@link POLICY_TYPES}. */
export type PolicyType = (typeof POLICY_TYPES)[number];

/** Exactly one of exact / prefix / regex; `ignoreCase` applies to all three. */
export interface StringMatch {
  ignoreCase: boolean;
  exact?: string;
  prefix?: string;
  regex?: string;
}

/** A header or query parameter condition: `present` true/false, or a value match (default: present). */
export interface FieldMatch {
  name: string;
  present?: boolean;
  value?: StringMatch;
}

/** One condition of a policy's `match` list (all must hold); `negate` inverts it (keygate extension). */
export interface MatchExpr {
  path?: { path: StringMatch };
  method?: { methods: string[] };
  header?: FieldMatch;
  queryParam?: FieldMatch;
  negate: boolean;
}

/** Where KeyAuth looks for a key; exactly one member is set. */
export interface KeyLocation {
  bearer?: Record<string, never>;
  header?: { name: string; stripPrefix?: string };
  queryParam?: { name: string };
}

/** A rate limit checked by KeyAuth: stored on the key by name, or inline with `limit` + `duration` (ms). */
export interface KeyRatelimit {
  name: string;
  limit?: number;
  duration?: number;
  cost?: number;
}

/** KeyAuth configuration (dataplane.md §5.5). */
export interface KeyAuthConfig {
  /** Key space ids whose keys are accepted. */
  keyspaces: string[];
  /** API ids whose key spaces are accepted (resolved when the policy set is compiled). */
  apiIds: string[];
  locations: KeyLocation[];
  permissionQuery?: string;
  ratelimits: KeyRatelimit[];
  /** Credits spent per request (default 1; 0 verifies without spending). */
  credits?: number;
}

/** One part of a rate-limit identifier; exactly one member is set. */
export interface RateLimitIdentifier {
  remoteIp?: Record<string, never>;
  header?: { name: string };
  authenticatedSubject?: Record<string, never>;
  path?: Record<string, never>;
  principalField?: { path: string };
}

/** RateLimit configuration (dataplane.md §5.6). */
export interface RateLimitConfig {
  limit: number;
  windowMs: number;
  identifiers: RateLimitIdentifier[];
}

/** Firewall configuration: `ACTION_DENY` rejects with 403; anything else is a no-op. */
export interface FirewallConfig {
  action: 'ACTION_DENY' | 'ACTION_UNSPECIFIED';
}

/** OpenAPI validation: the document (a JSON object), or undefined to use the deployment's spec. */
export interface OpenApiConfig {
  spec?: Record<string, unknown>;
}

/** Logging capture flags (dataplane.md §5.9). */
export interface LoggingConfig {
  requestHeaders: boolean;
  responseHeaders: boolean;
  requestBody: boolean;
  responseBody: boolean;
  query: boolean;
}

/** JWTAuth configuration (enforced, unlike the reference: §5.10). */
export interface JwtAuthConfig {
  jwksUri?: string;
  publicKeyPem?: string;
  issuer?: string;
  audiences: string[];
  /** Allowed `alg` values (default `['RS256']`). */
  algorithms: string[];
  /** Claim that becomes the principal's subject (default `sub`). */
  subjectClaim: string;
  /** A request without a token passes unauthenticated instead of 401. */
  allowAnonymous: boolean;
  clockSkewMs: number;
  /** How long a fetched JWKS is trusted (default 1 h). */
  jwksCacheMs: number;
}

/** A validated policy: common fields plus exactly one configuration. */
export interface Policy {
  id: string;
  name: string;
  /** Absent counts as false (disabled), as in the reference. */
  enabled: boolean;
  match: MatchExpr[];
  type: PolicyType;
  keyauth?: KeyAuthConfig;
  jwtauth?: JwtAuthConfig;
  ratelimit?: RateLimitConfig;
  firewall?: FirewallConfig;
  openapi?: OpenApiConfig;
  logging?: LoggingConfig;
}
