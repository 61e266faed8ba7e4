/**
 * `Principal`: who a request was authenticated as (dataplane.md §5.11), sent upstream as the
 * `X-Keygate-Principal` header in compact JSON. Field order and omission rules follow the
 * reference (`meta` is always an object). Non-ASCII characters are escaped as `\uXXXX` so the
 * value is a valid header (Node refuses characters above U+00FF and latin1-mangles the rest,
 * §10.11) and still valid JSON.
 */
import type { VerificationResult } from '../../core/verification/interface.ts';

/** Name of the principal header sent upstream (any client copy is removed first). */
export const PRINCIPAL_HEADER = 'x-keygate-principal';

/** The key a principal came from (KeyAuth). */
export interface PrincipalKeySource {
  keyId: string;
  keySpaceId: string;
  name?: string;
  /** Unix ms. */
  expiresAt?: number;
  /** Credits remaining after this request; omitted when unlimited. */
  credits?: number;
  meta: Record<string, unknown>;
  roles?: string[];
  permissions?: string[];
}

/** The token a principal came from (JWTAuth): its protected header and payload. */
export interface PrincipalJwtSource {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

/** An authenticated caller. */
export interface Principal {
  version: 'v1';
  subject: string;
  type: 'API_KEY' | 'JWT';
  identity?: { externalId: string; meta: Record<string, unknown> };
  source: { key?: PrincipalKeySource; jwt?: PrincipalJwtSource };
}

/** Builds the principal of a successful key verification. */
export function principalFromVerification(result: VerificationResult, keySpaceId: string): Principal {
  const key = { keyId: result.keyId ?? '', keySpaceId } as PrincipalKeySource;
  if (result.name !== undefined) key.name = result.name;
  if (result.expires !== undefined) key.expiresAt = result.expires;
  if (result.credits !== undefined) key.credits = result.credits;
  key.meta = objectOrEmpty(result.meta);
  if (result.roles !== undefined && result.roles.length > 0) key.roles = result.roles;
  if (result.permissions !== undefined && result.permissions.length > 0) key.permissions = result.permissions;
  const subject = result.identity?.externalId ?? result.keyId ?? '';
  // Built in the reference's field order: version, subject, type, identity?, source.
  if (result.identity === undefined) return { version: 'v1', subject, type: 'API_KEY', source: { key } };
  const identity = { externalId: result.identity.externalId, meta: objectOrEmpty(result.identity.meta) };
  return { version: 'v1', subject, type: 'API_KEY', identity, source: { key } };
}

/**
 * The header value: compact JSON with every non-ASCII character escaped. Called once per
 * authenticated request. A principal shared by many requests carries its header string (see
 * {@link freezeWithHeader}: KeyAuth's `KnownKeys`, JWTAuth's remembered tokens); any
 * other frozen principal is serialised once and the string remembered for as long as it lives.
 */
export function serializePrincipal(principal: Principal): string {
  const stored = (principal as { [HEADER]?: string })[HEADER];
  if (stored !== undefined) return stored;
  const frozen = Object.isFrozen(principal);
  if (frozen) {
    const remembered = serializedPrincipals.get(principal);
    if (remembered !== undefined) return remembered;
  }
  const header = headerOf(principal);
  if (frozen) serializedPrincipals.set(principal, header);
  return header;
}

/**
 * Stores the principal's header string on it (a non-enumerable symbol property, which JSON
 * ignores) and freezes it (the top object: freeze nested objects first). For principals shared
 * across requests: `serializePrincipal` then reads the string back without a lookup.
 */
export function freezeWithHeader<P extends Principal>(principal: P): P {
  Object.defineProperty(principal, HEADER, { value: headerOf(principal) });
  return Object.freeze(principal);
}

function headerOf(principal: Principal): string {
  const json = JSON.stringify(principal);
  // Most principals are pure ASCII: a test is cheaper than a global replace that finds nothing.
  return NON_ASCII.test(json) ? json.replace(NON_ASCII_GLOBAL, escapeCharacter) : json;
}

/**
 * The string at a dotted path in the principal's JSON form (`source.key.meta.org`,
 * `identity.externalId`); undefined when absent or not a string. Used by rate-limit identifiers.
 */
export function principalField(principal: Principal | undefined, path: readonly string[]): string | undefined {
  let value: unknown = principal;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = Object.hasOwn(value, segment) ? (value as Record<string, unknown>)[segment] : undefined;
  }
  return typeof value === 'string' ? value : undefined;
}

/** Where {@link freezeWithHeader} keeps the header string on the principal itself. */
const HEADER = Symbol('keygate.principal.header');
/** Serialisations of other frozen principals; weak, so it lives exactly as long as they do. */
const serializedPrincipals = new WeakMap<Principal, string>();
const NON_ASCII = /[\u007f-\uffff]/;
const NON_ASCII_GLOBAL = /[\u007f-\uffff]/g;

function escapeCharacter(character: string): string {
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

function objectOrEmpty(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : {};
}
