/**
 * `keyResponseData`: a key as getKey, whoami and listKeys show it (spec api.md §3.3), built from
 * the verification row (key, identity, limits, permissions, roles). Empty optionals are omitted:
 * the official SDK rejects `null` for them (§14.12). `credits.remaining` is the one nullable field.
 */
import type { KeyForVerification } from '../../core/db/queries/find-key-for-verification.ts';

/** KeyResponseData as sent. */
export interface KeyResponseData {
  keyId: string;
  start: string;
  enabled: boolean;
  name?: string;
  meta?: Record<string, unknown>;
  createdAt: number;
  updatedAt?: number;
  lastUsedAt?: number;
  expires?: number;
  permissions?: string[];
  roles?: string[];
  credits?: { remaining: number | null; refill?: { interval: 'daily' | 'monthly'; amount: number; refillDay?: number } };
  identity?: { id: string; externalId: string; meta?: Record<string, unknown>; ratelimits?: RatelimitResponse[] };
  plaintext?: string;
  ratelimits?: RatelimitResponse[];
}

/** RatelimitResponse as sent. */
export interface RatelimitResponse {
  id: string;
  name: string;
  limit: number;
  duration: number;
  autoApply: boolean;
}

/** Builds the response for one key; `plaintext` only when decrypted. */
export function keyResponseData(row: KeyForVerification, plaintext?: string): KeyResponseData {
  const key = row.key;
  const data: KeyResponseData = { keyId: key.id, start: key.start, enabled: key.enabled, createdAt: key.createdAtMs };
  if (key.name !== undefined && key.name !== '') data.name = key.name;
  if (key.meta !== undefined) data.meta = key.meta;
  if (key.updatedAtMs !== undefined) data.updatedAt = key.updatedAtMs;
  if (key.lastUsedAtMs !== undefined && key.lastUsedAtMs > 0) data.lastUsedAt = key.lastUsedAtMs;
  if (key.expiresAtMs !== undefined) data.expires = key.expiresAtMs;
  if (row.permissions.length > 0) data.permissions = [...row.permissions];
  if (row.roles.length > 0) data.roles = [...row.roles];
  if (key.remainingRequests !== undefined || key.refillAmount !== undefined) {
    const credits: NonNullable<KeyResponseData['credits']> = { remaining: key.remainingRequests ?? null };
    if (key.refillAmount !== undefined) {
      // A refill day means monthly on that day; none means daily (api.md §3.3).
      credits.refill = key.refillDay === undefined
        ? { interval: 'daily', amount: key.refillAmount }
        : { interval: 'monthly', amount: key.refillAmount, refillDay: key.refillDay };
    }
    data.credits = credits;
  }
  if (row.identity !== undefined) {
    const identity: NonNullable<KeyResponseData['identity']> = { id: row.identity.id, externalId: row.identity.externalId };
    if (row.identity.meta !== undefined) identity.meta = row.identity.meta;
    if (row.identity.ratelimits.length > 0) identity.ratelimits = row.identity.ratelimits.map(toRatelimitResponse);
    data.identity = identity;
  }
  if (plaintext !== undefined) data.plaintext = plaintext;
  if (row.ratelimits.length > 0) data.ratelimits = row.ratelimits.map(toRatelimitResponse);
  return data;
}

function toRatelimitResponse(limit: { id: string; name: string; limit: number; durationMs: number; autoApply: boolean }): RatelimitResponse {
  return { id: limit.id, name: limit.name, limit: limit.limit, duration: limit.durationMs, autoApply: limit.autoApply };
}
