/**
 * The compiled permissions of one root key (spec api.md §5.3). Built once when the root key is
 * loaded (cache it next to the key), then asked per request whether it satisfies the handler's
 * requirement. Two vocabularies:
 * - legacy tuples `api.<id>.<action>`: exact strings only; `api.*.x` is a literal that handlers
 *   OR in explicitly (see `required-permissions.ts`);
 * - URN grants `unkey:v1:<ws>:<path>#<action>` with `*` / trailing `**` patterns, which never
 *   match another workspace.
 */
import { evaluatePermissionQuery } from './evaluate-permission-query.ts';
import type { PermissionQuery } from './permission-query.ts';
import {
  grantCovers,
  grantProblem,
  parseResourcePermission,
  type ResourceGrantProblem,
  type ResourcePermission,
} from './resource-permission.ts';

/** A grant that can never match, and why: kept so the loader can log it (never silently dropped). */
export interface IgnoredGrant {
  readonly grant: string;
  readonly reason: ResourceGrantProblem | 'other_workspace';
}

/** Matches root-key grants against required permissions; immutable after {@link RootKeyPermissions.compile}. */
export class RootKeyPermissions {
  /** Grants the key holds that can never match (malformed patterns, other workspaces). */
  readonly ignoredGrants: readonly IgnoredGrant[];
  readonly #workspaceId: string;
  readonly #exact: ReadonlySet<string>;
  /** Valid URN grants of this workspace, by action; `*` holds the action-wildcard grants. */
  readonly #patternsByAction: ReadonlyMap<string, readonly ResourcePermission[]>;

  private constructor(
    workspaceId: string,
    exact: Set<string>,
    patternsByAction: Map<string, ResourcePermission[]>,
    ignoredGrants: IgnoredGrant[],
  ) {
    this.#workspaceId = workspaceId;
    this.#exact = exact;
    this.#patternsByAction = patternsByAction;
    this.ignoredGrants = ignoredGrants;
  }

  /**
   * Compiles the grants of a root key acting on `workspaceId` (its `for_workspace_id`). Called
   * once per root-key load; cost is linear in the number of grants.
   */
  static compile(workspaceId: string, grants: Iterable<string>): RootKeyPermissions {
    const exact = new Set<string>();
    const patternsByAction = new Map<string, ResourcePermission[]>();
    const ignored: IgnoredGrant[] = [];
    for (const grant of grants) {
      const parsed = parseResourcePermission(grant);
      if (parsed === undefined) {
        // Legacy tuples and anything else: exact string equality only.
        exact.add(grant);
        continue;
      }
      if (parsed.workspaceId !== workspaceId) {
        ignored.push({ grant, reason: 'other_workspace' });
        continue;
      }
      const problem = grantProblem(parsed);
      if (problem !== undefined) {
        ignored.push({ grant, reason: problem });
        continue;
      }
      const isConcrete = !parsed.descendants && !parsed.segments.includes('*') && parsed.action !== '*';
      if (isConcrete) exact.add(grant);
      else {
        const list = patternsByAction.get(parsed.action);
        if (list === undefined) patternsByAction.set(parsed.action, [parsed]);
        else list.push(parsed);
      }
    }
    return new RootKeyPermissions(workspaceId, exact, patternsByAction, ignored);
  }

  /** The workspace these permissions act on. */
  get workspaceId(): string {
    return this.#workspaceId;
  }

  /**
   * True iff the key holds `permission`: an exact grant, or (for a URN of this workspace) a URN
   * pattern covering it. Called per leaf of a requirement, a few times per request.
   */
  has(permission: string): boolean {
    if (this.#exact.has(permission)) return true;
    if (this.#patternsByAction.size === 0) return false;
    const required = parseResourcePermission(permission);
    if (required === undefined || required.workspaceId !== this.#workspaceId) return false;
    return matchesAny(this.#patternsByAction.get(required.action), required) || matchesAny(this.#patternsByAction.get('*'), required);
  }

  /** True iff the key satisfies the requirement. Called once per authorised request. */
  satisfies(requirement: PermissionQuery): boolean {
    return evaluatePermissionQuery(requirement, this);
  }
}

function matchesAny(patterns: readonly ResourcePermission[] | undefined, required: ResourcePermission): boolean {
  if (patterns === undefined) return false;
  for (const pattern of patterns) if (grantCovers(pattern, required)) return true;
  return false;
}
