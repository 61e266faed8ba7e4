/**
 * Evaluation of a {@link PermissionQuery} against what a holder has. For end-user keys a leaf is
 * true iff the EXACT string is among the key's permissions: `documents.*` does not grant
 * `documents.read` (spec api.md §7 step 9, pitfall §14.5). Root keys pass their own matcher.
 */
import type { PermissionQuery } from './permission-query.ts';

/** What a holder has: a set of exact permission strings, or any predicate (e.g. a root key matcher). */
export type PermissionHolder = ReadonlySet<string> | { has(permission: string): boolean };

/**
 * True iff the holder satisfies the query. Short-circuits; cost is linear in the query size.
 * Called once per verifyKey with a query and once per root-key check.
 */
export function evaluatePermissionQuery(query: PermissionQuery, holder: PermissionHolder): boolean {
  switch (query.type) {
    case 'permission':
      return holder.has(query.name);
    case 'and':
      for (const operand of query.operands) if (!evaluatePermissionQuery(operand, holder)) return false;
      return true;
    case 'or':
      for (const operand of query.operands) if (evaluatePermissionQuery(operand, holder)) return true;
      return false;
  }
}
