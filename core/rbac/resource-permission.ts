/**
 * Resource permissions in URN form (spec api.md §5.3): `unkey:v1:<workspace>:<path>#<action>`,
 * e.g. `unkey:v1:ws_1:keyspaces/ks_1/keys/*#verify_key`. As a grant, a path may use `*` (exactly
 * one segment) and a trailing `/**` (the path and all its descendants); the action `*` is only
 * valid on a `**` pattern (the admin escape hatch `unkey:v1:ws_1:**#*`).
 */

/** The fixed head of every resource permission. */
export const RESOURCE_PERMISSION_SCHEME = 'unkey:v1:';

/** A parsed resource permission (a grant pattern or a required, concrete permission). */
export interface ResourcePermission {
  readonly workspaceId: string;
  /** Path segments, without a trailing `**`. */
  readonly segments: readonly string[];
  /** True when the path ended in `**`: the pattern also covers every descendant. */
  readonly descendants: boolean;
  readonly action: string;
}

/** Why a grant was rejected at compile time. */
export type ResourceGrantProblem =
  | 'malformed'
  | 'double_star_not_last'
  | 'id_after_wildcard'
  | 'action_wildcard_without_double_star';

/**
 * Parses `unkey:v1:<ws>:<path>#<action>`. Returns undefined when the string is not in that shape
 * (then it is a legacy tuple or garbage, matched only as an exact string).
 */
export function parseResourcePermission(text: string): ResourcePermission | undefined {
  if (!text.startsWith(RESOURCE_PERMISSION_SCHEME)) return undefined;
  const workspaceEnd = text.indexOf(':', RESOURCE_PERMISSION_SCHEME.length);
  const hash = text.lastIndexOf('#');
  if (workspaceEnd < 0 || hash < workspaceEnd) return undefined;
  const workspaceId = text.slice(RESOURCE_PERMISSION_SCHEME.length, workspaceEnd);
  const path = text.slice(workspaceEnd + 1, hash);
  const action = text.slice(hash + 1);
  if (workspaceId.length === 0 || path.length === 0 || action.length === 0 || action.includes('#')) return undefined;
  const segments = path.split('/');
  if (segments.some((segment) => segment.length === 0)) return undefined;
  const descendants = segments[segments.length - 1] === '**';
  if (descendants) segments.pop();
  return { workspaceId, segments, descendants, action };
}

/**
 * Checks the grant-only rules of §5.3 and returns the first rule broken, or undefined when the
 * pattern is valid. Paths alternate collection / id (`keyspaces/<ks>/keys/<key>`), so after the
 * first `*` id selector, every deeper id position (every second segment) must also be `*`.
 */
export function grantProblem(grant: ResourcePermission): ResourceGrantProblem | undefined {
  if (grant.segments.includes('**')) return 'double_star_not_last';
  if (grant.action === '*' && !grant.descendants) return 'action_wildcard_without_double_star';
  const firstWildcard = grant.segments.indexOf('*');
  if (firstWildcard >= 0) {
    for (let index = firstWildcard + 2; index < grant.segments.length; index += 2) {
      if (grant.segments[index] !== '*') return 'id_after_wildcard';
    }
  }
  return undefined;
}

/**
 * True iff the grant pattern covers the required permission. Workspaces must be equal (patterns
 * never cross workspaces); a grant `*` matches any one segment, including a literal `*` in the
 * requirement (how top-level creates are expressed: `keyspaces/*#create_keyspace`).
 */
export function grantCovers(grant: ResourcePermission, required: ResourcePermission): boolean {
  if (grant.workspaceId !== required.workspaceId) return false;
  if (grant.action !== '*' && grant.action !== required.action) return false;
  // A required permission is concrete: a trailing `**` in it is not a request for everything.
  if (required.descendants) return false;
  const grantLength = grant.segments.length;
  const requiredLength = required.segments.length;
  if (grant.descendants ? requiredLength < grantLength : requiredLength !== grantLength) return false;
  for (let index = 0; index < grantLength; index++) {
    const segment = grant.segments[index]!;
    if (segment !== '*' && segment !== required.segments[index]) return false;
  }
  return true;
}
