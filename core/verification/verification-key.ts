/**
 * `VerificationKey`: one cached entry of the key cache, built once from the database row when
 * the key is loaded (spec api.md §7.2): the stored status, the permission set, the rate limits
 * (key-level beats identity-level), the auto-applied limits, the IP allow-list, the identity as
 * the response shows it, and for a root key its compiled permissions. The hot path only looks
 * things up.
 *
 * The entry is deliberately lean, because a node caches up to a million of them: it keeps only
 * the fields verification and its response read (not the whole row: no hash, `start`, refill
 * settings, timestamps, key-space or API rows), shares frozen empties for keys without
 * permissions, roles or limits, keeps rate limits in a small array instead of a Map, and interns
 * the strings that many keys repeat (workspace, key-space and API ids, limit names, allow-lists).
 * Measured with `bench/verify-key.ts --mode distinct`.
 */
import type { KeyForVerification, VerificationRatelimit } from '../db/queries/find-key-for-verification.ts';
import { RootKeyPermissions } from '../rbac/root-key-permissions.ts';
import type { RatelimitInfo, VerificationIdentity, VerificationKeyView } from './interface.ts';

/** A stored rate limit with the counter identifier it uses (key id, or identity id for shared limits). */
export interface ResolvedRatelimit extends RatelimitInfo {
  /** Whose counter: the key's own, or the identity's (shared by every key of the identity). */
  readonly identifier: string;
}

/**
 * The status of a key from its stored state alone, before the clock is consulted (api.md §7
 * step 3): a root key whose target workspace is gone or a deleted API/key space is NOT_FOUND, a
 * disabled workspace FORBIDDEN, then DISABLED; otherwise VALID (expiry is checked per request).
 */
export type StoredKeyStatus = 'VALID' | 'NOT_FOUND' | 'FORBIDDEN' | 'DISABLED';

/** Most distinct strings {@link internString} remembers; the table is cleared when full (interning is only a saving). */
export const DEFAULT_MAX_INTERNED_STRINGS = 100_000;

const EMPTY_SET: ReadonlySet<string> = Object.freeze(new Set<string>());
const EMPTY_RATELIMITS: readonly ResolvedRatelimit[] = Object.freeze([]);
const interned = new Map<string, string>();
const ipWhitelists = new Map<string, ReadonlySet<string> | undefined>();

/** The pre-parsed cache entry of one key; immutable once built. */
export class VerificationKey implements VerificationKeyView {
  readonly keyId: string;
  readonly workspaceId: string;
  readonly keySpaceId: string;
  readonly apiId: string;
  /** For a root key: the workspace it manages (also when that workspace is gone). */
  readonly forWorkspaceId: string | undefined;
  /** Status from the stored state; {@link keyStatusAt} adds expiry. */
  readonly storedStatus: StoredKeyStatus;
  readonly name: string | undefined;
  readonly meta: Record<string, unknown> | undefined;
  /** Unix ms; undefined = never expires. */
  readonly expiresAtMs: number | undefined;
  readonly enabled: boolean;
  /** Credits stored when the entry was loaded; undefined = unlimited (no credit check at all). */
  readonly remainingRequests: number | undefined;
  /** All permission slugs (direct and via roles). */
  readonly permissionSet: ReadonlySet<string>;
  /** Stored limits, one per name; on a collision the key's own limit wins over the identity's. */
  readonly ratelimits: readonly ResolvedRatelimit[];
  /** Limits applied on every verification (cost 1); the same array as `ratelimits` when all are. */
  readonly autoApplied: readonly ResolvedRatelimit[];
  /** Allowed client IPs; undefined = any. Shared by every key of the API. */
  readonly ipWhitelist: ReadonlySet<string> | undefined;
  /** The identity as responses show it (built once). */
  readonly identity: VerificationIdentity | undefined;
  /** For a root key: its permissions, compiled for the workspace it manages. */
  readonly rootKeyPermissions: RootKeyPermissions | undefined;
  /** Arrays reused in every response (never mutated); undefined when empty. */
  readonly permissions: string[] | undefined;
  readonly roles: string[] | undefined;

  constructor(row: KeyForVerification) {
    const key = row.key;
    this.keyId = key.id;
    this.workspaceId = internString(key.workspaceId);
    this.keySpaceId = internString(row.keySpace.id);
    this.apiId = internString(row.api.id);
    this.forWorkspaceId = key.forWorkspaceId === undefined ? undefined : internString(key.forWorkspaceId);
    this.storedStatus = storedStatusOf(row);
    this.name = key.name === '' ? undefined : key.name;
    this.meta = key.meta;
    this.expiresAtMs = key.expiresAtMs;
    this.enabled = key.enabled;
    this.remainingRequests = key.remainingRequests;
    this.permissionSet = row.permissions.length === 0 ? EMPTY_SET : new Set(row.permissions);
    this.ratelimits = resolveRatelimits(row);
    this.autoApplied = this.ratelimits.every((limit) => limit.autoApply) ? this.ratelimits : this.ratelimits.filter((limit) => limit.autoApply);
    this.ipWhitelist = parseIpWhitelist(row.api.ipWhitelist);
    this.identity = row.identity === undefined ? undefined : identityView(row.identity);
    this.rootKeyPermissions = key.forWorkspaceId === undefined ? undefined : RootKeyPermissions.compile(key.forWorkspaceId, row.permissions);
    this.permissions = row.permissions.length === 0 ? undefined : row.permissions;
    this.roles = row.roles.length === 0 ? undefined : row.roles.map(internString);
  }

  /** The stored limit called `name` (key-level first), or undefined. A few limits per key: a scan beats a Map. */
  ratelimit(name: string): ResolvedRatelimit | undefined {
    for (const limit of this.ratelimits) if (limit.name === name) return limit;
    return undefined;
  }
}

/**
 * Returns one shared instance of `text` (bounded table, cleared when full), so that strings many
 * cached keys repeat are stored once. Called per cache load, never per request.
 */
export function internString(text: string): string {
  const existing = interned.get(text);
  if (existing !== undefined) return existing;
  if (interned.size >= DEFAULT_MAX_INTERNED_STRINGS) interned.clear();
  interned.set(text, text);
  return text;
}

function storedStatusOf(row: KeyForVerification): StoredKeyStatus {
  if (row.key.forWorkspaceId !== undefined && row.forWorkspace === undefined) return 'NOT_FOUND';
  if (!row.workspaceEnabled || (row.forWorkspace !== undefined && !row.forWorkspace.enabled)) return 'FORBIDDEN';
  if (row.api.deletedAtMs !== undefined || row.keySpace.deletedAtMs !== undefined) return 'NOT_FOUND';
  if (!row.key.enabled) return 'DISABLED';
  return 'VALID';
}

function resolveRatelimits(row: KeyForVerification): readonly ResolvedRatelimit[] {
  const identityLimits: readonly VerificationRatelimit[] = row.identity?.ratelimits ?? [];
  if (row.ratelimits.length === 0 && identityLimits.length === 0) return EMPTY_RATELIMITS;
  // Identity limits first, each replaced by the key's own limit of the same name (the key wins),
  // then the key's other limits: the order responses have always shown.
  const limits: ResolvedRatelimit[] = [];
  for (const limit of identityLimits) {
    const own = row.ratelimits.find((candidate) => candidate.name === limit.name);
    limits.push(own === undefined ? resolved(limit, row.identity!.id) : resolved(own, row.key.id));
  }
  for (const limit of row.ratelimits) {
    if (!identityLimits.some((shared) => shared.name === limit.name)) limits.push(resolved(limit, row.key.id));
  }
  return limits;
}

function resolved(limit: VerificationRatelimit, identifier: string): ResolvedRatelimit {
  return { id: limit.id, name: internString(limit.name), limit: limit.limit, duration: limit.durationMs, autoApply: limit.autoApply, identifier };
}

function parseIpWhitelist(text: string | undefined): ReadonlySet<string> | undefined {
  if (text === undefined) return undefined;
  if (ipWhitelists.has(text)) return ipWhitelists.get(text);
  const entries = text.split(',').map((entry) => entry.trim()).filter((entry) => entry.length > 0);
  const parsed = entries.length === 0 ? undefined : new Set(entries);
  if (ipWhitelists.size >= DEFAULT_MAX_INTERNED_STRINGS) ipWhitelists.clear();
  ipWhitelists.set(text, parsed);
  return parsed;
}

function identityView(identity: NonNullable<KeyForVerification['identity']>): VerificationIdentity {
  const view: VerificationIdentity = { id: identity.id, externalId: identity.externalId };
  if (identity.meta !== undefined) view.meta = identity.meta;
  if (identity.ratelimits.length > 0) {
    view.ratelimits = identity.ratelimits.map((limit) => ({ id: limit.id, name: internString(limit.name), limit: limit.limit, duration: limit.durationMs, autoApply: limit.autoApply }));
  }
  return view;
}
