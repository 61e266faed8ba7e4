/**
 * `compileMatch`: turns a policy's `match` list into one predicate, once per policy set load
 * (never per request). Semantics follow dataplane.md §5.4: all expressions must hold (AND);
 * path compares the normalised, percent-decoded path; methods are case-insensitive (OR across
 * the list); header names are case-insensitive and values are checked per header line; query
 * names are case-sensitive and any occurrence may match; regexes are unanchored. keygate adds
 * `negate` per expression.
 */
import type { FieldMatch, MatchExpr, StringMatch } from '../policy/policy-types.ts';
import type { RequestView } from '../request-view.ts';
import { SafeRegex } from './safe-regex.ts';

/** A compiled condition over a request view. Called per request. */
export type RequestPredicate = (request: RequestView) => boolean;

/** A predicate that is always true (an empty `match` list). */
export const MATCH_ALL: RequestPredicate = () => true;

/** Compiles a `match` list; throws a `Fault` (422) for a regex that fails vetting. */
export function compileMatch(expressions: readonly MatchExpr[]): RequestPredicate {
  if (expressions.length === 0) return MATCH_ALL;
  const predicates = expressions.map(compileExpression);
  if (predicates.length === 1) return predicates[0]!;
  return (request) => {
    for (const predicate of predicates) if (!predicate(request)) return false;
    return true;
  };
}

/** Compiles a string condition into a test on one value. */
export function compileStringMatch(match: StringMatch): (value: string) => boolean {
  if (match.exact !== undefined) {
    const expected = match.exact;
    if (!match.ignoreCase) return (value) => value === expected;
    const lower = expected.toLowerCase();
    return (value) => value.length === expected.length && value.toLowerCase() === lower;
  }
  if (match.prefix !== undefined) {
    const prefix = match.prefix;
    if (!match.ignoreCase) return (value) => value.startsWith(prefix);
    const lower = prefix.toLowerCase();
    return (value) => value.length >= prefix.length && value.slice(0, prefix.length).toLowerCase() === lower;
  }
  if (match.regex !== undefined) {
    const regex = new SafeRegex(match.regex, match.ignoreCase);
    return (value) => regex.test(value);
  }
  return () => true;
}

function compileExpression(expression: MatchExpr): RequestPredicate {
  const predicate = compilePositive(expression);
  return expression.negate ? (request) => !predicate(request) : predicate;
}

function compilePositive(expression: MatchExpr): RequestPredicate {
  if (expression.path !== undefined) {
    const test = compileStringMatch(expression.path.path);
    return (request) => test(request.path);
  }
  if (expression.method !== undefined) {
    const methods = new Set(expression.method.methods.map((method) => method.toUpperCase()));
    if (methods.size === 0) return MATCH_ALL;
    return (request) => methods.has(request.method);
  }
  if (expression.header !== undefined) {
    const field = expression.header;
    return compileField(field, (request) => request.headerValues(field.name));
  }
  if (expression.queryParam !== undefined) {
    const field = expression.queryParam;
    return compileField(field, (request) => request.query.getAll(field.name));
  }
  return MATCH_ALL;
}

function compileField(field: FieldMatch, valuesOf: (request: RequestView) => readonly string[]): RequestPredicate {
  if (field.value !== undefined) {
    const test = compileStringMatch(field.value);
    return (request) => {
      for (const value of valuesOf(request)) if (test(value)) return true;
      return false;
    };
  }
  // `present: false` means absent; no condition at all means "must be present".
  const wantPresent = field.present ?? true;
  return (request) => (valuesOf(request).length > 0) === wantPresent;
}
