/**
 * The permission query tree shared by the parser (end-user queries from verifyKey) and by
 * handlers (root-key requirements), plus a small builder: `anyOf(perm('a'), allOf(perm('b'), perm('c')))`.
 * A leaf is satisfied by an exact string match only (spec api.md §7 step 9, pitfall §14.5).
 */

/** A permission query: a leaf naming one permission, or an AND / OR of sub-queries. */
export type PermissionQuery =
  | { readonly type: 'permission'; readonly name: string }
  | { readonly type: 'and'; readonly operands: readonly PermissionQuery[] }
  | { readonly type: 'or'; readonly operands: readonly PermissionQuery[] };

/** A leaf: true iff the holder has exactly this permission string. */
export function perm(name: string): PermissionQuery {
  return { type: 'permission', name };
}

/** True iff any operand is true; nested ORs are flattened. Needs at least one operand. */
export function anyOf(...operands: PermissionQuery[]): PermissionQuery {
  return combine('or', operands);
}

/** True iff every operand is true; nested ANDs are flattened. Needs at least one operand. */
export function allOf(...operands: PermissionQuery[]): PermissionQuery {
  return combine('and', operands);
}

/**
 * Renders a query in the query language, with parentheses only where needed (AND binds tighter
 * than OR). Used in 403 details so the caller can see which permissions would have sufficed.
 */
export function formatPermissionQuery(query: PermissionQuery): string {
  if (query.type === 'permission') return query.name;
  if (query.type === 'or') return query.operands.map(formatPermissionQuery).join(' OR ');
  return query.operands
    .map((operand) => (operand.type === 'or' ? '(' + formatPermissionQuery(operand) + ')' : formatPermissionQuery(operand)))
    .join(' AND ');
}

function combine(type: 'and' | 'or', operands: PermissionQuery[]): PermissionQuery {
  if (operands.length === 0) throw new RangeError(`${type === 'or' ? 'anyOf' : 'allOf'} needs at least one operand`);
  if (operands.length === 1) return operands[0]!;
  const flat: PermissionQuery[] = [];
  for (const operand of operands) {
    if (operand.type === type) flat.push(...operand.operands);
    else flat.push(operand);
  }
  return { type, operands: flat };
}
