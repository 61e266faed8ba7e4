/**
 * Response views shared by the route files: stored rows → the SDK's wire shapes (Permission,
 * Role, Identity, RatelimitResponse, KeyCreditsData). Optional fields are OMITTED when empty,
 * never null: the official SDK parses responses strictly (api.md §14.12).
 */
import type { Identity } from '../../../../core/db/queries/identities.ts';
import type { Key } from '../../../../core/db/queries/keys.ts';
import type { Permission } from '../../../../core/db/queries/permissions.ts';
import type { Ratelimit } from '../../../../core/db/queries/ratelimits.ts';
import type { Role } from '../../../../core/db/queries/roles.ts';

/** Permission on the wire. */
export interface PermissionView {
  id: string;
  name: string;
  slug: string;
  description?: string;
}

/** Role on the wire. */
export interface RoleView {
  id: string;
  name: string;
  description?: string;
  permissions?: PermissionView[];
}

/** RatelimitResponse on the wire. */
export interface RatelimitView {
  id: string;
  name: string;
  limit: number;
  duration: number;
  autoApply: boolean;
}

/** Identity on the wire. */
export interface IdentityView {
  id: string;
  externalId: string;
  meta?: Record<string, unknown>;
  ratelimits?: RatelimitView[];
}

/** KeyCreditsData on the wire: `remaining` always present, null = unlimited. */
export interface KeyCreditsView {
  remaining: number | null;
  refill?: { interval: 'daily' | 'monthly'; amount: number; refillDay?: number };
}

/** A permission as the API shows it. */
export function permissionView(permission: Permission): PermissionView {
  const view: PermissionView = { id: permission.id, name: permission.name, slug: permission.slug };
  if (permission.description !== undefined && permission.description !== '') view.description = permission.description;
  return view;
}

/** A role as the API shows it; `permissions` only when it has some. */
export function roleView(role: Role, permissions: readonly Permission[] = []): RoleView {
  const view: RoleView = { id: role.id, name: role.name };
  if (role.description !== undefined && role.description !== '') view.description = role.description;
  if (permissions.length > 0) view.permissions = permissions.map(permissionView);
  return view;
}

/** A stored rate limit as the API shows it (duration in ms). */
export function ratelimitView(ratelimit: Ratelimit): RatelimitView {
  return { id: ratelimit.id, name: ratelimit.name, limit: ratelimit.limit, duration: ratelimit.durationMs, autoApply: ratelimit.autoApply };
}

/** An identity as the API shows it; `meta` and `ratelimits` only when present. */
export function identityView(identity: Identity, ratelimits: readonly Ratelimit[] = []): IdentityView {
  const view: IdentityView = { id: identity.id, externalId: identity.externalId };
  if (identity.meta !== undefined) view.meta = identity.meta;
  if (ratelimits.length > 0) view.ratelimits = ratelimits.map(ratelimitView);
  return view;
}

/**
 * A key's credits: daily when `refill_day` is NULL, monthly on `refill_day` otherwise
 * (api.md §3.3). Undefined for a key without credits and without refill.
 */
export function keyCreditsView(key: Pick<Key, 'remainingRequests' | 'refillAmount' | 'refillDay'>): KeyCreditsView {
  const view: KeyCreditsView = { remaining: key.remainingRequests ?? null };
  if (key.refillAmount !== undefined) {
    view.refill = key.refillDay === undefined
      ? { interval: 'daily', amount: key.refillAmount }
      : { interval: 'monthly', amount: key.refillAmount, refillDay: key.refillDay };
  }
  return view;
}
